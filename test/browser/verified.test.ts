// openVerified in a real browser (Debian's Chromium, driven by
// playwright-core): a page served by nginx reads verified ranges of a file
// whose tree and descriptor fsverity-utils wrote, from that nginx, and one
// range tampered with by the proxy (on another origin, so the CORS headers
// the README documents are exercised) is refused.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fillRandom } from '../fixtures/generate.mjs';
import { browserBundle } from '../helpers/browser-bundle.js';
import { fsverityFiles, HAVE_FSVERITY, IN_CI, requireOracleInCi } from '../helpers/fsverity.js';
import { HAVE_NGINX, nginxOrSkip, startNginx, type Nginx } from '../helpers/nginx.js';
import { startTamperProxy, type TamperProxy } from '../helpers/tamper-proxy.js';

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
const dir = mkdtempSync(join(tmpdir(), 'iomap-verity-browser-verified-'));
const SIZE = 1_500_007;
const FLIP = 1_000_000;
let nginx: Nginx | undefined;
let proxy: TamperProxy | undefined;
let digest = '';

beforeAll(async () => {
  requireOracleInCi();
  nginxOrSkip();
  if (!CHROMIUM || !HAVE_NGINX || !HAVE_FSVERITY) return;
  writeFileSync(join(dir, 'f'), fillRandom(new Uint8Array(SIZE), 11));
  digest = fsverityFiles(join(dir, 'f')).digest;
  writeFileSync(join(dir, 'index.html'), `<!doctype html><meta charset="utf-8"><script>${await browserBundle()}</script>`);
  nginx = await startNginx(dir);
  proxy = await startTamperProxy(nginx.port);
});

afterAll(async () => {
  await proxy?.stop();
  await nginx?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('openVerified in Chromium', () => {
  it('reads verified ranges from nginx and refuses a tampered one', async (ctx) => {
    if (!CHROMIUM) {
      if (IN_CI) throw new Error('chromium is not installed but CI is set: .ci/run must install it');
      ctx.skip();
      return;
    }
    if (!nginx || !HAVE_FSVERITY) return ctx.skip();
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    try {
      const page = await browser.newPage();
      await page.goto(`${nginx.origin}/index.html`);
      const got = await page.evaluate(
        async ({ digest, tampered, flip }) => {
          type VF = { size: number; read(p: number, l: number): Promise<Uint8Array>; stream(o: object): ReadableStream<Uint8Array>; close(): Promise<void> };
          const IV = (globalThis as unknown as { IomapVerity: { openVerified(s: object, t: object): Promise<VF> } }).IomapVerity;
          const plain = new Uint8Array(await (await fetch('/f')).arrayBuffer());
          const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i]);
          const f = await IV.openVerified({ data: `${location.origin}/f`, tree: `${location.origin}/f.tree`, descriptor: `${location.origin}/f.desc` }, { digest });
          const ranges: [number, number][] = [[0, 1], [4095, 2], [123_456, 300_000], [f.size - 10, 100], [777_777, 4096]];
          const ok = [];
          for (const [p, l] of ranges) ok.push(same(await f.read(p, l), plain.subarray(p, p + l)));
          const parts: Uint8Array[] = [];
          const reader = f.stream({ start: 10, end: 900_000 }).getReader();
          for (let r = await reader.read(); !r.done; r = await reader.read()) parts.push(r.value);
          const streamed = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
          let at = 0;
          for (const p of parts) (streamed.set(p, at), (at += p.length));
          ok.push(same(streamed, plain.subarray(10, 900_000)));
          await f.close();
          const t = await IV.openVerified({ data: tampered, tree: `${location.origin}/f.tree`, descriptor: `${location.origin}/f.desc` }, { digest });
          const before = same(await t.read(0, 65536), plain.subarray(0, 65536));
          const refused = await t.read(flip - 5, 10).then(
            () => 'read succeeded',
            (e: { code?: string; message?: string }) => `${e.code}: ${e.message}`,
          );
          await t.close();
          return { ok, before, refused, hasProcess: typeof (globalThis as { process?: unknown }).process !== 'undefined' };
        },
        { digest, tampered: `${proxy!.origin}/t/flip-${FLIP}/b/f`, flip: FLIP },
      );
      expect(got.hasProcess).toBe(false);
      expect(got.ok).toEqual([true, true, true, true, true, true]);
      expect(got.before).toBe(true);
      expect(got.refused).toMatch(new RegExp(`^EIO: fs-verity: data block ${Math.floor(FLIP / 4096)} `));
    } finally {
      await browser.close();
    }
  });
});
