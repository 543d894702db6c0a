/**
 * `File`: a handle on one file of a `Volume`. Reads and writes go through
 * the page cache (buffered I/O); `fsync` makes them durable.
 *
 * Every method validates its arguments before it takes the volume lock, and
 * refuses before changing anything: a call that fails leaves the file as it
 * was (except a device error in the middle of a write, which leaves the
 * bytes copied so far in the cache, as a short write would).
 */
import { fail, isUint8Array, throwIfAborted } from '../errors.js';
import type { Inode } from './inode.js';
import { holeBlocks } from './iomap-ops.js';
import { checkBytes, checkFileEnd, checkFileSize, checkRange, checkSignal } from './validate.js';
import type { Mount } from './mount.js';
import { readRange, truncateInode, writeRange, writebackInode } from './engine.js';
import { validateSealParams, type VerityParamsOptions } from '../verity/params.js';
import { enableVerity, measureInode, readInodeVerityMetadata, verityReadHook } from './verity.js';
import type { VerityMeasurement } from '../verity/measure.js';
import type { VerityMetadataType } from '../verity/read-metadata.js';

/** Options of `File.enableVerity`: the fs-verity parameters, and progress reports. */
export interface EnableVerityOptions extends VerityParamsOptions {
  /** Called as the data is hashed, with the bytes of the file done so far and its size. */
  onProgress?: (bytesDone: number, totalBytes: number) => void;
  /**
   * A built-in signature to store after the descriptor (DER PKCS#7 over the
   * file digest, as `fsverity sign` or `signFsverityDigest` makes it), at
   * most 16128 bytes. On a volume opened with `trusted`, it must verify for
   * this file's digest, or sealing fails (EKEYREJECTED, EBADMSG) and leaves
   * the file unsealed; with `requireSignatures`, sealing without one is EPERM.
   */
  signature?: Uint8Array;
  /**
   * Stops sealing: it rejects with ECANCELED and the file is left as it was
   * (not sealed, writable, no metadata kept), as after any other failure.
   * An abort after the tree is built no longer stops the seal.
   */
  signal?: AbortSignal;
}

/**
 * Options of `File.read`, `readInto`, `write` and `stream`.
 */
export interface FileIoOptions {
  /**
   * Stops the call: it rejects with ECANCELED (a stream errors with it).
   * A read checks it while queued behind other calls and between pieces of
   * 16 MiB, so a long read stops part-way; what it already copied into a
   * `readInto` buffer stays there, and the file is untouched either way. A
   * write checks it only until it begins changing the file: once begun it
   * runs to the end (a copy into the page cache), so an aborted write has
   * written all of its bytes or none.
   */
  signal?: AbortSignal;
}

/** A read with a signal goes to the page cache in pieces of this many bytes, checking the signal between them. */
const SIGNAL_READ_PIECE = 16 << 20;

/** Options of `File.allocate`. */
export interface AllocateOptions {
  /** Keep the file size even when the range reaches past EOF (fallocate's FALLOC_FL_KEEP_SIZE). Default false. */
  keepSize?: boolean;
}

/** Most bytes one `read` returns in a new array: Linux's MAX_RW_COUNT, below every JS engine's array limit. */
const MAX_READ_BYTES = 0x7ffff000;

/**
 * The bytes of a write, taken at the call when the caller's buffer can
 * change size under a queued write (a resizable or shared buffer). An
 * ordinary buffer is used in place (no copy); if it is transferred before
 * the write is done, the write fails with EINVAL rather than copying less.
 */
function stableBytes(data: Uint8Array): Uint8Array {
  const buf = data.buffer as ArrayBuffer & { resizable?: boolean; growable?: boolean };
  const shared = typeof SharedArrayBuffer !== 'undefined' && buf instanceof SharedArrayBuffer;
  return buf.resizable === true || buf.growable === true || shared ? data.slice() : data;
}

/**
 * Run `fn`, turning a synchronous throw (a refused argument) into a
 * rejection: every method of File returns a promise, so `.catch` and
 * `await` must both see its errors.
 */
function rejecting<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return fn();
  } catch (e) {
    return Promise.reject(e);
  }
}

/**
 * An open file of a `Volume` (from `volume.create` or `volume.open`). Every
 * method validates its arguments first (EINVAL, synchronously as a rejected
 * promise) and then runs under the volume lock, one call at a time. Errors
 * by code: ENOENT once the file was removed; EBADF once the volume is
 * closed; EPERM for changing a sealed file, EBUSY while it is being sealed;
 * ENOSPC when a write or allocate cannot get its blocks (nothing changed);
 * EFBIG past 2^53; EIO when the device fails. Durability: nothing is
 * durable until `fsync` (or `Volume.sync`/`close`) resolves, and
 * `enableVerity` is durable when it resolves.
 */
