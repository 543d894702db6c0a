/**
 * The typed face of assembly/sha256.ts: fs-verity's salted block hashing
 * (one-buffer and 4-lane SIMD kernels), zero-block skipping, and plain
 * SHA-256. Everything but the sizes and kernel calls is block-hasher.ts,
 * shared with sha512.ts.
 */
import type { Wasm } from './index.js';
import { checkRange as checkRangeOf, plainDigest, SaltedBlockHasher, type BlockKernel } from './block-hasher.js';

export { checkRange, contextPageLayout, MAX_HASH_BLOCK_SIZE, MAX_SALT_SIZE, type ContextLayout } from './block-hasher.js';

/** SHA-256's digest size in bytes. */
export const SHA256_DIGEST_SIZE = 32;
/** SHA-256's input block size: fs-verity pads the salt to this. */
export const SHA256_BLOCK_SIZE = 64;

const SHA256: BlockKernel = {
  className: 'Sha256BlockHasher',
  name: 'SHA-256',
  digestSize: SHA256_DIGEST_SIZE,
  inputBlockSize: SHA256_BLOCK_SIZE,
  ctxSize: (x) => x.sha256_ctx_size(),
  stateSize: (x) => x.sha256_state_size(),
  ctxInit: (x, ctx, salt, saltLen, bs) => x.sha256_ctx_init(ctx, salt, saltLen, bs),
  zeroDigest: (x, ctx) => x.sha256_ctx_zero_digest(ctx),
  blocks: (x, ctx, src, count, dst, lanes) => (lanes === 4 ? x.sha256_blocks(ctx, src, count, dst) : x.sha256_blocks_1(ctx, src, count, dst)),
  blocksSkipZero: (x, ctx, src, count, dst, lanes) => x.sha256_blocks_skip_zero(ctx, src, count, dst, lanes),
  blockBegin: (x, ctx, st) => x.sha256_block_begin(ctx, st),
  blockEnd: (x, ctx, st, out) => x.sha256_block_end(ctx, st, out),
  init: (x, st) => x.sha256_init(st),
  update: (x, st, src, chunks) => x.sha256_update(st, src, chunks),
  final: (x, st, tail, tailLen, lo, hi, out) => x.sha256_final(st, tail, tailLen, lo, hi, out),
};

/** Options of `Sha256BlockHasher.create`. */
export interface Sha256BlockHasherOptions {
  /**
   * 4 (default): groups of four blocks go through the 4-lane SIMD kernel and
   * the rest through the one-buffer kernel. 1: the one-buffer kernel only
   * (for tests and benchmarks that compare the two).
   */
  lanes?: 1 | 4;
}

/**
 * fs-verity's salted block hasher with SHA-256: every block is hashed as
 * SHA-256(salt zero-padded to 64 bytes || block), or SHA-256(block) when the
 * salt is empty (see SaltedBlockHasher for the methods).
 */
export class Sha256BlockHasher extends SaltedBlockHasher<1 | 4> {
  /**
   * A hasher for blocks of `blockSize` bytes (a power of two from 64 to
   * 2^30) under `salt` (0 to 32 bytes). EINVAL for anything else.
   */
  static create(wasm: Wasm, salt: Uint8Array, blockSize: number, opts?: Sha256BlockHasherOptions): Sha256BlockHasher {
    const lanes = opts?.lanes ?? 4;
    const { at, ctx } = SaltedBlockHasher.setUp(wasm, SHA256, salt, blockSize, lanes, [1, 4]);
    return new Sha256BlockHasher(wasm, SHA256, at, ctx, blockSize, lanes);
  }
}

/** True when the `len` bytes at WASM address `ptr` are all zero. */
export function isZeroAt(wasm: Wasm, ptr: number, len: number): boolean {
  checkRangeOf(wasm, 'isZeroAt', ptr, len);
  return wasm.x.is_zero(ptr, len) !== 0;
}

/** Plain SHA-256 (no salt) of `data`, any length up to 2^53 - 1 bytes. */
export function sha256(wasm: Wasm, data: Uint8Array): Uint8Array {
  return plainDigest(wasm, SHA256, data);
}
