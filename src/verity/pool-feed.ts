/**
 * The one scheduler of pool jobs: jobs are started ahead of the thread
 * that consumes them, a few per worker, and consumed strictly in the order
 * they were started, so a Merkle tree builder gets its level-0 digests in
 * file order. Every user (fsverityDigest of bytes in memory,
 * fsverityDigestFile, sealing on a FileDevice) keeps its own idea of what
 * a job is and goes through `JobWindow` for the rest.
 *
 * A job whose blocks were all zero becomes a run of zero blocks
 * (`feedLeafRun`), so the builder collapses it to precomputed digests at
 * every level above instead of hashing anything.
 */
import type { LeafHashPool, LeafRun } from './pool.js';
import { POOL_CHUNK_BYTES } from './pool.js';
import type { HashAlgorithmName } from './hash-algs.js';

/** What the feeder needs of a builder (MerkleTreeBuilder has both). */
export interface LeafDigestSink {
  /** Append `count` level-0 digests, packed in `digests`. */
  addLeafDigests(digests: Uint8Array, count: number): Promise<void>;
  /** Append `count` all-zero data blocks. */
  addZeroBlocks(count: number): Promise<void>;
}

/** Hand one job's answer to `sink`: its digests, or a run of zero blocks when every block was zero. */
export function feedLeafRun(sink: LeafDigestSink, run: LeafRun): Promise<void> {
  return run.digests ? sink.addLeafDigests(run.digests, run.blocks) : sink.addZeroBlocks(run.blocks);
}

/**
 * Pool jobs in flight, oldest first, each under the key its starter gave it
 * (a step number, a block number). At most `size` are out: enough that
 * every worker has its next job queued while the consuming thread is busy
 * with the levels above. A job that fails is rejected in its turn; one
 * never taken (after an earlier failure) is not an unhandled rejection.
 */
export class JobWindow<K = number> {
  readonly size: number;
  private readonly jobs: { key: K; job: Promise<LeafRun> }[] = [];

  constructor(pool: LeafHashPool) {
    this.size = pool.threads * 2 + 1;
  }

  /** Jobs out. */
  get length(): number {
    return this.jobs.length;
  }

  /** True when no more jobs should be started until one is taken. */
  get full(): boolean {
    return this.jobs.length >= this.size;
  }

  /** Add a started job; keys must come in the order the jobs will be taken. */
  start(key: K, job: Promise<LeafRun>): void {
    job.catch(() => undefined);
    this.jobs.push({ key, job });
  }

  /** The oldest job, when it is the one for `key` (else undefined: that key has no job). */
  take(key: K): Promise<LeafRun> | undefined {
    if (this.jobs.length === 0 || this.jobs[0]!.key !== key) return undefined;
    return this.jobs.shift()!.job;
  }

  /** The oldest job, if any. */
  takeOldest(): Promise<LeafRun> | undefined {
    return this.jobs.shift()?.job;
  }

  /**
   * Wait for every job still out, ignoring their results: on failure the
   * jobs still out may read a file or the caller's device, which must not
   * be closed (and its descriptor number reused) under them.
   */
  async settle(): Promise<void> {
    await Promise.allSettled(this.jobs.map((j) => j.job));
    this.jobs.length = 0;
  }
}

/**
 * Hash whole blocks `first` to `end` (exclusive) of `blockSize` bytes of
 * the open file `fd` on `pool`'s workers, and feed their digests to `sink`
 * in order. `onProgress` gets the bytes of the file fed so far (counted
 * from its start) after each job; `algorithm` is the hash (SHA-256 when
 * not given). Rejects with the first job's error (`PoolShortReadError`, an
 * EIO, when the file shrank) once the jobs still out have finished; their
 * results are dropped. `dmFormat` hashes in dm-verity's framing instead of
 * fs-verity's (the salt unpadded, after (0) or before (1) each block;
 * SHA-256 only).
 */
export async function feedLeavesFromPool(
  pool: LeafHashPool,
  fd: number,
  first: number,
  end: number,
  blockSize: number,
  salt: Uint8Array,
  sink: LeafDigestSink,
  onProgress?: (bytesDone: number) => void,
  algorithm: HashAlgorithmName = 'sha256',
  dmFormat?: 0 | 1,
): Promise<void> {
  const per = POOL_CHUNK_BYTES / blockSize;
  const window = new JobWindow(pool);
  let next = first;
  const fill = (): void => {
    for (; next < end && !window.full; ) {
      const n = Math.min(per, end - next);
      window.start(next, pool.hashFileBlocks(fd, next * blockSize, n, blockSize, salt, algorithm, dmFormat));
      next += n;
    }
  };
  let fed = first;
  fill();
  try {
    for (let job = window.takeOldest(); job; job = window.takeOldest()) {
      const run = await job;
      fill();
      await feedLeafRun(sink, run);
      fed += run.blocks;
      onProgress?.(fed * blockSize);
    }
  } finally {
    await window.settle();
  }
}
