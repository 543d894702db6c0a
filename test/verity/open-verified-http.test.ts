/**
 * openVerified over HTTP: files, trees and descriptors (written by
 * fsverity-utils) served by a real nginx on loopback, read directly and
 * through a tampering proxy. Every tampering is refused with EIO and never
 * a wrong byte handed out; transient faults (5xx, dropped connections,
 * cut bodies, delays) are retried and give the true bytes; a server that
 * ignores Range still gives them; a file changed mid-read is reported.
 */
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isErrno, openVerified, type OpenVerifiedOptions, type VerifiedFile } from '../../src/index.js';
import { fillRandom } from '../fixtures/generate.mjs';
import { rng } from '../helpers/bytes.js';
import { fsverityFiles, HAVE_FSVERITY, requireOracleInCi, type FsverityFiles } from '../helpers/fsverity.js';
import { HAVE_NGINX, nginxOrSkip, startNginx, type Nginx } from '../helpers/nginx.js';
import { startTamperProxy, type TamperProxy } from '../helpers/tamper-proxy.js';

const dir = mkdtempSync(join(tmpdir(), 'iomap-verity-http-'));
const SIZE = 3 * 1024 * 1024 + 12345;
const bytes = fillRandom(new Uint8Array(SIZE), 77);
let nginx: Nginx | undefined;
let proxy: TamperProxy | undefined;
let fx: FsverityFiles;
const ready = HAVE_NGINX && HAVE_FSVERITY;

beforeAll(async () => {
  requireOracleInCi();
  nginxOrSkip();
  if (!ready) return;
  writeFileSync(join(dir, 'f'), bytes);
  fx = fsverityFiles(join(dir, 'f'));
  // A second version of the same file for the "changed on the server" cases.
  const v2 = Uint8Array.from(bytes);
  v2[SIZE - 5]! ^= 0xff;
  writeFileSync(join(dir, 'f.v2'), v2);
  // nginx's ETag is mtime and size: another mtime makes it another ETag.
  utimesSync(join(dir, 'f.v2'), 1_000_000, 1_000_000);
  nginx = await startNginx(dir);
  proxy = await startTamperProxy(nginx.port);
});

afterAll(async () => {
  await proxy?.stop();
  await nginx?.stop();
  rmSync(dir, { recursive: true, force: true });
});

let keyN = 0;
/** URLs of the three parts, each through a proxy mode (undefined: straight from nginx). */
function urls(modes: { data?: string; tree?: string; descriptor?: string } = {}): { data: string; tree: string; descriptor: string } {
  const k = `k${keyN++}`;
  const u = (mode: string | undefined, name: string) => (mode ? `${proxy!.origin}/t/${mode}/${k}/${name}` : `${nginx!.origin}/${name}`);
  return { data: u(modes.data, 'f'), tree: u(modes.tree, 'f.tree'), descriptor: u(modes.descriptor, 'f.desc') };
}

const FAST: OpenVerifiedOptions = { retryDelay: 5 };

function skip(ctx: { skip: () => void }): boolean {
  if (!ready) ctx.skip();
  return !ready;
}

async function settle(p: Promise<Uint8Array>): Promise<{ ok: Uint8Array } | { err: unknown }> {
  return p.then(
    (ok) => ({ ok }),
    (err: unknown) => ({ err }),
  );
}

/** Random ranges: each read either gives the true bytes or fails (EIO when `mustFail`). */
async function modelReads(f: VerifiedFile, seed: number, n: number, expectOk: boolean): Promise<number> {
  const r = rng(seed);
  let failures = 0;
  for (let i = 0; i < n; i++) {
    const pos = Math.floor(r() * SIZE);
    const len = 1 + Math.floor(r() * (r() < 0.3 ? 400_000 : 10_000));
    const got = await settle(f.read(pos, len));
    if ('ok' in got) {
      expect(Buffer.from(got.ok).equals(Buffer.from(bytes.subarray(pos, pos + len))), `read ${pos}+${len}`).toBe(true);
    } else {
      expect(isErrno(got.err, 'EIO'), String(got.err)).toBe(true);
      failures++;
    }
  }
  if (expectOk) expect(failures).toBe(0);
  return failures;
}

