/**
 * Buffered read (the read half of the kernel's fs/iomap/buffered-io.c and
 * mm/readahead.c): fill a folio's blocks from the device or with zeros as
 * the mappings say, verify them through the filesystem's hook, then mark
 * them up to date; readahead in the windows src/pagecache/readahead.ts
 * chooses; and the read entry point that copies cached bytes out.
 */
import { fail, isErrno } from '../errors.js';
import type { Folio } from '../pagecache/index.js';
import { ondemandReadahead, PAGE_SIZE, readaheadMarkerHit, readaheadOrder } from '../pagecache/index.js';
import { blocksToRead } from '../wasm/folio.js';
import { iomapIterate, iomapLength, type IomapIterState } from './iter.js';
import { traceRange } from './trace.js';
import {
  IOMAP_MAPPED,
  IOMAP_VERITY,
  type IomapInode,
  type IomapOps,
  type IomapType,
  type IomapVerifyHook,
} from './types.js';

/** Options of the buffered read entry points. */
export interface IomapReadOptions {
  /** Called on each newly filled range before it is marked up to date (fs-verity). */
  verify?: IomapVerifyHook;
  /**
   * The range is fs-verity metadata: begin() is asked with IOMAP_VERITY, the
   * mappings carry IOMAP_F_FSVERITY, and reads are not clamped to i_size.
   */
  metadata?: boolean;
  /**
   * Copy into this array instead of a new one (it must hold the bytes
   * read); the result is a view of its start. Streaming readers reuse one
   * buffer this way.
   */
  into?: Uint8Array;
}

/** The zeroing rule for `nb` blocks from `pos` under `src` (see blocksToRead). */
function blocksToReadAt(inode: IomapInode, pos: number, nb: number, src: { type: number; flags: number }): number {
  return blocksToRead(inode.mapping.cache.wasm, pos, inode.mapping.blockSize, nb, src.type, src.flags, inode.size);
}

/** Wrap whatever a device or hook threw into EIO naming where it happened. */
function asEIO(e: unknown, what: string): Error {
  if (isErrno(e, 'EIO')) return e;
  return fail('EIO', `${what}: ${e instanceof Error ? e.message : String(e)}`, e);
}

/**
 * Fill one step of the iterator inside `folio`: the blocks that are not up
 * to date are read (those the zeroing rule says hold data) or zeroed (the
 * rest), verified, then marked up to date. Used by reads and by the write
 * path for partial blocks; returns the bytes of the step handled.
 */
export async function fillFolioBlocks(
  iter: IomapIterState,
  folio: Folio,
  endInFolio: number,
  verify: IomapVerifyHook | undefined,
): Promise<number> {
  const inode = iter.inode;
  const bs = inode.mapping.blockSize;
  const shift = inode.mapping.blockShift;
  const plen = Math.min(iomapLength(iter), folio.pos + endInFolio - iter.pos);
  const off = iter.pos - folio.pos;
  if (off % bs !== 0 || (plen % bs !== 0 && iter.pos + plen < folio.pos + endInFolio))
    throw fail('EIO', `inode ${inode.ino}: mapping boundary at ${iter.pos + plen} is not aligned to the ${bs}-byte block size`);
  const first = off >> shift;
  const nb = Math.ceil(plen / bs);
  const src = iter.srcmap;
  const toRead = blocksToReadAt(inode, iter.pos, nb, src);
  let b = 0;
  while (b < nb) {
    const s = folio.nextBlock(first + b, first + nb, false) - first;
    if (s >= nb) break;
    const e = folio.nextBlock(first + s, first + nb, true) - first;
    // Within a run of blocks that are not up to date, the leading part is
    // read and the rest zeroed: the zeroing rule is monotone along a mapping.
    const parts: Array<[number, number, boolean]> = [];
    if (s < toRead) parts.push([s, Math.min(e, toRead), false]);
    if (e > toRead) parts.push([Math.max(s, toRead), e, true]);
    for (const [ps, pe, zero] of parts) {
      const foff = (first + ps) << shift;
      const flen = (pe - ps) << shift;
      const fpos = folio.pos + foff;
      if (zero) {
        folio.zero(foff, flen);
      } else {
        if (src.type !== IOMAP_MAPPED)
          throw fail('EOPNOTSUPP', `inode ${inode.ino}: reading a mapping of type ${src.type} is not supported`);
        const addr = src.addr + (fpos - src.offset);
        traceRange('iomap_read_blocks', inode.ino, fpos, flen);
        try {
          await inode.device.read(addr, folio.bytes(foff, flen));
        } catch (err) {
          throw asEIO(err, `inode ${inode.ino}: device read of ${flen} bytes at device offset ${addr} (file offset ${fpos}) failed`);
        }
      }
      if (verify) {
        try {
          await verify(inode, { pos: fpos, length: flen, ptr: folio.ptr + foff, iomapFlags: src.flags, type: src.type, zeroed: zero });
        } catch (err) {
          throw asEIO(err, `inode ${inode.ino}: verification of ${flen} bytes at file offset ${fpos} failed`);
        }
      }
      folio.setRangeUptodate(foff, flen);
    }
    b = e;
  }
  return plen;
}