export class File {
  /** @internal */
  constructor(
    private readonly mp: Mount,
    /** @internal The inode, for the verity layer built on top. */
    readonly inode: Inode,
  ) {}

  /** The file's name at the time it was opened. */
  get name(): string {
    return this.inode.name;
  }

  /** i_size in bytes. */
  get size(): number {
    return this.inode.size;
  }

  /**
   * Bytes of the volume this file holds, in whole blocks: written,
   * preallocated and not yet written back data, and once sealed its
   * verity metadata (what `stat` reports as `st_blocks`; holes cost nothing).
   */
  get allocatedBytes(): number {
    let blocks = 0;
    for (const e of this.inode.extents.extents()) blocks += e.blocks;
    return blocks * this.inode.blockSize;
  }

  /** True once the file is sealed with fs-verity. */
  get isVerity(): boolean {
    return this.inode.verity === 'sealed';
  }

  private alive(): Inode {
    if (this.inode.removed) throw fail('ENOENT', `file ${JSON.stringify(this.inode.name)} was removed`);
    return this.inode;
  }

  private writable(what: string): Inode {
    this.mp.checkWritable(what);
    const inode = this.alive();
    if (inode.verity === 'sealed') throw fail('EPERM', `${what}: file ${JSON.stringify(inode.name)} is sealed with fs-verity and read-only`);
    if (inode.verity === 'building') throw fail('EBUSY', `${what}: fs-verity is being enabled on file ${JSON.stringify(inode.name)}`);
    return inode;
  }

  /**
   * Make sure `blocks` more blocks can be reserved: when they cannot, commit
   * first if that frees blocks (freed space waits for two commits), then ENOSPC.
   */
  private async ensureSpace(blocks: number): Promise<void> {
    const a = this.mp.alloc.allocator;
    if (blocks <= a.availableBlocks) return;
    // Freed blocks come back over two commits (see Allocator).
    for (let i = 0; i < 2 && blocks > a.availableBlocks && a.pendingBlocks > 0; i++) await this.mp.sync(true);
    if (blocks > a.availableBlocks) {
      throw fail('ENOSPC', `no space left on device: this call needs ${blocks} more blocks of ${this.inode.blockSize} bytes, ${a.availableBlocks} are available`);
    }
  }

  /**
   * Read up to `len` bytes from `pos`. Short at EOF; empty at or past it.
   * EIO when the device fails; ECANCELED when `opts.signal` aborts.
   */
  read(pos: number, len: number, opts: FileIoOptions = {}): Promise<Uint8Array> {
    return rejecting(() => {
      const r = checkRange(pos, len);
      const signal = checkSignal(opts.signal);
      const what = this.ioWhat('read');
      throwIfAborted(signal, what);
      return this.mp.run(() => this.readLocked(r.pos, r.len, undefined, signal, what));
    });
  }

  /**
   * pread: read up to `dst.length` bytes from `pos` into `dst` and return
   * how many were read (fewer at EOF, 0 at or past it). The same as `read`
   * without a new array per call, for streaming through one buffer.
   */
  readInto(pos: number, dst: Uint8Array, opts: FileIoOptions = {}): Promise<number> {
    return rejecting(() => {
      const into = checkBytes(dst);
      const r = checkRange(pos, into.length);
      const signal = checkSignal(opts.signal);
      const what = this.ioWhat('read');
      throwIfAborted(signal, what);
      return this.mp.run(async () => (await this.readLocked(r.pos, r.len, into, signal, what)).length);
    });
  }

  /** What a cancelled call on this file says it stopped. */
  private ioWhat(op: string): string {
    return `${op} of file ${JSON.stringify(this.inode.name)}`;
  }

  /**
   * Under the volume lock: [pos, pos + len) up to EOF, into `into` when
   * given; with a signal, in pieces, checking it before each.
   */
  private async readLocked(pos: number, len: number, into?: Uint8Array, signal?: AbortSignal, what = ''): Promise<Uint8Array> {
    throwIfAborted(signal, what);
    const inode = this.alive();
    if (pos >= inode.size || len === 0) return new Uint8Array(0);
    const n = Math.min(len, inode.size - pos);
    if (into === undefined && n > MAX_READ_BYTES) {
      throw fail('EINVAL', `a read returns at most ${MAX_READ_BYTES} bytes at once (as Linux's read(2)): read in pieces, or use readInto with your own buffer`);
    }
    // A sealed file's data is verified against its Merkle tree before it is cached.
    let verify = inode.verity === 'sealed' ? verityReadHook(this.mp, inode) : undefined;
    if (verify instanceof Promise) verify = await verify;
    if (signal === undefined || n <= SIGNAL_READ_PIECE) return readRange(this.mp, inode, pos, n, { verify, into });
    const out = into ?? new Uint8Array(n);
    let done = 0;
    while (done < n) {
      throwIfAborted(signal, what);
      const want = Math.min(SIGNAL_READ_PIECE, n - done);
      const got = await readRange(this.mp, inode, pos + done, want, { verify, into: out.subarray(done, done + want) });
      done += got.length;
      if (got.length < want) break;
    }
    return out.subarray(0, done);
  }

