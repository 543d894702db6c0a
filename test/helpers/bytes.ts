/**
 * Deterministic test data: one seeded PRNG and the byte generators built on
 * it, so that a failing case can be replayed from its seed.
 * - `rng(seed)`: a () => [0, 1) stream (mulberry32); the fuzzers draw
 *   their choices from it.
 * - `randomBytes(len, seed | rng)`: bytes from that stream.
 * - `nonZeroBytes(len, seed | rng)`: bytes 1..255, for tests that tell
 *   written data from the zeros of holes and unwritten extents.
 * - `xorshiftBytes(len, seed)`: the xorshift32 stream of the golden
 *   fixtures' generator (test/fixtures/generate.mjs), keyed by seed.
 */

/** A small deterministic PRNG (mulberry32): numbers in [0, 1). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const stream = (s: number | (() => number)) => (typeof s === 'number' ? rng(s) : s);

/** `len` bytes drawn from `rng(seed)` (or from the given stream). */
export function randomBytes(len: number, seed: number | (() => number)): Uint8Array {
  const r = stream(seed);
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i++) out[i] = (r() * 256) | 0;
  return out;
}

/** `len` bytes in 1..255 from `rng(seed)` (or the given stream): never mistaken for a hole's zeros. */
export function nonZeroBytes(len: number, seed: number | (() => number)): Uint8Array {
  const r = stream(seed);
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i++) out[i] = ((r() * 255) | 0) + 1;
  return out;
}

/** `len` bytes of a xorshift32 stream keyed by `seed`: cheap for megabytes. */
export function xorshiftBytes(len: number, seed: number): Uint8Array {
  const out = new Uint8Array(len);
  let x = Math.imul(seed, 2654435761) >>> 0 || 1;
  for (let i = 0; i < len; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}
