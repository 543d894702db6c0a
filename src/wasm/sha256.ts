/**
 * The typed face of assembly/sha256.ts: fs-verity's salted block hashing
 * (one-buffer and 4-lane SIMD kernels), zero-block skipping, and plain
 * SHA-256.
 *
 * The kernels read and write WASM memory only; this file validates what the
 * caller passes (so a bad pointer is an IomapVerityError, not a WebAssembly
 * trap), owns the scratch memory and copies JS data in and out in chunks.
 */
import { fail, isUint8Array } from '../errors.js';
import type { Wasm } from './index.js';

/** SHA-256's digest size in bytes. */
export const SHA256_DIGEST_SIZE = 32;
/** SHA-256's input block size: fs-verity pads the salt to this. */
export const SHA256_BLOCK_SIZE = 64;
/** Largest salt fs-verity allows. */
export const MAX_SALT_SIZE = 32;
/** Largest block size the hasher takes (fsverity-utils' digest goes to 8 MiB; this leaves room). */
export const MAX_HASH_BLOCK_SIZE = 1 << 30;

// The context page: the kernel's context first (as large as the module
// says), then per-hasher scratch.
const CTX_PAGE = 4096;

/** Offsets in a hasher's context page of what the hasher stages there (SHA-256 and SHA-512 alike). */
export interface ContextLayout {
  /** The salt, staged for the kernel's ctx_init (at most one input block). */
  salt: number;
  /** The state for streaming one large block. */
  stream: number;
  /** Up to four digests of large blocks. */
  digests: number;
}

const align16 = (n: number) => (n + 15) & ~15;

/**
 * A hasher's context page layout, from the sizes its kernel reports (`ctxSize`,
 * `stateSize`) and its algorithm's input block and digest sizes; EIO when
 * it would not fit a page.
 */
export function contextPageLayout(name: string, ctxSize: number, stateSize: number, blockSize: number, digestSize: number): ContextLayout {
  const salt = align16(ctxSize);
  const stream = salt + blockSize;
  const digests = stream + align16(stateSize);
  if (digests + 4 * digestSize > CTX_PAGE)
    throw fail('EIO', `the ${name} kernel's context (${salt} bytes) leaves no room for a hasher's scratch in ${CTX_PAGE} bytes`);
  return { salt, stream, digests };
}

function contextLayout(wasm: Wasm): ContextLayout {
  return contextPageLayout('SHA-256', wasm.x.sha256_ctx_size(), wasm.x.sha256_state_size(), SHA256_BLOCK_SIZE, SHA256_DIGEST_SIZE);
}

// hashBlocks copies JS data through one scratch run, sized so that the 4-lane
// kernel always gets four blocks at a time where it can:
// - blocks up to 64 KiB: 256 KiB of blocks, then their digests (at most
//   256 KiB / 64 * 32 = 128 KiB) in the same 512 KiB run;
// - up to 1 MiB: four blocks fill the run (at most the arena's 4 MiB
//   maximum), their digests go to the context page;
// - larger: one block at a time streams through 256 KiB pieces with the
//   one-buffer kernel.
const CHUNK = 256 << 10;
const SMALL_BLOCK_MAX = 64 << 10;
const FOUR_BLOCK_MAX = 1 << 20;

/** EINVAL unless `ptr`..`ptr + len` lies inside WASM memory (so a bad pointer never reaches a kernel). */
export function checkRange(wasm: Wasm, what: string, ptr: number, len: number): void {
  const size = wasm.x.memory.buffer.byteLength;
  if (!Number.isInteger(ptr) || ptr < 0 || !Number.isInteger(len) || len < 0 || ptr + len > size) {
    throw fail('EINVAL', `${what}: range ${ptr}+${len} is not inside WebAssembly memory (${size} bytes)`);
  }
}

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
 * fs-verity's salted block hasher for one (salt, blockSize): every block is
 * hashed as SHA-256(salt zero-padded to 64 bytes || block), or SHA-256(block)
 * when the salt is empty. The salted state and the final padding block's
 * schedule are computed once, at create. Scratch memory comes from the arena
 * once and goes back at dispose().
 */
