// The folio arena: a buddy allocator over this module's linear memory.
//
// Folios, hashing scratch buffers and anything else the TypeScript side keeps
// in WASM memory come from here, in power-of-two runs of 4 KiB pages aligned
// to their own size (a 2 MiB folio is 2 MiB aligned, as in the kernel's
// index space). Memory grows one 4 MiB chunk at a time and never shrinks;
// freed runs coalesce with their buddies so large folios can be had again
// after small ones were freed.
//
// Pointers cross the boundary as u32: the TypeScript side must read them with
// `>>> 0` because a pointer past 2 GiB arrives as a negative i32.

export const ARENA_PAGE_SHIFT: u32 = 12;
export const ARENA_MAX_ORDER: u32 = 10; // 4 MiB, the largest run
const PAGE: u32 = 1 << ARENA_PAGE_SHIFT;
const CHUNK: u32 = PAGE << ARENA_MAX_ORDER;
const MAX_PAGES: u32 = 1 << 20; // 4 GiB of 4 KiB pages

// One state byte per page of the 4 GiB address space, for the head page of
// each run: FREE|order for a free run, USED|order for an allocated one.
const FREE: u8 = 0x20;
const USED: u8 = 0x40;
const ORDER_MASK: u8 = 0x1f;

const stateBase: usize = (__heap_base + 0xffff) & ~<usize>0xffff;
const arenaBase: usize = (stateBase + MAX_PAGES + CHUNK - 1) & ~<usize>(CHUNK - 1);
let arenaEnd: usize = arenaBase;
let bytesUsed: usize = 0;

// Free lists, one per order: a doubly linked list threaded through the first
// eight bytes of each free run (0 is the null pointer; no run starts at 0).
const freeHeads: usize = memory.data(4 * (ARENA_MAX_ORDER + 1), 4);

// @ts-ignore: decorator
@inline function stateAt(ptr: usize): usize {
  return stateBase + ((ptr - arenaBase) >> ARENA_PAGE_SHIFT);
}

function pushFree(ptr: usize, order: u32): void {
  const head = load<u32>(freeHeads + (order << 2));
  store<u32>(ptr, head);
  store<u32>(ptr, 0, 4);
  if (head != 0) store<u32>(head, <u32>ptr, 4);
  store<u32>(freeHeads + (order << 2), <u32>ptr);
  store<u8>(stateAt(ptr), FREE | <u8>order);
}

function unlinkFree(ptr: usize, order: u32): void {
  const next = load<u32>(ptr);
  const prev = load<u32>(ptr, 4);
  if (prev != 0) store<u32>(prev, next);
  else store<u32>(freeHeads + (order << 2), next);
  if (next != 0) store<u32>(next, prev, 4);
  store<u8>(stateAt(ptr), 0);
}

function ensureStateTable(): bool {
  const need = arenaBase;
  const have = <usize>memory.size() << 16;
  if (have >= need) return true;
  return memory.grow(<i32>((need - have + 0xffff) >> 16)) >= 0;
}

function growChunk(): bool {
  if (!ensureStateTable()) return false;
  const have = <usize>memory.size() << 16;
  if (arenaEnd + CHUNK > have) {
    const pages = <i32>((arenaEnd + CHUNK - have + 0xffff) >> 16);
    if (memory.grow(pages) < 0) return false;
  }
  const chunk = arenaEnd;
  arenaEnd += CHUNK;
  pushFree(chunk, ARENA_MAX_ORDER);
  return true;
}

/** The order (log2 of pages) of the smallest run holding `bytes`. */
export function arena_order_for(bytes: u32): u32 {
  if (bytes <= PAGE) return 0;
  return 32 - clz<u32>((bytes - 1) >> ARENA_PAGE_SHIFT);
}

/**
 * Allocate a run of 2^order pages, aligned to its size. Returns 0 when the
 * order is too large or memory cannot grow. Contents are not zeroed.
 */
export function arena_alloc_order(order: u32): usize {
  if (order > ARENA_MAX_ORDER) return 0;
  let k = order;
  while (k <= ARENA_MAX_ORDER && load<u32>(freeHeads + (k << 2)) == 0) k++;
  if (k > ARENA_MAX_ORDER) {
    if (!growChunk()) return 0;
    k = ARENA_MAX_ORDER;
  }
  const ptr = <usize>load<u32>(freeHeads + (k << 2));
  unlinkFree(ptr, k);
  while (k > order) {
    k--;
    pushFree(ptr + (<usize>PAGE << k), k);
  }
  store<u8>(stateAt(ptr), USED | <u8>order);
  bytesUsed += <usize>PAGE << order;
  return ptr;
}

/** Allocate at least `bytes` (rounded up to a power-of-two run of pages). */
export function arena_alloc(bytes: u32): usize {
  return arena_alloc_order(arena_order_for(bytes));
}

/**
 * Free a run returned by arena_alloc*. Returns 0, or -1 when `ptr` is not the
 * head of an allocated run (a double free or a stray pointer), in which case
 * nothing changes.
 */
export function arena_free(ptr: usize): i32 {
  if (ptr < arenaBase || ptr >= arenaEnd || (ptr & (PAGE - 1)) != 0) return -1;
  const st = load<u8>(stateAt(ptr));
  if ((st & USED) == 0) return -1;
  let order = <u32>(st & ORDER_MASK);
  store<u8>(stateAt(ptr), 0);
  bytesUsed -= <usize>PAGE << order;
  while (order < ARENA_MAX_ORDER) {
    const buddy = arenaBase + ((ptr - arenaBase) ^ (<usize>PAGE << order));
    if (load<u8>(stateAt(buddy)) != (FREE | <u8>order)) break;
    unlinkFree(buddy, order);
    if (buddy < ptr) ptr = buddy;
    order++;
  }
  pushFree(ptr, order);
  return 0;
}

/** Size in bytes of the allocated run at `ptr`, or 0 if it is not one. */
export function arena_size_of(ptr: usize): u32 {
  if (ptr < arenaBase || ptr >= arenaEnd) return 0;
  const st = load<u8>(stateAt(ptr));
  if ((st & USED) == 0) return 0;
  return PAGE << (st & ORDER_MASK);
}

/** Bytes handed out and not yet freed. */
export function arena_bytes_used(): usize {
  return bytesUsed;
}

/** Bytes of linear memory the arena has claimed (never shrinks). */
export function arena_bytes_reserved(): usize {
  return arenaEnd - arenaBase;
}
