/**
 * The image commands as a careless or unlucky user meets them: mkfs over
 * things that are not its to destroy, puts that fail, writers at once, a
 * damaged sealed file, an image the user may only read. Each case checks
 * that what was there before is still there, byte for byte. The heavy
 * cases (SIGKILL mid-put, 20 writers, a slow pipe) are in safety.slow.test.ts.
 */
import * as fs from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { IS_ROOT, MKFIFO, MKNOD, NOBODY, haveTool, mkfifo, mknodNull, runAs } from '../helpers/system-tools.js';
import { skipWithoutTool } from '../helpers/tools.js';
import { BIN, cliDir, pattern } from '../helpers/image-cli.js';

const { dir, at, cli, leftovers, image, contents, names, cleanup } = cliDir('iomap-verity-cli-safety-');
afterAll(cleanup);

describe('mkfs never destroys anything', () => {
  it('refuses an existing text file without --force, replaces it with --force', async () => {
    const p = at('text.img');
    fs.writeFileSync(p, 'my notes\n');
    const r = await cli(['mkfs', p, '--size=1M']);
    expect(r.status).toBe(1);
    expect(r.err).toMatch(/already exists.*--force.*\(EEXIST\)/);
    expect(fs.readFileSync(p, 'utf8')).toBe('my notes\n');
    // A failed mkfs, even forced, leaves it as it was: too big for ext4 (EFBIG), and a bad block size.
    for (const bad of [['--size=20T'], ['--size=1M', '--block-size=3000']]) {
      const f = await cli(['mkfs', p, '--force', ...bad]);
      expect(f.status, f.err).not.toBe(0);
      expect(fs.readFileSync(p, 'utf8')).toBe('my notes\n');
    }
    expect(leftovers()).toEqual([]);
    expect((await cli(['mkfs', p, '--size=1M', '--force'])).status).toBe(0);
    expect(fs.statSync(p).size).toBe(1 << 20);
    expect((await cli(['ls', p])).status).toBe(0);
  });

  it('a failed mkfs of a new path leaves no file there', async () => {
    const p = at('new.img');
    const f = await cli(['mkfs', p, '--size=20T']);
    expect(f.status).toBe(1);
    expect(fs.existsSync(p)).toBe(false);
    expect(leftovers()).toEqual([]);
  });

  it('never replaces a symlink, its target, a directory, a FIFO or a device node, even with --force', async () => {
    const target = at('precious.txt');
    fs.writeFileSync(target, 'keep me');
    fs.symlinkSync(target, at('link.img'));
    fs.mkdirSync(at('dir.img'));
    const odd = ['link.img', 'dir.img'];
    if (haveTool(MKFIFO, 'mkfifo')) {
      mkfifo(at('fifo.img'));
      odd.push('fifo.img');
    }
    if (IS_ROOT && haveTool(MKNOD, 'mknod')) {
      mknodNull(at('null.img'));
      odd.push('null.img');
    }
    for (const name of odd) {
      const before = fs.lstatSync(at(name));
      for (const force of [[], ['--force']]) {
        const r = await cli(['mkfs', at(name), '--size=1M', ...force]);
        expect(r.status, name).toBe(1);
        expect(r.err).toMatch(/EEXIST/);
      }
      const after = fs.lstatSync(at(name));
      expect([after.mode, after.ino, after.rdev], name).toEqual([before.mode, before.ino, before.rdev]);
    }
    expect(fs.readFileSync(target, 'utf8')).toBe('keep me');
    expect(leftovers()).toEqual([]);
  });
});

describe('put is all or nothing', () => {
  it('a failed put from a directory, a missing file or with ENOSPC leaves the old contents and leaks no space', async () => {
    const old = pattern(300000, 1);
    const img = await image('put.img', '8M', { f: old });
    const big = at('big.src');
    fs.writeFileSync(big, pattern(12 << 20, 2));
    for (const src of [dir, at('missing'), big]) {
      const r = await cli(['put', img, 'f', src]);
      expect(r.status, src).toBe(1);
      expect(r.err).toMatch(/EISDIR|ENOENT|ENOSPC/);
      expect((await cli(['ls', img])).stdout.toString()).toBe(`${old.length}\t-\tf\n`);
      expect((await contents(img, 'f')).equals(old)).toBe(true);
    }
    // Nothing leaked: a file nearly as large as the free space still fits, again and again.
    const fits = at('fits.src');
    fs.writeFileSync(fits, pattern(7 << 20, 3));
    expect((await cli(['rm', img, 'f'])).status).toBe(0);
    for (let i = 0; i < 2; i++) {
      expect((await cli(['put', img, 'g', fits])).err).toBe('');
      expect((await cli(['rm', img, 'g'])).err).toBe('');
    }
  });

  it('an unreadable source, as a user without the right to read it, leaves the old contents', async (ctx) => {
    if (!IS_ROOT) ctx.skip('needs root: to become a user who may not read the source');
    skipWithoutTool(ctx, 'setpriv');
    const old = pattern(5000, 4);
    const img = await image('perm.img', '4M', { f: old });
    fs.chownSync(img, NOBODY, NOBODY);
    const secret = at('secret.src');
    fs.writeFileSync(secret, 'no');
    fs.chmodSync(secret, 0o600);
    const r = await runAs(NOBODY, process.execPath, [BIN, 'put', img, 'f', secret], dir);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/EPERM/);
    expect((await contents(img, 'f')).equals(old)).toBe(true);
  });

  it('replacing a sealed file needs --force', async () => {
    const old = pattern(9000, 7);
    const img = await image('sealed.img', '4M', { f: old });
    expect((await cli(['enable', img, 'f'])).status).toBe(0);
    const neu = at('neu.src');
    fs.writeFileSync(neu, 'new');
    const r = await cli(['put', img, 'f', neu]);
    expect(r.status).toBe(1);
    expect(r.err).toMatch(/sealed.*--force.*\(EPERM\)/);
    expect((await cli(['ls', img])).stdout.toString()).toBe(`${old.length}\tverity\tf\n`);
    expect((await cli(['put', img, 'f', neu, '--force'])).status).toBe(0);
    expect((await cli(['ls', img])).stdout.toString()).toBe('3\t-\tf\n');
  });
});

