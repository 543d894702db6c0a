/**
 * The streaming Merkle tree builder.
 *
 * Data blocks go in (JS bytes, WASM memory, or "N blocks of zeros" for
 * holes); their digests fill a pending block of level 0, and each pending
 * block that fills up is hashed into the level above and handed to a sink.
 * Only one pending block per level is held, so a tree over any file size
 * is built in `levels * blockSize` bytes; where the finished blocks go is
 * the sink's business (a file at known offsets, memory, or a filesystem's
 * fs-verity write path).
 *
 * The format is fs-verity's: the last data block and each level's last
 * block are zero-padded; the root hash is the hash of the single top block;
 * one data block means no stored tree and the root hash is that block's
 * hash; no data means a root hash of zeros.
 */
import { fail, MAX_OFFSET, isUint8Array } from '../errors.js';
import type { Wasm } from '../wasm/index.js';
import { createBlockHasher, type BlockHasher } from './hash-algs.js';
import type { VerityParams } from './params.js';

/** Data hashed per call when a tree block holds few digests (see hashLeaves). */
const LEAF_RUN_BYTES = 256 << 10;

/**
 * Receives each finished tree block. `level` 0 holds data block hashes;
 * `index` counts blocks within the level from 0, so the block belongs at
 * byte `(levelStart[level] + index) * blockSize` of the stored tree (see
 * `computeMerkleTreeParams`). `block` is only valid during the call (copy
 * it to keep it) and must not be modified: it may be shared. `zeroHashes` is true when the block is nothing but the digest
 * of an all-zero subtree repeated (a filesystem may leave such blocks as
 * holes and synthesize them on read). The builder waits for a returned
 * promise before going on.
 */
export type MerkleBlockSink = (
  level: number,
  index: number,
  block: Uint8Array,
  zeroHashes: boolean,
) => void | Promise<void>;

/** What `MerkleTreeBuilder.finish` reports. */
export interface MerkleTreeResult {
  readonly rootHash: Uint8Array;
  /** Bytes of data hashed (whole blocks plus the final partial one). */
  readonly dataSize: number;
  /** Blocks emitted per level, level 0 first; empty for files of at most one block. */
  readonly levelBlocks: readonly number[];
}

interface PendingLevel {
  /** One block being filled with digests of the level below. */
  readonly buf: Uint8Array;
  /** Digests in `buf`. */
  filled: number;
  /** Blocks of this level already handed to the sink. */
  emitted: number;
  /**
   * True once `buf` holds a digest other than this level's all-zero-subtree
   * digest. Tracked as digests arrive so that flagging zero blocks never
   * needs the zero block itself (a gigabyte at the largest block size).
   */
  mixed: boolean;
}

/**
 * Builds a Merkle tree from data blocks streamed in order. Methods must not
 * be called concurrently (await each one).
 */
export class MerkleTreeBuilder {
  readonly params: VerityParams;
  private readonly hasher: BlockHasher;
  private readonly ownsHasher: boolean;
  private readonly sink: MerkleBlockSink | undefined;
  private readonly ds: number;
  private readonly hpb: number;
  private readonly levels: PendingLevel[] = [];
  /** Per level: the digest of an all-zero subtree at that level, and a block of them. */
  private readonly zeroDigests: Uint8Array[] = [];
  private readonly zeroBlocks: Uint8Array[] = [];
  private dataBlocks = 0;
  private dataBytes = 0;
  private ended = false;
  private finished = false;
  private tail: Uint8Array | undefined;
  /** Digests of a run of data blocks, for small block sizes (see hashLeaves). */
  private scratch: Uint8Array | undefined;

  private constructor(params: VerityParams, hasher: BlockHasher, ownsHasher: boolean, sink?: MerkleBlockSink) {
    this.params = params;
    this.hasher = hasher;
    this.ownsHasher = ownsHasher;
    this.sink = sink;
    this.ds = params.algorithm.digestSize;
    this.hpb = params.blockSize / this.ds;
    this.zeroDigests.push(hasher.zeroBlockDigest);
  }

  /**
   * A builder for checked `params` (from `validateDigestParams` or
   * `validateSealParams`). Finished tree blocks go to `sink` when given.
   * `hasher` lets a caller share a hasher it owns (it must match `params`).
   */
  static async create(
    params: VerityParams,
    opts?: { sink?: MerkleBlockSink; hasher?: BlockHasher },
  ): Promise<MerkleTreeBuilder> {
    const given = opts?.hasher;
    if (given && (given.blockSize !== params.blockSize || given.algorithm !== params.algorithm)) {
      throw fail('EINVAL', 'the hasher given to MerkleTreeBuilder does not match its parameters');
    }
    const hasher = given ?? (await createBlockHasher(params.algorithm, params.salt, params.blockSize));
    return new MerkleTreeBuilder(params, hasher, !given, opts?.sink);
  }

  /** Blocks of data taken so far. */
  get blocksAdded(): number {
    return this.dataBlocks;
  }

