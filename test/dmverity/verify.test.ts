/**
 * dmverityVerify against `veritysetup verify`: each accepts the other's
 * hash devices, and a byte flipped in the data, in a hash, in a slot's
 * padding, in a block's spare area or in the top block is found by both,
 * at the same position (veritysetup's "Verification failed at position
 * N" / "Spare area is not zeroed at position N"), with the same exit
 * status. Bad input (superblocks, sizes, root hashes) is a coded error.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  computeDmverityLayout,
  decodeDmveritySuperblock,
  dmverityFormat,
  dmverityVerify,
  encodeDmveritySuperblock,
  validateDmverityParams,
} from '../../src/dmverity/index.js';
import { fillRandom } from '../fixtures/generate.mjs';
import {
  FIXED_UUID,
  HAVE_VERITYSETUP,
  libraryOptions,
  requireVeritysetupInCi,
  rootHashOf,
  veritysetupAsync,
  veritysetupOptions,
  type VeritysetupCase,
} from '../helpers/veritysetup.js';
import { dataFor } from '../helpers/dmverity.js';

const dir = mkdtempSync(join(tmpdir(), 'iomap-verity-dmv-verify-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const CASES: VeritysetupCase[] = [
  { hash: 'sha256', dataBlockSize: 512, hashBlockSize: 512, format: 1, salt: 'a1b2c3', superblock: true, hashOffset: 0 },
  { hash: 'sha1', dataBlockSize: 1024, hashBlockSize: 512, format: 1, salt: '00ff', superblock: false, hashOffset: 0 },
  { hash: 'sha512', dataBlockSize: 512, hashBlockSize: 1024, format: 0, salt: '-', superblock: true, hashOffset: 2048 },
];

/** What veritysetup says about a verification: status and the position it names. */
async function theirVerify(c: VeritysetupCase, data: string, hash: string, root: string) {
  const extra = c.superblock ? [`--hash-offset=${c.hashOffset}`] : veritysetupOptions(c).filter((o) => !o.startsWith('--uuid'));
  const r = await veritysetupAsync(['verify', data, hash, root, ...extra]);
  const m = /(Verification failed|Spare area is not zeroed) at position (\d+)/.exec(r.stderr);
  return { status: r.status, position: m ? Number(m[2]) : undefined, spare: m?.[1] === 'Spare area is not zeroed', stderr: r.stderr };
}

function verifyOpts(c: VeritysetupCase) {
  return c.superblock ? { hashOffset: c.hashOffset } : libraryOptions(c);
}

