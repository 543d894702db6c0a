/**
 * One inode's page cache (the kernel's address_space): page index to folio,
 * the large-folio order policy, the set of dirty folios for writeback, the
 * readahead state, and the writeback error that fsync reports.
 *
 * Folios are aligned to their size in the file's index space and never
 * overlap; their order lies between `minOrder` (block size over page size,
 * so a block never spans folios) and `maxOrder`.
 */
import { fail } from '../errors.js';
import type { PageCache } from './cache.js';
import { Folio, PAGE_SHIFT, PAGE_SIZE } from './folio.js';
import { newReadaheadState, type ReadaheadState } from './readahead.js';

/** Options of `PageCache.createMapping`. */
export interface AddressSpaceOptions {
  /** Filesystem block size: a power of two from 512 to 65536. */
  blockSize: number;
  /** Largest folio in bytes: a power of two from 4096 to 4 MiB, at least the block size (default 2 MiB). */
  maxFolioSize?: number;
  /** Called when a folio leaves the cache (reclaim or truncate), e.g. to drop fs-verity's verified bits. */
  onEvict?: (folio: Folio) => void;
  /**
   * Called when the mapping gets its first dirty folio (`true`) or loses
   * its last one (`false`), never twice in a row with the same value: what
   * a filesystem's list of dirty inodes listens to (__mark_inode_dirty with
   * I_DIRTY_PAGES, and the inode going clean after writeback).
   */
  onDirtyChange?: (dirty: boolean) => void;
  /** Called when a writeback error is recorded while none was pending (mapping_set_error), so a sync can find it. */
  onError?: () => void;
}

/** Largest folio when AddressSpaceOptions.maxFolioSize is not given: 2 MiB. */
export const DEFAULT_MAX_FOLIO_SIZE = 2 * 1024 * 1024;

function log2Exact(n: number, what: string, lo: number, hi: number): number {
  if (!Number.isInteger(n) || n < lo || n > hi || (n & (n - 1)) !== 0)
    throw fail('EINVAL', `${what} must be a power of two from ${lo} to ${hi}, got ${n}`);
  return 31 - Math.clz32(n);
}

/**
 * The page cache of one inode. Lookups and creation pin the folio they
 * return; the caller releases it with `folio.put()`. Operations on one
 * inode are serialised by the filesystem; folios are locked for I/O.
 */
export class AddressSpace {
  /** log2 of the block size. */
  readonly blockShift: number;
  /** Filesystem block size in bytes. */
  readonly blockSize: number;
  /** Smallest folio order: a folio holds at least one block. */
  readonly minOrder: number;
  /** Largest folio order. */
  readonly maxOrder: number;
  /** Called when a folio leaves the cache (AddressSpaceOptions.onEvict). */
  readonly onEvict: ((folio: Folio) => void) | undefined;
  private readonly onDirtyChange: ((dirty: boolean) => void) | undefined;
  private readonly onError: (() => void) | undefined;
  /** Folios by first page index. */
  private readonly folios = new Map<number, Folio>();
  /** Dirty folios (ordered for writeback by `dirtyFolios`). */
  private readonly dirty = new Set<Folio>();
  /** The writeback error not yet reported by fsync (mapping_set_error). */
  private wbError: Error | undefined;
  /** Readahead state for sequential reads. */
  readonly ra: ReadaheadState = newReadaheadState();

  /** Use `PageCache.createMapping`; EINVAL for a block or folio size out of range. */
  constructor(
    /** The volume's cache the folios count against. */
    readonly cache: PageCache,
    opts: AddressSpaceOptions,
  ) {
    this.blockShift = log2Exact(opts.blockSize, 'block size', 512, 65536);
    this.blockSize = opts.blockSize;
    const maxShift = log2Exact(opts.maxFolioSize ?? DEFAULT_MAX_FOLIO_SIZE, 'max folio size', 4096, 4 << 20);
    this.minOrder = Math.max(0, this.blockShift - PAGE_SHIFT);
    this.maxOrder = maxShift - PAGE_SHIFT;
    if (this.maxOrder < this.minOrder)
      throw fail('EINVAL', `max folio size ${2 ** maxShift} is smaller than the block size ${opts.blockSize}`);
    this.onEvict = opts.onEvict;
    this.onDirtyChange = opts.onDirtyChange;
    this.onError = opts.onError;
  }

  /** Largest folio size in bytes. */
  get maxFolioSize(): number {
    return PAGE_SIZE << this.maxOrder;
  }

  /** Folios cached. */
  get folioCount(): number {
    return this.folios.size;
  }

  /** Dirty folios cached. */
  get dirtyCount(): number {
    return this.dirty.size;
  }

  /**
   * The folio order for an I/O of `bytes` (the kernel's fgf_set_order):
   * log2 of the size rounded down, clamped to [minOrder, maxOrder].
   */
  orderForSize(bytes: number): number {
    const shift = bytes >= 1 ? Math.floor(Math.log2(bytes)) : 0;
    return Math.min(this.maxOrder, Math.max(this.minOrder, shift - PAGE_SHIFT));
  }

  /** The cached folio holding page `index`, if any (no pin taken). */
  lookup(index: number): Folio | undefined {
    for (let o = this.minOrder; o <= this.maxOrder; o++) {
      const start = index - (index % (1 << o));
      const f = this.folios.get(start);
      if (f && f.order >= o && start + (1 << f.order) > index) return f;
    }
    return undefined;
  }

