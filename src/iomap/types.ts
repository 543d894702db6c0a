/**
 * The iomap contract: mapping types, flag bits, the `Iomap` record, the inode
 * a filesystem hands to iomap, and the operation tables a filesystem
 * implements (`IomapOps` for mapping lookups, `IomapWritebackOps` for
 * writeback), modelled on the kernel's `include/linux/iomap.h`.
 *
 * Who calls what: iomap calls the filesystem's ops; the filesystem calls
 * iomap's entry points (buffered read, write, zero, truncate, writeback).
 * Operations on one inode are serialised by the filesystem (the kernel's
 * i_rwsem); iomap only locks folios.
 *
 * These signatures are stable: later work extends them, never renames.
 */
import type { AddressSpace } from '../pagecache/index.js';

// ---------------------------------------------------------------------------
// Mapping types (iomap->type). The numbers are the kernel's.

/** No blocks allocated: reads as zeros, a write must allocate. */
export const IOMAP_HOLE = 0;
/** Delayed allocation: space reserved, blocks chosen at writeback. Reads as zeros. */
export const IOMAP_DELALLOC = 1;
/** Blocks allocated at `addr` and written: reads go to the device. */
export const IOMAP_MAPPED = 2;
/** Blocks allocated at `addr` but never written: reads as zeros, writeback converts them. */
export const IOMAP_UNWRITTEN = 3;
/** Data held by the filesystem itself (not used by the reference filesystem). */
export const IOMAP_INLINE = 4;

/** A mapping type: IOMAP_HOLE .. IOMAP_INLINE. */
export type IomapType =
  | typeof IOMAP_HOLE
  | typeof IOMAP_DELALLOC
  | typeof IOMAP_MAPPED
  | typeof IOMAP_UNWRITTEN
  | typeof IOMAP_INLINE;

/** Names of the mapping types, for traces and messages. */
export const IOMAP_TYPE_NAMES: readonly string[] = ['HOLE', 'DELALLOC', 'MAPPED', 'UNWRITTEN', 'INLINE'];

/** `addr` of a mapping that has no device address (HOLE, DELALLOC, INLINE). */
export const IOMAP_NULL_ADDR = -1;

// ---------------------------------------------------------------------------
// Mapping flags (iomap->flags), bit for bit as in the kernel with the seed
// patch applied.

/** Blocks were newly allocated by this begin(): nothing on the device to read. */
export const IOMAP_F_NEW = 1 << 0;
/** The inode has uncommitted metadata needed to reach this data (fdatasync must commit it). */
export const IOMAP_F_DIRTY = 1 << 1;
/** Blocks are shared with another file (reflink). */
export const IOMAP_F_SHARED = 1 << 2;
/** The mapping merges several extents (report only). */
export const IOMAP_F_MERGED = 1 << 3;
/** Buffer heads are in use (kept for bit compatibility; never set here). */
export const IOMAP_F_BUFFER_HEAD = 1 << 4;
/** The mapping is for extended attribute data (report only). */
export const IOMAP_F_XATTR = 1 << 5;
/** The mapping ends on a boundary: do not merge I/O across its end. */
export const IOMAP_F_BOUNDARY = 1 << 6;
/** Anonymous write: the filesystem chooses the address at submission. */
export const IOMAP_F_ANON_WRITE = 1 << 7;
/** Atomic write: the I/O must go to the device as one unit. */
export const IOMAP_F_ATOMIC_BIO = 1 << 8;
/** Block integrity metadata accompanies the I/O. */
export const IOMAP_F_INTEGRITY = 1 << 9;
/**
 * I/O to fs-verity metadata, which lives past i_size (the seed patch). Reads
 * are not zeroed past EOF, writes never change i_size, writeback does not skip
 * folios past EOF.
 */
