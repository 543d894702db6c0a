/**
 * FileDevice: a block device backed by a regular file (Node only).
 *
 * Why synchronous I/O inside async methods: the buffers handed to a device
 * are views over WebAssembly memory. Node's asynchronous fs calls keep the
 * buffer while a libuv worker thread fills or drains it; if the engine grows
 * WebAssembly memory meanwhile, the old ArrayBuffer is detached and its
 * bytes may move, so the worker would touch memory nobody owns any more and
 * the folio would never see the data. `fs.readSync`/`fs.writeSync` with an
 * explicit position finish on the view before the call returns, with no
 * copy and no window for `memory.grow`. The cost is that each call blocks
 * the event loop for the duration of one positional syscall (page-cache
 * speed for a local file), which is what a storage engine wants anyway.
 *
 * `node:fs` is imported lazily in `open`, so importing this module (and the
 * package) stays possible in a browser, where only MemoryDevice applies.
 */
import type * as NodeFs from 'node:fs';
import { fail, type ErrnoCode } from '../errors.js';
import { nodeFs } from '#platform';
import { BlockDevice, checkGeometry, isValidBlockSize } from './block-device.js';
import { lockImage, type ImageLock } from './image-lock.js';

/** Options of `FileDevice.open(path, opts)`. */
export interface FileDeviceOptions {
  /** Block size in bytes, a power of two from 512 to 65536. Default 4096. */
  blockSize?: number;
  /**
   * Device size in bytes (a multiple of `blockSize`). Omitted: the size of
   * the existing file. Given: a smaller file is grown sparsely to it; a
   * larger one is refused (EINVAL) rather than silently cut or half-used.
   */
  size?: number;
  /** Create the file when missing (needs `size`). Default false: a missing file is ENOENT. */
  create?: boolean;
  /** With `create`: fail with EEXIST when the path exists (O_EXCL), so nothing there is ever reused. Default false. */
  exclusive?: boolean;
  /**
   * Open the file read-only (O_RDONLY): it may be a file the user cannot
   * write (a 0444 image), `write` and `discard` fail with EROFS, and the
   * lock taken is shared with other read-only opens. Default false.
   */
  readOnly?: boolean;
}

/** Errno names from Node that keep their meaning; everything else becomes EIO. */
function mapNodeError(e: unknown, what: string): never {
  const code = (e as { code?: unknown })?.code;
  let ours: ErrnoCode = 'EIO';
  if (code === 'ENOENT') ours = 'ENOENT';
  else if (code === 'ENOSPC' || code === 'EDQUOT') ours = 'ENOSPC';
  else if (code === 'EISDIR') ours = 'EISDIR';
  else if (code === 'EACCES' || code === 'EPERM') ours = 'EPERM';
  else if (code === 'EROFS') ours = 'EROFS';
  else if (code === 'EEXIST') ours = 'EEXIST';
  else if (code === 'EFBIG') ours = 'EFBIG';
  const detail = e instanceof Error ? e.message : String(e);
  throw fail(ours, `${what}: ${detail}`, e);
}

/** Zeros written by `discard`, shared: 1 MiB keeps a large discard at a few syscalls. */
let zeroBuf: Uint8Array | undefined;
const ZERO_BUF_SIZE = 1 << 20;

/**
 * A device stored in a regular file with positional reads and writes.
 * New files are created sparse (`ftruncate` to the size), so a 1 TiB device
 * costs only the blocks written. `flush` is `fdatasync`. `discard` writes
 * zeros: Node has no fallocate(PUNCH_HOLE), so the range reads as zeros but
 * the file keeps its space.
 *
 * One process at a time may open an image for writing, and none while any
 * has it open read-only; read-only opens share (see image-lock.ts for how,
 * and why it survives `kill -9`). A conflicting open is EBUSY naming the
 * process that holds the image; `close` releases the lock, and so does the
 * death of the process, however it dies.
 */
export class FileDevice extends BlockDevice {
  /** The file's path, as given to `open`. */
  readonly path: string;
  private readonly fs: typeof NodeFs;
  private readonly fd: number;

  private lock: ImageLock | undefined;

  private constructor(fs: typeof NodeFs, fd: number, path: string, blockSize: number, size: number, readOnly: boolean) {
    super(blockSize, size);
    this.fs = fs;
    this.fd = fd;
    this.path = path;
    if (readOnly) this.markReadOnly();
  }