describe('dmverityVerify against veritysetup verify', () => {
  it('has the oracle when CI is set', () => requireVeritysetupInCi());

  CASES.forEach((c, ci) => {
    it.runIf(HAVE_VERITYSETUP)(`${c.hash} format ${c.format} ${c.superblock ? 'superblock' : 'no superblock'}: accepted both ways, flips found by both`, async () => {
      const bs = c.dataBlockSize;
      const size = 300 * bs;
      const data = join(dir, `d${ci}`);
      const hash = join(dir, `h${ci}`);
      const ourHash = join(dir, `o${ci}`);
      const bytes = dataFor(size, bs, 40 + ci);
      writeFileSync(data, bytes);
      const f = await veritysetupAsync(['format', data, hash, ...veritysetupOptions(c)]);
      expect(f.status, f.stderr).toBe(0);
      const root = rootHashOf(f.stdout);
      const ours = await dmverityFormat(data, libraryOptions(c));
      writeFileSync(ourHash, ours.hashDevice!);
      // Each accepts the other's.
      expect((await dmverityVerify(data, hash, root, verifyOpts(c))).ok).toBe(true);
      expect((await theirVerify(c, data, ourHash, root)).status).toBe(0);

      const layout = computeDmverityLayout(validateDmverityParams(libraryOptions(c), size, false));
      const hbs = c.hashBlockSize;
      const level0 = layout.levelStart[0]! * hbs;
      const top = layout.levelStart[layout.levels - 1]! * hbs;
      const flips: { what: string; file: 'data' | 'hash'; at: number }[] = [
        { what: 'data block 0', file: 'data', at: 3 },
        { what: 'a zero data block', file: 'data', at: 20 * bs + 5 },
        { what: 'the last data block', file: 'data', at: size - 1 },
        { what: 'a level-0 hash', file: 'hash', at: level0 + layout.slotSize * 5 + 1 },
        { what: 'the spare area of a level-0 block', file: 'hash', at: layout.levelStart[1]! * hbs - 1 },
        { what: 'the top block', file: 'hash', at: top + 2 },
      ];
      if (c.format === 1 && layout.slotSize > layout.params.digestSize) {
        flips.push({ what: 'the padding of a hash slot', file: 'hash', at: level0 + layout.slotSize - 1 });
      }
      for (const flip of flips) {
        const src = flip.file === 'data' ? bytes : ours.hashDevice!;
        const bad = src.slice();
        bad[flip.at]! ^= 0x40;
        const path = join(dir, `bad${ci}`);
        writeFileSync(path, bad);
        const [d, h] = flip.file === 'data' ? [path, hash] : [data, path];
        const mine = await dmverityVerify(d, h, root, verifyOpts(c));
        const theirs = await theirVerify(c, d, h, root);
        expect(mine.ok, flip.what).toBe(false);
        expect(theirs.status, `${flip.what}: ${theirs.stderr}`).not.toBe(0);
        const fl = mine.failure!;
        if (fl.reason === 'root') {
          expect(theirs.stderr, flip.what).toMatch(/Verification of root hash failed/);
          expect(theirs.status).toBe(1);
        } else {
          expect(theirs.status, flip.what).toBe(2);
          expect(fl.position, `${flip.what}: ${fl.message}`).toBe(theirs.position);
          expect(fl.reason === 'spare', flip.what).toBe(theirs.spare);
        }
        if (flip.file === 'data') {
          expect(fl.level, fl.message).toBe(0);
          expect(fl.block).toBe(Math.floor(flip.at / bs));
          expect(fl.message).toMatch(new RegExp(`data block ${fl.block} fails verification against its level-0 hash`));
        }
      }
      // A wrong root hash: the tree is fine, the top does not match.
      const wrong = (root[0] === '0' ? '1' : '0') + root.slice(1);
      const mine = await dmverityVerify(data, hash, wrong, verifyOpts(c));
      expect(mine.failure?.reason).toBe('root');
      expect((await theirVerify(c, data, hash, wrong)).status).toBe(1);
    });
  });

  it('a single data block: no tree, the root hash is its hash', async () => {
    const data = fillRandom(new Uint8Array(4096), 9);
    const r = await dmverityFormat(data, { salt: new Uint8Array([1, 2]), uuid: FIXED_UUID });
    expect(r.layout.levels).toBe(0);
    expect((await dmverityVerify(data, r.hashDevice!, r.rootHashHex)).ok).toBe(true);
    data[100]! ^= 1;
    const v = await dmverityVerify(data, r.hashDevice!, r.rootHash);
    expect(v.failure?.reason).toBe('root');
  });
});

