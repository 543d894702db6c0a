/**
 * The range iterator (the kernel's fs/iomap/iter.c). An operation over
 * [pos, pos+len) asks the filesystem for one mapping at a time; the caller's
 * body works on the part of the range that mapping covers and advances the
 * iterator; the iterator tells the filesystem how much was done (end) and
 * asks for the next mapping (begin) until the range is done, the body made
 * no progress, or something failed.
 *
 *   const iter = newIomapIter(inode, pos, len, IOMAP_WRITE);
 *   while (await iomapIter(iter, ops)) iomapIterAdvance(iter, await body(iter));
 */
import { fail, isErrno, MAX_OFFSET } from '../errors.js';
import { traceIomap } from './trace.js';
import {
  IOMAP_F_FSVERITY,
  IOMAP_F_STALE,
  IOMAP_HOLE,
  IOMAP_INLINE,
  IOMAP_NULL_ADDR,
  IOMAP_VERITY,
  type Iomap,
  type IomapInode,
  type IomapOps,
} from './types.js';

/**
 * The state of one walk over a range (the kernel's struct iomap_iter): made
 * by newIomapIter, moved on by iomapIter, advanced by the body through
 * iomapIterAdvance. A body reads `pos`, `iomap` and `srcmap`; the rest is
 * the iterator's.
 */
export interface IomapIterState {
  /** The inode walked. */
  readonly inode: IomapInode;
  /** Start of what is left to do. */
  pos: number;
  /** Bytes left to do. */
  len: number;
  /** IOMAP_WRITE, IOMAP_ZERO, IOMAP_VERITY, ... */
  readonly flags: number;
  /**
   * Bytes the body processed in the current step (set by iomapIterAdvance;
   * the kernel's `status` field, which also carries errors: here errors are
   * thrown, so this is only ever a byte count).
   */
  processed: number;
  /** The current mapping (valid while iomapIter returns true). */
  iomap: Iomap;
  /** Where existing data is read from: the filesystem's srcmap, or `iomap` itself. */
  srcmap: Iomap;
  /** Set once begin() was called for the current step. */
  mapped: boolean;
  /** Steps in a row that ended stale without progress (see STALE_REMAP_LIMIT). */
  staleRemaps: number;
}

/**
 * Largest exclusive end of a range iomap works on: 2^53. Files hold at most
 * MAX_OFFSET (2^53 - 1) bytes, so every offset and size is a safe integer,
 * but the block- and folio-rounded end of a file's last byte can be 2^53
 * itself, which a JS number represents exactly (2^53 + 1 it does not).
 */
export const IOMAP_MAX_END = 2 ** 53;

/**
 * A filesystem whose iomapValid keeps rejecting fresh mappings would make
 * the iterator spin forever. Legitimate staleness needs an extent-map change
 * between begin() and the folio lock, i.e. a pressure writeback that found
 * new work; each one drains dirty data, so a handful in a row is already
 * unusual and this many means a broken filesystem.
 */
const STALE_REMAP_LIMIT = 1000;

const NO_MAP: Iomap = { addr: IOMAP_NULL_ADDR, offset: 0, length: 0, type: IOMAP_HOLE, flags: 0 };

/**
 * A fresh iterator over [pos, pos+len): `pos` at most MAX_OFFSET and the end
 * at most IOMAP_MAX_END (2^53), else EINVAL.
 */
export function newIomapIter(inode: IomapInode, pos: number, len: number, flags: number): IomapIterState {
  // `len > IOMAP_MAX_END - pos` rather than `pos + len > ...`: the sum of two
  // safe integers past 2^53 may round down to 2^53 and slip through.
  if (!Number.isSafeInteger(pos) || pos < 0 || pos > MAX_OFFSET || !Number.isSafeInteger(len) || len < 0 || len > IOMAP_MAX_END - pos)
    throw fail('EINVAL', `range ${pos}+${len} is not within 0..2^53`);
  return { inode, pos, len, flags, processed: 0, iomap: NO_MAP, srcmap: NO_MAP, mapped: false, staleRemaps: 0 };
}

/** Bytes of the current mapping the body may work on from `iter.pos` (iomap_length). */
export function iomapLength(iter: IomapIterState): number {
  return Math.min(iter.len, iter.iomap.offset + iter.iomap.length - iter.pos);
}

/** Record that the body processed `n` bytes of the current step (iomap_iter_advance). */
export function iomapIterAdvance(iter: IomapIterState, n: number): void {
  if (!(n >= 0) || n > iomapLength(iter))
    throw fail('EINVAL', `iomap body advanced ${n} bytes, more than the ${iomapLength(iter)} its mapping covers`);
  iter.processed += n;
}

