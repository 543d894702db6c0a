/**
 * Verifying data against a sealed file's Merkle tree (the kernel's
 * fs/verity/verify.c), and reading the tree back with its unstored blocks
 * filled in (read_metadata.c).
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
import { createBlockHasher, type BlockHasher } from './hash-algs.js';
import { computeMerkleTreeParams, type MerkleTreeParams } from './params.js';
import type { VerityOps } from './verity-ops.js';
import type { Wasm } from '../wasm/index.js';

/** Bytes of verified tree blocks a verifier keeps unless told otherwise. */
const VERIFIED_CACHE_BYTES = 8 << 20;

/**
 * Where a verifier reads tree blocks: a filesystem's `VerityOps`, or any
 * reader of a stored tree laid out as `fsverity digest --out-merkle-tree`
 * writes it. Nothing it returns is believed before its parent vouches for it.
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
 * Verifies a sealed file's data against its Merkle tree (see the module
 * comment). Made by `MerkleVerifier.create` from a validated descriptor and
 * the filesystem's `VerityOps`. `verifyData` and `verifyDataAt` resolve when
 * every Merkle block given matches and reject with EIO naming the block and
 * level when one does not (or when reading a tree block fails); `readTree`
 * gives the stored tree's bytes with unstored blocks filled in. Holds WASM
 * memory until `dispose`.
 */
export class MerkleVerifier {
  readonly tree: MerkleTreeParams;
  /** Per level: the digest an all-zero subtree has at that level's entries. */
  private readonly zeroDigests: Uint8Array[] = [];
  private readonly verified = new Map<number, Uint8Array>();
  private readonly maxVerified: number;

  private constructor(
    readonly descriptor: VerityDescriptor,
    private readonly hasher: BlockHasher,
    private readonly ops: MerkleTreeSource,
    /** Names the file in error messages. */
    private readonly what: string,
    cacheBytes: number,
  ) {
    this.tree = computeMerkleTreeParams(descriptor.params, descriptor.dataSize);
    this.maxVerified = Math.max(4, Math.floor(cacheBytes / this.tree.blockSize));
    const ds = this.tree.digestSize;
    this.zeroDigests.push(hasher.zeroBlockDigest);
    for (let l = 1; l < this.tree.numLevels; l++) {
      const block = new Uint8Array(this.tree.blockSize);
      for (let i = 0; i < this.tree.hashesPerBlock; i++) block.set(this.zeroDigests[l - 1]!, i * ds);
      const d = new Uint8Array(ds);
      hasher.hashBlocks(block, 1, d, 0);
      this.zeroDigests.push(d);
    }
  }

  /**
   * A verifier for the file described by a validated `descriptor`, reading
   * its tree through `ops`. The third argument is the file's name in error
   * messages, or the options.
   */
  static async create(descriptor: VerityDescriptor, ops: MerkleTreeSource, opts: string | MerkleVerifierOptions = {}): Promise<MerkleVerifier> {
    const o = typeof opts === 'string' ? { what: opts } : opts;
    const p = descriptor.params;
    const hasher = await createBlockHasher(p.algorithm, p.salt, p.blockSize);
    return new MerkleVerifier(descriptor, hasher, ops, o.what ?? 'file', o.cacheBytes ?? VERIFIED_CACHE_BYTES);
  }

  dispose(): void {
    this.hasher.dispose();
    this.verified.clear();
  }

  /** Entries (digests) held by level `level` of the tree. */
  private entries(level: number): number {
    return level === 0 ? this.tree.dataBlocks : this.tree.levelBlocks[level - 1]!;
  }

  /** The block an unstored (level, index) stands for. */
  private synthesize(level: number, index: number): Uint8Array {
    const t = this.tree;
    const block = new Uint8Array(t.blockSize);
    const n = Math.min(t.hashesPerBlock, this.entries(level) - index * t.hashesPerBlock);
    for (let i = 0; i < n; i++) block.set(this.zeroDigests[level]!, i * t.digestSize);
    return block;
  }

  private digest(block: Uint8Array): Uint8Array {
    const d = new Uint8Array(this.tree.digestSize);
    this.hasher.hashBlocks(block, 1, d, 0);
    return d;
  }

  private mismatch(what: string, level: number | 'data', expected: Uint8Array, actual: Uint8Array): Error {
    const where = level === 'data' ? 'against its level-0 hash' : `at tree level ${level}`;
    return fail(
      'EIO',
      `fs-verity: ${what} of ${this.what} fails verification ${where}: expected ${this.tree.algorithm.name}:${toHex(expected)}, got ${toHex(actual)}`,
    );
  }