describe('bad input gives coded errors', () => {
  const good = { salt: new Uint8Array([7]), uuid: FIXED_UUID, dataBlockSize: 512, hashBlockSize: 512 };
  const data = fillRandom(new Uint8Array(512 * 40), 4);

  it('bad parameters: EINVAL naming what is allowed', async () => {
    const cases: [object, RegExp][] = [
      [{ hashAlgorithm: 'md5' }, /not supported: dm-verity here supports sha256, sha512, sha1/],
      [{ hashAlgorithm: 42 }, /not supported/],
      [{ dataBlockSize: 1000 }, /power of two from 512 to 524288/],
      [{ hashBlockSize: 256 }, /power of two/],
      [{ dataBlockSize: 1 << 20 }, /power of two/],
      [{ format: 2 }, /hash type 2/],
      [{ hashOffset: 100 }, /multiple of 512/],
      [{ hashOffset: -512 }, /multiple of 512/],
      [{ uuid: 'not-a-uuid' }, /wrong UUID format/],
      [{ salt: new Uint8Array(257) }, /at most 256/],
      [{ salt: 'abcd' }, /Uint8Array/],
      [{ dataBlocks: 1.5 }, /blocks of 512/],
      [{ sink: 42 }, /sink must be a function/],
    ];
    for (const [bad, msg] of cases) {
      await expect(dmverityFormat(data, { ...good, ...bad } as never), JSON.stringify(bad)).rejects.toMatchObject({ code: 'EINVAL', message: expect.stringMatching(msg) });
    }
  });

  it('bad sizes: too little data is EINVAL, fewer blocks than asked for EIO, a missing file ENOENT', async () => {
    await expect(dmverityFormat(new Uint8Array(511), good)).rejects.toMatchObject({ code: 'EINVAL', message: expect.stringMatching(/at least one/) });
    await expect(dmverityFormat(data, { ...good, dataBlocks: 41 })).rejects.toMatchObject({ code: 'EIO' });
    await expect(dmverityFormat(join(dir, 'missing'), good)).rejects.toMatchObject({ code: 'ENOENT' });
    const r = await dmverityFormat(data, good);
    await expect(dmverityVerify(data, r.hashDevice!.subarray(0, r.hashDevice!.length - 1), r.rootHashHex)).rejects.toMatchObject({ code: 'EIO' });
    await expect(dmverityVerify(data.subarray(0, 512 * 39), r.hashDevice!, r.rootHashHex)).rejects.toMatchObject({ code: 'EIO' });
  });

  it('bad root hashes: EINVAL', async () => {
    const r = await dmverityFormat(data, good);
    for (const root of ['', 'zz'.repeat(32), r.rootHashHex.slice(2), `${r.rootHashHex}00`, r.rootHashHex.slice(1), new Uint8Array(31)]) {
      await expect(dmverityVerify(data, r.hashDevice!, root as string), String(root)).rejects.toMatchObject({ code: 'EINVAL' });
    }
  });

  it('bad superblocks: EINVAL from the one door, and from verify', async () => {
    const params = validateDmverityParams(good, data.length, false);
    const sb = encodeDmveritySuperblock(params);
    expect(decodeDmveritySuperblock(sb)).toMatchObject({ uuid: FIXED_UUID, dataBlocks: 40, dataBlockSize: 512, format: 1 });
    const patch = (f: (dv: DataView, b: Uint8Array) => void) => {
      const b = sb.slice();
      f(new DataView(b.buffer), b);
      return b;
    };
    const bad: [string, Uint8Array, RegExp][] = [
      ['signature', patch((_, b) => (b[0] = 0x56)), /no "verity" signature/],
      ['version', patch((dv) => dv.setUint32(8, 2, true)), /version 2/],
      ['hash type', patch((dv) => dv.setUint32(12, 5, true)), /hash type 5/],
      ['data block size', patch((dv) => dv.setUint32(64, 4095, true)), /block sizes 4095/],
      ['hash block size', patch((dv) => dv.setUint32(68, 0, true)), /block sizes/],
      ['algorithm', patch((_, b) => b.set(new TextEncoder().encode('md5\0\0\0'), 32)), /"md5" not supported/],
      ['unterminated algorithm', patch((_, b) => b.fill(0x61, 32, 64)), /not supported/],
      ['no data blocks', patch((dv) => dv.setBigUint64(72, 0n, true)), /0 data blocks/],
      ['data past 2^53', patch((dv) => dv.setBigUint64(72, 1n << 60n, true)), /data blocks/],
      ['salt size', patch((dv) => dv.setUint16(80, 257, true)), /salt size 257/],
      ['short', sb.subarray(0, 100), /512-byte superblock/],
    ];
    for (const [what, b, msg] of bad) {
      expect(() => decodeDmveritySuperblock(b), what).toThrow(msg);
      try {
        decodeDmveritySuperblock(b);
      } catch (e) {
        expect((e as { code: string }).code, what).toBe('EINVAL');
      }
      if (b.length < 512) continue;
      const dev = new Uint8Array(8192);
      dev.set(b);
      await expect(dmverityVerify(data, dev, '00'.repeat(32)), what).rejects.toMatchObject({ code: 'EINVAL' });
    }
    // Untouched fields outside the salt's length do not matter, as in veritysetup.
    expect(() => decodeDmveritySuperblock(patch((_, b) => (b[300] = 9)))).not.toThrow();
  });
});
