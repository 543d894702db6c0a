/**
 * The `BlockDevice` contract and its one validating front.
 *
 * Callers (the iomap engine, the format layer) talk to `read`, `write`,
 * `flush`, `discard` and `close`. Those public methods check every argument
 * once, here, and count the traffic; a backend overrides only the protected
 * `_read`/`_write`/`_flush`/`_discard`/`_close`, and may trust what it is
 * given: offsets and lengths are non-negative integers, multiples of
 * `blockSize`, inside the device, and the device is open.
 *
 * Buffers are views over WebAssembly memory (folios). A backend moves bytes
 * straight between its store and the view, with no intermediate copy, and
 * is done with the view before its promise settles. Because `memory.grow`
 * detaches every view of the old buffer, a backend never keeps the view
 * across an `await` of anything else: the backends here do all their work
 * on the view synchronously, inside the call.
 */
import { fail, MAX_OFFSET, isUint8Array } from '../errors.js';

/** Smallest device block size (a device's block size is a power of two up to MAX_BLOCK_SIZE). */
export const MIN_BLOCK_SIZE = 512;
/** Largest device block size. */
export const MAX_BLOCK_SIZE = 65536;

/** Traffic counters every device keeps (the verity tests count device reads). */
export interface DeviceStats {
  reads: number;
  bytesRead: number;
  writes: number;
  bytesWritten: number;
  flushes: number;
  discards: number;
  bytesDiscarded: number;
}

function emptyStats(): DeviceStats {
  return { reads: 0, bytesRead: 0, writes: 0, bytesWritten: 0, flushes: 0, discards: 0, bytesDiscarded: 0 };
}

/** True when `n` is a power of two in [512, 65536]. */
export function isValidBlockSize(n: unknown): n is number {
  return (
    typeof n === 'number' &&
    Number.isInteger(n) &&
    n >= MIN_BLOCK_SIZE &&
    n <= MAX_BLOCK_SIZE &&
    (n & (n - 1)) === 0
  );
}

/**
 * Checks a device geometry and returns it; EINVAL names the bad value.
 * Shared by every backend's constructor so they refuse the same things.
 */
export function checkGeometry(blockSize: unknown, size: unknown): { blockSize: number; size: number } {
  if (!isValidBlockSize(blockSize)) {
    throw fail('EINVAL', `device block size must be a power of two from 512 to 65536, got ${String(blockSize)}`);
  }
  if (typeof size !== 'number' || !Number.isInteger(size) || size <= 0 || size > MAX_OFFSET) {
    throw fail('EINVAL', `device size must be a positive integer number of bytes up to 2^53-1, got ${String(size)}`);
  }
  if (size % blockSize !== 0) {
    throw fail('EINVAL', `device size ${size} is not a multiple of its block size ${blockSize}`);
  }
  return { blockSize, size };
}

/** Which public operation a check is for (used in messages and by FaultyDevice). */
export type DeviceOp = 'read' | 'write' | 'flush' | 'discard';

/**
 * A fixed-size array of blocks. Offsets and lengths are bytes and must be
 * multiples of `blockSize`. All methods return promises that reject with an
 * `IomapVerityError`:
 * - EINVAL: an offset or length that is negative, fractional, not
 *   block-aligned, or (for read and discard) reaches past the end; a buffer
 *   that is not a Uint8Array.
 * - ENOSPC: a write that reaches past the end. This is what Linux returns
 *   for pwrite(2) on a block device at its end: the request was well formed,
 *   the device is simply full. A read past the end has no short-read to fall
 *   back on in this contract, so it is a malformed request (EINVAL), as is a
 *   discard past the end (BLKDISCARD says EINVAL too).
 * - EBADF: any operation after `close()` (a second `close()` is a no-op).
 * - EROFS: a write or discard on a device opened read-only.
 * - EIO: the backend failed; `cause` holds its error.
 */
export abstract class BlockDevice {
  /** Bytes per block: a power of two from 512 to 65536. */
  readonly blockSize: number;
  /** Device size in bytes, a multiple of `blockSize`. */
  readonly size: number;
  /** Traffic counters, updated by the front for every successful operation. */
  readonly stats: DeviceStats = emptyStats();
  private isClosed = false;
  private isReadOnly = false;

  protected constructor(blockSize: number, size: number) {
    const g = checkGeometry(blockSize, size);
    this.blockSize = g.blockSize;
    this.size = g.size;
  }

  /** True once `close()` was called. */
  get closed(): boolean {
    return this.isClosed;
  }

  /**
   * A file descriptor from which the device's bytes can be read at their
   * own offsets, by worker threads of this process (FileDevice); undefined
   * for devices without one, and for wrappers such as FaultyDevice, whose
   * faults must not be bypassed.
   * @internal
   */
  get readFd(): number | undefined {
    return undefined;
  }

  /** Zeroes the traffic counters. */
  resetStats(): void {
    Object.assign(this.stats, emptyStats());
  }

