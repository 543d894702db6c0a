// Folio kernels: per-folio block state bitmaps, batch zeroing decisions, and
// folio copy / zero. Numbers only across the boundary; the TypeScript page
// cache (src/pagecache) owns the policy.
//
// Block state follows the kernel's iomap_folio_state: one bitmap per folio,
// the uptodate bits for blocks 0..n-1 then the dirty bits at n..2n-1. It
// exists only when a folio holds more than one block; a single-block folio's
// state is the folio's own flags, kept on the TypeScript side.
//
// Bitmaps are small (2 bits per block: 1 KiB at most, for a 2 MiB folio of
// 512-byte blocks), so they come from a slab of power-of-two slots carved out
// of arena pages rather than a whole 4 KiB arena page each.

import { arena_alloc_order } from "./arena";

const SLAB_MIN_SHIFT: u32 = 3; // 8-byte slots (up to 32 blocks)
const SLAB_MAX_SHIFT: u32 = 11; // 2 KiB slots
const SLAB_CLASSES: u32 = SLAB_MAX_SHIFT - SLAB_MIN_SHIFT + 1;
const slabFree: usize = memory.data(4 * SLAB_CLASSES, 4);
let slabBytes: usize = 0;

function slabClass(bytes: u32): u32 {
  if (bytes <= (<u32>1 << SLAB_MIN_SHIFT)) return 0;
  return (32 - clz<u32>(bytes - 1)) - SLAB_MIN_SHIFT;
}

/** Bytes of the bitmap for a folio of `nblocks` blocks (two bits each, whole u32 words). */
export function ifs_bytes(nblocks: u32): u32 {
  return ((nblocks * 2 + 31) >> 5) << 2;
}

/**
 * Allocate a zeroed state bitmap for `nblocks` blocks (all not uptodate, all
 * clean). Returns 0 if memory cannot grow or `nblocks` is too large.
 */
export function ifs_alloc(nblocks: u32): usize {
  const bytes = ifs_bytes(nblocks);
  if (bytes > (<u32>1 << SLAB_MAX_SHIFT)) return 0;
  const cls = slabClass(bytes);
  const slot: u32 = <u32>1 << (cls + SLAB_MIN_SHIFT);
  let head = <usize>load<u32>(slabFree + (cls << 2));
  if (head == 0) {
    const page = arena_alloc_order(0);
    if (page == 0) return 0;
    slabBytes += 4096;
    // Thread the new page's slots onto the free list.
    for (let off: u32 = 4096 - slot; ; off -= slot) {
      store<u32>(page + off, <u32>head);
      head = page + off;
      if (off == 0) break;
    }
  }
  store<u32>(slabFree + (cls << 2), load<u32>(head));
  memory.fill(head, 0, slot);
  return head;
}

/** Return a bitmap from ifs_alloc(nblocks) to its slab. */
export function ifs_free(ptr: usize, nblocks: u32): void {
  const cls = slabClass(ifs_bytes(nblocks));
  store<u32>(ptr, load<u32>(slabFree + (cls << 2)));
  store<u32>(slabFree + (cls << 2), <u32>ptr);
}

/** Arena bytes held by bitmap slabs (never returned: slabs are reused). */
export function ifs_slab_bytes(): usize {
  return slabBytes;
}

// @ts-ignore: decorator
@inline function maskFrom(bit: u32): u32 {
  return <u32>0xffffffff << (bit & 31);
}

/** Set bits [start, start+n). */
export function bits_set(map: usize, start: u32, n: u32): void {
  if (n == 0) return;
  const end = start + n;
  let w = start >> 5;
  const lastW = (end - 1) >> 5;
  let m = maskFrom(start);
  while (w < lastW) {
    store<u32>(map + (w << 2), load<u32>(map + (w << 2)) | m);
    m = 0xffffffff;
    w++;
  }
  const tail: u32 = (end & 31) == 0 ? 0xffffffff : ~maskFrom(end);
  store<u32>(map + (w << 2), load<u32>(map + (w << 2)) | (m & tail));
}

/** Clear bits [start, start+n). */
export function bits_clear(map: usize, start: u32, n: u32): void {
  if (n == 0) return;
  const end = start + n;
  let w = start >> 5;
  const lastW = (end - 1) >> 5;
  let m = maskFrom(start);
  while (w < lastW) {
    store<u32>(map + (w << 2), load<u32>(map + (w << 2)) & ~m);
    m = 0xffffffff;
    w++;
  }
  const tail: u32 = (end & 31) == 0 ? 0xffffffff : ~maskFrom(end);
  store<u32>(map + (w << 2), load<u32>(map + (w << 2)) & ~(m & tail));
}

