/**
 * The typed face of assembly/sha512.ts: fs-verity's salted block hashing
 * with SHA-512 (one-buffer and 2-lane SIMD kernels), zero-block skipping,
 * and plain SHA-512. It mirrors sha256.ts: the kernels read and write WASM
 * memory only, this file validates what the caller passes, owns the
 * scratch memory and copies JS data in and out in chunks.
 */
import { fail, isUint8Array } from '../errors.js';
import type { Wasm } from './index.js';
import { checkRange, contextPageLayout, MAX_HASH_BLOCK_SIZE, MAX_SALT_SIZE, type ContextLayout } from './sha256.js';

/** SHA-512's digest size in bytes. */
export const SHA512_DIGEST_SIZE = 64;
/** SHA-512's input block size: fs-verity pads the salt to this. */
export const SHA512_BLOCK_SIZE = 128;

// The context page: the kernel's context first, then per-hasher scratch.
const CTX_PAGE = 4096;

function contextLayout(wasm: Wasm): ContextLayout {
  return contextPageLayout('SHA-512', wasm.x.sha512_ctx_size(), wasm.x.sha512_state_size(), SHA512_BLOCK_SIZE, SHA512_DIGEST_SIZE);
}

// hashBlocks copies JS data through one scratch run, as sha256.ts does:
// blocks up to 64 KiB go 256 KiB at a time with their digests (at most
// 256 KiB / 128 * 64 = 128 KiB) in the same 512 KiB run; up to 1 MiB four
// blocks fill the run and their digests go to the context page; larger
// blocks stream through 256 KiB pieces with the one-buffer kernel.
const CHUNK = 256 << 10;
const SMALL_BLOCK_MAX = 64 << 10;
const FOUR_BLOCK_MAX = 1 << 20;

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
 * fs-verity's salted block hasher for one (salt, blockSize) with SHA-512:
 * every block is hashed as SHA-512(salt zero-padded to 128 bytes || block),
 * or SHA-512(block) when the salt is empty. The salted state and the final
 * padding block's schedule are computed once, at create. Scratch memory
 * comes from the arena once and goes back at dispose().
 */
export class Sha512BlockHasher {
  /** Bytes of every block hashed. */
  readonly blockSize: number;
  /** Which kernel pairs of blocks go through (Sha512BlockHasherOptions.lanes). */
  readonly lanes: 1 | 2;
  /** Bytes of one digest (64): lets callers size digest buffers for either hasher. */
  readonly digestSize = SHA512_DIGEST_SIZE;
  private readonly wasm: Wasm;
  private ctx: number;
  private readonly at: ContextLayout;
  private scratch = 0;
  private zero: Uint8Array | undefined;

  private constructor(wasm: Wasm, ctx: number, at: ContextLayout, blockSize: number, lanes: 1 | 2) {
    this.wasm = wasm;
    this.ctx = ctx;
    this.at = at;
    this.blockSize = blockSize;
    this.lanes = lanes;
  }

  /**
   * A hasher for blocks of `blockSize` bytes (a power of two from 128 to
   * 2^30) under `salt` (0 to 32 bytes). EINVAL for anything else.
   */
  static create(wasm: Wasm, salt: Uint8Array, blockSize: number, opts?: Sha512BlockHasherOptions): Sha512BlockHasher {
    if (!isUint8Array(salt)) throw fail('EINVAL', 'salt must be a Uint8Array');
    if (salt.length > MAX_SALT_SIZE) {
      throw fail('EINVAL', `salt is ${salt.length} bytes; fs-verity allows at most ${MAX_SALT_SIZE}`);
    }
    if (
      !Number.isInteger(blockSize) ||
      blockSize < SHA512_BLOCK_SIZE ||
      blockSize > MAX_HASH_BLOCK_SIZE ||
      (blockSize & (blockSize - 1)) !== 0
    ) {
      throw fail('EINVAL', `block size ${blockSize} is not a power of two from ${SHA512_BLOCK_SIZE} to ${MAX_HASH_BLOCK_SIZE}`);
    }
    const lanes = opts?.lanes ?? 2;
    if (lanes !== 1 && lanes !== 2) throw fail('EINVAL', `lanes must be 1 or 2, not ${String(lanes)}`);
    const at = contextLayout(wasm);
    const ctx = wasm.alloc(CTX_PAGE);
    wasm.u8().set(salt, ctx + at.salt);
    if (wasm.x.sha512_ctx_init(ctx, ctx + at.salt, salt.length, blockSize) !== 0) {
      wasm.free(ctx);
      throw fail('EINVAL', `the SHA-512 kernel refused block size ${blockSize} with a ${salt.length}-byte salt`);
    }
    return new Sha512BlockHasher(wasm, ctx, at, blockSize, lanes);
  }

  private live(): number {
    if (this.ctx === 0) throw fail('EBADF', 'Sha512BlockHasher used after dispose()');
    return this.ctx;
  }

  private checkCount(count: number): void {
    if (!Number.isInteger(count) || count < 0 || count > 0xffffffff) {
      throw fail('EINVAL', `block count must be a non-negative integer, not ${count}`);
    }
  }

  /**
   * Hash `count` contiguous blocks at WASM address `src`; write the 64-byte
   * digests contiguously at WASM address `dst`, which must not overlap the
   * blocks.
   */
  hashBlocksAt(src: number, count: number, dst: number): void {
    const ctx = this.live();
    this.checkCount(count);
    checkRange(this.wasm, 'hashBlocksAt source', src, count * this.blockSize);
    checkRange(this.wasm, 'hashBlocksAt digests', dst, count * SHA512_DIGEST_SIZE);
    this.wasm.x.sha512_blocks(ctx, src, count, dst, this.lanes);
  }

