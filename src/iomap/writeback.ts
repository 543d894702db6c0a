/**
 * Writeback (the kernel's iomap_writepages / iomap_writeback_folio): walk an
 * inode's dirty folios in file order, decide what to do at EOF (the seed's
 * iomap_writeback_handle_eof), map dirty ranges through the filesystem's
 * writeback ops (where delalloc gets blocks), gather contiguous ranges into
 * ioends and submit them. Errors keep the data dirty and are reported by the
 * next fsync (`iomapFsync`), like mapping_set_error / filemap_check_errors.
 */
import { fail, isErrno } from '../errors.js';
import type { Folio } from '../pagecache/index.js';
import { PAGE_SIZE } from '../pagecache/index.js';
import { canMerge, newIoend, submitIoend, type PendingIoend } from './ioend.js';
import { emitTrace, traceIomap, traceRange, tracing } from './trace.js';
import {
  IOMAP_F_BOUNDARY,
  IOMAP_F_FSVERITY,
  IOMAP_HOLE,
  IOMAP_MAPPED,
  IOMAP_UNWRITTEN,
  type Iomap,
  type IomapInode,
  type IomapWritebackOps,
} from './types.js';

/** Options of `iomapWritepages`: the byte range to write back. */
export interface IomapWritebackOptions {
  /** First file byte to write back (default 0). */
  start?: number;
  /** End (exclusive) of the range to write back (default: everything). */
  end?: number;
  /**
   * Start no more folios once this many bytes of dirty folios were taken
   * (the kernel's wbc->nr_to_write): a bounded batch, the rest stays dirty
   * for a later call. Default: no limit.
   */
  maxBytes?: number;
}

/** What one `iomapWritepages` call did. */
export interface IomapWritebackResult {
  /** Bytes submitted to the device. */
  bytes: number;
  /** Ioends submitted. */
  ioends: number;
  /** The first error met (already recorded on the mapping for fsync). */
  error?: Error;
}

/** Per-walk state (the kernel's iomap_writepage_ctx). */
interface WritepageCtx {
  inode: IomapInode;
  ops: IomapWritebackOps;
  /** The mapping returned last by mapBlocks; reused while it covers the next range. */
  iomap: Iomap | undefined;
  ioend: PendingIoend | undefined;
  result: IomapWritebackResult;
}

async function mapAt(ctx: WritepageCtx, pos: number, len: number): Promise<Iomap> {
  const c = ctx.iomap;
  if (c && c.offset <= pos && pos < c.offset + c.length) return c;
  const m = { ...(await ctx.ops.mapBlocks(ctx.inode, pos, len)) };
  if (!(m.length > 0 && m.offset <= pos && pos < m.offset + m.length))
    throw fail('EIO', `inode ${ctx.inode.ino}: writeback mapping at ${pos} does not cover it (offset ${m.offset} length ${m.length})`);
  if (m.type !== IOMAP_MAPPED && m.type !== IOMAP_UNWRITTEN && m.type !== IOMAP_HOLE)
    throw fail('EIO', `inode ${ctx.inode.ino}: writeback mapping at ${pos} has type ${m.type}; mapBlocks must allocate delayed blocks`);
  ctx.iomap = m;
  traceIomap('iomap_writeback_map', ctx.inode.ino, m);
  return m;
}

async function flushIoend(ctx: WritepageCtx): Promise<void> {
  const io = ctx.ioend;
  if (!io) return;
  ctx.ioend = undefined;
  ctx.result.ioends++;
  ctx.result.bytes += io.length;
  const err = await submitIoend(io, ctx.ops);
  if (err) ctx.result.error ??= err;
}

/**
 * EOF handling for one folio (iomap_writeback_handle_eof with the seed):
 * returns the end of the part to write, or -1 to skip the folio. An
 * IOMAP_F_FSVERITY folio is written whole wherever it lies past EOF, but it
 * must start at or after i_size: one that starts below it would mix file
 * data with metadata, which the sizing policy rules out, so it is refused
 * with an error (see `refuseStraddlingVerityFolio`). An ordinary folio
 * wholly past EOF is skipped (its dirty bytes are meaningless); one
 * straddling EOF has its tail zeroed so stale bytes never reach the device.
 */
function handleEof(ctx: WritepageCtx, folio: Folio, map: Iomap): number {
  const isize = ctx.inode.size;
  const pos = folio.pos;
  const end = pos + folio.size;
  if (map.flags & IOMAP_F_FSVERITY) {
    if (pos < isize) refuseStraddlingVerityFolio(ctx, folio, isize);
    return end;
  }
  if (end <= isize) return end;
  if (pos >= isize) return -1;
  const cut = isize - pos;
  folio.zero(cut, folio.size - cut);
  return isize;
}

/**
 * The kernel WARNs once and writes on; a library has no console anyone
 * reads, and writing would send file bytes down the metadata path (no tail
 * zeroing). So this is an error the caller sees: the folio stays dirty,
 * nothing reaches the device, the error is recorded for fsync and traced.
 */
function refuseStraddlingVerityFolio(ctx: WritepageCtx, folio: Folio, isize: number): never {
  const msg =
    `inode ${ctx.inode.ino}: fs-verity folio at file offset ${folio.pos} (${folio.size} bytes) starts below i_size ${isize}; ` +
    `fs-verity metadata must start at or past fsverityMetadataOffset(i_size, maxFolioSize) so no folio mixes data and metadata`;
  if (tracing()) emitTrace({ name: 'iomap_writeback_warn', ino: ctx.inode.ino, pos: folio.pos, length: folio.size, message: msg });
  throw fail('EIO', msg);
}

