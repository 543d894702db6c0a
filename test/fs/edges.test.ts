/**
 * The engine at its edges, from the kernel's contract (xfstests' verity
 * group, fsverity.rst) and from attacks on its own durability promise:
 * every refusal carries a code and arrives as a rejection, a buffer that
 * changes under a write never writes memory the caller no longer owns,
 * and no crash or fallback ever shows another file's bytes.
 */
import { describe, expect, it } from 'vitest';
import { MemoryDevice, FaultyDevice } from '../../src/device/index.js';
import { Volume, type File } from '../../src/fs/index.js';
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

/** A volume whose page cache memory has just held another file's bytes (0xEE), freed again. */
async function dirtyCacheVolume() {
  const dev = new MemoryDevice({ blockSize: 512, size: 32 << 20 });
  const vol = await Volume.format(dev, { cacheBytes: 8 << 20, maxFolioSize: 65536 });
  const other = await vol.create('other');
  await other.write(0, new Uint8Array(4 << 20).fill(0xee));
  await vol.sync();
  await vol.remove('other');
  await vol.dropCaches();
  return { dev, vol };
}

/** Every byte of `f` is 0 or the byte `want` holds at that offset: never 0xEE from the other file. */
async function onlyOwnBytes(f: File, want: Uint8Array): Promise<void> {
  const got = await f.read(0, f.size);
  for (let i = 0; i < got.length; i++) {
    if (got[i] !== 0 && got[i] !== want[i]) throw new Error(`byte ${i} is ${got[i]}, neither 0 nor ${want[i]}`);
  }
}

describe('async calls reject, never throw', () => {
  it('bad arguments of File and Volume methods arrive as coded rejections', async () => {
    const vol = await Volume.format(new MemoryDevice({ blockSize: 512, size: 8 << 20 }));
    const f = await vol.create('f');
    const calls: Array<[string, () => Promise<unknown>, ErrnoCode]> = [
      ['read(-1, 1)', () => f.read(-1, 1), 'EINVAL'],
      ['readInto(0, "x")', () => f.readInto(0, 'x' as unknown as Uint8Array), 'EINVAL'],
      ['write(0, null)', () => f.write(0, null as unknown as Uint8Array), 'EINVAL'],
      ['truncate(-5)', () => f.truncate(-5), 'EINVAL'],
      ['allocate(0, NaN)', () => f.allocate(0, Number.NaN), 'EINVAL'],
      ['enableVerity({ salt: 33 bytes })', () => f.enableVerity({ salt: new Uint8Array(33) }), 'EMSGSIZE'],
      ['enableVerity({ blockSize: 3000 })', () => f.enableVerity({ blockSize: 3000 }), 'EINVAL'],
      ["readVerityMetadata('bogus')", () => f.readVerityMetadata('bogus' as 'descriptor', 0, 1), 'EINVAL'],
      ['create("a/b")', () => vol.create('a/b'), 'EINVAL'],
      ['open(42)', () => vol.open(42 as unknown as string), 'EINVAL'],
      ['remove("")', () => vol.remove(''), 'EINVAL'],
      ['rename("f", "x/y")', () => vol.rename('f', 'x/y'), 'EINVAL'],
    ];
    for (const [what, call, code] of calls) {
      let p: Promise<unknown> | undefined;
      expect(() => (p = call()), what).not.toThrow();
      await expectErr(p!, code);
    }
    await vol.close();
  });

  it('a salt over 32 bytes is EMSGSIZE when sealing, as FS_IOC_ENABLE_VERITY says', async () => {
    const vol = await Volume.format(new MemoryDevice({ blockSize: 512, size: 8 << 20 }));
    const f = await vol.create('f');
    await f.write(0, bytes(5000, 1));
    await expectErr(f.enableVerity({ salt: new Uint8Array(33) }), 'EMSGSIZE', /salt of 33 bytes.*at most 32/);
    await f.enableVerity({ salt: new Uint8Array(32).fill(1) });
    expect(f.isVerity).toBe(true);
    await vol.close();
  });
});

describe('huge reads', () => {
  it('read(0, 2**32 + 5) of a large sparse file is a coded refusal; a small file reads whole', async () => {
    const vol = await Volume.format(new MemoryDevice({ blockSize: 512, size: 8 << 20 }));
    const f = await vol.create('sparse');
    await f.truncate(2 ** 33);
    await expectErr(f.read(0, 2 ** 32 + 5), 'EINVAL', /at most 2147479552 bytes/);
    expect((await f.read(2 ** 33 - 10, 2 ** 32 + 5)).length).toBe(10);
    const small = await vol.create('small');
    await small.write(0, bytes(100, 2));
    expect((await small.read(0, 2 ** 32 + 5)).length).toBe(100);
    await vol.close();
  });
});