/**
 * Bring the blocks of [from, to) (bytes within the folio; default: all of
 * it) of a locked folio up to date (the kernel's read_folio). On failure the
 * blocks that failed stay not up to date and the error (EIO) propagates.
 */
export async function iomapReadFolio(
  inode: IomapInode,
  folio: Folio,
  ops: IomapOps,
  opts: IomapReadOptions = {},
  from = 0,
  to = folio.size,
): Promise<void> {
  if (folio.isRangeUptodate(from, to - from)) return;
  const bs = inode.mapping.blockSize;
  const a = from - (from % bs);
  const z = Math.min(folio.size, Math.ceil(to / bs) * bs);
  traceRange('iomap_readpage', inode.ino, folio.pos + a, z - a);
  await iomapIterate(inode, folio.pos + a, z - a, opts.metadata ? IOMAP_VERITY : 0, ops, (iter) =>
    fillFolioBlocks(iter, folio, z, opts.verify),
  );
}

/** Drop a folio a failed read left with nothing cached in it, so nothing unverified lingers. */
function discardIfEmpty(folio: Folio): void {
  if (folio.dead || folio.isDirty() || folio.writeback) return;
  if (folio.nextBlock(0, folio.nblocks, true) < folio.nblocks) return;
  folio.mapping.evict(folio);
}

/** Read [from, to) of a pinned folio under its lock; a failure that leaves nothing cached drops the folio. */
async function readLockedFolio(inode: IomapInode, folio: Folio, ops: IomapOps, opts: IomapReadOptions, from: number, to: number) {
  // No waiting for writeback: it writes only blocks that are up to date, and
  // a read fills only the others.
  await folio.withLocked(
    async () => {
      try {
        await iomapReadFolio(inode, folio, ops, opts, from, to);
      } catch (e) {
        discardIfEmpty(folio);
        throw e;
      }
    },
    { stable: false },
  );
}

// -- readahead ---------------------------------------------------------------

/** One piece of a readahead batch: part of one folio, under one mapping. */
interface ReadSegment {
  folio: Folio;
  /** Byte offset in the folio. */
  off: number;
  len: number;
  /** Device address, or -1 when the piece is zero-filled. */
  addr: number;
  type: number;
  flags: number;
  failed?: boolean;
}

/**
 * Fill a run of new, locked folios that are contiguous in the file (the
 * kernel's iomap_readahead with its bio building): one mapping walk over
 * the whole run, pieces that follow each other both on the device and in
 * WASM memory read with one device call, each piece verified, then marked
 * up to date. A piece that fails stays not up to date; errors are not
 * thrown (readahead is a hint).
 */