  /** Opens (or with `create`, creates) `path` as a block device. */
  static async open(path: string, opts: FileDeviceOptions = {}): Promise<FileDevice> {
    const fs = await nodeFs();
    const blockSize = opts.blockSize ?? 4096;
    if (!isValidBlockSize(blockSize)) {
      throw fail('EINVAL', `device block size must be a power of two from 512 to 65536, got ${String(blockSize)}`);
    }
    if (typeof path !== 'string' || path === '') throw fail('EINVAL', 'FileDevice.open needs a file path');
    if (opts.size !== undefined) checkGeometry(blockSize, opts.size);
    const create = opts.create ?? false;
    const readOnly = opts.readOnly ?? false;
    const exclusive = opts.exclusive ?? false;
    if (typeof readOnly !== 'boolean' || typeof exclusive !== 'boolean') throw fail('EINVAL', 'readOnly and exclusive must be booleans');
    if (readOnly && create) throw fail('EINVAL', `cannot create ${path} read-only: open it read-write to create it`);
    if (exclusive && !create) throw fail('EINVAL', 'exclusive needs create');
    if (create && opts.size === undefined && (exclusive || !fs.existsSync(path))) {
      throw fail('EINVAL', `cannot create ${path} without a size: pass { size }`);
    }
    let fd: number;
    try {
      const c = fs.constants;
      const flags = (readOnly ? c.O_RDONLY : c.O_RDWR) | (create ? c.O_CREAT : 0) | (exclusive ? c.O_EXCL : 0);
      fd = fs.openSync(path, flags, 0o644);
    } catch (e) {
      mapNodeError(e, `cannot open ${path}`);
    }
    let lock: ImageLock | undefined;
    try {
      const st = fs.fstatSync(fd);
      if (!st.isFile()) throw fail('EINVAL', `${path} is not a regular file`);
      // Before the size is touched: a file in use elsewhere is not grown under its user.
      lock = await lockImage(fs, st, path, readOnly ? 'read' : 'write');
      let size = st.size;
      if (opts.size !== undefined && readOnly && opts.size !== size) {
        throw fail('EINVAL', `${path} holds ${size} bytes; a read-only open cannot make it ${opts.size}`);
      }
      if (opts.size !== undefined) {
        if (size > opts.size) {
          throw fail(
            'EINVAL',
            `${path} holds ${size} bytes, more than the requested device size ${opts.size}; open it without a size, or use another file`,
          );
        }
        if (size < opts.size) {
          try {
            fs.ftruncateSync(fd, opts.size);
          } catch (e) {
            mapNodeError(e, `cannot grow ${path} to ${opts.size} bytes`);
          }
        }
        size = opts.size;
      }
      if (size === 0) throw fail('EINVAL', `${path} is empty: pass { size } to give the device a size`);
      if (size % blockSize !== 0) {
        throw fail('EINVAL', `${path} holds ${size} bytes, not a multiple of the block size ${blockSize}`);
      }
      const dev = new FileDevice(fs, fd, path, blockSize, size, readOnly);
      dev.lock = lock;
      return dev;
    } catch (e) {
      fs.closeSync(fd);
      await lock?.release();
      throw e;
    }
  }

  /** @internal */
  override get readFd(): number | undefined {
    return this.closed ? undefined : this.fd;
  }

  protected async _read(offset: number, dst: Uint8Array): Promise<void> {
    let done = 0;
    while (done < dst.byteLength) {
      let n: number;
      try {
        n = this.fs.readSync(this.fd, dst, done, dst.byteLength - done, offset + done);
      } catch (e) {
        mapNodeError(e, `read of ${this.path} at ${offset + done}`);
      }
      if (n === 0) {
        // The file was sized at open; it can only be short if someone else cut it.
        throw fail('EIO', `${this.path} ends at ${offset + done}, before the device's ${this.size} bytes: was the file truncated?`);
      }
      done += n;
    }
  }

  protected async _write(offset: number, src: Uint8Array): Promise<void> {
    let done = 0;
    while (done < src.byteLength) {
      try {
        done += this.fs.writeSync(this.fd, src, done, src.byteLength - done, offset + done);
      } catch (e) {
        mapNodeError(e, `write of ${this.path} at ${offset + done}`);
      }
    }
  }

  protected async _flush(): Promise<void> {
    try {
      this.fs.fdatasyncSync(this.fd);
    } catch (e) {
      mapNodeError(e, `fdatasync of ${this.path}`);
    }
  }

  protected async _discard(offset: number, length: number): Promise<void> {
    zeroBuf ??= new Uint8Array(ZERO_BUF_SIZE);
    let done = 0;
    while (done < length) {
      const n = Math.min(ZERO_BUF_SIZE, length - done);
      await this._write(offset + done, zeroBuf.subarray(0, n));
      done += n;
    }
  }

  protected async _close(): Promise<void> {
    try {
      this.fs.closeSync(this.fd);
    } catch (e) {
      mapNodeError(e, `close of ${this.path}`);
    } finally {
      await this.lock?.release();
      this.lock = undefined;
    }
  }
}
