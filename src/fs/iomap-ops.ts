/**
 * The reference filesystem's iomap operations: the answers to "what is at
 * this offset" that iomap asks while it reads, writes and writes back, in
 * the way XFS answers them (`xfs_read_iomap_ops`,
 * `xfs_buffered_write_iomap_ops`, `xfs_writeback_ops`).
 *
 * - Reads map the extent map as it is: HOLE, DELALLOC, MAPPED or UNWRITTEN.
 * - Buffered writes reserve delayed allocation over holes (DELALLOC with
 *   IOMAP_F_NEW) and give back, in `end`, the reservation for blocks the
 *   write did not reach.
 * - Writeback turns delalloc into real blocks, as UNWRITTEN extents; the
 *   ioend converts them to written once the device has the data. A crash or
 *   a failed write in between therefore never leaves metadata that points at
 *   blocks holding someone else's old bytes.
 * - Verity metadata: page-cache positions from `inode.cacheMetaStart` are
 *   translated to device-side offsets from `inode.deviceMetaStart`, and those
 *   mappings carry IOMAP_F_FSVERITY.
 *
 * All calls run with the volume's lock held by the `File`/`Volume` front.
 */
import { fail } from '../errors.js';
import {
  IOMAP_DELALLOC,
  IOMAP_F_FSVERITY,
  IOMAP_F_NEW,
  IOMAP_HOLE,
  IOMAP_MAPPED,
  IOMAP_NULL_ADDR,
  IOMAP_UNWRITTEN,
  IOMAP_VERITY,
  IOMAP_WRITE,
  IOMAP_ZERO,
  type Iomap,
  type IomapBeginResult,
  type IomapInode,
  type IomapIoend,
  type IomapOps,
  type IomapType,
  type IomapWritebackOps,
} from '../iomap/types.js';
import type { Allocator } from './allocator.js';
import type { Extent } from './extent-map.js';
import type { Inode } from './inode.js';

/** What `begin` passes to `end` through `Iomap.private`. */
interface BeginPrivate {
  /** Device-side offset minus page-cache offset for this mapping (0 outside verity metadata). */
  shift: number;
}

/** Shared by the ops: the allocator and where the next allocation should start looking. */
export class FsAllocContext {
  /** Next-fit rotor: where an allocation with no better hint starts. */
  rotor = 0;
  constructor(readonly allocator: Allocator) {
    this.rotor = allocator.dataStart;
  }
}

function asInode(i: IomapInode): Inode {
  return i as Inode;
}

function typeOf(e: Extent): IomapType {
  return e.state === 'written' ? IOMAP_MAPPED : e.state === 'unwritten' ? IOMAP_UNWRITTEN : IOMAP_DELALLOC;
}

/**
 * Where [pos, pos + length) in the page cache lies in the device-side file
 * offsets, and how far an ordinary mapping may reach.
 */
function translate(inode: Inode, pos: number, flags: number): { shift: number; fsFlags: number; limit: number; hole: boolean } {
  const metaWanted = (flags & IOMAP_VERITY) !== 0;
  if (metaWanted || inode.isMetaPos(pos)) {
    const start = inode.cacheMetaStart;
    if (pos < start) {
      throw fail('EIO', `inode ${inode.ino}: fs-verity metadata I/O at ${pos} lies below the metadata area at ${start}`);
    }
    return { shift: inode.deviceMetaStart - start, fsFlags: IOMAP_F_FSVERITY, limit: Infinity, hole: false };
  }
  if (inode.verity === 'none') return { shift: 0, fsFlags: 0, limit: Infinity, hole: false };
  // A file with verity metadata: an ordinary mapping stops where the
  // metadata begins in the page cache, and past EOF it never reaches the
  // device-side metadata area (which may start below the page-cache one).
  return { shift: 0, fsFlags: 0, limit: inode.cacheMetaStart, hole: pos >= inode.deviceMetaStart };
}

/**
 * Blocks of the device-side range that fall into holes: what a write there
 * must reserve. Used by the front to refuse with ENOSPC before anything changes.
 */
export function holeBlocks(inode: Inode, fileBlock: number, endBlock: number): number {
  let n = endBlock - fileBlock;
  for (const e of inode.extents.range(fileBlock, endBlock)) n -= e.blocks;
  return n;
}

/** The ops for reads, buffered writes, zeroing and truncation. */
export class FsIomapOps implements IomapOps {
  constructor(private readonly ctx: FsAllocContext) {}

  begin(iinode: IomapInode, pos: number, length: number, flags: number): IomapBeginResult {
    const inode = asInode(iinode);
    const bs = inode.blockSize;
    const { shift, fsFlags, limit, hole } = translate(inode, pos, flags);
    const b = Math.floor((pos + shift) / bs);
    let reqEnd = Math.ceil((pos + Math.max(length, 1) + shift) / bs);
    if (limit !== Infinity) reqEnd = Math.min(reqEnd, limit / bs);
    if (hole) {
      return {
        iomap: { addr: IOMAP_NULL_ADDR, offset: b * bs, length: (reqEnd - b) * bs, type: IOMAP_HOLE, flags: 0, validityCookie: inode.extents.seq },
      };
    }
    const found = inode.extents.lookup(b);
    const priv: BeginPrivate = { shift };
    if (found.kind === 'extent') {
      const e = found.extent;
      const end = Math.min(e.fileBlock + e.blocks, reqEnd);
      const type = typeOf(e);
      const iomap: Iomap = {
        addr: type === IOMAP_DELALLOC ? IOMAP_NULL_ADDR : (e.devBlock + (b - e.fileBlock)) * bs,
        offset: b * bs - shift,
        length: (end - b) * bs,
        type,
        flags: fsFlags,
        private: priv,
        validityCookie: inode.extents.seq,
      };
      return { iomap };
    }
    const end = Math.min(found.fileBlock + found.blocks, reqEnd);
    const iomap: Iomap = { addr: IOMAP_NULL_ADDR, offset: b * bs - shift, length: (end - b) * bs, type: IOMAP_HOLE, flags: fsFlags, private: priv };
    if ((flags & IOMAP_WRITE) !== 0 && (flags & IOMAP_ZERO) === 0) {
      // xfs_buffered_write_iomap_begin: a hole under a buffered write gets a
      // delalloc reservation now (ENOSPC here, at write time), blocks later.
      this.ctx.allocator.reserve(end - b);
      inode.extents.insert({ fileBlock: b, blocks: end - b, devBlock: -1, state: 'delalloc' });
      iomap.type = IOMAP_DELALLOC;
      iomap.flags |= IOMAP_F_NEW;
    }
    // After the reservation above, which changed the map itself.
    iomap.validityCookie = inode.extents.seq;
    return { iomap };
  }

