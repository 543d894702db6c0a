/**
 * `iomap-verity mount` as a real process (the built command line): it
 * serves until `fusermount -u`, SIGINT or SIGTERM, then commits and closes,
 * and exits 0; bad command lines and mount points fail with a message; a
 * read-only mount shares the image with read-only commands; and
 * a SIGKILL in the middle of a write workload leaves an image that opens
 * with every fsynced file (one round here, more in mount.slow.test.ts).
 *
 * Needs `npm run build` (the test script runs it first).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileDevice, Volume } from '../../src/index.js';
import { HAVE_FUSE, forceUnmount, fusermountU, mountWithCli, requireFuseInCi, runOk, type CliMount } from '../helpers/fuse.js';
import { crashRound } from '../helpers/mount-crash.js';

const BIN = new URL('../../dist/src/cli/main.js', import.meta.url).pathname;

function cli(args: string[], cwd: string) {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd, encoding: 'utf8' });
  return { status: r.status, out: r.stdout, err: r.stderr };
}

describe('iomap-verity mount: command line', () => {
  let dir: string;
  let mnt: string;
  let img: string;
  let running: CliMount | undefined;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'iomap-verity-mount-cli-'));
    mnt = join(dir, 'mnt');
    mkdirSync(mnt);
    img = join(dir, 'disk.img');
    expect(cli(['mkfs', img, '--size=128M'], dir).status).toBe(0);
  });

  afterEach(async () => {
    if (running && running.child.exitCode === null && running.child.signalCode === null) running.child.kill('SIGKILL');
    running = undefined;
    await forceUnmount(mnt);
    rmSync(dir, { recursive: true, force: true });
  });

  async function contents(name: string): Promise<Buffer> {
    const dev = await FileDevice.open(img, { blockSize: 512 });
    try {
      const vol = await Volume.open(dev);
      const f = await vol.open(name);
      const b = Buffer.from(await f.read(0, f.size));
      await vol.close();
      return b;
    } finally {
      await dev.close();
    }
  }

  it('refuses a bad command line (exit 2) and a missing image or mount point (exit 1, with the errno)', () => {
    expect(cli(['mount', img], dir).status).toBe(2);
    expect(cli(['mount', img, mnt, '--cache=zz'], dir).status).toBe(2);
    const noImg = cli(['mount', join(dir, 'nope.img'), mnt], dir);
    expect(noImg.status).toBe(1);
    expect(noImg.err).toContain('ENOENT');
    if (!HAVE_FUSE) return;
    const noDir = cli(['mount', img, join(dir, 'nodir')], dir);
    expect(noDir.status).toBe(1);
    expect(noDir.err).toContain('ENOENT');
  });

  it.runIf(HAVE_FUSE)('serves until fusermount -u, then commits: the image holds what was written, without any fsync', async () => {
    requireFuseInCi();
    running = await mountWithCli(img, mnt, ['--cache=16M']);
    writeFileSync(join(dir, 'src'), 'through the mount\n');
    await runOk('cp', [join(dir, 'src'), join(mnt, 'a')]);
    expect(await fusermountU(mnt)).toBe(0);
    const exit = await running.exited;
    expect(exit.code).toBe(0);
    expect(running.output().stdout).toContain(`unmounted ${mnt}`);
    expect((await contents('a')).toString()).toBe('through the mount\n');
  });

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it.runIf(HAVE_FUSE)(`${signal} unmounts, commits and exits 0`, async () => {
      requireFuseInCi();
      running = await mountWithCli(img, mnt);
      writeFileSync(join(dir, 'src'), signal);
      await runOk('cp', [join(dir, 'src'), join(mnt, 'b')]);
      running.child.kill(signal);
      const exit = await running.exited;
      expect(exit.code, running.output().stderr).toBe(0);
      expect((await contents('b')).toString()).toBe(signal);
    });
  }

  it.runIf(HAVE_FUSE)('a read-only mount shares the image with read-only commands, while a writing command gets EBUSY', async () => {
    requireFuseInCi();
    writeFileSync(join(dir, 'src'), 'read me\n');
    expect(cli(['put', img, 'a', join(dir, 'src')], dir).status).toBe(0);
    running = await mountWithCli(img, mnt, ['--read-only']);
    expect(readFileSync(join(mnt, 'a'), 'utf8')).toBe('read me\n');
    const ls = cli(['ls', img], dir);
    expect(ls.status, ls.err).toBe(0);
    expect(ls.out).toContain('a');
    const rm = cli(['rm', img, 'a'], dir);
    expect(rm.status).toBe(1);
    expect(rm.err).toContain('EBUSY');
    expect(await fusermountU(mnt)).toBe(0);
    expect((await running.exited).code).toBe(0);
    expect((await contents('a')).toString()).toBe('read me\n');
  });

  it.runIf(HAVE_FUSE)('a second mount of the same directory is EBUSY', async () => {
    requireFuseInCi();
    running = await mountWithCli(img, mnt);
    const other = join(dir, 'other.img');
    expect(cli(['mkfs', other, '--size=16M'], dir).status).toBe(0);
    const r = await new Promise<{ code: number | null; err: string }>((resolve) => {
      const c = spawn(process.execPath, [BIN, 'mount', other, mnt], { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      c.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
      c.on('close', (code) => resolve({ code, err }));
    });
    expect(r.code).toBe(1);
    expect(r.err).toContain('EBUSY');
  });

  it.runIf(HAVE_FUSE)('SIGKILL of the mount during a write workload: every fsynced file reads back whole', async () => {
    requireFuseInCi();
    const synced = await crashRound(dir, img, 0, 3, 150);
    expect(synced).toBeGreaterThanOrEqual(3);
  });
});
