/**
 * The Volume / File front: argument checks, namespace operations, space
 * accounting (ENOSPC at write time, removal frees space), what writeback
 * put where on the device, unwritten preallocation, the verity hooks, and
 * device faults surfacing as EIO without losing data.
 */
import { describe, expect, it } from 'vitest';
import { MemoryDevice, FaultyDevice } from '../../src/device/index.js';
import { Volume, MemoryMetaStore, type File } from '../../src/fs/index.js';
import { isErrno, type ErrnoCode } from '../../src/errors.js';
import { IOMAP_F_FSVERITY, IOMAP_MAPPED, IOMAP_DELALLOC, IOMAP_HOLE, IOMAP_UNWRITTEN, IOMAP_WRITE, IOMAP_F_NEW } from '../../src/iomap/types.js';
import { randomBytes as bytes } from '../helpers/bytes.js';
import { sameBytes as same } from '../helpers/compare.js';

async function expectErr(p: Promise<unknown> | (() => unknown), code: ErrnoCode, msg?: RegExp): Promise<void> {
  let err: unknown;
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    err = e;
  }
  expect(isErrno(err, code), `expected ${code}, got ${String(err)}`).toBe(true);
  if (msg) expect((err as Error).message).toMatch(msg);
}

async function freshVolume(size = 16 << 20, blockSize = 4096, extra: { maxFolioSize?: number; cacheBytes?: number; memoryMeta?: boolean } = {}) {
  const dev = new MemoryDevice({ blockSize: 512, size });
  const { memoryMeta, ...rest } = extra;
  // MemoryMetaStore keeps metadata off the device: data starts at block 0, which keeps block arithmetic simple.
  const vol = await Volume.format(dev, { blockSize, ...rest, metaStore: memoryMeta ? MemoryMetaStore.for(dev) : undefined });
  return { dev, vol };
}