export class Sha256BlockHasher {
  /** Bytes of every block hashed. */
  readonly blockSize: number;
  /** Which kernel groups of four blocks go through (Sha256BlockHasherOptions.lanes). */
  readonly lanes: 1 | 4;
  private readonly wasm: Wasm;
  private ctx: number;
  private readonly at: ContextLayout;
  private scratch = 0;
  private zero: Uint8Array | undefined;

  private constructor(wasm: Wasm, ctx: number, at: ContextLayout, blockSize: number, lanes: 1 | 4) {
    this.wasm = wasm;
    this.ctx = ctx;
    this.at = at;
    this.blockSize = blockSize;
    this.lanes = lanes;
  }

  /**
   * A hasher for blocks of `blockSize` bytes (a power of two from 64 to
   * 2^30) under `salt` (0 to 32 bytes). EINVAL for anything else.
   */
  static create(wasm: Wasm, salt: Uint8Array, blockSize: number, opts?: Sha256BlockHasherOptions): Sha256BlockHasher {
    if (!isUint8Array(salt)) throw fail('EINVAL', 'salt must be a Uint8Array');
    if (salt.length > MAX_SALT_SIZE) {
      throw fail('EINVAL', `salt is ${salt.length} bytes; fs-verity allows at most ${MAX_SALT_SIZE}`);
    }
    if (
      !Number.isInteger(blockSize) ||
      blockSize < SHA256_BLOCK_SIZE ||
      blockSize > MAX_HASH_BLOCK_SIZE ||
      (blockSize & (blockSize - 1)) !== 0
    ) {
      throw fail('EINVAL', `block size ${blockSize} is not a power of two from 64 to ${MAX_HASH_BLOCK_SIZE}`);
    }
    const lanes = opts?.lanes ?? 4;
    if (lanes !== 1 && lanes !== 4) throw fail('EINVAL', `lanes must be 1 or 4, not ${String(lanes)}`);
    const at = contextLayout(wasm);
    const ctx = wasm.alloc(CTX_PAGE);
    wasm.u8().set(salt, ctx + at.salt);
    if (wasm.x.sha256_ctx_init(ctx, ctx + at.salt, salt.length, blockSize) !== 0) {
      wasm.free(ctx);
      throw fail('EINVAL', `the SHA-256 kernel refused block size ${blockSize} with a ${salt.length}-byte salt`);
    }
    return new Sha256BlockHasher(wasm, ctx, at, blockSize, lanes);
  }

  private live(): number {
    if (this.ctx === 0) throw fail('EBADF', 'Sha256BlockHasher used after dispose()');
    return this.ctx;
  }

  private checkCount(count: number): void {
    if (!Number.isInteger(count) || count < 0 || count > 0xffffffff) {
      throw fail('EINVAL', `block count must be a non-negative integer, not ${count}`);
    }
  }

  /**
   * Hash `count` contiguous blocks at WASM address `src`; write the 32-byte
   * digests contiguously at WASM address `dst`. `dst` must not overlap the
   * blocks. Groups of four go through the 4-lane kernel (unless the hasher
   * was created with `lanes: 1`), the rest through the one-buffer kernel.
   */
  hashBlocksAt(src: number, count: number, dst: number): void {
    const ctx = this.live();
    this.checkCount(count);
    checkRange(this.wasm, 'hashBlocksAt source', src, count * this.blockSize);
    checkRange(this.wasm, 'hashBlocksAt digests', dst, count * SHA256_DIGEST_SIZE);
    if (this.lanes === 4) this.wasm.x.sha256_blocks(ctx, src, count, dst);
    else this.wasm.x.sha256_blocks_1(ctx, src, count, dst);
  }

  /**
   * As hashBlocksAt, but an all-zero block gets the zero-block digest without
   * being hashed (the zero test reads 16 bytes per load and stops at the
   * first non-zero one). Returns how many blocks were all zero.
   */
  hashBlocksAtSkipZero(src: number, count: number, dst: number): number {
    const ctx = this.live();
    this.checkCount(count);
    checkRange(this.wasm, 'hashBlocksAtSkipZero source', src, count * this.blockSize);
    checkRange(this.wasm, 'hashBlocksAtSkipZero digests', dst, count * SHA256_DIGEST_SIZE);
    return this.wasm.x.sha256_blocks_skip_zero(ctx, src, count, dst, this.lanes) >>> 0;
  }

