/**
 * The typed face of assembly/dmverity.ts: dm-verity's SHA-256 block hashing
 * with the salt before (format 1) or after (format 0) each block, not
 * padded, and zero-block skipping. The exports themselves are described in
 * exports.ts; this file adds the hasher the main thread and the pool's
 * workers share.
 */
import { fail, isUint8Array } from '../errors.js';
import type { Wasm } from './index.js';

/** Largest salt the kernel's context holds (cryptsetup's limit too). */
export const DMV_MAX_SALT_SIZE = 256;

// The context page: the kernel's context, then the salt staged for init.
const CTX_PAGE = 4096;
const OFF_SALT = 2048;

/**
 * Hashes blocks already in WASM memory in dm-verity's framing, with the
 * 4-lane kernel, all-zero blocks given the precomputed zero digest.
 * Owns one 4 KiB context page (plus one zero block at create) until dispose().
 */
export class DmverityBlockHasher {
  private ctx: number;
  /** The digest of an all-zero block. */
  readonly zeroDigest: Uint8Array;

  private constructor(
    private readonly wasm: Wasm,
    ctx: number,
    readonly blockSize: number,
  ) {
    this.ctx = ctx;
    const zeros = wasm.alloc(blockSize);
    try {
      wasm.bytes(zeros, blockSize).fill(0);
      this.zeroDigest = wasm.bytes(wasm.x.dmv_ctx_zero_digest(ctx, zeros) >>> 0, 32).slice();
    } finally {
      wasm.free(zeros);
    }
  }

  /**
   * A hasher for blocks of `blockSize` bytes (a power of two from 64 to
   * 2^30) under `salt` (at most 256 bytes) in `format` 0 or 1; EINVAL for
   * anything else.
   */
  static create(wasm: Wasm, salt: Uint8Array, format: number, blockSize: number): DmverityBlockHasher {
    if (!isUint8Array(salt) || salt.length > DMV_MAX_SALT_SIZE) throw fail('EINVAL', `dm-verity salt must be a Uint8Array of at most ${DMV_MAX_SALT_SIZE} bytes`);
    if (!Number.isInteger(blockSize) || blockSize < 64 || blockSize > 2 ** 30 || (blockSize & (blockSize - 1)) !== 0) {
      throw fail('EINVAL', `block size ${blockSize} is not a power of two from 64 to 2^30`);
    }
    const ctx = wasm.alloc(CTX_PAGE);
    wasm.bytes(ctx + OFF_SALT, salt.length).set(salt);
    if (wasm.x.dmv_ctx_init(ctx, ctx + OFF_SALT, salt.length, blockSize, format) !== 0) {
      wasm.free(ctx);
      throw fail('EINVAL', `the dm-verity kernel refused format ${format}, block size ${blockSize}, a ${salt.length}-byte salt`);
    }
    return new DmverityBlockHasher(wasm, ctx, blockSize);
  }

  private live(): number {
    if (this.ctx === 0) throw fail('EBADF', 'DmverityBlockHasher used after dispose()');
    return this.ctx;
  }

  /** Hash `count` blocks at `src` into 32-byte digests at `dst`; returns how many were all zero. */
  hashBlocksAtSkipZero(src: number, count: number, dst: number): number {
    const size = this.wasm.x.memory.buffer.byteLength;
    if (!(src >= 0 && dst >= 0 && src + count * this.blockSize <= size && dst + count * 32 <= size)) {
      throw fail('EINVAL', `dm-verity hashing: ${count} blocks at ${src} or their digests at ${dst} are not inside WebAssembly memory`);
    }
    return this.wasm.x.dmv_blocks4(this.live(), src, count, dst, 32, 1) >>> 0;
  }

  /** Hash `count` blocks at `src` with the one-buffer kernel, zero blocks hashed too (for tests). */
  hashBlocksAtOneBuffer(src: number, count: number, dst: number): void {
    this.wasm.x.dmv_blocks(this.live(), src, count, dst, 32, 0);
  }

  /** Return the context page to the arena; further use throws EBADF. */
  dispose(): void {
    if (this.ctx !== 0) this.wasm.free(this.ctx);
    this.ctx = 0;
  }
}