  /**
   * Add data: whole blocks, except that the last call of a stream may end
   * in a partial block, which is zero-padded and ends the data (adding more
   * afterwards is EINVAL).
   */
  async addBlocks(data: Uint8Array): Promise<void> {
    this.checkOpen();
    const bs = this.params.blockSize;
    const whole = Math.floor(data.length / bs);
    await this.hashLeaves(whole, (first, n) => data.subarray(first * bs, (first + n) * bs));
    const rest = data.length - whole * bs;
    if (rest > 0) {
      const last = (this.tail ??= new Uint8Array(bs));
      last.set(data.subarray(whole * bs));
      last.fill(0, rest);
      await this.hashLeaves(1, () => last);
      this.dataBytes -= bs - rest;
      this.ended = true;
    }
  }

  /**
   * Add `count` whole blocks that live in WASM memory at `ptr`. The view is
   * taken afresh for each run of blocks, so a sink that allocates (and
   * grows memory) does not invalidate it.
   */
  async addBlocksAt(wasm: Wasm, ptr: number, count: number): Promise<void> {
    this.checkOpen();
    const bs = this.params.blockSize;
    if (!Number.isSafeInteger(count) || count < 0) throw fail('EINVAL', `invalid block count ${count}`);
    const inPlace = this.hasher.hashBlocksAt;
    await this.hashLeaves(count, (first, n) => wasm.bytes(ptr + first * bs, n * bs), inPlace
      ? (first, n, out, outOffset) => inPlace.call(this.hasher, wasm, ptr + first * bs, n, out, outOffset)
      : undefined);
  }

  /**
   * Add `count` whole data blocks hashed elsewhere (the worker pool of
   * pool.ts): their digests, packed back to back in `digests`, go into
   * level 0 as if the blocks had been hashed here. The caller vouches that
   * they were hashed with this builder's algorithm, salt and block size.
   */
  async addLeafDigests(digests: Uint8Array, count: number): Promise<void> {
    this.checkOpen();
    const ds = this.ds;
    if (!Number.isSafeInteger(count) || count < 0 || !isUint8Array(digests) || digests.length < count * ds) {
      throw fail('EINVAL', `addLeafDigests needs ${count} digests of ${ds} bytes, got ${digests?.length} bytes`);
    }
    await this.hashLeaves(count, () => digests.subarray(0, 0), (first, n, out, outOffset) => {
      out.set(digests.subarray(first * ds, (first + n) * ds), outOffset);
      return true;
    });
  }

  /**
   * Add `count` blocks of zeros without reading or hashing them: each
   * hashes as the zero block, and whole runs of them collapse to the
   * precomputed digest of an all-zero subtree at each level above.
   */
  async addZeroBlocks(count: number): Promise<void> {
    this.checkOpen();
    if (!Number.isSafeInteger(count) || count < 0) throw fail('EINVAL', `invalid count of zero blocks: ${count}`);
    if (count === 0) return;
    this.checkMore(count);
    this.dataBlocks += count;
    this.dataBytes += count * this.params.blockSize;
    await this.addZeroDigests(0, count);
  }

  /**
   * Finish the tree: pad and hash the pending block of every level and
   * return the root hash. The builder cannot be used afterwards.
   */
  async finish(): Promise<MerkleTreeResult> {
    this.checkOpen();
    this.finished = true;
    try {
      return await this.finishLevels();
    } finally {
      if (this.ownsHasher) this.hasher.dispose();
    }
  }

  private async finishLevels(): Promise<MerkleTreeResult> {
    const ds = this.ds;
    let rootHash = new Uint8Array(ds);
    if (this.dataBlocks === 1) {
      rootHash = this.levels[0]!.buf.slice(0, ds);
    } else if (this.dataBlocks > 1) {
      for (let l = 0; ; l++) {
        const level = this.levels[l]!;
        if (level.filled > 0) await this.flush(l);
        if (level.emitted === 1) {
          rootHash = this.levels[l + 1]!.buf.slice(0, ds);
          break;
        }
      }
    }
    const levelBlocks = this.dataBlocks > 1 ? this.levels.slice(0, -1).map((l) => l.emitted) : [];
    return { rootHash, dataSize: this.dataBytes, levelBlocks };
  }

  /** Release the hasher without finishing (after an error upstream). */
  dispose(): void {
    if (!this.finished && this.ownsHasher) this.hasher.dispose();
    this.finished = true;
  }

  private checkOpen(): void {
    if (this.finished) throw fail('EINVAL', 'this Merkle tree builder is already finished');
  }

  /** Refuse data after a short final block, and data past 2^53 bytes. */
  private checkMore(blocks: number): void {
    if (this.ended) throw fail('EINVAL', 'data added after a partial final block: only the last block may be short');
    if (this.dataBytes + blocks * this.params.blockSize > MAX_OFFSET) {
      throw fail('EFBIG', `data past ${MAX_OFFSET} bytes cannot be digested (offsets are exact only up to 2^53)`);
    }
  }