  /**
   * Hash JS data: `data.length` must be a multiple of blockSize; the digests
   * go to `out` from `outOffset`, 32 bytes per block. The data is copied
   * through an arena scratch run allocated on first use: 512 KiB for blocks
   * up to 64 KiB, four blocks for blocks up to 1 MiB, 256 KiB beyond (those
   * stream through the one-buffer kernel).
   */
  hashBlocks(data: Uint8Array, out: Uint8Array, outOffset = 0): void {
    const ctx = this.live();
    const bs = this.blockSize;
    if (data.length % bs !== 0) {
      throw fail('EINVAL', `hashBlocks: ${data.length} bytes is not a whole number of ${bs}-byte blocks`);
    }
    const n = data.length / bs;
    if (!Number.isInteger(outOffset) || outOffset < 0 || outOffset + n * SHA256_DIGEST_SIZE > out.length) {
      throw fail(
        'EINVAL',
        `hashBlocks: ${n} digests do not fit in a ${out.length}-byte output at offset ${outOffset}`,
      );
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
        if (this.lanes === 4) x.sha256_blocks(ctx, s, k, digests);
        else x.sha256_blocks_1(ctx, s, k, digests);
        out.set(this.wasm.bytes(digests, k * SHA256_DIGEST_SIZE), outOffset + i * SHA256_DIGEST_SIZE);
      }
      return;
    }
    // A block larger than the scratch run: stream it through the one-buffer kernel.
    for (let i = 0; i < n; i++) {
      x.sha256_block_begin(ctx, ctx + this.at.stream);
      for (let off = 0; off < bs; off += CHUNK) {
        this.wasm.u8().set(data.subarray(i * bs + off, i * bs + off + CHUNK), s);
        x.sha256_update(ctx + this.at.stream, s, CHUNK / SHA256_BLOCK_SIZE);
      }
      x.sha256_block_end(ctx, ctx + this.at.stream, ctx + this.at.digests);
      out.set(this.wasm.bytes(ctx + this.at.digests, SHA256_DIGEST_SIZE), outOffset + i * SHA256_DIGEST_SIZE);
    }
  }

  /** The digest of an all-zero block under this salt (a copy; computed once). */
  get zeroBlockDigest(): Uint8Array {
    if (this.zero === undefined) {
      const ctx = this.live();
      const p = this.wasm.x.sha256_ctx_zero_digest(ctx) >>> 0;
      this.zero = this.wasm.bytes(p, SHA256_DIGEST_SIZE).slice();
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

/** True when the `len` bytes at WASM address `ptr` are all zero. */
export function isZeroAt(wasm: Wasm, ptr: number, len: number): boolean {
  checkRange(wasm, 'isZeroAt', ptr, len);
  return wasm.x.is_zero(ptr, len) !== 0;
}

// sha256() streams through one 64 KiB run: data, then the state and the
// digest in the last 128 bytes.
const ONE_SHOT_RUN = 64 << 10;
const ONE_SHOT_DATA = ONE_SHOT_RUN - 128;

/** Plain SHA-256 (no salt) of `data`, any length up to 2^53 - 1 bytes. */
export function sha256(wasm: Wasm, data: Uint8Array): Uint8Array {
  const x = wasm.x;
  const run = wasm.alloc(ONE_SHOT_RUN);
  try {
    const st = run + ONE_SHOT_DATA;
    const out = st + x.sha256_state_size();
    const len = data.length;
    x.sha256_init(st);
    const full = len - (len % SHA256_BLOCK_SIZE);
    for (let off = 0; off < full; off += ONE_SHOT_DATA) {
      const k = Math.min(ONE_SHOT_DATA, full - off);
      wasm.u8().set(data.subarray(off, off + k), run);
      x.sha256_update(st, run, k / SHA256_BLOCK_SIZE);
    }
    wasm.u8().set(data.subarray(full), run);
    x.sha256_final(st, run, len - full, len >>> 0, Math.floor(len / 2 ** 32), out);
    return wasm.bytes(out, SHA256_DIGEST_SIZE).slice();
  } finally {
    wasm.free(run);
  }
}
