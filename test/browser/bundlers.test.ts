/**
 * The package as a browser app's dependency: a consumer that imports
 * 'iomap-verity' is built by plain esbuild (`--platform=browser`), Vite and
 * webpack 5, each with no configuration of ours beyond the entry, and must
 * build without an error or a warning and without a `node:` import left in
 * the output (the package's `#platform` import map gives bundlers the
 * browser side). Each output then runs in Debian's Chromium on a page whose
 * Content-Security-Policy refuses blob: workers: Vite and webpack emit the
 * pool's worker file (pool.worker.js, started with `new URL(...,
 * import.meta.url)`) as a chunk of their own, so under `worker-src 'self'`
 * fsverityDigest of 64 MiB still hashes on worker threads started from that
 * file; esbuild leaves the URL alone, so its bundle finds neither the file
 * nor blob: workers and falls back to one thread. The digest is the same
 * every way.
 */
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fsverityDigest } from '../../src/index.js';
import { itWithTool } from '../helpers/tools.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');
const dir = mkdtempSync(join(tmpdir(), 'iomap-verity-bundlers-'));
const app = join(dir, 'app');
const SIZE = 64 * 1024 * 1024 + 123;

// The same bytes in the page and here.
const SAMPLE = `export function sample(n) {
  const data = new Uint8Array(n);
  let x = 0x2545f491;
  for (let i = 0; i < n; i += 4) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; data[i] = x & 255; }
  return data;
}`;

