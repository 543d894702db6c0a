/**
 * Buffered write, zero range and truncate (the write half of the kernel's
 * fs/iomap/buffered-io.c, plus pagecache_isize_extended and
 * truncate_pagecache from mm/). Data is copied into folios and marked
 * dirty; writeback (writeback.ts) takes it to the device later.
 */
import { fail, MAX_OFFSET } from '../errors.js';
import type { Folio } from '../pagecache/index.js';
import { PAGE_SIZE } from '../pagecache/index.js';
import { fillFolioBlocks } from './buffered-read.js';
import { IOMAP_MAX_END, iomapIterate, iomapLength, type IomapIterState } from './iter.js';
import { traceRange } from './trace.js';
import {
  IOMAP_F_FSVERITY,
  IOMAP_F_SIZE_CHANGED,
  IOMAP_F_STALE,
  IOMAP_HOLE,
  IOMAP_UNWRITTEN,
  IOMAP_VERITY,
  IOMAP_WRITE,
  IOMAP_ZERO,
  type IomapInode,
  type IomapOps,
} from './types.js';

/**
 * Prepare [off, off+len) of a locked folio for a write that does not cover
 * whole blocks (__iomap_write_begin): each partial block that is not up to
 * date is read first, or zeroed when the zeroing rule says there is nothing
 * to read (holes, new blocks, past i_size unless FSVERITY).
 */
async function fillPartialBlocks(iter: IomapIterState, folio: Folio, off: number, len: number): Promise<void> {
  if (folio.isRangeUptodate(off, len)) return;
  const bs = folio.mapping.blockSize;
  const edges = new Set<number>();
  if (off % bs !== 0) edges.add(off - (off % bs));
  if ((off + len) % bs !== 0) edges.add(off + len - ((off + len) % bs));
  for (const b of edges) {
    if (folio.isRangeUptodate(b, bs)) continue;
    // Fill exactly this block through a sub-iterator view of the step: the
    // current mapping covers it (it lies within the step being written).
    const sub: IomapIterState = { ...iter, pos: folio.pos + b, len: bs, processed: 0 };
    await fillFolioBlocks(sub, folio, b + bs, undefined);
  }
}

/**
 * Refuse to copy from a buffer that no longer holds the bytes to write. The
 * caller may have transferred (detached) or shrunk it while the write was
 * queued or waiting on the device; copying fewer bytes than the range then
 * marked up to date would expose whatever the folio's memory held before
 * (another file's bytes).
 */
function checkSource(data: Uint8Array, dataOff: number, n: number): void {
  if (data.byteLength < dataOff + n) {
    throw fail(
      'EINVAL',
      `the buffer being written changed under the write (now ${data.byteLength} bytes, ${dataOff + n} needed): it was transferred or resized before the write finished; keep it until the write's promise settles`,
    );
  }
}

/**
 * Zero stale bytes past the old EOF when i_size grows from `from` to `to`
 * (pagecache_isize_extended): the folio holding the old EOF may hold bytes
 * past it (a partial block read in, data left by a failed write); they
 * would now be inside the file. The old EOF block becomes dirty so the
 * zeros reach the device.
 */
export async function pagecacheIsizeExtended(inode: IomapInode, from: number, to: number): Promise<void> {
  if (from >= to) return;
  const m = inode.mapping;
  const f = m.findFolio(Math.floor(from / PAGE_SIZE));
  if (!f) return;
  await f.withLocked(
    () => {
      const a = from - f.pos;
      const b = Math.min(to, f.pos + f.size) - f.pos;
      if (a <= 0 || b <= a) return;
      f.zero(a, b - a);
      // Only the block holding the old EOF carries file bytes that may be on
      // the device; the blocks wholly past it are holes or unwritten.
      const bs = m.blockSize;
      const eofBlockEnd = Math.min(b, Math.ceil(a / bs) * bs);
      if (eofBlockEnd > a && f.isRangeUptodate(a, eofBlockEnd - a)) f.setRangeDirty(a, eofBlockEnd - a);
      traceRange('iomap_isize_extended', inode.ino, from, to - from);
    },
    { adopt: true },
  );
}

/**
 * Range checks of the write entry points: EINVAL for offsets and lengths
 * that are not non-negative safe integers, EFBIG for a range ending past
 * `maxEnd` (compared without forming `pos + len`, which may round).
 */
function checkWrite(inode: IomapInode, what: string, pos: number, len: number, maxEnd: number): void {
  if (!Number.isSafeInteger(pos) || pos < 0 || !Number.isSafeInteger(len) || len < 0)
    throw fail('EINVAL', `inode ${inode.ino}: ${what} of ${len} bytes at ${pos}: offset and length must be non-negative integers`);
  if (pos > maxEnd || len > maxEnd - pos)
    throw fail('EFBIG', `inode ${inode.ino}: ${what} of ${len} bytes at ${pos} ends past ${maxEnd === MAX_OFFSET ? '2^53-1, the largest file size' : '2^53'}`);
}

