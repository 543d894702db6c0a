/**
 * The page cache: a volume-wide `PageCache` (byte budget, reclaim, pressure
 * writeback callback) and one `AddressSpace` per inode holding its folios,
 * with the readahead policy beside its state.
 */
export { PageCache, DEFAULT_CACHE_BYTES } from './cache.js';
export type { PageCacheOptions, PressureCallback } from './cache.js';
export { AddressSpace, DEFAULT_MAX_FOLIO_SIZE } from './address-space.js';
export type { AddressSpaceOptions } from './address-space.js';
export { Folio, PAGE_SIZE, PAGE_SHIFT } from './folio.js';
export { newReadaheadState, ondemandReadahead, readaheadMarkerHit, readaheadOrder } from './readahead.js';
export type { ReadaheadLimits, ReadaheadState } from './readahead.js';