export const IOMAP_F_FSVERITY = 1 << 10;
/** Reserved for the filesystem's own use; iomap never looks at it. */
export const IOMAP_F_PRIVATE = 1 << 12;
/** Set by iomap when a write changed i_size (the filesystem's end() sees it). */
export const IOMAP_F_SIZE_CHANGED = 1 << 14;
/** Set by the filesystem's end() or iomap when the mapping went stale: the iterator asks begin() again. */
export const IOMAP_F_STALE = 1 << 15;

/** Flag names for traces and messages, in bit order (the kernel's IOMAP_F_FLAGS_STRINGS). */
export const IOMAP_F_FLAG_NAMES: ReadonlyArray<readonly [number, string]> = [
  [IOMAP_F_NEW, 'NEW'],
  [IOMAP_F_DIRTY, 'DIRTY'],
  [IOMAP_F_SHARED, 'SHARED'],
  [IOMAP_F_MERGED, 'MERGED'],
  [IOMAP_F_BUFFER_HEAD, 'BH'],
  [IOMAP_F_XATTR, 'XATTR'],
  [IOMAP_F_BOUNDARY, 'BOUNDARY'],
  [IOMAP_F_ANON_WRITE, 'ANON_WRITE'],
  [IOMAP_F_ATOMIC_BIO, 'ATOMIC_BIO'],
  [IOMAP_F_INTEGRITY, 'INTEGRITY'],
  [IOMAP_F_FSVERITY, 'FSVERITY'],
  [IOMAP_F_PRIVATE, 'PRIVATE'],
  [IOMAP_F_SIZE_CHANGED, 'SIZE_CHANGED'],
  [IOMAP_F_STALE, 'STALE'],
];

// ---------------------------------------------------------------------------
// Operation flags: passed to begin()/end() to say what iomap is doing. No
// flag means a read. Bits 0..10 are the kernel's; bits 16 and up are ours.

/** Writing: the filesystem must return allocated or reserved (delalloc) space. */
export const IOMAP_WRITE = 1 << 0;
/** Zeroing a range: holes and unwritten extents may be returned as they are. */
export const IOMAP_ZERO = 1 << 1;
/** Reporting extents (fiemap-like): no allocation. */
export const IOMAP_REPORT = 1 << 2;
/** Mapping for a page fault (unused here, kept for bit compatibility). */
export const IOMAP_FAULT = 1 << 3;
/** Direct I/O (unused here, kept for bit compatibility). */
export const IOMAP_DIRECT = 1 << 4;
/** Do not block (unused here, kept for bit compatibility). */
export const IOMAP_NOWAIT = 1 << 5;
/** Only pure overwrites of written blocks are allowed. */
export const IOMAP_OVERWRITE_ONLY = 1 << 6;
/** Unsharing a shared range. */
export const IOMAP_UNSHARE = 1 << 7;
/** DAX (unused here, kept for bit compatibility). */
export const IOMAP_DAX = 1 << 8;
/** Atomic write. */
export const IOMAP_ATOMIC = 1 << 9;
/** Uncached buffered I/O. */
export const IOMAP_DONTCACHE = 1 << 10;
/**
 * Ours, not the kernel's: this request is for fs-verity metadata (from
 * `iomapFsverityWrite` or a metadata read). The filesystem maps the range in
 * its metadata area and should return `IOMAP_F_FSVERITY` mappings; iomap sets
 * that flag on what begin() returns if the filesystem did not.
 */
export const IOMAP_VERITY = 1 << 16;

// ---------------------------------------------------------------------------
// Records

/** One mapping: `length` bytes of the file from `offset` live as `type` at device byte `addr`. */
export interface Iomap {
  /** Device byte address of `offset`, or IOMAP_NULL_ADDR when there is none. */
  addr: number;
  /** File byte offset where the mapping starts. */
  offset: number;
  /** Bytes mapped. Must be > 0 and cover the position begin() was asked for. */
  length: number;
  /** IOMAP_HOLE .. IOMAP_INLINE. */
  type: IomapType;
  /** IOMAP_F_* bits. */
  flags: number;
  /** The filesystem's own data, passed back unchanged to end(). */
  private?: unknown;
  /**
   * Set by begin() for the filesystem's `iomapValid` (the kernel's
   * validity_cookie): typically the inode's extent-map sequence number at the
   * time of the lookup. iomap never interprets it.
   */
  validityCookie?: number;
}

