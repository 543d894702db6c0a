/**
 * Inputs and comparisons shared by the dm-verity tests.
 */
import { expect } from 'vitest';
import { fillRandom } from '../fixtures/generate.mjs';
import type { VeritysetupCase } from './veritysetup.js';

/** Random bytes with runs of zero blocks (so the zero-block shortcut is crossed). */
export function dataFor(size: number, bs: number, seed: number): Uint8Array {
  const d = fillRandom(new Uint8Array(size), seed);
  for (let b = 1; b * bs < size; b += 7) d.fill(0, b * bs, Math.min(size, (b + 3) * bs));
  if (size >= 40 * bs) d.fill(0, 8 * bs, 40 * bs);
  return d;
}

/**
 * veritysetup's file is what it wrote; ours is the device from byte 0 to
 * the end of the tree. They differ in length only where veritysetup wrote
 * nothing at the end (a hash offset with no tree after it), which must
 * then be zeros in ours.
 */
export function expectSameDevice(ours: Uint8Array, file: Uint8Array, what: string): void {
  expect(file.length, what).toBeLessThanOrEqual(ours.length);
  expect(Buffer.compare(Buffer.from(ours.subarray(0, file.length)), file), `${what}: hash device bytes differ`).toBe(0);
  expect(ours.subarray(file.length).every((b) => b === 0), what).toBe(true);
  if (file.length < ours.length) expect(ours.length, what).toBeLessThanOrEqual(Math.max(4096, file.length + 4096));
}


const hex = (n: number, seed: number) => Buffer.from(fillRandom(new Uint8Array(n), seed)).toString('hex');

/** Parameter sets: each alone covers something the others do not. */
export const CASES: VeritysetupCase[] = [
  { hash: 'sha256', dataBlockSize: 4096, hashBlockSize: 4096, format: 1, salt: hex(32, 1), superblock: true, hashOffset: 0 },
  { hash: 'sha256', dataBlockSize: 512, hashBlockSize: 512, format: 1, salt: hex(1, 2), superblock: true, hashOffset: 0 },
  { hash: 'sha256', dataBlockSize: 512, hashBlockSize: 512, format: 0, salt: hex(63, 3), superblock: false, hashOffset: 0 },
  { hash: 'sha256', dataBlockSize: 1024, hashBlockSize: 512, format: 1, salt: hex(64, 4), superblock: true, hashOffset: 1536 },
  { hash: 'sha256', dataBlockSize: 512, hashBlockSize: 2048, format: 0, salt: hex(65, 5), superblock: true, hashOffset: 512 },
  { hash: 'sha256', dataBlockSize: 512, hashBlockSize: 512, format: 1, salt: '-', superblock: false, hashOffset: 4096 },
  { hash: 'sha256', dataBlockSize: 512, hashBlockSize: 512, format: 1, salt: hex(256, 6), superblock: true, hashOffset: 0 },
  { hash: 'sha1', dataBlockSize: 512, hashBlockSize: 512, format: 1, salt: hex(20, 7), superblock: true, hashOffset: 0 },
  { hash: 'sha1', dataBlockSize: 512, hashBlockSize: 512, format: 0, salt: hex(55, 8), superblock: false, hashOffset: 1024 },
  { hash: 'sha512', dataBlockSize: 512, hashBlockSize: 1024, format: 1, salt: hex(129, 9), superblock: true, hashOffset: 0 },
  { hash: 'sha512', dataBlockSize: 1024, hashBlockSize: 512, format: 0, salt: hex(32, 10), superblock: true, hashOffset: 0 },
  // A salt past one SHA-512 input block, after the block: whole salt chunks, then a tail.
  { hash: 'sha512', dataBlockSize: 512, hashBlockSize: 512, format: 0, salt: hex(200, 11), superblock: false, hashOffset: 0 },
  { hash: 'sha512', dataBlockSize: 4096, hashBlockSize: 4096, format: 1, salt: '-', superblock: true, hashOffset: 0 },
];

/** Data sizes in bytes for a case: one block, full levels, one block past, a partial tail, zeros inside. */
export function sizesFor(c: VeritysetupCase, which: 'quick' | 'all'): number[] {
  const per = 2 ** Math.floor(Math.log2(c.hashBlockSize / { sha256: 32, sha512: 64, sha1: 20 }[c.hash]));
  const bs = c.dataBlockSize;
  // One block has no tree; veritysetup then fails to write a superblock
  // past the end of the (still empty) hash file at a non-zero offset.
  const one = c.superblock && c.hashOffset > 0 ? [] : [bs];
  if (which === 'quick') return [...one, per * bs, (per + 1) * bs + 100];
  return [...one, 2 * bs, per * bs, (per + 1) * bs, per * per * bs, (per * per + 1) * bs + 100, per * per * per * bs].filter((n) => n <= 64 << 20);
}

/** A test name for a case. */
export function caseName(c: VeritysetupCase): string {
  const salt = c.salt === '-' ? 0 : c.salt.length / 2;
  return `${c.hash} data ${c.dataBlockSize} hash ${c.hashBlockSize} format ${c.format} salt ${salt}B ${c.superblock ? 'superblock' : 'no superblock'} offset ${c.hashOffset}`;
}
