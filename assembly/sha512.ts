// SHA-512 (FIPS 180-4): one-buffer and 2-lane SIMD multi-buffer compression,
// fs-verity's salted block hashing, zero-block detection, and a plain one-shot.
//
// The design is sha256.ts's, at SHA-512's sizes: fs-verity hashes every
// block as H(salt zero-padded to 128 bytes || block), or H(block) with no
// salt. The padded salt is one SHA-512 input block, absorbed once into a
// context's salted mid-state; the block size is a multiple of 128, so the
// final padding is a whole block that depends only on the length, and its
// schedule (with the round constants already added) is computed once per
// context.
//
// The 2-lane kernel hashes two independent blocks at once, one per i64x2
// lane: 128-bit SIMD holds only two 64-bit words, and WebAssembly has no
// 64-bit lane rotate, so each rotation costs two shifts and an OR (the
// rotation by 8 in sigma0 is a byte shuffle). The one-buffer kernel uses
// scalar i64 rotates, which the CPU has, so the two are much closer than
// SHA-256's 4-lane and one-buffer kernels; sha512_blocks takes pairs
// through whichever kernel its caller asks for.
//
// Measured on 4 KiB blocks, one thread, this project's 2-core EPYC under a
// load average of 7 to 12 (so ratios only): the 2-lane kernel 1.2x to 1.6x
// the one-buffer kernel, 1.5x to 2.0x hash-wasm; against node:crypto
// (OpenSSL, no SHA-512 instructions on this CPU) 0.7x to 1.5x, the noise
// of the load. A round is about 50 vector operations for two blocks, 18
// of them shifts, against about 33 scalar ones for one block.
//
// Memory: the caller (TypeScript) owns every buffer; this file keeps only
// static tables and scratch. Nothing here allocates, and every export takes
// and returns numbers.

// ---- context layout (a caller-owned buffer of sha512_ctx_size() bytes, 16-aligned)
const CTX_STATE: usize = 0; // 8 x u64: salted mid-state
const CTX_PADKW: usize = 64; // 80 x u64: K[t] + W[t] of the final padding block
const CTX_ZERO: usize = 704; // 64 bytes: digest of an all-zero block
const CTX_BLOCK_SIZE: usize = 768; // u32
const CTX_PREFIX: usize = 772; // u32: 0 or 128 bytes absorbed into CTX_STATE
const CTX_ZERO_VALID: usize = 776; // u32: CTX_ZERO has been computed
const CTX_SIZE: u32 = 784;

// prettier-ignore
const K: usize = memory.data<u64>([
  0x428a2f98d728ae22, 0x7137449123ef65cd, 0xb5c0fbcfec4d3b2f, 0xe9b5dba58189dbbc, 0x3956c25bf348b538,
  0x59f111f1b605d019, 0x923f82a4af194f9b, 0xab1c5ed5da6d8118, 0xd807aa98a3030242, 0x12835b0145706fbe,
  0x243185be4ee4b28c, 0x550c7dc3d5ffb4e2, 0x72be5d74f27b896f, 0x80deb1fe3b1696b1, 0x9bdc06a725c71235,
  0xc19bf174cf692694, 0xe49b69c19ef14ad2, 0xefbe4786384f25e3, 0x0fc19dc68b8cd5b5, 0x240ca1cc77ac9c65,
  0x2de92c6f592b0275, 0x4a7484aa6ea6e483, 0x5cb0a9dcbd41fbd4, 0x76f988da831153b5, 0x983e5152ee66dfab,
  0xa831c66d2db43210, 0xb00327c898fb213f, 0xbf597fc7beef0ee4, 0xc6e00bf33da88fc2, 0xd5a79147930aa725,
  0x06ca6351e003826f, 0x142929670a0e6e70, 0x27b70a8546d22ffc, 0x2e1b21385c26c926, 0x4d2c6dfc5ac42aed,
  0x53380d139d95b3df, 0x650a73548baf63de, 0x766a0abb3c77b2a8, 0x81c2c92e47edaee6, 0x92722c851482353b,
  0xa2bfe8a14cf10364, 0xa81a664bbc423001, 0xc24b8b70d0f89791, 0xc76c51a30654be30, 0xd192e819d6ef5218,
  0xd69906245565a910, 0xf40e35855771202a, 0x106aa07032bbd1b8, 0x19a4c116b8d2d0c8, 0x1e376c085141ab53,
  0x2748774cdf8eeb99, 0x34b0bcb5e19b48a8, 0x391c0cb3c5c95a63, 0x4ed8aa4ae3418acb, 0x5b9cca4f7763e373,
  0x682e6ff3d6b2b8a3, 0x748f82ee5defb2fc, 0x78a5636f43172f60, 0x84c87814a1f0ab72, 0x8cc702081a6439ec,
  0x90befffa23631e28, 0xa4506cebde82bde9, 0xbef9a3f7b2c67915, 0xc67178f2e372532b, 0xca273eceea26619c,
  0xd186b8c721c0c207, 0xeada7dd6cde0eb1e, 0xf57d4f7fee6ed178, 0x06f067aa72176fba, 0x0a637dc5a2c898a6,
  0x113f9804bef90dae, 0x1b710b35131c471b, 0x28db77f523047d84, 0x32caab7b40c72493, 0x3c9ebe0a15c9bebc,
  0x431d67c49c100d4c, 0x4cc5d4becb3e42b6, 0x597f299cfc657e2a, 0x5fcb6fab3ad6faec, 0x6c44198c4a475817,
], 16);
// prettier-ignore
const IV: usize = memory.data<u64>([
  0x6a09e667f3bcc908, 0xbb67ae8584caa73b, 0x3c6ef372fe94f82b, 0xa54ff53a5f1d36f1,
  0x510e527fade682d1, 0x9b05688c2b3e6c1f, 0x1f83d9abfb41bd6b, 0x5be0cd19137e2179,
], 16);

const ST1: usize = memory.data(64, 16); // one-buffer state scratch
const TAIL: usize = memory.data(256, 16); // one-shot final blocks, the salt block
const DISCARD: usize = memory.data(64, 16); // digest of the 2-lane kernel's spare lane

// ---- scalar primitives