/**
 * The filesystem's iomapValid verdict on the current step's mapping, asked
 * with `folio` locked (iomap_write_begin). When it says stale, the mapping is
 * marked IOMAP_F_STALE and the caller ends the step before this folio.
 */
function mappingStillValid(iter: IomapIterState, ops: IomapOps, folio: Folio): boolean {
  if (!ops.iomapValid || ops.iomapValid(iter.inode, iter.iomap)) return true;
  iter.iomap.flags |= IOMAP_F_STALE;
  traceRange('iomap_write_stale', iter.inode.ino, folio.pos, folio.size, 'mapping changed while the folio was obtained');
  return false;
}

/** A folio made ready for `n` bytes at `off` by iomapWriteBegin: pinned, locked, out of writeback. */
interface WriteFolio {
  folio: Folio;
  /** File position of the first byte. */
  pos: number;
  /** Byte offset in the folio. */
  off: number;
  /** Bytes of the step that fall in this folio. */
  n: number;
}

/**
 * Get the folio for the next bytes of a write or zero step at `pos`
 * (`len` of the step left) and make it ready to take them
 * (iomap_write_begin): pinned, locked, stable, its partial blocks read or
 * zeroed. Undefined when the filesystem says the step's mapping went stale
 * (the folio is released; the iterator maps again from `pos`).
 */
async function iomapWriteBegin(iter: IomapIterState, ops: IomapOps, pos: number, len: number): Promise<WriteFolio | undefined> {
  const m = iter.inode.mapping;
  for (;;) {
    const folio = await m.getFolio(Math.floor(pos / PAGE_SIZE), len);
    if (!(await folio.lockLive())) {
      folio.put();
      continue;
    }
    try {
      if (!mappingStillValid(iter, ops, folio)) {
        folio.unlock();
        folio.put();
        return undefined;
      }
      const off = pos - folio.pos;
      const n = Math.min(len, folio.size - off);
      await fillPartialBlocks({ ...iter, pos, len: iter.len - (pos - iter.pos) }, folio, off, n);
      return { folio, pos, off, n };
    } catch (e) {
      folio.unlock();
      folio.put();
      throw e;
    }
  }
}

/**
 * Finish a folio of a write or zero step after `copied` bytes went in
 * (iomap_write_end, then the size update and __iomap_put_folio of
 * iomap_write_iter): they become up to date and dirty; a write that is not
 * fs-verity metadata (which lives past EOF and never moves it) extends
 * i_size over them. The folio is unlocked and released; stale bytes
 * between the old EOF and this write are zeroed. Returns `copied`.
 */
async function iomapWriteEnd(iter: IomapIterState, w: WriteFolio, copied: number): Promise<number> {
  const { folio, pos, off } = w;
  const inode = iter.inode;
  let oldSize = -1;
  try {
    if (copied > 0) {
      folio.setRangeUptodate(off, copied);
      folio.setRangeDirty(off, copied);
      if (iter.flags & IOMAP_WRITE && !(iter.iomap.flags & IOMAP_F_FSVERITY)) {
        oldSize = inode.size;
        if (pos + copied > oldSize) {
          inode.size = pos + copied;
          iter.iomap.flags |= IOMAP_F_SIZE_CHANGED;
        }
      }
    }
  } finally {
    folio.unlock();
    folio.put();
  }
  if (oldSize >= 0 && oldSize < pos) await pagecacheIsizeExtended(inode, oldSize, pos);
  return copied;
}

/**
 * The folio loop of one write or zero step (iomap_write_iter and
 * iomap_zero_iter): for each folio the step covers, begin, `fill` the
 * folio's part, end. Stops early, at a folio boundary, when the mapping
 * went stale. Returns the bytes done.
 */
async function iomapWriteFolios(iter: IomapIterState, ops: IomapOps, fill: (w: WriteFolio) => void): Promise<number> {
  const length = iomapLength(iter);
  let done = 0;
  while (done < length) {
    const w = await iomapWriteBegin(iter, ops, iter.pos + done, length - done);
    if (!w) break;
    let copied = 0;
    try {
      fill(w);
      copied = w.n;
    } finally {
      await iomapWriteEnd(iter, w, copied);
    }
    done += copied;
  }
  return done;
}

/**
 * One step of a buffered write: copy the part of `data` the current mapping
 * covers into folios, one folio at a time (iomap_write_iter).
 */
function writeIter(iter: IomapIterState, ops: IomapOps, data: Uint8Array, dataStart: number): Promise<number> {
  return iomapWriteFolios(iter, ops, (w) => {
    checkSource(data, w.pos - dataStart, w.n);
    w.folio.copyIn(w.off, data, w.pos - dataStart, w.n);
  });
}

/**
 * Write `data` at `pos` through the page cache (iomap_file_buffered_write).
 * Extends i_size when writing past it. Returns the bytes written (all of
 * them, or an error: ENOSPC from the filesystem, EIO from reading a partial
 * block). The filesystem's serialisation of the inode is the caller's.
 */
