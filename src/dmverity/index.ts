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
