/**
 * openVerified over local files, arrays, Blobs and readers, with the trees
 * and descriptors fsverity-utils wrote: model-based random ranges against
 * the plain bytes, every tampering of data, tree and descriptor refused
 * with EIO, sizes that disagree with the descriptor refused, bad digests
 * EINVAL, streams and aborts.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openVerified, toNodeReadable, isErrno, type VerifiedFile } from '../../src/index.js';
import { fillRandom } from '../fixtures/generate.mjs';
import { rng } from '../helpers/bytes.js';
import { fsverityFiles, HAVE_FSVERITY, requireOracleInCi, type FsverityFiles } from '../helpers/fsverity.js';

const dir = mkdtempSync(join(tmpdir(), 'iomap-verity-openverified-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Case {
  name: string;
  size: number;
  args: string[];
}
const CASES: Case[] = [
  { name: 'empty', size: 0, args: [] },
  { name: 'one-byte', size: 1, args: [] },
  { name: 'one-block', size: 4096, args: [] },
  { name: 'odd', size: 1_000_003, args: [] },
  { name: 'three-levels-1k', size: 600_001, args: ['--block-size=1024'] },
  { name: 'sha512-salted', size: 300_000, args: ['--hash-alg=sha512', '--salt=00112233'] },
  { name: 'zeros', size: 1 << 20, args: [] },
];
const files = new Map<string, FsverityFiles & { bytes: Uint8Array }>();

beforeAll(() => {
  requireOracleInCi();
  if (!HAVE_FSVERITY) return;
  for (const c of CASES) {
    const bytes = c.name === 'zeros' ? new Uint8Array(c.size) : fillRandom(new Uint8Array(c.size), c.size);
    const p = join(dir, c.name);
    writeFileSync(p, bytes);
    files.set(c.name, { ...fsverityFiles(p, c.args), bytes });
  }
});

function need(ctx: { skip: () => void }): boolean {
  if (!HAVE_FSVERITY) ctx.skip();
  return HAVE_FSVERITY;
}

async function expectEIO(p: Promise<unknown>, pattern?: RegExp): Promise<void> {
  const e = await p.then(
    (v) => {
      throw new Error(`expected EIO, got ${v instanceof Uint8Array ? `${v.length} bytes` : String(v)}`);
    },
    (e: unknown) => e,
  );
  expect(isErrno(e, 'EIO'), String(e)).toBe(true);
  if (pattern) expect((e as Error).message).toMatch(pattern);
}

/** Random reads of `f` compared with the plain bytes. */
async function modelReads(f: VerifiedFile, bytes: Uint8Array, seed: number, n: number): Promise<void> {
  const r = rng(seed);
  for (let i = 0; i < n; i++) {
    const pos = Math.floor(r() * (bytes.length + 100));
    const len = Math.floor(r() * (r() < 0.2 ? 300_000 : 9000));
    if (r() < 0.5) {
      const got = await f.read(pos, len);
      expect(Buffer.from(got).equals(Buffer.from(bytes.subarray(pos, pos + len))), `read ${pos}+${len}`).toBe(true);
    } else {
      const dst = new Uint8Array(len);
      const n = await f.readInto(pos, dst);
      expect(n).toBe(Math.max(0, Math.min(len, bytes.length - pos)));
      expect(Buffer.from(dst.subarray(0, n)).equals(Buffer.from(bytes.subarray(pos, pos + n))), `readInto ${pos}+${len}`).toBe(true);
    }
  }
}

