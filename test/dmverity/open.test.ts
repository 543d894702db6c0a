/**
 * openDmverity: verified reads of images whose hash devices `veritysetup
 * format` wrote (fixed salt and UUID), through the verity library's one
 * verifier with dm-verity's geometry. Random reads equal the data; every
 * byte flipped in a sampled set of data and hash blocks (hashes, slot
 * padding, spare areas, the top block) makes every read touching it EIO
 * naming the block and level, and never hands out a wrong byte, while
 * reads elsewhere still give the true bytes. Sizes and bad input are
 * coded errors. A slice runs over a real nginx.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { computeDmverityLayout, decodeDmveritySuperblock, isErrno, openDmverity, validateDmverityParams, type DmverityFile, type DmverityLayout, type DmverityTrust } from '../../src/index.js';
import { fillRandom } from '../fixtures/generate.mjs';
import { rng } from '../helpers/bytes.js';
import { dataFor } from '../helpers/dmverity.js';
import { HAVE_NGINX, nginxOrSkip, startNginx } from '../helpers/nginx.js';
import { FIXED_UUID, HAVE_VERITYSETUP, libraryOptions, requireVeritysetupInCi, rootHashOf, veritysetupAsync, veritysetupOptions, type VeritysetupCase } from '../helpers/veritysetup.js';

const dir = mkdtempSync(join(tmpdir(), 'iomap-verity-dmv-open-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const hex = (n: number, seed: number) => Buffer.from(fillRandom(new Uint8Array(n), seed)).toString('hex');

/** Hash algorithms, block sizes 512..4096, both formats, with and without superblock, hash offsets. */
const CASES: VeritysetupCase[] = [
  { hash: 'sha256', dataBlockSize: 4096, hashBlockSize: 4096, format: 1, salt: hex(32, 1), superblock: true, hashOffset: 0 },
  { hash: 'sha256', dataBlockSize: 512, hashBlockSize: 1024, format: 0, salt: hex(63, 2), superblock: false, hashOffset: 4096 },
  { hash: 'sha1', dataBlockSize: 1024, hashBlockSize: 512, format: 1, salt: hex(20, 3), superblock: true, hashOffset: 1536 },
  { hash: 'sha1', dataBlockSize: 2048, hashBlockSize: 4096, format: 0, salt: hex(7, 4), superblock: false, hashOffset: 0 },
  { hash: 'sha512', dataBlockSize: 512, hashBlockSize: 2048, format: 0, salt: hex(129, 5), superblock: true, hashOffset: 512 },
  { hash: 'sha512', dataBlockSize: 4096, hashBlockSize: 4096, format: 1, salt: '-', superblock: false, hashOffset: 0 },
  { hash: 'sha256', dataBlockSize: 512, hashBlockSize: 512, format: 1, salt: '-', superblock: true, hashOffset: 0 },
];

const label = (c: VeritysetupCase) => `${c.hash} ${c.dataBlockSize}/${c.hashBlockSize} format ${c.format} ${c.superblock ? 'superblock' : 'no superblock'} offset ${c.hashOffset}`;
const perBlock = (c: VeritysetupCase) => 2 ** Math.floor(Math.log2(c.hashBlockSize / { sha256: 32, sha512: 64, sha1: 20 }[c.hash]));

/** What the reader is told: the root hash, and the parameters only without a superblock. */
function trustFor(c: VeritysetupCase, rootHash: string, extra: Partial<DmverityTrust> = {}): DmverityTrust {
  const o = libraryOptions(c);
  return c.superblock ? { rootHash, hashOffset: c.hashOffset, ...extra } : { ...o, uuid: undefined, rootHash, ...extra };
}

interface Made {
  data: Uint8Array;
  dataPath: string;
  hash: Uint8Array;
  hashPath: string;
  root: string;
}

let n = 0;
async function make(c: VeritysetupCase, size: number, seed: number): Promise<Made> {
  const k = n++;
  const dataPath = join(dir, `d${k}`);
  const hashPath = join(dir, `h${k}`);
  const data = dataFor(size, c.dataBlockSize, seed);
  writeFileSync(dataPath, data);
  writeFileSync(hashPath, new Uint8Array(0));
  const r = await veritysetupAsync(['format', dataPath, hashPath, ...veritysetupOptions(c)]);
  expect(r.status, r.stderr).toBe(0);
  return { data, dataPath, hash: new Uint8Array(readFileSync(hashPath)), hashPath, root: rootHashOf(r.stdout) };
}

