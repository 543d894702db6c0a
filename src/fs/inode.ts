/**
 * The reference filesystem's in-memory inode: what iomap sees (`IomapInode`:
 * number, i_size, block size, page cache, device) plus what the filesystem
 * keeps (name, flags, extent map, verity state).
 *
 * Verity metadata (the Merkle tree and the descriptor) lives past EOF in
 * the same extent map, at two offsets (the sizing policy of docs/DESIGN-NOTES.md):
 * on the device side, in the extent map, from `roundUp(i_size, 65536)`
 * (`deviceMetaStart`); in the page cache from
 * `fsverityMetadataOffset(i_size, maxFolioSize)` (`cacheMetaStart`). The
 * iomap ops translate between the two with `cacheToDevice`.
 */
import { PAGE_SIZE, type AddressSpace } from '../pagecache/index.js';
import type { IomapBlockDevice, IomapInode } from '../iomap/types.js';
import { fsverityMetadataOffset } from '../iomap/verity-offset.js';
import { ExtentMap } from './extent-map.js';
import type { InodeRecord } from './meta.js';
import { INODE_FLAG_VERITY } from './meta.js';

/** Alignment of verity metadata in the file's device-side offsets (fixed by the format). */
export const VERITY_META_ALIGN = 65536;

/**
 * - `none`: an ordinary file;
 * - `building`: `enableVerity` is writing the tree (a second enable is EBUSY);
 * - `sealed`: the tree and descriptor are durable; the file is read-only.
 */
export type VerityState = 'none' | 'building' | 'sealed';

/** The volume's dirty-inode list as an inode sees it (DirtyInodes in dirty-list.ts): told when its metadata or its data gets dirty or clean. */
export interface InodeDirtyList {
  noteMeta(inode: Inode, dirty: boolean): void;
  noteData(inode: Inode, dirty: boolean): void;
}

/** `n` rounded up to a multiple of `to`. */
export function roundUp(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

/**
 * One file in memory: what iomap needs of an inode and what the filesystem
 * keeps about it. Mutated only under the volume lock; committed through
 * `toRecord` by the volume.
 */
export class Inode implements IomapInode {
  /** i_size; iomap updates it on extending writes and truncate. */
  size: number;
  flags: number;
  verity: VerityState;
  readonly extents: ExtentMap;
  /** Set by `Volume.remove`: every later operation through a `File` gets ENOENT. */
  removed = false;
  /** An enableVerity call is queued or running (a second one gets EBUSY). */
  enablePending = false;
  private metaDirtyFlag = false;
  /** The volume's dirty-inode lists, told of every change of `metaDirty` (undefined once the inode is removed). */
  dirtyList: InodeDirtyList | undefined;
  /** i_size in the newest commit (0 for a file never committed). */
  committedSize: number;

  constructor(
    readonly ino: number,
    public name: string,
    readonly blockSize: number,
    readonly mapping: AddressSpace,
    readonly device: IomapBlockDevice,
    /** The page cache's largest folio, for `cacheMetaStart`. */
    readonly maxFolioSize: number,
    rec?: InodeRecord,
  ) {
    this.size = rec?.size ?? 0;
    this.committedSize = this.size;
    this.flags = rec?.flags ?? 0;
    this.verity = this.flags & INODE_FLAG_VERITY ? 'sealed' : 'none';
    this.extents = rec ? ExtentMap.fromRecords(rec.extents) : new ExtentMap();
  }

  /** Size or extents changed since the last commit; setting it keeps the inode on (or off) the volume's dirty list. */
  get metaDirty(): boolean {
    return this.metaDirtyFlag;
  }

  set metaDirty(dirty: boolean) {
    if (dirty === this.metaDirtyFlag) return;
    this.metaDirtyFlag = dirty;
    this.dirtyList?.noteMeta(this, dirty);
  }

  /** Device-side file offset where verity metadata starts. */
  get deviceMetaStart(): number {
    return roundUp(this.size, VERITY_META_ALIGN);
  }

  /** Page-cache offset where verity metadata starts (iomap's `fsverityMetadataOffset`). */
  get cacheMetaStart(): number {
    return fsverityMetadataOffset(this.size, this.maxFolioSize);
  }

  /** Whether page-cache position `pos` is verity metadata (only once verity is being built or sealed). */
  isMetaPos(pos: number): boolean {
    return this.verity !== 'none' && pos >= this.cacheMetaStart;
  }

  /** Translate a page-cache position of verity metadata to its device-side file offset. */
  cacheToDevice(pos: number): number {
    return pos - this.cacheMetaStart + this.deviceMetaStart;
  }

  /**
   * The size a commit may record now. A smaller or equal size is always
   * safe. A larger one only once the data under it is on the device: while
   * any of it is dirty in the cache or delalloc, another file's fsync would
   * otherwise make the new size durable over blocks that a crash leaves as
   * zeros (XFS's old "NULL files after crash"; XFS too moves the on-disk
   * size only as writeback completes). Until then the last committed size.
   */
  committableSize(): number {
    if (this.size <= this.committedSize) return this.size;
    if (this.mapping.dirtyFolios(Math.floor(this.committedSize / PAGE_SIZE)).length > 0) return this.committedSize;
    const fromBlock = Math.floor(this.committedSize / this.blockSize);
    if (this.extents.extents().some((e) => e.state === 'delalloc' && e.fileBlock + e.blocks > fromBlock)) return this.committedSize;
    return this.size;
  }

  /** The committable record. */
  toRecord(): InodeRecord {
    return {
      ino: this.ino,
      name: this.name,
      size: this.committableSize(),
      flags: (this.flags & ~INODE_FLAG_VERITY) | (this.verity === 'sealed' ? INODE_FLAG_VERITY : 0),
      extents: this.extents.toRecords(),
    };
  }
}
