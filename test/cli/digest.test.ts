/**
 * `iomap-verity digest` against `fsverity digest`: the same command lines
 * give the same stdout, the same exit status, errors on stderr (never an
 * empty one for a failure), and byte-identical tree and descriptor files.
 * Runs the built CLI (dist/): `npm test` builds it first.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, ftruncateSync, mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fillRandom } from '../fixtures/generate.mjs';
import { FSVERITY, fsverity, requireOracleInCi, runAsync, type Run } from '../helpers/fsverity.js';
import { describeWithTool, itWithTool } from '../helpers/tools.js';

const BIN = new URL('../../dist/src/cli/main.js', import.meta.url).pathname;

function ours(args: string[], cwd: string): Run {
  const r = spawnSync(process.execPath, [BIN, 'digest', ...args], { encoding: 'utf8', cwd });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

const dir = mkdtempSync(join(tmpdir(), 'iomap-verity-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
beforeAll(() => {
  if (!existsSync(BIN)) throw new Error(`${BIN} is missing: run \`npm run build\` first`);
  writeFileSync(join(dir, 'f'), fillRandom(new Uint8Array(100_003), 7));
  writeFileSync(join(dir, 'one'), fillRandom(new Uint8Array(4096), 8));
  writeFileSync(join(dir, 'empty'), new Uint8Array(0));
  writeFileSync(join(dir, 'zeros'), new Uint8Array(1 << 20));
  mkdirSync(join(dir, 'adir'));
});

const SALT32 = '00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff';

/** [name, args]: what both tools must agree on. */
const CASES: [string, string[]][] = [
  ['one file', ['f']],
  ['several files', ['f', 'one', 'empty', 'zeros']],
  ['--compact', ['f', '--compact']],
  ['sha512', ['--hash-alg=sha512', 'f']],
  ['algorithm by number', ['--hash-alg=2', 'f']],
  ['algorithm 1 by number', ['--hash-alg=1', 'f']],
  ['smallest block size', ['--block-size=64', 'f']],
  ['8 MiB blocks', ['--block-size=8388608', 'f']],
  ['block size with a plus sign', ['--block-size=+1024', 'f']],
  ['block size as the next argument', ['f', '--block-size', '1024']],
  ['one-byte salt', ['--salt=ab', 'f']],
  ['32-byte salt, upper case', [`--salt=${SALT32.toUpperCase()}`, 'f']],
  ['empty salt', ['--salt=', 'f']],
  ['abbreviated options', ['--comp', '--h=sha512', '--bl=128', 'f']],
  ['--for-builtin-sig', ['--for-builtin-sig', 'f']],
  ['--for-builtin-sig --compact', ['--for-builtin-sig', '--compact', 'f', 'one']],
  ['-- before a file', ['--', 'f']],
  ['a file named like an option after --', ['f', '--', '--compact']],
  ['no file', []],
  ['only options', ['--compact']],
  ['unknown option', ['--bogus', 'f']],
  ['short option', ['-c', 'f']],
  ['ambiguous option', ['--out=x', 'f']],
  ['block size 3000', ['--block-size=3000', 'f']],
  ['block size 0', ['--block-size=0', 'f']],
  ['block size -4096', ['--block-size=-4096', 'f']],
  ['block size abc', ['--block-size=abc', 'f']],
  ['block size 1k', ['--block-size=1k', 'f']],
  ['empty block size', ['--block-size=', 'f']],
  ['block size 2^31', ['--block-size=2147483648', 'f']],
  ['block size too small for sha256', ['--block-size=32', 'f']],
  ['block size too small for sha512', ['--hash-alg=sha512', '--block-size=64', 'f']],
  ['odd-length salt', ['--salt=abc', 'f']],
  ['non-hex salt', ['--salt=zz', 'f']],
  ['0x salt', ['--salt=0x00', 'f']],
  ['33-byte salt', [`--salt=${SALT32}00`, 'f']],
  ['unknown algorithm', ['--hash-alg=md5', 'f']],
  ['upper-case algorithm', ['--hash-alg=SHA256', 'f']],
  ['algorithm 0', ['--hash-alg=0', 'f']],
  ['algorithm 3', ['--hash-alg=3', 'f']],
  ['empty algorithm', ['--hash-alg=', 'f']],
  ['--hash-alg twice', ['--hash-alg=sha256', '--hash-alg=sha256', 'f']],
  ['--block-size twice', ['--block-size=4096', '--block-size=4096', 'f']],
  ['--salt twice', ['--salt=00', '--salt=00', 'f']],
  ['--out-merkle-tree twice', ['--out-merkle-tree=t1', '--out-merkle-tree=t2', 'f']],
  ['--compact with a value', ['--compact=1', 'f']],
  ['missing option value', ['f', '--block-size']],
  ['tree file in a missing directory', ['--out-merkle-tree=nodir/t', 'f']],
  ['descriptor file in a missing directory', ['--out-descriptor=nodir/d', 'f']],
  ['missing file', ['nonexistent']],
  ['missing file between good ones', ['f', 'nonexistent', 'one']],
  ['a directory', ['adir']],
];