  /**
   * A web `ReadableStream` of the bytes [start, end) (`end` exclusive,
   * default the size at each step), read a chunk at a time through
   * `readInto`: a sealed file's bytes are verified before they are
   * enqueued, and the stream errors with the read's error (EIO naming the
   * block) without handing out that chunk; with `signal`, an abort errors
   * it with ECANCELED. For a Node `Readable`, pass it to `toNodeReadable`.
   */
  stream(opts: { start?: number; end?: number; chunkSize?: number; signal?: AbortSignal } = {}): ReadableStream<Uint8Array> {
    const r = checkRange(opts.start ?? 0, 0);
    const signal = checkSignal(opts.signal);
    const end = opts.end === undefined ? Infinity : checkRange(opts.end, 0).pos;
    const step = Math.max(4096, Math.floor(opts.chunkSize ?? 1 << 20));
    let pos = r.pos;
    return new ReadableStream<Uint8Array>(
      {
        pull: async (ctl) => {
          const n = Math.min(step, end - pos, Math.max(0, this.inode.size - pos));
          if (!(n > 0)) return ctl.close();
          const buf = new Uint8Array(n);
          const got = await this.readInto(pos, buf, { signal });
          if (got === 0) return ctl.close();
          pos += got;
          ctl.enqueue(got === n ? buf : buf.subarray(0, got));
        },
      },
      { highWaterMark: 0 },
    );
  }

  /**
   * Write `data` at `pos`, extending the file when it reaches past EOF.
   * ENOSPC (before anything changes) when the blocks it needs cannot be
   * reserved; EPERM on a sealed file; ECANCELED, with nothing written, when
   * `opts.signal` aborts before the write begins.
   */
  write(pos: number, data: Uint8Array, opts: FileIoOptions = {}): Promise<void> {
    return rejecting(() => {
      const bytes = stableBytes(checkBytes(data));
      const r = checkRange(pos, bytes.length);
      if (r.len > 0) checkFileEnd(r.pos + r.len);
      const signal = checkSignal(opts.signal);
      const what = this.ioWhat('write');
      throwIfAborted(signal, what);
      return this.mp.run(async () => {
        throwIfAborted(signal, what);
        const inode = this.writable('write');
        if (r.len === 0) return;
        if (bytes.byteLength !== r.len) {
          throw fail('EINVAL', `the buffer being written was transferred or resized while the write was queued (now ${bytes.byteLength} bytes, ${r.len} at the call); keep it until the write's promise settles`);
        }
        const bs = inode.blockSize;
        await this.ensureSpace(holeBlocks(inode, Math.floor(r.pos / bs), Math.ceil((r.pos + r.len) / bs)));
        const before = inode.size;
        await writeRange(this.mp, inode, r.pos, bytes);
        if (inode.size !== before) inode.metaDirty = true;
      });
    });
  }

  /** Set the size: shrinking drops the data past it, growing reads back as zeros. EPERM on a sealed file. */
  truncate(size: number): Promise<void> {
    return rejecting(() => {
      const s = checkFileSize(size);
      return this.mp.run(async () => {
        const inode = this.writable('truncate');
        await truncateInode(this.mp, inode, s);
      });
    });
  }

  /**
   * Preallocate [pos, pos + len): holes get unwritten blocks, which read as
   * zeros and are converted when written back (fallocate). The file grows to
   * `pos + len` unless `keepSize`. ENOSPC before anything changes when the
   * space is not there.
   */
  allocate(pos: number, len: number, opts: AllocateOptions = {}): Promise<void> {
    return rejecting(() => {
      const r = checkRange(pos, len);
      if (r.len > 0) checkFileEnd(r.pos + r.len);
      return this.mp.run(async () => {
        const inode = this.writable('allocate');
        if (r.len === 0) return;
        const bs = inode.blockSize;
        const from = Math.floor(r.pos / bs);
        const to = Math.ceil((r.pos + r.len) / bs);
        await this.ensureSpace(holeBlocks(inode, from, to));
        const ctx = this.mp.alloc;
        let b = from;
        while (b < to) {
          const found = inode.extents.lookup(b);
          if (found.kind === 'extent') {
            b = found.extent.fileBlock + found.extent.blocks;
            continue;
          }
          const end = Math.min(to, found.fileBlock + found.blocks);
          const run = ctx.allocator.allocate(end - b, ctx.rotor);
          ctx.rotor = run.start + run.blocks;
          inode.extents.insert({ fileBlock: b, blocks: run.blocks, devBlock: run.start, state: 'unwritten' });
          inode.metaDirty = true;
          b += run.blocks;
        }
        if (!opts.keepSize && r.pos + r.len > inode.size) await truncateInode(this.mp, inode, r.pos + r.len);
      });
    });
  }

