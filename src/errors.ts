/**
 * The one error class of iomap-verity. `code` is an errno name that says what
 * kind of failure it is (a caller switches on it); `message` says what was
 * wrong in words a person can act on; `cause` keeps the underlying error.
 *
 * This module sits below every layer: any folder may import it.
 */
export type ErrnoCode =
  | 'EIO'
  | 'EINVAL'
  | 'EFBIG'
  | 'ENODATA'
  | 'EPERM'
  | 'EBUSY'
  | 'EEXIST'
  | 'ENOENT'
  | 'ENOSPC'
  | 'ERANGE'
  | 'EMSGSIZE'
  | 'ENOTDIR'
  | 'EISDIR'
  | 'ENAMETOOLONG'
  | 'EBADF'
  | 'EOPNOTSUPP'
  | 'EROFS'
  /** An operation stopped by its AbortSignal; nothing it would have written is left half-done. */
  | 'ECANCELED'
  /** A signature or key that does not verify, is not trusted, or does not fit (the kernel's code for a bad fs-verity signature). */
  | 'EKEYREJECTED'
  /** A malformed message: a signature, key or certificate that cannot be parsed. */
  | 'EBADMSG';

/**
 * Every error this library throws or rejects with. `code` is the errno name
 * to switch on (stable across versions); `message` is for people and may
 * change; `cause` is the underlying error, when there is one.
 */
export class IomapVerityError extends Error {
  readonly code: ErrnoCode;
  constructor(code: ErrnoCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'IomapVerityError';
    this.code = code;
  }
}

/** Shorthand used across the code base: `throw fail('EINVAL', '...')`. */
export function fail(code: ErrnoCode, message: string, cause?: unknown): IomapVerityError {
  return new IomapVerityError(code, message, cause === undefined ? undefined : { cause });
}

/**
 * ECANCELED when `signal` was aborted, naming `what` was stopped and why
 * (the abort reason's message; the reason itself is the cause).
 */
export function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (!signal?.aborted) return;
  const reason: unknown = signal.reason;
  const why = reason instanceof Error ? reason.message : reason === undefined ? 'aborted' : String(reason);
  throw fail('ECANCELED', `${what} was cancelled: ${why}`, reason);
}

/** True when `e` is an IomapVerityError, optionally with the given code. */
export function isErrno(e: unknown, code?: ErrnoCode): e is IomapVerityError {
  return e instanceof IomapVerityError && (code === undefined || e.code === code);
}

/** Largest offset or size accepted anywhere: JS numbers are exact up to 2^53. */
export const MAX_OFFSET = Number.MAX_SAFE_INTEGER;

/**
 * True for a Uint8Array from any realm (an iframe, a worker, a vm context),
 * where `instanceof Uint8Array` is false for arrays made by another realm's
 * constructor.
 */
export function isUint8Array(x: unknown): x is Uint8Array {
  return x instanceof Uint8Array || (ArrayBuffer.isView(x) && Object.prototype.toString.call(x) === '[object Uint8Array]');
}