describeWithTool('fsverity', 'iomap-verity digest agrees with fsverity digest', () => {
  // Each case spawns two processes; run them a few at a time. Cases that
  // write output files use names of their own, so they cannot collide.
  it.concurrent.each(CASES)('%s', async (_name, args) => {
    const [theirs, mine] = await Promise.all([
      runAsync(FSVERITY!, ['digest', ...args], dir),
      runAsync(process.execPath, [BIN, 'digest', ...args], dir),
    ]);
    expect(mine.status).toBe(theirs.status);
    expect(mine.stdout).toBe(theirs.stdout);
    if (theirs.status !== 0) {
      expect(mine.stderr).not.toBe('');
      expect(mine.stderr).not.toMatch(/\n\s+at /); // a message, not a stack trace
    } else {
      expect(mine.stderr).toBe('');
    }
  });

  it.each<[string, string[]]>([
    ['default parameters', ['f']],
    ['several files append', ['f', 'one', 'empty', 'zeros', 'f']],
    ['sha512, 1 KiB blocks, salt', ['--hash-alg=sha512', '--block-size=1024', '--salt=0102', 'f', 'zeros']],
    ['a one-block file', ['one']],
    ['an empty file', ['empty']],
  ])('writes the same tree and descriptor files: %s', (_name, args) => {
    const theirs = fsverity(['digest', ...args, '--out-merkle-tree=t.theirs', '--out-descriptor=d.theirs'], dir);
    const mine = ours([...args, '--out-merkle-tree=t.ours', '--out-descriptor=d.ours'], dir);
    expect(theirs.status).toBe(0);
    expect(mine.status).toBe(0);
    expect(mine.stdout).toBe(theirs.stdout);
    for (const f of ['t', 'd']) {
      expect(Buffer.compare(readFileSync(join(dir, `${f}.ours`)), readFileSync(join(dir, `${f}.theirs`))), f).toBe(0);
    }
  });

  it('truncates an existing output file as fsverity does', () => {
    writeFileSync(join(dir, 't.ours'), new Uint8Array(1 << 20).fill(1));
    expect(ours(['one', '--out-merkle-tree=t.ours'], dir).status).toBe(0);
    expect(readFileSync(join(dir, 't.ours')).length).toBe(0);
  });
});

describe('iomap-verity digest on its own', () => {
  it('has the oracle when CI is set', () => requireOracleInCi());

  it('prints usage for --help on stdout and exits 0', () => {
    const r = ours(['--help'], dir);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/iomap-verity digest FILE\.\.\./);
  });

  it('says what was wrong', () => {
    expect(ours(['--block-size=3000', 'f'], dir).stderr).toMatch(/^ERROR: Invalid block size: 3000\. {2}Must be power of 2\nUsage:/);
    expect(ours(['nonexistent'], dir).stderr).toBe("ERROR: can't open 'nonexistent' for reading: No such file or directory\n");
    expect(ours(['--salt=zz', 'f'], dir).stderr).toMatch(/^ERROR: salt is not a valid hex string\n/);
    expect(ours(['--hash-alg=md5', 'f'], dir).stderr).toMatch(/^ERROR: unknown hash algorithm: 'md5'\nAvailable hash algorithms: sha256 sha512\n/);
    expect(ours(['--block-size=32', 'f'], dir).stderr).toMatch(/too small for sha256/);
  });

  // Large enough for a progress bar on a terminal: holes, so cheap to read.
  const big = join(dir, 'big');
  beforeAll(() => {
    const fd = openSync(big, 'w');
    ftruncateSync(fd, 300 * 2 ** 20);
    closeSync(fd);
  });

  it('stays quiet on stderr when piped, even for a big file', () => {
    const r = ours([big], dir);
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^sha256:[0-9a-f]{64} /);
  });

  itWithTool('script', 'draws a progress bar on a terminal for a big file', (_ctx, script) => {
    const cmd = `${process.execPath} ${BIN} digest ${big} >${join(dir, 'tty.out')}`;
    const r = spawnSync(script, ['-qfec', cmd, '/dev/null'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/\[#*\.*\] +\d+% /);
    expect(r.stdout).toMatch(/100%/);
    expect(readFileSync(join(dir, 'tty.out'), 'utf8')).toMatch(/^sha256:[0-9a-f]{64} /);
    // And none for a small one.
    const small = spawnSync(script, ['-qfec', `${process.execPath} ${BIN} digest ${join(dir, 'f')} >/dev/null`, '/dev/null'], { encoding: 'utf8' });
    expect(small.stdout).toBe('');
  });
});

describe('iomap-verity', () => {
  function cli(args: string[]): Run {
    const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', cwd: dir });
    return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  }

  it('lists its commands and refuses unknown ones with status 2', () => {
    const none = cli([]);
    expect(none.status).toBe(2);
    expect(none.stderr).toMatch(/digest/);
    const bad = cli(['frobnicate']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/unrecognized command: 'frobnicate'/);
    expect(cli(['--help']).status).toBe(0);
    expect(cli(['--version']).stdout).toMatch(/^iomap-verity v\d+\.\d+\.\d+\n$/);
  });

  it.runIf(existsSync('/dev/full'))('fails with a message when its output cannot be written', () => {
    const full = openSync('/dev/full', 'w');
    try {
      const r = spawnSync(process.execPath, [BIN, 'digest', 'f'], { cwd: dir, stdio: ['ignore', full, 'pipe'], encoding: 'utf8' });
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/^ERROR: writing output: .*no space left/i);
    } finally {
      closeSync(full);
    }
  });

  it('starts with a shebang line (it is the package bin)', () => {
    expect(readFileSync(BIN, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
  });

});
