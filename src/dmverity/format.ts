/**
 * `dmverityFormat`: the hash device `veritysetup format` writes, built in
 * one pass over the data in bounded memory.
 *
 * The data is read in 4 MiB pieces and hashed as it comes; every level
 * keeps one pending hash block, and a full block is written to its place
 * at once (the layout fixes every block's offset up front), then hashed
 * into the level above. A run of all-zero data blocks costs no hashing:
 * its hashes are one precomputed digest, a hash block full of them is one
 * precomputed block whose own hash is precomputed too, and so on up, so a
 * sparse image costs the reading of its zeros and the writing of its tree.
 * Memory: the read buffer plus one hash block per level.
 *
 * SHA-256 data blocks of a file go to the worker pool of src/verity (the
 * workers read the file themselves, in dm-verity's framing) when it pays:
 * from 8 MiB when the pool runs, from 64 MiB to start it; the upper levels
 * stay on this thread.
 */
import { fail } from '../errors.js';
import { createDmBlockHasher, type DmBlockHasher } from './hash.js';
import { openSource, type DmverityInput, type DmSource } from './io.js';
import { computeDmverityLayout, validateDmverityParams, type DmverityLayout, type DmverityParams, type DmverityParamsOptions } from './params.js';
import { encodeDmveritySuperblock } from './superblock.js';
import { feedLeavesFromPool } from '../verity/pool-feed.js';
import { leafHashPool, poolTakes, startedLeafHashPool, type LeafHashPool } from '../verity/pool.js';

/** Receives bytes of the hash device at their byte offset; the bytes are valid only during the call. */
export type DmverityHashSink = (offset: number, bytes: Uint8Array) => void | Promise<void>;

/** Options of `dmverityFormat`. */
export interface DmverityFormatOptions extends DmverityParamsOptions {
  /**
   * Where the hash device's bytes go (superblock and tree, each at its
   * offset). Without it the result carries the whole hash device in
   * `hashDevice`.
   */
  sink?: DmverityHashSink;
  /** Called after each piece of data is hashed, with bytes done and bytes to do. */
  onProgress?: (done: number, total: number) => void;
  /**
   * Hash a file's data blocks on the worker pool (default true): SHA-256,
   * data blocks of 1 KiB to 64 KiB, a path of at least 8 MiB when the
   * pool runs, 64 MiB to start it. Same bytes either way.
   */
  parallel?: boolean;
}

/** What `dmverityFormat` made: the root hash, the parameters (the superblock's fields) and the tree's shape. */
export interface DmverityFormatResult {
  readonly rootHash: Uint8Array;
  /** The root hash in lower-case hex, as veritysetup prints it. */
  readonly rootHashHex: string;
  readonly params: DmverityParams;
  readonly layout: DmverityLayout;
  /** The hash device from byte 0 to the end of the tree, when no sink was given. */
  readonly hashDevice?: Uint8Array;
}

/** Bytes of hex. */
export function dmverityHex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

/** The hash levels above the data: one pending block each, zero runs collapsed. */
export class DmverityTreeBuilder {
  private readonly pending: Uint8Array[] = [];
  private readonly fill: number[] = [];
  private readonly emitted: number[] = [];
  /** zeroDigest[i]: hash of a zero block one level below level i; zeroBlock[i]: a level-i block full of them. */
  private readonly zeroDigest: Uint8Array[] = [];
  private readonly zeroBlock: Uint8Array[] = [];
  private root: Uint8Array | undefined;

  constructor(
    readonly layout: DmverityLayout,
    private readonly hashHasher: DmBlockHasher,
    dataZeroDigest: Uint8Array,
    private readonly sink: DmverityHashSink,
  ) {
    const hbs = layout.params.hashBlockSize;
    this.zeroDigest.push(dataZeroDigest);
    for (let i = 0; i < layout.levels; i++) {
      this.pending.push(new Uint8Array(hbs));
      this.fill.push(0);
      this.emitted.push(0);
      const zb = new Uint8Array(hbs);
      for (let s = 0; s < layout.hashesPerBlock; s++) zb.set(this.zeroDigest[i]!, s * layout.slotSize);
      this.zeroBlock.push(zb);
      this.zeroDigest.push(hashHasher.hashBlock(zb));
    }
  }