// @ts-ignore: decorator
@inline function bigS0(x: u64): u64 { return rotr<u64>(x, 28) ^ rotr<u64>(x, 34) ^ rotr<u64>(x, 39); }
// @ts-ignore: decorator
@inline function bigS1(x: u64): u64 { return rotr<u64>(x, 14) ^ rotr<u64>(x, 18) ^ rotr<u64>(x, 41); }
// @ts-ignore: decorator
@inline function smallS0(x: u64): u64 { return rotr<u64>(x, 1) ^ rotr<u64>(x, 8) ^ (x >>> 7); }
// @ts-ignore: decorator
@inline function smallS1(x: u64): u64 { return rotr<u64>(x, 19) ^ rotr<u64>(x, 61) ^ (x >>> 6); }
// @ts-ignore: decorator
@inline function ch(e: u64, f: u64, g: u64): u64 { return g ^ (e & (f ^ g)); }

// Maj(a, b, c) is written b ^ ((a ^ b) & (b ^ c)): the next round's b ^ c
// is this round's a ^ b, so each round computes one XOR for it (u and v
// alternate between the two).

/** Expand a schedule at `w` (80 x u64, W[0..15] filled) and add the round constants to every word. */
function expandAddK(w: usize): void {
  for (let t: usize = 128; t < 640; t += 8) {
    store<u64>(w + t,
      smallS1(load<u64>(w + t - 16)) + load<u64>(w + t - 56) + smallS0(load<u64>(w + t - 120)) + load<u64>(w + t - 128));
  }
  for (let t: usize = 0; t < 640; t += 8) store<u64>(w + t, load<u64>(w + t) + load<u64>(K + t));
}

/**
 * 80 rounds on the state at `st` with K[t] + W[t] already at `kw`: the
 * padding block's (precomputed per context), or K itself for an all-zero
 * chunk, whose schedule is all zero.
 */
function rounds1(st: usize, kw: usize): void {
  let a = load<u64>(st, 0), b = load<u64>(st, 8), c = load<u64>(st, 16), d = load<u64>(st, 24);
  let e = load<u64>(st, 32), f = load<u64>(st, 40), g = load<u64>(st, 48), h = load<u64>(st, 56);
  let x: u64, u: u64, v: u64 = b ^ c;
  for (let t: usize = 0; t < 640; t += 64) {
    const p = kw + t;
    x = h + bigS1(e) + ch(e, f, g) + load<u64>(p, 0); d += x; u = a ^ b; h = x + bigS0(a) + (b ^ (u & v));
    x = g + bigS1(d) + ch(d, e, f) + load<u64>(p, 8); c += x; v = h ^ a; g = x + bigS0(h) + (a ^ (v & u));
    x = f + bigS1(c) + ch(c, d, e) + load<u64>(p, 16); b += x; u = g ^ h; f = x + bigS0(g) + (h ^ (u & v));
    x = e + bigS1(b) + ch(b, c, d) + load<u64>(p, 24); a += x; v = f ^ g; e = x + bigS0(f) + (g ^ (v & u));
    x = d + bigS1(a) + ch(a, b, c) + load<u64>(p, 32); h += x; u = e ^ f; d = x + bigS0(e) + (f ^ (u & v));
    x = c + bigS1(h) + ch(h, a, b) + load<u64>(p, 40); g += x; v = d ^ e; c = x + bigS0(d) + (e ^ (v & u));
    x = b + bigS1(g) + ch(g, h, a) + load<u64>(p, 48); f += x; u = c ^ d; b = x + bigS0(c) + (d ^ (u & v));
    x = a + bigS1(f) + ch(f, g, h) + load<u64>(p, 56); e += x; v = b ^ c; a = x + bigS0(b) + (c ^ (v & u));
  }
  store<u64>(st, load<u64>(st, 0) + a, 0);
  store<u64>(st, load<u64>(st, 8) + b, 8);
  store<u64>(st, load<u64>(st, 16) + c, 16);
  store<u64>(st, load<u64>(st, 24) + d, 24);
  store<u64>(st, load<u64>(st, 32) + e, 32);
  store<u64>(st, load<u64>(st, 40) + f, 40);
  store<u64>(st, load<u64>(st, 48) + g, 48);
  store<u64>(st, load<u64>(st, 56) + h, 56);
}

/**
 * One 128-byte chunk at `src` into the state at `st`. As in sha256.ts, the
 * schedule lives in sixteen locals, W[t] overwriting W[t-16], and each
 * group of sixteen rounds is written out once so that the working variables
 * rotate by renaming; the last four groups share a loop.
 */
