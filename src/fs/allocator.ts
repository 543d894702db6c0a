/**
 * The block allocator: free space over [dataStart, deviceBlocks).
 *
 * Free space is a sorted list of free runs. Three rules shape it:
 * - Contiguous first: a request is served from one run at or after a hint
 *   when one is big enough, so a file written in order lands in order.
 * - Reservations: a buffered write into a hole reserves its blocks when it
 *   dirties the page cache (delalloc), and fails with ENOSPC *then*, as XFS
 *   does (`xfs_bmapi_reserve_delalloc`), never later at writeback when the
 *   caller has gone. `reserve` counts; `allocate(.., true)` consumes.
 * - Freed blocks wait for two commits: blocks released by truncate or
 *   remove are still referenced by the last committed metadata, so handing
 *   them to another file before the next commit would let a crash show that
 *   file's bytes through the old metadata (XFS's "busy extents"). And after
 *   that commit the one before it is still on the device, in the other
 *   superblock slot, as what `Volume.open` falls back to when the newest is
 *   damaged: the blocks are safe to overwrite only once a second commit has
 *   replaced it. So they sit in `pending` until `committed()`, then in
 *   `cooling` until the next `committed()`.
 */
import { fail } from '../errors.js';

/** A run of device blocks. */
/** A run of `blocks` device blocks from block `start`. */
export interface BlockRun {
  start: number;
  blocks: number;
}

/**
 * The block allocator of the reference filesystem: free runs, delayed
 * allocation reservations, and blocks freed since the last commit, which
 * stay unusable until the commit that forgets them is durable (so a crash
 * never finds a committed extent pointing at blocks reused meanwhile).
 * `allocate` and `reserve` throw ENOSPC when the space is not there; nothing
 * here does I/O.
 */
export class Allocator {
  /** Sorted, merged, non-overlapping free runs. */
  private free: BlockRun[] = [];
  private pending: BlockRun[] = [];
  /** Free in the newest commit, still used by the previous one. */
  private cooling: BlockRun[] = [];
  private freeCount = 0;
  private pendingCount = 0;
  private coolingCount = 0;
  private reservedCount = 0;

  /**
   * Everything in [dataStart, deviceBlocks) is free except `used` (the runs of
   * every committed extent) and `fallback` (the runs of the older commit
   * still on the device), which cool until the second `committed()`.
   */
  constructor(
    readonly dataStart: number,
    readonly deviceBlocks: number,
    used: Iterable<BlockRun> = [],
    fallback: Iterable<BlockRun> = [],
  ) {
    if (!(Number.isSafeInteger(dataStart) && Number.isSafeInteger(deviceBlocks) && dataStart >= 0 && dataStart <= deviceBlocks)) {
      throw fail('EINVAL', `allocator range [${dataStart}, ${deviceBlocks}) is not valid`);
    }
    const sorted = [...used].filter((r) => r.blocks > 0).sort((a, b) => a.start - b.start);
    let at = dataStart;
    for (const r of sorted) {
      if (r.start < at || r.start + r.blocks > deviceBlocks) {
        throw fail('EINVAL', `used run [${r.start}, +${r.blocks}) overlaps another or lies outside [${dataStart}, ${deviceBlocks})`);
      }
      if (r.start > at) this.free.push({ start: at, blocks: r.start - at });
      at = r.start + r.blocks;
    }
    if (at < deviceBlocks) this.free.push({ start: at, blocks: deviceBlocks - at });
    this.freeCount = this.free.reduce((s, r) => s + r.blocks, 0);
    // The older commit's blocks that are free in the newest one: taken out of
    // the free runs now, handed back by the second commit from here.
    const old = [...fallback].filter((r) => r.blocks > 0 && r.start >= dataStart && r.start + r.blocks <= deviceBlocks);
    for (const r of old) {
      for (const piece of this.freeParts(r)) {
        const idx = lowerRun(this.free, piece.start);
        this.take(idx, piece.start, piece.blocks);
        this.pending.push(piece);
        this.pendingCount += piece.blocks;
      }
    }
    this.committed();
  }

  /** The parts of `run` that are in the free runs right now. */
  private freeParts(run: BlockRun): BlockRun[] {
    const out: BlockRun[] = [];
    const end = run.start + run.blocks;
    for (let i = lowerRun(this.free, run.start); i < this.free.length; i++) {
      const f = this.free[i];
      if (f.start >= end) break;
      const s = Math.max(f.start, run.start);
      const e = Math.min(f.start + f.blocks, end);
      if (e > s) out.push({ start: s, blocks: e - s });
    }
    return out;
  }

  /** Blocks free right now (reserved ones included, pending ones not). */
  get freeBlocks(): number {
    return this.freeCount;
  }

  /** Blocks a new reservation may still take. */
  get availableBlocks(): number {
    return this.freeCount - this.reservedCount;
  }

  /** Blocks reserved for delalloc and not yet allocated. */
  get reservedBlocks(): number {
    return this.reservedCount;
  }

  /** Blocks freed since the last commit (the next commit must record that). */
  get uncommittedFreedBlocks(): number {
    return this.pendingCount;
  }

