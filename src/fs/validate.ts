/**
 * Argument checks for the `Volume` and `File` front. Everything a user passes
 * is checked here, once, before any state changes; the code behind the front
 * trusts what it gets.
 */
import { fail, MAX_OFFSET, isUint8Array } from '../errors.js';

const MAX_NAME_BYTES = 255;
const encoder = new TextEncoder();

/** A file name: non-empty UTF-8 without '/' or NUL, at most 255 bytes (EINVAL, ENAMETOOLONG). */
export function checkName(name: unknown): string {
  if (typeof name !== 'string') throw fail('EINVAL', `a file name must be a string, got ${typeof name}`);
  if (name.length === 0) throw fail('EINVAL', 'a file name must not be empty');
  if (name.includes('/')) throw fail('EINVAL', `file name ${JSON.stringify(name)} contains '/': the volume has no directories`);
  if (name.includes('\0')) throw fail('EINVAL', `file name ${JSON.stringify(name)} contains a NUL character`);
  if (name === '.' || name === '..') throw fail('EINVAL', `file name ${JSON.stringify(name)} is reserved`);
  // A lone surrogate cannot be encoded as UTF-8: TextEncoder would silently
  // replace it, and two different names could then be stored as one.
  if (/\p{Surrogate}/u.test(name)) throw fail('EINVAL', `file name ${JSON.stringify(name)} is not valid Unicode (lone surrogate)`);
  const bytes = encoder.encode(name).length;
  if (bytes > MAX_NAME_BYTES) throw fail('ENAMETOOLONG', `file name is ${bytes} bytes of UTF-8; the limit is ${MAX_NAME_BYTES}`);
  return name;
}

/** A file offset or size: a non-negative integer up to 2^53-1 (EINVAL). */
export function checkOffset(what: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > MAX_OFFSET) {
    throw fail('EINVAL', `${what} must be a non-negative integer up to 2^53-1, got ${String(v)}`);
  }
  return v;
}

/** `pos` and `len` both valid and `pos + len` representable (EINVAL, EFBIG). */
export function checkRange(pos: unknown, len: unknown): { pos: number; len: number } {
  const p = checkOffset('position', pos);
  const l = checkOffset('length', len);
  if (l > MAX_OFFSET - p) throw fail('EFBIG', `range of ${l} bytes at ${p} ends past the largest file offset 2^53-1`);
  return { pos: p, len: l };
}

/**
 * Largest file size (the kernel's s_maxbytes): 2^53 - 1 bytes, so every
 * offset and size is an exact JS integer, like MAX_LFS_FILESIZE for loff_t.
 * The block- and folio-rounded end of the last byte is then at most 2^53,
 * which is exact too, and iomap accepts ranges ending there (IOMAP_MAX_END).
 */
export const MAX_FILE_SIZE = MAX_OFFSET;

/** A file may not grow to `end` bytes past MAX_FILE_SIZE (EFBIG). */
export function checkFileEnd(end: number): void {
  if (end > MAX_FILE_SIZE) throw fail('EFBIG', `file would reach ${end} bytes; files are limited to ${MAX_FILE_SIZE} bytes (2^53 - 1)`);
}

/** A new file size: EFBIG for an integer past MAX_FILE_SIZE, else as `checkOffset` (EINVAL). */
export function checkFileSize(v: unknown): number {
  if (typeof v === 'number' && Number.isInteger(v) && v > MAX_FILE_SIZE) checkFileEnd(v);
  return checkOffset('size', v);
}

/** Write data must be a Uint8Array (EINVAL). */
export function checkBytes(data: unknown): Uint8Array {
  if (!isUint8Array(data)) throw fail('EINVAL', 'data to write must be a Uint8Array');
  return data;
}

/** An optional `signal`: undefined or an AbortSignal (EINVAL). */
export function checkSignal(signal: unknown): AbortSignal | undefined {
  if (signal === undefined) return undefined;
  if (typeof signal !== 'object' || signal === null || typeof (signal as AbortSignal).aborted !== 'boolean') {
    throw fail('EINVAL', 'signal must be an AbortSignal');
  }
  return signal as AbortSignal;
}