function chunk1(st: usize, src: usize): void {
  let a = load<u64>(st, 0), b = load<u64>(st, 8), c = load<u64>(st, 16), d = load<u64>(st, 24);
  let e = load<u64>(st, 32), f = load<u64>(st, 40), g = load<u64>(st, 48), h = load<u64>(st, 56);
  let x: u64, u: u64, v: u64 = b ^ c;
  let w0 = bswap<u64>(load<u64>(src, 0)), w1 = bswap<u64>(load<u64>(src, 8));
  let w2 = bswap<u64>(load<u64>(src, 16)), w3 = bswap<u64>(load<u64>(src, 24));
  let w4 = bswap<u64>(load<u64>(src, 32)), w5 = bswap<u64>(load<u64>(src, 40));
  let w6 = bswap<u64>(load<u64>(src, 48)), w7 = bswap<u64>(load<u64>(src, 56));
  let w8 = bswap<u64>(load<u64>(src, 64)), w9 = bswap<u64>(load<u64>(src, 72));
  let w10 = bswap<u64>(load<u64>(src, 80)), w11 = bswap<u64>(load<u64>(src, 88));
  let w12 = bswap<u64>(load<u64>(src, 96)), w13 = bswap<u64>(load<u64>(src, 104));
  let w14 = bswap<u64>(load<u64>(src, 112)), w15 = bswap<u64>(load<u64>(src, 120));
  {
    x = h + bigS1(e) + ch(e, f, g) + load<u64>(K, 0) + w0; d += x; u = a ^ b; h = x + bigS0(a) + (b ^ (u & v));
    x = g + bigS1(d) + ch(d, e, f) + load<u64>(K, 8) + w1; c += x; v = h ^ a; g = x + bigS0(h) + (a ^ (v & u));
    x = f + bigS1(c) + ch(c, d, e) + load<u64>(K, 16) + w2; b += x; u = g ^ h; f = x + bigS0(g) + (h ^ (u & v));
    x = e + bigS1(b) + ch(b, c, d) + load<u64>(K, 24) + w3; a += x; v = f ^ g; e = x + bigS0(f) + (g ^ (v & u));
    x = d + bigS1(a) + ch(a, b, c) + load<u64>(K, 32) + w4; h += x; u = e ^ f; d = x + bigS0(e) + (f ^ (u & v));
    x = c + bigS1(h) + ch(h, a, b) + load<u64>(K, 40) + w5; g += x; v = d ^ e; c = x + bigS0(d) + (e ^ (v & u));
    x = b + bigS1(g) + ch(g, h, a) + load<u64>(K, 48) + w6; f += x; u = c ^ d; b = x + bigS0(c) + (d ^ (u & v));
    x = a + bigS1(f) + ch(f, g, h) + load<u64>(K, 56) + w7; e += x; v = b ^ c; a = x + bigS0(b) + (c ^ (v & u));
    x = h + bigS1(e) + ch(e, f, g) + load<u64>(K, 64) + w8; d += x; u = a ^ b; h = x + bigS0(a) + (b ^ (u & v));
    x = g + bigS1(d) + ch(d, e, f) + load<u64>(K, 72) + w9; c += x; v = h ^ a; g = x + bigS0(h) + (a ^ (v & u));
    x = f + bigS1(c) + ch(c, d, e) + load<u64>(K, 80) + w10; b += x; u = g ^ h; f = x + bigS0(g) + (h ^ (u & v));
    x = e + bigS1(b) + ch(b, c, d) + load<u64>(K, 88) + w11; a += x; v = f ^ g; e = x + bigS0(f) + (g ^ (v & u));
    x = d + bigS1(a) + ch(a, b, c) + load<u64>(K, 96) + w12; h += x; u = e ^ f; d = x + bigS0(e) + (f ^ (u & v));
    x = c + bigS1(h) + ch(h, a, b) + load<u64>(K, 104) + w13; g += x; v = d ^ e; c = x + bigS0(d) + (e ^ (v & u));
    x = b + bigS1(g) + ch(g, h, a) + load<u64>(K, 112) + w14; f += x; u = c ^ d; b = x + bigS0(c) + (d ^ (u & v));
    x = a + bigS1(f) + ch(f, g, h) + load<u64>(K, 120) + w15; e += x; v = b ^ c; a = x + bigS0(b) + (c ^ (v & u));
  }
  for (let k = K + 128; k < K + 640; k += 128) {
    w0 += smallS1(w14) + w9 + smallS0(w1);
    x = h + bigS1(e) + ch(e, f, g) + load<u64>(k, 0) + w0; d += x; u = a ^ b; h = x + bigS0(a) + (b ^ (u & v));
    w1 += smallS1(w15) + w10 + smallS0(w2);
    x = g + bigS1(d) + ch(d, e, f) + load<u64>(k, 8) + w1; c += x; v = h ^ a; g = x + bigS0(h) + (a ^ (v & u));
    w2 += smallS1(w0) + w11 + smallS0(w3);
    x = f + bigS1(c) + ch(c, d, e) + load<u64>(k, 16) + w2; b += x; u = g ^ h; f = x + bigS0(g) + (h ^ (u & v));
    w3 += smallS1(w1) + w12 + smallS0(w4);
    x = e + bigS1(b) + ch(b, c, d) + load<u64>(k, 24) + w3; a += x; v = f ^ g; e = x + bigS0(f) + (g ^ (v & u));
    w4 += smallS1(w2) + w13 + smallS0(w5);
    x = d + bigS1(a) + ch(a, b, c) + load<u64>(k, 32) + w4; h += x; u = e ^ f; d = x + bigS0(e) + (f ^ (u & v));
    w5 += smallS1(w3) + w14 + smallS0(w6);
    x = c + bigS1(h) + ch(h, a, b) + load<u64>(k, 40) + w5; g += x; v = d ^ e; c = x + bigS0(d) + (e ^ (v & u));
    w6 += smallS1(w4) + w15 + smallS0(w7);
    x = b + bigS1(g) + ch(g, h, a) + load<u64>(k, 48) + w6; f += x; u = c ^ d; b = x + bigS0(c) + (d ^ (u & v));
    w7 += smallS1(w5) + w0 + smallS0(w8);
    x = a + bigS1(f) + ch(f, g, h) + load<u64>(k, 56) + w7; e += x; v = b ^ c; a = x + bigS0(b) + (c ^ (v & u));
    w8 += smallS1(w6) + w1 + smallS0(w9);
    x = h + bigS1(e) + ch(e, f, g) + load<u64>(k, 64) + w8; d += x; u = a ^ b; h = x + bigS0(a) + (b ^ (u & v));
    w9 += smallS1(w7) + w2 + smallS0(w10);
    x = g + bigS1(d) + ch(d, e, f) + load<u64>(k, 72) + w9; c += x; v = h ^ a; g = x + bigS0(h) + (a ^ (v & u));
    w10 += smallS1(w8) + w3 + smallS0(w11);
    x = f + bigS1(c) + ch(c, d, e) + load<u64>(k, 80) + w10; b += x; u = g ^ h; f = x + bigS0(g) + (h ^ (u & v));
    w11 += smallS1(w9) + w4 + smallS0(w12);
    x = e + bigS1(b) + ch(b, c, d) + load<u64>(k, 88) + w11; a += x; v = f ^ g; e = x + bigS0(f) + (g ^ (v & u));
    w12 += smallS1(w10) + w5 + smallS0(w13);
    x = d + bigS1(a) + ch(a, b, c) + load<u64>(k, 96) + w12; h += x; u = e ^ f; d = x + bigS0(e) + (f ^ (u & v));
    w13 += smallS1(w11) + w6 + smallS0(w14);
    x = c + bigS1(h) + ch(h, a, b) + load<u64>(k, 104) + w13; g += x; v = d ^ e; c = x + bigS0(d) + (e ^ (v & u));
    w14 += smallS1(w12) + w7 + smallS0(w15);
    x = b + bigS1(g) + ch(g, h, a) + load<u64>(k, 112) + w14; f += x; u = c ^ d; b = x + bigS0(c) + (d ^ (u & v));
    w15 += smallS1(w13) + w8 + smallS0(w0);
    x = a + bigS1(f) + ch(f, g, h) + load<u64>(k, 120) + w15; e += x; v = b ^ c; a = x + bigS0(b) + (c ^ (v & u));
  }
  store<u64>(st, load<u64>(st, 0) + a, 0);
  store<u64>(st, load<u64>(st, 8) + b, 8);
  store<u64>(st, load<u64>(st, 16) + c, 16);
  store<u64>(st, load<u64>(st, 24) + d, 24);
  store<u64>(st, load<u64>(st, 32) + e, 32);
  store<u64>(st, load<u64>(st, 40) + f, 40);
  store<u64>(st, load<u64>(st, 48) + g, 48);
  store<u64>(st, load<u64>(st, 56) + h, 56);
}