/** Add [pos, pos+len) of a locked folio to ioends, mapping it as needed. */
async function addRange(ctx: WritepageCtx, folio: Folio, pos: number, len: number): Promise<void> {
  const end = pos + len;
  while (pos < end) {
    const map = await mapAt(ctx, pos, end - pos);
    const n = Math.min(end, map.offset + map.length) - pos;
    const off = pos - folio.pos;
    if (map.type === IOMAP_HOLE) {
      // The filesystem has nowhere for these bytes (e.g. they were punched
      // while dirty): they are dropped, visibly.
      traceRange('iomap_writeback_hole', ctx.inode.ino, pos, n, 'dirty data over a hole dropped');
      folio.clearRangeDirty(off, n);
      pos += n;
      continue;
    }
    const addr = map.addr + (pos - map.offset);
    const seg = { folio, off, len: n };
    const io = ctx.ioend;
    if (io && canMerge(io, pos, addr, map.type, map.flags, n) && !(map.flags & IOMAP_F_BOUNDARY && map.offset === pos)) {
      io.length += n;
      io.segments.push(seg);
    } else {
      await flushIoend(ctx);
      ctx.ioend = newIoend(ctx.inode, pos, addr, map.type, map.flags, seg);
    }
    folio.addWriteback(n);
    pos += n;
  }
}

/** Write back one dirty folio (iomap_writeback_folio). */
async function writebackFolio(ctx: WritepageCtx, folio: Folio): Promise<void> {
  let started = false;
  try {
    await folio.withLocked(async () => {
      if (!folio.isDirty()) return;
      const runs = folio.dirtyRuns();
      traceRange('iomap_writeback_folio', ctx.inode.ino, folio.pos, folio.size);
      let endPos = folio.pos + folio.size;
      if (endPos > ctx.inode.size) {
        // Past or across EOF the mapping's FSVERITY flag decides: ask for it.
        const first = folio.pos + runs[0][0];
        const map = await mapAt(ctx, first, runs[0][1] - runs[0][0]);
        endPos = handleEof(ctx, folio, map);
        if (endPos < 0) {
          folio.clearDirty();
          traceRange('iomap_writeback_skip', ctx.inode.ino, folio.pos, folio.size, 'folio wholly past EOF');
          return;
        }
      }
      const bs = ctx.inode.mapping.blockSize;
      const limit = Math.ceil((endPos - folio.pos) / bs) * bs;
      // Writeback holds one count of its own across all the folio's ioends;
      // it is dropped below once every range was handed out.
      folio.startWriteback();
      started = true;
      for (const [a, b] of runs) {
        const e = Math.min(b, limit);
        if (e <= a) continue;
        // Clear dirty before the I/O: a write after this point redirties.
        folio.clearRangeDirty(a, e - a);
        try {
          await addRange(ctx, folio, folio.pos + a, e - a);
        } catch (err) {
          // Mapping failed (ENOSPC, EIO): the bytes stay dirty for a later try.
          folio.setRangeDirty(a, e - a);
          throw err;
        }
      }
      // Dirty blocks wholly past EOF in a straddling folio were zeroed: drop them.
      if (limit < folio.size) folio.clearRangeDirty(limit, folio.size - limit);
    });
  } finally {
    if (started) folio.endWriteback(1);
  }
}

/**
 * Write back the inode's dirty folios in file order (iomap_writepages).
 * Never throws for I/O errors: they keep the data dirty, are recorded on the
 * mapping for the next `iomapFsync`, and come back in the result. A
 * filesystem's mapBlocks error (ENOSPC, ...) is recorded the same way.
 */
export async function iomapWritepages(
  inode: IomapInode,
  ops: IomapWritebackOps,
  opts: IomapWritebackOptions = {},
): Promise<IomapWritebackResult> {
  const ctx: WritepageCtx = {
    inode,
    ops,
    iomap: undefined,
    ioend: undefined,
    result: { bytes: 0, ioends: 0 },
  };
  const start = Math.floor((opts.start ?? 0) / PAGE_SIZE);
  const end = opts.end === undefined ? Infinity : Math.ceil(opts.end / PAGE_SIZE);
  const maxBytes = opts.maxBytes ?? Infinity;
  let taken = 0;
  for (const folio of inode.mapping.dirtyFolios(start, end)) {
    if (taken >= maxBytes) break;
    taken += folio.size;
    try {
      await writebackFolio(ctx, folio);
    } catch (e) {
      if (!isErrno(e)) throw e;
      inode.mapping.setError(e);
      ctx.result.error ??= e;
      // The mapping may be what failed: ask again for the next folio.
      ctx.iomap = undefined;
    }
  }
  await flushIoend(ctx);
  return ctx.result;
}

/**
 * fsync (the iomap half): write back everything dirty, flush the device,
 * and report the first writeback error since the last fsync (EIO), then
 * forget it, as filemap_write_and_wait + filemap_check_errors do.
 */
export async function iomapFsync(inode: IomapInode, ops: IomapWritebackOps): Promise<void> {
  await iomapWritepages(inode, ops);
  try {
    await inode.device.flush();
  } catch (e) {
    throw isErrno(e) ? e : fail('EIO', `inode ${inode.ino}: device flush failed: ${String(e)}`, e);
  }
  const err = inode.mapping.takeError();
  if (err) throw isErrno(err) ? err : fail('EIO', err.message, err);
}
