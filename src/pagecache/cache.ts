/**
 * The page cache shared by a volume: the byte budget, least-recently-used
 * reclaim of clean folios, and the pressure callback through which the
 * filesystem writes dirty data back when dirty folios push the cache over
 * its budget. The cache never imports iomap or a filesystem: writeback is
 * whatever the registered callback does.
 */
import { fail } from '../errors.js';
import { loadWasm, type Wasm } from '../wasm/index.js';
import { AddressSpace, type AddressSpaceOptions } from './address-space.js';
import type { Folio } from './folio.js';

/** Default byte budget of a cache: 256 MiB. */
export const DEFAULT_CACHE_BYTES = 256 * 1024 * 1024;

/**
 * Called by the cache when dirty folios keep it over budget: write back at
 * least `bytesNeeded` bytes of dirty data (or as much as there is) so they
 * can be reclaimed. Runs one at a time; it must not wait on an operation
 * that is itself waiting for cache memory.
 */
export type PressureCallback = (bytesNeeded: number) => Promise<void> | void;

/** Options of `PageCache.create` and its constructor. */
export interface PageCacheOptions {
  /** Byte budget for folio memory (default 256 MiB, at least 64 KiB). */
  budgetBytes?: number;
  /** The WASM instance whose memory holds the folios (default: the shared one). */
  wasm?: Wasm;
}

/**
 * The folio memory of one volume: folios of every inode's AddressSpace come
 * from its WASM instance and count against its budget. Not thread-safe (one
 * realm); operations interleave only at their awaits.
 */
export class PageCache {
  /** Byte budget for folio memory. */
  budget: number;
  /** Bytes of folios currently cached. */
  bytes = 0;
  /** Bytes of dirty folios. */
  dirtyBytes = 0;
  /** Bytes of folios under writeback. */
  writebackBytes = 0;
  /** Registered by the filesystem: write back dirty data under memory pressure. */
  onPressure: PressureCallback | undefined;
  /** Clean folios in reclaim order, least recently used first (a Set keeps insertion order). */
  private readonly lru = new Set<Folio>();
  private pressureRun: Promise<void> | undefined;
  /** Largest `bytes` ever reached, for tests and benchmarks. */
  peakBytes = 0;

  /** A cache over `wasm`'s memory; EINVAL for a budget below 64 KiB or not an integer. */
  constructor(
    /** The instance whose memory holds the folios. */
    readonly wasm: Wasm,
    opts: PageCacheOptions = {},
  ) {
    const budget = opts.budgetBytes ?? DEFAULT_CACHE_BYTES;
    if (!Number.isSafeInteger(budget) || budget < 65536)
      throw fail('EINVAL', `page cache budget must be an integer of at least 65536 bytes, got ${budget}`);
    this.budget = budget;
  }

  /** A cache over the shared WASM instance (or `opts.wasm`). */
  static async create(opts: PageCacheOptions = {}): Promise<PageCache> {
    return new PageCache(opts.wasm ?? (await loadWasm()), opts);
  }

  /** A new, empty address space (one per inode). */
  createMapping(opts: AddressSpaceOptions): AddressSpace {
    return new AddressSpace(this, opts);
  }

  /** Record a use of `folio` (moves it to the most recently used end). */
  touch(folio: Folio): void {
    if (folio.isDirty()) return;
    this.lru.delete(folio);
    this.lru.add(folio);
  }

  /** Called by AddressSpace when a folio joins the cache. */
  added(folio: Folio): void {
    this.bytes += folio.size;
    if (this.bytes > this.peakBytes) this.peakBytes = this.bytes;
    this.lru.add(folio);
  }

  /** Called by AddressSpace when a folio leaves the cache: frees its memory. */
  removed(folio: Folio): void {
    this.lru.delete(folio);
    this.bytes -= folio.size;
    folio.releaseState();
    this.wasm.free(folio.ptr);
  }

  /** Called by AddressSpace when a folio becomes dirty or clean: keeps `dirtyBytes` and the reclaim list. */
  noteDirty(folio: Folio, dirty: boolean): void {
    this.dirtyBytes += dirty ? folio.size : -folio.size;
    // Only clean folios sit on the reclaim list, so reclaim never scans past
    // a cache full of dirty data (that would make every allocation O(n)).
    if (dirty) this.lru.delete(folio);
    else if (!folio.dead) this.lru.add(folio);
  }

  /** Called by Folio when it enters or leaves writeback: keeps `writebackBytes`. */
  noteWriteback(folio: Folio, wb: boolean): void {
    this.writebackBytes += wb ? folio.size : -folio.size;
  }

  /**
   * Reclaim clean, idle folios, least recently used first, until `bytes +
   * need <= budget` or none is left. Returns the bytes freed.
   */
  shrink(need = 0): number {
    let freed = 0;
    for (const f of this.lru) {
      if (this.bytes + need <= this.budget) break;
      if (f.pinned || f.isDirty() || f.writeback || f.isLocked()) continue;
      f.mapping.evict(f);
      freed += f.size;
    }
    return freed;
  }

  /**
   * Make room for `need` more bytes: reclaim clean folios, and when dirty
   * data is what keeps the cache over budget, have the filesystem write it
   * back (the pressure callback) and reclaim again. If nothing can be
   * reclaimed (everything pinned, or no callback), the cache goes over
   * budget by what the current operations hold rather than fail them.
   */
  async reserve(need: number): Promise<void> {
    if (this.bytes + need <= this.budget) return;
    this.shrink(need);
    if (this.bytes + need <= this.budget) return;
    if (this.onPressure && this.dirtyBytes > 0) {
      if (!this.pressureRun) {
        const cb = this.onPressure;
        const want = this.bytes + need - this.budget;
        this.pressureRun = (async () => {
          try {
            await cb(want);
          } finally {
            this.pressureRun = undefined;
          }
        })();
      }
      // A failed writeback is recorded on its mapping for fsync; the
      // allocation that triggered it goes on regardless.
      await this.pressureRun.catch(() => undefined);
      this.shrink(need);
    }
  }

  /** Reclaim every clean, idle folio (the `drop_caches` of tests). */
  dropClean(): number {
    const saved = this.budget;
    this.budget = 0;
    try {
      return this.shrink(0);
    } finally {
      this.budget = saved;
    }
  }
}