/** Compress `n` 128-byte chunks at `src` into the state at `st`. */
function compress1(st: usize, src: usize, n: usize): void {
  for (let i: usize = 0; i < n; i++) chunk1(st, src + (i << 7));
}

/** Write the state at `st` as a big-endian digest at `out`. */
function digestOut1(st: usize, out: usize): void {
  for (let i: usize = 0; i < 64; i += 8) store<u64>(out + i, bswap<u64>(load<u64>(st + i)));
}

/** Hash one block of the context's block size at `src` to `dst`. */
function hashBlock1(ctx: usize, src: usize, dst: usize): void {
  memory.copy(ST1, ctx + CTX_STATE, 64);
  compress1(ST1, src, <usize>load<u32>(ctx + CTX_BLOCK_SIZE) >> 7);
  rounds1(ST1, ctx + CTX_PADKW);
  digestOut1(ST1, dst);
}

// ---- 2-lane primitives (lane i of every vector belongs to message i)

// @ts-ignore: decorator
@inline function rotr2(x: v128, n: i32): v128 { return v128.or(i64x2.shr_u(x, n), i64x2.shl(x, 64 - n)); }
// A rotation by a whole byte is one shuffle instead of two shifts and an OR.
// @ts-ignore: decorator
@inline function rotr2by8(x: v128): v128 {
  return i8x16.shuffle(x, x, 1, 2, 3, 4, 5, 6, 7, 0, 9, 10, 11, 12, 13, 14, 15, 8);
}
// @ts-ignore: decorator
@inline function bigS02(x: v128): v128 { return v128.xor(v128.xor(rotr2(x, 28), rotr2(x, 34)), rotr2(x, 39)); }
// @ts-ignore: decorator
@inline function bigS12(x: v128): v128 { return v128.xor(v128.xor(rotr2(x, 14), rotr2(x, 18)), rotr2(x, 41)); }
// @ts-ignore: decorator
@inline function smallS02(x: v128): v128 { return v128.xor(v128.xor(rotr2(x, 1), rotr2by8(x)), i64x2.shr_u(x, 7)); }
// @ts-ignore: decorator
@inline function smallS12(x: v128): v128 { return v128.xor(v128.xor(rotr2(x, 19), rotr2(x, 61)), i64x2.shr_u(x, 6)); }
// Ch is a single bit-select: f where e is set, else g.
// @ts-ignore: decorator
@inline function ch2(e: v128, f: v128, g: v128): v128 { return v128.bitselect(f, g, e); }
// @ts-ignore: decorator
@inline function add2(a: v128, b: v128): v128 { return i64x2.add(a, b); }

// The 2-lane state lives in globals between chunks; chunk2 and rounds2 keep
// it in locals (registers) for the 80 rounds of one chunk.
let sa: v128 = i64x2.splat(0), sb: v128 = i64x2.splat(0), sc: v128 = i64x2.splat(0), sd: v128 = i64x2.splat(0);
let se: v128 = i64x2.splat(0), sf: v128 = i64x2.splat(0), sg: v128 = i64x2.splat(0), sh: v128 = i64x2.splat(0);

/** 80 rounds on the 2-lane state with K[t] + W[t] at `kw` (the padding block's, the same in both lanes). */
function rounds2(kw: usize): void {
  let a = sa, b = sb, c = sc, d = sd, e = se, f = sf, g = sg, h = sh;
  let x: v128, u: v128, v: v128 = v128.xor(b, c);
  for (let t: usize = 0; t < 640; t += 64) {
    const p = kw + t;
    x = add2(add2(h, bigS12(e)), add2(ch2(e, f, g), v128.load64_splat(p, 0))); d = add2(d, x); u = v128.xor(a, b); h = add2(x, add2(bigS02(a), v128.xor(b, v128.and(u, v))));
    x = add2(add2(g, bigS12(d)), add2(ch2(d, e, f), v128.load64_splat(p, 8))); c = add2(c, x); v = v128.xor(h, a); g = add2(x, add2(bigS02(h), v128.xor(a, v128.and(v, u))));
    x = add2(add2(f, bigS12(c)), add2(ch2(c, d, e), v128.load64_splat(p, 16))); b = add2(b, x); u = v128.xor(g, h); f = add2(x, add2(bigS02(g), v128.xor(h, v128.and(u, v))));
    x = add2(add2(e, bigS12(b)), add2(ch2(b, c, d), v128.load64_splat(p, 24))); a = add2(a, x); v = v128.xor(f, g); e = add2(x, add2(bigS02(f), v128.xor(g, v128.and(v, u))));
    x = add2(add2(d, bigS12(a)), add2(ch2(a, b, c), v128.load64_splat(p, 32))); h = add2(h, x); u = v128.xor(e, f); d = add2(x, add2(bigS02(e), v128.xor(f, v128.and(u, v))));
    x = add2(add2(c, bigS12(h)), add2(ch2(h, a, b), v128.load64_splat(p, 40))); g = add2(g, x); v = v128.xor(d, e); c = add2(x, add2(bigS02(d), v128.xor(e, v128.and(v, u))));
    x = add2(add2(b, bigS12(g)), add2(ch2(g, h, a), v128.load64_splat(p, 48))); f = add2(f, x); u = v128.xor(c, d); b = add2(x, add2(bigS02(c), v128.xor(d, v128.and(u, v))));
    x = add2(add2(a, bigS12(f)), add2(ch2(f, g, h), v128.load64_splat(p, 56))); e = add2(e, x); v = v128.xor(b, c); a = add2(x, add2(bigS02(b), v128.xor(c, v128.and(v, u))));
  }
  sa = add2(sa, a); sb = add2(sb, b); sc = add2(sc, c); sd = add2(sd, d);
  se = add2(se, e); sf = add2(sf, f); sg = add2(sg, g); sh = add2(sh, h);
}

