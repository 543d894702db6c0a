/**
 * A folio: 2^order 4 KiB pages of one file, aligned to its size in the file's
 * index space, whose bytes live in WASM memory at `ptr`.
 *
 * Block state follows the kernel's iomap_folio_state: when the folio holds
 * more than one block, a WASM bitmap (uptodate bits then dirty bits) says
 * which blocks are up to date and which are dirty; a single-block folio uses
 * the folio's own flags. The folio lock serialises I/O and copies on the
 * folio; a pin (`get()` / `put()`) keeps it from reclaim while an operation
 * holds it. Writeback counts the bytes its ioends still owe the folio (the
 * kernel's write_bytes_pending), so a folio split across ioends leaves
 * writeback once, when the last of them completes.
 *
 * Only this folder calls the folio kernels of the WebAssembly module; the
 * layers above copy and zero through the methods here.
 */
import type { AddressSpace } from './address-space.js';
import type { WasmExports } from '../wasm/index.js';
import { fail } from '../errors.js';

/** log2 of the page size: folios are 2^order pages of 4 KiB. */
export const PAGE_SHIFT = 12;
/** The page size, 4 KiB: the unit of the cache's index space. */
export const PAGE_SIZE = 1 << PAGE_SHIFT;

/**
 * One cached folio. Created only by `AddressSpace.getFolio`; callers hold a
 * pin while they use it and the lock while they read, copy into or zero it.
 */
export class Folio {
  /** Bitmap pointer (0 when the folio holds a single block). */
  ifs: number;
  /** Blocks in the folio. */
  readonly nblocks: number;
  private uptodateFlag = false;
  private dirtyFlag = false;
  private writebackFlag = false;
  /** Bytes of writeback not yet completed, plus one while writeback is being set up. */
  private writebackPending = 0;
  /** Operations holding the folio; a pinned folio is never reclaimed. */
  private pins = 0;
  /** Removed from its mapping (truncated or reclaimed): memory is gone. */
  dead = false;
  private locked = false;
  private lockWaiters: Array<() => void> = [];
  private wbWaiters: Array<() => void> = [];

  /** Use `AddressSpace.getFolio`; ENOSPC when memory for the block state cannot be had. */
  constructor(
    /** The inode's cache holding the folio. */
    readonly mapping: AddressSpace,
    /** First page index. */
    readonly index: number,
    /** log2 of the page count. */
    readonly order: number,
    /** WASM address of the first byte. */
    readonly ptr: number,
    private readonly fx: WasmExports,
  ) {
    this.nblocks = (PAGE_SIZE << order) >>> mapping.blockShift;
    if (this.nblocks > 1) {
      const map = fx.ifs_alloc(this.nblocks) >>> 0;
      if (map === 0) throw fail('ENOSPC', `WebAssembly memory exhausted allocating folio block state`);
      this.ifs = map;
    } else {
      this.ifs = 0;
    }
  }

  /** File byte offset of the first byte. */
  get pos(): number {
    return this.index * PAGE_SIZE;
  }

  /** Bytes in the folio. */
  get size(): number {
    return PAGE_SIZE << this.order;
  }

  /** A view of the folio's bytes, valid until the next WASM allocation. */
  bytes(offset = 0, len = this.size - offset): Uint8Array {
    return this.mapping.cache.wasm.bytes(this.ptr + offset, len);
  }

  private checkSpan(what: string, off: number, len: number): void {
    if (!(off >= 0 && len >= 0 && off + len <= this.size))
      throw fail('EINVAL', `folio ${what} of ${len} bytes at ${off} is outside the ${this.size}-byte folio`);
  }

  /** Zero bytes [off, off+len) of the folio; EINVAL when the span is not inside it. */
  zero(off: number, len: number): void {
    this.checkSpan('zero', off, len);
    this.fx.folio_zero(this.ptr + off, len);
  }

  /** Fill bytes [off, off+len) of the folio with `value` (tests poison folios with it); EINVAL outside it. */
  fill(value: number, off = 0, len = this.size - off): void {
    this.checkSpan('fill', off, len);
    this.fx.folio_fill(this.ptr + off, value, len);
  }

  /**
   * Copy `n` bytes of `data` from `dataOff` into the folio at `off`: inside
   * WASM memory when `data` lives there already, else from JS. EINVAL when
   * the span is not inside the folio.
   */
  copyIn(off: number, data: Uint8Array, dataOff: number, n: number): void {
    this.checkSpan('copy', off, n);
    const wasm = this.mapping.cache.wasm;
    if (data.buffer === this.fx.memory.buffer) this.fx.folio_copy(this.ptr + off, data.byteOffset + dataOff, n);
    else wasm.u8().set(data.subarray(dataOff, dataOff + n), this.ptr + off);
  }