  /** Tree block (level, index), verified, from the cache or read and checked up to a trusted block. */
  private async treeBlock(level: number, index: number): Promise<Uint8Array> {
    const t = this.tree;
    const key = t.levelStart[level]! + index;
    const hit = this.verified.get(key);
    if (hit) {
      this.verified.delete(key);
      this.verified.set(key, hit);
      return hit;
    }
    let block = await this.ops.readMetadata(key * t.blockSize, t.blockSize);
    if (block.length !== t.blockSize) throw fail('EIO', `fs-verity: tree block ${key} of ${this.what} is cut short (${block.length} bytes)`);
    if (allZero(block)) block = this.synthesize(level, index);
    const actual = this.digest(block);
    let expected: Uint8Array;
    if (level === t.numLevels - 1) {
      expected = this.descriptor.rootHash;
    } else {
      const parent = await this.treeBlock(level + 1, Math.floor(index / t.hashesPerBlock));
      const at = (index % t.hashesPerBlock) * t.digestSize;
      expected = parent.subarray(at, at + t.digestSize);
    }
    if (!equal(expected, actual)) throw this.mismatch(`tree block ${index}`, level, expected, actual);
    this.verified.set(key, block);
    if (this.verified.size > this.maxVerified) this.verified.delete(this.verified.keys().next().value!);
    return block;
  }

  private checkBlocks(first: number, count: number): void {
    if (!Number.isInteger(count) || first < 0 || first + count > this.tree.dataBlocks) {
      throw fail('EINVAL', `fs-verity: data blocks ${first}..${first + count} are outside the ${this.tree.dataBlocks} blocks of ${this.what}`);
    }
  }

  /**
   * Verify `count` data blocks from data block `first`: `data` holds them
   * back to back, the last one zero-padded past the data size. EIO naming
   * the block, the level and both hashes on a mismatch.
   */
  async verifyData(first: number, data: Uint8Array, count = data.length / this.tree.blockSize): Promise<void> {
    this.checkBlocks(first, count);
    const digests = new Uint8Array(count * this.tree.digestSize);
    this.hasher.hashBlocks(data, count, digests, 0);
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
    const digests = new Uint8Array(count * this.tree.digestSize);
    if (this.hasher.hashBlocksAt?.(wasm, ptr, count, digests, 0) !== true) return false;
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
    if (digests.length !== count * this.tree.digestSize) throw fail('EINVAL', `${count} blocks need ${count * this.tree.digestSize} bytes of digests, not ${digests.length}`);
    await this.checkDigests(first, count, digests);
  }

  /** The digest of an all-zero data block under this file's salt. */
  get zeroBlockDigest(): Uint8Array {
    return this.zeroDigests[0]!;
  }

  /** Compare the digests of data blocks first.. with their level-0 entries. */
  private async checkDigests(first: number, count: number, digests: Uint8Array): Promise<void> {
    const t = this.tree;
    for (let j = 0; j < count; j++) {
      const b = first + j;
      const actual = digests.subarray(j * t.digestSize, (j + 1) * t.digestSize);
      let expected: Uint8Array;
      if (t.numLevels === 0) {
        expected = this.descriptor.rootHash;
      } else {
        const leaf = await this.treeBlock(0, Math.floor(b / t.hashesPerBlock));
        const at = (b % t.hashesPerBlock) * t.digestSize;
        expected = leaf.subarray(at, at + t.digestSize);
      }
      if (!equal(expected, actual)) throw this.mismatch(`data block ${b}`, 'data', expected, actual);
    }
  }

  /**
   * The stored tree as `fsverity digest --out-merkle-tree` writes it, with
   * unstored blocks filled in; pread semantics (short at the end). Blocks
   * are returned as read (and synthesized), not verified.
   */
  async readTree(offset: number, length: number): Promise<Uint8Array> {
    const t = this.tree;
    const end = Math.min(t.treeSize, offset + length);
    if (offset >= end) return new Uint8Array(0);
    const out = await this.ops.readMetadata(offset, end - offset);
    const bs = t.blockSize;
    for (let k = Math.floor(offset / bs); k * bs < end; k++) {
      const a = Math.max(k * bs, offset);
      const z = Math.min((k + 1) * bs, end);
      let level = 0;
      while (level + 1 < t.numLevels && k < t.levelStart[level]!) level++;
      const whole = a === k * bs && z === (k + 1) * bs ? out.subarray(a - offset, z - offset) : await this.ops.readMetadata(k * bs, bs);
      if (allZero(whole)) {
        const s = this.synthesize(level, k - t.levelStart[level]!);
        out.set(s.subarray(a - k * bs, z - k * bs), a - offset);
      }
    }
    return out;
  }
}
