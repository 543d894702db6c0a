/**
 * Smoke test of `npm run bench` (bench/run.mjs): the quick variant of B1
 * (digest, checked against fsverity digest and the per-block baselines
 * before timing) and B3 (SHA-256 kernels) runs from the built package and
 * writes a JSON report with the fields the README quotes. No timing is
 * asserted: only that figures exist, are positive, and fit together.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { HAVE_FSVERITY } from '../helpers/fsverity.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');

describe('bench/run.mjs --quick', () => {
  const dir = mkdtempSync(join(tmpdir(), 'iomap-verity-bench-smoke-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('needs the build', () => {
    expect(existsSync(join(ROOT, 'dist/src/cli/main.js'))).toBe(true);
  });

  it('runs B1 and B3 and writes a sane report', () => {
    const json = join(dir, 'out.json');
    const r = spawnSync(process.execPath, [join(ROOT, 'bench/run.mjs'), '--quick', '--only=B1,B3', '--runs=1', `--dir=${dir}`, `--json=${json}`], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(r.stderr).not.toMatch(/Error/);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^B1 +digest, dense 64 MiB +iomap-verity digest /m);
    const report = JSON.parse(readFileSync(json, 'utf8'));
    expect(report.quick).toBe(true);
    expect(report.sizes.dense).toBe(64 << 20);
    expect(report.machine.cpus).toBeGreaterThan(0);
    expect(report.machine.loadavgAtStart).toHaveLength(3);

    type Row = { id: string; case: string; contender: string; digest: string; ratio: number; seconds: number; mbPerSecond: number; maxRssMiB: number };
    const b1all: Row[] = report.rows.filter((x: Row) => x.id === 'B1');
    // Two cases on the same file: the default SHA-256 digest and --hash-alg=sha512.
    const b1 = b1all.filter((x) => x.case === 'digest, dense 64 MiB');
    const b512 = b1all.filter((x) => x.case === 'digest --hash-alg=sha512, dense 64 MiB');
    expect(b1.length + b512.length).toBe(b1all.length);
    const names = b1.map((x) => x.contender);
    expect(names).toEqual(expect.arrayContaining(['iomap-verity digest', 'iomap-verity digest, 1 thread', 'node:crypto per block', 'hash-wasm per block']));
    expect(b512.map((x) => x.contender)).toEqual(expect.arrayContaining(['iomap-verity digest', 'iomap-verity digest, 1 thread']));
    if (HAVE_FSVERITY) {
      expect(names).toContain('fsverity digest');
      expect(b512.map((x) => x.contender)).toContain('fsverity digest');
    }
    for (const rows of [b1, b512]) {
      const digests = new Set(rows.map((x) => x.digest));
      expect(digests.size).toBe(1);
    }
    expect([...new Set(b512.map((x) => x.digest))][0]).toMatch(/^sha512:/);
    for (const row of b1all) {
      expect(row.seconds).toBeGreaterThan(0);
      expect(row.mbPerSecond).toBeCloseTo((64 << 20) / row.seconds / 1e6, 3);
      expect(row.ratio).toBeGreaterThan(0);
      expect(row.maxRssMiB).toBeGreaterThan(1);
    }
    const peer = b1.find((x) => x.contender === (HAVE_FSVERITY ? 'fsverity digest' : 'node:crypto per block'))!;
    expect(peer.ratio).toBe(1);
    const peer512 = b512.find((x) => x.contender === (HAVE_FSVERITY ? 'fsverity digest' : 'iomap-verity digest, 1 thread'))!;
    expect(peer512.ratio).toBe(1);

    const b3 = report.rows.filter((x: { id: string }) => x.id === 'B3');
    expect(b3.length).toBeGreaterThanOrEqual(4);
    expect(b3.some((x: { case: string }) => x.case.startsWith('SHA-512'))).toBe(true);
    for (const row of b3) expect(row.mbPerSecond).toBeGreaterThan(0);
    const ids = new Set(report.targets.map((t: { id: string }) => t.id));
    expect([...ids].sort()).toEqual(['B1', 'B3']);
    for (const t of report.targets) expect(typeof t.value).toBe('number');
  });
});
