/**
 * The whole dm-verity matrix against `veritysetup format` and `verify`:
 * every parameter set at every size up to 64 MiB (two and three full
 * levels), and sparse images of several GiB made by truncating, with a
 * few written blocks, hashed by both and written through the CLI's file
 * sink. Slow: the sparse images are read in full by both tools.
 */
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { dmverityFormat, dmverityVerify } from '../../src/dmverity/index.js';
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

const dir = mkdtempSync(join(tmpdir(), 'iomap-verity-dmv-slow-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const BIG: VeritysetupCase[] = [
  ...CASES,
  { hash: 'sha256', dataBlockSize: 4096, hashBlockSize: 4096, format: 0, salt: 'ee'.repeat(32), superblock: true, hashOffset: 0 },
  { hash: 'sha256', dataBlockSize: 1024, hashBlockSize: 1024, format: 1, salt: '5a', superblock: true, hashOffset: 0 },
];

describe('dm-verity: the full matrix against veritysetup', () => {
  it('has the oracle when CI is set', () => requireVeritysetupInCi());

  BIG.forEach((c, ci) => {
    it.runIf(HAVE_VERITYSETUP)(caseName(c), async () => {
      for (const [si, size] of sizesFor(c, 'all').entries()) {
        const data = join(dir, 'd');
        const hash = join(dir, 'h');
        rmSync(hash, { force: true });
        writeFileSync(data, dataFor(size, c.dataBlockSize, ci * 100 + si + 1));
        const theirs = await veritysetupAsync(['format', data, hash, ...veritysetupOptions(c)]);
        expect(theirs.status, theirs.stderr).toBe(0);
        const r = await dmverityFormat(data, libraryOptions(c));
        expect(r.rootHashHex, `size ${size}`).toBe(rootHashOf(theirs.stdout));
        expectSameDevice(r.hashDevice!, readFileSync(hash), `size ${size}`);
        const v = await dmverityVerify(data, hash, r.rootHash, c.superblock ? { hashOffset: c.hashOffset } : libraryOptions(c));
        expect(v.ok, v.failure?.message).toBe(true);
      }
    });
  });

  for (const [gib, c] of [
    [3, { hash: 'sha256', dataBlockSize: 4096, hashBlockSize: 4096, format: 1, salt: '00112233445566778899', superblock: true, hashOffset: 0 }],
    [2, { hash: 'sha512', dataBlockSize: 4096, hashBlockSize: 4096, format: 0, salt: '-', superblock: false, hashOffset: 8192 }],
  ] as [number, VeritysetupCase][]) {
    it.runIf(HAVE_VERITYSETUP)(`a ${gib} GiB sparse image, ${caseName(c)}`, async () => {
      const data = join(dir, 'sparse');
      const [theirs, ours] = [join(dir, 'sparse.h1'), join(dir, 'sparse.h2')];
      for (const p of [data, theirs, ours]) rmSync(p, { force: true });
      writeFileSync(data, new Uint8Array(0));
      truncateSync(data, gib * 2 ** 30);
      const fd = openSync(data, 'r+');
      for (const at of [0, 2 ** 30 + 123, gib * 2 ** 30 - 4096]) writeSync(fd, fillRandom(new Uint8Array(4096), at + 1), 0, 4096, at);
      closeSync(fd);
      const t = await veritysetupAsync(['format', data, theirs, ...veritysetupOptions(c)]);
      expect(t.status, t.stderr).toBe(0);
      const out = openSync(ours, 'w');
      let r;
      try {
        r = await dmverityFormat(data, { ...libraryOptions(c), sink: (offset, bytes) => void writeSync(out, bytes, 0, bytes.length, offset) });
      } finally {
        closeSync(out);
      }
      expect(r.rootHashHex).toBe(rootHashOf(t.stdout));
      expect(Buffer.compare(readFileSync(ours), readFileSync(theirs))).toBe(0);
      const v = await veritysetupAsync(['verify', data, ours, r.rootHashHex, ...(c.superblock ? [] : veritysetupOptions(c))]);
      expect(v.status, v.stderr).toBe(0);
    });
  }
});
