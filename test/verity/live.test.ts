/**
 * Live differential test against the real `fsverity digest`: random files
 * (random, zero and sparse contents, sizes near block boundaries and not),
 * random parameters; digest, tree and descriptor must be identical. Also:
 * the three input kinds give the same result however the data is split.
 * IOMAP_VERITY_SOAK=1 runs many more rounds.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { fsverityDigest, type FsverityDigestOptions } from '../../src/verity/digest.js';
import { fsverityDigestFile } from '../../src/verity/digest-file.js';
import { toHex } from '../../src/verity/descriptor.js';
import { fillRandom, generate } from '../fixtures/generate.mjs';
import { fsverity, requireOracleInCi } from '../helpers/fsverity.js';
import { itWithTool } from '../helpers/tools.js';

const SOAK = process.env.IOMAP_VERITY_SOAK === '1';

const paramsArb = fc.record({
  alg: fc.constantFrom('sha256' as const, 'sha512' as const),
  logBs: fc.integer({ min: 6, max: 16 }),
  salt: fc.uint8Array({ minLength: 0, maxLength: 32 }),
});

/** Sizes that hug block boundaries as often as they wander. */
const sizeArb = (bs: number) =>
  fc.oneof(
    fc.integer({ min: 0, max: 300_000 }),
    fc.tuple(fc.integer({ min: 0, max: 70 }), fc.integer({ min: -1, max: 1 })).map(([k, d]) => Math.max(0, k * bs + d)),
  );

describe('live differential against fsverity digest', () => {
  it('has the oracle when CI is set', () => requireOracleInCi());

  const dir = mkdtempSync(join(tmpdir(), 'iomap-verity-live-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  itWithTool('fsverity', 'random files, random parameters', async () => {
    await fc.assert(
      fc.asyncProperty(
        paramsArb.chain((p) => {
          const bs = 2 ** Math.max(p.logBs, p.alg === 'sha512' ? 7 : 6);
          return fc.record({
            p: fc.constant({ ...p, bs }),
            size: sizeArb(bs),
            pattern: fc.constantFrom('random' as const, 'zero' as const, 'sparse' as const),
            seed: fc.integer({ min: 1, max: 2 ** 31 }),
            stripe: fc.integer({ min: 1, max: 20_000 }),
          });
        }),
        async ({ p, size, pattern, seed, stripe }) => {
          const path = join(dir, 'in');
          writeFileSync(path, generate({ pattern, size, seed, stripe }));
          const saltHex = toHex(p.salt);
          const theirs = fsverity([
            'digest', path, `--hash-alg=${p.alg}`, `--block-size=${p.bs}`, `--salt=${saltHex}`,
            `--out-merkle-tree=${join(dir, 'tree')}`, `--out-descriptor=${join(dir, 'desc')}`,
          ]);
          expect(theirs.status).toBe(0);
          const r = await fsverityDigestFile(path, { hashAlgorithm: p.alg, blockSize: p.bs, salt: p.salt, merkleTree: true });
          expect(`${r.formatted} ${path}\n`).toBe(theirs.stdout);
          expect(Buffer.compare(r.merkleTree!, readFileSync(join(dir, 'tree')))).toBe(0);
          expect(Buffer.compare(r.descriptor, readFileSync(join(dir, 'desc')))).toBe(0);
        },
      ),
      { numRuns: SOAK ? 2000 : 100 },
    );
  });
});

/** Split `data` into chunks at random points (empty chunks included). */
function splitAt(data: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (data.length + 1)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let at = 0;
  for (const p of points) {
    out.push(data.subarray(at, p));
    at = p;
  }
  out.push(data.subarray(at));
  return out;
}

async function* asAsync(chunks: Uint8Array[]): AsyncGenerator<Uint8Array> {
  for (const c of chunks) yield c;
}

function asStream(chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream<Uint8Array>({
    pull(ctl) {
      if (i < chunks.length) ctl.enqueue(chunks[i++]!);
      else ctl.close();
    },
  });
}

describe('input kinds', () => {
  it('Uint8Array, AsyncIterable and ReadableStream agree for any split', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 40_000 }),
        fc.array(fc.nat(), { maxLength: 12 }),
        fc.constantFrom<FsverityDigestOptions>(
          { blockSize: 64 },
          { blockSize: 1024, hashAlgorithm: 'sha512', salt: new Uint8Array([1]) },
          {},
        ),
        async (size, cuts, opts) => {
          const data = fillRandom(new Uint8Array(size), size + 1);
          const o = { ...opts, merkleTree: true };
          const a = await fsverityDigest(data, o);
          const b = await fsverityDigest(asAsync(splitAt(data, cuts)), o);
          const c = await fsverityDigest(asStream(splitAt(data, cuts)), o);
          const d = await fsverityDigest(splitAt(data, cuts), o);
          for (const x of [b, c, d]) {
            expect(x.formatted).toBe(a.formatted);
            expect(toHex(x.rootHash)).toBe(toHex(a.rootHash));
            expect(Buffer.compare(x.merkleTree!, a.merkleTree!)).toBe(0);
            expect(Buffer.compare(x.descriptor, a.descriptor)).toBe(0);
          }
          expect(a.dataSize).toBe(size);
        },
      ),
      { numRuns: SOAK ? 1000 : 60 },
    );
  });

  it('refuses what is not bytes', async () => {
    await expect(fsverityDigest('abc' as unknown as Uint8Array)).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(fsverityDigest(asAsync([new Uint8Array(1), [1, 2] as unknown as Uint8Array]))).rejects.toMatchObject({
      code: 'EINVAL',
      message: expect.stringMatching(/expected Uint8Array chunks/),
    });
    await expect(fsverityDigest(new Uint8Array(1), { blockSize: 100 })).rejects.toMatchObject({ code: 'EINVAL' });
  });

  it('cancels a ReadableStream it stops reading', async () => {
    let cancelled = false;
    const stream = new ReadableStream<Uint8Array>({
      start(ctl) {
        ctl.enqueue(new Uint8Array(10));
        ctl.enqueue('oops' as unknown as Uint8Array);
      },
      cancel() {
        cancelled = true;
      },
    });
    await expect(fsverityDigest(stream)).rejects.toMatchObject({ code: 'EINVAL' });
    expect(cancelled).toBe(true);
  });

  it('returns the tree only when asked', async () => {
    const r = await fsverityDigest(new Uint8Array(10000));
    expect(r.merkleTree).toBeUndefined();
    expect(r.algorithm).toBe('sha256');
    expect(r.digest.length).toBe(32);
    expect(r.formatted).toBe(`sha256:${toHex(r.digest)}`);
  });
});
