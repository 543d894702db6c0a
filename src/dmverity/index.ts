/**
 * dm-verity in the `veritysetup` format: superblock, tree layout, format
 * and verify, on the same WebAssembly SHA-256 kernel as fs-verity.
 */
export * from './params.js';
export * from './superblock.js';
export { dmverityFormat, dmverityHex, DmverityTreeBuilder } from './format.js';
export type { DmverityFormatOptions, DmverityFormatResult, DmverityHashSink } from './format.js';
export { dmverityVerify, dmverityReadParams } from './verify.js';
export type { DmverityVerifyOptions, DmverityVerifyResult, DmverityFailure } from './verify.js';
export type { DmverityInput } from './io.js';
// For verified readers: the block hashing of a tree's parameters.
export { createDmBlockHasher } from './hash.js';
export type { DmBlockHasher } from './hash.js';
// Verified reads of an image under its hash device and a trusted root hash (the verity library's reader).
export { openDmverity, DmverityFile } from './open.js';
export type { DmveritySources, DmverityTrust } from './open.js';
export { dmverityGeometry } from './geometry.js';
