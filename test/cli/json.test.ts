/**
 * `--json` output: one JSON object per file and line, whose digest is the
 * one the text output (and `fsverity digest`) prints, and whose parameters
 * are the ones used.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fsverityDigest, toHex } from '../../src/index.js';
import { randomBytes } from '../helpers/bytes.js';

const BIN = new URL('../../dist/src/cli/main.js', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'iomap-verity-json-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const cli = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { cwd: dir, encoding: 'utf8' });

describe('digest --json', () => {
  it('prints one object per file, agreeing with the text output and with fsverityDigest', async () => {
    const sizes = [0, 1, 4096, 70_001];
    sizes.forEach((n, i) => writeFileSync(join(dir, `f${i}`), randomBytes(n, 40 + i)));
    const files = sizes.map((_, i) => `f${i}`);
    const opts = ['--hash-alg=sha512', '--block-size=1024', '--salt=00ff10'];
    const text = cli('digest', ...opts, ...files);
    const json = cli('digest', '--json', ...opts, ...files);
    expect(json.status).toBe(0);
    const lines = json.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => `${l.digest} ${l.file}`).join('\n')).toBe(text.stdout.trim());
    for (const [i, l] of lines.entries()) {
      const want = await fsverityDigest(randomBytes(sizes[i]!, 40 + i), { hashAlgorithm: 'sha512', blockSize: 1024, salt: Uint8Array.of(0, 0xff, 0x10) });
      expect(l).toEqual({ file: files[i], digest: want.formatted, algorithm: 'sha512', blockSize: 1024, salt: '00ff10', size: sizes[i], rootHash: toHex(want.rootHash) });
    }
  });

  it('keeps fsverity-utils exit statuses and messages on failure', () => {
    const r = cli('digest', '--json', 'missing');
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/No such file or directory/);
  });
});