  /**
   * Fills `dst` with the bytes at [offset, offset + dst.length). Bytes never
   * written (or discarded) read as zeros.
   */
  async read(offset: number, dst: Uint8Array): Promise<void> {
    // An async method runs synchronously up to its first await, so the checks
    // and the backend's call happen in the caller's turn, before anything
    // else can grow WebAssembly memory under `dst`.
    this.checkBuffer('read', dst);
    const n = dst.byteLength;
    this.checkRange('read', offset, n);
    if (n === 0) return;
    await this._read(offset, dst);
    this.stats.reads++;
    this.stats.bytesRead += n;
  }

  /**
   * Stores `src` at [offset, offset + src.length). Durable only after a
   * later `flush()` resolves (a backend may be durable sooner).
   */
  async write(offset: number, src: Uint8Array): Promise<void> {
    this.checkWritable('write');
    this.checkBuffer('write', src);
    const n = src.byteLength;
    this.checkRange('write', offset, n);
    if (n === 0) return;
    await this._write(offset, src);
    this.stats.writes++;
    this.stats.bytesWritten += n;
  }

  /** Makes every write and discard that resolved before this call durable (nothing to do on a read-only device). */
  async flush(): Promise<void> {
    this.checkOpen('flush');
    if (this.readOnly) return;
    await this._flush();
    this.stats.flushes++;
  }

  /**
   * Punches [offset, offset + length): it reads back as zeros afterwards.
   * Sparse backends give the space back; others write zeros.
   */
  async discard(offset: number, length: number): Promise<void> {
    this.checkWritable('discard');
    this.checkRange('discard', offset, length);
    if (length === 0) return;
    await this._discard(offset, length);
    this.stats.discards++;
    this.stats.bytesDiscarded += length;
  }

  /**
   * Releases the backend. Does not flush: a write not yet flushed may be lost
   * exactly as on a power cut. Every later operation fails with EBADF; a
   * second close is a no-op.
   */
  async close(): Promise<void> {
    if (this.isClosed) return;
    this.isClosed = true;
    await this._close();
  }

  /** Backend: fill `dst` from `offset`. Arguments are already checked. */
  protected abstract _read(offset: number, dst: Uint8Array): Promise<void>;
  /** Backend: store `src` at `offset`. Arguments are already checked. */
  protected abstract _write(offset: number, src: Uint8Array): Promise<void>;
  /** Backend: make earlier writes durable. */
  protected abstract _flush(): Promise<void>;
  /** Backend: make [offset, offset + length) read as zeros. */
  protected abstract _discard(offset: number, length: number): Promise<void>;
  /** Backend: release resources. Called at most once. */
  protected abstract _close(): Promise<void>;

  private lives = 0;

  /**
   * How many times the device came back after a close or power cut
   * (`reopenFront`). State another layer keeps about the device, such as
   * the filesystem's one-Volume-per-device claim, belongs to one
   * generation: whoever held the device before it came back died with it.
   */
  get generation(): number {
    return this.lives;
  }

  /** For backends that can come back after a close (FaultyDevice after a crash): a new generation starts. */
  protected reopenFront(): void {
    this.isClosed = false;
    this.lives++;
  }

  /**
   * True for a device opened read-only: `write` and `discard` fail with
   * EROFS, `flush` does nothing. Set once by the backend's constructor.
   */
  get readOnly(): boolean {
    return this.isReadOnly;
  }

  /** For backends opened read-only. */
  protected markReadOnly(): void {
    this.isReadOnly = true;
  }

  private checkWritable(op: DeviceOp): void {
    this.checkOpen(op);
    if (this.isReadOnly) throw fail('EROFS', `${op} on a block device opened read-only`);
  }

  private checkOpen(op: DeviceOp): void {
    if (this.isClosed) throw fail('EBADF', `${op} on a closed block device`);
  }

  private checkBuffer(op: DeviceOp, buf: unknown): void {
    if (!isUint8Array(buf)) {
      throw fail('EINVAL', `${op}: the buffer must be a Uint8Array`);
    }
  }

  private checkRange(op: DeviceOp, offset: unknown, length: number): void {
    this.checkOpen(op);
    const bs = this.blockSize;
    if (typeof offset !== 'number' || !Number.isInteger(offset) || offset < 0) {
      throw fail('EINVAL', `${op}: offset must be a non-negative integer, got ${String(offset)}`);
    }
    if (typeof length !== 'number' || !Number.isInteger(length) || length < 0) {
      throw fail('EINVAL', `${op}: length must be a non-negative integer, got ${String(length)}`);
    }
    if (offset % bs !== 0) {
      throw fail('EINVAL', `${op}: offset ${offset} is not a multiple of the device block size ${bs}`);
    }
    if (length % bs !== 0) {
      throw fail('EINVAL', `${op}: length ${length} is not a multiple of the device block size ${bs}`);
    }
    // offset and size are both <= 2^53-1 here; comparing length against the
    // room left avoids forming offset + length, which could round.
    if (offset > this.size || length > this.size - offset) {
      const what = `${op} of ${length} bytes at offset ${offset} reaches past the end of the ${this.size}-byte device`;
      throw fail(op === 'write' ? 'ENOSPC' : 'EINVAL', what);
    }
  }
}
