/**
 * `ByteSource`: where the bytes of a file come from when they are not on a
 * `BlockDevice`: an array in memory, a `Blob`, a local file (Node), an
 * http(s) URL, or a caller's own `read(offset, length)`.
 *
 * A source only moves bytes; it vouches for none of them. Whoever reads
 * through it (a verified file) checks what comes back. Node-only sources
 * are loaded by dynamic import when asked for, so a browser bundle of this
 * folder never needs a `node:` module.
 */
import { fail, isUint8Array, MAX_OFFSET, throwIfAborted as cancelled } from '../errors.js';
import type { HttpSourceOptions } from './http.js';

/** Bytes that can be read at any offset. */
export interface ByteSource {
  /** Names the source in error messages (a path, a URL, "memory"). */
  readonly name: string;
  /** Bytes in the source, when known (a caller's reader may not say). */
  readonly size: number | undefined;
  /**
   * Up to `length` bytes at `offset`, in a new array the caller owns: short
   * only at the end of the source, empty at or past it. EIO when the bytes
   * cannot be had (after any retries the source does); an aborted `signal`
   * rejects with its reason.
   */
  read(offset: number, length: number, signal?: AbortSignal): Promise<Uint8Array>;
  /** Let go of what the source holds open (a file handle); idempotent. */
  close(): Promise<void>;
}

/** A caller's reader: `read` resolves to up to `length` bytes at `offset` (short only at the end). */
export interface ReaderLike {
  size?: number;
  read(offset: number, length: number): Promise<Uint8Array>;
}

/**
 * What `openSource` takes: an http(s) URL (string or `URL`), a local path
 * (Node), a `Uint8Array`, a `Blob`, a `ReaderLike`, or a `ByteSource` made
 * already.
 */
export type Src = string | URL | Uint8Array | Blob | ReaderLike | ByteSource;

/** Options of `openSource`: those of HTTP sources (ignored by the others). */
export type SourceOptions = HttpSourceOptions;

/** ECANCELED at once when `signal` was aborted (its reason is the cause). */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  cancelled(signal, 'the read');
}

/** Check a read's arguments: EINVAL for offsets and lengths that are not safe integers. */
export function checkRead(offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0 || offset + length > MAX_OFFSET) {
    throw fail('EINVAL', `invalid read of ${String(length)} bytes at ${String(offset)}: both must be integers from 0 to 2^53`);
  }
}

class MemorySource implements ByteSource {
  readonly name = 'memory';
  readonly size: number;
  constructor(private readonly bytes: Uint8Array) {
    this.size = bytes.length;
  }
  async read(offset: number, length: number, signal?: AbortSignal): Promise<Uint8Array> {
    checkRead(offset, length);
    throwIfAborted(signal);
    // A copy: the caller's array may change after we hand this out.
    return this.bytes.slice(Math.min(offset, this.size), Math.min(offset + length, this.size));
  }
  async close(): Promise<void> {}
}

class BlobSource implements ByteSource {
  readonly name: string;
  readonly size: number;
  constructor(private readonly blob: Blob) {
    this.size = blob.size;
    const n = (blob as unknown as { name?: unknown }).name;
    this.name = typeof n === 'string' ? n : 'blob';
  }
  async read(offset: number, length: number, signal?: AbortSignal): Promise<Uint8Array> {
    checkRead(offset, length);
    throwIfAborted(signal);
    try {
      return new Uint8Array(await this.blob.slice(Math.min(offset, this.size), Math.min(offset + length, this.size)).arrayBuffer());
    } catch (e) {
      throw fail('EIO', `reading ${length} bytes at ${offset} of ${this.name} failed: ${(e as Error)?.message ?? String(e)}`, e);
    }
  }
  async close(): Promise<void> {}
}

class ReaderSource implements ByteSource {
  readonly name = 'reader';
  readonly size: number | undefined;
  constructor(private readonly reader: ReaderLike) {
    const s = reader.size;
    if (s !== undefined && (!Number.isSafeInteger(s) || s < 0)) throw fail('EINVAL', `a reader's size must be an integer from 0 to 2^53, got ${String(s)}`);
    this.size = s;
  }
  async read(offset: number, length: number, signal?: AbortSignal): Promise<Uint8Array> {
    checkRead(offset, length);
    throwIfAborted(signal);
    let got: unknown;
    try {
      got = await this.reader.read(offset, length);
    } catch (e) {
      throw fail('EIO', `the reader failed at ${offset} (+${length}): ${(e as Error)?.message ?? String(e)}`, e);
    }
    throwIfAborted(signal);
    if (!isUint8Array(got)) throw fail('EIO', `the reader returned ${got === null ? 'null' : typeof got} at ${offset}, not a Uint8Array`);
    if (got.length > length) throw fail('EIO', `the reader returned ${got.length} bytes at ${offset} where ${length} were asked for`);
    // A copy: the reader may reuse its buffer after handing it out.
    return got.slice();
  }
  async close(): Promise<void> {}
}

function isByteSource(x: unknown): x is ByteSource {
  return typeof x === 'object' && x !== null && typeof (x as ByteSource).read === 'function' && typeof (x as ByteSource).close === 'function' && 'name' in x;
}

/**
 * Open `src` for reading. A string is an http(s) URL when it starts with
 * `http://` or `https://`, else a local path (Node only: ENOENT when it is
 * not there, EOPNOTSUPP in a browser). An HTTP source learns the size and
 * the validators (ETag, Last-Modified) of the resource here, so a later
 * change of the remote file is noticed. EINVAL for anything else.
 */
export async function openSource(src: Src, opts: SourceOptions = {}): Promise<ByteSource> {
  if (isUint8Array(src)) return new MemorySource(src);
  if (typeof Blob !== 'undefined' && src instanceof Blob) return new BlobSource(src);
  const url = src instanceof URL ? src : typeof src === 'string' && /^https?:\/\//i.test(src) ? new URL(src) : undefined;
  if (url) {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw fail('EINVAL', `unsupported URL scheme ${url.protocol}: use http: or https:`);
    const { openHttpSource } = await import('./http.js');
    return openHttpSource(url, opts);
  }
  if (typeof src === 'string') {
    if (src === '') throw fail('EINVAL', 'an empty path is not a source');
    const { openFileSource } = await import('./file.js');
    return openFileSource(src);
  }
  if (isByteSource(src)) return src;
  if (typeof src === 'object' && src !== null && typeof (src as ReaderLike).read === 'function') return new ReaderSource(src as ReaderLike);
  throw fail('EINVAL', 'a source must be an http(s) URL, a local path, a Uint8Array, a Blob or an object with read(offset, length)');
}
