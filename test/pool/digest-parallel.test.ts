// fsverityDigest of bytes in memory on the worker pool: the same digest and
// tree as fsverity-utils and as the one-thread path, for a Uint8Array and for
// streams cut anywhere, with zero runs and a partial last block.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fsverityDigest } from '../../src/index.js';
import { leafHashPool } from '../../src/verity/pool.js';
import { fsverity, HAVE_FSVERITY, requireOracleInCi } from '../helpers/fsverity.js';
import { itWithTool } from '../helpers/tools.js';

const dir = mkdtempSync(join(tmpdir(), 'iomap-verity-digest-parallel-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** 13 MiB + 1234 bytes: random, with an all-zero 5 MiB stretch (whole jobs of zeros) in the middle. */
function sample(): Uint8Array {
  const data = new Uint8Array(13 * 1024 * 1024 + 1234);
  let x = 0x2545f491;
  for (let i = 0; i < data.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    data[i] = x & 0xff;
  }
  data.fill(0, 4 << 20, 9 << 20);
  return data;
}

function* pieces(data: Uint8Array, size: number): Generator<Uint8Array> {
  for (let at = 0; at < data.length; at += size) yield data.subarray(at, at + size);
}

function streamOf(chunks: Iterable<Uint8Array>): ReadableStream<Uint8Array> {
  const it = chunks[Symbol.iterator]();
  return new ReadableStream<Uint8Array>({
    pull(c) {
      const n = it.next();
      if (n.done) c.close();
      else c.enqueue(n.value);
    },
  });
}

describe('fsverityDigest on worker threads', () => {
  itWithTool('fsverity', 'agrees with fsverity-utils and the one-thread path, whole or streamed', async () => {
    requireOracleInCi();
    process.env.IOMAP_VERITY_THREADS = '2';
    const pool = (await leafHashPool())!;
    expect(pool).toBeDefined();
    const data = sample();
    const salt = new Uint8Array([0xab, 0xcd]);
    const file = join(dir, 'sample');
    writeFileSync(file, data);
    const want = fsverity(['digest', file, '--salt=abcd', `--out-merkle-tree=${file}.tree`]).stdout.split(' ')[0];
    const oneThread = await fsverityDigest(data, { salt, parallel: false, merkleTree: true });
    expect(oneThread.formatted).toBe(want);
    for (const [what, input] of [
      ['one Uint8Array', data],
      ['chunks of 1 MiB + 7', pieces(data, (1 << 20) + 7)],
      ['chunks of 4095', pieces(data, 4095)],
      ['a ReadableStream of 3 MiB chunks', streamOf(pieces(data, 3 << 20))],
    ] as const) {
      const before = pool.jobsDone;
      const got = await fsverityDigest(input as Uint8Array, { salt, parallel: true, merkleTree: true });
      expect(got.formatted, what).toBe(want);
      expect(Buffer.from(got.merkleTree!).equals(Buffer.from(oneThread.merkleTree!)), what).toBe(true);
      // 13 MiB in 4 MiB jobs: the workers did the hashing
      expect(pool.jobsDone - before, what).toBeGreaterThanOrEqual(3);
    }
  });

  it('stays on one thread when told to, and gives the same digest on the workers', async () => {
    process.env.IOMAP_VERITY_THREADS = '2';
    const pool = (await leafHashPool())!;
    const data = sample().subarray(0, 9 << 20);
    const before = pool.jobsDone;
    const a = await fsverityDigest(data, { parallel: false });
    const b = await fsverityDigest(data, { hashAlgorithm: 'sha512', parallel: false });
    expect(pool.jobsDone).toBe(before);
    expect(a.formatted).toMatch(/^sha256:/);
    expect(b.formatted).toMatch(/^sha512:/);
    const c = await fsverityDigest(data, { parallel: true });
    expect(c.formatted).toBe(a.formatted);
    expect(pool.jobsDone).toBeGreaterThan(before);
    const mid = pool.jobsDone;
    const d = await fsverityDigest(data, { hashAlgorithm: 'sha512', parallel: true });
    expect(d.formatted).toBe(b.formatted);
    expect(pool.jobsDone).toBeGreaterThan(mid);
  });

  it('SHA-512 on the workers: the same digest and tree as fsverity-utils and the one-thread path, salted, with zero blocks', async () => {
    requireOracleInCi();
    process.env.IOMAP_VERITY_THREADS = '2';
    const pool = (await leafHashPool())!;
    const data = new Uint8Array(sample().subarray(0, (9 << 20) + 777));
    data.fill(0, 1 << 20, 6 << 20); // whole zero jobs and zero blocks inside a job
    const salt = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const opts = { hashAlgorithm: 'sha512' as const, salt, merkleTree: true };
    const oneThread = await fsverityDigest(data, { ...opts, parallel: false });
    const before = pool.jobsDone;
    const got = await fsverityDigest(data, { ...opts, parallel: true });
    expect(pool.jobsDone - before).toBeGreaterThanOrEqual(2);
    expect(got.formatted).toBe(oneThread.formatted);
    expect(Buffer.from(got.merkleTree!).equals(Buffer.from(oneThread.merkleTree!))).toBe(true);
    if (HAVE_FSVERITY) {
      const path = join(dir, 'sha512-salted');
      writeFileSync(path, data);
      const out = fsverity(['digest', path, '--hash-alg=sha512', '--salt=010203040506070809']).stdout;
      expect(out.split(' ')[0]).toBe(got.formatted);
    }
  });
});