async function readaheadRun(inode: IomapInode, run: Folio[], ops: IomapOps, opts: IomapReadOptions): Promise<void> {
  const bs = inode.mapping.blockSize;
  const start = run[0].pos;
  const last = run[run.length - 1];
  const end = last.pos + last.size;
  const segs: ReadSegment[] = [];
  let fi = 0;
  try {
    await iomapIterate(inode, start, end - start, opts.metadata ? IOMAP_VERITY : 0, ops, async (iter) => {
      const plen = iomapLength(iter);
      if (iter.pos % bs !== 0 || (plen % bs !== 0 && iter.pos + plen < end))
        throw fail('EIO', `inode ${inode.ino}: mapping boundary at ${iter.pos + plen} is not aligned to the ${bs}-byte block size`);
      const src = iter.srcmap;
      const nb = Math.ceil(plen / bs);
      const readEnd = iter.pos + blocksToReadAt(inode, iter.pos, nb, src) * bs;
      const stepEnd = iter.pos + nb * bs;
      let p = iter.pos;
      while (p < stepEnd) {
        while (run[fi].pos + run[fi].size <= p) fi++;
        const f = run[fi];
        const cut = Math.min(stepEnd, f.pos + f.size, p < readEnd ? readEnd : stepEnd);
        const zero = p >= readEnd;
        if (!zero && src.type !== IOMAP_MAPPED)
          throw fail('EOPNOTSUPP', `inode ${inode.ino}: reading a mapping of type ${src.type} is not supported`);
        segs.push({ folio: f, off: p - f.pos, len: cut - p, addr: zero ? -1 : src.addr + (p - src.offset), type: src.type, flags: src.flags });
        p = cut;
      }
      return plen;
    });
  } catch (e) {
    if (!isErrno(e)) throw e;
    return; // nothing filled: the reader that needs these pages reads them and sees the error
  }
  const wasm = inode.mapping.cache.wasm;
  for (let i = 0; i < segs.length; ) {
    const s0 = segs[i];
    if (s0.addr < 0) {
      s0.folio.zero(s0.off, s0.len);
      i++;
      continue;
    }
    let len = s0.len;
    let j = i + 1;
    while (
      j < segs.length &&
      segs[j].addr === s0.addr + len &&
      segs[j].folio.ptr + segs[j].off === s0.folio.ptr + s0.off + len
    )
      len += segs[j++].len;
    traceRange('iomap_read_blocks', inode.ino, s0.folio.pos + s0.off, len);
    try {
      await inode.device.read(s0.addr, wasm.bytes(s0.folio.ptr + s0.off, len));
    } catch (e) {
      if (!isErrno(e)) throw e;
      for (let k = i; k < j; k++) segs[k].failed = true;
    }
    i = j;
  }
  for (const s of segs) {
    if (s.failed) continue;
    const pos = s.folio.pos + s.off;
    if (opts.verify) {
      try {
        await opts.verify(inode, { pos, length: s.len, ptr: s.folio.ptr + s.off, iomapFlags: s.flags, type: s.type as IomapType, zeroed: s.addr < 0 });
      } catch (e) {
        if (e instanceof Error && !isErrno(e)) throw e;
        continue;
      }
    }
    s.folio.setRangeUptodate(s.off, s.len);
  }
}

/**
 * Read pages [start, start+nr) into the cache, skipping what is cached, in
 * folios whose order grows by two per window up to the window size (the
 * kernel's page_cache_ra_order). Errors are not reported here: a folio that
 * failed is dropped and the reader that needs it reads it again, then sees
 * the error.
 */
