/**
 * The reference filesystem: `Volume` and `File` over any `BlockDevice`,
 * with the pieces a filesystem author may want to look at (extent map,
 * allocator, metadata store).
 */
export { Volume } from './volume.js';
export type { VolumeFormatOptions, VolumeOpenOptions, VolumeSpace, RenameOptions } from './volume.js';
export { File } from './file.js';
export type { AllocateOptions, EnableVerityOptions, FileIoOptions } from './file.js';
export { MemoryMetaStore } from './meta-store.js';
export type { MetaStore } from './meta-store.js';
export { ExtentMap } from './extent-map.js';
export type { Extent, ExtentState, Lookup } from './extent-map.js';
export { Allocator } from './allocator.js';
export type { BlockRun } from './allocator.js';
export type { VerityState } from './inode.js';
export { INODE_FLAG_VERITY } from './meta.js';
export type { VolumeMeta, InodeRecord, ExtentRecord } from './meta.js';