async function settle<T>(p: Promise<T>): Promise<{ ok: T } | { err: unknown }> {
  return p.then(
    (ok) => ({ ok }),
    (err: unknown) => ({ err }),
  );
}

/** Random reads (small, block-crossing, large): each equals the data. */
async function randomReads(f: DmverityFile, want: Uint8Array, seed: number, count: number): Promise<void> {
  const r = rng(seed);
  for (let i = 0; i < count; i++) {
    const pos = Math.floor(r() * want.length);
    const len = 1 + Math.floor(r() * (r() < 0.2 ? want.length : 3 * f.blockSize));
    const got = await f.read(pos, len);
    expect(got.length).toBe(Math.min(len, want.length - pos));
    expect(Buffer.compare(Buffer.from(got), Buffer.from(want.subarray(pos, pos + got.length))), `read ${len} at ${pos}`).toBe(0);
  }
}

describe('openDmverity over veritysetup format', () => {
  it('has the oracle when CI is set', () => requireVeritysetupInCi());

  CASES.forEach((c, ci) => {
    const bs = c.dataBlockSize;
    const per = perBlock(c);
    // One block (no tree; veritysetup writes no superblock past an empty file's end), exactly
    // full levels, one block past; two full levels and one past where that stays small.
    const small = per * per * bs <= 1 << 20;
    const sizes = [...(c.superblock && c.hashOffset > 0 ? [] : [bs]), per * bs, (per + 1) * bs, ...(small ? [per * per * bs, (per * per + 1) * bs] : [])];
    for (const size of sizes) {
      it.runIf(HAVE_VERITYSETUP)(`${label(c)}, ${size / bs} blocks: random verified reads equal the data, from paths and from bytes`, async () => {
        const m = await make(c, size, 100 + ci);
        for (const src of [{ data: m.dataPath, hash: m.hashPath }, { data: m.data, hash: m.hash }]) {
          const f = await openDmverity(src, trustFor(c, m.root), { treeCacheBytes: 0 });
          try {
            expect(f.size).toBe(size);
            expect(f.rootHash).toBe(m.root);
            expect(f.params.hashAlgorithm).toBe(c.hash);
            expect(f.params.format).toBe(c.format);
            expect(Buffer.compare(Buffer.from(await f.read(0, size)), Buffer.from(m.data))).toBe(0);
            await randomReads(f, m.data, ci * 10 + size, 25);
          } finally {
            await f.close();
          }
        }
      });
    }

    // Two levels (two level-0 blocks under one top block), and three where that stays small.
    for (const levels of small ? [2, 3] : [2]) it.runIf(HAVE_VERITYSETUP)(`${label(c)}, ${levels} levels: every flipped byte of sampled data and hash blocks is EIO on reads touching it, never a wrong byte`, async () => {
      const blocks = levels === 2 ? per + 1 : per * per + 1;
      const size = blocks * bs;
      const m = await make(c, size, 200 + ci);
      const params = c.superblock ? decodeDmveritySuperblock(m.hash.subarray(c.hashOffset), c.hashOffset) : validateDmverityParams(libraryOptions(c), size, false);
      const layout = computeDmverityLayout(params);
      expect(layout.levels).toBe(levels);
      const r = rng(300 + ci + levels);
      const flips: { file: 'data' | 'hash'; at: number }[] = [];
      for (const b of new Set([0, 1, 9, 20, per - 1, per, blocks - 2, blocks - 1].filter((x) => x < blocks))) for (let k = 0; k < 2; k++) flips.push({ file: 'data', at: b * bs + Math.floor(r() * bs) });
      const hbs = c.hashBlockSize;
      for (let k = 0; k < layout.levels; k++) {
        for (let j = 0; j < layout.levelSize[k]!; j++) {
          const start = (layout.levelStart[k]! + j) * hbs;
          // A hash, the padding of a slot (format 1), the spare area at the end, and random bytes.
          const at = [start + 1, start + layout.slotSize - 1, start + hbs - 1, start + Math.floor(r() * hbs), start + Math.floor(r() * hbs)];
          for (const a of at) flips.push({ file: 'hash', at: a });
        }
      }
      for (const flip of flips) {
        const data = m.data.slice();
        const hash = m.hash.slice();
        (flip.file === 'data' ? data : hash)[flip.at]! ^= 1 << Math.floor(r() * 8);
        const hit = touched(layout, flip.file, flip.at, bs, hbs);
        const f = await openDmverity({ data, hash }, trustFor(c, m.root));
        try {
          // Every block read alone: EIO exactly where the flip reaches, the true bytes elsewhere.
          for (let b = 0; b < params.dataBlocks; b += b < 3 || Math.abs(b - per) < 3 || b > blocks - 3 ? 1 : levels === 2 ? 7 : 23) {
            const got = await settle(f.read(b * bs + 1, bs - 1));
            if (hit.blocks(b)) {
              expect('err' in got && isErrno(got.err, 'EIO'), `flip of ${flip.file} byte ${flip.at}: block ${b} must fail`).toBe(true);
              const msg = ((got as { err: Error }).err).message;
              expect(msg).toMatch(hit.message);
            } else {
              expect('ok' in got, `flip of ${flip.file} byte ${flip.at}: block ${b} must read`).toBe(true);
              expect(Buffer.compare(Buffer.from((got as { ok: Uint8Array }).ok), Buffer.from(m.data.subarray(b * bs + 1, (b + 1) * bs)))).toBe(0);
            }
          }
          // A read across the whole image fails, handing out nothing.
          const all = new Uint8Array(size);
          const whole = await settle(f.readInto(0, all));
          expect('err' in whole && isErrno(whole.err, 'EIO')).toBe(true);
          const flipped = flip.file === 'data' ? flip.at : -1;
          for (let i = 0; i < size; i += 1) if (all[i] !== 0 && all[i] !== m.data[i]) throw new Error(`wrong byte ${i} handed out (flip at ${flipped})`);
        } finally {
          await f.close();
        }
      }
    });
  });
});

