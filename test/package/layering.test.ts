// DESIGN.md's layering, checked: a folder imports only the folders above it
// in the table, and the command line only the public API.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = resolve(__dirname, '../../src');

const ALLOWED: Record<string, string[]> = {
  wasm: ['wasm', 'errors.ts'],
  device: ['device', 'wasm', 'errors.ts'],
  pagecache: ['pagecache', 'wasm', 'errors.ts'],
  verity: ['verity', 'wasm', 'errors.ts'],
  iomap: ['iomap', 'wasm', 'device', 'pagecache', 'errors.ts'],
  fs: ['fs', 'iomap', 'verity', 'pagecache', 'device', 'wasm', 'errors.ts'],
  mount: ['mount', 'index.ts'],
  cli: ['cli', 'index.ts'],
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

describe('layering (DESIGN.md)', () => {
  for (const [layer, allowed] of Object.entries(ALLOWED)) {
    it(`src/${layer} imports only ${allowed.join(', ')}`, () => {
      const bad: string[] = [];
      for (const f of walk(join(SRC, layer))) {
        for (const t of importTargets(f)) if (!allowed.includes(t)) bad.push(`${relative(SRC, f)} -> ${t}`);
      }
      expect(bad).toEqual([]);
    });
  }

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
