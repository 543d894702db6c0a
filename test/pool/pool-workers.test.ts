/**
 * The leaf-hashing worker pool (src/verity/pool.ts): digests of file ranges
 * hashed on worker threads equal node:crypto's per-block SHA-256 (salted as
 * fs-verity salts), all-zero blocks are counted and their digests omitted,
 * and a file that shrinks or a closed pool gives an IomapVerityError.
 */
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IomapVerityError } from '../../src/errors.js';
import { LeafHashPool, leafHashPool, POOL_CHUNK_BYTES, startedLeafHashPool } from '../../src/verity/pool.js';

function referenceDigests(data: Uint8Array, bs: number, salt: Uint8Array): Buffer {
  const padded = Buffer.alloc(salt.length ? 64 : 0);
  padded.set(salt);
  const n = data.length / bs;
  const out = Buffer.alloc(n * 32);
  for (let i = 0; i < n; i++) {
    createHash('sha256').update(padded).update(data.subarray(i * bs, (i + 1) * bs)).digest().copy(out, i * 32);
  }
  return out;
}

describe('LeafHashPool', () => {
  const dir = mkdtempSync(join(tmpdir(), 'iomap-verity-pool-'));
  let pool: LeafHashPool;
  beforeAll(async () => {
    pool = await LeafHashPool.start(2);
  });
  afterAll(async () => {
    await pool.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('hashes ranges on workers exactly as node:crypto does, in any order of completion', async () => {
    const bs = 4096;
    const blocks = 3 * (POOL_CHUNK_BYTES / bs) + 7;
    const data = new Uint8Array(blocks * bs);
    // Random blocks with zero blocks sprinkled in, and a whole zero chunk.
    for (let b = 0; b < blocks; b++) {
      if (b % 5 !== 2 && (b < 1024 || b >= 2048)) data.set(randomBytes(bs), b * bs);
    }
    const path = join(dir, 'mixed');
    writeFileSync(path, data);
    const fd = openSync(path, 'r');
    try {
      for (const salt of [new Uint8Array(0), new Uint8Array(randomBytes(19))]) {
        const per = POOL_CHUNK_BYTES / bs;
        const jobs: Promise<{ blocks: number; zeros: number; digests?: Uint8Array }>[] = [];
        for (let b = 0; b < blocks; b += per) jobs.push(pool.hashFileBlocks(fd, b * bs, Math.min(per, blocks - b), bs, salt));
        const runs = await Promise.all(jobs);
        const want = referenceDigests(data, bs, salt);
        const zeroDigest = referenceDigests(new Uint8Array(bs), bs, salt);
        let at = 0;
        for (const run of runs) {
          if (run.digests) {
            expect(Buffer.from(run.digests).equals(want.subarray(at * 32, (at + run.blocks) * 32))).toBe(true);
          } else {
            expect(run.zeros).toBe(run.blocks);
            for (let i = 0; i < run.blocks; i++) expect(want.subarray((at + i) * 32, (at + i + 1) * 32).equals(zeroDigest)).toBe(true);
          }
          let zeros = 0;
          for (let i = 0; i < run.blocks; i++) if (want.subarray((at + i) * 32, (at + i + 1) * 32).equals(zeroDigest)) zeros++;
          expect(run.zeros).toBe(zeros);
          at += run.blocks;
        }
        expect(at).toBe(blocks);
        expect(runs[1]!.digests).toBeUndefined(); // blocks 1024..2047 are all zero
      }
    } finally {
      closeSync(fd);
    }
  });

  it('takes every pooled block size', async () => {
    const data = new Uint8Array(randomBytes(256 * 1024));
    const path = join(dir, 'sizes');
    writeFileSync(path, data);
    const fd = openSync(path, 'r');
    try {
      for (const bs of [1024, 2048, 8192, 65536]) {
        const run = await pool.hashFileBlocks(fd, 0, data.length / bs, bs, new Uint8Array([1, 2, 3]));
        expect(Buffer.from(run.digests!).equals(referenceDigests(data, bs, new Uint8Array([1, 2, 3])))).toBe(true);
      }
    } finally {
      closeSync(fd);
    }
  });

  it('fails with EIO when the file is shorter than the range, and refuses bad jobs with EINVAL', async () => {
    const path = join(dir, 'short');
    writeFileSync(path, new Uint8Array(10_000));
    const fd = openSync(path, 'r');
    try {
      const e = await pool.hashFileBlocks(fd, 0, 4, 4096, new Uint8Array(0)).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(IomapVerityError);
      expect((e as IomapVerityError).code).toBe('EIO');
      expect((e as Error).message).toMatch(/ended at 10000/);
      await expect(pool.hashFileBlocks(fd, 0, 1, 512, new Uint8Array(0))).rejects.toMatchObject({ code: 'EINVAL' });
      await expect(pool.hashFileBlocks(fd, 0, POOL_CHUNK_BYTES / 4096 + 1, 4096, new Uint8Array(0))).rejects.toMatchObject({ code: 'EINVAL' });
      // The pool survives a failed job.
      const ok = await pool.hashFileBlocks(fd, 0, 2, 4096, new Uint8Array(0));
      expect(ok.zeros).toBe(2);
    } finally {
      closeSync(fd);
    }
  });

  it('refuses work once closed', async () => {
    const p = await LeafHashPool.start(1);
    await p.close();
    await expect(p.hashFileBlocks(0, 0, 1, 4096, new Uint8Array(0))).rejects.toMatchObject({ code: 'EBADF' });
  });

  it('a worker that dies fails the outstanding jobs with EIO, and the shared pool is replaced', async () => {
    process.env.IOMAP_VERITY_THREADS = '2';
    const first = (await leafHashPool())!;
    expect(startedLeafHashPool()).toBe(first);
    await first.ready();
    const path = join(dir, 'dies');
    writeFileSync(path, new Uint8Array(randomBytes(POOL_CHUNK_BYTES * 2)));
    const fd = openSync(path, 'r');
    try {
      const job = first.hashFileBlocks(fd, 0, 1024, 4096, new Uint8Array(0)).catch((e: unknown) => e);
      // The pool's own worker, killed from outside as a crash would.
      await (first as unknown as { slots: { worker: { terminate(): Promise<number> } }[] }).slots[0]!.worker.terminate();
      const e = await job;
      // The job either finished before the worker died or failed with EIO; a later one must fail.
      if (e instanceof Error) expect(e).toMatchObject({ code: 'EIO' });
      await expect(first.hashFileBlocks(fd, 0, 1, 4096, new Uint8Array(0))).rejects.toMatchObject({ code: 'EIO' });
      expect(first.usable).toBe(false);
      expect(startedLeafHashPool()).toBeUndefined();
      const second = (await leafHashPool())!;
      expect(second).not.toBe(first);
      const run = await second.hashFileBlocks(fd, 0, 2, 4096, new Uint8Array(0));
      expect(run.digests!.length).toBe(64);
      await second.close();
    } finally {
      closeSync(fd);
    }
  });
});
