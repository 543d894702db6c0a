/**
 * The standalone fs-verity digest: data in, the same digest, root hash,
 * descriptor and (on request) Merkle tree that `fsverity digest` computes.
 * Browser-safe: no Node modules here (the file variant lives in
 * digest-file.ts).
 */
import { fail, isUint8Array, throwIfAborted } from '../errors.js';
import { computeFileDigest, encodeDescriptor, formatDigest } from './descriptor.js';
import type { HashAlgorithmName } from './hash-algs.js';
import { computeMerkleTreeParams, validateDigestParams, type VerityParams, type VerityParamsOptions } from './params.js';
import { MerkleTreeBuilder, type MerkleBlockSink, type MerkleTreeResult } from './tree.js';
import { choosePool, POOL_CHUNK_BYTES, type LeafHashPool } from './pool.js';
import { feedLeafRun, JobWindow } from './pool-feed.js';

/** Options of `fsverityDigest`: the parameters, and whether to return the tree. */
export interface FsverityDigestOptions extends VerityParamsOptions {
  /** Also return the Merkle tree as `fsverity digest --out-merkle-tree` writes it. */
  merkleTree?: boolean;
  /**
   * Hash on worker threads (worker_threads in Node, Web Workers in a
   * browser; SHA-256 or SHA-512, blocks of 1 KiB to 64 KiB): `true` always, `false`
   * never; by default for a Uint8Array of 64 MiB or more, or of 8 MiB or
   * more and any stream once the workers are running. One thread where
   * there are no workers or a single core.
   */
  parallel?: boolean;
  /** Stops the digest: it rejects with ECANCELED and returns nothing (no tree, no descriptor). */
  signal?: AbortSignal;
  /**
   * Called as the input is consumed, with the bytes so far and the total
   * when it is known (a Uint8Array; undefined for streams).
   */
  onProgress?: (done: number, total: number | undefined) => void;
}

/** What `fsverityDigest` and `fsverityDigestFile` return. */
export interface FsverityDigestResult {
  algorithm: HashAlgorithmName;
  /** The file digest: hash of the descriptor. */
  digest: Uint8Array;
  /** `<algorithm>:<hex digest>`, as `fsverity digest` prints it. */
  formatted: string;
  rootHash: Uint8Array;
  /** The 256-byte descriptor, as `fsverity digest --out-descriptor` writes it. */
  descriptor: Uint8Array;
  /** Bytes of data digested. */
  dataSize: number;
  /** The stored tree (levels root first), when `merkleTree` was asked for; empty for files of at most one block. */
  merkleTree?: Uint8Array;
}

/** Inputs `fsverityDigest` takes. */
export type DigestInput = Uint8Array | AsyncIterable<Uint8Array> | Iterable<Uint8Array> | ReadableStream<Uint8Array>;

/**
 * Compute the fs-verity digest of `input`: one byte array, or a stream of
 * chunks split anywhere. Parameters are checked as `fsverity digest` checks
 * them (EINVAL otherwise). Memory: one block per tree level plus one
 * partial data block, unless `merkleTree` asks for the whole tree.
 */
export async function fsverityDigest(input: DigestInput, opts?: FsverityDigestOptions): Promise<FsverityDigestResult> {
  const params = validateDigestParams(opts);
  throwIfAborted(opts?.signal, 'fsverityDigest');
  const collector = opts?.merkleTree ? new TreeCollector() : undefined;
  const builder = await MerkleTreeBuilder.create(params, { sink: collector?.sink });
  let tree: MerkleTreeResult;
  try {
    const choice = await choosePool(params, isUint8Array(input) ? input.length : undefined, opts?.parallel);
    // Jobs carry (transfer) their bytes, so a pool whose workers cannot start
    // (a Content-Security-Policy refusing blob: workers, a sandbox without
    // Worker) must be known before the first job, while the input is still
    // whole: such a pool is passed over and this thread hashes instead.
    const chunks = watched(chunksOf(input), opts, isUint8Array(input) ? input.length : undefined);
    if (choice && (await choice.pool.ready().then(() => true, () => false))) await feedBlocksPooled(builder, chunks, choice.pool);
    else await feedBlocks(builder, chunks, (run) => builder.addBlocks(run));
    throwIfAborted(opts?.signal, 'fsverityDigest');
    tree = await builder.finish();
  } finally {
    builder.dispose();
  }
  const result = await finishDigest(params, tree);
  if (collector) result.merkleTree = collector.assemble(params, tree.dataSize);
  return result;
}

