/**
 * The filesystem's calls into the iomap engine, in one place: each `File`
 * and `Volume` operation that moves data goes through here with the
 * volume's ops, and this is where the filesystem does its own part around
 * iomap's (freeing blocks after a truncate, reporting writeback errors).
 */
import { fail, isErrno } from '../errors.js';
import { iomapBufferedRead, type IomapReadOptions } from '../iomap/buffered-read.js';
import { iomapBufferedWrite, iomapTruncate } from '../iomap/buffered-write.js';
import { iomapWritepages, type IomapWritebackOptions } from '../iomap/writeback.js';
import type { Inode } from './inode.js';
import type { Mount } from './mount.js';

/**
 * Any IomapVerityError as it is (a writeback may fail with ENOSPC or EIO
 * and both mean something to the caller); anything else as EIO. Unlike
 * iomap's `asEIO`, which makes every failure of a read EIO.
 */
function errnoOrEIO(e: unknown, what: string): unknown {
  if (isErrno(e)) return e;
  return fail('EIO', `${what}: ${e instanceof Error ? e.message : String(e)}`, e);
}

/** Read [pos, pos + len) of a file (already clamped to its size). */
export async function readRange(mp: Mount, inode: Inode, pos: number, len: number, opts?: IomapReadOptions): Promise<Uint8Array> {
  return iomapBufferedRead(inode, pos, len, mp.ops, opts);
}

/** Buffered write of `data` at `pos`. */
export async function writeRange(mp: Mount, inode: Inode, pos: number, data: Uint8Array): Promise<void> {
  await iomapBufferedWrite(inode, pos, data, mp.ops);
}

/**
 * Set i_size. iomap zeroes the partial EOF block and drops the cache past
 * EOF; then the blocks wholly past the new EOF leave the extent map (their
 * space is free after the next commit, their reservations at once).
 */
export async function truncateInode(mp: Mount, inode: Inode, size: number): Promise<void> {
  const old = inode.size;
  if (size === old) return;
  await iomapTruncate(inode, size, mp.ops);
  inode.metaDirty = true;
  if (size < old) {
    const from = Math.ceil(size / inode.blockSize);
    for (const e of inode.extents.punch(from, Infinity)) mp.releaseExtent(e);
  }
}

/**
 * Write back the inode's dirty data. With `report`, the first writeback
 * error since the last report (now or from background writeback) is thrown
 * as EIO and forgotten, as fsync does; the data it concerns stays dirty.
 */
export async function writebackInode(mp: Mount, inode: Inode, report = true, range?: IomapWritebackOptions): Promise<void> {
  try {
    await iomapWritepages(inode, mp.wbOps, range);
  } catch (e) {
    throw errnoOrEIO(e, `writeback of ${JSON.stringify(inode.name)} failed`);
  }
  if (!report) return;
  const err = inode.mapping.takeError();
  if (err !== undefined) {
    throw isErrno(err, 'EIO') ? err : fail('EIO', `writeback of ${JSON.stringify(inode.name)} failed: ${err.message}`, err);
  }
}

/**
 * Remove all fs-verity metadata of a file: the cached metadata folios and
 * the extents past EOF where it lives on the device. For the enable path
 * ("drop stale metadata past EOF" before building, and cleanup when
 * building fails). Space comes back after the next commit.
 */
export async function dropVerityMetadata(mp: Pick<Mount, 'releaseExtent'>, inode: Inode): Promise<void> {
  await inode.mapping.truncateRange(inode.cacheMetaStart);
  const from = inode.deviceMetaStart / inode.blockSize;
  for (const e of inode.extents.punch(from, Infinity)) mp.releaseExtent(e);
  inode.metaDirty = true;
}
