/**
 * The package as a consumer gets it: `npm pack` of the built tree, installed
 * into a fresh project in a temporary directory, imported, type-checked by a
 * strict TypeScript consumer under each module resolution, and run through
 * `npx iomap-verity`. Catches what only shows up once published: files left
 * out of `files`, source maps to sources not shipped, `@internal` members in
 * the declarations, a bin that npm would drop, types that need the DOM lib.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fsverityDigest } from '../../src/index.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');
const dir = mkdtempSync(join(tmpdir(), 'iomap-verity-tarball-'));
const consumer = join(dir, 'consumer');
let files: string[] = [];
let tarball = '';

function npm(args: string[], cwd: string): { status: number; stdout: string; stderr: string } {
  const r = spawnSync('npm', args, { cwd, encoding: 'utf8', env: { ...process.env, npm_config_update_notifier: 'false' } });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(() => {
  // `npm test` builds first; packing without scripts takes the tree as built.
  const packed = npm(['pack', '--ignore-scripts', '--json', '--pack-destination', dir], ROOT);
  expect(packed.status, packed.stderr).toBe(0);
  const info = JSON.parse(packed.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
  tarball = join(dir, info[0]!.filename);
  files = info[0]!.files.map((f) => f.path);

  mkdirSync(consumer);
  writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module' }));
  // hash-wasm comes from npm's cache, filled by the project's own `npm ci`.
  const installed = npm(['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', tarball], consumer);
  expect(installed.status, installed.stderr).toBe(0);
}, 180_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the packed tarball', () => {
  it('ships the built code, declarations, docs, licence and changelog, and nothing else', () => {
    for (const need of ['package.json', 'README.md', 'LICENSE', 'CHANGELOG.md', 'docs/FORMAT.md', 'dist/src/index.js', 'dist/src/index.d.ts', 'dist/src/iomap/index.js', 'dist/src/cli/main.js']) {
      expect(files, need).toContain(need);
    }
    expect(files.filter((f) => f.endsWith('.map')), 'source maps point at sources not shipped').toEqual([]);
    expect(files.filter((f) => f.startsWith('build/') || f.startsWith('src/') || f.startsWith('test/') || f.startsWith('bench/'))).toEqual([]);
  });

  it('has no @internal member and no huge literal type in its declarations', () => {
    const root = join(consumer, 'node_modules/iomap-verity');
    for (const f of files.filter((p) => p.endsWith('.d.ts'))) {
      const text = readFileSync(join(root, f), 'utf8');
      expect(text, f).not.toContain('@internal');
      expect(text.length, `${f} is ${text.length} bytes`).toBeLessThan(40_000);
    }
    expect(readFileSync(join(root, 'dist/src/wasm/module.generated.d.ts'), 'utf8')).toContain('WASM_BASE64: string');
  });

  it('imports as ESM in a fresh project and digests like the sources', async () => {
    const bytes = new Uint8Array(100_000).map((_, i) => (i * 31 + 7) & 0xff);
    writeFileSync(join(consumer, 'data.bin'), bytes);
    writeFileSync(
      join(consumer, 'use.mjs'),
      `import { fsverityDigest, fsverityDigestFile, Volume, MemoryDevice } from 'iomap-verity';
import { iomapIter } from 'iomap-verity/iomap';
import { readFileSync } from 'node:fs';
if (typeof iomapIter !== 'function' || typeof Volume.format !== 'function' || typeof MemoryDevice !== 'function') process.exit(3);
const a = await fsverityDigest(readFileSync('data.bin'));
const b = await fsverityDigestFile('data.bin');
if (a.formatted !== b.formatted) process.exit(4);
console.log(a.formatted);
`,
    );
    const out = execFileSync(process.execPath, ['use.mjs'], { cwd: consumer, encoding: 'utf8' }).trim();
    expect(out).toBe((await fsverityDigest(bytes)).formatted);
  });

  it('runs `npx iomap-verity digest` from the installed bin', async () => {
    const r = npm(['exec', '--offline', '--', 'iomap-verity', 'digest', 'data.bin'], consumer);
    expect(r.status, r.stderr).toBe(0);
    const bytes = readFileSync(join(consumer, 'data.bin'));
    expect(r.stdout).toBe(`${(await fsverityDigest(bytes)).formatted} data.bin\n`);
  });

  it('type-checks a strict consumer with only es2022 and Node types, under node16, nodenext and bundler resolution', () => {
    writeFileSync(
      join(consumer, 'use.ts'),
      `import { fsverityDigest, Volume, MemoryDevice, IomapVerityError, type FsverityDigestResult, type ErrnoCode } from 'iomap-verity';
import { iomapIter, IOMAP_F_FSVERITY } from 'iomap-verity/iomap';
export async function run(bytes: Uint8Array): Promise<string> {
  const r: FsverityDigestResult = await fsverityDigest(bytes, { hashAlgorithm: 'sha256', blockSize: 4096 });
  const volume = await Volume.format(new MemoryDevice({ size: 1 << 24 }));
  const file = await volume.create('a');
  await file.write(0, bytes);
  await file.fsync();
  await volume.close();
  const code: ErrnoCode | undefined = r.formatted.length > 0 ? undefined : 'EIO';
  if (code) throw new IomapVerityError(code, 'never');
  return r.formatted + String(typeof iomapIter) + String(IOMAP_F_FSVERITY);
}
`,
    );
    mkdirSync(join(consumer, 'node_modules/@types'), { recursive: true });
    symlinkSync(join(ROOT, 'node_modules/@types/node'), join(consumer, 'node_modules/@types/node'));
    const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
    for (const [module, resolution] of [['node16', 'node16'], ['nodenext', 'nodenext'], ['esnext', 'bundler']] as const) {
      const r = spawnSync(
        process.execPath,
        [tsc, '--noEmit', '--strict', '--target', 'es2022', '--lib', 'es2022', '--types', 'node', '--module', module, '--moduleResolution', resolution, 'use.ts'],
        { cwd: consumer, encoding: 'utf8' },
      );
      expect(r.stdout + r.stderr, `${module}/${resolution}`).toBe('');
      expect(r.status).toBe(0);
    }
  });

  it('publishes (dry run) without a warning', () => {
    // A dummy token stands in for a login, which only a real publish needs.
    const r = npm(['publish', '--dry-run', '--ignore-scripts', '--//registry.npmjs.org/:_authToken=dry-run'], ROOT);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr.split('\n').filter((l) => /npm warn/i.test(l))).toEqual([]);
  });
});