describe('openVerified over nginx', () => {
  it('random verified ranges match the plain bytes; a stream gives the whole file', async (ctx) => {
    if (skip(ctx)) return;
    const f = await openVerified(urls(), { digest: fx.digest });
    expect(f.size).toBe(SIZE);
    await modelReads(f, 1, 60, true);
    const parts: Uint8Array[] = [];
    for await (const c of f.stream({ chunkSize: 256 << 10 }) as unknown as AsyncIterable<Uint8Array>) parts.push(c);
    expect(Buffer.concat(parts).equals(Buffer.from(bytes))).toBe(true);
    await f.close();
  });

  it('coalesces a read into one request and fetches each tree chunk once', async (ctx) => {
    if (skip(ctx)) return;
    let requests = 0;
    const counting: typeof fetch = (input, init) => {
      requests++;
      return fetch(input, init);
    };
    const f = await openVerified(urls(), { digest: fx.digest }, { fetch: counting });
    const afterOpen = requests;
    expect(afterOpen).toBe(4); // the descriptor: open and read; data and tree: open
    await f.read(0, 1 << 20); // one data request, one tree chunk (the whole tree: 3 MiB of data has a 28 KiB tree)
    expect(requests - afterOpen).toBe(2);
    const before = requests;
    for (let i = 0; i < 20; i++) await f.read(((i * 7919) % 700) * 4096, 4096);
    expect(requests - before).toBe(20);
    await f.close();
  });

  it('a server that ignores Range still gives the true bytes', async (ctx) => {
    if (skip(ctx)) return;
    const f = await openVerified(urls({ data: 'norange', tree: 'norange', descriptor: 'norange' }), { digest: fx.digest }, FAST);
    await modelReads(f, 2, 12, true);
    await f.close();
  });

  for (const mode of ['5xx-3', 'drop-2', 'short-2', 'delay-30']) {
    it(`transient faults (${mode}) are retried and give the true bytes`, async (ctx) => {
      if (skip(ctx)) return;
      const f = await openVerified(urls({ data: mode, tree: mode, descriptor: mode }), { digest: fx.digest }, FAST);
      await modelReads(f, 3, 8, true);
      await f.close();
    });
  }

  it('a fault that never ends is EIO after bounded retries (5xx at open, bodies always cut short while reading)', async (ctx) => {
    if (skip(ctx)) return;
    const u = urls({ data: '5xx' });
    const e = await openVerified(u, { digest: fx.digest }, { ...FAST, retries: 2 }).then(() => undefined, (x: unknown) => x);
    expect(isErrno(e, 'EIO') && /after 3 tries: HTTP 503/.test((e as Error).message), String(e)).toBe(true);
    expect(proxy!.counts.get(`5xx/${u.data.split('/')[5]}`)).toBe(3);
    const t = urls({ data: 'truncate' });
    const f = await openVerified(t, { digest: fx.digest }, { ...FAST, retries: 3 });
    const before = proxy!.counts.get(`truncate/${t.data.split('/')[5]}`)!;
    const r = await f.read(0, 100_000).then(() => undefined, (x: unknown) => x);
    expect(isErrno(r, 'EIO') && /after 4 tries/.test((r as Error).message), String(r)).toBe(true);
    expect(proxy!.counts.get(`truncate/${t.data.split('/')[5]}`)! - before).toBe(4);
    await f.close();
  });

  for (const [part, mode] of [
    ['data', `flip-${1 << 20}`],
    ['data', 'reorder'],
    ['data', 'wrongrange'],
    ['tree', 'flip-100'],
    ['tree', 'flip-9000'],
    ['tree', 'reorder'],
    ['tree', 'norange'],
  ] as const) {
    it(`tampering with the ${part} (${mode}) is refused, never a wrong byte`, async (ctx) => {
      if (skip(ctx)) return;
      const f = await openVerified(urls({ [part]: mode }), { digest: fx.digest }, FAST);
      const failures = await modelReads(f, 4, 25, false);
      if (mode !== 'norange') expect(failures).toBeGreaterThan(0);
      else expect(failures).toBe(0);
      await f.close();
    });
  }

  it('a tampered descriptor is refused at open', async (ctx) => {
    if (skip(ctx)) return;
    for (const mode of ['flip-20', 'flip-2', 'reorder', 'truncate']) {
      await expect(openVerified(urls({ descriptor: mode }), { digest: fx.digest }, { ...FAST, retries: 1 })).rejects.toMatchObject({ code: 'EIO' });
    }
  });

  it('the file changing on the server mid-read is reported, never mixed', async (ctx) => {
    if (skip(ctx)) return;
    // New ETag: noticed by If-Range / ETag checks.
    const f = await openVerified(urls({ data: 'change-2' }), { digest: fx.digest }, FAST);
    expect(Buffer.from(await f.read(0, 8192)).equals(Buffer.from(bytes.subarray(0, 8192)))).toBe(true);
    const e = await f.read(SIZE - 10_000, 10_000).catch((x: unknown) => x);
    expect(isErrno(e, 'EIO')).toBe(true);
    expect((e as Error).message).toMatch(/changed on the server/);
    await f.close();
    // Same validators, other bytes: the changed block fails verification.
    const g = await openVerified(urls({ data: 'stealth-2' }), { digest: fx.digest }, FAST);
    expect(Buffer.from(await g.read(0, 8192)).equals(Buffer.from(bytes.subarray(0, 8192)))).toBe(true);
    const e2 = await g.read(SIZE - 10_000, 10_000).catch((x: unknown) => x);
    expect(isErrno(e2, 'EIO')).toBe(true);
    expect((e2 as Error).message).toMatch(new RegExp(`data block ${Math.floor((SIZE - 5) / 4096)} `));
    await modelReads(g, 9, 10, false);
    await g.close();
  });

  it('a missing file is ENOENT; closing aborts what is in flight', async (ctx) => {
    if (skip(ctx)) return;
    await expect(openVerified({ ...urls(), data: `${nginx!.origin}/nope` }, { digest: fx.digest })).rejects.toMatchObject({ code: 'ENOENT' });
    const f = await openVerified(urls({ data: 'delay-300' }), { digest: fx.digest }, FAST);
    const p = f.read(0, 100_000).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 50));
    await f.close();
    expect(isErrno(await p)).toBe(true);
    const ac = new AbortController();
    const h = await openVerified(urls({ data: 'delay-300' }), { digest: fx.digest }, FAST);
    const q = h.read(0, 100_000, { signal: ac.signal }).catch((e: unknown) => e);
    ac.abort(new Error('enough'));
    expect(String(await q)).toMatch(/enough/);
    await h.close();
  });
});