describe('a buffer that changes under a write', () => {
  it('a resizable ArrayBuffer shrunk while the write is queued: the bytes at the call are written', async () => {
    const { dev, vol } = await dirtyCacheVolume();
    const f = await vol.create('f');
    const want = bytes(3 << 20, 3);
    type Resizable = ArrayBuffer & { resize(n: number): void };
    const ab = new (ArrayBuffer as unknown as new (n: number, o: { maxByteLength: number }) => Resizable)(want.length, { maxByteLength: want.length });
    const view = new Uint8Array(ab);
    view.set(want);
    const first = f.write(0, bytes(1 << 20, 4)); // the volume is busy: the next write queues
    const queued = f.write(0, view);
    ab.resize(4096);
    await first;
    await queued;
    expect(Buffer.from(await f.read(0, want.length)).equals(Buffer.from(want))).toBe(true);
    await vol.close();
    const again = await Volume.open(dev);
    expect(Buffer.from(await (await again.open('f')).read(0, want.length)).equals(Buffer.from(want))).toBe(true);
    await again.close();
  });

  it('a buffer transferred while the write is queued: EINVAL, and never another file\'s bytes', async () => {
    const { dev, vol } = await dirtyCacheVolume();
    const f = await vol.create('f');
    const want = bytes(3 << 20, 5);
    const first = f.write(0, bytes(1 << 20, 6));
    const data = want.slice();
    const queued = f.write(0, data);
    structuredClone(data.buffer, { transfer: [data.buffer] });
    expect(data.byteLength).toBe(0);
    await first;
    await expectErr(queued, 'EINVAL', /transferred or resized/);
    await onlyOwnBytes(f, bytes(1 << 20, 6));
    await vol.close();
    const again = await Volume.open(dev);
    await onlyOwnBytes(await again.open('f'), bytes(1 << 20, 6));
    await again.close();
  });
});

/** Zero the newest superblock slot (the one with the higher generation), as bit rot or a torn write would. */
async function damageNewestSuperblock(dev: FaultyDevice): Promise<void> {
  const gens: number[] = [];
  for (const off of [0, 65536]) {
    const b = new Uint8Array(4096);
    await dev.read(off, b);
    gens.push(new DataView(b.buffer).getUint32(24, true));
  }
  await dev.write(gens[0]! > gens[1]! ? 0 : 65536, new Uint8Array(4096));
  await dev.flush();
}

describe('freed blocks and the fallback commit', () => {
  for (const reopen of [false, true]) {
    it(`blocks of a removed file are not reused while the commit open falls back to still holds them${reopen ? ' (after a reopen)' : ''}`, async () => {
      const dev = new FaultyDevice(new MemoryDevice({ blockSize: 512, size: 8 << 20 }));
      let vol = await Volume.format(dev, { blockSize: 4096 });
      const a = await vol.create('a');
      const aData = new Uint8Array(512 << 10).fill(0xaa);
      await a.write(0, aData);
      await vol.sync(); // commit g-1 holds a
      await vol.remove('a');
      await vol.sync(); // commit g: a is gone, its blocks free in g only
      if (reopen) {
        await dev.crash({ keep: 'all' });
        vol = await Volume.open(dev);
      }
      // Another file fills the volume, written back to the device but never committed.
      const b = await vol.create('b');
      const free = vol.space().freeBlocks;
      await b.write(0, new Uint8Array(free * 4096).fill(0xbb));
      await vol.dropCaches();
      await dev.crash({ keep: 'all' });
      await damageNewestSuperblock(dev);
      const back = await Volume.open(dev);
      expect(await back.list()).toEqual(['a']);
      const got = await (await back.open('a')).read(0, aData.length);
      expect(got.every((x) => x === 0xaa), 'a reads its own bytes, never b\'s').toBe(true);
      await back.close();
    });
  }

  it('the blocks come back after two commits', async () => {
    const vol = await Volume.format(new MemoryDevice({ blockSize: 512, size: 8 << 20 }), { blockSize: 4096 });
    const total = vol.space().freeBlocks;
    const a = await vol.create('a');
    await a.write(0, new Uint8Array(1 << 20).fill(1));
    await vol.sync();
    await vol.remove('a');
    await vol.sync();
    expect(vol.space().freeBlocks).toBe(total - 256);
    expect(vol.space().pendingFreeBlocks).toBe(256);
    await vol.sync();
    expect(vol.space().freeBlocks).toBe(total);
    // A write that needs them commits as often as it takes.
    await vol.remove((await vol.create('x')).name);
    const big = await vol.create('big');
    await big.write(0, new Uint8Array(total * 4096 - 8192).fill(2));
    await big.truncate(0);
    await big.write(0, new Uint8Array(total * 4096 - 8192).fill(3));
    await vol.close();
  });
});