/** Which data blocks a flipped byte reaches, and what the error must name. */
function touched(layout: DmverityLayout, file: 'data' | 'hash', at: number, bs: number, hbs: number): { blocks: (b: number) => boolean; message: RegExp } {
  if (file === 'data') {
    const b = Math.floor(at / bs);
    return { blocks: (x) => x === b, message: new RegExp(`^dm-verity: data block ${b} of .* fails verification against its level-0 hash: expected ${layout.params.hashAlgorithm}:`) };
  }
  const k = Math.floor(at / hbs);
  for (let l = 0; l < layout.levels; l++) {
    const i = k - layout.levelStart[l]!;
    if (i >= 0 && i < layout.levelSize[l]!) {
      const span = layout.hashesPerBlock ** (l + 1);
      return { blocks: (x) => Math.floor(x / span) === i, message: new RegExp(`^dm-verity: tree block ${i} of .* fails verification at tree level ${l}:`) };
    }
  }
  throw new Error(`byte ${at} is not in the tree`);
}

describe('openDmverity: sizes, parameters and bad input', () => {
  const c: VeritysetupCase = { hash: 'sha256', dataBlockSize: 512, hashBlockSize: 512, format: 1, salt: 'a1b2', superblock: true, hashOffset: 0 };
  const size = 40 * 512;

  it.runIf(HAVE_VERITYSETUP)('data and hash in one file (hash offset past the data, dataBlocks given)', async () => {
    const data = dataFor(size, 512, 7);
    const img = join(dir, 'combined');
    writeFileSync(img, data);
    const r = await veritysetupAsync(['format', img, img, '--hash-offset=' + size, '--data-blocks=40', '--data-block-size=512', '--hash-block-size=512', '--salt=a1b2', `--uuid=${FIXED_UUID}`]);
    expect(r.status, r.stderr).toBe(0);
    const root = rootHashOf(r.stdout);
    // The file goes on past the data: only with dataBlocks is that the caller's intent.
    await expect(openDmverity({ data: img, hash: img }, { rootHash: root, hashOffset: size })).rejects.toMatchObject({ code: 'EIO' });
    const f = await openDmverity({ data: img, hash: img }, { rootHash: root, hashOffset: size, dataBlocks: 40 });
    expect(Buffer.compare(Buffer.from(await f.read(0, size + 10)), Buffer.from(data))).toBe(0);
    await f.close();
    await expect(f.read(0, 1)).rejects.toMatchObject({ code: 'EBADF' });
  });

  it.runIf(HAVE_VERITYSETUP)('short and long data, short hash device: EIO; a partial last block needs dataBlocks', async () => {
    const m = await make(c, size + 100, 8);
    const t = trustFor(c, m.root);
    await expect(openDmverity({ data: m.data, hash: m.hash }, t)).rejects.toMatchObject({ code: 'EIO', message: /bytes were added/ });
    const f = await openDmverity({ data: m.data, hash: m.hash }, { ...t, dataBlocks: 40 });
    expect(f.size).toBe(size);
    expect(Buffer.compare(Buffer.from(await f.read(0, size)), Buffer.from(m.data.subarray(0, size)))).toBe(0);
    await f.close();
    await expect(openDmverity({ data: m.data.subarray(0, size - 1), hash: m.hash }, { ...t, dataBlocks: 40 })).rejects.toMatchObject({ code: 'EIO', message: /cut short/ });
    await expect(openDmverity({ data: m.data.subarray(0, size), hash: m.hash.subarray(0, m.hash.length - 1) }, t)).rejects.toMatchObject({ code: 'EIO' });
    // Without a superblock, an unaligned data size is refused unless dataBlocks says how many blocks.
    const nc = { ...c, superblock: false };
    const n2 = await make(nc, size + 100, 9);
    await expect(openDmverity({ data: n2.data, hash: n2.hash }, trustFor(nc, n2.root))).rejects.toMatchObject({ code: 'EIO', message: /whole number/ });
    const g = await openDmverity({ data: n2.data, hash: n2.hash }, trustFor(nc, n2.root, { dataBlocks: 40 }));
    expect(Buffer.compare(Buffer.from(await g.read(0, size)), Buffer.from(n2.data.subarray(0, size)))).toBe(0);
    await g.close();
    // A data source that grows under a reader without a size (a reader of ours) is caught too.
    await expect(
      openDmverity({ data: { read: async (o: number, l: number) => n2.data.slice(o, o + l) }, hash: n2.hash }, trustFor(nc, n2.root, { dataBlocks: 40 })),
    ).resolves.toBeDefined();
  });

  it.runIf(HAVE_VERITYSETUP)('parameters given beside a superblock must agree with it; a bad root hash or superblock is EINVAL', async () => {
    const m = await make(c, size, 10);
    const src = { data: m.data, hash: m.hash };
    for (const wrong of [{ hashAlgorithm: 'sha512' }, { dataBlockSize: 1024 }, { hashBlockSize: 4096 }, { format: 0 }, { salt: new Uint8Array([0xa1]) }, { uuid: '00000000-0000-4000-8000-000000000000' }, { dataBlocks: 39 }]) {
      await expect(openDmverity(src, { rootHash: m.root, ...wrong }), JSON.stringify(wrong)).rejects.toMatchObject({ code: 'EINVAL', message: /superblock .* says/ });
    }
    const agree = await openDmverity(src, { rootHash: m.root, hashAlgorithm: 'sha256', dataBlockSize: 512, hashBlockSize: 512, format: 1, salt: new Uint8Array([0xa1, 0xb2]), uuid: FIXED_UUID, dataBlocks: 40 });
    await agree.close();
    for (const rootHash of ['xyz', m.root.slice(2), m.root + '00', '', 5 as unknown as string]) {
      await expect(openDmverity(src, { rootHash }), String(rootHash)).rejects.toMatchObject({ code: 'EINVAL' });
    }
    await expect(openDmverity(src, { rootHash: m.root, hashOffset: 100 })).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(openDmverity({ data: m.data, hash: new Uint8Array(4096) }, { rootHash: m.root })).rejects.toMatchObject({ code: 'EINVAL', message: /not a dm-verity hash device/ });
    await expect(openDmverity({ data: m.data, hash: new Uint8Array(0) }, { rootHash: m.root })).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(openDmverity({ data: m.data } as never, { rootHash: m.root })).rejects.toMatchObject({ code: 'EINVAL' });
    // A wrong root hash opens (nothing is read until asked) and every read is EIO at the top level.
    const wrong = (m.root[0] === '0' ? '1' : '0') + m.root.slice(1);
    const f = await openDmverity(src, { rootHash: wrong });
    await expect(f.read(0, 1)).rejects.toMatchObject({ code: 'EIO', message: /tree block 0 of .* at tree level 1/ });
    await f.close();
    // A lying superblock (another salt) makes nothing verify.
    const lie = m.hash.slice();
    lie[88]! ^= 1;
    const g = await openDmverity({ data: m.data, hash: lie }, { rootHash: m.root });
    await expect(g.read(5000, 10)).rejects.toMatchObject({ code: 'EIO' });
    await g.close();
  });

  it.runIf(HAVE_VERITYSETUP)('streams the verified bytes; the stream errors at a bad block', async () => {
    const m = await make(c, size, 11);
    const f = await openDmverity({ data: m.data, hash: m.hash }, trustFor(c, m.root));
    const parts: Uint8Array[] = [];
    for await (const p of f.stream({ chunkSize: 4096 }) as unknown as AsyncIterable<Uint8Array>) parts.push(p);
    expect(Buffer.compare(Buffer.concat(parts), Buffer.from(m.data))).toBe(0);
    await f.close();
    const bad = m.data.slice();
    bad[30 * 512]! ^= 4;
    const g = await openDmverity({ data: bad, hash: m.hash }, trustFor(c, m.root));
    const got: Uint8Array[] = [];
    await expect(
      (async () => {
        for await (const p of g.stream({ chunkSize: 4096 }) as unknown as AsyncIterable<Uint8Array>) got.push(p);
      })(),
    ).rejects.toMatchObject({ code: 'EIO', message: /data block 30 / });
    const before = Buffer.concat(got);
    expect(before.length).toBeLessThanOrEqual(30 * 512);
    expect(Buffer.compare(before, Buffer.from(m.data.subarray(0, before.length)))).toBe(0);
    await g.close();
  });
});

