// The volume-image command line and the demo, run as the package's bin and
// compared with fsverity-utils.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fsverity, HAVE_FSVERITY, requireOracleInCi } from '../helpers/fsverity.js';
import { itWithTool } from '../helpers/tools.js';

const BIN = new URL('../../dist/src/cli/main.js', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'iomap-verity-cli-image-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function cli(args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: dir, maxBuffer: 1 << 30 });
  return { status: r.status, stdout: r.stdout, out: r.stdout.toString('utf8'), err: r.stderr.toString('utf8') };
}

describe('image commands', () => {
  it('mkfs, put, ls, get, enable, measure, dump and rm work together and agree with fsverity-utils', () => {
    requireOracleInCi();
    const src = join(dir, 'src.bin');
    const data = Buffer.alloc(3 * 1024 * 1024 + 777);
    for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 27;
    writeFileSync(src, data);
    expect(cli(['mkfs', 'a.img', '--size=32M', '--block-size=4096']).status).toBe(0);
    expect(cli(['put', 'a.img', 'f', src]).status).toBe(0);
    expect(cli(['ls', 'a.img']).out).toBe(`${data.length}\t-\tf\n`);
    expect(Buffer.compare(cli(['get', 'a.img', 'f']).stdout, data)).toBe(0);
    expect(cli(['enable', 'a.img', 'f', '--hash-alg=sha512', '--block-size=1024', '--salt=abcd']).status).toBe(0);
    expect(cli(['ls', 'a.img']).out).toBe(`${data.length}\tverity\tf\n`);
    const measured = cli(['measure', 'a.img', 'f']).out;
    const tree = cli(['dump', 'a.img', 'f', '--type=merkle_tree']).stdout;
    const desc = cli(['dump', 'a.img', 'f', '--type=descriptor']).stdout;
    expect(cli(['dump', 'a.img', 'f', '--type=descriptor', '--offset=8', '--length=8']).stdout).toEqual(desc.subarray(8, 16));
    if (HAVE_FSVERITY) {
      const r = fsverity(['digest', src, '--hash-alg=sha512', '--block-size=1024', '--salt=abcd', '--out-merkle-tree=t', '--out-descriptor=d'], dir);
      expect(measured).toBe(`${r.stdout.split(' ')[0]} f\n`);
      expect(Buffer.compare(tree, readFileSync(join(dir, 't')))).toBe(0);
      expect(Buffer.compare(desc, readFileSync(join(dir, 'd')))).toBe(0);
    }
    // verified copy out to a file
    expect(cli(['get', 'a.img', 'f', 'out.bin']).status).toBe(0);
    expect(Buffer.compare(readFileSync(join(dir, 'out.bin')), data)).toBe(0);
    expect(cli(['rm', 'a.img', 'f']).status).toBe(0);
    expect(cli(['ls', 'a.img']).out).toBe('');
  });

  it('refuses bad command lines with status 2 and failures with status 1, saying why', () => {
    expect(cli(['mkfs', 'b.img', '--size=12Q']).status).toBe(2);
    expect(cli(['mkfs']).status).toBe(2);
    expect(cli(['enable', 'b.img', 'f', '--hash-alg=md5']).status).toBe(2);
    expect(cli(['dump', 'b.img', 'f', '--type=tree']).status).toBe(2);
    expect(cli(['mkfs', 'b.img', '--size=8M']).status).toBe(0);
    const missing = cli(['get', 'b.img', 'nope']);
    expect(missing.status).toBe(1);
    expect(missing.err).toMatch(/ENOENT/);
    const noImage = cli(['ls', 'nope.img']);
    expect(noImage.status).toBe(1);
    expect(noImage.err).toMatch(/does not exist/);
    writeFileSync(join(dir, 'small'), 'x');
    expect(cli(['put', 'b.img', 'small', join(dir, 'small')]).status).toBe(0);
    const notSealed = cli(['measure', 'b.img', 'small']);
    expect(notSealed.status).toBe(1);
    expect(notSealed.err).toMatch(/ENODATA/);
    expect(cli(['enable', 'b.img', 'small']).status).toBe(0);
    expect(cli(['enable', 'b.img', 'small']).err).toMatch(/EEXIST/);
    expect(cli(['dump', 'b.img', 'small', '--type=signature']).err).toMatch(/ENODATA/);
    // a file that does not hold a volume
    writeFileSync(join(dir, 'junk.img'), Buffer.alloc(1 << 20, 7));
    const junk = cli(['ls', 'junk.img']);
    expect(junk.status).toBe(1);
    expect(junk.err).toMatch(/ERROR: .*\((EINVAL|EIO)\)/);
  });
});

describe('progress', () => {
  itWithTool('script', 'put, enable and get draw a bar on a terminal for a file over 256 MiB, and nothing in a pipe', (_ctx, script) => {
    const big = join(dir, 'big.bin');
    writeFileSync(big, Buffer.from('not all zeros'));
    truncateSync(big, 300 << 20);
    expect(cli(['mkfs', 'p.img', '--size=512M']).status).toBe(0);
    for (const cmd of ['put p.img big big.bin', 'enable p.img big', 'get p.img big big.out']) {
      const r = spawnSync(script, ['-qfec', `${process.execPath} ${BIN} ${cmd}`, '/dev/null'], { cwd: dir, encoding: 'utf8' });
      expect(r.status, cmd).toBe(0);
      expect(r.stdout, cmd).toMatch(/\[#*\.*\] +\d+% /);
      expect(r.stdout, cmd).toMatch(/100%/);
      // A full bar that still waits says what for.
      if (cmd.startsWith('put')) expect(r.stdout, cmd).toMatch(/100%.*syncing/);
      if (cmd.startsWith('enable')) expect(r.stdout, cmd).toMatch(/100%.*writing the tree and committing/);
    }
    expect(Buffer.compare(readFileSync(join(dir, 'big.out')), readFileSync(big))).toBe(0);
    const piped = cli(['get', 'p.img', 'big', 'big.out2']);
    expect(piped.status).toBe(0);
    expect(piped.err).toBe('');
    rmSync(join(dir, 'p.img'));
  });
});

describe('demo (npm start)', () => {
  it('seals a file, agrees with fsverityDigest, reads it back verified and shows a damaged read refused', () => {
    const r = cli(['demo']);
    expect(r.err).toBe('');
    expect(r.status).toBe(0);
    const digests = [...r.out.matchAll(/(sha256:[0-9a-f]{64})/g)].map((m) => m[1]);
    expect(digests.length).toBeGreaterThanOrEqual(2);
    expect(new Set(digests.slice(0, HAVE_FSVERITY ? 3 : 2)).size).toBe(1);
    expect(r.out).toMatch(/identical/);
    expect(r.out).toMatch(/refused with EIO/);
    expect(r.out).toMatch(/data block \d+ of file "sample.bin" fails verification/);
    expect(r.out).toMatch(/Cleaned up/);
  });
});
