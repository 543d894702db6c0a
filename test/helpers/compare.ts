/**
 * Byte comparisons that stay fast on megabytes (vitest's deep diff of two
 * large arrays is slow and can exhaust the heap) and still say where bytes
 * differ.
 * - `sameBytes(a, b)`: true when lengths and bytes are equal.
 * - `firstDiff(a, b)`: index of the first differing byte, the shorter length
 *   if one is a prefix of the other, or -1 when equal.
 * - `expectSameBytes(got, want, what?)`: fails with the length or the first
 *   differing byte and both values.
 */
import { expect } from 'vitest';

const buf = (a: Uint8Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/** Equal lengths and equal bytes. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && buf(a).equals(buf(b));
}

/** The first index where `a` and `b` differ; -1 when they are equal. */
export function firstDiff(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

/** Fails, naming the first difference, unless `got` equals `want`. */
export function expectSameBytes(got: Uint8Array, want: Uint8Array, what = ''): void {
  expect(got.length, `length ${what}`).toBe(want.length);
  if (sameBytes(got, want)) return;
  const i = firstDiff(got, want);
  expect.fail(`${what}: first difference at byte ${i}: got ${got[i]}, want ${want[i]}`);
}
