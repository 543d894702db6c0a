/**
 * iomap-verity: the public API.
 *
 * Standalone fs-verity (`fsverityDigest`, `fsverityDigestFile`), block
 * devices, and the engine (`Volume`, `File`). Filesystem authors find the
 * iomap layer under 'iomap-verity/iomap'.
 */
export { IomapVerityError, isErrno } from './errors.js';
export type { ErrnoCode } from './errors.js';
