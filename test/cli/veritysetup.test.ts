/**
 * `iomap-verity veritysetup` against `veritysetup`: the same command lines
 * give the same stdout lines, the same exit status and the same hash
 * file; failures print veritysetup's words on stderr. Runs the built CLI
 * (dist/): `npm test` builds it first.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Run } from '../helpers/fsverity.js';
import { dataFor } from '../helpers/dmverity.js';
import { FIXED_UUID, HAVE_VERITYSETUP, requireVeritysetupInCi, rootHashOf, veritysetupAsync } from '../helpers/veritysetup.js';

const BIN = new URL('../../dist/src/cli/main.js', import.meta.url).pathname;

function ours(args: string[], cwd: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'veritysetup', ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ status: code ?? -1, stdout, stderr }));
  });
}

const dir = mkdtempSync(join(tmpdir(), 'iomap-verity-cli-dmv-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
beforeAll(() => {
  if (!existsSync(BIN)) throw new Error(`${BIN} is missing: run \`npm run build\` first`);
  writeFileSync(join(dir, 'data'), dataFor(1000 * 1024 + 77, 4096, 3));
  writeFileSync(join(dir, 'small'), new Uint8Array(100));
});

const FORMATS: [string, string[]][] = [
  ['defaults, fixed salt and UUID', ['--salt=00112233', `--uuid=${FIXED_UUID}`]],
  ['upper-case UUID printed as given', ['--salt=00', `--uuid=${FIXED_UUID.toUpperCase()}`]],
  ['no superblock', ['--salt=abcdef', '--no-superblock']],
  ['format 0, sha1, small blocks, hash offset', ['--format=0', '--hash=sha1', '--data-block-size=1024', '--hash-block-size=512', '--hash-offset=1024', '--salt=-', `--uuid=${FIXED_UUID}`]],
  ['sha512, --data-blocks, option before the action', ['--hash=sha512', '--data-blocks=100', '-s', 'ff00ff', `--uuid=${FIXED_UUID}`]],
  ['empty salt', ['--salt=', `--uuid=${FIXED_UUID}`]],
];

describe('iomap-verity veritysetup against veritysetup', () => {
  it('has the oracle when CI is set', () => requireVeritysetupInCi());

  FORMATS.forEach(([what, opts], i) => {
    it.runIf(HAVE_VERITYSETUP).concurrent(`format, dump and verify: ${what}`, async () => {
      const data = join(dir, 'data');
      const [a, b] = [`ours${i}`, `theirs${i}`];
      const [mine, theirs] = await Promise.all([ours(['format', data, a, ...opts], dir), veritysetupAsync(['format', data, b, ...opts], dir)]);
      expect(mine.status, mine.stderr).toBe(theirs.status);
      expect(mine.stdout).toBe(theirs.stdout.replaceAll(b, a));
      expect(Buffer.compare(readFileSync(join(dir, a)), readFileSync(join(dir, b)))).toBe(0);
      const root = rootHashOf(theirs.stdout);
      const offset = opts.filter((o) => o.startsWith('--hash-offset'));
      const params = opts.includes('--no-superblock') ? opts : offset;
      if (!opts.includes('--no-superblock')) {
        const [d1, d2] = await Promise.all([ours(['dump', a, ...offset], dir), veritysetupAsync(['dump', b, ...offset], dir)]);
        expect(d1.status).toBe(d2.status);
        expect(d1.stdout).toBe(d2.stdout.replaceAll(b, a));
      }
      const [v1, v2] = await Promise.all([ours(['verify', data, b, root, ...params], dir), veritysetupAsync(['verify', data, a, root, ...params], dir)]);
      expect([v1.status, v2.status], v1.stderr + v2.stderr).toEqual([0, 0]);
    });
  });

  it.runIf(HAVE_VERITYSETUP)('verify failures: same lines on stderr, same exit statuses', async () => {
    const data = join(dir, 'data');
    const f = await veritysetupAsync(['format', data, 'h', '--salt=01', `--uuid=${FIXED_UUID}`, '--root-hash-file=rh'], dir);
    const root = rootHashOf(f.stdout);
    expect(readFileSync(join(dir, 'rh'), 'utf8')).toBe(root);
    const bad = Buffer.from(readFileSync(data));
    bad[5 * 4096 + 9]! ^= 1;
    writeFileSync(join(dir, 'bad'), bad);
    const hash = Buffer.from(readFileSync(join(dir, 'h')));
    hash[4096 + 64 * 32 + 3]! ^= 1;
    writeFileSync(join(dir, 'badh'), hash);
    const lines: string[][] = [
      ['verify', 'bad', 'h', root],
      ['verify', 'data', 'badh', root],
      ['verify', 'data', 'h', `${root.slice(0, -1)}${root.endsWith('0') ? '1' : '0'}`],
      ['verify', 'data', 'h', 'xyz'],
      ['verify', 'data', 'h'],
      ['verify', 'data', 'h', '--root-hash-file=rh'],
      ['-v', 'verify', 'data', 'h', root],
      ['-v', 'verify', 'bad', 'h', root],
      ['verify', '/nonexistent', 'h', root],
      ['verify', 'data', 'data', root],
      ['dump', 'data'],
      ['dump', '/nonexistent'],
      ['format', 'small', 'hs'],
      ['format', 'data', 'hx', '--hash=whirlpool2'],
      ['format', 'data', 'hx', '--data-block-size=1000'],
      ['format', 'data', 'hx', '--hash-offset=100'],
      ['format', 'data', 'hx', '--salt=abc'],
      ['format', 'data', 'hx', '--uuid=nope'],
      ['format', 'data', 'hx', '--format=2'],
      ['format', 'data', 'hx', '--data-blocks=100000'],
      ['format', '/nonexistent', 'hx'],
      ['format', 'data', 'data'],
      ['format', 'data', 'data', '--hash-offset=4096', '--data-blocks=2'],
    ];
    // Their hash files first: each case writes its own, so the runs are independent.
    const runs = await Promise.all(
      lines.map(async (args) => {
        const theirs = await veritysetupAsync(args.map((a) => (a === 'hs' || a === 'hx' ? `${a}-theirs` : a)), dir);
        const mine = await ours(args, dir);
        return { args, mine, theirs };
      }),
    );
    for (const { args, mine, theirs } of runs) {
      const fix = (s: string) => s.replace(/(hs|hx)-theirs/g, '$1');
      expect(mine.status, `${args.join(' ')}: ${mine.stderr}`).toBe(theirs.status);
      expect(mine.stdout, args.join(' ')).toBe(fix(theirs.stdout));
      expect(mine.stderr, args.join(' ')).toBe(fix(theirs.stderr));
    }
  });

  it('a bad command line is status 1 with the usage, as veritysetup has it', async () => {
    for (const args of [[], ['frob'], ['format', 'data'], ['format', 'data', 'h', '--bogus'], ['format', 'data', 'h', '--data-block-size=abc']]) {
      const r = await ours(args, dir);
      expect(r.status, args.join(' ')).toBe(1);
      expect(r.stderr).toMatch(/Usage: iomap-verity veritysetup/);
    }
  });
});
