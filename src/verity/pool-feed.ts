/**
 * Feeding a Merkle tree builder from the leaf-hashing pool: the whole
 * blocks of a file are cut into pool-sized jobs, kept in flight a few per
 * worker, and their digests are handed to the builder strictly in file
 * order. A job whose blocks were all zero becomes a run of zero blocks, so
 * the builder collapses it to precomputed digests at every level above
 * instead of hashing anything.
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

/**
 * Hash whole blocks `first` to `end` (exclusive) of `blockSize` bytes of
 * the open file `fd` on `pool`'s workers, and feed their digests to `sink`
 * in order. `onProgress` gets the bytes of the file fed so far (counted
 * from its start) after each job; `algorithm` is the hash (SHA-256 when
 * not given). Rejects with the first job's error (EIO
 * when the file shrank) once the jobs still out have finished; their
 * results are dropped.
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
): Promise<void> {
  const per = POOL_CHUNK_BYTES / blockSize;
  // Enough jobs in flight that every worker has its next one queued while
  // the main thread is busy with the upper levels.
  const window = pool.threads * 2 + 1;
  const inFlight: Promise<LeafRun>[] = [];
  let next = first;
  const submit = (): void => {
    const n = Math.min(per, end - next);
    const p = pool.hashFileBlocks(fd, next * blockSize, n, blockSize, salt, algorithm);
    // A job that fails after an earlier one already failed is never awaited.
    p.catch(() => undefined);
    inFlight.push(p);
    next += n;
  };
  let fed = first;
  while (next < end && inFlight.length < window) submit();
  try {
    while (inFlight.length > 0) {
      const run = await inFlight.shift()!;
      if (next < end) submit();
      if (run.digests) await sink.addLeafDigests(run.digests, run.blocks);
      else await sink.addZeroBlocks(run.blocks);
      fed += run.blocks;
      onProgress?.(fed * blockSize);
    }
  } finally {
    // On failure, jobs still out read `fd`: let them finish before the
    // caller closes it (its number could be reused for another file).
    await Promise.allSettled(inFlight);
  }
}