  /**
   * As hashBlocksAt, but an all-zero block gets the zero-block digest without
   * being hashed. Returns how many blocks were all zero.
   */
  hashBlocksAtSkipZero(src: number, count: number, dst: number): number {
    const ctx = this.live();
    this.checkCount(count);
    checkRange(this.wasm, 'hashBlocksAtSkipZero source', src, count * this.blockSize);
    checkRange(this.wasm, 'hashBlocksAtSkipZero digests', dst, count * SHA512_DIGEST_SIZE);
    return this.wasm.x.sha512_blocks_skip_zero(ctx, src, count, dst, this.lanes) >>> 0;
  }

  /**
   * Hash JS data: `data.length` must be a multiple of blockSize; the digests
   * go to `out` from `outOffset`, 64 bytes per block. The data is copied
   * through an arena scratch run allocated on first use (see sha256.ts's
   * hashBlocks for the sizes).
   */
  hashBlocks(data: Uint8Array, out: Uint8Array, outOffset = 0): void {
    const ctx = this.live();
    const bs = this.blockSize;
    if (data.length % bs !== 0) {
      throw fail('EINVAL', `hashBlocks: ${data.length} bytes is not a whole number of ${bs}-byte blocks`);
    }
    const n = data.length / bs;
    if (!Number.isInteger(outOffset) || outOffset < 0 || outOffset + n * SHA512_DIGEST_SIZE > out.length) {
      throw fail('EINVAL', `hashBlocks: ${n} digests do not fit in a ${out.length}-byte output at offset ${outOffset}`);
    }
    if (n === 0) return;
    if (this.scratch === 0) {
      this.scratch = this.wasm.alloc(bs <= SMALL_BLOCK_MAX ? 2 * CHUNK : bs <= FOUR_BLOCK_MAX ? 4 * bs : CHUNK);
    }
    const s = this.scratch;
    const x = this.wasm.x;
    if (bs <= FOUR_BLOCK_MAX) {
      const per = bs <= SMALL_BLOCK_MAX ? CHUNK / bs : 4;
      const digests = bs <= SMALL_BLOCK_MAX ? s + CHUNK : ctx + this.at.digests;
      for (let i = 0; i < n; i += per) {
        const k = Math.min(per, n - i);
        this.wasm.u8().set(data.subarray(i * bs, (i + k) * bs), s);
        x.sha512_blocks(ctx, s, k, digests, this.lanes);
        out.set(this.wasm.bytes(digests, k * SHA512_DIGEST_SIZE), outOffset + i * SHA512_DIGEST_SIZE);
      }
      return;
    }
    for (let i = 0; i < n; i++) {
      x.sha512_block_begin(ctx, ctx + this.at.stream);
      for (let off = 0; off < bs; off += CHUNK) {
        this.wasm.u8().set(data.subarray(i * bs + off, i * bs + off + CHUNK), s);
        x.sha512_update(ctx + this.at.stream, s, CHUNK / SHA512_BLOCK_SIZE);
      }
      x.sha512_block_end(ctx, ctx + this.at.stream, ctx + this.at.digests);
      out.set(this.wasm.bytes(ctx + this.at.digests, SHA512_DIGEST_SIZE), outOffset + i * SHA512_DIGEST_SIZE);
    }
  }

  /** The digest of an all-zero block under this salt (a copy; computed once). */
  get zeroBlockDigest(): Uint8Array {
    if (this.zero === undefined) {
      const ctx = this.live();
      const p = this.wasm.x.sha512_ctx_zero_digest(ctx) >>> 0;
      this.zero = this.wasm.bytes(p, SHA512_DIGEST_SIZE).slice();
    }
    return this.zero.slice();
  }

  /** Return the scratch memory to the arena. Further use throws EBADF; a second dispose does nothing. */
  dispose(): void {
    if (this.ctx === 0) return;
    if (this.scratch !== 0) this.wasm.free(this.scratch);
    this.wasm.free(this.ctx);
    this.scratch = 0;
    this.ctx = 0;
  }
}

// sha512() streams through one 64 KiB run: data, then the state and the
// digest in the last 256 bytes (the data part stays a multiple of 128).
const ONE_SHOT_RUN = 64 << 10;
const ONE_SHOT_DATA = ONE_SHOT_RUN - 256;

/** Plain SHA-512 (no salt) of `data`, any length up to 2^53 - 1 bytes. */
export function sha512(wasm: Wasm, data: Uint8Array): Uint8Array {
  const x = wasm.x;
  const run = wasm.alloc(ONE_SHOT_RUN);
  try {
    const st = run + ONE_SHOT_DATA;
    const out = st + x.sha512_state_size();
    const len = data.length;
    x.sha512_init(st);
    const full = len - (len % SHA512_BLOCK_SIZE);
    for (let off = 0; off < full; off += ONE_SHOT_DATA) {
      const k = Math.min(ONE_SHOT_DATA, full - off);
      wasm.u8().set(data.subarray(off, off + k), run);
      x.sha512_update(st, run, k / SHA512_BLOCK_SIZE);
    }
    wasm.u8().set(data.subarray(full), run);
    x.sha512_final(st, run, len - full, len >>> 0, Math.floor(len / 2 ** 32), out);
    return wasm.bytes(out, SHA512_DIGEST_SIZE).slice();
  } finally {
    wasm.free(run);
  }
}
