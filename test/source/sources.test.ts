/**
 * Byte sources: arrays, Blobs, readers, local files and http(s) URLs (Debian's
 * nginx on loopback, and the tampering proxy) give the same bytes as the
 * plain array for random reads; bad readers, closed sources, unknown
 * schemes and the request limit behave as documented.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isErrno, openSource, type ByteSource } from '../../src/index.js';
import { fillRandom } from '../fixtures/generate.mjs';
import { rng } from '../helpers/bytes.js';
import { HAVE_NGINX, nginxOrSkip, startNginx, type Nginx } from '../helpers/nginx.js';
import { startTamperProxy, type TamperProxy } from '../helpers/tamper-proxy.js';

const dir = mkdtempSync(join(tmpdir(), 'iomap-verity-sources-'));
const bytes = fillRandom(new Uint8Array(777_777), 3);
let nginx: Nginx | undefined;
let proxy: TamperProxy | undefined;

beforeAll(async () => {
  writeFileSync(join(dir, 'f'), bytes);
  writeFileSync(join(dir, 'empty'), new Uint8Array(0));
  if (nginxOrSkip()) {
    nginx = await startNginx(dir);
    proxy = await startTamperProxy(nginx.port);
  }
});
afterAll(async () => {
  await proxy?.stop();
  await nginx?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function model(s: ByteSource, seed: number): Promise<void> {
  expect(s.size).toBe(bytes.length);
  const r = rng(seed);
  for (let i = 0; i < 30; i++) {
    const pos = Math.floor(r() * (bytes.length + 50));
    const len = Math.floor(r() * 100_000);
    const got = await s.read(pos, len);
    expect(Buffer.from(got).equals(Buffer.from(bytes.subarray(pos, pos + len))), `${pos}+${len}`).toBe(true);
  }
}

describe('byte sources', () => {
  it('arrays, Blobs, readers and local files read the same bytes', async () => {
    const reader = { size: bytes.length, read: async (o: number, l: number) => bytes.slice(o, o + l) };
    for (const [i, src] of [bytes, new Blob([bytes as BlobPart]), reader, join(dir, 'f')].entries()) {
      const s = await openSource(src);
      await model(s, i);
      await s.close();
    }
  });

  it('refuses what is not a source, and bad readers', async () => {
    await expect(openSource(42 as never)).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(openSource(new URL('ftp://x/y'))).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(openSource(join(dir, 'nope'))).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(openSource(dir)).rejects.toMatchObject({ code: 'EISDIR' });
    const long = await openSource({ read: async (_o: number, l: number) => new Uint8Array(l + 1) });
    await expect(long.read(0, 10)).rejects.toMatchObject({ code: 'EIO' });
    const throws = await openSource({ read: async () => Promise.reject(new Error('disk on fire')) });
    await expect(throws.read(0, 10)).rejects.toThrow(/disk on fire/);
    const f = await openSource(join(dir, 'f'));
    await f.close();
    await expect(f.read(0, 1)).rejects.toMatchObject({ code: 'EBADF' });
    await expect(f.read(-1, 1)).rejects.toMatchObject({ code: 'EINVAL' });
  });

  it('http: ranged reads from nginx, an empty file, a server ignoring Range', async (ctx) => {
    if (!HAVE_NGINX) return ctx.skip();
    const s = await openSource(`${nginx!.origin}/f`);
    await model(s, 9);
    await s.close();
    await expect(s.read(0, 1)).rejects.toMatchObject({ code: 'EBADF' });
    const e = await openSource(`${nginx!.origin}/empty`);
    expect(e.size).toBe(0);
    expect((await e.read(0, 10)).length).toBe(0);
    const n = await openSource(`${proxy!.origin}/t/norange/a/f`);
    await model(n, 10);
    // From the start too: the whole body comes, the range is taken from its head.
    expect(Buffer.from(await n.read(0, 5000)).equals(Buffer.from(bytes.subarray(0, 5000)))).toBe(true);
    await expect(openSource(`${nginx!.origin}/nope`)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('http: at most `concurrency` requests in flight, retries bounded', async (ctx) => {
    if (!HAVE_NGINX) return ctx.skip();
    let inFlight = 0;
    let most = 0;
    const watched: typeof fetch = async (input, init) => {
      inFlight++;
      most = Math.max(most, inFlight);
      try {
        const res = await fetch(input, init);
        await new Promise((r) => setTimeout(r, 5));
        return res;
      } finally {
        inFlight--;
      }
    };
    const s = await openSource(`${nginx!.origin}/f`, { fetch: watched, concurrency: 2 });
    await Promise.all(Array.from({ length: 12 }, (_, i) => s.read(i * 4096, 4096)));
    expect(most).toBe(2);
    const bad = await openSource(`${proxy!.origin}/t/truncate/r/f`, { retries: 1, retryDelay: 1 });
    const err = await bad.read(0, 50_000).catch((x: unknown) => x);
    expect(isErrno(err, 'EIO') && /after 2 tries/.test((err as Error).message), String(err)).toBe(true);
  });
});