export async function iomapReadahead(
  inode: IomapInode,
  start: number,
  nr: number,
  ops: IomapOps,
  opts: IomapReadOptions = {},
): Promise<void> {
  const m = inode.mapping;
  let limit = start + nr;
  if (!opts.metadata) limit = Math.min(limit, Math.ceil(inode.size / PAGE_SIZE));
  if (limit <= start) return;
  const order = readaheadOrder(m.ra, m, limit - start);
  traceRange('iomap_readahead', inode.ino, start * PAGE_SIZE, (limit - start) * PAGE_SIZE);
  let idx = start - (start % (1 << m.minOrder));
  while (idx < limit) {
    // Gather a run of new folios contiguous in the file, then fill it at once.
    const run: Folio[] = [];
    while (idx < limit) {
      if (m.lookup(idx)) break;
      const f = await m.getFolio(idx, PAGE_SIZE << order, Math.max(limit, idx + (1 << m.minOrder)));
      if (f.isLocked() || f.nextBlock(0, f.nblocks, true) < f.nblocks) {
        // Someone else's folio appeared meanwhile: end the run before it.
        f.put();
        break;
      }
      await f.lock();
      run.push(f);
      idx = f.index + (1 << f.order);
    }
    if (run.length > 0) {
      try {
        await readaheadRun(inode, run, ops, opts);
      } finally {
        for (const f of run) {
          discardIfEmpty(f);
          f.unlock();
          f.put();
        }
      }
    } else {
      const have = m.lookup(idx);
      idx = have ? have.index + (1 << have.order) : idx + (1 << m.minOrder);
    }
  }
}

/** Readahead for a read of pages [index, index+req) that missed the cache or hit its marker page. */
async function ondemandRead(inode: IomapInode, index: number, req: number, hit: boolean, ops: IomapOps, opts: IomapReadOptions) {
  const m = inode.mapping;
  if (ondemandReadahead(m.ra, m, index, req, hit)) await iomapReadahead(inode, m.ra.start, m.ra.size, ops, opts);
}

/**
 * Read `len` bytes at `pos` through the page cache (the kernel's
 * filemap_read over iomap_read_folio / iomap_readahead). Data reads stop at
 * i_size; metadata reads (`opts.metadata`) do not. Returns a new array with
 * the bytes read (shorter than `len` at EOF). A device or verification
 * failure rejects with EIO, and a folio that failed caches nothing.
 */
export async function iomapBufferedRead(
  inode: IomapInode,
  pos: number,
  len: number,
  ops: IomapOps,
  opts: IomapReadOptions = {},
): Promise<Uint8Array> {
  if (!Number.isSafeInteger(pos) || pos < 0 || !Number.isSafeInteger(len) || len < 0)
    throw fail('EINVAL', `read of ${len} bytes at ${pos}: offset and length must be non-negative integers below 2^53`);
  const end = opts.metadata ? pos + len : Math.min(pos + len, inode.size);
  if (end <= pos) return new Uint8Array(0);
  if (opts.into !== undefined && opts.into.length < end - pos) {
    throw fail('EINVAL', `read of ${end - pos} bytes into an array of ${opts.into.length}`);
  }
  const out = opts.into !== undefined ? opts.into.subarray(0, end - pos) : new Uint8Array(end - pos);
  const m = inode.mapping;
  const wasm = m.cache.wasm;
  const lastIndex = Math.ceil(end / PAGE_SIZE);
  let p = pos;
  while (p < end) {
    const idx = Math.floor(p / PAGE_SIZE);
    let f = m.findFolio(idx);
    // A hit needs readahead only at the window's marker page: most cached
    // reads go straight to the copy without waiting on anything.
    if (f === undefined || readaheadMarkerHit(m.ra, idx)) await ondemandRead(inode, idx, lastIndex - idx, f !== undefined, ops, opts);
    if (!f) f = await m.getFolio(idx, (lastIndex - idx) * PAGE_SIZE);
    try {
      const n = Math.min(end, f.pos + f.size) - p;
      const off = p - f.pos;
      if (!f.isRangeUptodate(off, n)) await readLockedFolio(inode, f, ops, opts, off, off + n);
      if (f.dead) continue; // truncated under us: look again
      out.set(wasm.bytes(f.ptr + off, n), p - pos);
      p += n;
    } finally {
      f.put();
    }
  }
  m.ra.prevIndex = Math.floor((end - 1) / PAGE_SIZE);
  return out;
}