describe('openVerified with fsverity-utils trees', () => {
  for (const c of CASES) {
    it(`${c.name}: local paths, random ranges match the plain bytes`, async (ctx) => {
      if (!need(ctx)) return;
      const x = files.get(c.name)!;
      const f = await openVerified({ data: x.data, tree: x.tree, descriptor: x.descriptor }, { digest: x.digest });
      try {
        expect(f.size).toBe(c.size);
        expect(f.digest).toBe(x.digest);
        expect(f.descriptor.dataSize).toBe(c.size);
        await modelReads(f, x.bytes, c.size + 1, 40);
        expect(Buffer.from(await f.read(0, c.size + 10)).equals(Buffer.from(x.bytes))).toBe(true);
      } finally {
        await f.close();
      }
    });
  }

  it('arrays, Blobs and readers give the same bytes as paths', async (ctx) => {
    if (!need(ctx)) return;
    const x = files.get('three-levels-1k')!;
    const tree = readFileSync(x.tree);
    const desc = readFileSync(x.descriptor);
    const reader = (b: Uint8Array, withSize: boolean) => ({
      ...(withSize ? { size: b.length } : {}),
      read: async (o: number, l: number) => b.slice(o, o + l),
    });
    const variants = [
      { data: x.bytes, tree, descriptor: desc },
      { data: new Blob([x.bytes as BlobPart]), tree: new Blob([tree as BlobPart]), descriptor: new Blob([desc as BlobPart]) },
      { data: reader(x.bytes, true), tree: reader(tree, false), descriptor: reader(desc, false) },
      { data: reader(x.bytes, false), tree: new URL(`file://${x.tree}`).pathname, descriptor: desc },
    ];
    for (const [i, v] of variants.entries()) {
      const f = await openVerified(v, { digest: x.digest });
      await modelReads(f, x.bytes, 100 + i, 15);
      await f.close();
    }
  });

  it('parallel: true hashes long runs on the worker pool, with the same bytes and the same refusals', async (ctx) => {
    if (!need(ctx)) return;
    for (const name of ['odd', 'three-levels-1k', 'sha512-salted']) {
      const x = files.get(name)!;
      const f = await openVerified({ data: x.data, tree: x.tree, descriptor: x.descriptor }, { digest: x.digest }, { parallel: true });
      await modelReads(f, x.bytes, 77, 12);
      expect(Buffer.from(await f.read(0, x.bytes.length)).equals(Buffer.from(x.bytes))).toBe(true);
      await f.close();
      const data = Uint8Array.from(x.bytes);
      data[250_000]! ^= 2;
      const g = await openVerified({ data, tree: x.tree, descriptor: x.descriptor }, { digest: x.digest }, { parallel: true });
      await expectEIO(g.read(0, data.length), new RegExp(`data block ${Math.floor(250_000 / g.descriptor.params.blockSize)} `));
      await g.close();
    }
  });

  it('a trusted root hash and size stand in for the descriptor', async (ctx) => {
    if (!need(ctx)) return;
    const x = files.get('odd')!;
    const d = readFileSync(x.descriptor);
    const f = await openVerified({ data: x.data, tree: x.tree }, { rootHash: Buffer.from(d.subarray(16, 48)).toString('hex'), size: 1_000_003 });
    expect(f.digest).toBe(x.digest);
    await modelReads(f, x.bytes, 5, 10);
    await f.close();
    const bad = Buffer.from(d.subarray(16, 48));
    bad[0]! ^= 1;
    const g = await openVerified({ data: x.data, tree: x.tree }, { rootHash: bad, size: 1_000_003 });
    await expectEIO(g.read(0, 1), /tree level 1/);
    await g.close();
  });

  it('streams verified bytes, web and Node', async (ctx) => {
    if (!need(ctx)) return;
    const x = files.get('odd')!;
    const f = await openVerified({ data: x.data, tree: x.tree, descriptor: x.descriptor }, { digest: x.digest });
    const parts: Uint8Array[] = [];
    for await (const c of f.stream({ start: 777, end: 900_001, chunkSize: 65536 }) as unknown as AsyncIterable<Uint8Array>) parts.push(c);
    expect(Buffer.concat(parts).equals(Buffer.from(x.bytes.subarray(777, 900_001)))).toBe(true);
    const nodeParts: Buffer[] = [];
    for await (const c of await toNodeReadable(f.stream())) nodeParts.push(c as Buffer);
    expect(Buffer.concat(nodeParts).equals(Buffer.from(x.bytes))).toBe(true);
    await f.close();
    await expect(f.read(0, 1)).rejects.toMatchObject({ code: 'EBADF' });
  });

  it('an aborted signal stops reads and streams', async (ctx) => {
    if (!need(ctx)) return;
    const x = files.get('odd')!;
    const f = await openVerified({ data: x.data, tree: x.tree, descriptor: x.descriptor }, { digest: x.digest });
    const ac = new AbortController();
    ac.abort(new Error('stop'));
    await expect(f.read(0, 100_000, { signal: ac.signal })).rejects.toThrow('stop');
    const s = f.stream({ signal: ac.signal });
    await expect(s.getReader().read()).rejects.toThrow('stop');
    await f.close();
  });
});