describe('sealing a file too large for its metadata', () => {
  it('EFBIG at once, before any hashing (xfstests generic/692: a 9006645204113407-byte file)', async () => {
    const vol = await Volume.format(new MemoryDevice({ blockSize: 512, size: 8 << 20 }));
    const f = await vol.create('huge');
    await f.truncate(9006645204113407);
    let progress = 0;
    await expectErr(f.enableVerity({ onProgress: () => progress++ }), 'EFBIG', /largest file offset/);
    expect(progress).toBe(0);
    expect(f.isVerity).toBe(false);
    // A file whose metadata does fit still seals (sparse: only its holes).
    const ok = await vol.create('big');
    await ok.truncate(2 ** 40);
    await ok.enableVerity();
    expect(ok.isVerity).toBe(true);
    await vol.close();
  });
});

describe('a seal whose final commit fails', () => {
  for (const keep of ['all', 'none'] as const) {
    it(`stays sealed and read-only, and after a crash (keeping ${keep} of the unflushed writes) is sealed and verifying, or as it was`, async () => {
      const dev = new FaultyDevice(new MemoryDevice({ blockSize: 512, size: 8 << 20 }));
      const vol = await Volume.format(dev, { blockSize: 4096 });
      const f = await vol.create('f');
      const data = bytes(300000, 9);
      await f.write(0, data);
      await f.fsync();
      // The flush right after a superblock write: the last step of the seal's commit.
      const superblock = (o: { op: string; offset: number; length: number }) => o.op === 'write' && (o.offset === 0 || o.offset === 65536) && o.length === 4096;
      const fault = dev.injectFault({ op: 'flush', when: (op) => superblock(dev.ops[op.seq - 1] ?? { op: '', offset: -1, length: 0 }) });
      await expectErr(f.enableVerity(), 'EIO', /is sealed, but committing the seal failed/);
      expect(fault.fired).toBe(1);
      expect(f.isVerity).toBe(true);
      await expectErr(f.write(0, new Uint8Array(10).fill(1)), 'EPERM');
      expect(Buffer.from(await f.read(0, data.length)).equals(Buffer.from(data))).toBe(true);
      const digest = (await f.measureVerity()).formatted;
      await dev.crash({ keep });
      const back = await Volume.open(dev);
      const g = await back.open('f');
      expect(Buffer.from(await g.read(0, data.length + 1)).equals(Buffer.from(data))).toBe(true);
      if (g.isVerity) expect((await g.measureVerity()).formatted).toBe(digest);
      else {
        await g.enableVerity();
        expect((await g.measureVerity()).formatted).toBe(digest);
      }
      await back.close();
    });
  }

  it('the next sync commits the seal', async () => {
    const dev = new FaultyDevice(new MemoryDevice({ blockSize: 512, size: 8 << 20 }));
    const vol = await Volume.format(dev, { blockSize: 4096 });
    const f = await vol.create('f');
    await f.write(0, bytes(100000, 10));
    dev.injectFault({ op: 'flush', when: (op) => dev.ops[op.seq - 1]?.op === 'write' && [0, 65536].includes(dev.ops[op.seq - 1]!.offset) });
    await expectErr(f.enableVerity(), 'EIO');
    await vol.sync();
    await dev.crash({ keep: 'none' });
    const back = await Volume.open(dev);
    expect((await back.open('f')).isVerity).toBe(true);
    await back.close();
  });
});

describe("another file's fsync", () => {
  for (const keep of ['all', 'none'] as const) {
    it(`never commits an unsynced file's new size without its data (crash keeping ${keep} of the unflushed writes)`, async () => {
      const dev = new FaultyDevice(new MemoryDevice({ blockSize: 512, size: 16 << 20 }));
      const vol = await Volume.format(dev, { blockSize: 4096, cacheBytes: 8 << 20, maxFolioSize: 65536 });
      const b = await vol.create('b');
      const old = bytes(10000, 11);
      await b.write(0, old);
      await b.fsync();
      // b grows, unsynced; a is written and fsynced meanwhile.
      const grown = bytes(2 << 20, 12);
      await b.write(old.length, grown);
      const a = await vol.create('a');
      await a.write(0, bytes(5000, 13));
      await a.fsync();
      await dev.crash({ keep });
      const back = await Volume.open(dev);
      const b2 = await back.open('b');
      const want = new Uint8Array(old.length + grown.length);
      want.set(old);
      want.set(grown, old.length);
      const got = await b2.read(0, b2.size);
      // A size it had, and at each offset a byte it held: never zeros it never held.
      expect([old.length, want.length]).toContain(b2.size);
      expect(Buffer.from(got).equals(Buffer.from(want.subarray(0, b2.size)))).toBe(true);
      expect((await back.open('a')).size).toBe(5000);
      await back.close();
    });
  }

  it('the size is committed once its data is written back, and by its own fsync', async () => {
    const dev = new FaultyDevice(new MemoryDevice({ blockSize: 512, size: 16 << 20 }));
    const vol = await Volume.format(dev, { blockSize: 4096 });
    const b = await vol.create('b');
    await b.write(0, bytes(300000, 14));
    await b.fsync();
    await dev.crash({ keep: 'none' });
    const back = await Volume.open(dev);
    expect((await back.open('b')).size).toBe(300000);
    await back.close();
  });
});