  private blockRange(off: number, len: number): [number, number] {
    const shift = this.mapping.blockShift;
    return [off >>> shift, Math.ceil((off + len) / (1 << shift))];
  }

  // -- uptodate ------------------------------------------------------------

  /** Every block is up to date. */
  isUptodate(): boolean {
    return this.uptodateFlag;
  }

  /** Every block touching [off, off+len) is up to date. */
  isRangeUptodate(off: number, len: number): boolean {
    if (this.uptodateFlag) return true;
    if (this.ifs === 0 || len === 0) return len === 0;
    const [a, b] = this.blockRange(off, len);
    return this.fx.bits_all_set(this.ifs, a, b - a) === 1;
  }

  /** Block index of the first block in [from, to) that is (`want` true) or is not up to date, or `to`. */
  nextBlock(from: number, to: number, want: boolean): number {
    if (this.ifs === 0) return this.uptodateFlag === want ? from : to;
    return want ? this.fx.bits_next_set(this.ifs, from, to) : this.fx.bits_next_clear(this.ifs, from, to);
  }

  /** Mark the blocks touching [off, off+len) up to date. */
  setRangeUptodate(off: number, len: number): void {
    if (len === 0) return;
    if (this.ifs === 0) {
      this.uptodateFlag = true;
      return;
    }
    const [a, b] = this.blockRange(off, len);
    this.fx.bits_set(this.ifs, a, b - a);
    if (this.fx.bits_all_set(this.ifs, 0, this.nblocks) === 1) this.uptodateFlag = true;
  }

  /** Forget that the blocks touching [off, off+len) are up to date (a failed read). */
  clearRangeUptodate(off: number, len: number): void {
    if (len === 0) return;
    this.uptodateFlag = false;
    if (this.ifs === 0) return;
    const [a, b] = this.blockRange(off, len);
    this.fx.bits_clear(this.ifs, a, b - a);
  }

  // -- dirty ---------------------------------------------------------------

  /** Any block is dirty. */
  isDirty(): boolean {
    return this.dirtyFlag;
  }

  /** Mark the blocks touching [off, off+len) dirty (they must be up to date). */
  setRangeDirty(off: number, len: number): void {
    if (len === 0) return;
    if (this.ifs !== 0) {
      const [a, b] = this.blockRange(off, len);
      this.fx.bits_set(this.ifs, this.nblocks + a, b - a);
    }
    if (!this.dirtyFlag) {
      this.dirtyFlag = true;
      this.mapping.noteDirty(this, true);
    }
  }

  /** Clear the dirty state of the blocks wholly inside [off, off+len). */
  clearRangeDirty(off: number, len: number): void {
    if (!this.dirtyFlag || len === 0) return;
    if (this.ifs === 0) {
      if (off === 0 && len >= this.size) this.clearDirty();
      return;
    }
    const bs = 1 << this.mapping.blockShift;
    const a = Math.ceil(off / bs);
    const b = Math.floor((off + len) / bs);
    if (b > a) this.fx.bits_clear(this.ifs, this.nblocks + a, b - a);
    if (this.fx.bits_any_set(this.ifs, this.nblocks, this.nblocks) === 0) this.clearDirty();
  }

  /** Clear all dirty state. */
  clearDirty(): void {
    if (this.ifs !== 0) this.fx.bits_clear(this.ifs, this.nblocks, this.nblocks);
    if (this.dirtyFlag) {
      this.dirtyFlag = false;
      this.mapping.noteDirty(this, false);
    }
  }

  /**
   * The dirty byte ranges [start, end) within the folio, in order (runs of
   * dirty blocks; the whole folio for a single-block folio).
   */
  dirtyRuns(): Array<[number, number]> {
    if (!this.dirtyFlag) return [];
    if (this.ifs === 0) return [[0, this.size]];
    const out: Array<[number, number]> = [];
    const shift = this.mapping.blockShift;
    let b = 0;
    while (b < this.nblocks) {
      const s = this.fx.ifs_next_dirty(this.ifs, this.nblocks, b);
      if (s >= this.nblocks) break;
      const e = this.fx.ifs_dirty_run_end(this.ifs, this.nblocks, s);
      out.push([s << shift, e << shift]);
      b = e;
    }
    return out;
  }

