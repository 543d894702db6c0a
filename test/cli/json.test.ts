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

describe('image commands: --json, names with control characters, dump offsets', () => {
  it('ls and measure print JSON; ls escapes control characters in names; dump --offset takes sizes', async () => {
    const img = join(dir, 'img');
    const src = join(dir, 'payload');
    const payload = randomBytes(100_000, 9);
    writeFileSync(src, payload);
    expect(cli('mkfs', img, '--size=16M').status).toBe(0);
    const evil = 'a\nb\u001b[2Jc\\d';
    expect(cli('put', img, evil, src).status).toBe(0);
    expect(cli('put', img, 'plain', src).status).toBe(0);
    expect(cli('enable', img, 'plain').status).toBe(0);
    const ls = cli('ls', img);
    expect(ls.stdout).toBe(`${payload.length}\t-\ta\\nb\\x1b[2Jc\\\\d\n${payload.length}\tverity\tplain\n`);
    const want = (await fsverityDigest(payload)).formatted;
    const lsJson = cli('ls', img, '--json').stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lsJson).toEqual([
      { name: evil, size: payload.length, verity: false },
      { name: 'plain', size: payload.length, verity: true, digest: want },
    ]);
    expect(JSON.parse(cli('measure', img, 'plain', '--json').stdout)).toEqual({ name: 'plain', digest: want, algorithm: 'sha256' });
    const tree = spawnSync(process.execPath, [BIN, 'dump', img, 'plain', '--type=merkle_tree'], { cwd: dir }).stdout;
    const r = spawnSync(process.execPath, [BIN, 'dump', img, 'plain', '--type=merkle_tree', '--offset=1K', '--length=2K'], { cwd: dir });
    expect(r.status).toBe(0);
    expect(tree.length).toBe(4096);
    expect(r.stdout.equals(tree.subarray(1024, 3072))).toBe(true);
    const bad = cli('dump', img, 'plain', '--type=merkle_tree', '--offset=0x10');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/invalid offset '0x10'/);
  });
});

