/**
 * Verifying data against a hash tree (the kernel's fs/verity/verify.c and
 * dm-verity's verify_level), and reading the tree back with its unstored
 * blocks filled in (read_metadata.c). The tree's layout and hashing come
 * from a `TreeGeometry` (geometry.ts): fs-verity's, or dm-verity's from
 * src/dmverity. One verifier checks both.
 *
 * A data block is checked by walking up the tree to a hash block already
 * verified, or to the root hash from the descriptor, then checking each
 * block downward, then the data block against its entry. Verified tree
 * blocks are kept here as private copies (bounded, least recently used
 * first out), so a later change on the device cannot slip under a block
 * this verifier already trusts, and eviction only costs a re-read and a
 * re-check.
 *
 * Tree blocks that read back as all zeros were not stored (they consist of
 * an all-zero subtree's digest repeated): they are synthesized, then
 * verified like any other block, so a zeroed-out block on the device is
 * caught by its parent's hash.
 */
import { fail } from '../errors.js';
import { toHex, type VerityDescriptor } from './descriptor.js';
import { fsverityGeometry, type TreeGeometry, type TreeHasher } from './geometry.js';
import { computeMerkleTreeParams } from './params.js';
import type { VerityOps } from './verity-ops.js';
import type { Wasm } from '../wasm/index.js';

/** Bytes of verified tree blocks a verifier keeps unless told otherwise. */
const VERIFIED_CACHE_BYTES = 8 << 20;

/**
 * Where a verifier reads tree blocks: a filesystem's `VerityOps`, or any
 * reader of a stored tree (as `fsverity digest --out-merkle-tree` writes
 * it, or a dm-verity hash device), at the byte offsets the geometry names.
 * Nothing it returns is believed before its parent vouches for it.
 */
export type MerkleTreeSource = Pick<VerityOps, 'readMetadata'>;

/** Options of `MerkleVerifier.create`. */
export interface MerkleVerifierOptions {
  /** Names the file in error messages; default 'file'. */
  what?: string;
  /** Bytes of verified tree blocks kept (at least four blocks); default 8 MiB. */
  cacheBytes?: number;
}

