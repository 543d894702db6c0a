/**
 * A file's extent map: which device blocks back which file blocks.
 *
 * Units are filesystem blocks. Extents are kept sorted by `fileBlock` and never
 * overlap; gaps between them are holes. Three states, as in XFS's incore
 * extent tree:
 * - `written`: on the device, reads return its bytes (IOMAP_MAPPED);
 * - `unwritten`: allocated (preallocation, or a writeback in flight) but reads
 *   as zeros until an ioend converts it (IOMAP_UNWRITTEN);
 * - `delalloc`: space reserved for dirty page-cache data, no device block yet
 *   (IOMAP_DELALLOC). Delalloc exists only in memory: `toRecords` leaves it out,
 *   so a committed `VolumeMeta` never refers to blocks that were not written.
 *
 * Neighbours of the same state that are contiguous on the device (and in the
 * file) are merged on every change, so the map stays as short as the layout.
 */
import { fail } from '../errors.js';
import type { ExtentRecord } from './meta.js';

/** What an extent's blocks hold: data on the device, allocated blocks that read as zeros, or a reservation with no blocks yet. */
export type ExtentState = 'written' | 'unwritten' | 'delalloc';

/** One extent. `devBlock` is -1 for delalloc. */
export interface Extent {
  fileBlock: number;
  blocks: number;
  devBlock: number;
  state: ExtentState;
}

/** What `lookup` finds at a block: an extent that covers it, or the hole up to the next extent. */
export type Lookup =
  | { kind: 'extent'; extent: Extent }
  /** A hole of `blocks` blocks from `fileBlock`; `blocks` is Infinity when no extent follows. */
  | { kind: 'hole'; fileBlock: number; blocks: number };

/**
 * A file's map from file blocks to device blocks: sorted, non-overlapping,
 * adjacent compatible extents merged. `insert` replaces whatever it
 * overlaps; `punch` removes a range and returns what it removed (the
 * caller gives the space back). EINVAL for ranges that are not whole
 * non-negative block numbers. In memory only: the volume commits it.
 */
export class ExtentMap {
  private ext: Extent[] = [];
  /**
   * Bumped by every change to the map (insert, punch, conversion): the
   * validity cookie of iomap mappings, so a buffered write can tell that
   * writeback allocated or converted blocks under it (xfs_iomap_valid).
   */
  seq = 0;

  /** Build from committed records (never delalloc). */
  static fromRecords(records: readonly ExtentRecord[]): ExtentMap {
    const m = new ExtentMap();
    for (const r of records) {
      m.insert({ fileBlock: r.fileBlock, blocks: r.blocks, devBlock: r.devBlock, state: r.unwritten ? 'unwritten' : 'written' });
    }
    return m;
  }

  /** Committable records: written and unwritten extents, delalloc left out. */
  toRecords(): ExtentRecord[] {
    return this.ext
      .filter((e) => e.state !== 'delalloc')
      .map((e) => ({ fileBlock: e.fileBlock, devBlock: e.devBlock, blocks: e.blocks, unwritten: e.state === 'unwritten' }));
  }

  /** A copy of all extents, in order (tests and debugging). */
  extents(): Extent[] {
    return this.ext.map((e) => ({ ...e }));
  }

  get count(): number {
    return this.ext.length;
  }

