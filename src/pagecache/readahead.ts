/**
 * Readahead policy and state (the kernel's mm/readahead.c and its
 * file_ra_state), in pages: how large the next window is, where the marker
 * that starts it early sits, and which folio order a window uses. iomap's
 * readahead (src/iomap/buffered-read.ts) asks here what to read and reads it.
 */
import { PAGE_SIZE } from './folio.js';

/** Readahead state (the kernel's file_ra_state), in pages. */
export interface ReadaheadState {
  /** First page of the current window. */
  start: number;
  /** Pages in the window. */
  size: number;
  /** Pages from the end of the window where the next window is started early. */
  asyncSize: number;
  /** Page index the previous read ended on, to spot sequential reads. */
  prevIndex: number;
  /** Folio order readahead used last; it grows by two per window, as in the kernel. */
  order: number;
}

/** What the policy needs to know of the mapping it reads into (an AddressSpace is one). */
export interface ReadaheadLimits {
  /** Smallest folio order of the mapping. */
  readonly minOrder: number;
  /** Largest folio order of the mapping. */
  readonly maxOrder: number;
  /** The cache the mapping's folios count against. */
  readonly cache: { readonly budget: number };
}

/** The state of a file nobody has read yet. */
export function newReadaheadState(): ReadaheadState {
  return { start: 0, size: 0, asyncSize: 0, prevIndex: -1, order: 0 };
}

const RA_MIN_MAX_PAGES = 32; // 128 KiB, the kernel's default window
const RA_LARGE_REQ_PAGES = 4096; // large requests may read up to 16 MiB at once

/** Largest window for a read of `reqPages`: the default, more for large reads, never over a quarter of the cache. */
function raMaxPages(m: ReadaheadLimits, reqPages: number): number {
  const base = Math.max(RA_MIN_MAX_PAGES, 1 << m.maxOrder);
  const budgetPages = Math.max(1, Math.floor(m.cache.budget / 4 / PAGE_SIZE));
  return Math.min(Math.max(base, Math.min(reqPages, RA_LARGE_REQ_PAGES)), Math.max(1 << m.minOrder, budgetPages));
}

/** First window for a read of `req` pages (get_init_ra_size). */
function initRaSize(req: number, max: number): number {
  let n = 1;
  while (n < req) n *= 2;
  if (n <= max / 32) n *= 4;
  else if (n <= max / 4) n *= 2;
  else n = max;
  return Math.min(n, max);
}

/** Next window after one of `cur` pages (get_next_ra_size). */
function nextRaSize(cur: number, max: number): number {
  return Math.min(max, cur < max / 16 ? 4 * cur : 2 * cur);
}

/** Whether a cache hit on page `index` is the marker that starts the next readahead window early. */
export function readaheadMarkerHit(ra: ReadaheadState, index: number): boolean {
  return ra.asyncSize !== 0 && index === ra.start + ra.size - ra.asyncSize;
}

/**
 * The readahead decision for a read of pages [index, index+req) that missed
 * the cache (`hit` false) or hit it (page_cache_sync_ra / page_cache_async_ra):
 * moves `ra` to the window to read next, pages [ra.start, ra.start+ra.size),
 * and returns true, or returns false (nothing changes) for a hit that is not
 * the marker.
 */
export function ondemandReadahead(ra: ReadaheadState, m: ReadaheadLimits, index: number, req: number, hit: boolean): boolean {
  const max = raMaxPages(m, req);
  if (hit) {
    if (!readaheadMarkerHit(ra, index)) return false;
    ra.start += ra.size;
    ra.size = nextRaSize(ra.size, max);
    ra.asyncSize = ra.size;
  } else if (ra.size > 0 && (index === ra.prevIndex + 1 || (index >= ra.start && index <= ra.start + ra.size))) {
    ra.start = index;
    ra.size = nextRaSize(ra.size, max);
    ra.asyncSize = ra.size;
  } else {
    ra.start = index;
    ra.size = initRaSize(req, max);
    ra.asyncSize = ra.size > req ? ra.size - req : 0;
    ra.order = 0;
  }
  if (hit || ra.start !== index || ra.asyncSize === ra.size) {
    // Sequential windows end on a boundary of the largest folio they can
    // hold, so the next window starts aligned and can use folios that large;
    // otherwise a stream settles at whatever alignment its first window had.
    const align = 1 << Math.min(m.maxOrder, Math.floor(Math.log2(ra.size)));
    const end = ra.start + ra.size;
    const down = end - (end % align);
    ra.size = (down > ra.start ? down : down + align) - ra.start;
    ra.asyncSize = Math.min(ra.asyncSize, ra.size);
  }
  return true;
}

/**
 * The folio order for a readahead batch of `pages` pages (page_cache_ra_order):
 * two more than last time, at most the batch and the mapping allow, at
 * least the mapping's smallest; remembered in `ra` for the next batch.
 */
export function readaheadOrder(ra: ReadaheadState, m: ReadaheadLimits, pages: number): number {
  const order = Math.max(m.minOrder, Math.min(m.maxOrder, ra.order + 2, Math.floor(Math.log2(Math.max(1, pages)))));
  ra.order = order;
  return order;
}