function allZero(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Verifies data against a hash tree (see the module comment). Made by
 * `MerkleVerifier.create` from a validated fs-verity descriptor, or by
 * `MerkleVerifier.forGeometry` from any tree geometry and a trusted root
 * hash. `verifyData` and `verifyDataAt` resolve when every data block given
 * matches and reject with EIO naming the block and level when one does not
 * (or when reading a tree block fails); `readTree` gives the stored tree's
 * bytes with unstored blocks filled in. Holds WASM memory until `dispose`.
 */
export class MerkleVerifier {
  /** Per level: the digest an all-zero subtree has at that level's entries. */
  private readonly zeroDigests: Uint8Array[] = [];
  private readonly verified = new Map<number, Uint8Array>();
  private readonly maxVerified: number;
  /** Byte of the tree source just past the last tree block. */
  private readonly treeEnd: number;

  private constructor(
    /** Where everything is, and how blocks are hashed. */
    readonly geometry: TreeGeometry,
    /** The trusted hash of the top tree block (or of the single data block). */
    readonly rootHash: Uint8Array,
    private readonly dataHasher: TreeHasher,
    private readonly hashHasher: TreeHasher,
    private readonly ops: MerkleTreeSource,
    /** Names the file in error messages. */
    private readonly what: string,
    cacheBytes: number,
  ) {
    const g = geometry;
    this.maxVerified = Math.max(4, Math.floor(cacheBytes / g.hashBlockSize));
    let end = 0;
    for (let l = 0; l < g.levels; l++) end = Math.max(end, g.blockOffset(l, g.levelBlocks(l) - 1) + g.hashBlockSize);
    this.treeEnd = end;
    this.zeroDigests.push(dataHasher.zeroBlockDigest);
    if (g.unstoredZeroBlocks) {
      for (let l = 1; l < g.levels; l++) {
        const block = this.fill(l - 1, 0, g.hashesPerBlock);
        const d = new Uint8Array(g.digestSize);
        hashHasher.hashBlocks(block, 1, d, 0);
        this.zeroDigests.push(d);
      }
    }
  }

  /**
   * A verifier for the fs-verity file described by a validated
   * `descriptor`, reading its tree through `ops`. The third argument is the
   * file's name in error messages, or the options.
   */
  static async create(descriptor: VerityDescriptor, ops: MerkleTreeSource, opts: string | MerkleVerifierOptions = {}): Promise<MerkleVerifier> {
    const geometry = fsverityGeometry(computeMerkleTreeParams(descriptor.params, descriptor.dataSize));
    return MerkleVerifier.forGeometry(geometry, descriptor.rootHash, ops, opts);
  }

  /**
   * A verifier for any tree `geometry` (fs-verity's or dm-verity's) under
   * the trusted `rootHash` (EINVAL when it is not one digest long), reading
   * tree blocks through `ops`.
   */
  static async forGeometry(geometry: TreeGeometry, rootHash: Uint8Array, ops: MerkleTreeSource, opts: string | MerkleVerifierOptions = {}): Promise<MerkleVerifier> {
    const o = typeof opts === 'string' ? { what: opts } : opts;
    if (rootHash.length !== geometry.digestSize) {
      throw fail('EINVAL', `a root hash of ${rootHash.length} bytes: ${geometry.hashName} digests have ${geometry.digestSize}`);
    }
    const { data, hash } = await geometry.createHashers();
    return new MerkleVerifier(geometry, rootHash.slice(), data, hash, ops, o.what ?? 'file', o.cacheBytes ?? VERIFIED_CACHE_BYTES);
  }

  dispose(): void {
    this.dataHasher.dispose();
    if (this.hashHasher !== this.dataHasher) this.hashHasher.dispose();
    this.verified.clear();
  }

  /** Entries (hashes) held by level `level` of the tree. */
  private entries(level: number): number {
    return level === 0 ? this.geometry.dataBlocks : this.geometry.levelBlocks(level - 1);
  }

  /** Block `index` of `level` holding `n` copies of that level's all-zero digest, the rest zeros. */
  private fill(level: number, index: number, n: number): Uint8Array {
    const g = this.geometry;
    const block = new Uint8Array(g.hashBlockSize);
    const first = index * g.hashesPerBlock;
    for (let i = 0; i < n; i++) block.set(this.zeroDigests[level]!, g.hashLocation(level, first + i).offset);
    return block;
  }

  /** The block an unstored (level, index) stands for. */
  private synthesize(level: number, index: number): Uint8Array {
    const per = this.geometry.hashesPerBlock;
    return this.fill(level, index, Math.min(per, this.entries(level) - index * per));
  }

  private digest(block: Uint8Array): Uint8Array {
    const d = new Uint8Array(this.geometry.digestSize);
    this.hashHasher.hashBlocks(block, 1, d, 0);
    return d;
  }

  private mismatch(what: string, level: number | 'data', expected: Uint8Array, actual: Uint8Array): Error {
    const g = this.geometry;
    const where = level === 'data' ? 'against its level-0 hash' : `at tree level ${level}`;
    return fail('EIO', `${g.format}: ${what} of ${this.what} fails verification ${where}: expected ${g.hashName}:${toHex(expected)}, got ${toHex(actual)}`);
  }

  /** Tree block (level, index), verified, from the cache or read and checked up to a trusted block. */
  private async treeBlock(level: number, index: number): Promise<Uint8Array> {
    const g = this.geometry;
    const at = g.blockOffset(level, index);
    const hit = this.verified.get(at);
    if (hit) {
      this.verified.delete(at);
      this.verified.set(at, hit);
      return hit;
    }
    let block = await this.ops.readMetadata(at, g.hashBlockSize);
    if (block.length !== g.hashBlockSize) {
      throw fail('EIO', `${g.format}: tree block ${index} of level ${level} of ${this.what} is cut short (${block.length} bytes at ${at})`);
    }
    if (g.unstoredZeroBlocks && allZero(block)) block = this.synthesize(level, index);
    const actual = this.digest(block);
    let expected: Uint8Array;
    if (level === g.levels - 1) {
      expected = this.rootHash;
    } else {
      const loc = g.hashLocation(level + 1, index);
      const parent = await this.treeBlock(level + 1, loc.index);
      expected = parent.subarray(loc.offset, loc.offset + g.digestSize);
    }
    if (!equal(expected, actual)) throw this.mismatch(`tree block ${index}`, level, expected, actual);
    this.verified.set(at, block);
    if (this.verified.size > this.maxVerified) this.verified.delete(this.verified.keys().next().value!);
    return block;
  }

  private checkBlocks(first: number, count: number): void {
    if (!Number.isInteger(count) || first < 0 || first + count > this.geometry.dataBlocks) {
      throw fail('EINVAL', `${this.geometry.format}: data blocks ${first}..${first + count} are outside the ${this.geometry.dataBlocks} blocks of ${this.what}`);
    }
  }

  /**
   * Verify `count` data blocks from data block `first`: `data` holds them
   * back to back, the last one zero-padded past the data size. EIO naming
   * the block, the level and both hashes on a mismatch.
   */
  async verifyData(first: number, data: Uint8Array, count = data.length / this.geometry.dataBlockSize): Promise<void> {
    this.checkBlocks(first, count);
    const digests = new Uint8Array(count * this.geometry.digestSize);
    this.dataHasher.hashBlocks(data, count, digests, 0);
    await this.checkDigests(first, count, digests);
  }

  /**
   * As `verifyData`, for blocks that sit back to back in `wasm`'s memory at
   * `ptr` (a folio being filled): they are hashed in place, without a copy.
   * False, with nothing checked, when this verifier's hasher cannot hash in
   * that memory; the caller then copies them out for `verifyData`.
   */
  async verifyDataAt(wasm: Wasm, ptr: number, first: number, count: number): Promise<boolean> {
    this.checkBlocks(first, count);
    const digests = new Uint8Array(count * this.geometry.digestSize);
    if (this.dataHasher.hashBlocksAt?.(wasm, ptr, count, digests, 0) !== true) return false;
    await this.checkDigests(first, count, digests);
    return true;
  }

  /**
   * As `verifyData`, for blocks hashed elsewhere (the worker pool):
   * `digests` holds the `count` digests of data blocks from `first`, as
   * computed from the bytes the caller will hand out.
   */
  async verifyDataDigests(first: number, count: number, digests: Uint8Array): Promise<void> {
    this.checkBlocks(first, count);
    const ds = this.geometry.digestSize;
    if (digests.length !== count * ds) throw fail('EINVAL', `${count} blocks need ${count * ds} bytes of digests, not ${digests.length}`);
    await this.checkDigests(first, count, digests);
  }

  /** The digest of an all-zero data block under this tree's salt. */
  get zeroBlockDigest(): Uint8Array {
    return this.zeroDigests[0]!;
  }

  /** Compare the digests of data blocks first.. with their level-0 entries. */
  private async checkDigests(first: number, count: number, digests: Uint8Array): Promise<void> {
    const g = this.geometry;
    const ds = g.digestSize;
    for (let j = 0; j < count; j++) {
      const b = first + j;
      const actual = digests.subarray(j * ds, (j + 1) * ds);
      let expected: Uint8Array;
      if (g.levels === 0) {
        expected = this.rootHash;
      } else {
        const loc = g.hashLocation(0, b);
        const leaf = await this.treeBlock(0, loc.index);
        expected = leaf.subarray(loc.offset, loc.offset + ds);
      }
      if (!equal(expected, actual)) throw this.mismatch(`data block ${b}`, 'data', expected, actual);
    }
  }

  /** The level and index of the tree block at byte `at` of the tree source, if one starts there. */
  private blockAt(at: number): { level: number; index: number } | undefined {
    const g = this.geometry;
    for (let level = 0; level < g.levels; level++) {
      const rel = at - g.blockOffset(level, 0);
      if (rel >= 0 && rel % g.hashBlockSize === 0 && rel / g.hashBlockSize < g.levelBlocks(level)) return { level, index: rel / g.hashBlockSize };
    }
    return undefined;
  }

  /**
   * The stored tree as `fsverity digest --out-merkle-tree` writes it, with
   * unstored blocks filled in; pread semantics (short at the end). Blocks
   * are returned as read (and synthesized), not verified.
   */
  async readTree(offset: number, length: number): Promise<Uint8Array> {
    const g = this.geometry;
    const end = Math.min(this.treeEnd, offset + length);
    if (offset >= end) return new Uint8Array(0);
    const out = await this.ops.readMetadata(offset, end - offset);
    if (!g.unstoredZeroBlocks) return out;
    const bs = g.hashBlockSize;
    for (let k = Math.floor(offset / bs); k * bs < end; k++) {
      const a = Math.max(k * bs, offset);
      const z = Math.min((k + 1) * bs, end);
      const where = this.blockAt(k * bs);
      if (!where) continue;
      const whole = a === k * bs && z === (k + 1) * bs ? out.subarray(a - offset, z - offset) : await this.ops.readMetadata(k * bs, bs);
      if (allZero(whole)) {
        const s = this.synthesize(where.level, where.index);
        out.set(s.subarray(a - k * bs, z - k * bs), a - offset);
      }
    }
    return out;
  }
}