  // -- lock and writeback --------------------------------------------------

  /** Take the folio lock (waits for the holder to unlock). */
  async lock(): Promise<void> {
    while (this.locked) await new Promise<void>((r) => this.lockWaiters.push(r));
    this.locked = true;
  }

  /** Release the folio lock. */
  unlock(): void {
    this.locked = false;
    const w = this.lockWaiters.shift();
    if (w) w();
  }

  /** The folio lock is held. */
  isLocked(): boolean {
    return this.locked;
  }

  /** Under writeback: bytes are being written to the device; writers wait. */
  get writeback(): boolean {
    return this.writebackFlag;
  }

  /**
   * Enter writeback (the caller holds the lock; the folio is not under
   * writeback). The folio is pinned and stays in writeback until
   * `endWriteback` was called once for the setup and once for every
   * `addWriteback` byte count (iomap_writeback_folio's bias of one).
   */
  startWriteback(): void {
    if (this.writebackFlag) throw fail('EINVAL', `folio at page ${this.index} is already under writeback`);
    this.get();
    this.writebackFlag = true;
    this.writebackPending = 1;
    this.mapping.cache.noteWriteback(this, true);
  }

  /** `bytes` of the folio went into an ioend: writeback lasts until they complete (iomap_start_folio_write). */
  addWriteback(bytes: number): void {
    if (!this.writebackFlag) throw fail('EINVAL', `folio at page ${this.index} is not under writeback`);
    this.writebackPending += bytes;
  }

  /**
   * `bytes` of writeback completed (1 for the setup, an ioend segment's
   * length otherwise); when none is left the folio leaves writeback, wakes
   * whoever waits for stable bytes and drops its pin (iomap_finish_folio_write).
   */
  endWriteback(bytes: number): void {
    if (!this.writebackFlag || bytes > this.writebackPending)
      throw fail('EINVAL', `folio at page ${this.index}: writeback of ${bytes} bytes ended that was not started`);
    this.writebackPending -= bytes;
    if (this.writebackPending > 0) return;
    this.writebackFlag = false;
    this.mapping.cache.noteWriteback(this, false);
    const ws = this.wbWaiters;
    this.wbWaiters = [];
    for (const w of ws) w();
    this.put();
  }

  /** Wait until the folio is not under writeback (writers need stable bytes). */
  async waitWriteback(): Promise<void> {
    while (this.writebackFlag) await new Promise<void>((r) => this.wbWaiters.push(r));
  }

  /** Some operation holds the folio: reclaim passes it over. */
  get pinned(): boolean {
    return this.pins > 0;
  }

  /** Take a pin (folio_get): the folio stays cached until the matching `put()`. */
  get(): void {
    this.pins++;
  }

  /** Drop a pin taken by `get()`, AddressSpace.getFolio or findFolio; EINVAL when none is held. */
  put(): void {
    if (this.pins <= 0) throw fail('EINVAL', `folio at page ${this.index} released more often than taken`);
    this.pins--;
  }

  /**
   * Lock the folio and wait until it is out of writeback (unless `stable`
   * is false): true when it is then still in its mapping, false (and
   * unlocked again) when it was truncated or reclaimed meanwhile. The
   * caller holds a pin.
   */
  async lockLive(stable = true): Promise<boolean> {
    await this.lock();
    if (stable) await this.waitWriteback();
    if (!this.dead) return true;
    this.unlock();
    return false;
  }

  /**
   * Run `fn` on this folio pinned, locked and (unless `stable` is false)
   * out of writeback: the shape of every folio step (pin, lock, wait for
   * stable bytes, work, unlock, release). `fn` is not called when the folio
   * left its mapping meanwhile; the result is then undefined. With `adopt`
   * the pin the caller holds (from getFolio or findFolio) is the one used,
   * and released at the end.
   */
  async withLocked<T>(fn: (folio: Folio) => T | Promise<T>, opts: { adopt?: boolean; stable?: boolean } = {}): Promise<T | undefined> {
    if (opts.adopt !== true) this.get();
    try {
      if (!(await this.lockLive(opts.stable))) return undefined;
      try {
        return await fn(this);
      } finally {
        this.unlock();
      }
    } finally {
      this.put();
    }
  }

  /** Free the block state (called by the cache once the folio left its mapping). */
  releaseState(): void {
    if (this.ifs !== 0) {
      this.fx.ifs_free(this.ifs, this.nblocks);
      this.ifs = 0;
    }
  }
}
