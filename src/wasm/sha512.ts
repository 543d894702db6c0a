/**
 * The typed face of assembly/sha512.ts: fs-verity's salted block hashing
 * with SHA-512 (one-buffer and 2-lane SIMD kernels), zero-block skipping,
 * and plain SHA-512. Everything but the sizes and kernel calls is
 * block-hasher.ts, shared with sha256.ts.
 */
import type { Wasm } from './index.js';
import { plainDigest, SaltedBlockHasher, type BlockKernel } from './block-hasher.js';

/** SHA-512's digest size in bytes. */
export const SHA512_DIGEST_SIZE = 64;
/** SHA-512's input block size: fs-verity pads the salt to this. */
export const SHA512_BLOCK_SIZE = 128;

const SHA512: BlockKernel = {
  className: 'Sha512BlockHasher',
  name: 'SHA-512',
  digestSize: SHA512_DIGEST_SIZE,
  inputBlockSize: SHA512_BLOCK_SIZE,
  ctxSize: (x) => x.sha512_ctx_size(),
  stateSize: (x) => x.sha512_state_size(),
  ctxInit: (x, ctx, salt, saltLen, bs) => x.sha512_ctx_init(ctx, salt, saltLen, bs),
  zeroDigest: (x, ctx) => x.sha512_ctx_zero_digest(ctx),
  blocks: (x, ctx, src, count, dst, lanes) => x.sha512_blocks(ctx, src, count, dst, lanes),
  blocksSkipZero: (x, ctx, src, count, dst, lanes) => x.sha512_blocks_skip_zero(ctx, src, count, dst, lanes),
  blockBegin: (x, ctx, st) => x.sha512_block_begin(ctx, st),
  blockEnd: (x, ctx, st, out) => x.sha512_block_end(ctx, st, out),
  init: (x, st) => x.sha512_init(st),
  update: (x, st, src, chunks) => x.sha512_update(st, src, chunks),
  final: (x, st, tail, tailLen, lo, hi, out) => x.sha512_final(st, tail, tailLen, lo, hi, out),
};

/** Options of `Sha512BlockHasher.create`. */
export interface Sha512BlockHasherOptions {
  /**
   * 2 (default): pairs of blocks go through the 2-lane SIMD kernel and an
   * odd last block through the one-buffer kernel. 1: the one-buffer kernel
   * only (for tests and benchmarks that compare the two).
   */
  lanes?: 1 | 2;
}

/**
 * fs-verity's salted block hasher with SHA-512: every block is hashed as
 * SHA-512(salt zero-padded to 128 bytes || block), or SHA-512(block) when
 * the salt is empty (see SaltedBlockHasher for the methods).
 */
export class Sha512BlockHasher extends SaltedBlockHasher<1 | 2> {
  /**
   * A hasher for blocks of `blockSize` bytes (a power of two from 128 to
   * 2^30) under `salt` (0 to 32 bytes). EINVAL for anything else.
   */
  static create(wasm: Wasm, salt: Uint8Array, blockSize: number, opts?: Sha512BlockHasherOptions): Sha512BlockHasher {
    const lanes = opts?.lanes ?? 2;
    const { at, ctx } = SaltedBlockHasher.setUp(wasm, SHA512, salt, blockSize, lanes, [1, 2]);
    return new Sha512BlockHasher(wasm, SHA512, at, ctx, blockSize, lanes);
  }
}

/** Plain SHA-512 (no salt) of `data`, any length up to 2^53 - 1 bytes. */
export function sha512(wasm: Wasm, data: Uint8Array): Uint8Array {
  return plainDigest(wasm, SHA512, data);
}