  /** Add `count` digests (back to back in `digests`) to level `level`. */
  async addDigests(level: number, digests: Uint8Array, count: number): Promise<void> {
    const ds = this.layout.params.digestSize;
    if (level === this.layout.levels) {
      this.root = digests.slice(0, ds);
      return;
    }
    const per = this.layout.hashesPerBlock;
    const slot = this.layout.slotSize;
    const block = this.pending[level]!;
    for (let i = 0; i < count; i++) {
      block.set(digests.subarray(i * ds, (i + 1) * ds), this.fill[level]! * slot);
      if (++this.fill[level]! === per) await this.flush(level);
    }
  }

  /** Add `count` hashes of zero blocks (of the level below) to level `level`. */
  async addZeroRun(level: number, count: number): Promise<void> {
    if (level === this.layout.levels) {
      this.root = this.zeroDigest[level]!.slice();
      return;
    }
    const per = this.layout.hashesPerBlock;
    while (count > 0) {
      if (this.fill[level] === 0 && count >= per) {
        const k = Math.floor(count / per);
        await this.writeRepeated(level, k);
        count -= k * per;
        await this.addZeroRun(level + 1, k);
        continue;
      }
      const m = Math.min(count, per - this.fill[level]!);
      const block = this.pending[level]!;
      for (let i = 0; i < m; i++) block.set(this.zeroDigest[level]!, (this.fill[level]! + i) * this.layout.slotSize);
      this.fill[level]! += m;
      count -= m;
      if (this.fill[level] === per) await this.flush(level);
    }
  }

  private blockOffset(level: number): number {
    return (this.layout.levelStart[level]! + this.emitted[level]!) * this.layout.params.hashBlockSize;
  }

  private async flush(level: number): Promise<void> {
    const block = this.pending[level]!;
    await this.sink(this.blockOffset(level), block);
    this.emitted[level]!++;
    const d = this.hashHasher.hashBlock(block);
    block.fill(0);
    this.fill[level] = 0;
    await this.addDigests(level + 1, d, 1);
  }

  private async writeRepeated(level: number, k: number): Promise<void> {
    const hbs = this.layout.params.hashBlockSize;
    const per = Math.max(1, Math.min(k, Math.floor((1 << 20) / hbs)));
    const run = new Uint8Array(per * hbs);
    for (let i = 0; i < per; i++) run.set(this.zeroBlock[level]!, i * hbs);
    for (let done = 0; done < k; ) {
      const n = Math.min(per, k - done);
      await this.sink(this.blockOffset(level), run.subarray(0, n * hbs));
      this.emitted[level]! += n;
      done += n;
    }
  }

  /** Flush the partial blocks, bottom up; the root hash. */
  async finish(): Promise<Uint8Array> {
    for (let i = 0; i < this.layout.levels; i++) {
      if (this.fill[i]! > 0) await this.flush(i);
    }
    if (!this.root) throw fail('EIO', 'dm-verity tree ended without a root hash');
    return this.root;
  }
}

/**
 * Hash the data blocks of `source` from block `from` to `to` (exclusive)
 * into `each(level-0 digests, count, allZero)`, in pieces of the hasher's
 * staging size.
 */
export async function hashDataBlocks(
  source: DmSource,
  hasher: DmBlockHasher,
  from: number,
  to: number,
  each: (digests: Uint8Array, count: number, allZero: boolean, firstBlock: number) => Promise<void>,
  onProgress?: (done: number, total: number) => void,
): Promise<void> {
  const bs = hasher.blockSize;
  const digests = new Uint8Array(hasher.capacity * hasher.digestSize);
  for (let b = from; b < to; ) {
    const n = Math.min(hasher.capacity, to - b);
    source.readInto(b * bs, hasher.staging(n));
    const zeros = hasher.hashStaged(n, digests);
    await each(digests, n, zeros === n, b);
    b += n;
    onProgress?.(b * bs, to * bs);
  }
}