/** Build the descriptor and file digest from a finished tree. */
export async function finishDigest(params: VerityParams, tree: MerkleTreeResult): Promise<FsverityDigestResult> {
  const descriptor = encodeDescriptor(params, tree.dataSize, tree.rootHash);
  const digest = await computeFileDigest(params.algorithm, descriptor);
  return {
    algorithm: params.algorithm.name,
    digest,
    formatted: formatDigest(params.algorithm, digest),
    rootHash: tree.rootHash,
    descriptor,
    dataSize: tree.dataSize,
  };
}

/**
 * Cut a stream of arbitrary chunks into runs of whole blocks for `onRun`,
 * carrying partial blocks between chunks; the final partial block goes to
 * `builder.addBlocks`, which zero-pads it. A run aliases the caller's chunk
 * or an internal buffer: it is only valid during the call.
 */
export async function feedBlocks(
  builder: MerkleTreeBuilder,
  chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  onRun: (run: Uint8Array) => Promise<void>,
  /** Called before the final partial block goes to the builder. */
  beforeTail?: () => Promise<void>,
): Promise<void> {
  const bs = builder.params.blockSize;
  let pending: Uint8Array | undefined;
  let pendingLen = 0;
  for await (const chunk of chunks) {
    if (!isUint8Array(chunk)) {
      throw fail('EINVAL', `fsverityDigest input yielded ${chunk === null ? 'null' : typeof chunk}, expected Uint8Array chunks`);
    }
    let off = 0;
    if (pendingLen > 0) {
      const take = Math.min(bs - pendingLen, chunk.length);
      pending!.set(chunk.subarray(0, take), pendingLen);
      pendingLen += take;
      off = take;
      if (pendingLen < bs) continue;
      await onRun(pending!);
      pendingLen = 0;
    }
    const whole = Math.floor((chunk.length - off) / bs) * bs;
    if (whole > 0) await onRun(chunk.subarray(off, off + whole));
    off += whole;
    if (off < chunk.length) {
      pending ??= new Uint8Array(bs);
      pending.set(chunk.subarray(off));
      pendingLen = chunk.length - off;
    }
  }
  if (pendingLen > 0) {
    await beforeTail?.();
    await builder.addBlocks(pending!.subarray(0, pendingLen));
  }
}

/**
 * feedBlocks with the level-0 hashing on the pool: runs of whole blocks
 * are copied into job buffers of up to one pool job, kept in flight a few
 * per worker, and their digests go to the builder in order (before the
 * final partial block, which this thread hashes).
 */
async function feedBlocksPooled(
  builder: MerkleTreeBuilder,
  chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  pool: LeafHashPool,
): Promise<void> {
  const { blockSize: bs, salt } = builder.params;
  const algorithm = builder.params.algorithm.name;
  const window = new JobWindow(pool);
  let job: Uint8Array | undefined;
  let fill = 0;
  const takeOne = async (): Promise<void> => feedLeafRun(builder, await window.takeOldest()!);
  const send = async (): Promise<void> => {
    if (fill === 0) return;
    // The job's bytes are transferred: a buffer of exactly its size.
    const data = fill === job!.length ? job! : job!.slice(0, fill);
    window.start(0, pool.hashBytes(data, bs, salt, algorithm));
    job = undefined;
    fill = 0;
    while (window.full) await takeOne();
  };
  const drain = async (): Promise<void> => {
    await send();
    while (window.length > 0) await takeOne();
  };
  try {
    await feedBlocks(
      builder,
      chunks,
      async (run) => {
        for (let off = 0; off < run.length; ) {
          job ??= new Uint8Array(POOL_CHUNK_BYTES);
          const n = Math.min(POOL_CHUNK_BYTES - fill, run.length - off);
          job.set(run.subarray(off, off + n), fill);
          fill += n;
          off += n;
          if (fill === POOL_CHUNK_BYTES) await send();
        }
      },
      drain,
    );
    await drain();
  } finally {
    await window.settle();
  }
}

