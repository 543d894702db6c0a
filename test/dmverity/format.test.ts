/**
 * dm-verity hash devices against `veritysetup format` (the quick slice of
 * format.slow.test.ts): with a fixed salt
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
import { leafHashPool } from '../../src/verity/pool.js';
import { fillRandom } from '../fixtures/generate.mjs';
import { CASES, caseName, dataFor, expectSameDevice, sizesFor } from '../helpers/dmverity.js';
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

describe('dmverityFormat against veritysetup format', () => {
  it('has the oracle when CI is set', () => requireVeritysetupInCi());

  CASES.forEach((c, ci) => {
    it.runIf(HAVE_VERITYSETUP)(caseName(c), async () => {
      for (const [si, size] of sizesFor(c, 'quick').entries()) {
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

describe('on the worker pool', () => {
  it.runIf(HAVE_VERITYSETUP)('a 16 MiB file hashed by the pool gives veritysetup\'s bytes, and the same as one thread', async () => {
    const pool = await leafHashPool();
    if (!pool) return; // one core: nothing to compare
    await pool.ready();
    const c = CASES[0]!;
    const data = join(dir, 'pooled');
    const hash = join(dir, 'pooled.h');
    writeFileSync(data, dataFor(16 << 20, 4096, 99));
    const theirs = await veritysetupAsync(['format', data, hash, ...veritysetupOptions(c)]);
    const pooled = await dmverityFormat(data, libraryOptions(c));
    const single = await dmverityFormat(data, { ...libraryOptions(c), parallel: false });
    expect(pooled.rootHashHex).toBe(rootHashOf(theirs.stdout));
    expect(single.rootHashHex).toBe(pooled.rootHashHex);
    expectSameDevice(pooled.hashDevice!, readFileSync(hash), 'pooled');
    for (const format of [0, 1] as const) {
      const o = { ...libraryOptions(c), format, salt: new Uint8Array([1, 2, 3]) };
      expect((await dmverityFormat(data, o)).rootHashHex).toBe((await dmverityFormat(data, { ...o, parallel: false })).rootHashHex);
    }
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
