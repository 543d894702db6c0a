/**
 * Writeback I/O units and their completion (the kernel's fs/iomap/ioend.c).
 * An ioend is a range contiguous in the file and on the device, of one
 * mapping type; the folio segments it covers are written with as few device
 * writes as their placement in WASM memory allows (adjacent folios go out
 * in one write). Completion hands the ioend to the filesystem (unwritten
 * conversion), then takes the folios out of writeback; a failed write puts
 * the data back to dirty and records the error for the next fsync.
 */
import { fail, isErrno } from '../errors.js';
import type { Folio } from '../pagecache/index.js';
import { emitTrace, tracing } from './trace.js';
import type { IomapInode, IomapIoend, IomapType, IomapWritebackOps } from './types.js';

/** A piece of one folio inside an ioend. */
export interface IoendSegment {
  /** The folio, under writeback until this segment's bytes complete. */
  folio: Folio;
  /** Byte offset in the folio. */
  off: number;
  /** Bytes of the folio this segment writes. */
  len: number;
}

/** An ioend being built: the public record plus the folio segments it writes. */
export interface PendingIoend extends IomapIoend {
  /** Bytes so far: grows while ranges are merged in (canMerge). */
  length: number;
  /** The folio pieces, in file order, that make up `length`. */
  readonly segments: IoendSegment[];
}

/** Longest ioend: large enough to amortise a device write, small enough to bound one. */
export const IOEND_MAX_BYTES = 16 * 1024 * 1024;

/** Start an ioend for one segment (the caller has counted the segment's bytes on its folio's writeback). */
export function newIoend(
  inode: IomapInode,
  offset: number,
  addr: number,
  type: IomapType,
  flags: number,
  seg: IoendSegment,
): PendingIoend {
  return { inode, offset, addr, length: seg.len, type, flags, segments: [seg] };
}

/**
 * Can the range (offset, addr, type, flags) of `len` bytes extend `io`? It
 * must follow it in the file and on the device, keep the mapping type and
 * the FSVERITY flag, and stay under IOEND_MAX_BYTES (iomap_can_add_to_ioend).
 */
export function canMerge(io: PendingIoend, offset: number, addr: number, type: IomapType, flags: number, len: number): boolean {
  return (
    io.offset + io.length === offset &&
    io.addr + io.length === addr &&
    io.type === type &&
    io.flags === flags &&
    io.length + len <= IOEND_MAX_BYTES
  );
}

/**
 * Submit an ioend and complete it: write its segments (merging those that
 * are adjacent in WASM memory into one device write), call the filesystem's
 * ioendCompletion, then end the writeback of each segment's bytes (a folio
 * leaves writeback when no ioend holds any of its bytes).
 * On a device error the segments become dirty again and the error (EIO) is
 * recorded on the mapping; it is also returned.
 */
export async function submitIoend(io: PendingIoend, wbOps: IomapWritebackOps): Promise<Error | undefined> {
  const inode = io.inode;
  const wasm = inode.mapping.cache.wasm;
  let error: Error | undefined;
  let addr = io.addr;
  let i = 0;
  const segs = io.segments;
  if (tracing())
    emitTrace({ name: 'iomap_ioend_submit', ino: inode.ino, pos: io.offset, length: io.length, type: io.type, flags: io.flags, addr: io.addr });
  while (i < segs.length && !error) {
    const ptr = segs[i].folio.ptr + segs[i].off;
    let len = segs[i].len;
    let j = i + 1;
    while (j < segs.length && segs[j].folio.ptr + segs[j].off === ptr + len) len += segs[j++].len;
    try {
      await inode.device.write(addr, wasm.bytes(ptr, len));
    } catch (e) {
      error = isErrno(e, 'EIO')
        ? e
        : fail('EIO', `inode ${inode.ino}: writeback of ${len} bytes at device offset ${addr} (file offset ${io.offset + (addr - io.addr)}) failed: ${e instanceof Error ? e.message : String(e)}`, e);
    }
    addr += len;
    i = j;
  }
  if (error) {
    // Keep every byte of the ioend dirty: nothing written is lost while the
    // process lives, and the next fsync reports the error.
    for (const s of segs) s.folio.setRangeDirty(s.off, s.len);
    inode.mapping.setError(error);
  }
  try {
    if (wbOps.ioendCompletion) await wbOps.ioendCompletion(io, error);
  } catch (e) {
    const err = isErrno(e) ? e : fail('EIO', `inode ${inode.ino}: ioend completion failed: ${String(e)}`, e);
    if (!error) for (const s of segs) s.folio.setRangeDirty(s.off, s.len);
    inode.mapping.setError(err);
    error ??= err;
  } finally {
    for (const s of segs) s.folio.endWriteback(s.len);
  }
  if (tracing() && error)
    emitTrace({ name: 'iomap_ioend_error', ino: inode.ino, pos: io.offset, length: io.length, type: io.type, flags: io.flags, addr: io.addr, message: error.message });
  return error;
}