function isReadableStream(x: unknown): x is ReadableStream<Uint8Array> {
  return typeof x === 'object' && x !== null && typeof (x as ReadableStream).getReader === 'function';
}

/** Every accepted input as a sequence of chunks. */
/** Bytes of a Uint8Array input handed on at a time when its caller watches (progress, cancellation). */
const WATCH_BYTES = 4 << 20;

/**
 * `chunks` as they are consumed, checking `opts.signal` and reporting
 * `opts.onProgress` before each; a single large array is cut into views
 * of WATCH_BYTES so both happen as it is hashed. Unchanged when nobody watches.
 */
function watched(
  chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  opts: FsverityDigestOptions | undefined,
  total: number | undefined,
): AsyncIterable<Uint8Array> | Iterable<Uint8Array> {
  const signal = opts?.signal;
  const onProgress = opts?.onProgress;
  if (!signal && !onProgress) return chunks;
  return (async function* () {
    let done = 0;
    for await (const chunk of chunks) {
      const pieces = isUint8Array(chunk) && chunk.length > WATCH_BYTES ? Math.ceil(chunk.length / WATCH_BYTES) : 1;
      for (let i = 0; i < pieces; i++) {
        throwIfAborted(signal, 'fsverityDigest');
        const piece = pieces === 1 ? chunk : chunk.subarray(i * WATCH_BYTES, (i + 1) * WATCH_BYTES);
        yield piece;
        done += isUint8Array(piece) ? piece.length : 0;
        onProgress?.(done, total);
      }
    }
  })();
}

function chunksOf(input: DigestInput): AsyncIterable<Uint8Array> | Iterable<Uint8Array> {
  if (isUint8Array(input)) return [input];
  if (isReadableStream(input)) return readStream(input);
  if (input && (typeof (input as AsyncIterable<Uint8Array>)[Symbol.asyncIterator] === 'function'
    || typeof (input as Iterable<Uint8Array>)[Symbol.iterator] === 'function')) {
    return input as AsyncIterable<Uint8Array>;
  }
  throw fail('EINVAL', 'fsverityDigest takes a Uint8Array, an (async) iterable of Uint8Array, or a ReadableStream of Uint8Array');
}

/** Not every browser makes ReadableStream async-iterable: read it by hand. */
async function* readStream(stream: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = stream.getReader();
  let ended = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) {
        ended = true;
        return;
      }
      yield value;
    }
  } finally {
    // Stopped early (bad chunk, failed hashing): tell the source we are done.
    if (!ended) await reader.cancel().catch(() => undefined);
    reader.releaseLock();
  }
}

/**
 * Keeps the tree blocks a builder emits and lays them out root level first
 * once the data size (hence the tree's shape) is known.
 */
export class TreeCollector {
  private readonly levels: Uint8Array[][] = [];
  readonly sink: MerkleBlockSink = (level, index, block) => {
    (this.levels[level] ??= [])[index] = block.slice();
  };

  assemble(params: VerityParams, dataSize: number): Uint8Array {
    const shape = computeMerkleTreeParams(params, dataSize);
    const out = new Uint8Array(shape.treeSize);
    for (let l = 0; l < shape.numLevels; l++) {
      const blocks = this.levels[l] ?? [];
      for (let i = 0; i < blocks.length; i++) out.set(blocks[i]!, (shape.levelStart[l]! + i) * params.blockSize);
    }
    return out;
  }
}