describe('openDmverity over HTTP (nginx)', () => {
  it.runIf(HAVE_VERITYSETUP)('reads an image and its hash device from URLs; a flipped byte on the server is EIO', async (ctx) => {
    if (!nginxOrSkip() || !HAVE_NGINX) return ctx.skip();
    const c: VeritysetupCase = { hash: 'sha256', dataBlockSize: 4096, hashBlockSize: 4096, format: 1, salt: hex(32, 12), superblock: true, hashOffset: 0 };
    const size = 300 * 4096 + 4096 * 129;
    const m = await make(c, size, 12);
    const web = mkdtempSync(join(dir, 'www-'));
    writeFileSync(join(web, 'img'), m.data);
    writeFileSync(join(web, 'img.hash'), m.hash);
    const bad = m.data.slice();
    bad[200 * 4096 + 7]! ^= 0x10;
    writeFileSync(join(web, 'bad.img'), bad);
    const nginx = await startNginx(web);
    try {
      const f = await openDmverity({ data: `${nginx.origin}/img`, hash: `${nginx.origin}/img.hash` }, { rootHash: m.root });
      await randomReads(f, m.data, 13, 30);
      await f.close();
      const g = await openDmverity({ data: `${nginx.origin}/bad.img`, hash: `${nginx.origin}/img.hash` }, { rootHash: m.root });
      await expect(g.read(200 * 4096, 10)).rejects.toMatchObject({ code: 'EIO', message: /data block 200 / });
      expect(Buffer.compare(Buffer.from(await g.read(100 * 4096, 4096)), Buffer.from(m.data.subarray(100 * 4096, 101 * 4096)))).toBe(0);
      await g.close();
    } finally {
      await nginx.stop();
    }
  });
});