/** What begin() returns. */
export interface IomapBeginResult {
  /** Where the operation reads from and, for a write, writes to. */
  iomap: Iomap;
  /**
   * For copy-on-write: where existing data is read from when it differs from
   * `iomap` (the kernel's srcmap). Absent, or of type HOLE with no flags,
   * means `iomap` is also the source.
   */
  srcmap?: Iomap;
}

/**
 * The block device iomap submits I/O to: the subset of src/device's
 * `BlockDevice` it uses (any BlockDevice satisfies it). Offsets and lengths
 * are multiples of `blockSize`; `read` fills `dst` and `write` writes `src`,
 * both views into WASM memory owned by iomap for the duration of the call.
 */
export interface IomapBlockDevice {
  /** Device block size in bytes. */
  readonly blockSize: number;
  /** Device size in bytes. */
  readonly size: number;
  /** Fill `dst` from device byte `offset`; reject (EIO) on failure. */
  read(offset: number, dst: Uint8Array): Promise<void> | void;
  /** Write `src` at device byte `offset`; reject (EIO) on failure. */
  write(offset: number, src: Uint8Array): Promise<void> | void;
  /** Make completed writes durable; reject (EIO) on failure. */
  flush(): Promise<void> | void;
}

/**
 * What a filesystem's inode looks like to iomap (the kernel's struct inode,
 * the parts iomap touches).
 */
export interface IomapInode {
  /** Inode number, for traces and messages. */
  readonly ino: number;
  /**
   * i_size in bytes. iomap writes it when a buffered write extends the file
   * (never for IOMAP_F_FSVERITY mappings) and on truncate; the filesystem may
   * implement it as an accessor to persist the change.
   */
  size: number;
  /** Filesystem block size in bytes: a power of two, 512 to 65536. */
  readonly blockSize: number;
  /** The inode's page cache (created by the filesystem from the volume's PageCache). */
  readonly mapping: AddressSpace;
  /** The device that `Iomap.addr` addresses. */
  readonly device: IomapBlockDevice;
}

/**
 * The mapping operations a filesystem implements (the kernel's
 * `struct iomap_ops`). Called by `iomapIter` for every read, write, zero and
 * truncate, with the filesystem's per-inode serialisation held by the
 * caller of the iomap entry point.
 */
export interface IomapOps {
  /**
   * Called by `iomapIter` before each step: return the mapping at `pos`,
   * covering up to `length` bytes (fewer is fine; it must cover `pos`). With
   * IOMAP_WRITE the filesystem allocates or reserves space (a HOLE is not an
   * acceptable answer; DELALLOC, MAPPED with IOMAP_F_NEW when just allocated,
   * or UNWRITTEN are). With IOMAP_VERITY the range is fs-verity metadata.
   * Throw an IomapVerityError (ENOSPC, EIO, ...) to fail the operation.
   */
  begin(
    inode: IomapInode,
    pos: number,
    length: number,
    flags: number,
  ): IomapBeginResult | Promise<IomapBeginResult>;
  /**
   * Called by `iomapIter` after each step, when present: `written` bytes of
   * the `length` asked from `pos` were processed (for a write: copied into
   * the page cache). A filesystem releases reservations it made for the part
   * not written here (the kernel's iomap_end). May set IOMAP_F_STALE on the
   * iomap to have the iterator map the rest again.
   */
  end?(
    inode: IomapInode,
    pos: number,
    length: number,
    written: number,
    flags: number,
    iomap: Iomap,
  ): void | Promise<void>;
  /**
   * Called by the buffered write and zero iterators, when present, after
   * each folio of a step is obtained, locked and out of writeback and before
   * anything is read into or copied to it (the kernel's
   * `iomap_write_ops->iomap_valid`). Getting the folio may have run pressure
   * writeback, which allocates delayed blocks and converts unwritten ones,
   * so the step's mapping may no longer say what is on the device; acting on
   * it would zero a block that holds data. Return false when the extent map
   * changed since begin() made `iomap` (compare `iomap.validityCookie` with
   * a sequence number bumped on every change): iomap then marks the mapping
   * IOMAP_F_STALE, ends the step after the folios already done (end() hears
   * how many bytes), and asks begin() again from there. Must not allocate
   * folios or wait on the page cache.
   */
  iomapValid?(inode: IomapInode, iomap: Iomap): boolean;
}