/**
 * One 128-byte chunk of each of two messages, at p0 and p1, into the 2-lane
 * state. Each 16-byte load holds two words of one message; one shuffle per
 * word pairs the two messages' words and byte-swaps them at once.
 */
function chunk2(p0: usize, p1: usize): void {
  let a = sa, b = sb, c = sc, d = sd, e = se, f = sf, g = sg, h = sh;
  let x: v128, y: v128, u: v128, v: v128;
  let w0: v128, w1: v128, w2: v128, w3: v128, w4: v128, w5: v128, w6: v128, w7: v128;
  let w8: v128, w9: v128, w10: v128, w11: v128, w12: v128, w13: v128, w14: v128, w15: v128;
  x = v128.load(p0, 0); y = v128.load(p1, 0);
  w0 = i8x16.shuffle(x, y, 7, 6, 5, 4, 3, 2, 1, 0, 23, 22, 21, 20, 19, 18, 17, 16);
  w1 = i8x16.shuffle(x, y, 15, 14, 13, 12, 11, 10, 9, 8, 31, 30, 29, 28, 27, 26, 25, 24);
  x = v128.load(p0, 16); y = v128.load(p1, 16);
  w2 = i8x16.shuffle(x, y, 7, 6, 5, 4, 3, 2, 1, 0, 23, 22, 21, 20, 19, 18, 17, 16);
  w3 = i8x16.shuffle(x, y, 15, 14, 13, 12, 11, 10, 9, 8, 31, 30, 29, 28, 27, 26, 25, 24);
  x = v128.load(p0, 32); y = v128.load(p1, 32);
  w4 = i8x16.shuffle(x, y, 7, 6, 5, 4, 3, 2, 1, 0, 23, 22, 21, 20, 19, 18, 17, 16);
  w5 = i8x16.shuffle(x, y, 15, 14, 13, 12, 11, 10, 9, 8, 31, 30, 29, 28, 27, 26, 25, 24);
  x = v128.load(p0, 48); y = v128.load(p1, 48);
  w6 = i8x16.shuffle(x, y, 7, 6, 5, 4, 3, 2, 1, 0, 23, 22, 21, 20, 19, 18, 17, 16);
  w7 = i8x16.shuffle(x, y, 15, 14, 13, 12, 11, 10, 9, 8, 31, 30, 29, 28, 27, 26, 25, 24);
  x = v128.load(p0, 64); y = v128.load(p1, 64);
  w8 = i8x16.shuffle(x, y, 7, 6, 5, 4, 3, 2, 1, 0, 23, 22, 21, 20, 19, 18, 17, 16);
  w9 = i8x16.shuffle(x, y, 15, 14, 13, 12, 11, 10, 9, 8, 31, 30, 29, 28, 27, 26, 25, 24);
  x = v128.load(p0, 80); y = v128.load(p1, 80);
  w10 = i8x16.shuffle(x, y, 7, 6, 5, 4, 3, 2, 1, 0, 23, 22, 21, 20, 19, 18, 17, 16);
  w11 = i8x16.shuffle(x, y, 15, 14, 13, 12, 11, 10, 9, 8, 31, 30, 29, 28, 27, 26, 25, 24);
  x = v128.load(p0, 96); y = v128.load(p1, 96);
  w12 = i8x16.shuffle(x, y, 7, 6, 5, 4, 3, 2, 1, 0, 23, 22, 21, 20, 19, 18, 17, 16);
  w13 = i8x16.shuffle(x, y, 15, 14, 13, 12, 11, 10, 9, 8, 31, 30, 29, 28, 27, 26, 25, 24);
  x = v128.load(p0, 112); y = v128.load(p1, 112);
  w14 = i8x16.shuffle(x, y, 7, 6, 5, 4, 3, 2, 1, 0, 23, 22, 21, 20, 19, 18, 17, 16);
  w15 = i8x16.shuffle(x, y, 15, 14, 13, 12, 11, 10, 9, 8, 31, 30, 29, 28, 27, 26, 25, 24);
  v = v128.xor(b, c);
  {
    x = add2(add2(add2(h, bigS12(e)), add2(ch2(e, f, g), v128.load64_splat(K, 0))), w0); d = add2(d, x); u = v128.xor(a, b); h = add2(x, add2(bigS02(a), v128.xor(b, v128.and(u, v))));
    x = add2(add2(add2(g, bigS12(d)), add2(ch2(d, e, f), v128.load64_splat(K, 8))), w1); c = add2(c, x); v = v128.xor(h, a); g = add2(x, add2(bigS02(h), v128.xor(a, v128.and(v, u))));
    x = add2(add2(add2(f, bigS12(c)), add2(ch2(c, d, e), v128.load64_splat(K, 16))), w2); b = add2(b, x); u = v128.xor(g, h); f = add2(x, add2(bigS02(g), v128.xor(h, v128.and(u, v))));
    x = add2(add2(add2(e, bigS12(b)), add2(ch2(b, c, d), v128.load64_splat(K, 24))), w3); a = add2(a, x); v = v128.xor(f, g); e = add2(x, add2(bigS02(f), v128.xor(g, v128.and(v, u))));
    x = add2(add2(add2(d, bigS12(a)), add2(ch2(a, b, c), v128.load64_splat(K, 32))), w4); h = add2(h, x); u = v128.xor(e, f); d = add2(x, add2(bigS02(e), v128.xor(f, v128.and(u, v))));
    x = add2(add2(add2(c, bigS12(h)), add2(ch2(h, a, b), v128.load64_splat(K, 40))), w5); g = add2(g, x); v = v128.xor(d, e); c = add2(x, add2(bigS02(d), v128.xor(e, v128.and(v, u))));
    x = add2(add2(add2(b, bigS12(g)), add2(ch2(g, h, a), v128.load64_splat(K, 48))), w6); f = add2(f, x); u = v128.xor(c, d); b = add2(x, add2(bigS02(c), v128.xor(d, v128.and(u, v))));
    x = add2(add2(add2(a, bigS12(f)), add2(ch2(f, g, h), v128.load64_splat(K, 56))), w7); e = add2(e, x); v = v128.xor(b, c); a = add2(x, add2(bigS02(b), v128.xor(c, v128.and(v, u))));
    x = add2(add2(add2(h, bigS12(e)), add2(ch2(e, f, g), v128.load64_splat(K, 64))), w8); d = add2(d, x); u = v128.xor(a, b); h = add2(x, add2(bigS02(a), v128.xor(b, v128.and(u, v))));
    x = add2(add2(add2(g, bigS12(d)), add2(ch2(d, e, f), v128.load64_splat(K, 72))), w9); c = add2(c, x); v = v128.xor(h, a); g = add2(x, add2(bigS02(h), v128.xor(a, v128.and(v, u))));
    x = add2(add2(add2(f, bigS12(c)), add2(ch2(c, d, e), v128.load64_splat(K, 80))), w10); b = add2(b, x); u = v128.xor(g, h); f = add2(x, add2(bigS02(g), v128.xor(h, v128.and(u, v))));
    x = add2(add2(add2(e, bigS12(b)), add2(ch2(b, c, d), v128.load64_splat(K, 88))), w11); a = add2(a, x); v = v128.xor(f, g); e = add2(x, add2(bigS02(f), v128.xor(g, v128.and(v, u))));
    x = add2(add2(add2(d, bigS12(a)), add2(ch2(a, b, c), v128.load64_splat(K, 96))), w12); h = add2(h, x); u = v128.xor(e, f); d = add2(x, add2(bigS02(e), v128.xor(f, v128.and(u, v))));
    x = add2(add2(add2(c, bigS12(h)), add2(ch2(h, a, b), v128.load64_splat(K, 104))), w13); g = add2(g, x); v = v128.xor(d, e); c = add2(x, add2(bigS02(d), v128.xor(e, v128.and(v, u))));
    x = add2(add2(add2(b, bigS12(g)), add2(ch2(g, h, a), v128.load64_splat(K, 112))), w14); f = add2(f, x); u = v128.xor(c, d); b = add2(x, add2(bigS02(c), v128.xor(d, v128.and(u, v))));
    x = add2(add2(add2(a, bigS12(f)), add2(ch2(f, g, h), v128.load64_splat(K, 120))), w15); e = add2(e, x); v = v128.xor(b, c); a = add2(x, add2(bigS02(b), v128.xor(c, v128.and(v, u))));
  }
  for (let k = K + 128; k < K + 640; k += 128) {
    w0 = add2(add2(w0, smallS12(w14)), add2(w9, smallS02(w1)));
    x = add2(add2(add2(h, bigS12(e)), add2(ch2(e, f, g), v128.load64_splat(k, 0))), w0); d = add2(d, x); u = v128.xor(a, b); h = add2(x, add2(bigS02(a), v128.xor(b, v128.and(u, v))));
    w1 = add2(add2(w1, smallS12(w15)), add2(w10, smallS02(w2)));
    x = add2(add2(add2(g, bigS12(d)), add2(ch2(d, e, f), v128.load64_splat(k, 8))), w1); c = add2(c, x); v = v128.xor(h, a); g = add2(x, add2(bigS02(h), v128.xor(a, v128.and(v, u))));
    w2 = add2(add2(w2, smallS12(w0)), add2(w11, smallS02(w3)));
    x = add2(add2(add2(f, bigS12(c)), add2(ch2(c, d, e), v128.load64_splat(k, 16))), w2); b = add2(b, x); u = v128.xor(g, h); f = add2(x, add2(bigS02(g), v128.xor(h, v128.and(u, v))));
    w3 = add2(add2(w3, smallS12(w1)), add2(w12, smallS02(w4)));
    x = add2(add2(add2(e, bigS12(b)), add2(ch2(b, c, d), v128.load64_splat(k, 24))), w3); a = add2(a, x); v = v128.xor(f, g); e = add2(x, add2(bigS02(f), v128.xor(g, v128.and(v, u))));
    w4 = add2(add2(w4, smallS12(w2)), add2(w13, smallS02(w5)));
    x = add2(add2(add2(d, bigS12(a)), add2(ch2(a, b, c), v128.load64_splat(k, 32))), w4); h = add2(h, x); u = v128.xor(e, f); d = add2(x, add2(bigS02(e), v128.xor(f, v128.and(u, v))));
    w5 = add2(add2(w5, smallS12(w3)), add2(w14, smallS02(w6)));
    x = add2(add2(add2(c, bigS12(h)), add2(ch2(h, a, b), v128.load64_splat(k, 40))), w5); g = add2(g, x); v = v128.xor(d, e); c = add2(x, add2(bigS02(d), v128.xor(e, v128.and(v, u))));
    w6 = add2(add2(w6, smallS12(w4)), add2(w15, smallS02(w7)));
    x = add2(add2(add2(b, bigS12(g)), add2(ch2(g, h, a), v128.load64_splat(k, 48))), w6); f = add2(f, x); u = v128.xor(c, d); b = add2(x, add2(bigS02(c), v128.xor(d, v128.and(u, v))));
    w7 = add2(add2(w7, smallS12(w5)), add2(w0, smallS02(w8)));
    x = add2(add2(add2(a, bigS12(f)), add2(ch2(f, g, h), v128.load64_splat(k, 56))), w7); e = add2(e, x); v = v128.xor(b, c); a = add2(x, add2(bigS02(b), v128.xor(c, v128.and(v, u))));
    w8 = add2(add2(w8, smallS12(w6)), add2(w1, smallS02(w9)));
    x = add2(add2(add2(h, bigS12(e)), add2(ch2(e, f, g), v128.load64_splat(k, 64))), w8); d = add2(d, x); u = v128.xor(a, b); h = add2(x, add2(bigS02(a), v128.xor(b, v128.and(u, v))));
    w9 = add2(add2(w9, smallS12(w7)), add2(w2, smallS02(w10)));
    x = add2(add2(add2(g, bigS12(d)), add2(ch2(d, e, f), v128.load64_splat(k, 72))), w9); c = add2(c, x); v = v128.xor(h, a); g = add2(x, add2(bigS02(h), v128.xor(a, v128.and(v, u))));
    w10 = add2(add2(w10, smallS12(w8)), add2(w3, smallS02(w11)));
    x = add2(add2(add2(f, bigS12(c)), add2(ch2(c, d, e), v128.load64_splat(k, 80))), w10); b = add2(b, x); u = v128.xor(g, h); f = add2(x, add2(bigS02(g), v128.xor(h, v128.and(u, v))));
    w11 = add2(add2(w11, smallS12(w9)), add2(w4, smallS02(w12)));
    x = add2(add2(add2(e, bigS12(b)), add2(ch2(b, c, d), v128.load64_splat(k, 88))), w11); a = add2(a, x); v = v128.xor(f, g); e = add2(x, add2(bigS02(f), v128.xor(g, v128.and(v, u))));
    w12 = add2(add2(w12, smallS12(w10)), add2(w5, smallS02(w13)));
    x = add2(add2(add2(d, bigS12(a)), add2(ch2(a, b, c), v128.load64_splat(k, 96))), w12); h = add2(h, x); u = v128.xor(e, f); d = add2(x, add2(bigS02(e), v128.xor(f, v128.and(u, v))));
    w13 = add2(add2(w13, smallS12(w11)), add2(w6, smallS02(w14)));
    x = add2(add2(add2(c, bigS12(h)), add2(ch2(h, a, b), v128.load64_splat(k, 104))), w13); g = add2(g, x); v = v128.xor(d, e); c = add2(x, add2(bigS02(d), v128.xor(e, v128.and(v, u))));
    w14 = add2(add2(w14, smallS12(w12)), add2(w7, smallS02(w15)));
    x = add2(add2(add2(b, bigS12(g)), add2(ch2(g, h, a), v128.load64_splat(k, 112))), w14); f = add2(f, x); u = v128.xor(c, d); b = add2(x, add2(bigS02(c), v128.xor(d, v128.and(u, v))));
    w15 = add2(add2(w15, smallS12(w13)), add2(w8, smallS02(w0)));
    x = add2(add2(add2(a, bigS12(f)), add2(ch2(f, g, h), v128.load64_splat(k, 120))), w15); e = add2(e, x); v = v128.xor(b, c); a = add2(x, add2(bigS02(b), v128.xor(c, v128.and(v, u))));
  }
  sa = add2(sa, a); sb = add2(sb, b); sc = add2(sc, c); sd = add2(sd, d);
  se = add2(se, e); sf = add2(sf, f); sg = add2(sg, g); sh = add2(sh, h);
}

