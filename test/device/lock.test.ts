/**
 * One writer per image file across processes, read-only opens shared with
 * each other, and no stale lock after the holder is killed with SIGKILL.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FileDevice, MemoryDevice } from '../../src/device/index.js';
import { Volume } from '../../src/fs/index.js';
import { isErrno, type ErrnoCode } from '../../src/errors.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iomap-verity-lock-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
let n = 0;
const tmp = () => path.join(dir, `img-${n++}`);
const DIST = new URL('../../dist/src/index.js', import.meta.url).pathname;

async function expectErr(p: Promise<unknown>, code: ErrnoCode, msg?: RegExp): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isErrno(err, code), `expected ${code}, got ${String(err)}`).toBe(true);
  if (msg) expect((err as Error).message).toMatch(msg);
}

/** A child process that opens `img` (for writing unless `readOnly`), says so, and waits to be killed. */
function holder(img: string, readOnly: boolean): Promise<{ pid: number; kill(): Promise<void> }> {
  const code = `
    const { FileDevice } = await import(${JSON.stringify(DIST)});
    await FileDevice.open(${JSON.stringify(img)}, { readOnly: ${readOnly} });
    process.stdout.write('ready\\n');
    setInterval(() => {}, 1000);
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (c) => reject(new Error(`holder exited with ${c}`)));
    child.stdout.once('data', () => {
      child.removeAllListeners('exit');
      resolve({
        pid: child.pid!,
        kill: () =>
          new Promise<void>((done) => {
            child.once('exit', () => done());
            child.kill('SIGKILL');
          }),
      });
    });
  });
}

describe('image lock', () => {
  it('one writer: a second is EBUSY naming the holder; readers share and exclude writers', async () => {
    const p = tmp();
    const w = await FileDevice.open(p, { size: 1 << 20, create: true });
    await expectErr(FileDevice.open(p), 'EBUSY', new RegExp(`process ${process.pid}.*wait for it`));
    await expectErr(FileDevice.open(p, { readOnly: true }), 'EBUSY', /open for writing/);
    // A second path to the same file meets the same lock.
    fs.symlinkSync(p, `${p}.link`);
    await expectErr(FileDevice.open(`${p}.link`), 'EBUSY');
    await w.close();
    const r1 = await FileDevice.open(p, { readOnly: true });
    const r2 = await FileDevice.open(`${p}.link`, { readOnly: true });
    await expectErr(FileDevice.open(p), 'EBUSY', /open read-only by process/);
    await r1.close();
    await expectErr(FileDevice.open(p), 'EBUSY');
    await r2.close();
    const w2 = await FileDevice.open(p);
    await w2.close();
  });

  it('kill -9 of the holding process frees the image at once, for writers and readers alike', async () => {
    const p = tmp();
    (await FileDevice.open(p, { size: 1 << 20, create: true })).close();
    for (const readOnly of [false, true]) {
      const h = await holder(p, readOnly);
      await expectErr(FileDevice.open(p), 'EBUSY', readOnly ? new RegExp(`read-only by process ${h.pid}`) : new RegExp(`writing by process ${h.pid}`));
      await h.kill();
      const dev = await FileDevice.open(p);
      await dev.close();
    }
  });

  it('a read-only device: O_RDONLY on a 0444 file, write and discard EROFS, no size change', async () => {
    const p = tmp();
    const w = await FileDevice.open(p, { size: 1 << 20, create: true });
    const vol = await Volume.format(w);
    await (await vol.create('f')).write(0, new Uint8Array(5000).fill(9));
    await vol.close();
    await w.close();
    fs.chmodSync(p, 0o444);
    const r = await FileDevice.open(p, { readOnly: true });
    expect(r.readOnly).toBe(true);
    await expectErr(r.write(0, new Uint8Array(512)), 'EROFS');
    await expectErr(r.discard(0, 512), 'EROFS');
    await r.flush();
    await r.close();
    await expectErr(FileDevice.open(p, { readOnly: true, size: 2 << 20 }), 'EINVAL');
    await expectErr(FileDevice.open(p, { readOnly: true, create: true, size: 1 << 20 }), 'EINVAL');
    await expectErr(FileDevice.open(p, { create: true, exclusive: true, size: 1 << 20 }), 'EEXIST');
    expect(fs.statSync(p).size).toBe(1 << 20);
  });
});

describe('read-only volume', () => {
  it('reads, and every change is EROFS; needs readOnly on a read-only device', async () => {
    const p = tmp();
    const w = await FileDevice.open(p, { size: 4 << 20, create: true });
    const vol = await Volume.format(w);
    const data = new Uint8Array(70000).map((_, i) => i * 7);
    await (await vol.create('f')).write(0, data);
    const s = await vol.create('s');
    await s.write(0, data);
    await s.enableVerity();
    await vol.close();
    await w.close();
    const before = fs.readFileSync(p);
    const dev = await FileDevice.open(p, { readOnly: true });
    await expectErr(Volume.open(dev), 'EROFS', /readOnly: true/);
    await expectErr(Volume.format(dev), 'EROFS');
    const ro = await Volume.open(dev, { readOnly: true });
    expect(ro.readOnly).toBe(true);
    expect(await ro.list()).toEqual(['f', 's']);
    const f = await ro.open('f');
    expect(Buffer.from(await f.read(0, 70000)).equals(Buffer.from(data))).toBe(true);
    expect(Buffer.from(await (await ro.open('s')).read(0, 70000)).equals(Buffer.from(data))).toBe(true);
    expect((await (await ro.open('s')).measureVerity()).formatted).toMatch(/^sha256:/);
    await expectErr(ro.create('g'), 'EROFS');
    await expectErr(ro.remove('f'), 'EROFS');
    await expectErr(ro.rename('f', 'g'), 'EROFS');
    await expectErr(f.write(0, new Uint8Array(1)), 'EROFS');
    await expectErr(f.truncate(0), 'EROFS');
    await expectErr(f.allocate(0, 4096), 'EROFS');
    await expectErr(f.enableVerity(), 'EROFS');
    await f.fsync();
    await ro.sync();
    await ro.close();
    await dev.close();
    expect(fs.readFileSync(p).equals(before)).toBe(true);
  });

  it('something that is not a device is EINVAL, never a TypeError', async () => {
    for (const bad of [null, undefined, {}, 'disk.img', 42]) {
      await expectErr(Volume.open(bad as unknown as MemoryDevice), 'EINVAL', /BlockDevice/);
      await expectErr(Volume.format(bad as unknown as MemoryDevice), 'EINVAL', /BlockDevice/);
    }
    await expectErr(Volume.open(new MemoryDevice({ blockSize: 512, size: 1 << 20 }), null as unknown as undefined), 'EINVAL');
  });
});