/**
 * One completed (or failed) unit of writeback I/O: contiguous in the file and
 * on the device, one mapping type. Handed to `IomapWritebackOps.ioendCompletion`.
 */
export interface IomapIoend {
  /** The inode written back. */
  readonly inode: IomapInode;
  /** File byte offset. */
  readonly offset: number;
  /** Device byte address. */
  readonly addr: number;
  /** Bytes. */
  readonly length: number;
  /** IOMAP_MAPPED or IOMAP_UNWRITTEN (what the blocks were when written). */
  readonly type: IomapType;
  /** IOMAP_F_* of the mapping. */
  readonly flags: number;
}

/**
 * The writeback operations a filesystem implements (the kernel's
 * `iomap_writeback_ops`, old and new shapes folded into two calls). Called by
 * `iomapWritepages` while it walks the inode's dirty folios in file order.
 */
export interface IomapWritebackOps {
  /**
   * Called for each dirty range not covered by the mapping returned last:
   * return the on-device mapping at `pos` for up to `length` bytes. This is
   * where delayed allocation gets real blocks. The answer must be
   * IOMAP_MAPPED or IOMAP_UNWRITTEN (IOMAP_HOLE means "nothing to write here"
   * and the dirty data is dropped with a warning trace), cover `pos`, and
   * carry IOMAP_F_FSVERITY when the range is fs-verity metadata.
   */
  mapBlocks(inode: IomapInode, pos: number, length: number): Iomap | Promise<Iomap>;
  /**
   * Called once per ioend after its device write finished, before the folios
   * it covers leave writeback. Without `error`: convert UNWRITTEN ranges to
   * written in the extent map. With `error` (EIO from the device): the data
   * stays dirty in the cache and the error is recorded for the next fsync;
   * the filesystem may release anything it staged for this ioend.
   */
  ioendCompletion?(ioend: IomapIoend, error?: Error): void | Promise<void>;
}

/** A range newly filled in a folio, as handed to an `IomapVerifyHook`. */
export interface IomapFilledRange {
  /** File byte offset (a block boundary). */
  pos: number;
  /** Bytes (whole blocks). */
  length: number;
  /** WASM address of the range's first byte in the folio. */
  ptr: number;
  /** IOMAP_F_* of the source mapping (IOMAP_F_FSVERITY for metadata). */
  iomapFlags: number;
  /** Type of the source mapping. */
  type: IomapType;
  /**
   * True when iomap zero-filled the range instead of reading it (a hole,
   * unwritten or new blocks, or blocks past i_size). The hook may write into
   * the range, e.g. to synthesize a Merkle tree block that was not stored.
   */
  zeroed: boolean;
}

/**
 * The hook a filesystem passes to buffered reads to verify data before it
 * becomes visible (fs-verity). Called by iomap on each range newly filled in
 * a folio (read from the device or zero-filled, including blocks past
 * i_size in the EOF folio: a hook skips what it does not cover), with the
 * folio locked, before those blocks are marked up to date. Throw (EIO) to fail the read:
 * the range then stays not up to date and nothing unverified is cached.
 */
export type IomapVerifyHook = (inode: IomapInode, range: IomapFilledRange) => void | Promise<void>;
