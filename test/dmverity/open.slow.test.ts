/**
 * openDmverity on larger images (the default run keeps trees of at most
 * 1 MiB of data): three-level trees with 4 KiB blocks (64 MiB and one
 * block past) from veritysetup format, read from files; random verified
 * reads equal the data, and a byte flipped in the top block, a level-1
 * block, a level-0 block and a data block is EIO exactly on the reads it
 * reaches, never a wrong byte.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { computeDmverityLayout, decodeDmveritySuperblock, isErrno, openDmverity } from '../../src/index.js';
import { rng } from '../helpers/bytes.js';
import { dataFor } from '../helpers/dmverity.js';
import { HAVE_VERITYSETUP, requireVeritysetupInCi, rootHashOf, veritysetupAsync, veritysetupOptions, type VeritysetupCase } from '../helpers/veritysetup.js';

const dir = mkdtempSync(join(tmpdir(), 'iomap-verity-dmv-open-slow-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const CASES: VeritysetupCase[] = [
  { hash: 'sha256', dataBlockSize: 4096, hashBlockSize: 4096, format: 1, salt: '0011223344556677', superblock: true, hashOffset: 0 },
  { hash: 'sha512', dataBlockSize: 4096, hashBlockSize: 4096, format: 0, salt: 'ff', superblock: true, hashOffset: 8192 },
];

describe('openDmverity on three-level trees of 4 KiB blocks', () => {
  it('has the oracle when CI is set', () => requireVeritysetupInCi());

  CASES.forEach((c, ci) => {
    it.runIf(HAVE_VERITYSETUP)(`${c.hash} format ${c.format}: reads equal the data; flips at every level are EIO where they reach`, async () => {
      const per = 4096 / (c.hash === 'sha256' ? 32 : 64);
      const blocks = per * per + 1;
      const size = blocks * 4096;
      const data = dataFor(size, 4096, 50 + ci);
      const dataPath = join(dir, `d${ci}`);
      const hashPath = join(dir, `h${ci}`);
      writeFileSync(dataPath, data);
      writeFileSync(hashPath, new Uint8Array(0));
      const f0 = await veritysetupAsync(['format', dataPath, hashPath, ...veritysetupOptions(c)]);
      expect(f0.status, f0.stderr).toBe(0);
      const root = rootHashOf(f0.stdout);
      const hash = new Uint8Array(readFileSync(hashPath));
      const layout = computeDmverityLayout(decodeDmveritySuperblock(hash.subarray(c.hashOffset), c.hashOffset));
      expect(layout.levels).toBe(3);

      const f = await openDmverity({ data: dataPath, hash: hashPath }, { rootHash: root, hashOffset: c.hashOffset });
      const r = rng(ci + 1);
      for (let i = 0; i < 200; i++) {
        const pos = Math.floor(r() * size);
        const len = 1 + Math.floor(r() * (r() < 0.1 ? 8 << 20 : 20000));
        const got = await f.read(pos, len);
        expect(Buffer.compare(Buffer.from(got), Buffer.from(data.subarray(pos, pos + len))), `read ${len} at ${pos}`).toBe(0);
      }
      await f.close();

      const hbs = 4096;
      const flips = [
        { what: 'the top block', file: 'hash', at: layout.levelStart[2]! * hbs + 100, reach: () => true, msg: /tree block 0 of .* at tree level 2/ },
        { what: 'level-1 block 1', file: 'hash', at: (layout.levelStart[1]! + 1) * hbs + 7, reach: (b: number) => Math.floor(b / (per * per)) === 1, msg: /tree block 1 of .* at tree level 1/ },
        { what: 'level-0 block 3', file: 'hash', at: (layout.levelStart[0]! + 3) * hbs + 4095, reach: (b: number) => Math.floor(b / per) === 3, msg: /tree block 3 of .* at tree level 0/ },
        { what: 'data block 4000', file: 'data', at: 4000 * 4096 + 1, reach: (b: number) => b === 4000, msg: /data block 4000 of .* against its level-0 hash/ },
      ] as const;
      for (const flip of flips) {
        const d = flip.file === 'data' ? data.slice() : data;
        const h = flip.file === 'hash' ? hash.slice() : hash;
        (flip.file === 'data' ? d : h)[flip.at]! ^= 0x80;
        const g = await openDmverity({ data: d, hash: h }, { rootHash: root, hashOffset: c.hashOffset });
        for (const b of [0, 1, 3 * per, 3 * per + per - 1, 4 * per, 4000, per * per - 1, per * per]) {
          const got = await g.read(b * 4096, 4096).then(
            (ok) => ({ ok }),
            (err: unknown) => ({ err }),
          );
          if (flip.reach(b)) {
            expect('err' in got && isErrno(got.err, 'EIO'), `${flip.what}: block ${b}`).toBe(true);
            expect(((got as { err: Error }).err).message).toMatch(flip.msg);
          } else {
            expect('ok' in got, `${flip.what}: block ${b}`).toBe(true);
            expect(Buffer.compare(Buffer.from((got as { ok: Uint8Array }).ok), Buffer.from(data.subarray(b * 4096, (b + 1) * 4096)))).toBe(0);
          }
        }
        await g.close();
      }
    });
  });
});