/**
 * Hash two blocks of the context's block size, at p0 and p1, writing their
 * digests at d0 and d1. The blocks need not be adjacent (the zero-skipping
 * path gathers the non-zero ones).
 */
function hashBlocks2(ctx: usize, p0: usize, p1: usize, d0: usize, d1: usize): void {
  sa = v128.load64_splat(ctx + CTX_STATE, 0); sb = v128.load64_splat(ctx + CTX_STATE, 8);
  sc = v128.load64_splat(ctx + CTX_STATE, 16); sd = v128.load64_splat(ctx + CTX_STATE, 24);
  se = v128.load64_splat(ctx + CTX_STATE, 32); sf = v128.load64_splat(ctx + CTX_STATE, 40);
  sg = v128.load64_splat(ctx + CTX_STATE, 48); sh = v128.load64_splat(ctx + CTX_STATE, 56);
  const bs = <usize>load<u32>(ctx + CTX_BLOCK_SIZE);
  for (let off: usize = 0; off < bs; off += 128) chunk2(p0 + off, p1 + off);
  rounds2(ctx + CTX_PADKW);
  // Lane i's words go to d_i, big-endian: one shuffle per pair of words.
  v128.store(d0, i8x16.shuffle(sa, sb, 7, 6, 5, 4, 3, 2, 1, 0, 23, 22, 21, 20, 19, 18, 17, 16), 0);
  v128.store(d1, i8x16.shuffle(sa, sb, 15, 14, 13, 12, 11, 10, 9, 8, 31, 30, 29, 28, 27, 26, 25, 24), 0);
  v128.store(d0, i8x16.shuffle(sc, sd, 7, 6, 5, 4, 3, 2, 1, 0, 23, 22, 21, 20, 19, 18, 17, 16), 16);
  v128.store(d1, i8x16.shuffle(sc, sd, 15, 14, 13, 12, 11, 10, 9, 8, 31, 30, 29, 28, 27, 26, 25, 24), 16);
  v128.store(d0, i8x16.shuffle(se, sf, 7, 6, 5, 4, 3, 2, 1, 0, 23, 22, 21, 20, 19, 18, 17, 16), 32);
  v128.store(d1, i8x16.shuffle(se, sf, 15, 14, 13, 12, 11, 10, 9, 8, 31, 30, 29, 28, 27, 26, 25, 24), 32);
  v128.store(d0, i8x16.shuffle(sg, sh, 7, 6, 5, 4, 3, 2, 1, 0, 23, 22, 21, 20, 19, 18, 17, 16), 48);
  v128.store(d1, i8x16.shuffle(sg, sh, 15, 14, 13, 12, 11, 10, 9, 8, 31, 30, 29, 28, 27, 26, 25, 24), 48);
}

