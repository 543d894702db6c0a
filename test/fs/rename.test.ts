/**
 * Volume.rename: one atomic step in the namespace, replacing the target,
 * durable at the next commit whatever a crash keeps of what came after.
 */
import { describe, expect, it } from 'vitest';
import { MemoryDevice, FaultyDevice } from '../../src/device/index.js';
import { Volume } from '../../src/fs/index.js';
import { isErrno, type ErrnoCode } from '../../src/errors.js';

async function expectErr(p: Promise<unknown>, code: ErrnoCode, msg?: RegExp): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isErrno(err, code), `expected ${code}, got ${String(err)}`).toBe(true);
  if (msg) expect((err as Error).message).toMatch(msg);
}

function bytes(len: number, seed: number): Uint8Array {
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = (i * 31 + seed * 7 + (i >> 8)) & 0xff;
  return b;
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

describe('Volume.rename', () => {
  it('moves a file to a free name; open handles follow it; the old name is gone', async () => {
    const vol = await Volume.format(new MemoryDevice({ blockSize: 512, size: 8 << 20 }));
    const f = await vol.create('a');
    await f.write(0, bytes(10000, 1));
    await vol.rename('a', 'b');
    expect(await vol.list()).toEqual(['b']);
    expect(f.name).toBe('b');
    await f.write(10000, bytes(10, 2));
    expect((await vol.open('b')).size).toBe(10010);
    await expectErr(vol.open('a'), 'ENOENT');
    await vol.rename('b', 'b'); // its own name: nothing happens
    expect(await vol.list()).toEqual(['b']);
    await vol.close();
  });

  it('replaces an existing target: its handles get ENOENT, its blocks come back after the commit', async () => {
    const vol = await Volume.format(new MemoryDevice({ blockSize: 512, size: 8 << 20 }));
    const old = await vol.create('t');
    await old.write(0, bytes(1 << 20, 3));
    await vol.sync();
    const before = vol.space().freeBlocks;
    const neu = await vol.create('tmp');
    await neu.write(0, bytes(5000, 4));
    await vol.rename('tmp', 't');
    expect(await vol.list()).toEqual(['t']);
    await expectErr(old.read(0, 1), 'ENOENT');
    expect(same(await (await vol.open('t')).read(0, 5000), bytes(5000, 4))).toBe(true);
    await vol.sync();
    await vol.sync();
    // The old file's 256 blocks are free again; the new one holds 2.
    expect(vol.space().freeBlocks).toBe(before + 256 - 2);
    await vol.close();
  });

  it('ENOENT, EINVAL, ENAMETOOLONG, and a sealed target is EPERM unless replaceSealed', async () => {
    const vol = await Volume.format(new MemoryDevice({ blockSize: 512, size: 8 << 20 }));
    await expectErr(vol.rename('missing', 'x'), 'ENOENT');
    const s = await vol.create('sealed');
    await s.write(0, bytes(9000, 5));
    await s.enableVerity();
    await vol.create('n');
    await expectErr(vol.rename('n', 'a/b'), 'EINVAL');
    await expectErr(vol.rename('', 'x'), 'EINVAL');
    await expectErr(vol.rename('n', 'x'.repeat(256)), 'ENAMETOOLONG');
    await expectErr(vol.rename('n', 'sealed'), 'EPERM', /replaceSealed/);
    await expectErr(vol.rename('n', 'sealed', { replaceSealed: 'yes' as unknown as boolean }), 'EINVAL');
    expect(await vol.list()).toEqual(['n', 'sealed']);
    expect(same(await (await vol.open('sealed')).read(0, 9000), bytes(9000, 5))).toBe(true);
    await vol.rename('n', 'sealed', { replaceSealed: true });
    expect(await vol.list()).toEqual(['sealed']);
    expect((await vol.open('sealed')).isVerity).toBe(false);
    // A sealed file may itself be renamed; it stays sealed.
    const t = await vol.create('t');
    await t.write(0, bytes(100, 6));
    await t.enableVerity();
    await vol.rename('t', 'u');
    expect((await vol.open('u')).isVerity).toBe(true);
    await vol.close();
  });

  it('EBUSY while fs-verity is being enabled on either file', async () => {
    const vol = await Volume.format(new MemoryDevice({ blockSize: 512, size: 8 << 20 }));
    const a = await vol.create('a');
    await a.write(0, bytes(200000, 7));
    await vol.create('b');
    const sealing = a.enableVerity();
    await expectErr(vol.rename('a', 'c'), 'EBUSY');
    await expectErr(vol.rename('b', 'a', { replaceSealed: true }), 'EBUSY');
    await sealing;
    expect(await vol.list()).toEqual(['a', 'b']);
    await vol.close();
  });

  it('durable at the next sync, in one commit: a crash shows exactly the old state or the new one', async () => {
    for (let round = 0; round < 8; round++) {
      const dev = new FaultyDevice(new MemoryDevice({ blockSize: 512, size: 8 << 20 }));
      const vol = await Volume.format(dev, { blockSize: 4096 });
      const old = bytes(300000, 10 + round);
      const neu = bytes(200000 + round, 20 + round);
      const t = await vol.create('t');
      await t.write(0, old);
      await vol.sync();
      const tmp = await vol.create('.tmp');
      await tmp.write(0, neu);
      await tmp.fsync();
      await vol.rename('.tmp', 't');
      // Not synced yet: a crash keeps the state before the rename.
      let seed = round + 1;
      const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
      if (round % 2 === 0) {
        await dev.crash({ keep: () => rnd() < 0.5 });
        const v2 = await Volume.open(dev);
        expect(await v2.list()).toEqual(['.tmp', 't']);
        expect(same(await (await v2.open('t')).read(0, old.length + 1), old)).toBe(true);
        await v2.close();
        continue;
      }
      // Synced: the new contents under the old name, whatever is lost after.
      await vol.sync();
      await dev.crash({ keep: () => rnd() < 0.5 });
      const v2 = await Volume.open(dev);
      expect(await v2.list()).toEqual(['t']);
      expect(same(await (await v2.open('t')).read(0, neu.length + 1), neu)).toBe(true);
      await v2.close();
    }
  });
});
