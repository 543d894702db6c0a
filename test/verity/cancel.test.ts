/**
 * Cancellation and progress of the standalone digests: an aborted
 * fsverityDigest or fsverityDigestFile rejects with ECANCELED and returns
 * nothing, on one thread and on the worker pool, and the pool still gives
 * right answers afterwards; onProgress counts up to the size.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fsverityDigest, fsverityDigestFile, isErrno } from '../../src/index.js';
import { randomBytes } from '../helpers/bytes.js';

const dir = mkdtempSync(join(tmpdir(), 'iomap-verity-cancel-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const data = randomBytes(24 << 20, 77);
const file = join(dir, 'data');
writeFileSync(file, data);

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (e) {
    return isErrno(e) ? e.code : `uncoded: ${String(e)}`;
  }
}

describe('cancellation', () => {
  const want = fsverityDigest(data, { parallel: false });

  for (const parallel of [false, true]) {
    it(`fsverityDigest of bytes stops with ECANCELED mid-way (parallel: ${parallel}), then digests right again`, async () => {
      const ac = new AbortController();
      const seen: number[] = [];
      const p = fsverityDigest(data, {
        parallel,
        signal: ac.signal,
        onProgress: (done, total) => {
          seen.push(done);
          expect(total).toBe(data.length);
          if (done >= 8 << 20) ac.abort(new Error('user pressed stop'));
        },
      });
      await expect(p).rejects.toMatchObject({ code: 'ECANCELED', message: expect.stringContaining('user pressed stop') });
      expect(seen.at(-1)!).toBeLessThan(data.length);
      expect((await fsverityDigest(data, { parallel })).formatted).toBe((await want).formatted);
    });

    it(`fsverityDigestFile stops with ECANCELED mid-way (parallel: ${parallel}), then digests right again`, async () => {
      const ac = new AbortController();
      const p = fsverityDigestFile(file, {
        parallel,
        signal: ac.signal,
        onProgress: (done) => {
          if (done >= 4 << 20) ac.abort();
        },
      });
      expect(await codeOf(p)).toBe('ECANCELED');
      expect((await fsverityDigestFile(file, { parallel })).formatted).toBe((await want).formatted);
    });
  }

  it('an already aborted signal refuses at once; a stream input is cancelled too', async () => {
    const ac = new AbortController();
    ac.abort();
    expect(await codeOf(fsverityDigest(data, { signal: ac.signal }))).toBe('ECANCELED');
    expect(await codeOf(fsverityDigestFile(file, { signal: ac.signal }))).toBe('ECANCELED');
    const live = new AbortController();
    let pulled = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(c) {
        if (++pulled === 3) live.abort();
        c.enqueue(data.subarray((pulled - 1) << 20, pulled << 20));
      },
    });
    expect(await codeOf(fsverityDigest(stream, { signal: live.signal }))).toBe('ECANCELED');
  });

  it('progress on a stream counts its bytes, with no total; the digest is unchanged by watching', async () => {
    const seen: Array<[number, number | undefined]> = [];
    async function* chunks() {
      for (let i = 0; i < data.length; i += 3 << 20) yield data.subarray(i, i + (3 << 20));
    }
    const r = await fsverityDigest(chunks(), { onProgress: (d, t) => seen.push([d, t]) });
    expect(r.formatted).toBe((await want).formatted);
    expect(seen.at(-1)).toEqual([data.length, undefined]);
    expect(seen.every(([d], i) => i === 0 || d > seen[i - 1]![0])).toBe(true);
  });
});
