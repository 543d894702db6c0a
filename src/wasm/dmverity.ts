/**
 * The typed face of assembly/dmverity.ts: dm-verity's SHA-256 block hashing
 * with the salt before (format 1) or after (format 0) each block, not
 * padded, and zero-block skipping. Kept apart from sha256.ts so the two
 * kernels' faces change independently.
 */
import type { Wasm } from './index.js';

/** Exports of assembly/dmverity.ts. Pointers are u32; read them with `>>> 0`. */
export interface DmverityExports {
  /** Bytes a context needs. */
  dmv_ctx_size(): number;
  /** 0, or -1 when saltLen > 256, blockSize is not a non-zero multiple of 64, or format > 1. */
  dmv_ctx_init(ctx: number, salt: number, saltLen: number, blockSize: number, format: number): number;
  /** Address of the zero-block digest; `zeros` points at one zero block on the first call. */
  dmv_ctx_zero_digest(ctx: number, zeros: number): number;
  /** Digests `stride` bytes apart; returns how many blocks were all zero when `skipZero` is 1. */
  dmv_blocks(ctx: number, src: number, count: number, dst: number, stride: number, skipZero: number): number;
  /** As dmv_blocks, four blocks at a time through the 4-lane SIMD kernel. */
  dmv_blocks4(ctx: number, src: number, count: number, dst: number, stride: number, skipZero: number): number;
}

/** The dm-verity exports of an instance. */
export function dmverityExports(wasm: Wasm): DmverityExports {
  return wasm.x as unknown as DmverityExports;
}

/** Largest salt the kernel's context holds (cryptsetup's limit too). */
export const DMV_MAX_SALT_SIZE = 256;