  /** Blocks freed and not yet reusable: they become free over the next two commits. */
  get pendingBlocks(): number {
    return this.pendingCount + this.coolingCount;
  }

  /** Reserve `n` blocks for a delalloc write; ENOSPC when they cannot all be backed. */
  reserve(n: number): void {
    if (n > this.availableBlocks) {
      throw fail(
        'ENOSPC',
        `no space left on device: ${n} blocks needed, ${this.availableBlocks} available` +
          (this.pendingBlocks > 0 ? ` (${this.pendingBlocks} more become free over the next two syncs)` : ''),
      );
    }
    this.reservedCount += n;
  }

  /** Give back `n` reserved blocks that will not be allocated (truncated delalloc). */
  unreserve(n: number): void {
    if (n > this.reservedCount) throw fail('EINVAL', `unreserve ${n} blocks but only ${this.reservedCount} are reserved`);
    this.reservedCount -= n;
  }

  /**
   * Allocate up to `want` contiguous blocks, preferring a run at or after
   * `hint`; returns fewer when no free run is that long (the caller loops).
   * With `reserved`, the blocks come out of earlier reservations.
   * ENOSPC when nothing can be allocated.
   */
  allocate(want: number, hint: number, reserved = false): BlockRun {
    if (!(Number.isSafeInteger(want) && want > 0)) throw fail('EINVAL', `allocate ${want} blocks`);
    if (!reserved && want > this.availableBlocks) want = this.availableBlocks;
    if (want <= 0 || this.free.length === 0) {
      throw fail('ENOSPC', `no space left on device: ${this.freeCount} blocks free, ${this.reservedCount} reserved`);
    }
    let idx = -1;
    // 1. A run containing the hint or after it, big enough from its usable start.
    for (let i = lowerRun(this.free, hint); i < this.free.length; i++) {
      const r = this.free[i];
      const from = Math.max(r.start, hint);
      if (r.start + r.blocks - from >= want) {
        idx = i;
        break;
      }
    }
    // 2. Any run big enough (first fit), 3. else the largest run.
    if (idx < 0) idx = this.free.findIndex((r) => r.blocks >= want);
    if (idx < 0) {
      idx = 0;
      for (let i = 1; i < this.free.length; i++) if (this.free[i].blocks > this.free[idx].blocks) idx = i;
    }
    const r = this.free[idx];
    const start = r.start <= hint && hint < r.start + r.blocks && r.start + r.blocks - hint >= want ? hint : r.start;
    const blocks = Math.min(want, r.start + r.blocks - start);
    this.take(idx, start, blocks);
    if (reserved) this.reservedCount -= Math.min(blocks, this.reservedCount);
    return { start, blocks };
  }

  /** Release a run; it becomes allocatable after the next `committed()`. */
  release(start: number, blocks: number): void {
    if (blocks <= 0) return;
    if (start < this.dataStart || start + blocks > this.deviceBlocks) {
      throw fail('EINVAL', `release of [${start}, +${blocks}) outside the data area`);
    }
    this.pending.push({ start, blocks });
    this.pendingCount += blocks;
  }

  /**
   * The metadata was committed: blocks released before the commit before
   * this one may be reused (no commit on the device refers to them any
   * more); those released before this one cool until the next.
   */
  committed(): void {
    for (const r of this.cooling) this.insertFree(r);
    this.freeCount += this.coolingCount;
    this.cooling = this.pending;
    this.coolingCount = this.pendingCount;
    this.pending = [];
    this.pendingCount = 0;
  }

  /** Free runs (copies; tests). */
  freeRuns(): BlockRun[] {
    return this.free.map((r) => ({ ...r }));
  }

  private take(idx: number, start: number, blocks: number): void {
    const r = this.free[idx];
    const end = r.start + r.blocks;
    const pieces: BlockRun[] = [];
    if (start > r.start) pieces.push({ start: r.start, blocks: start - r.start });
    if (start + blocks < end) pieces.push({ start: start + blocks, blocks: end - start - blocks });
    this.free.splice(idx, 1, ...pieces);
    this.freeCount -= blocks;
  }

  private insertFree(run: BlockRun): void {
    const i = lowerRun(this.free, run.start);
    const prev = this.free[i - 1];
    const next = this.free[i];
    if ((prev && prev.start + prev.blocks > run.start) || (next && run.start + run.blocks > next.start) || (next && next.start < run.start)) {
      throw fail('EIO', `allocator: double free of [${run.start}, +${run.blocks})`);
    }
    const joinPrev = prev !== undefined && prev.start + prev.blocks === run.start;
    const joinNext = next !== undefined && run.start + run.blocks === next.start;
    if (joinPrev && joinNext) {
      prev.blocks += run.blocks + next.blocks;
      this.free.splice(i, 1);
    } else if (joinPrev) prev.blocks += run.blocks;
    else if (joinNext) {
      next.start = run.start;
      next.blocks += run.blocks;
    } else this.free.splice(i, 0, { ...run });
  }
}

/** Index of the first run that ends after `block` (the one containing it, or the next). */
function lowerRun(runs: BlockRun[], block: number): number {
  let lo = 0;
  let hi = runs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (runs[mid].start + runs[mid].blocks <= block) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