/** Two blocks through the context's pair kernel: the 2-lane one, or the one-buffer one twice. */
// @ts-ignore: decorator
@inline function hashPair(ctx: usize, lanes: u32, p0: usize, p1: usize, d0: usize, d1: usize): void {
  if (lanes == 2) {
    hashBlocks2(ctx, p0, p1, d0, d1);
  } else {
    hashBlock1(ctx, p0, d0);
    hashBlock1(ctx, p1, d1);
  }
}

// ---- exports: contexts for fs-verity block hashing

/** Bytes a block-hashing context needs (the caller allocates it, 16-aligned). */
export function sha512_ctx_size(): u32 {
  return CTX_SIZE;
}

/** Bytes of a streaming SHA-512 state (sha512_init, sha512_update, sha512_block_begin). */
export function sha512_state_size(): u32 {
  return 64;
}

/**
 * Set up the context at `ctx` for hashing blocks of `blockSize` bytes under
 * the salt at `salt` (`saltLen` bytes). A non-empty salt is zero-padded to
 * 128 bytes and absorbed into the context's mid-state; an empty salt means
 * no prefix. Returns 0, or -1 when `saltLen` > 128 or `blockSize` is not a
 * non-zero multiple of 128 (nothing is written then).
 */
export function sha512_ctx_init(ctx: usize, salt: usize, saltLen: u32, blockSize: u32): i32 {
  if (saltLen > 128 || blockSize == 0 || (blockSize & 127) != 0) return -1;
  memory.copy(ctx + CTX_STATE, IV, 64);
  let prefix: u32 = 0;
  if (saltLen > 0) {
    memory.fill(TAIL, 0, 128);
    memory.copy(TAIL, salt, saltLen);
    compress1(ctx + CTX_STATE, TAIL, 1);
    prefix = 128;
  }
  store<u32>(ctx + CTX_BLOCK_SIZE, blockSize);
  store<u32>(ctx + CTX_PREFIX, prefix);
  store<u32>(ctx + CTX_ZERO_VALID, 0);
  // The padding block: 0x80, zeros, then the message length in bits as a
  // 128-bit big-endian number (its high half is zero for any u32 size).
  const bits: u64 = (<u64>prefix + <u64>blockSize) << 3;
  const w = ctx + CTX_PADKW;
  memory.fill(w, 0, 128);
  store<u64>(w, 0x8000000000000000, 0);
  store<u64>(w, bits, 120);
  expandAddK(w);
  return 0;
}

