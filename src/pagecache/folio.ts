/**
 * A folio: 2^order 4 KiB pages of one file, aligned to its size in the file's
 * index space, whose bytes live in WASM memory at `ptr`.
 *
 * Block state follows the kernel's iomap_folio_state: when the folio holds
 * more than one block, a WASM bitmap (uptodate bits then dirty bits) says
 * which blocks are up to date and which are dirty; a single-block folio uses
 * the folio's own flags. The folio lock serialises I/O and copies on the
 * folio; `pins` keeps it from reclaim while an operation holds it.
 */
import type { AddressSpace } from './address-space.js';
import type { FolioExports } from '../wasm/folio.js';
import { fail } from '../errors.js';

export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 1 << PAGE_SHIFT;

export class Folio {
  /** Bitmap pointer (0 when the folio holds a single block). */
  ifs: number;
  /** Blocks in the folio. */
  readonly nblocks: number;
  private uptodateFlag = false;
  private dirtyFlag = false;
  /** Under writeback: bytes are being written to the device; writers wait. */
  writeback = false;
  /** Operations holding the folio; a pinned folio is never reclaimed. */
  pins = 0;
  /** Removed from its mapping (truncated or reclaimed): memory is gone. */
  dead = false;
  private locked = false;
  private lockWaiters: Array<() => void> = [];
  private wbWaiters: Array<() => void> = [];

  constructor(
    readonly mapping: AddressSpace,
    /** First page index. */
    readonly index: number,
    /** log2 of the page count. */
    readonly order: number,
    /** WASM address of the first byte. */
    readonly ptr: number,
    private readonly fx: FolioExports,
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

  isLocked(): boolean {
    return this.locked;
  }

  /** Enter writeback (the caller holds the lock). */
  startWriteback(): void {
    this.writeback = true;
    this.mapping.cache.noteWriteback(this, true);
  }

  /** Leave writeback and wake whoever waits for stable bytes. */
  endWriteback(): void {
    this.writeback = false;
    this.mapping.cache.noteWriteback(this, false);
    const ws = this.wbWaiters;
    this.wbWaiters = [];
    for (const w of ws) w();
  }

  /** Wait until the folio is not under writeback (writers need stable bytes). */
  async waitWriteback(): Promise<void> {
    while (this.writeback) await new Promise<void>((r) => this.wbWaiters.push(r));
  }

  /** Drop a pin taken by AddressSpace.getFolio / findFolio. */
  put(): void {
    if (this.pins <= 0) throw fail('EINVAL', `folio at page ${this.index} released more often than taken`);
    this.pins--;
  }

  /** Free the block state (called once the folio leaves its mapping). */
  releaseState(): void {
    if (this.ifs !== 0) {
      this.fx.ifs_free(this.ifs, this.nblocks);
      this.ifs = 0;
    }
  }
}