function checkMapping(iter: IomapIterState, m: Iomap, what: string): void {
  const ok =
    Number.isSafeInteger(m.offset) &&
    Number.isSafeInteger(m.length) &&
    m.length > 0 &&
    m.offset <= iter.pos &&
    m.offset + m.length > iter.pos &&
    m.type >= IOMAP_HOLE &&
    m.type <= IOMAP_INLINE &&
    (m.addr === IOMAP_NULL_ADDR || (Number.isSafeInteger(m.addr) && m.addr >= 0));
  if (!ok)
    throw fail(
      'EIO',
      `filesystem returned a bad ${what} for inode ${iter.inode.ino} at ${iter.pos}: ` +
        `offset ${m.offset} length ${m.length} type ${m.type} addr ${m.addr} (it must cover the position asked for)`,
    );
}

/**
 * Advance to the next mapping: finish the current step (the filesystem's
 * end() with the bytes processed) and, while work is left and the last step
 * made progress, ask begin() for the mapping at the new position. Returns
 * true when the body should run on `iter.iomap`, false when the range is
 * done. A step with no progress ends the walk unless the mapping was marked
 * stale (then it is looked up again).
 */
export async function iomapIter(iter: IomapIterState, ops: IomapOps): Promise<boolean> {
  if (iter.mapped) {
    const processed = iter.processed;
    if (ops.end) await ops.end(iter.inode, iter.pos, iomapLength(iter), processed, iter.flags, iter.iomap);
    // Stale from the body (iomapValid said no) or from end().
    const stale = (iter.iomap.flags & IOMAP_F_STALE) !== 0;
    if (stale) traceIomap('iomap_iter_stale', iter.inode.ino, iter.iomap, iter.flags);
    iter.pos += processed;
    iter.len -= processed;
    iter.processed = 0;
    iter.mapped = false;
    if (iter.len === 0) return false;
    if (processed > 0) iter.staleRemaps = 0;
    else if (!stale) return false;
    else if (++iter.staleRemaps > STALE_REMAP_LIMIT)
      throw fail(
        'EIO',
        `inode ${iter.inode.ino}: the filesystem reported the mapping at ${iter.pos} stale ${STALE_REMAP_LIMIT} times in a row ` +
          `without progress; its iomapValid must accept a mapping begin() just returned while nothing changes the extent map`,
      );
  } else if (iter.len === 0) {
    return false;
  }
  const r = await ops.begin(iter.inode, iter.pos, iter.len, iter.flags);
  const iomap = { ...r.iomap };
  checkMapping(iter, iomap, 'mapping');
  let srcmap = iomap;
  if (r.srcmap && (r.srcmap.type !== IOMAP_HOLE || r.srcmap.flags !== 0)) {
    srcmap = { ...r.srcmap };
    checkMapping(iter, srcmap, 'source mapping');
  }
  if (iter.flags & IOMAP_VERITY) {
    // Requests made for fs-verity metadata are metadata I/O whatever the
    // filesystem said: the seed's rules key off the mapping flag.
    iomap.flags |= IOMAP_F_FSVERITY;
    if (srcmap !== iomap) srcmap.flags |= IOMAP_F_FSVERITY;
  }
  iomap.flags &= ~IOMAP_F_STALE;
  iter.iomap = iomap;
  iter.srcmap = srcmap;
  iter.mapped = true;
  traceIomap('iomap_iter_dstmap', iter.inode.ino, iomap, iter.flags);
  if (srcmap !== iomap) traceIomap('iomap_iter_srcmap', iter.inode.ino, srcmap, iter.flags);
  return true;
}

/**
 * Run `body` over [pos, pos+len) one mapping at a time; `body` returns the
 * bytes it processed of `iomapLength(iter)`. If the body throws, the
 * filesystem's end() still hears how much of the step was done (0), so it
 * can release reservations, and the error propagates. Returns the total
 * bytes processed.
 */
export async function iomapIterate(
  inode: IomapInode,
  pos: number,
  len: number,
  flags: number,
  ops: IomapOps,
  body: (iter: IomapIterState) => Promise<number>,
): Promise<number> {
  const iter = newIomapIter(inode, pos, len, flags);
  const start = pos;
  while (await iomapIter(iter, ops)) {
    let n: number;
    try {
      n = await body(iter);
    } catch (e) {
      if (ops.end) {
        try {
          await ops.end(iter.inode, iter.pos, iomapLength(iter), iter.processed, iter.flags, iter.iomap);
        } catch (e2) {
          if (!isErrno(e2)) throw e2;
        }
      }
      throw e;
    }
    iomapIterAdvance(iter, n);
  }
  return iter.pos - start;
}
