// The floors of docs/DESIGN-NOTES.md, checked: a folder imports only the folders above it
// in the table, and the command line only the public API.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = resolve(__dirname, '../../src');

// Every floor may also use `platform` (Node built-ins, or their browser
// refusals) through the `#platform` import, which this relative-import
// check does not see; the test below keeps `node:` imports out of the rest.
const ALLOWED: Record<string, string[]> = {
  platform: ['platform', 'errors.ts'],
  wasm: ['wasm', 'errors.ts'],
  device: ['device', 'wasm', 'errors.ts'],
  pagecache: ['pagecache', 'wasm', 'errors.ts'],
  source: ['source', 'errors.ts'],
  verity: ['verity', 'wasm', 'source', 'errors.ts'],
  dmverity: ['dmverity', 'verity', 'wasm', 'errors.ts'],
  iomap: ['iomap', 'wasm', 'device', 'pagecache', 'errors.ts'],
  fs: ['fs', 'iomap', 'verity', 'pagecache', 'device', 'wasm', 'errors.ts'],
  mount: ['mount', 'index.ts'],
  // The CLI uses the package's public face, except that a command may load
  // the verity library and errors directly to start fast (`digest`).
  cli: ['cli', 'index.ts', 'verity', 'errors.ts'],
};

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? walk(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Relative imports of a source file, resolved to their top-level part of src/ ("fs", "errors.ts", ...). */
function importTargets(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specs = [...text.matchAll(/(?:import|export)[^'"]*?from\s*['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g)].map(
    (m) => m[1] ?? m[2],
  );
  return specs.map((s) => {
    const rel = relative(SRC, resolve(dirname(file), s)).replace(/\.js$/, '.ts');
    return rel.split('/')[0];
  });
}

describe('layering (docs/DESIGN-NOTES.md)', () => {
  for (const [layer, allowed] of Object.entries(ALLOWED)) {
    it(`src/${layer} imports only ${allowed.join(', ')}`, () => {
      const bad: string[] = [];
      for (const f of walk(join(SRC, layer))) {
        for (const t of importTargets(f)) if (!allowed.includes(t)) bad.push(`${relative(SRC, f)} -> ${t}`);
      }
      expect(bad).toEqual([]);
    });
  }

  it('no circle of imports (values or types) between files of src/fs', () => {
    const dir = join(SRC, 'fs');
    const graph = new Map<string, string[]>();
    for (const f of walk(dir)) {
      const text = readFileSync(f, 'utf8');
      const specs = [...text.matchAll(/(?:import|export)[^'"]*?from\s*['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g)].map((m) => m[1] ?? m[2]);
      const inFs = specs.map((s) => resolve(dirname(f), s!).replace(/\.js$/, '.ts')).filter((t) => dirname(t) === dir);
      graph.set(f, inFs);
    }
    const circles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const visit = (f: string, path: string[]): void => {
      if (state.get(f) === 'done') return;
      if (state.get(f) === 'open') {
        circles.push([...path.slice(path.indexOf(f)), f].map((p) => relative(SRC, p)).join(' -> '));
        return;
      }
      state.set(f, 'open');
      for (const t of graph.get(f) ?? []) visit(t, [...path, f]);
      state.set(f, 'done');
    };
    for (const f of graph.keys()) visit(f, []);
    expect(circles).toEqual([]);
  });

  it('the published .d.ts files (dist/src, after npm run build) have no @internal member', () => {
    const dist = resolve(__dirname, '../../dist/src');
    expect(statSync(dist).isDirectory()).toBe(true);
    const files = (function all(d: string): string[] {
      return readdirSync(d).flatMap((n) => {
        const p = join(d, n);
        return statSync(p).isDirectory() ? all(p) : p.endsWith('.d.ts') ? [p] : [];
      });
    })(dist);
    expect(files.length).toBeGreaterThan(0);
    const bad = files.filter((f) => readFileSync(f, 'utf8').includes('@internal')).map((f) => relative(dist, f));
    expect(bad).toEqual([]);
  });

  it('src/dmverity takes from src/verity only the hash algorithms, the worker pool, the tree geometry and the generic verified reader', () => {
    const bad = walk(join(SRC, 'dmverity')).flatMap((f) =>
      [...readFileSync(f, 'utf8').matchAll(/from\s*['"](\.\.\/verity\/[^'"]+)['"]/g)]
        .map((m) => m[1]!)
        .filter((s) => !/^\.\.\/verity\/(hash-algs|pool|pool-feed|pool-worker|geometry|verified-file)\.js$/.test(s))
        .map((s) => `${relative(SRC, f)} -> ${s}`),
    );
    expect(bad).toEqual([]);
  });

  it('only src/platform and the command line load node: modules (a browser build must never reach one)', () => {
    const bad: string[] = [];
    for (const f of walk(SRC)) {
      const rel = relative(SRC, f);
      if (rel.startsWith('platform/') || rel.startsWith('cli/')) continue;
      const text = readFileSync(f, 'utf8');
      // Type-only imports (`import type`, `typeof import(…)`, `as import(…)`) are
      // erased; worker sources inside strings are not modules.
      for (const m of text.matchAll(/^\s*(import|export)(?!\s+type\b)[^'"\n]*?from\s*['"](node:[^'"]+)['"]|(?<!typeof\s|\bas\s)import\(\s*['"](node:[^'"]+)['"]\s*\)/gm)) {
        bad.push(`${rel}: ${m[2] ?? m[3]}`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('assembly/ imports nothing outside itself', () => {
    const dir = resolve(__dirname, '../../assembly');
    const bad = walk(dir).flatMap((f) =>
      [...readFileSync(f, 'utf8').matchAll(/from\s*['"]([^'"]+)['"]/g)]
        .map((m) => m[1])
        .filter((s) => !s.startsWith('./'))
        .map((s) => `${relative(dir, f)} -> ${s}`),
    );
    expect(bad).toEqual([]);
  });
});