/**
 * Address of the digest of an all-zero block under this context, computed
 * on first use: an all-zero chunk has an all-zero schedule, so each chunk
 * is 80 rounds with K alone.
 */
export function sha512_ctx_zero_digest(ctx: usize): usize {
  if (load<u32>(ctx + CTX_ZERO_VALID) == 0) {
    memory.copy(ST1, ctx + CTX_STATE, 64);
    const n = load<u32>(ctx + CTX_BLOCK_SIZE) >> 7;
    for (let i: u32 = 0; i < n; i++) rounds1(ST1, K);
    rounds1(ST1, ctx + CTX_PADKW);
    digestOut1(ST1, ctx + CTX_ZERO);
    store<u32>(ctx + CTX_ZERO_VALID, 1);
  }
  return ctx + CTX_ZERO;
}

/**
 * Hash `count` contiguous blocks at `src`, writing `count` 64-byte digests
 * contiguously at `dst`: pairs through the 2-lane kernel when `lanes` is 2
 * (any other value: one-buffer only), an odd last block through the
 * one-buffer kernel. `dst` may not overlap `src`.
 */
export function sha512_blocks(ctx: usize, src: usize, count: u32, dst: usize, lanes: u32): void {
  const bs = <usize>load<u32>(ctx + CTX_BLOCK_SIZE);
  let i: u32 = 0;
  for (; i + 2 <= count; i += 2) {
    const p = src + <usize>i * bs, d = dst + (<usize>i << 6);
    hashPair(ctx, lanes, p, p + bs, d, d + 64);
  }
  if (i < count) hashBlock1(ctx, src + <usize>i * bs, dst + (<usize>i << 6));
}

/**
 * As sha512_blocks, but an all-zero block gets the zero-block digest without
 * being hashed; non-zero blocks are gathered in pairs. Returns how many
 * blocks were all zero.
 */
export function sha512_blocks_skip_zero(ctx: usize, src: usize, count: u32, dst: usize, lanes: u32): u32 {
  const bs = <usize>load<u32>(ctx + CTX_BLOCK_SIZE);
  const zero = sha512_ctx_zero_digest(ctx);
  let zeros: u32 = 0, pending = false;
  let p0: usize = 0, d0: usize = 0;
  for (let i: u32 = 0; i < count; i++) {
    const p = src + <usize>i * bs, d = dst + (<usize>i << 6);
    if (is_zero_512(p, bs)) {
      memory.copy(d, zero, 64);
      zeros++;
    } else if (!pending) {
      p0 = p; d0 = d; pending = true;
    } else {
      hashPair(ctx, lanes, p0, p, d0, d);
      pending = false;
    }
  }
  if (pending) hashBlock1(ctx, p0, d0);
  return zeros;
}

/** 1 when the `len` bytes at `ptr` (a multiple of 64) are all zero: 64 bytes per step. */
function is_zero_512(ptr: usize, len: usize): bool {
  for (let p = ptr, end = ptr + len; p < end; p += 64) {
    const v = v128.or(v128.or(v128.load(p, 0), v128.load(p, 16)), v128.or(v128.load(p, 32), v128.load(p, 48)));
    if (v128.any_true(v)) return false;
  }
  return true;
}

/**
 * Streaming one block too large to sit in memory at once: begin copies the
 * context's salted mid-state to the 64-byte state at `st`; feed the block in
 * 128-byte multiples with sha512_update; end applies the padding block and
 * writes the digest at `out`. The block must total the context's block size.
 */
export function sha512_block_begin(ctx: usize, st: usize): void {
  memory.copy(st, ctx + CTX_STATE, 64);
}

export function sha512_block_end(ctx: usize, st: usize, out: usize): void {
  rounds1(st, ctx + CTX_PADKW);
  digestOut1(st, out);
}

// ---- exports: plain SHA-512

/** Set the 64-byte state at `st` to SHA-512's initial value. */
export function sha512_init(st: usize): void {
  memory.copy(st, IV, 64);
}

/** Compress `chunks` 128-byte chunks at `src` into the state at `st`. */
export function sha512_update(st: usize, src: usize, chunks: u32): void {
  compress1(st, src, <usize>chunks);
}

/**
 * Finish a message: `tailLen` (< 128) last bytes at `tail`, the whole
 * message's length in bytes as `totalLo` + 2^32 * `totalHi`; writes the
 * digest at `out`. Returns 0, or -1 when tailLen >= 128.
 */
export function sha512_final(st: usize, tail: usize, tailLen: u32, totalLo: u32, totalHi: u32, out: usize): i32 {
  if (tailLen >= 128) return -1;
  memory.fill(TAIL, 0, 256);
  memory.copy(TAIL, tail, tailLen);
  store<u8>(TAIL + tailLen, 0x80);
  // The 128-bit length goes in the last 16 bytes of the first block if
  // they are free, else a second block is needed. Byte counts below 2^61
  // leave its high 64 bits zero.
  const blocks: usize = tailLen < 112 ? 1 : 2;
  const bits: u64 = ((<u64>totalHi << 32) | <u64>totalLo) << 3;
  store<u64>(TAIL + (blocks << 7) - 8, bswap<u64>(bits));
  compress1(st, TAIL, blocks);
  digestOut1(st, out);
  return 0;
}

/** SHA-512 of the `len` bytes at `src`, written at `out` (uses a static state). */
export function sha512(src: usize, len: u32, out: usize): void {
  memory.copy(ST1, IV, 64);
  const full = len >> 7;
  compress1(ST1, src, <usize>full);
  sha512_final(ST1, src + (<usize>full << 7), len & 127, len, 0, out);
}