  private level(l: number): PendingLevel {
    let level = this.levels[l];
    if (!level) {
      level = { buf: new Uint8Array(this.params.blockSize), filled: 0, emitted: 0, mixed: false };
      this.levels[l] = level;
    }
    return level;
  }

  /**
   * Hash `count` data blocks into level 0. Each run of blocks is hashed in
   * one call: straight into the pending level-0 block when a block holds
   * many digests; through a scratch of digests when it holds few (small
   * Merkle blocks), so that a call is never made for just two blocks.
   */
  private async hashLeaves(
    count: number,
    view: (first: number, n: number) => Uint8Array,
    inPlace?: (first: number, n: number, out: Uint8Array, outOffset: number) => boolean,
  ): Promise<void> {
    if (count === 0) return;
    this.checkMore(count);
    const l0 = this.level(0);
    const ds = this.ds;
    const bs = this.params.blockSize;
    const run = Math.floor(LEAF_RUN_BYTES / bs);
    const batched = run > this.hpb;
    if (batched) this.scratch ??= new Uint8Array(run * ds);
    for (let done = 0; done < count; ) {
      const n = Math.min(count - done, batched ? run : this.hpb - l0.filled);
      const out = batched ? this.scratch! : l0.buf;
      const at = batched ? 0 : l0.filled * ds;
      // The view is taken right before hashing: a flush may have grown WASM memory.
      if (!inPlace?.(done, n, out, at)) this.hasher.hashBlocks(view(done, n), n, out, at);
      for (let j = 0; j < n; ) {
        const k = batched ? Math.min(n - j, this.hpb - l0.filled) : n;
        if (batched) l0.buf.set(this.scratch!.subarray(j * ds, (j + k) * ds), l0.filled * ds);
        if (!l0.mixed) l0.mixed = !allEqual(l0.buf, l0.filled * ds, k, this.zeroDigests[0]!);
        l0.filled += k;
        j += k;
        this.dataBlocks += k;
        this.dataBytes += k * bs;
        if (l0.filled === this.hpb) await this.flush(0);
      }
      done += n;
    }
  }

  /**
   * Hash the pending block of level `l` (zero-padding it) into level l+1
   * and give it to the sink; cascades when l+1 fills up.
   */
  private async flush(l: number): Promise<void> {
    const level = this.levels[l]!;
    const used = level.filled * this.ds;
    level.buf.fill(0, used);
    const up = this.level(l + 1);
    this.hasher.hashBlocks(level.buf, 1, up.buf, up.filled * this.ds);
    up.filled++;
    // A full block of zero-subtree digests hashes to the next level's
    // zero-subtree digest; anything else (a zero-padded block included) does not.
    const zero = used === level.buf.length && !level.mixed;
    up.mixed ||= !zero;
    const index = level.emitted++;
    level.filled = 0;
    level.mixed = false;
    if (this.sink) await this.sink(l, index, level.buf, zero);
    if (up.filled === this.hpb) await this.flush(l + 1);
  }

  /** Append `n` digests of all-zero subtrees to level `l`. */
  private async addZeroDigests(l: number, n: number): Promise<void> {
    const level = this.level(l);
    const zeroBlock = this.zeroBlock(l);
    while (n > 0) {
      if (level.filled > 0 || n < this.hpb) {
        const k = Math.min(n, this.hpb - level.filled);
        level.buf.set(zeroBlock.subarray(0, k * this.ds), level.filled * this.ds);
        level.filled += k;
        n -= k;
        if (level.filled === this.hpb) await this.flush(l);
      } else {
        // Whole blocks of zero digests: each is the same block, so emit it
        // as is and push its (precomputed) digest up as another zero run.
        const blocks = Math.floor(n / this.hpb);
        if (this.sink) {
          for (let i = 0; i < blocks; i++) await this.sink(l, level.emitted++, zeroBlock, true);
        } else {
          level.emitted += blocks;
        }
        this.zeroBlock(l + 1);
        await this.addZeroDigests(l + 1, blocks);
        n -= blocks * this.hpb;
      }
    }
  }

  /** The block of level `l` made of the all-zero-subtree digest repeated; computes digests lazily. */
  private zeroBlock(l: number): Uint8Array {
    for (let i = this.zeroBlocks.length; i <= l; i++) {
      const block = new Uint8Array(this.params.blockSize);
      const d = this.zeroDigests[i]!;
      for (let off = 0; off < block.length; off += d.length) block.set(d, off);
      this.zeroBlocks.push(block);
      const up = new Uint8Array(this.ds);
      this.hasher.hashBlocks(block, 1, up, 0);
      this.zeroDigests.push(up);
    }
    return this.zeroBlocks[l]!;
  }
}

/** True when the `n` digests at `buf[from]` all equal `d`. */
function allEqual(buf: Uint8Array, from: number, n: number, d: Uint8Array): boolean {
  for (let k = 0, at = from; k < n; k++, at += d.length) {
    for (let i = 0; i < d.length; i++) if (buf[at + i] !== d[i]) return false;
  }
  return true;
}
