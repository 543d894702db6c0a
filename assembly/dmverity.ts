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

// ---- 4-lane: four blocks at once through the SIMD kernel of sha256.ts

const LANE: usize = memory.data(4 * 192, 16); // per lane: first chunk, then up to two final chunks
const DISCARD4: usize = memory.data(32, 16);

/**
 * The final padded chunk(s) of a message whose last `n` (< 64) bytes are
 * at `tail`, `total` bytes long, built at `out`; returns 1 or 2 chunks.
 */
function padTail(out: usize, tail: usize, n: usize, total: u32): usize {
  memory.fill(out, 0, 128);
  memory.copy(out, tail, n);
  store<u8>(out + n, 0x80);
  const chunks: usize = n < 56 ? 1 : 2;
  store<u64>(out + (chunks << 6) - 8, bswap<u64>(<u64>total << 3));
  return chunks;
}

/** Hash four blocks at p0..p3 to d0..d3 (the 4-lane kernel over dm-verity's framing). */
function hashFour(ctx: usize, p0: usize, p1: usize, p2: usize, p3: usize, d0: usize, d1: usize, d2: usize, d3: usize): void {
  const bs = <usize>load<u32>(ctx + C_BLOCK_SIZE);
  const saltLen = <usize>load<u32>(ctx + C_SALT_LEN);
  const total = <u32>(bs + saltLen);
  const n = bs >> 6;
  sha256x4_begin(ctx + C_STATE);
  if (load<u32>(ctx + C_FORMAT) == 1) {
    const r = saltLen & 63;
    if (r == 0) {
      for (let k: usize = 0; k < n; k++) sha256x4_chunk(p0 + (k << 6), p1 + (k << 6), p2 + (k << 6), p3 + (k << 6));
      const c = padTail(LANE, 0, 0, total);
      for (let k: usize = 0; k < c; k++) sha256x4_chunk(LANE + (k << 6), LANE + (k << 6), LANE + (k << 6), LANE + (k << 6));
    } else {
      // Lane i's staging at LANE + 192 i: the salt's tail and the block's
      // head, then the block's last r bytes padded.
      const salt = ctx + C_SALT + saltLen - r;
      const h: usize = 64 - r;
      memory.copy(LANE, salt, r); memory.copy(LANE + r, p0, h);
      memory.copy(LANE + 192, salt, r); memory.copy(LANE + 192 + r, p1, h);
      memory.copy(LANE + 384, salt, r); memory.copy(LANE + 384 + r, p2, h);
      memory.copy(LANE + 576, salt, r); memory.copy(LANE + 576 + r, p3, h);
      sha256x4_chunk(LANE, LANE + 192, LANE + 384, LANE + 576);
      for (let k: usize = 0; k + 1 < n; k++) {
        const o = h + (k << 6);
        sha256x4_chunk(p0 + o, p1 + o, p2 + o, p3 + o);
      }
      const c = padTail(LANE + 64, p0 + bs - r, r, total);
      padTail(LANE + 256, p1 + bs - r, r, total);
      padTail(LANE + 448, p2 + bs - r, r, total);
      padTail(LANE + 640, p3 + bs - r, r, total);
      for (let k: usize = 0; k < c; k++) {
        const o: usize = 64 + (k << 6);
        sha256x4_chunk(LANE + o, LANE + 192 + o, LANE + 384 + o, LANE + 576 + o);
      }
    }
  } else {
    for (let k: usize = 0; k < n; k++) sha256x4_chunk(p0 + (k << 6), p1 + (k << 6), p2 + (k << 6), p3 + (k << 6));
    const whole = saltLen >> 6;
    for (let k: usize = 0; k < whole; k++) {
      const s = ctx + C_SALT + (k << 6);
      sha256x4_chunk(s, s, s, s);
    }
    const c = padTail(LANE, ctx + C_SALT + (whole << 6), saltLen & 63, total);
    for (let k: usize = 0; k < c; k++) sha256x4_chunk(LANE + (k << 6), LANE + (k << 6), LANE + (k << 6), LANE + (k << 6));
  }
  sha256x4_end(d0, d1, d2, d3);
}

/**
 * As dmv_blocks, with non-zero blocks gathered four at a time for the
 * 4-lane kernel; a group of fewer than four at the end fills its spare
 * lanes with repeats whose digests are discarded (from two blocks on,
 * one 4-lane pass costs less than two one-buffer hashes).
 */
export function dmv_blocks4(ctx: usize, src: usize, count: u32, dst: usize, stride: u32, skipZero: u32): u32 {
  const bs = <usize>load<u32>(ctx + C_BLOCK_SIZE);
  let zeros: u32 = 0, n: u32 = 0;
  let p0: usize = 0, p1: usize = 0, p2: usize = 0;
  let d0: usize = 0, d1: usize = 0, d2: usize = 0;
  for (let i: u32 = 0; i < count; i++) {
    const p = src + <usize>i * bs, d = dst + <usize>i * <usize>stride;
    if (skipZero != 0 && is_zero(p, bs)) {
      memory.copy(d, ctx + C_ZERO, 32);
      zeros++;
    } else if (n == 0) {
      p0 = p; d0 = d; n = 1;
    } else if (n == 1) {
      p1 = p; d1 = d; n = 2;
    } else if (n == 2) {
      p2 = p; d2 = d; n = 3;
    } else {
      hashFour(ctx, p0, p1, p2, p, d0, d1, d2, d);
      n = 0;
    }
  }
  if (n == 1) hashOne(ctx, p0, d0);
  else if (n == 2) hashFour(ctx, p0, p1, p0, p1, d0, d1, DISCARD4, DISCARD4);
  else if (n == 3) hashFour(ctx, p0, p1, p2, p0, d0, d1, d2, DISCARD4);
  return zeros;
}
