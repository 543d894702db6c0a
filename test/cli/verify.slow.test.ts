/**
 * `iomap-verity verify` of a 1 GiB file with the tree and descriptor
 * fsverity-utils wrote for it runs in bounded memory: peak RSS of the
 * process under 160 MiB (the data goes through one reused buffer, the tree
 * cache is bounded). Slow: a 1 GiB file is written and hashed twice.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { fillRandom } from '../fixtures/generate.mjs';
import { fsverityFiles, HAVE_FSVERITY, requireOracleInCi } from '../helpers/fsverity.js';

const BIN = new URL('../../dist/src/cli/main.js', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'iomap-verity-verify-1g-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it('verify of a 1 GiB file stays under 160 MiB RSS', async (ctx) => {
  requireOracleInCi();
  if (!HAVE_FSVERITY) return ctx.skip();
  if (!existsSync(BIN)) throw new Error(`${BIN} is missing: run \`npm run build\` first`);
  const path = join(dir, 'big');
  const fd = openSync(path, 'w');
  const chunk = new Uint8Array(16 << 20);
  for (let i = 0; i < 64; i++) writeSync(fd, fillRandom(chunk, i + 1));
  closeSync(fd);
  const fx = fsverityFiles(path);
  // Peak RSS as the process itself reports it when it exits.
  const probe = join(dir, 'probe.mjs');
  writeFileSync(probe, `process.on('exit', () => process.stderr.write('maxRSS ' + process.resourceUsage().maxRSS + '\\n'));\nawait import(${JSON.stringify(BIN)});\n`);
  const r = await new Promise<{ status: number; stdout: string; stderr: string }>((resolve, reject) => {
    const c = spawn(process.execPath, [probe, 'verify', path, `--digest=${fx.digest}`, `--tree=${fx.tree}`, `--descriptor=${fx.descriptor}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    c.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    c.on('error', reject);
    c.on('close', (code) => resolve({ status: code ?? -1, stdout, stderr }));
  });
  expect(r.stdout).toBe(`${path}: OK\n`);
  expect(r.status).toBe(0);
  const kib = Number(/maxRSS (\d+)/.exec(r.stderr)?.[1]);
  console.log(`verify of 1 GiB: peak RSS ${(kib / 1024).toFixed(0)} MiB`);
  expect(kib / 1024).toBeLessThan(160);
}, 600_000);