beforeAll(() => {
  mkdirSync(join(app, 'src'), { recursive: true });
  mkdirSync(join(app, 'node_modules'));
  // The package as npm would place it (a link to this tree, built by `npm test`).
  symlinkSync(ROOT, join(app, 'node_modules/iomap-verity'));
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true, type: 'module' }));
  writeFileSync(join(app, 'src/sample.js'), SAMPLE);
  writeFileSync(
    join(app, 'src/main.js'),
    `import { fsverityDigest, Volume, MemoryDevice, isErrno, FileDevice, leafHashPoolInfo } from 'iomap-verity';
import { sample } from './sample.js';
globalThis.run = async (size) => {
  const data = sample(size);
  const pooled = await fsverityDigest(data);
  const pool = leafHashPoolInfo() ?? null;
  const single = await fsverityDigest(data, { parallel: false });
  const volume = await Volume.format(new MemoryDevice({ size: 1 << 24 }));
  const f = await volume.create('x');
  await f.write(0, data.subarray(0, 100000));
  await f.enableVerity();
  const sealed = (await f.measureVerity()).formatted;
  await volume.close();
  let nodeOnly = '';
  try { await FileDevice.open('/etc/passwd'); } catch (e) { nodeOnly = isErrno(e) ? e.code : String(e); }
  return { pooled: pooled.formatted, single: single.formatted, sealed, nodeOnly, pool };
};
`,
  );
  writeFileSync(join(app, 'index.html'), '<!doctype html><script type="module" src="/src/main.js"></script>');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** No import of a `node:` module survives (the Node worker's source, a string, may name them). */
function noNodeImports(code: string, what: string): void {
  const left = [...code.matchAll(/(?:\bfrom\s*|\bimport\s*\(?\s*)["'`]node:[a-z_/]+["'`]/g)].map((m) => m[0]);
  expect(left, `${what} still names node: modules`).toEqual([]);
}

let esbuildBundle = '';

describe('bundlers, no configuration', () => {
  it('esbuild --bundle --platform=browser', async () => {
    const { build } = await import('esbuild');
    const out = await build({
      entryPoints: [join(app, 'src/main.js')],
      absWorkingDir: app,
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      logLevel: 'silent',
    });
    expect(out.errors).toEqual([]);
    expect(out.warnings.map((w) => w.text)).toEqual([]);
    esbuildBundle = out.outputFiles[0]!.text;
    noNodeImports(esbuildBundle, 'the esbuild bundle');
  });

  it('vite build', async () => {
    const { build } = await import('vite');
    const warnings: string[] = [];
    const logger = {
      info: () => undefined,
      warn: (m: string) => warnings.push(m),
      warnOnce: (m: string) => warnings.push(m),
      error: (m: string) => warnings.push(`error: ${m}`),
      clearScreen: () => undefined,
      hasErrorLogged: () => false,
      hasWarned: false,
    };
    await build({ root: app, configFile: false, logLevel: 'warn', customLogger: logger, build: { outDir: join(app, 'vite-out'), chunkSizeWarningLimit: 10_000 } });
    expect(warnings).toEqual([]);
    const assets = join(app, 'vite-out/assets');
    const js = readdirSync(assets).filter((f) => f.endsWith('.js'));
    expect(js.length).toBeGreaterThan(0);
    for (const f of js) noNodeImports(readFileSync(join(assets, f), 'utf8'), `vite's ${f}`);
  });

  it('webpack 5 (target web)', async () => {
    const { default: webpack } = await import('webpack');
    const stats = await new Promise<import('webpack').Stats>((resolve, reject) => {
      webpack(
        {
          mode: 'production',
          context: app,
          entry: './src/main.js',
          target: 'web',
          output: { path: join(dir, 'webpack-out'), filename: 'main.js' },
          // Size hints are about the app, not about resolving the package.
          performance: { hints: false },
        },
        (err, s) => (err || !s ? reject(err ?? new Error('no stats')) : resolve(s)),
      );
    });
    const info = stats.toJson({ all: false, errors: true, warnings: true });
    expect((info.errors ?? []).map((e) => e.message)).toEqual([]);
    expect((info.warnings ?? []).map((e) => e.message)).toEqual([]);
    const out = join(dir, 'webpack-out');
    for (const f of readdirSync(out).filter((n) => n.endsWith('.js'))) noNodeImports(readFileSync(join(out, f), 'utf8'), `webpack's ${f}`);
  });
});

interface RunResult {
  pooled: string;
  single: string;
  sealed: string;
  nodeOnly: string;
  pool: { threads: number; workers: string } | null;
}

/** The page's answer for the app in `root` (a built output, or the esbuild bundle as app.js) under `csp`. */
async function runInChromium(chromiumPath: string, files: (path: string) => Buffer | undefined, csp: string): Promise<{ got: RunResult; refused: number }> {
  const violations: string[] = [];
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    res.setHeader('content-security-policy', csp);
    const body = files(path === '/' ? '/index.html' : path);
    if (!body) {
      res.statusCode = 404;
      res.end();
      return;
    }
    res.setHeader('content-type', path.endsWith('.js') ? 'text/javascript' : 'text/html');
    res.end(body);
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const addr = server.address();
  const origin = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/`;
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage();
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) violations.push(m.text());
    });
    await page.goto(origin);
    await page.waitForFunction(() => typeof (globalThis as { run?: unknown }).run === 'function');
    const got = await page.evaluate((n) => (globalThis as unknown as { run: (n: number) => Promise<RunResult> }).run(n), SIZE);
    return { got, refused: violations.length };
  } finally {
    await browser.close();
    await new Promise<void>((ok) => server.close(() => ok()));
  }
}

/** Files of a built output directory, by URL path. */
function fromDir(root: string): (path: string) => Buffer | undefined {
  return (path) => {
    const file = join(root, path);
    if (!file.startsWith(root + '/')) return undefined;
    try {
      return readFileSync(file);
    } catch {
      return undefined;
    }
  };
}

let want = '';
async function wanted(): Promise<string> {
  if (!want) {
    const sample = new Function(`${SAMPLE.replace('export ', '')}; return sample;`)() as (n: number) => Uint8Array;
    want = (await fsverityDigest(sample(SIZE))).formatted;
  }
  return want;
}

describe('in Chromium under a strict Content-Security-Policy', () => {
  const NO_BLOB_WORKERS = "script-src 'self' 'wasm-unsafe-eval'";
  const SELF_WORKERS_ONLY = "script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'";

  itWithTool('chromium', 'esbuild: refused blob: workers fall back to one thread with the same digest, and Node-only calls are EOPNOTSUPP', async (_ctx, chromiumPath) => {
    expect(esbuildBundle).not.toBe('');
    const page = '<!doctype html><meta charset="utf-8"><script type="module" src="/app.js"></script>';
    const files = (path: string) => (path === '/app.js' ? Buffer.from(esbuildBundle) : path === '/index.html' ? Buffer.from(page) : undefined);
    const { got, refused } = await runInChromium(chromiumPath, files, NO_BLOB_WORKERS);
    expect(got.pooled).toBe(await wanted());
    expect(got.single).toBe(await wanted());
    expect(got.sealed).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(got.nodeOnly).toBe('EOPNOTSUPP');
    // No worker file next to the bundle and no blob: workers: one thread.
    expect(got.pool).toBeNull();
    // The page really did refuse the workers (else this test proves nothing).
    expect(refused).toBeGreaterThan(0);
  }, 240_000);

  for (const [name, out] of [
    ['Vite', () => join(app, 'vite-out')],
    ['webpack', () => join(dir, 'webpack-out')],
  ] as const) {
    itWithTool('chromium', `${name}: the worker file it emitted runs the pool under worker-src 'self' (no blob:), with the same digest`, async (_ctx, chromiumPath) => {
      const root = out();
      if (name === 'webpack') writeFileSync(join(root, 'index.html'), '<!doctype html><meta charset="utf-8"><script src="/main.js"></script>');
      const { got, refused } = await runInChromium(chromiumPath, fromDir(root), SELF_WORKERS_ONLY);
      expect(got.pool).toEqual({ threads: expect.any(Number), workers: 'module' });
      expect(got.pool!.threads).toBeGreaterThanOrEqual(2);
      expect(got.pooled).toBe(await wanted());
      expect(got.single).toBe(await wanted());
      expect(got.nodeOnly).toBe('EOPNOTSUPP');
      // Nothing was refused: the workers came from the page's own origin.
      expect(refused).toBe(0);
    }, 240_000);
  }
});
