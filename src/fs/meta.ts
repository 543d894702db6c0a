/**
 * The reference filesystem's metadata, as plain data.
 *
 * This is the one interface between the filesystem's in-memory state
 * (src/fs/volume.ts and friends) and its on-device format (src/fs/format.ts):
 * the filesystem keeps its metadata as a `VolumeMeta` (or can produce one at
 * any moment), and the format layer persists a `VolumeMeta` and loads it
 * back. Nothing else crosses.
 *
 * Units: all block numbers are in filesystem blocks of `blockSize` bytes;
 * sizes are bytes.
 */

/** Inode flag: the file is sealed with fs-verity. */
export const INODE_FLAG_VERITY = 1;

/** One extent of a file's map: `blocks` file blocks from `fileBlock` live at `devBlock`. */
export interface ExtentRecord {
  fileBlock: number;
  devBlock: number;
  blocks: number;
  /** Allocated but never written: reads as zeros (IOMAP_UNWRITTEN). */
  unwritten: boolean;
}

/** One file as committed. */
export interface InodeRecord {
  ino: number;
  name: string;
  /** i_size in bytes. */
  size: number;
  /** INODE_FLAG_* bits. */
  flags: number;
  /** Sorted by fileBlock, non-overlapping. Verity metadata past EOF lives here too. */
  extents: ExtentRecord[];
}

/** Everything a commit makes durable: the volume's geometry and its files. */
export interface VolumeMeta {
  blockSize: number;
  /** Device size in filesystem blocks. */
  deviceBlocks: number;
  /** First block the data allocator may hand out; blocks below it belong to the format (superblocks, metadata areas). */
  dataStart: number;
  nextIno: number;
  inodes: InodeRecord[];
}