/**
 * Build the dm-verity hash device of `data` (a path or the bytes) exactly
 * as `veritysetup format` does with the same parameters: the superblock
 * at `hashOffset` (unless `superblock: false`), the tree top level first,
 * and the root hash. With a fixed `salt` and `uuid` the bytes are
 * identical to veritysetup's. Rejects with EINVAL for bad parameters
 * (naming the supported ones), ENOENT/EPERM/EIO when the data cannot be
 * read, EIO when it holds fewer than `dataBlocks` blocks, EFBIG when the
 * hash device would exceed 2 GiB and no `sink` was given to stream it.
 */
export async function dmverityFormat(data: DmverityInput, opts?: DmverityFormatOptions): Promise<DmverityFormatResult> {
  const source = await openSource(data, 'data device');
  try {
    const params = validateDmverityParams(opts, source.size, true);
    const layout = computeDmverityLayout(params);
    let image: Uint8Array | undefined;
    let sink = opts?.sink;
    if (!sink) {
      if (layout.hashDeviceSize > 2 ** 31) throw fail('EFBIG', `a hash device of ${layout.hashDeviceSize} bytes: pass a sink to stream it`);
      const img = new Uint8Array(layout.hashDeviceSize);
      image = img;
      sink = (offset, bytes) => img.set(bytes, offset);
    } else if (typeof sink !== 'function') throw fail('EINVAL', 'sink must be a function (offset, bytes)');
    const dataHasher = await createDmBlockHasher(params.hashAlgorithm, params.salt, params.format, params.dataBlockSize);
    let hashHasher: DmBlockHasher | undefined;
    try {
      hashHasher = await createDmBlockHasher(params.hashAlgorithm, params.salt, params.format, params.hashBlockSize, 1);
      let rootHash: Uint8Array;
      if (layout.levels === 0) {
        const block = new Uint8Array(params.dataBlockSize);
        source.readInto(0, block);
        rootHash = dataHasher.hashBlock(block);
      } else {
        const tree = new DmverityTreeBuilder(layout, hashHasher, dataHasher.zeroDigest, sink);
        const pool = await poolFor(params, source, opts);
        if (pool) {
          const bs = params.dataBlockSize;
          const leaves = { addLeafDigests: (d: Uint8Array, n: number) => tree.addDigests(0, d, n), addZeroBlocks: (n: number) => tree.addZeroRun(0, n) };
          await feedLeavesFromPool(pool, source.fd!, 0, params.dataBlocks, bs, params.salt, leaves, (done) => opts?.onProgress?.(done, params.dataBlocks * bs), 'sha256', params.format);
        } else {
          await hashDataBlocks(
            source,
            dataHasher,
            0,
            params.dataBlocks,
            (digests, n, allZero) => (allZero ? tree.addZeroRun(0, n) : tree.addDigests(0, digests, n)),
            opts?.onProgress,
          );
        }
        rootHash = await tree.finish();
      }
      if (params.superblock) await sink(params.hashOffset, encodeDmveritySuperblock(params));
      return { rootHash, rootHashHex: dmverityHex(rootHash), params, layout, hashDevice: image };
    } finally {
      dataHasher.dispose();
      hashHasher?.dispose();
    }
  } finally {
    source.close();
  }
}

/** Below this much data the pool is not worth a job; a cold pool starts only from POOL_START bytes (a worker boots in ~45 ms). */
const POOL_MIN = 8 << 20;
const POOL_START = 64 << 20;

async function poolFor(params: DmverityParams, source: DmSource, opts: DmverityFormatOptions | undefined): Promise<LeafHashPool | undefined> {
  const bytes = params.dataBlocks * params.dataBlockSize;
  // The pool's dm-verity kernel is SHA-256's; the block size rule is the pool's own.
  if (opts?.parallel === false || source.fd === undefined || params.hashAlgorithm !== 'sha256') return undefined;
  if (!poolTakes(params.hashAlgorithm, params.dataBlockSize) || bytes < POOL_MIN) return undefined;
  let pool = startedLeafHashPool();
  if (!pool && bytes >= POOL_START) pool = await leafHashPool();
  // Jobs queue while the workers boot (and keep them referenced, so the
  // process waits for them); waiting on ready() alone would not.
  return pool?.usable ? pool : undefined;
}