describe('Volume namespace', () => {
  it('creates, opens, lists and removes files, with EEXIST and ENOENT', async () => {
    const { vol } = await freshVolume();
    await vol.create('b');
    await vol.create('a');
    expect(await vol.list()).toEqual(['a', 'b']);
    await expectErr(vol.create('a'), 'EEXIST', /already exists/);
    await expectErr(vol.open('zz'), 'ENOENT', /no file named "zz"/);
    await vol.remove('a');
    expect(await vol.list()).toEqual(['b']);
    await expectErr(vol.remove('a'), 'ENOENT');
  });

  it('checks names once at the front', async () => {
    const { vol } = await freshVolume();
    await expectErr(() => vol.create(''), 'EINVAL', /empty/);
    await expectErr(() => vol.create('a/b'), 'EINVAL', /'\/'/);
    await expectErr(() => vol.create('a\0b'), 'EINVAL', /NUL/);
    await expectErr(() => vol.create('\ud800'), 'EINVAL', /lone surrogate/);
    await expectErr(() => vol.create('é'.repeat(128)), 'ENAMETOOLONG', /256 bytes/);
    await vol.create('é'.repeat(127));
    await expectErr(() => vol.open(42 as unknown as string), 'EINVAL');
    expect(await vol.list()).toEqual(['é'.repeat(127)]);
  });

  it('refuses bad formats and a missing volume', async () => {
    const dev = new MemoryDevice({ blockSize: 4096, size: 1 << 20 });
    await expectErr(Volume.open(dev), 'EINVAL', /format it first/);
    await expectErr(Volume.format(dev, { blockSize: 2048 }), 'EINVAL', /multiple of the device block size/);
    await expectErr(Volume.format(dev, { blockSize: 3000 }), 'EINVAL', /power of two/);
    await expectErr(Volume.format(dev, { blockSize: 65536, maxFolioSize: 4096 }), 'EINVAL', /smaller than the block size/);
    await expectErr(Volume.format(dev, { maxFolioSize: 4 << 20 }), 'EINVAL', /maxFolioSize/);
    await expectErr(Volume.format(dev, { cacheBytes: 1000 }), 'EINVAL', /cacheBytes/);
    // Something that is not a volume, or one whose superblocks were both
    // overwritten: refused without advice to format over it.
    const junk = new MemoryDevice({ blockSize: 4096, size: 1 << 20 });
    await junk.write(0, new Uint8Array(4096).fill(0x5a));
    await junk.write(65536, new Uint8Array(4096).fill(0x5a));
    let err: unknown;
    await Volume.open(junk).catch((e) => (err = e));
    expect(isErrno(err, 'EINVAL')).toBe(true);
    expect((err as Error).message).toMatch(/both superblocks are damaged/);
    expect((err as Error).message).not.toMatch(/format it first/);
  });

  it('calls issued together run one at a time in the order they were made, past failures', async () => {
    const { vol } = await freshVolume();
    const f = await vol.create('o');
    const results = await Promise.allSettled([
      f.write(0, bytes(10, 1)),
      f.write(0, bytes(10, 2)),
      f.read(0, 10),
      vol.open('missing'),
      f.truncate(5),
      f.read(0, 10),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    expect(same((results[2] as PromiseFulfilledResult<Uint8Array>).value, bytes(10, 2))).toBe(true);
    expect((results[5] as PromiseFulfilledResult<Uint8Array>).value.length).toBe(5);
  });

  it('one Volume per device at a time: EBUSY until it closes or the device crashes', async () => {
    const dev = new MemoryDevice({ blockSize: 4096, size: 1 << 20 });
    await expectErr(Volume.open(dev), 'EINVAL'); // a failed open holds nothing
    const vol = await Volume.format(dev);
    await expectErr(Volume.open(dev), 'EBUSY');
    await expectErr(Volume.format(dev), 'EBUSY');
    const f = await vol.create('f');
    await f.write(0, bytes(100, 1));
    await vol.close();
    const again = await Volume.open(dev);
    expect(await again.list()).toEqual(['f']);
    await again.close();
    // two opens racing: one wins
    const both = await Promise.allSettled([Volume.open(dev), Volume.open(dev)]);
    expect(both.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    const won = both.find((r) => r.status === 'fulfilled') as PromiseFulfilledResult<Volume>;
    await won.value.close();
    // after a power cut the old volume is gone with its process
    const faulty = new FaultyDevice(dev);
    const v1 = await Volume.open(faulty);
    await (await v1.open('f')).write(0, bytes(10, 2));
    await faulty.crash();
    const v2 = await Volume.open(faulty);
    expect(same(await (await v2.open('f')).read(0, 100), bytes(100, 1))).toBe(true);
    await v2.close();
  });

  it('after close: EBADF, and the data is there on reopen', async () => {
    const { dev, vol } = await freshVolume();
    const f = await vol.create('x');
    await f.write(10, bytes(5000, 1));
    await vol.close();
    await expectErr(vol.list(), 'EBADF');
    await expectErr(f.read(0, 10), 'EBADF');
    await expectErr(vol.sync(), 'EBADF');
    const v2 = await Volume.open(dev);
    const g = await v2.open('x');
    expect(g.size).toBe(5010);
    const got = await g.read(0, 6000);
    expect(got.length).toBe(5010);
    expect(got.subarray(0, 10)).toEqual(new Uint8Array(10));
    expect(got.subarray(10)).toEqual(bytes(5000, 1));
    await v2.close();
  });
});

describe('File arguments', () => {
  it('EINVAL for bad offsets and lengths, EFBIG past 2^53-1, before anything changes', async () => {
    const { vol } = await freshVolume();
    const f = await vol.create('f');
    await f.write(0, bytes(100, 2));
    await expectErr(() => f.read(-1, 1), 'EINVAL', /non-negative integer/);
    await expectErr(() => f.read(1.5, 1), 'EINVAL');
    await expectErr(() => f.read(0, -1), 'EINVAL');
    await expectErr(() => f.read(2 ** 53, 1), 'EINVAL');
    await expectErr(() => f.write(Number.MAX_SAFE_INTEGER, new Uint8Array(2)), 'EFBIG', /2\^53-1/);
    await expectErr(() => f.write(0, [1, 2] as unknown as Uint8Array), 'EINVAL', /Uint8Array/);
    await expectErr(() => f.truncate(-5), 'EINVAL');
    await expectErr(() => f.allocate(0, -1), 'EINVAL');
    expect(f.size).toBe(100);
    expect(await f.read(0, 200)).toEqual(bytes(100, 2));
  });

  it('files reach up to 2^53 - 1 bytes, beyond is EFBIG', async () => {
    const { vol } = await freshVolume();
    const f = await vol.create('huge');
    const max = 2 ** 53 - 1;
    await expectErr(() => f.write(max - 4, new Uint8Array(5)), 'EFBIG', /2\^53-1/);
    await expectErr(() => f.truncate(max + 1), 'EFBIG', /limited to/);
    await f.write(max - 5, new Uint8Array([1, 2, 3, 4, 5]));
    expect(f.size).toBe(max);
    await f.fsync();
    await vol.dropCaches();
    expect(Array.from(await f.read(max - 7, 7))).toEqual([0, 0, 1, 2, 3, 4, 5]);
    expect(vol.space().freeBlocks).toBe(vol.space().totalBlocks - 1);
  });

  it('reads are short at EOF and empty past it', async () => {
    const { vol } = await freshVolume();
    const f = await vol.create('f');
    await f.write(0, bytes(10, 3));
    expect((await f.read(5, 100)).length).toBe(5);
    expect((await f.read(10, 100)).length).toBe(0);
    expect((await f.read(1e15, 100)).length).toBe(0);
    const dst = new Uint8Array(100);
    expect(await f.readInto(5, dst)).toBe(5);
    expect([...dst.subarray(0, 6)]).toEqual([...bytes(10, 3).subarray(5), 0]);
    expect(await f.readInto(10, dst)).toBe(0);
    await expectErr(() => f.readInto(-1, dst), 'EINVAL');
    await expectErr(() => f.readInto(0, [1, 2] as unknown as Uint8Array), 'EINVAL');
  });

  it('a removed file gets ENOENT from every call', async () => {
    const { vol } = await freshVolume();
    const f = await vol.create('gone');
    await f.write(0, bytes(10000, 4));
    await vol.remove('gone');
    await expectErr(f.read(0, 1), 'ENOENT', /removed/);
    await expectErr(f.write(0, new Uint8Array(1)), 'ENOENT');
    await expectErr(f.truncate(0), 'ENOENT');
    await expectErr(f.fsync(), 'ENOENT');
    // The name is free again and the new file is empty.
    const g = await vol.create('gone');
    expect(g.size).toBe(0);
  });
});

describe('space', () => {
  it('ENOSPC at write time, not at writeback, and the refused write changes nothing', async () => {
    // 64 blocks of 4 KiB.
    const { vol } = await freshVolume(64 * 4096, 4096, { memoryMeta: true });
    const f = await vol.create('big');
    await f.write(0, bytes(60 * 4096, 5));
    expect(vol.space().reservedBlocks).toBe(60);
    await expectErr(f.write(60 * 4096, bytes(5 * 4096, 6)), 'ENOSPC', /needs 5 more blocks of 4096 bytes, 4 are available/);
    expect(f.size).toBe(60 * 4096);
    const g = await vol.create('small');
    await expectErr(g.write(0, bytes(5 * 4096, 7)), 'ENOSPC');
    expect(g.size).toBe(0);
    await g.write(0, bytes(4 * 4096, 7)); // exactly what is left
    await vol.sync();
    expect(vol.space().freeBlocks).toBe(0);
    expect(vol.space().reservedBlocks).toBe(0);
    // Overwrites need no new space.
    await f.write(100, bytes(3 * 4096, 8));
    await vol.sync();
    await expectErr(g.allocate(4 * 4096, 4096), 'ENOSPC');
    expect(g.size).toBe(4 * 4096);
  });

  it('removal and truncation free space (after the next commit)', async () => {
    const { vol } = await freshVolume(64 * 4096, 4096, { memoryMeta: true });
    const f = await vol.create('a');
    await f.write(0, bytes(64 * 4096, 9));
    await f.fsync();
    expect(vol.space().freeBlocks).toBe(0);
    await f.truncate(10 * 4096);
    expect(vol.space().pendingFreeBlocks).toBe(54);
    await vol.remove('a');
    expect(vol.space().pendingFreeBlocks).toBe(64);
    expect(vol.space().freeBlocks).toBe(0);
    // A write that needs the freed space commits first instead of failing.
    const g = await vol.create('b');
    await g.write(0, bytes(64 * 4096, 10));
    expect(vol.space().pendingFreeBlocks).toBe(0);
    await g.fsync();
    expect(same(await g.read(0, 64 * 4096), bytes(64 * 4096, 10))).toBe(true);
  });

  it('blocks freed since the last commit are not handed to another file', async () => {
    const { vol } = await freshVolume(1 << 20);
    const a = await vol.create('a');
    await a.write(0, bytes(8 * 4096, 11));
    await a.fsync();
    const aBlocks = new Set(a.inode.extents.extents().flatMap((e) => Array.from({ length: e.blocks }, (_, i) => e.devBlock + i)));
    await a.truncate(0);
    const b = await vol.create('b');
    // Everything that is free without a commit: all of it must come from outside a's old blocks.
    const n = vol.space().freeBlocks - vol.space().reservedBlocks;
    expect(n).toBeGreaterThan(100);
    await b.write(0, bytes(n * 4096, 12));
    expect(vol.space().pendingFreeBlocks).toBe(8);
    await vol.dropCaches();
    for (const e of b.inode.extents.extents()) {
      for (let i = 0; i < e.blocks; i++) expect(aBlocks.has(e.devBlock + i)).toBe(false);
    }
  });
});

describe('writeback on the device', () => {
  it('puts each written extent where the extent map says, contiguously, tail of EOF block zeroed', async () => {
    for (const [bs, folio] of [
      [512, 4096],
      [4096, 2 << 20],
      [65536, 65536],
    ] as const) {
      const { dev, vol } = await freshVolume(32 << 20, bs, { maxFolioSize: folio });
      const f = await vol.create('f');
      const data = bytes(3 * 1024 * 1024 + 123, bs);
      await f.write(0, data);
      await f.fsync();
      const ext = f.inode.extents.extents();
      expect(ext.length, `bs ${bs}: one contiguous extent`).toBe(1);
      expect(ext[0].state).toBe('written');
      expect(ext[0].blocks).toBe(Math.ceil(data.length / bs));
      const onDev = new Uint8Array(ext[0].blocks * bs);
      await dev.read(ext[0].devBlock * bs, onDev);
      expect(same(onDev.subarray(0, data.length), data)).toBe(true);
      expect(onDev.subarray(data.length).every((b) => b === 0)).toBe(true);
      // Overwrite in the middle: same place on the device.
      await f.write(bs + 7, bytes(100, 99));
      await f.fsync();
      expect(f.inode.extents.extents()).toEqual(ext);
      const again = new Uint8Array(bs * 2);
      await dev.read(ext[0].devBlock * bs, again);
      expect(again.subarray(bs + 7, bs + 107)).toEqual(bytes(100, 99));
      await vol.close();
    }
  });

  it('preallocated (unwritten) extents read as zeros and convert when written back', async () => {
    const { dev, vol } = await freshVolume(16 << 20, 4096, { memoryMeta: true });
    const f = await vol.create('p');
    // Stale bytes on the device where the allocation will land.
    await dev.write(0, new Uint8Array(1 << 20).fill(0xee));
    await f.allocate(0, 10 * 4096);
    expect(f.size).toBe(10 * 4096);
    expect(f.inode.extents.extents()).toEqual([{ fileBlock: 0, blocks: 10, devBlock: 0, state: 'unwritten' }]);
    expect((await f.read(0, 10 * 4096)).every((b) => b === 0)).toBe(true);
    await f.write(4096 + 10, bytes(20, 1));
    await f.fsync();
    const states = f.inode.extents.extents().map((e) => [e.fileBlock, e.blocks, e.state]);
    expect(states).toEqual([
      [0, 1, 'unwritten'],
      [1, 1, 'written'],
      [2, 8, 'unwritten'],
    ]);
    // The written block has zeros around the 20 bytes, not the stale 0xee.
    const blk = new Uint8Array(4096);
    await dev.read(4096, blk);
    expect(blk.subarray(0, 10).every((b) => b === 0)).toBe(true);
    expect(blk.subarray(10, 30)).toEqual(bytes(20, 1));
    expect(blk.subarray(30).every((b) => b === 0)).toBe(true);
    await vol.dropCaches();
    const all = await f.read(0, 10 * 4096);
    expect(all.subarray(4096 + 10, 4096 + 30)).toEqual(bytes(20, 1));
    expect(all.reduce((s, b) => s + b, 0)).toBe(bytes(20, 1).reduce((s, b) => s + b, 0));
    // keepSize leaves i_size alone.
    await f.allocate(20 * 4096, 4096, { keepSize: true });
    expect(f.size).toBe(10 * 4096);
  });
});

describe('iomap ops', () => {
  it('begin maps holes, delalloc (NEW on reservation), mapped and unwritten', async () => {
    const { vol } = await freshVolume();
    const f = await vol.create('m');
    const inode = f.inode;
    const ops = vol.ops;
    expect(ops.begin(inode, 0, 8192, 0).iomap).toMatchObject({ type: IOMAP_HOLE, offset: 0, length: 8192 });
    const w = ops.begin(inode, 4096, 8192, IOMAP_WRITE).iomap;
    expect(w).toMatchObject({ type: IOMAP_DELALLOC, offset: 4096, length: 8192 });
    expect(w.flags & IOMAP_F_NEW).toBe(IOMAP_F_NEW);
    expect(vol.space().reservedBlocks).toBe(2);
    // end() with only 100 bytes written keeps one block's reservation.
    ops.end(inode, 4096, 8192, 100, IOMAP_WRITE, w);
    expect(vol.space().reservedBlocks).toBe(1);
    expect(ops.begin(inode, 0, 100000, 0).iomap).toMatchObject({ type: IOMAP_HOLE, length: 4096 });
    await f.allocate(3 * 4096, 4096);
    expect(ops.begin(inode, 3 * 4096, 4096, 0).iomap.type).toBe(IOMAP_UNWRITTEN);
    const wb = vol.wbOps.mapBlocks(inode, 4096, 4096);
    expect(wb.type).toBe(IOMAP_UNWRITTEN);
    vol.wbOps.ioendCompletion({ inode, offset: 4096, addr: wb.addr, length: 4096, type: IOMAP_UNWRITTEN, flags: 0 });
    expect(ops.begin(inode, 4096, 4096, 0).iomap).toMatchObject({ type: IOMAP_MAPPED, addr: wb.addr });
  });

  it('verity metadata: page-cache offsets past fsverityMetadataOffset map to roundUp(i_size, 64K) with IOMAP_F_FSVERITY', async () => {
    const { vol } = await freshVolume(16 << 20, 4096, { maxFolioSize: 2 << 20 });
    const f = await vol.create('v');
    await f.write(0, bytes(70000, 1));
    const inode = f.inode;
    expect(inode.deviceMetaStart).toBe(131072);
    expect(inode.cacheMetaStart).toBe(2 << 20);
    inode.verity = 'building';
    const m = vol.ops.begin(inode, (2 << 20) + 8192, 4096, IOMAP_WRITE).iomap;
    expect(m.flags & IOMAP_F_FSVERITY).toBe(IOMAP_F_FSVERITY);
    expect(m.offset).toBe((2 << 20) + 8192);
    expect(inode.extents.lookup((131072 + 8192) / 4096).kind).toBe('extent');
    // An ordinary mapping stops at the metadata area.
    const d = vol.ops.begin(inode, 65536, 10 << 20, 0).iomap;
    expect(d.offset + d.length).toBeLessThanOrEqual(2 << 20);
    expect(d.flags & IOMAP_F_FSVERITY).toBe(0);
    // Writeback of the metadata allocates it at the device-side offset.
    const wb = vol.wbOps.mapBlocks(inode, (2 << 20) + 8192, 4096);
    expect(wb.flags & IOMAP_F_FSVERITY).toBe(IOMAP_F_FSVERITY);
    expect(wb.offset).toBe((2 << 20) + 8192);
    inode.verity = 'sealed';
    await expectErr(f.write(0, new Uint8Array(1)), 'EPERM', /sealed/);
    await expectErr(f.truncate(0), 'EPERM');
    expect(f.isVerity).toBe(true);
  });
});

describe('device faults', () => {
  it('a failed device read is EIO from read(); the next read succeeds with the right bytes', async () => {
    const inner = new MemoryDevice({ blockSize: 512, size: 8 << 20 });
    const dev = new FaultyDevice(inner);
    const vol = await Volume.format(dev);
    const f = await vol.create('r');
    const data = bytes(300000, 3);
    await f.write(0, data);
    await f.fsync();
    await vol.dropCaches();
    // Sticky: readahead drops a folio whose read failed and the reader retries it, as in the kernel.
    const h = dev.injectFault({ op: 'read', sticky: true });
    await expectErr(f.read(1000, 5000), 'EIO', /read of 8192 bytes|device read/);
    expect(h.fired).toBeGreaterThan(0);
    h.remove();
    expect(same(await f.read(0, data.length), data)).toBe(true);
  });

  it('a failed writeback: fsync reports EIO, data stays readable and dirty, a retry succeeds', async () => {
    const inner = new MemoryDevice({ blockSize: 512, size: 8 << 20 });
    const dev = new FaultyDevice(inner);
    const vol = await Volume.format(dev);
    const f = await vol.create('w');
    const data = bytes(200000, 4);
    await f.write(0, data);
    const h = dev.injectFault({ op: 'write', sticky: true });
    await expectErr(f.fsync(), 'EIO');
    expect(same(await f.read(0, data.length), data)).toBe(true);
    await expectErr(vol.dropCaches(), 'EIO');
    expect(same(await f.read(0, data.length), data)).toBe(true);
    h.remove();
    await f.fsync();
    await vol.dropCaches();
    expect(same(await f.read(0, data.length), data)).toBe(true);
    const ext = f.inode.extents.extents();
    expect(ext.every((e) => e.state === 'written')).toBe(true);
    const onDev = new Uint8Array(data.length);
    await inner.read(ext[0].devBlock * 4096, onDev.subarray(0, Math.floor(data.length / 512) * 512));
    expect(same(onDev.subarray(0, 4096), data.subarray(0, 4096))).toBe(true);
  });
});

export type { File };

describe('device faults, more', () => {
  it('a partial-block write that cannot read its block fails with EIO and changes nothing', async () => {
    const dev = new FaultyDevice(new MemoryDevice({ blockSize: 512, size: 8 << 20 }));
    const vol = await Volume.format(dev, { blockSize: 4096, maxFolioSize: 65536 });
    const f = await vol.create('p');
    const data = bytes(100000, 8);
    await f.write(0, data);
    await f.fsync();
    await vol.dropCaches();
    const space = vol.space();
    const h = dev.injectFault({ op: 'read', sticky: true });
    await expectErr(f.write(5000, bytes(10, 9)), 'EIO');
    await expectErr(f.write(99990, bytes(5000, 9)), 'EIO');
    h.remove();
    expect(f.size).toBe(100000);
    expect(vol.space()).toEqual(space);
    expect(same(await f.read(0, 200000), data)).toBe(true);
    await f.fsync();
  });

  it('a failed flush fails fsync with EIO; the next fsync commits', async () => {
    const inner = new MemoryDevice({ blockSize: 512, size: 8 << 20 });
    const dev = new FaultyDevice(inner);
    const vol = await Volume.format(dev);
    const f = await vol.create('x');
    await f.write(0, bytes(9000, 10));
    const h = dev.injectFault({ op: 'flush' });
    await expectErr(f.fsync(), 'EIO');
    expect(h.fired).toBe(1);
    await f.fsync();
    await vol.close();
    const v2 = await Volume.open(dev);
    expect(same(await (await v2.open('x')).read(0, 9000), bytes(9000, 10))).toBe(true);
  });
});

describe('crash', () => {
  it('what fsync made durable survives a power cut whatever subset of later writes reached the device', async () => {
    for (let round = 0; round < 12; round++) {
      const dev = new FaultyDevice(new MemoryDevice({ blockSize: 512, size: 4 << 20 }));
      const vol = await Volume.format(dev, { blockSize: 4096, maxFolioSize: 65536, cacheBytes: 262144 });
      const a = await vol.create('a');
      const data = bytes(150000 + round * 1000, round);
      await a.write(0, data);
      await a.fsync();
      // After the commit: a is truncated (its blocks freed but not committed),
      // b is written and written back, more files come and go; none of it synced.
      // Block-aligned: a truncate inside a block zeroes its tail in place,
      // which a crash may expose under the old size (as on XFS).
      await a.truncate(8192);
      const b = await vol.create('b');
      await b.write(0, bytes(vol.space().freeBlocks * 4096 - 8192, 100 + round));
      await vol.dropCaches();
      await vol.remove('b');
      const c = await vol.create('c');
      await c.write(3, bytes(5000, 7));
      await vol.dropCaches();
      let seed = round + 1;
      const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
      await dev.crash({ keep: round === 0 ? 'all' : () => rnd() < 0.5 });
      const v2 = await Volume.open(dev);
      expect(await v2.list(), `round ${round}`).toEqual(['a']);
      const a2 = await v2.open('a');
      expect(a2.size).toBe(data.length);
      expect(same(await a2.read(0, data.length), data), `round ${round}: a intact`).toBe(true);
      await v2.close();
    }
  });
});

describe('verity metadata through the filesystem', () => {
  it('iomapFsverityWrite lands past EOF at roundUp(i_size, 64K) on the device, reads back, and can be dropped', async () => {
    const { iomapFsverityWrite } = await import('../../src/iomap/buffered-write.js');
    const { iomapBufferedRead } = await import('../../src/iomap/buffered-read.js');
    const { dropVerityMetadata } = await import('../../src/fs/engine.js');
    for (const folio of [4096, 65536, 2 << 20]) {
      const { dev, vol } = await freshVolume(16 << 20, 4096, { maxFolioSize: folio });
      const f = await vol.create('v');
      const data = bytes(70001, 3);
      await f.write(0, data);
      const inode = f.inode;
      inode.verity = 'building';
      const meta = bytes(3 * 4096 + 100, 4);
      const at = inode.cacheMetaStart;
      expect(at).toBe(Math.ceil(70001 / folio) * folio);
      await iomapFsverityWrite(inode, at, meta, vol.ops);
      expect(f.size).toBe(70001);
      await vol.sync();
      await vol.dropCaches();
      // On the device: the tree starts at file offset 128 KiB whatever the folio size.
      const found = inode.extents.lookup(131072 / 4096);
      expect(found.kind).toBe('extent');
      if (found.kind !== 'extent') return;
      expect(found.extent.state).toBe('written');
      const onDev = new Uint8Array(4096);
      await dev.read((found.extent.devBlock + (32 - found.extent.fileBlock)) * 4096, onDev);
      expect(same(onDev, meta.subarray(0, 4096))).toBe(true);
      // Back through the cache, as metadata.
      const back = await iomapBufferedRead(inode, at, meta.length, vol.ops, { metadata: true });
      expect(same(back, meta)).toBe(true);
      // Ordinary reads still stop at EOF and the data is intact.
      expect(same(await f.read(0, 1 << 20), data)).toBe(true);
      const before = vol.space().freeBlocks + vol.space().pendingFreeBlocks;
      await dropVerityMetadata(vol, inode);
      expect(inode.extents.lookup(32).kind).toBe('hole');
      expect(vol.space().freeBlocks + vol.space().pendingFreeBlocks).toBe(before + 4);
      inode.verity = 'none';
      expect(same(await f.read(0, 1 << 20), data)).toBe(true);
      await vol.close();
    }
  });
});

describe('persistence', () => {
  it('a FileDevice volume opens again from the file, through the on-device format', async () => {
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { FileDevice } = await import('../../src/device/index.js');
    const dir = mkdtempSync(join(tmpdir(), 'iomap-verity-fs-'));
    try {
      const path = join(dir, 'img');
      const dev = await FileDevice.open(path, { blockSize: 1024, size: 8 << 20, create: true });
      const vol = await Volume.format(dev, { blockSize: 1024 });
      const a = await vol.create('a');
      await a.write(5, bytes(100000, 5));
      await a.allocate(200000, 5000);
      const b = await vol.create('b');
      await b.write(0, bytes(10, 6));
      await vol.close();
      await dev.close();
      const dev2 = await FileDevice.open(path, { blockSize: 1024 });
      const vol2 = await Volume.open(dev2);
      expect(vol2.blockSize).toBe(1024);
      expect(await vol2.list()).toEqual(['a', 'b']);
      const a2 = await vol2.open('a');
      expect(a2.size).toBe(205000);
      const got = await a2.read(0, 300000);
      expect(same(got.subarray(5, 100005), bytes(100000, 5))).toBe(true);
      expect(got.subarray(100005).every((x) => x === 0)).toBe(true);
      expect(a2.inode.extents.extents().some((e) => e.state === 'unwritten')).toBe(true);
      expect(same(await (await vol2.open('b')).read(0, 10), bytes(10, 6))).toBe(true);
      await vol2.close();
      await dev2.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
