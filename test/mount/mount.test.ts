/**
 * A volume mounted with FUSE in this process (`mountVolume`), driven by
 * real programs run as child processes: cp, cmp, sha256sum, dd, tar,
 * truncate, mv, rm, mkdir, touch, df, fio, cat, getfattr and fsverity. Each
 * result is compared with the same bytes on the host filesystem or with
 * the volume reopened after the unmount.
 *
 * Every test mounts under its own temporary directory and unmounts in
 * afterEach, lazily with `fusermount -u -z` if the clean unmount fails.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DIGEST_XATTR, FileDevice, Volume, mountVolume, type Mount } from '../../src/index.js';
import { pattern } from '../helpers/device-suite.js';
import { HAVE_FUSE, forceUnmount, haveTool, requireFuseInCi, requireToolInCi, run, runOk, toolPath } from '../helpers/fuse.js';

const IMAGE_SIZE = 256 << 20;

function randomBytes(n: number, seed: number): Buffer {
  const p = pattern(n, seed);
  return Buffer.from(p.buffer, p.byteOffset, p.length);
}

it('FUSE is usable here, or the mount tests say why they are skipped (a failure under CI)', () => {
  requireFuseInCi();
});

describe.runIf(HAVE_FUSE)('mountVolume: real programs through the engine', () => {
  let dir: string;
  let mnt: string;
  let host: string;
  let img: string;
  let dev: FileDevice | undefined;
  let vol: Volume | undefined;
  let mount: Mount | undefined;

  async function mountIt(opts: { readOnly?: boolean } = {}): Promise<void> {
    dev = await FileDevice.open(img, { blockSize: 4096 });
    vol = await Volume.open(dev, { cacheBytes: 32 << 20 });
    mount = await mountVolume(vol, mnt, opts);
  }

  /** Unmount, close, and give the volume back reopened for checking. */
  async function remount(check: (v: Volume) => Promise<void>): Promise<void> {
    await mount!.unmount();
    mount = undefined;
    await vol!.close();
    vol = await Volume.open(dev!);
    await check(vol);
  }

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'iomap-verity-mount-'));
    mnt = join(dir, 'mnt');
    host = join(dir, 'host');
    mkdirSync(mnt);
    mkdirSync(host);
    img = join(dir, 'disk.img');
    const d = await FileDevice.open(img, { blockSize: 4096, size: IMAGE_SIZE, create: true });
    await (await Volume.format(d)).close();
    await d.close();
  });

  afterEach(async () => {
    if (mount) await mount.unmount().catch(() => undefined);
    await forceUnmount(mnt);
    mount = undefined;
    if (vol) await vol.close().catch(() => undefined);
    if (dev) await dev.close().catch(() => undefined);
    vol = undefined;
    dev = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  it('cp and cmp of a large file and a sparse one, both ways; sha256sum agrees with the host; stat and df report the volume', async () => {
    const big = join(host, 'big.bin');
    writeFileSync(big, randomBytes(24 << 20, 1));
    // Sparse: data at 0, 5 MiB + 123 and the last bytes of 40 MiB, holes between.
    const sparse = join(host, 'sparse.bin');
    await runOk('truncate', ['-s', String(40 << 20), sparse]);
    for (const [off, seed] of [[0, 2], [(5 << 20) + 123, 3], [(40 << 20) - 5000, 4]] as const) {
      writeFileSync(join(host, 'chunk'), randomBytes(5000, seed));
      await runOk('dd', [`if=${join(host, 'chunk')}`, `of=${sparse}`, 'bs=1', `seek=${off}`, 'conv=notrunc', 'status=none']);
    }
    await mountIt();
    await runOk('cp', [big, sparse, mnt]);
    await runOk('cmp', [big, join(mnt, 'big.bin')]);
    await runOk('cmp', [sparse, join(mnt, 'sparse.bin')]);
    const sums = (await runOk('sha256sum', [big, sparse, join(mnt, 'big.bin'), join(mnt, 'sparse.bin')])).stdout.toString().split('\n');
    expect(sums[2]!.split(' ')[0]).toBe(sums[0]!.split(' ')[0]);
    expect(sums[3]!.split(' ')[0]).toBe(sums[1]!.split(' ')[0]);
    // And back out, into the host filesystem.
    await runOk('cp', ['--sparse=always', join(mnt, 'sparse.bin'), join(host, 'back.bin')]);
    await runOk('cmp', [sparse, join(host, 'back.bin')]);
    const st = (await runOk('stat', ['-c', '%s %F %a', join(mnt, 'big.bin')])).stdout.toString().trim();
    expect(st).toBe(`${24 << 20} regular file 644`);
    const df = (await runOk('df', ['-B4096', '--output=size,avail', mnt])).stdout.toString().trim().split('\n')[1]!.trim().split(/\s+/).map(Number);
    const space = vol!.space();
    expect(df[0]).toBe(space.totalBlocks);
    expect(Math.abs(df[1]! - (space.freeBlocks - space.reservedBlocks))).toBeLessThan(2048);
    await remount(async (v) => {
      expect(await v.list()).toEqual(['big.bin', 'sparse.bin']);
      const f = await v.open('big.bin');
      expect(Buffer.compare(Buffer.from(await f.read(0, f.size)), readFileSync(big))).toBe(0);
    });
  });

  it('dd overwrites in place, truncate shrinks and grows, mv replaces atomically, rm removes, mkdir and ln are refused', async () => {
    await mountIt();
    const a = join(mnt, 'a');
    const model = randomBytes(3 << 20, 5);
    writeFileSync(join(host, 'a'), model);
    await runOk('cp', [join(host, 'a'), a]);
    const patch = randomBytes(10_000, 6);
    writeFileSync(join(host, 'patch'), patch);
    await runOk('dd', [`if=${join(host, 'patch')}`, `of=${a}`, 'bs=10000', 'seek=1', 'oflag=seek_bytes', 'conv=notrunc,fsync', 'status=none']);
    patch.copy(model, 1);
    await runOk('cmp', [join(host, 'a'), a]).then(
      () => expect.fail('the patch did not change the file'),
      () => undefined,
    );
    writeFileSync(join(host, 'a'), model);
    await runOk('cmp', [join(host, 'a'), a]);
    await runOk('truncate', ['-s', '1000000', a]);
    await runOk('truncate', ['-s', '2000000', a]);
    const grown = Buffer.concat([model.subarray(0, 1_000_000), Buffer.alloc(1_000_000)]);
    writeFileSync(join(host, 'grown'), grown);
    await runOk('cmp', [join(host, 'grown'), a]);
    // rename over an existing file
    writeFileSync(join(host, 'b'), 'the new b');
    await runOk('cp', [join(host, 'b'), join(mnt, 'b.tmp')]);
    await runOk('touch', [join(mnt, 'b')]);
    await runOk('mv', ['-f', join(mnt, 'b.tmp'), join(mnt, 'b')]);
    expect((await runOk('cat', [join(mnt, 'b')])).stdout.toString()).toBe('the new b');
    expect((await runOk('ls', ['-1a', mnt])).stdout.toString()).toBe('.\n..\na\nb\n');
    await runOk('rm', [join(mnt, 'b')]);
    const mk = await run('mkdir', [join(mnt, 'sub')]);
    expect(mk.status).not.toBe(0);
    expect(mk.stderr).toContain('Operation not permitted');
    const ln = await run('ln', [a, join(mnt, 'hard')]);
    expect(ln.status).not.toBe(0);
    const missing = await run('cat', [join(mnt, 'nope')]);
    expect(missing.stderr).toContain('No such file or directory');
    await remount(async (v) => {
      expect(await v.list()).toEqual(['a']);
      const f = await v.open('a');
      expect(Buffer.compare(Buffer.from(await f.read(0, f.size)), grown)).toBe(0);
    });
  });

  it('a file removed while a program has it open still reads through that descriptor, and is gone after the close', async () => {
    await mountIt();
    const f = join(mnt, 'open.bin');
    writeFileSync(join(host, 'open.bin'), randomBytes(200_000, 50));
    await runOk('cp', [join(host, 'open.bin'), f]);
    const script = `exec 3<"${f}"; ${toolPath('rm')} "${f}" || exit 1; ${toolPath('cat')} <&3`;
    const r = await runOk('sh', ['-c', script]);
    expect(Buffer.compare(r.stdout, readFileSync(join(host, 'open.bin')))).toBe(0);
    await remount(async (v) => expect(await v.list()).toEqual([]));
  });

  it('tar archives files off the mount and the archive extracts to the same bytes', async () => {
    await mountIt();
    const names = ['one', 'two', 'three'];
    for (const [i, n] of names.entries()) writeFileSync(join(host, n), randomBytes(100_000 * (i + 1) + i, 10 + i));
    await runOk('cp', names.map((n) => join(host, n)).concat(mnt));
    await runOk('tar', ['-cf', join(host, 'a.tar'), '-C', mnt, ...names]);
    const out = join(host, 'out');
    mkdirSync(out);
    await runOk('tar', ['-xf', join(host, 'a.tar'), '-C', out]);
    for (const n of names) await runOk('cmp', [join(host, n), join(out, n)]);
    // A flat archive extracts into the mount too.
    await runOk('rm', names.map((n) => join(mnt, n)));
    await runOk('tar', ['-xf', join(host, 'a.tar'), '-C', mnt, '-m']);
    for (const n of names) await runOk('cmp', [join(host, n), join(mnt, n)]);
  });

  it('concurrent writers and readers (dd and cat at once) each see their own bytes', async () => {
    await mountIt();
    const n = 6;
    for (let i = 0; i < n; i++) writeFileSync(join(host, `w${i}`), randomBytes((1 << 20) * (i + 1) + 17 * i, 20 + i));
    await runOk('cp', [join(host, 'w0'), join(mnt, 'r0')]);
    const jobs: Promise<unknown>[] = [];
    for (let i = 0; i < n; i++) {
      jobs.push(runOk('dd', [`if=${join(host, `w${i}`)}`, `of=${join(mnt, `w${i}`)}`, `bs=${4096 * (i + 1) + 512}`, 'conv=fsync', 'status=none']));
      jobs.push(runOk('cat', [join(mnt, 'r0')]).then((r) => expect(Buffer.compare(r.stdout, readFileSync(join(host, 'w0')))).toBe(0)));
    }
    await Promise.all(jobs);
    await Promise.all(Array.from({ length: n }, (_, i) => runOk('cmp', [join(host, `w${i}`), join(mnt, `w${i}`)])));
  });

  it.runIf(haveTool('fio'))('fio random read/write jobs verify every block with crc32c', async () => {
    requireToolInCi('fio');
    await mountIt();
    const r = await runOk('fio', [
      '--name=rw',
      `--directory=${mnt}`,
      '--size=8M',
      '--numjobs=2',
      '--rw=randrw',
      '--bs=4k',
      '--ioengine=psync',
      '--verify=crc32c',
      '--verify_state_save=0',
      '--verify_fatal=1',
      '--do_verify=1',
      '--fallocate=none',
      '--fsync=16',
      '--group_reporting',
    ]);
    expect(r.stdout.toString()).toMatch(/rw: \(groupid=0, jobs=2\): err= 0/);
    const seq = await runOk('fio', [
      '--name=seq',
      `--directory=${mnt}`,
      '--size=8M',
      '--rw=write',
      '--bs=128k',
      '--ioengine=psync',
      '--verify=crc32c',
      '--verify_state_save=0',
      '--verify_fatal=1',
      '--fallocate=none',
      '--end_fsync=1',
    ]);
    expect(seq.stdout.toString()).toMatch(/err= 0/);
  });

  it('a sealed file: EPERM for writing, its digest as an xattr and from fsverity digest, and a tampered block is EIO at its offset for cat and dd', async () => {
    const BLOCKS = 12;
    const BAD = 5;
    // Each block starts with a tag found again in the image to damage it.
    const data = randomBytes(BLOCKS * 4096 - 100, 30);
    for (let b = 0; b < BLOCKS; b++) data.write(`<<block ${String(b).padStart(3, '0')} tag 7f3a>>`, b * 4096);
    {
      const d = await FileDevice.open(img, { blockSize: 4096 });
      const v = await Volume.open(d);
      for (const name of ['good', 'bad']) {
        const f = await v.create(name);
        await f.write(0, data);
        await f.enableVerity();
      }
      await v.close();
      await d.close();
    }
    const expected = (await (async () => {
      const d = await FileDevice.open(img, { blockSize: 4096 });
      const v = await Volume.open(d);
      const m = await (await v.open('good')).measureVerity();
      await v.close();
      await d.close();
      return m.formatted;
    })()) as string;
    // Damage block BAD of "bad" (the second copy of the tag in the image).
    const image = readFileSync(img);
    const tag = Buffer.from(`<<block ${String(BAD).padStart(3, '0')} tag 7f3a>>`);
    const first = image.indexOf(tag);
    const second = image.indexOf(tag, first + 1);
    expect(second).toBeGreaterThan(first);
    const { openSync, writeSync, closeSync } = await import('node:fs');
    const fd = openSync(img, 'r+');
    writeSync(fd, Buffer.from([image[second + 100]! ^ 0x01]), 0, 1, second + 100);
    closeSync(fd);

    await mountIt();
    const good = join(mnt, 'good');
    const bad = join(mnt, 'bad');
    const st = (await runOk('stat', ['-c', '%a', good])).stdout.toString().trim();
    expect(st).toBe('444');
    writeFileSync(join(host, 'data'), data);
    await runOk('cmp', [join(host, 'data'), good]);
    // Writing is refused, whatever the program.
    const w = await run('dd', ['if=/dev/zero', `of=${good}`, 'bs=1', 'count=1', 'conv=notrunc', 'status=none']);
    expect(w.status).not.toBe(0);
    expect(w.stderr).toContain('Operation not permitted');
    const t = await run('truncate', ['-s', '0', good]);
    expect(t.status).not.toBe(0);
    expect(t.stderr).toContain('Operation not permitted');
    // The digest, as fsverity-utils prints it.
    if (haveTool('getfattr')) {
      const x = await runOk('getfattr', ['--only-values', '-n', DIGEST_XATTR, good]);
      expect(x.stdout.toString()).toBe(expected);
    }
    requireToolInCi('getfattr');
    if (haveTool('fsverity')) {
      const r = await runOk('fsverity', ['digest', good]);
      expect(r.stdout.toString()).toBe(`${expected} ${good}\n`);
    }
    requireToolInCi('fsverity');
    // cat: Input/output error, after the good blocks.
    const c = await run('cat', [bad]);
    expect(c.status).not.toBe(0);
    expect(c.stderr).toContain('Input/output error');
    expect(c.stdout.length).toBe(BAD * 4096);
    expect(Buffer.compare(c.stdout, data.subarray(0, BAD * 4096))).toBe(0);
    // dd: exactly the blocks before the damaged one are copied.
    const out = join(host, 'dd.out');
    const dd = await run('dd', [`if=${bad}`, `of=${out}`, 'bs=4096']);
    expect(dd.status).not.toBe(0);
    expect(dd.stderr).toContain('Input/output error');
    expect(statSync(out).size).toBe(BAD * 4096);
    // The rest of the file still reads.
    const after = await runOk('dd', [`if=${bad}`, 'bs=4096', `skip=${BAD + 1}`, 'status=none']);
    expect(Buffer.compare(after.stdout, data.subarray((BAD + 1) * 4096))).toBe(0);
    const one = await run('dd', [`if=${bad}`, 'bs=4096', `skip=${BAD}`, 'count=1', 'status=none']);
    expect(one.stderr).toContain('Input/output error');
    expect(one.stdout.length).toBe(0);
  });

  it('a full volume is ENOSPC for dd, keeps what was there, and takes writes again once a file is removed', async () => {
    rmSync(img);
    const d = await FileDevice.open(img, { blockSize: 4096, size: 16 << 20, create: true });
    await (await Volume.format(d)).close();
    await d.close();
    await mountIt();
    writeFileSync(join(host, 'keep'), randomBytes(100_000, 40));
    await runOk('cp', [join(host, 'keep'), mnt]);
    const full = await run('dd', ['if=/dev/zero', `of=${join(mnt, 'fill')}`, 'bs=1M', 'count=64', 'conv=fsync']);
    expect(full.status).not.toBe(0);
    expect(full.stderr).toContain('No space left on device');
    await runOk('cmp', [join(host, 'keep'), join(mnt, 'keep')]);
    await runOk('rm', [join(mnt, 'fill')]);
    await runOk('dd', ['if=/dev/zero', `of=${join(mnt, 'again')}`, 'bs=1M', 'count=4', 'conv=fsync', 'status=none']);
    await remount(async (v) => {
      expect(await v.list()).toEqual(['again', 'keep']);
      const f = await v.open('keep');
      expect(Buffer.compare(Buffer.from(await f.read(0, f.size)), readFileSync(join(host, 'keep')))).toBe(0);
    });
  });

  it('read-only: every change is EROFS, reads work', async () => {
    {
      const d = await FileDevice.open(img, { blockSize: 4096 });
      const v = await Volume.open(d);
      await (await v.create('x')).write(0, Buffer.from('hello'));
      await v.close();
      await d.close();
    }
    await mountIt({ readOnly: true });
    expect((await runOk('cat', [join(mnt, 'x')])).stdout.toString()).toBe('hello');
    for (const [tool, args] of [
      ['touch', [join(mnt, 'new')]],
      ['dd', ['if=/dev/zero', `of=${join(mnt, 'x')}`, 'count=1', 'conv=notrunc', 'status=none']],
      ['rm', ['-f', join(mnt, 'x')]],
    ] as const) {
      const r = await run(tool, [...args]);
      expect(r.status, `${tool} ${args.join(' ')}`).not.toBe(0);
      expect(r.stderr).toContain('Read-only file system');
    }
  });
});