/**
 * First set bit in [start, end), or `end` if none. With the uptodate bits at
 * 0..n-1 and dirty bits at n..2n-1 this finds the next uptodate or dirty block.
 */
export function bits_next_set(map: usize, start: u32, end: u32): u32 {
  if (start >= end) return end;
  let w = start >> 5;
  let v = load<u32>(map + (w << 2)) & maskFrom(start);
  const lastW = (end - 1) >> 5;
  while (true) {
    if (v != 0) {
      const bit = (w << 5) + ctz<u32>(v);
      return bit < end ? bit : end;
    }
    if (w >= lastW) return end;
    w++;
    v = load<u32>(map + (w << 2));
  }
}

/** First clear bit in [start, end), or `end` if none. */
export function bits_next_clear(map: usize, start: u32, end: u32): u32 {
  if (start >= end) return end;
  let w = start >> 5;
  let v = ~load<u32>(map + (w << 2)) & maskFrom(start);
  const lastW = (end - 1) >> 5;
  while (true) {
    if (v != 0) {
      const bit = (w << 5) + ctz<u32>(v);
      return bit < end ? bit : end;
    }
    if (w >= lastW) return end;
    w++;
    v = ~load<u32>(map + (w << 2));
  }
}

/** 1 when every bit of [start, start+n) is set (true for n == 0). */
export function bits_all_set(map: usize, start: u32, n: u32): i32 {
  return bits_next_clear(map, start, start + n) == start + n ? 1 : 0;
}

/** 1 when any bit of [start, start+n) is set. */
export function bits_any_set(map: usize, start: u32, n: u32): i32 {
  return bits_next_set(map, start, start + n) < start + n ? 1 : 0;
}

/**
 * Start of the first dirty run at or after block `from` in a folio of
 * `nblocks` blocks, in blocks, or `nblocks` if none. Its end is
 * ifs_dirty_run_end(map, nblocks, start).
 */
export function ifs_next_dirty(map: usize, nblocks: u32, from: u32): u32 {
  return bits_next_set(map, nblocks + from, nblocks + nblocks) - nblocks;
}

/** End (exclusive, in blocks) of the dirty run starting at block `start`. */
export function ifs_dirty_run_end(map: usize, nblocks: u32, start: u32): u32 {
  return bits_next_clear(map, nblocks + start, nblocks + nblocks) - nblocks;
}

// Mapping types and flags, as in src/iomap/types.ts.
const IOMAP_MAPPED: u32 = 2;
const IOMAP_F_NEW: u32 = 1 << 0;
const IOMAP_F_FSVERITY: u32 = 1 << 10;

/**
 * The zeroing decision (the kernel's iomap_block_needs_zeroing, with the seed
 * patch) for a run of `nblocks` blocks of `blockSize` bytes starting at file
 * position `pos`, all under one source mapping of `type` and `flags`, for a
 * file of `isize` bytes. The answer is monotone along the run (once a block
 * is at or past i_size so is every later one), so it is returned as the
 * number of leading blocks that must be read from the device; the rest need
 * zeroing instead.
 *
 * Not MAPPED or NEW: nothing to read. FSVERITY: metadata lives past i_size,
 * read it all. Otherwise read the blocks that start below i_size.
 */
export function blocks_to_read(pos: f64, blockSize: u32, nblocks: u32, type: u32, flags: u32, isize: f64): u32 {
  if (type != IOMAP_MAPPED) return 0;
  if ((flags & IOMAP_F_NEW) != 0) return 0;
  if ((flags & IOMAP_F_FSVERITY) != 0) return nblocks;
  if (pos >= isize) return 0;
  const below = Math.ceil((isize - pos) / <f64>blockSize);
  return below >= <f64>nblocks ? nblocks : <u32>below;
}

/** Copy `len` bytes from `src` to `dst` (user buffer to folio or back); ranges may overlap. */
export function folio_copy(dst: usize, src: usize, len: u32): void {
  memory.copy(dst, src, len);
}

/** Zero `len` bytes at `ptr`. */
export function folio_zero(ptr: usize, len: u32): void {
  memory.fill(ptr, 0, len);
}

/** Fill `len` bytes at `ptr` with `value` (tests poison folios with it). */
export function folio_fill(ptr: usize, value: u32, len: u32): void {
  memory.fill(ptr, <u8>value, len);
}
