/**
 * iomap-verity/iomap: the iomap layer for filesystem authors.
 *
 * A filesystem implements `IomapOps` (what is at this offset) and
 * `IomapWritebackOps` (where dirty data goes), gives each inode an
 * `AddressSpace` from a shared `PageCache`, and calls the entry points here:
 * `iomapBufferedRead`, `iomapBufferedWrite`, `iomapZeroRange`,
 * `iomapTruncate`, `iomapWritepages`, `iomapFsync`, and for fs-verity
 * `iomapFsverityWrite` with metadata placed at `fsverityMetadataOffset`.
 */
export * from './types.js';
export { IOMAP_MAX_END, iomapIter, iomapIterate, iomapIterAdvance, iomapLength, newIomapIter } from './iter.js';
export type { IomapIterState } from './iter.js';
export { iomapBufferedRead, iomapReadFolio, iomapReadahead } from './buffered-read.js';
export type { IomapReadOptions } from './buffered-read.js';
export {
  iomapBufferedWrite,
  iomapFsverityWrite,
  iomapTruncate,
  iomapZeroRange,
  pagecacheIsizeExtended,
} from './buffered-write.js';
export { iomapFsync, iomapWritepages } from './writeback.js';
export type { IomapWritebackOptions, IomapWritebackResult } from './writeback.js';
export { IOEND_MAX_BYTES } from './ioend.js';
export {
  emitTrace,
  formatIomapFlags,
  formatIomapType,
  formatTraceEvent,
  iomapTraceRing,
  iomapTraceSubscribe,
} from './trace.js';
export type { IomapTraceEvent, IomapTraceSubscriber } from './trace.js';
export { fsverityMetadataOffset } from './verity-offset.js';
export { PageCache, AddressSpace, Folio, PAGE_SIZE, DEFAULT_CACHE_BYTES, DEFAULT_MAX_FOLIO_SIZE } from '../pagecache/index.js';
export type { PageCacheOptions, AddressSpaceOptions, PressureCallback } from '../pagecache/index.js';
