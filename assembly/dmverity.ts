// dm-verity's block hashing for SHA-256: H(salt || block) in format 1 and
// H(block || salt) in format 0, the salt taken as it is (any length, no
// zero padding), unlike fs-verity's padded prefix.
//
// Because the salt is not padded, a salt whose length is not a multiple
// of 64 shifts every block off the SHA-256 chunk grid: in format 1 the
// first chunk is the salt's tail followed by the block's head, the middle
// chunks are read straight from the block at an unaligned address (free in
// WebAssembly), and the block's last bytes go into the final padded chunk.
// The salt's whole chunks are absorbed once per context (format 1), or its
// bytes are appended after each block (format 0).
//
// Memory: the caller (TypeScript) owns the context and every buffer; this
// file keeps only a 64-byte staging chunk and a 32-byte state.

import { is_zero, sha256_final, sha256_init, sha256_update } from "./sha256";

// ---- context layout (a caller-owned buffer of dmv_ctx_size() bytes)
const C_STATE: usize = 0; // 8 x u32: IV, or the mid-state after the salt's whole chunks (format 1)
const C_ZERO: usize = 32; // 32 bytes: digest of an all-zero block
const C_BLOCK_SIZE: usize = 64; // u32
const C_SALT_LEN: usize = 68; // u32
const C_FORMAT: usize = 72; // u32: 0 or 1
const C_ZERO_VALID: usize = 76; // u32
const C_SALT: usize = 80; // up to 256 bytes of salt
const C_SIZE: u32 = 80 + 256;
const MAX_SALT: u32 = 256;

const CHUNK: usize = memory.data(64, 16);
const ST: usize = memory.data(32, 16);

/** Bytes a dm-verity hashing context needs. */
export function dmv_ctx_size(): u32 {
  return C_SIZE;
}

/**
 * Set up the context at `ctx` for blocks of `blockSize` bytes (a non-zero
 * multiple of 64), the salt at `salt` (`saltLen` <= 256 bytes) and
 * `format` 0 or 1. Returns 0, or -1 for parameters out of range (nothing
 * is written then).
 */
export function dmv_ctx_init(ctx: usize, salt: usize, saltLen: u32, blockSize: u32, format: u32): i32 {
  if (saltLen > MAX_SALT || blockSize == 0 || (blockSize & 63) != 0 || format > 1) return -1;
  store<u32>(ctx + C_BLOCK_SIZE, blockSize);
  store<u32>(ctx + C_SALT_LEN, saltLen);
  store<u32>(ctx + C_FORMAT, format);
  store<u32>(ctx + C_ZERO_VALID, 0);
  memory.copy(ctx + C_SALT, salt, saltLen);
  sha256_init(ctx + C_STATE);
  if (format == 1) sha256_update(ctx + C_STATE, ctx + C_SALT, saltLen >> 6);
  return 0;
}

/** Hash one block of the context's block size at `src`, digest to `dst`. */
function hashOne(ctx: usize, src: usize, dst: usize): void {
  const bs = <usize>load<u32>(ctx + C_BLOCK_SIZE);
  const saltLen = <usize>load<u32>(ctx + C_SALT_LEN);
  const total = <u32>(bs + saltLen);
  memory.copy(ST, ctx + C_STATE, 32);
  if (load<u32>(ctx + C_FORMAT) == 1) {
    const r = saltLen & 63;
    if (r == 0) {
      sha256_update(ST, src, <u32>(bs >> 6));
      sha256_final(ST, 0, 0, total, 0, dst);
      return;
    }
    // The salt's tail and the block's head make the first chunk.
    memory.copy(CHUNK, ctx + C_SALT + saltLen - r, r);
    memory.copy(CHUNK + r, src, 64 - r);
    sha256_update(ST, CHUNK, 1);
    sha256_update(ST, src + 64 - r, <u32>((bs >> 6) - 1));
    sha256_final(ST, src + bs - r, <u32>r, total, 0, dst);
  } else {
    sha256_update(ST, src, <u32>(bs >> 6));
    const whole = saltLen >> 6;
    sha256_update(ST, ctx + C_SALT, <u32>whole);
    sha256_final(ST, ctx + C_SALT + (whole << 6), <u32>(saltLen & 63), total, 0, dst);
  }
}

/** Address of the context's zero-block digest; `zeros` must point at one block of zero bytes the first time. */
export function dmv_ctx_zero_digest(ctx: usize, zeros: usize): usize {
  if (load<u32>(ctx + C_ZERO_VALID) == 0) {
    hashOne(ctx, zeros, ctx + C_ZERO);
    store<u32>(ctx + C_ZERO_VALID, 1);
  }
  return ctx + C_ZERO;
}

/**
 * Hash `count` contiguous blocks at `src`, writing 32-byte digests
 * `stride` bytes apart from `dst` (the bytes between are left alone). An
 * all-zero block gets the zero-block digest without being hashed when
 * `skipZero` is 1 (dmv_ctx_zero_digest must have run). Returns how many
 * blocks were all zero (0 when not looking).
 */
export function dmv_blocks(ctx: usize, src: usize, count: u32, dst: usize, stride: u32, skipZero: u32): u32 {
  const bs = <usize>load<u32>(ctx + C_BLOCK_SIZE);
  let zeros: u32 = 0;
  for (let i: u32 = 0; i < count; i++) {
    const p = src + <usize>i * bs, d = dst + <usize>i * <usize>stride;
    if (skipZero != 0 && is_zero(p, bs)) {
      memory.copy(d, ctx + C_ZERO, 32);
      zeros++;
    } else {
      hashOne(ctx, p, d);
    }
  }
  return zeros;
}