  /**
   * Write back this file's dirty data, flush the device and commit the
   * volume's metadata. EIO when a writeback (now or since the last fsync)
   * failed; the data stays cached and dirty, so a later fsync can succeed.
   */
  fsync(): Promise<void> {
    return this.mp.run(async () => {
      const inode = this.alive();
      let err: unknown;
      try {
        await writebackInode(this.mp, inode);
      } catch (e) {
        err = e;
      }
      // Committing after a failed writeback is safe (see Volume.syncLocked)
      // and keeps whatever did reach the device.
      try {
        await this.mp.commit();
      } catch (e) {
        err ??= e;
      }
      if (err !== undefined) throw err;
    });
  }

  /**
   * Seal the file with fs-verity (FS_IOC_ENABLE_VERITY): build its Merkle
   * tree, store it and the descriptor past EOF, and make the file read-only.
   * Durable when it returns. Options: `hashAlgorithm` 'sha256' | 'sha512',
   * `blockSize` 1024..65536 (default 4096), `salt` 0..32 bytes; others are
   * EINVAL. EEXIST when already sealed, EBUSY while another enable runs;
   * after any failure the file is as it was, and still writable.
   */
  enableVerity(opts: EnableVerityOptions = {}): Promise<void> {
    return rejecting(() => {
      const params = validateSealParams(opts);
      const onProgress = opts.onProgress;
      if (onProgress !== undefined && typeof onProgress !== 'function') throw fail('EINVAL', 'onProgress must be a function');
      const signature = opts.signature;
      if (signature !== undefined && !isUint8Array(signature)) throw fail('EINVAL', 'signature must be a Uint8Array (the DER bytes `fsverity sign` writes)');
      const signal = checkSignal(opts.signal);
      const what = `enableVerity of file ${JSON.stringify(this.inode.name)}`;
      throwIfAborted(signal, what);
      // Hashing reports progress after every step: the abort is checked
      // there, and its error takes the enable path's cleanup.
      const progress = signal
        ? (done: number, total: number) => {
            throwIfAborted(signal, what);
            onProgress?.(done, total);
          }
        : onProgress;
      const inode = this.inode;
      // As FS_IOC_ENABLE_VERITY: a second enable while one is under way is
      // refused at once rather than queued behind it.
      if (inode.enablePending) return Promise.reject(fail('EBUSY', `fs-verity is already being enabled on file ${JSON.stringify(inode.name)}`));
      inode.enablePending = true;
      return this.mp
        .run(async () => {
          this.mp.checkWritable('enableVerity');
          throwIfAborted(signal, what);
          return enableVerity(this.mp, this.alive(), params, progress, signature && Uint8Array.from(signature));
        })
        .finally(() => {
          inode.enablePending = false;
        });
    });
  }

  /** The fs-verity file digest (FS_IOC_MEASURE_VERITY), from the descriptor. ENODATA when not sealed. */
  measureVerity(): Promise<VerityMeasurement> {
    return this.mp.run(async () => measureInode(this.mp, this.alive()));
  }

  /**
   * Read fs-verity metadata (FS_IOC_READ_VERITY_METADATA) with pread
   * semantics: 'merkle_tree' gives the bytes `fsverity digest
   * --out-merkle-tree` writes, 'descriptor' those of `--out-descriptor`
   * (`sig_size` zero, the signature left out, as the kernel returns it),
   * 'signature' the built-in signature stored at sealing (ENODATA when
   * there is none). ENODATA when not sealed.
   */
  readVerityMetadata(type: VerityMetadataType, offset: number, length: number): Promise<Uint8Array> {
    return rejecting(() => {
      if (type !== 'merkle_tree' && type !== 'descriptor' && type !== 'signature') {
        throw fail('EINVAL', `unknown fs-verity metadata type ${JSON.stringify(type)}: use merkle_tree, descriptor or signature`);
      }
      const r = checkRange(offset, length);
      return this.mp.run(async () => readInodeVerityMetadata(this.mp, this.alive(), type, r.pos, r.len));
    });
  }
}