describe('tampering refused', () => {
  it('every data, tree and descriptor byte position class flipped is EIO, never a wrong byte', async (ctx) => {
    if (!need(ctx)) return;
    for (const name of ['odd', 'three-levels-1k', 'sha512-salted', 'one-block', 'zeros']) {
      const x = files.get(name)!;
      const tree = readFileSync(x.tree);
      const desc = readFileSync(x.descriptor);
      const r = rng(name.length);
      for (let k = 0; k < 12; k++) {
        const data = Uint8Array.from(x.bytes);
        const t = Uint8Array.from(tree);
        const where = k % 3 === 0 || tree.length === 0 ? 'data' : 'tree';
        const at = Math.floor(r() * (where === 'data' ? data.length : t.length));
        (where === 'data' ? data : t)[at]! ^= 1 << (k % 8);
        const f = await openVerified({ data, tree: t, descriptor: desc }, { digest: x.digest });
        const bs = f.descriptor.params.blockSize;
        // A read of the whole file fails; reads of blocks the flip does not reach still succeed.
        await expectEIO(f.read(0, data.length), where === 'data' ? /data block/ : /tree block|data block/);
        if (where === 'data') {
          await expectEIO(f.read(at, 1), new RegExp(`data block ${Math.floor(at / bs)} `));
        }
        const parts: Uint8Array[] = [];
        const err = await (async () => {
          try {
            for await (const c of f.stream({ chunkSize: bs }) as unknown as AsyncIterable<Uint8Array>) parts.push(c);
          } catch (e) {
            return e;
          }
        })();
        expect(isErrno(err, 'EIO')).toBe(true);
        const got = Buffer.concat(parts);
        expect(got.equals(Buffer.from(x.bytes.subarray(0, got.length)))).toBe(true);
        await f.close();
      }
      for (const at of [0, 1, 2, 3, 8, 16, 40, 80, 200, 255]) {
        const d = Uint8Array.from(desc);
        d[at]! ^= 0x10;
        await expectEIO(openVerified({ data: x.bytes, tree, descriptor: d }, { digest: x.digest }), /does not match the trusted digest/);
      }
    }
  });

  it('data shorter or longer than the descriptor, a tree of the wrong size, a short descriptor: EIO', async (ctx) => {
    if (!need(ctx)) return;
    const x = files.get('odd')!;
    const tree = readFileSync(x.tree);
    const desc = readFileSync(x.descriptor);
    const d = { digest: x.digest };
    await expectEIO(openVerified({ data: x.bytes.subarray(1), tree, descriptor: desc }, d), /cut short/);
    await expectEIO(openVerified({ data: Buffer.concat([x.bytes, Buffer.alloc(1)]), tree, descriptor: desc }, d), /added/);
    await expectEIO(openVerified({ data: x.bytes, tree: tree.subarray(4096), descriptor: desc }, d), /Merkle tree/);
    await expectEIO(openVerified({ data: x.bytes, tree, descriptor: desc.subarray(0, 255) }, d), /descriptor/);
    // A reader with no size that is shorter: the missing block is EIO when read, after all blocks before it.
    const short = { read: async (o: number, l: number) => x.bytes.slice(o, Math.min(o + l, 500_000)) };
    await expectEIO(openVerified({ data: { read: async (o: number, l: number) => (o >= x.bytes.length ? new Uint8Array(1) : x.bytes.slice(o, o + l)) }, tree, descriptor: desc }, d), /goes on past/);
    const f = await openVerified({ data: short, tree, descriptor: desc }, d);
    expect(Buffer.from(await f.read(0, 499_712)).equals(Buffer.from(x.bytes.subarray(0, 499_712)))).toBe(true);
    await expectEIO(f.read(499_000, 2000), /missing/);
    await f.close();
    // A reader that throws, or answers with something else than bytes.
    const bad = await openVerified({ data: { size: x.bytes.length, read: async () => 'x' as unknown as Uint8Array }, tree, descriptor: desc }, d);
    await expectEIO(bad.read(0, 1));
    await bad.close();
  });

  it('a bad digest string is EINVAL, a wrong digest EIO', async (ctx) => {
    if (!need(ctx)) return;
    const x = files.get('odd')!;
    const s = { data: x.data, tree: x.tree, descriptor: x.descriptor };
    for (const bad of ['', 'sha256', 'sha256:', 'sha256:zz', `md5:${'0'.repeat(32)}`, `sha256:${'0'.repeat(63)}`, `sha512:${'0'.repeat(64)}`, 42]) {
      await expect(openVerified(s, { digest: bad as string })).rejects.toMatchObject({ code: 'EINVAL' });
    }
    await expectEIO(openVerified(s, { digest: `sha256:${'0'.repeat(64)}` }), /does not match/);
    await expect(openVerified({ ...s, data: join(dir, 'nope') }, { digest: x.digest })).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
