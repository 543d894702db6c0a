// The package in a real browser (Debian's Chromium, driven by
// playwright-core): bundled for the browser, served from localhost, it
// digests a large buffer on Web Workers and agrees with fsverity-utils.
// `.ci/run` installs chromium; in CI its absence is a failure, not a skip.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { browserBundle } from '../helpers/browser-bundle.js';
import { fsverity, HAVE_FSVERITY, requireOracleInCi } from '../helpers/fsverity.js';
import { skipWithoutTool, tool } from '../helpers/tools.js';

const CHROMIUM = tool('chromium');
const dir = mkdtempSync(join(tmpdir(), 'iomap-verity-browser-'));
let server: Server | undefined;
let origin = '';

/** The same bytes here and in the page: xorshift32 from a seed, with a run of zeros. */
const SAMPLE = `function sample(n) {
  const data = new Uint8Array(n);
  let x = 0x9e3779b9 | 0;
  for (let i = 0; i < n; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; data[i] = x & 255; }
  data.fill(0, 3 << 20, 7 << 20);
  return data;
}`;
const SIZE = 12 * 1024 * 1024 + 777;

beforeAll(async () => {
  if (!CHROMIUM) return;

  const page = `<!doctype html><meta charset="utf-8"><script>${await browserBundle()}</script><script>${SAMPLE}</script>`;
  server = createServer((_req, res) => {
    res.setHeader('content-type', 'text/html');
    res.end(page);
  });
  await new Promise<void>((ok) => server!.listen(0, '127.0.0.1', ok));
  const addr = server.address();
  origin = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/`;
});

afterAll(async () => {
  await new Promise<void>((ok) => (server ? server.close(() => ok()) : ok()));
  rmSync(dir, { recursive: true, force: true });
});

describe('in Chromium', () => {
  it('fsverityDigest hashes on Web Workers (SHA-256 and SHA-512) and agrees with fsverity-utils', async (ctx) => {
    const executablePath = skipWithoutTool(ctx, 'chromium');
    requireOracleInCi();
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] });
    try {
      const page = await browser.newPage();
      await page.goto(origin);
      const got = await page.evaluate(async (size) => {
        // Count the workers the page starts and the jobs they are given (the
        // real Worker runs; this only watches it).
        const W = globalThis.Worker;
        let workers = 0;
        let jobs = 0;
        globalThis.Worker = class extends W {
          constructor(url: string | URL, opts?: WorkerOptions) {
            super(url, opts);
            workers++;
          }
          override postMessage(m: unknown, options?: Transferable[] | StructuredSerializeOptions) {
            if (m && typeof m === 'object' && 'blocks' in m) jobs++;
            super.postMessage(m, options as Transferable[]);
          }
        } as typeof Worker;
        const IV = (globalThis as unknown as { IomapVerity: { fsverityDigest: (d: Uint8Array, o: object) => Promise<{ formatted: string }> } }).IomapVerity;
        const data = (globalThis as unknown as { sample: (n: number) => Uint8Array }).sample(size);
        const parallel = await IV.fsverityDigest(data, { parallel: true });
        const single = await IV.fsverityDigest(data, { parallel: false });
        const jobs256 = jobs;
        const parallel512 = await IV.fsverityDigest(data, { parallel: true, hashAlgorithm: 'sha512' });
        const single512 = await IV.fsverityDigest(data, { parallel: false, hashAlgorithm: 'sha512' });
        return { parallel: parallel.formatted, single: single.formatted, parallel512: parallel512.formatted, single512: single512.formatted, workers, jobs: jobs256, jobs512: jobs - jobs256, hasProcess: typeof (globalThis as { process?: unknown }).process !== 'undefined', cores: navigator.hardwareConcurrency };
      }, SIZE);
      expect(got.hasProcess).toBe(false);
      expect(got.parallel).toBe(got.single);
      expect(got.parallel512).toBe(got.single512);
      expect(got.parallel512).toMatch(/^sha512:/);
      if (got.cores >= 2) {
        expect(got.workers).toBeGreaterThanOrEqual(2);
        expect(got.jobs).toBeGreaterThanOrEqual(3);
        expect(got.jobs512).toBeGreaterThanOrEqual(3);
      }
      if (HAVE_FSVERITY) {
        const file = join(dir, 'sample');
        const sample = new Function(`${SAMPLE}; return sample;`)() as (n: number) => Uint8Array;
        writeFileSync(file, sample(SIZE));
        expect(got.parallel).toBe(fsverity(['digest', file]).stdout.split(' ')[0]);
        expect(got.parallel512).toBe(fsverity(['digest', file, '--hash-alg=sha512']).stdout.split(' ')[0]);
      }
    } finally {
      await browser.close();
    }
  });
});