  /** Index of the first extent that ends after `fileBlock`. */
  private firstEndingAfter(fileBlock: number): number {
    let lo = 0;
    let hi = this.ext.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const e = this.ext[mid];
      if (e.fileBlock + e.blocks <= fileBlock) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** What is at `fileBlock`: the covering extent (a copy), or the hole up to the next extent. */
  lookup(fileBlock: number): Lookup {
    const i = this.firstEndingAfter(fileBlock);
    const e = this.ext[i];
    if (e !== undefined && e.fileBlock <= fileBlock) return { kind: 'extent', extent: { ...e } };
    return { kind: 'hole', fileBlock, blocks: e === undefined ? Infinity : e.fileBlock - fileBlock };
  }

  /** Extents overlapping [start, end), clipped to it (copies). */
  range(start: number, end: number): Extent[] {
    const out: Extent[] = [];
    if (end <= start) return out;
    for (let i = this.firstEndingAfter(start); i < this.ext.length; i++) {
      const e = this.ext[i];
      if (e.fileBlock >= end) break;
      out.push(clip(e, start, end));
    }
    return out;
  }

  /**
   * Remove [start, end) from the map, splitting extents at the edges. Returns
   * the removed pieces so the caller can free their blocks or release their
   * delalloc reservations.
   */
  punch(start: number, end: number): Extent[] {
    if (end <= start) return [];
    this.seq++;
    const i = this.firstEndingAfter(start);
    let j = i;
    const removed: Extent[] = [];
    const keep: Extent[] = [];
    for (; j < this.ext.length; j++) {
      const e = this.ext[j];
      if (e.fileBlock >= end) break;
      removed.push(clip(e, start, end));
      if (e.fileBlock < start) keep.push(clip(e, e.fileBlock, start));
      const eEnd = e.fileBlock + e.blocks;
      if (eEnd > end) keep.push(clip(e, end, eEnd));
    }
    this.ext.splice(i, j - i, ...keep);
    return removed;
  }

  /**
   * Map [e.fileBlock, +e.blocks) to `e`, replacing whatever was there, and
   * return the replaced pieces (as `punch` does).
   */
  insert(e: Extent): Extent[] {
    check(e);
    const removed = this.punch(e.fileBlock, e.fileBlock + e.blocks);
    const i = this.firstEndingAfter(e.fileBlock);
    this.ext.splice(i, 0, { ...e });
    this.mergeAround(i);
    return removed;
  }

  /**
   * Turn unwritten blocks in [start, end) into written ones (ioend completion).
   * Other states in the range are left alone. Returns the number of blocks converted.
   */
  convertUnwritten(start: number, end: number): number {
    let n = 0;
    for (const piece of this.range(start, end)) {
      if (piece.state !== 'unwritten') continue;
      this.insert({ ...piece, state: 'written' });
      n += piece.blocks;
    }
    return n;
  }

  /** Last mapped block + 1 (0 when empty). */
  get endBlock(): number {
    const last = this.ext[this.ext.length - 1];
    return last === undefined ? 0 : last.fileBlock + last.blocks;
  }

  private mergeAround(i: number): void {
    // Merge with the right neighbour first so that index i stays valid.
    if (i + 1 < this.ext.length && mergeable(this.ext[i], this.ext[i + 1])) {
      this.ext[i].blocks += this.ext[i + 1].blocks;
      this.ext.splice(i + 1, 1);
    }
    if (i > 0 && mergeable(this.ext[i - 1], this.ext[i])) {
      this.ext[i - 1].blocks += this.ext[i].blocks;
      this.ext.splice(i, 1);
    }
  }
}

function mergeable(a: Extent, b: Extent): boolean {
  if (a.state !== b.state || a.fileBlock + a.blocks !== b.fileBlock) return false;
  return a.state === 'delalloc' || a.devBlock + a.blocks === b.devBlock;
}

function clip(e: Extent, start: number, end: number): Extent {
  const s = Math.max(start, e.fileBlock);
  const t = Math.min(end, e.fileBlock + e.blocks);
  return { fileBlock: s, blocks: t - s, devBlock: e.state === 'delalloc' ? -1 : e.devBlock + (s - e.fileBlock), state: e.state };
}

function check(e: Extent): void {
  const ok =
    Number.isSafeInteger(e.fileBlock) &&
    e.fileBlock >= 0 &&
    Number.isSafeInteger(e.blocks) &&
    e.blocks > 0 &&
    (e.state === 'delalloc' ? e.devBlock === -1 : Number.isSafeInteger(e.devBlock) && e.devBlock >= 0);
  if (!ok) throw fail('EINVAL', `invalid extent ${JSON.stringify(e)}`);
}
