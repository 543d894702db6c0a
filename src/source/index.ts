/**
 * Byte sources: where the bytes of a verified file come from. Node-only
 * parts (local paths, Node streams) are loaded when used.
 */
export { openSource } from './source.js';
export type { ByteSource, ReaderLike, Src, SourceOptions } from './source.js';
export type { HttpSourceOptions } from './http.js';
export { toNodeReadable } from './node-readable.js';
