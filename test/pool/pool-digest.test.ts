/**
 * The parallel path of fsverityDigestFile (worker pool, files of
 * PARALLEL_THRESHOLD bytes and more) gives the same digest, descriptor and
 * Merkle tree as the one-thread path and as `fsverity digest`, on files
 * around the threshold, odd sizes, block sizes and salts, dense and with
 * all-zero regions; and the pool really did the work.
 */
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { toHex } from '../../src/verity/descriptor.js';
import { fsverityDigestFile, PARALLEL_THRESHOLD } from '../../src/verity/digest-file.js';
import { leafHashPool, type LeafHashPool } from '../../src/verity/pool.js';
import { fillRandom } from '../fixtures/generate.mjs';
import { fsverity, HAVE_FSVERITY, requireOracleInCi } from '../helpers/fsverity.js';

const MiB = 1 << 20;

/** Random bytes with a 4 MiB all-zero region (a whole pool job) and zero blocks sprinkled. */
function makeInput(size: number, seed: number): Uint8Array {
  const data = fillRandom(new Uint8Array(size), seed);
  if (size > 9 * MiB) data.fill(0, 4 * MiB, 8 * MiB);
  for (let off = 8 * MiB + 4096 * 3; off < size; off += 4096 * 17) data.fill(0, off, Math.min(size, off + 4096 * 2));
  return data;
}