export async function iomapBufferedWrite(
  inode: IomapInode,
  pos: number,
  data: Uint8Array,
  ops: IomapOps,
  extraFlags = 0,
): Promise<number> {
  checkWrite(inode, 'write', pos, data.length, MAX_OFFSET);
  if (data.length === 0) return 0;
  traceRange('iomap_buffered_write', inode.ino, pos, data.length);
  return iomapIterate(inode, pos, data.length, IOMAP_WRITE | extraFlags, ops, (iter) => writeIter(iter, ops, data, pos));
}

/**
 * Write fs-verity metadata (Merkle tree blocks, descriptor) at `pos`, past
 * EOF in the page cache's metadata area: a buffered write whose mappings
 * carry IOMAP_F_FSVERITY (begin() is asked with IOMAP_WRITE | IOMAP_VERITY),
 * so i_size never changes and the size-extended step never runs.
 */
export async function iomapFsverityWrite(inode: IomapInode, pos: number, data: Uint8Array, ops: IomapOps): Promise<number> {
  if (pos < inode.size)
    throw fail('EINVAL', `inode ${inode.ino}: fs-verity metadata write at ${pos} is below i_size ${inode.size}; metadata lives past EOF`);
  return iomapBufferedWrite(inode, pos, data, ops, IOMAP_VERITY);
}

/** Zero [pos, pos+len) of cached folios without dirtying anything (the range reads as zeros already). */
async function zeroCached(inode: IomapInode, pos: number, len: number): Promise<void> {
  const m = inode.mapping;
  for (const f of m.foliosIn(Math.floor(pos / PAGE_SIZE), Math.ceil((pos + len) / PAGE_SIZE))) {
    await f.withLocked(() => {
      const a = Math.max(pos, f.pos) - f.pos;
      const b = Math.min(pos + len, f.pos + f.size) - f.pos;
      if (b > a) f.zero(a, b - a);
    });
  }
}

/** One step of zero range: write zeros through the cache where the mapping holds data (iomap_zero_iter). */
async function zeroIter(iter: IomapIterState, ops: IomapOps): Promise<number> {
  const src = iter.srcmap;
  if (src.type === IOMAP_HOLE || src.type === IOMAP_UNWRITTEN) {
    // Nothing on the device; cached bytes over it get zeroed in place (dirty
    // ones stay dirty and carry the zeros to the device).
    const length = iomapLength(iter);
    await zeroCached(iter.inode, iter.pos, length);
    return length;
  }
  return iomapWriteFolios(iter, ops, (w) => w.folio.zero(w.off, w.n));
}

/**
 * Zero `len` bytes at `pos` (iomap_zero_range): the range reads back as
 * zeros; i_size does not change. Holes and unwritten extents are left alone.
 */
export async function iomapZeroRange(inode: IomapInode, pos: number, len: number, ops: IomapOps): Promise<void> {
  // Zeroing reaches block ends, which for a file of the largest size is 2^53.
  checkWrite(inode, 'zero range', pos, len, IOMAP_MAX_END);
  if (len === 0) return;
  traceRange('iomap_zero_range', inode.ino, pos, len);
  await iomapIterate(inode, pos, len, IOMAP_ZERO, ops, (iter) => zeroIter(iter, ops));
}

/**
 * Change i_size to `newSize` (the iomap half of a filesystem's setattr):
 * shrinking zeroes the tail of the new EOF block through the cache (so the
 * device sees zeros there at writeback) and drops cached data past EOF;
 * growing zeroes stale bytes from the old EOF. The filesystem frees or
 * keeps blocks past the new EOF afterwards.
 */
export async function iomapTruncate(inode: IomapInode, newSize: number, ops: IomapOps): Promise<void> {
  if (!Number.isSafeInteger(newSize) || newSize < 0)
    throw fail('EINVAL', `inode ${inode.ino}: truncate to ${newSize}: size must be a non-negative integer below 2^53`);
  const oldSize = inode.size;
  traceRange('iomap_truncate', inode.ino, Math.min(oldSize, newSize), Math.abs(newSize - oldSize));
  const bs = inode.mapping.blockSize;
  if (newSize < oldSize) {
    const tailEnd = Math.min(oldSize, Math.ceil(newSize / bs) * bs);
    if (tailEnd > newSize) await iomapZeroRange(inode, newSize, tailEnd - newSize, ops);
    inode.size = newSize;
    await inode.mapping.truncateRange(newSize);
  } else if (newSize > oldSize) {
    const tailEnd = Math.min(newSize, Math.ceil(oldSize / bs) * bs);
    if (tailEnd > oldSize) await iomapZeroRange(inode, oldSize, tailEnd - oldSize, ops);
    // Cached bytes past the old EOF (and past the old EOF block) become file
    // bytes: they must read as zeros.
    await zeroCached(inode, tailEnd, newSize - tailEnd);
    inode.size = newSize;
  }
}
