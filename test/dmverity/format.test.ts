/**
 * dm-verity hash devices against `veritysetup format`: with a fixed salt
 * and UUID the hash file must be byte-identical and the root hash equal,
 * across sizes that hit the edges of the tree (one block, exactly full
 * levels, one block past, a trailing partial block), the three hash
 * algorithms, block sizes, both formats, with and without a superblock,
 * with a hash offset, and salts whose length lands on and off SHA
 * chunk boundaries. Also: each hash sits where `dmverityHashLocation`
 * says, hashed as H(salt || block) or H(block || salt) (node:crypto as
 * the second opinion).
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { computeDmverityLayout, dmverityFormat, dmverityHashLocation, validateDmverityParams } from '../../src/dmverity/index.js';
import { fillRandom } from '../fixtures/generate.mjs';
import {
  HAVE_VERITYSETUP,
  libraryOptions,
  requireVeritysetupInCi,
  rootHashOf,
  veritysetupAsync,
  veritysetupOptions,
  type VeritysetupCase,
} from '../helpers/veritysetup.js';

const dir = mkdtempSync(join(tmpdir(), 'iomap-verity-dmv-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

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
];

/** Data sizes in bytes for a case: one block, full levels, one block past, a partial tail, zeros inside. */
export function sizesFor(c: VeritysetupCase): number[] {
  const per = 2 ** Math.floor(Math.log2(c.hashBlockSize / { sha256: 32, sha512: 64, sha1: 20 }[c.hash]));
  const bs = c.dataBlockSize;
  // One block has no tree; veritysetup then fails to write a superblock
  // past the end of the (still empty) hash file at a non-zero offset.
  const one = c.superblock && c.hashOffset > 0 ? [] : [bs];
  return [...one, 2 * bs, per * bs, (per + 1) * bs, per * per * bs, (per * per + 1) * bs + 100].filter((n) => n <= 4 << 20);
}

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

function name(c: VeritysetupCase): string {
  return `${c.hash} data ${c.dataBlockSize} hash ${c.hashBlockSize} format ${c.format} salt ${c.salt === '-' ? 0 : c.salt.length / 2}B ${c.superblock ? 'superblock' : 'no superblock'} offset ${c.hashOffset}`;
}

describe('dmverityFormat against veritysetup format', () => {
  it('has the oracle when CI is set', () => requireVeritysetupInCi());

  CASES.forEach((c, ci) => {
    it.runIf(HAVE_VERITYSETUP)(name(c), async () => {
      for (const [si, size] of sizesFor(c).entries()) {
        const data = join(dir, `d${ci}-${si}`);
        const hash = join(dir, `h${ci}-${si}`);
        writeFileSync(data, dataFor(size, c.dataBlockSize, ci * 100 + si + 1));
        const theirs = await veritysetupAsync(['format', data, hash, ...veritysetupOptions(c)]);
        expect(theirs.status, theirs.stderr).toBe(0);
        const r = await dmverityFormat(data, libraryOptions(c));
        expect(r.rootHashHex, `size ${size}`).toBe(rootHashOf(theirs.stdout));
        expectSameDevice(r.hashDevice!, readFileSync(hash), `size ${size}`);
        // The same from the bytes in memory.
        const again = await dmverityFormat(readFileSync(data), libraryOptions(c));
        expect(again.rootHashHex).toBe(r.rootHashHex);
      }
    });
  });

  it('--data-blocks: protects only the first blocks, as veritysetup does', async () => {
    if (!HAVE_VERITYSETUP) return;
    const c: VeritysetupCase = { ...CASES[1]!, dataBlocks: 33 };
    const data = join(dir, 'db');
    const hash = join(dir, 'db.h');
    writeFileSync(data, dataFor(100 * 512, 512, 77));
    const theirs = await veritysetupAsync(['format', data, hash, ...veritysetupOptions(c)]);
    expect(theirs.status, theirs.stderr).toBe(0);
    const r = await dmverityFormat(data, libraryOptions(c));
    expect(r.rootHashHex).toBe(rootHashOf(theirs.stdout));
    expectSameDevice(r.hashDevice!, readFileSync(hash), 'data blocks 33');
  });
});

describe('dmverityHashLocation', () => {
  for (const format of [0, 1] as const) {
    it(`every level-0 hash of format ${format} is H(${format ? 'salt || block' : 'block || salt'}) at its location`, async () => {
      const salt = fillRandom(new Uint8Array(37), 3);
      const opts = { hashAlgorithm: 'sha1', dataBlockSize: 512, hashBlockSize: 512, format, salt, uuid: '11111111-2222-3333-4444-555555555555' };
      const data = dataFor(300 * 512, 512, 5);
      const r = await dmverityFormat(data, opts);
      const layout = computeDmverityLayout(validateDmverityParams(opts, data.length, false));
      expect(layout.levels).toBe(3);
      for (let b = 0; b < 300; b++) {
        const block = data.subarray(b * 512, (b + 1) * 512);
        const h = createHash('sha1');
        if (format) h.update(salt).update(block);
        else h.update(block).update(salt);
        const loc = dmverityHashLocation(layout, 0, b);
        expect(Buffer.from(r.hashDevice!.subarray(loc.offset, loc.offset + 20)).equals(h.digest()), `block ${b}`).toBe(true);
      }
      // Upper levels: block j of level i - 1, hashed, is at dmverityHashLocation(i, j).
      for (let level = 1; level < layout.levels; level++) {
        for (let j = 0; j < layout.levelSize[level - 1]!; j++) {
          const at = (layout.levelStart[level - 1]! + j) * 512;
          const block = r.hashDevice!.subarray(at, at + 512);
          const h = createHash('sha1');
          if (format) h.update(salt).update(block);
          else h.update(block).update(salt);
          const loc = dmverityHashLocation(layout, level, j);
          expect(Buffer.from(r.hashDevice!.subarray(loc.offset, loc.offset + 20)).equals(h.digest())).toBe(true);
        }
      }
    });
  }
});