  /** The cached folio holding page `index`, pinned (release with `folio.put()`), or undefined. */
  findFolio(index: number): Folio | undefined {
    const f = this.lookup(index);
    if (f) {
      f.get();
      this.cache.touch(f);
    }
    return f;
  }

  /** True when some folio starts inside pages (index, index + 2^order). */
  private overlapsAfter(index: number, order: number): boolean {
    const step = 1 << this.minOrder;
    const end = index + (1 << order);
    for (let p = index + step; p < end; p += step) if (this.folios.has(p)) return true;
    return false;
  }

  /**
   * The folio holding page `index`, created if missing with an order chosen
   * from `sizeHint` bytes (the write or readahead size): the kernel's
   * __filemap_get_folio with FGP_CREAT. The order is lowered until the folio
   * starts at `index` aligned to its size, ends by `limitIndex` (exclusive)
   * when given, and overlaps no cached folio. Returned pinned: release it
   * with `folio.put()`.
   */
  async getFolio(index: number, sizeHint: number, limitIndex?: number): Promise<Folio> {
    if (!Number.isSafeInteger(index) || index < 0) throw fail('EINVAL', `page index ${index} is out of range`);
    index -= index % (1 << this.minOrder);
    let order = this.orderForSize(sizeHint);
    // A folio never takes more than a quarter of the budget, so reclaim can
    // always make room for it and a small budget stays a budget.
    while (order > this.minOrder && PAGE_SIZE << order > this.cache.budget / 4) order--;
    await this.cache.reserve(PAGE_SIZE << order);
    for (;;) {
      const have = this.findFolio(index);
      if (have) return have;
      while (order > this.minOrder && index % (1 << order) !== 0) order--;
      while (order > this.minOrder && limitIndex !== undefined && index + (1 << order) > limitIndex) order--;
      while (order > this.minOrder && this.overlapsAfter(index, order)) order--;
      const ptr = this.cache.wasm.x.arena_alloc_order(order) >>> 0;
      if (ptr === 0) {
        if (order > this.minOrder) {
          order--;
          continue;
        }
        throw fail('ENOSPC', `WebAssembly memory exhausted allocating a ${PAGE_SIZE << order}-byte folio`);
      }
      let f: Folio;
      try {
        f = new Folio(this, index, order, ptr, this.cache.wasm.x);
      } catch (e) {
        this.cache.wasm.free(ptr);
        throw e;
      }
      this.folios.set(index, f);
      this.cache.added(f);
      f.get();
      return f;
    }
  }

  /** Called by Folio when its dirty state changes. */
  noteDirty(folio: Folio, dirty: boolean): void {
    const had = this.dirty.size > 0;
    if (dirty) this.dirty.add(folio);
    else this.dirty.delete(folio);
    this.cache.noteDirty(folio, dirty);
    const has = this.dirty.size > 0;
    if (has !== had) this.onDirtyChange?.(has);
  }

  /** Dirty folios overlapping pages [startIndex, endIndex), in index order (the writeback walk). */
  dirtyFolios(startIndex = 0, endIndex = Infinity): Folio[] {
    const out: Folio[] = [];
    for (const f of this.dirty) if (f.index < endIndex && f.index + (1 << f.order) > startIndex) out.push(f);
    return out.sort((a, b) => a.index - b.index);
  }

  /** All cached folios overlapping pages [startIndex, endIndex), in index order. */
  foliosIn(startIndex = 0, endIndex = Infinity): Folio[] {
    const out: Folio[] = [];
    for (const f of this.folios.values()) if (f.index < endIndex && f.index + (1 << f.order) > startIndex) out.push(f);
    return out.sort((a, b) => a.index - b.index);
  }

  /** Remove an idle folio from the cache and free it (reclaim). */
  evict(folio: Folio): void {
    if (folio.dead) return;
    if (folio.isDirty()) folio.clearDirty();
    folio.dead = true;
    this.folios.delete(folio.index);
    this.onEvict?.(folio);
    this.cache.removed(folio);
  }

  /**
   * Drop cached data from byte `start` to `end` (truncate_inode_pages_range
   * and invalidate): folios wholly inside go away, dirty or not, once their
   * writeback finished; a folio straddling an edge stays, with the bytes
   * inside the range zeroed and the blocks wholly inside no longer dirty.
   */
  async truncateRange(start: number, end = Infinity): Promise<void> {
    if (!(start >= 0) || !(end >= start)) throw fail('EINVAL', `bad truncate range ${start}..${end}`);
    const first = Math.floor(start / PAGE_SIZE);
    const last = end === Infinity ? Infinity : Math.ceil(end / PAGE_SIZE);
    for (const f of this.foliosIn(first, last)) {
      await f.withLocked(() => {
        const fs = f.pos;
        const fe = fs + f.size;
        if (start <= fs && end >= fe) {
          this.evict(f);
        } else {
          const a = Math.max(start, fs) - fs;
          const b = Math.min(end, fe) - fs;
          f.zero(a, b - a);
          f.clearRangeDirty(a, b - a);
        }
      });
    }
  }

  /** Record a writeback error for the next fsync (mapping_set_error). */
  setError(e: Error): void {
    if (this.wbError !== undefined) return;
    this.wbError = e;
    this.onError?.();
  }

  /** Return and clear the recorded writeback error (filemap_check_errors). */
  takeError(): Error | undefined {
    const e = this.wbError;
    this.wbError = undefined;
    return e;
  }

  /** Drop every folio (the inode goes away). Dirty data is discarded. */
  async clear(): Promise<void> {
    await this.truncateRange(0);
  }
}
