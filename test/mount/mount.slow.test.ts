/**
 * The heavier mount runs, outside the default slice: a 512 MiB file and a
 * 2 GiB sparse one copied in and out with cp and compared with cmp, longer
 * fio jobs with crc32c verification (random read/write, several jobs at
 * once), and ten SIGKILL rounds of the mount process during a write
 * workload on one image.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HAVE_FUSE, forceUnmount, fusermountU, haveTool, mountWithCli, requireFuseInCi, requireToolInCi, runOk } from '../helpers/fuse.js';
import { crashRound } from '../helpers/mount-crash.js';

const BIN = new URL('../../dist/src/cli/main.js', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'iomap-verity-mount-slow-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function mkfs(img: string, size: string): Promise<void> {
  const { spawnSync } = await import('node:child_process');
  expect(spawnSync(process.execPath, [BIN, 'mkfs', img, `--size=${size}`]).status).toBe(0);
}

describe.runIf(HAVE_FUSE)('mount, heavy', () => {
  it('cp and cmp of 512 MiB and of a 2 GiB sparse file, in and out', async () => {
    requireFuseInCi();
    const img = join(dir, 'big.img');
    const mnt = join(dir, 'mnt-big');
    mkdirSync(mnt);
    await mkfs(img, '1200M');
    const big = join(dir, 'big.bin');
    const sparse = join(dir, 'sparse.bin');
    await runOk('dd', ['if=/dev/urandom', `of=${big}`, 'bs=1M', 'count=512', 'status=none']);
    await runOk('truncate', ['-s', '2G', sparse]);
    for (const seek of [0, 700, 2047]) await runOk('dd', ['if=/dev/urandom', `of=${sparse}`, 'bs=1M', 'count=1', `seek=${seek}`, 'conv=notrunc', 'status=none']);
    const m = await mountWithCli(img, mnt, ['--cache=64M']);
    try {
      await runOk('cp', ['--sparse=always', big, sparse, mnt], { timeoutMs: 600_000 });
      await runOk('cmp', [big, join(mnt, 'big.bin')], { timeoutMs: 600_000 });
      await runOk('cmp', [sparse, join(mnt, 'sparse.bin')], { timeoutMs: 600_000 });
      await runOk('cp', ['--sparse=always', join(mnt, 'sparse.bin'), join(dir, 'back.bin')], { timeoutMs: 600_000 });
      await runOk('cmp', [sparse, join(dir, 'back.bin')], { timeoutMs: 600_000 });
      expect(await fusermountU(mnt)).toBe(0);
      expect((await m.exited).code).toBe(0);
    } finally {
      if (m.child.exitCode === null) m.child.kill('SIGKILL');
      await forceUnmount(mnt);
    }
  });

  it.runIf(haveTool('fio'))('fio: random read/write, 4 jobs, 64 MiB each, crc32c verified', async () => {
    requireFuseInCi();
    requireToolInCi('fio');
    const img = join(dir, 'fio.img');
    const mnt = join(dir, 'mnt-fio');
    mkdirSync(mnt);
    await mkfs(img, '512M');
    const m = await mountWithCli(img, mnt, ['--cache=32M']);
    try {
      for (const rw of ['randrw', 'randwrite', 'rw']) {
        const r = await runOk(
          'fio',
          [`--name=${rw}`, `--directory=${mnt}`, '--size=64M', '--numjobs=4', `--rw=${rw}`, '--bsrange=4k-64k', '--ioengine=psync', '--verify=crc32c', '--verify_state_save=0', '--verify_fatal=1', '--do_verify=1', '--fallocate=none', '--fsync=64', '--group_reporting'],
          { timeoutMs: 600_000 },
        );
        expect(r.stdout.toString()).toMatch(/err= 0/);
        // 4 x 64 MiB per job: the next one needs the space back.
        await runOk('rm', [0, 1, 2, 3].map((j) => join(mnt, `${rw}.${j}.0`)));
      }
      expect(await fusermountU(mnt)).toBe(0);
    } finally {
      if (m.child.exitCode === null) m.child.kill('SIGKILL');
      await forceUnmount(mnt);
    }
  });

  it('ten SIGKILL rounds on one image, each checked', async () => {
    requireFuseInCi();
    const img = join(dir, 'crash.img');
    await mkfs(img, '256M');
    for (let round = 1; round <= 10; round++) {
      await crashRound(dir, img, round, 1 + (round % 5), (round * 37) % 400);
    }
  });
});