  /**
   * A write or zero step holds its mapping while it gets folios, and getting
   * one may run pressure writeback, which allocates delalloc blocks and
   * converts unwritten ones: any change to the extent map since begin()
   * makes the mapping stale, and iomap maps again (xfs_iomap_valid).
   */
  iomapValid(iinode: IomapInode, iomap: Iomap): boolean {
    return iomap.validityCookie === asInode(iinode).extents.seq;
  }

  end(iinode: IomapInode, pos: number, length: number, written: number, flags: number, iomap: Iomap): void {
    void length;
    void flags;
    if (iomap.type !== IOMAP_DELALLOC || (iomap.flags & IOMAP_F_NEW) === 0) return;
    const inode = asInode(iinode);
    const bs = inode.blockSize;
    const shift = (iomap.private as BeginPrivate | undefined)?.shift ?? 0;
    // Blocks this step reserved but did not write into hold no dirty data:
    // give them back, as xfs_buffered_write_iomap_end punches them.
    const from = Math.ceil((pos + written + shift) / bs);
    const to = (iomap.offset + iomap.length + shift) / bs;
    if (from >= to) return;
    for (const piece of inode.extents.range(from, to)) {
      if (piece.state !== 'delalloc') continue;
      inode.extents.punch(piece.fileBlock, piece.fileBlock + piece.blocks);
      this.ctx.allocator.unreserve(piece.blocks);
    }
  }
}

/** The ops writeback calls: allocate delalloc, convert unwritten on completion. */
export class FsWritebackOps implements IomapWritebackOps {
  constructor(private readonly ctx: FsAllocContext) {}

  mapBlocks(iinode: IomapInode, pos: number, length: number): Iomap {
    const inode = asInode(iinode);
    const bs = inode.blockSize;
    const { shift, fsFlags, limit, hole } = translate(inode, pos, 0);
    const b = Math.floor((pos + shift) / bs);
    if (hole) {
      const end = limit / bs;
      return { addr: IOMAP_NULL_ADDR, offset: b * bs, length: Math.max(end - b, 1) * bs, type: IOMAP_HOLE, flags: 0 };
    }
    const found = inode.extents.lookup(b);
    if (found.kind === 'hole') {
      const end = found.blocks === Infinity ? Math.ceil((pos + length + shift) / bs) : found.fileBlock + found.blocks;
      return { addr: IOMAP_NULL_ADDR, offset: b * bs - shift, length: Math.max(end - b, 1) * bs, type: IOMAP_HOLE, flags: fsFlags };
    }
    let e = found.extent;
    if (e.state === 'delalloc') {
      // Allocate the whole delalloc extent from here, not just the range
      // asked for: one allocation for what the file wrote in one go is what
      // keeps it contiguous (xfs_bmapi_convert_delalloc does the same).
      const want = e.fileBlock + e.blocks - b;
      const run = this.ctx.allocator.allocate(want, this.hint(inode, b), true);
      this.ctx.rotor = run.start + run.blocks;
      inode.extents.insert({ fileBlock: b, blocks: run.blocks, devBlock: run.start, state: 'unwritten' });
      inode.metaDirty = true;
      e = { fileBlock: b, blocks: run.blocks, devBlock: run.start, state: 'unwritten' };
    }
    return {
      addr: (e.devBlock + (b - e.fileBlock)) * bs,
      offset: b * bs - shift,
      length: (e.fileBlock + e.blocks - b) * bs,
      type: typeOf(e),
      flags: fsFlags,
    };
  }

  ioendCompletion(ioend: IomapIoend, error?: Error): void {
    if (error !== undefined || ioend.type !== IOMAP_UNWRITTEN) return;
    const inode = asInode(ioend.inode);
    const bs = inode.blockSize;
    const shift = (ioend.flags & IOMAP_F_FSVERITY) !== 0 ? inode.deviceMetaStart - inode.cacheMetaStart : 0;
    const from = Math.floor((ioend.offset + shift) / bs);
    const to = Math.ceil((ioend.offset + ioend.length + shift) / bs);
    if (inode.extents.convertUnwritten(from, to) > 0) inode.metaDirty = true;
  }

  /** Right after the block before `fileBlock` when that one is allocated, else the rotor. */
  private hint(inode: Inode, fileBlock: number): number {
    if (fileBlock > 0) {
      const prev = inode.extents.lookup(fileBlock - 1);
      if (prev.kind === 'extent' && prev.extent.state !== 'delalloc') return prev.extent.devBlock + 1;
    }
    return this.ctx.rotor;
  }
}