describe('fsverityDigestFile on the worker pool', () => {
  const dir = mkdtempSync(join(tmpdir(), 'iomap-verity-perf-digest-'));
  let pool: LeafHashPool;
  beforeAll(async () => {
    // Two workers even on a one-core machine, so the parallel path is what runs.
    process.env.IOMAP_VERITY_THREADS = '2';
    pool = (await leafHashPool())!;
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('has the oracle when CI is set', () => requireOracleInCi());

  it('starts a pool when asked for two threads', () => {
    expect(pool).toBeDefined();
    expect(pool.threads).toBe(2);
  });

  const cases: { size: number; blockSize?: number; salt?: string }[] = [
    { size: PARALLEL_THRESHOLD - 1 },
    { size: PARALLEL_THRESHOLD },
    { size: PARALLEL_THRESHOLD + 1 },
    { size: PARALLEL_THRESHOLD + 4 * MiB + 4095 },
    { size: 13 * MiB + 777, salt: '0011223344556677' },
    { size: 10 * MiB + 1, blockSize: 1024 },
    { size: 9 * MiB + 65535, blockSize: 65536, salt: 'ff' },
  ];
  for (const c of cases) {
    const bs = c.blockSize ?? 4096;
    it(`size ${c.size}, block size ${bs}${c.salt ? `, salt ${c.salt}` : ''}`, async () => {
      const path = join(dir, `in-${c.size}-${bs}`);
      writeFileSync(path, makeInput(c.size, c.size));
      const salt = c.salt ? Buffer.from(c.salt, 'hex') : undefined;
      const opts = { blockSize: bs, salt: salt && new Uint8Array(salt), merkleTree: true };
      const before = pool.jobsDone;
      const par = await fsverityDigestFile(path, opts);
      const jobs = pool.jobsDone - before;
      const ser = await fsverityDigestFile(path, { ...opts, parallel: false });
      expect(pool.jobsDone - before).toBe(jobs); // parallel: false never touches the pool
      if (c.size >= PARALLEL_THRESHOLD) expect(jobs).toBe(Math.ceil(Math.floor(c.size / bs) / ((4 * MiB) / bs)));
      else expect(jobs).toBe(0);
      expect(par.formatted).toBe(ser.formatted);
      expect(toHex(par.descriptor)).toBe(toHex(ser.descriptor));
      expect(Buffer.from(par.merkleTree!).equals(Buffer.from(ser.merkleTree!))).toBe(true);
      if (HAVE_FSVERITY) {
        const tree = join(dir, 'tree');
        const desc = join(dir, 'desc');
        const args = ['digest', path, `--block-size=${bs}`, `--out-merkle-tree=${tree}`, `--out-descriptor=${desc}`];
        if (c.salt) args.push(`--salt=${c.salt}`);
        const r = fsverity(args);
        expect(r.status).toBe(0);
        expect(r.stdout.split(' ')[0]).toBe(par.formatted);
        expect(readFileSync(desc).equals(Buffer.from(par.descriptor))).toBe(true);
        expect(readFileSync(tree).equals(Buffer.from(par.merkleTree!))).toBe(true);
      }
    });
  }

  it('streams the tree to treeSink and reports progress to the end on the parallel path', async () => {
    const size = PARALLEL_THRESHOLD + 12345;
    const path = join(dir, 'sink');
    writeFileSync(path, makeInput(size, 7));
    const want = await fsverityDigestFile(path, { merkleTree: true, parallel: false });
    const tree = new Uint8Array(want.merkleTree!.length);
    const progress: number[] = [];
    const got = await fsverityDigestFile(path, {
      treeSink: (offset, block) => tree.set(block, offset),
      onProgress: (done, total) => {
        expect(total).toBe(size);
        progress.push(done);
      },
    });
    expect(got.formatted).toBe(want.formatted);
    expect(Buffer.from(tree).equals(Buffer.from(want.merkleTree!))).toBe(true);
    expect(progress[progress.length - 1]).toBe(size);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
  });

  it('an all-zero file above the threshold: every job comes back as a zero run', async () => {
    const path = join(dir, 'zeros');
    writeFileSync(path, new Uint8Array(PARALLEL_THRESHOLD + 3 * 4096));
    const par = await fsverityDigestFile(path);
    const ser = await fsverityDigestFile(path, { parallel: false });
    expect(par.formatted).toBe(ser.formatted);
    if (HAVE_FSVERITY) expect(fsverity(['digest', path]).stdout.split(' ')[0]).toBe(par.formatted);
  });

  it('sha512 goes to the pool and block sizes outside the pool take the one-thread path', async () => {
    const path = join(dir, 'sha512');
    writeFileSync(path, makeInput(PARALLEL_THRESHOLD + 100, 3));
    const before = pool.jobsDone;
    const b = await fsverityDigestFile(path, { blockSize: 512 });
    expect(pool.jobsDone).toBe(before);
    const a = await fsverityDigestFile(path, { hashAlgorithm: 'sha512' });
    expect(pool.jobsDone).toBeGreaterThan(before);
    const one = await fsverityDigestFile(path, { hashAlgorithm: 'sha512', parallel: false });
    expect(a.formatted).toBe(one.formatted);
    if (HAVE_FSVERITY) {
      expect(fsverity(['digest', path, '--hash-alg=sha512']).stdout.split(' ')[0]).toBe(a.formatted);
      expect(fsverity(['digest', path, '--block-size=512']).stdout.split(' ')[0]).toBe(b.formatted);
    }
  });

  it('digests of several files at once share the pool and stay separate', async () => {
    const sizes = [PARALLEL_THRESHOLD + 1, PARALLEL_THRESHOLD * 2 - 5, PARALLEL_THRESHOLD + 4 * MiB];
    const paths = sizes.map((size, i) => {
      const path = join(dir, `concurrent-${i}`);
      writeFileSync(path, makeInput(size, 100 + i));
      return path;
    });
    const before = pool.jobsDone;
    const together = await Promise.all(paths.map((p) => fsverityDigestFile(p)));
    expect(pool.jobsDone).toBeGreaterThan(before);
    for (let i = 0; i < paths.length; i++) {
      expect(together[i]!.formatted).toBe((await fsverityDigestFile(paths[i]!, { parallel: false })).formatted);
    }
  });

  for (const parallel of [true, false]) {
    it(`a file that shrinks while being read is EIO naming it (${parallel ? 'pool' : 'one thread'})`, async () => {
      const path = join(dir, `shrinks-${parallel}`);
      writeFileSync(path, makeInput(64 * MiB, 5));
      let cut = false;
      const e = await fsverityDigestFile(path, {
        parallel,
        onProgress: () => {
          // After the first 4 MiB: jobs for 32 MiB on are submitted later still.
          if (!cut) truncateSync(path, 30 * MiB);
          cut = true;
        },
      }).catch((x: unknown) => x);
      expect(e).toMatchObject({ code: 'EIO' });
      expect((e as Error).message).toMatch(/shrank while being read: ended at \d+ of 67108864 bytes/);
      expect((e as Error).message).toContain(path);
    });
  }

  it('a cold pool: this thread hashes while the workers boot, then hands over (files of 64 MiB and more)', async () => {
    const size = 64 * MiB + 4096 * 5 + 3;
    const path = join(dir, 'cold');
    writeFileSync(path, makeInput(size, 11));
    const want = await fsverityDigestFile(path, { merkleTree: true, parallel: false });
    // Fresh module instances: a process whose pool has not been started yet.
    vi.resetModules();
    const fresh = await import('../../src/verity/digest-file.js');
    const freshPool = await import('../../src/verity/pool.js');
    expect(freshPool.startedLeafHashPool()).toBeUndefined();
    const got = await fresh.fsverityDigestFile(path, { merkleTree: true });
    const started = freshPool.startedLeafHashPool()!;
    try {
      expect(got.formatted).toBe(want.formatted);
      expect(Buffer.from(got.merkleTree!).equals(Buffer.from(want.merkleTree!))).toBe(true);
      // Booting takes tens of milliseconds, one 4 MiB read and hash a few:
      // this thread always takes the first part of the file.
      expect(started.jobsDone).toBeLessThan(16);
    } finally {
      await started.close();
    }
    if (HAVE_FSVERITY) expect(fsverity(['digest', path]).stdout.split(' ')[0]).toBe(got.formatted);
  });
});