describe('one writer at a time', () => {
  it('concurrent writers: each lands or fails with EBUSY naming the holder, and ls agrees', async () => {
    await concurrentWriters(4);
  });
});

/** `n` puts at once into one image: each exits 0 or fails with EBUSY; ls lists exactly those that landed, with their bytes. */
async function concurrentWriters(n: number): Promise<void> {
  const img = await image(`many-${n}.img`, '32M');
  const srcs = Array.from({ length: n }, (_, i) => {
    const p = at(`many-${n}-${i}.src`);
    fs.writeFileSync(p, pattern(200000 + i, 10 + i));
    return p;
  });
  const runs = await Promise.all(srcs.map((src, i) => cli(['put', img, `f${i}`, src])));
  const landed: string[] = [];
  runs.forEach((r, i) => {
    if (r.status === 0) landed.push(`f${i}`);
    else expect(r.err, `put ${i}`).toMatch(/open (for writing|read-only) by (process \d+|another process).*\(EBUSY\)/);
  });
  expect(landed.length).toBeGreaterThan(0);
  expect(await names(img)).toEqual(landed.sort());
  for (const name of landed) {
    const i = Number(name.slice(1));
    expect((await contents(img, name)).equals(pattern(200000 + i, 10 + i)), name).toBe(true);
  }
}

describe('get', () => {
  it('a damaged sealed file: get fails with EIO and leaves no DST, nor anything beside it', async () => {
    const data = pattern(1 << 20, 30);
    const img = await image('damaged.img', '8M', { f: data });
    expect((await cli(['enable', img, 'f'])).status).toBe(0);
    const raw = fs.readFileSync(img);
    const pos = raw.indexOf(data.subarray(700000, 700064));
    expect(pos).toBeGreaterThan(0);
    raw[pos] ^= 1;
    fs.writeFileSync(img, raw);
    const dst = at('copy.bin');
    const r = await cli(['get', img, 'f', dst]);
    expect(r.status).toBe(1);
    expect(r.err).toMatch(/EIO/);
    expect(fs.existsSync(dst)).toBe(false);
    // An existing DST stays as it was.
    fs.writeFileSync(dst, 'before');
    expect((await cli(['get', img, 'f', dst])).status).toBe(1);
    expect(fs.readFileSync(dst, 'utf8')).toBe('before');
    expect(leftovers()).toEqual([]);
  });

  it('a 0444 image is read by a user who may not write it; writing commands refuse and change nothing', async (ctx) => {
    if (!IS_ROOT) ctx.skip('needs root: to become a user who may only read the image');
    skipWithoutTool(ctx, 'setpriv');
    const data = pattern(300000, 40);
    const img = await image('ro.img', '4M', { f: data });
    expect((await cli(['enable', img, 'f'])).status).toBe(0);
    fs.chmodSync(img, 0o444);
    const before = fs.readFileSync(img);
    const as = (args: string[]) => runAs(NOBODY, process.execPath, [BIN, ...args], dir);
    expect((await as(['ls', img])).stdout.toString()).toBe(`${data.length}\tverity\tf\n`);
    expect((await as(['get', img, 'f'])).stdout.equals(data)).toBe(true);
    expect((await as(['measure', img, 'f'])).stdout.toString()).toMatch(/^sha256:[0-9a-f]{64} f\n$/);
    expect((await as(['dump', img, 'f', '--type=descriptor'])).stdout.length).toBe(256);
    // Two readers at once share the image.
    const both = await Promise.all([as(['get', img, 'f']), as(['get', img, 'f'])]);
    for (const r of both) expect(r.stdout.equals(data)).toBe(true);
    const rm = await as(['rm', img, 'f']);
    expect(rm.status).toBe(1);
    expect(rm.stderr).toMatch(/EPERM/);
    expect(fs.readFileSync(img).equals(before)).toBe(true);
  });
});
