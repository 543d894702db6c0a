import { describe, expect, it } from 'vitest';
import { MemoryDevice, FaultyDevice } from '../../src/device/index.js';
import { isErrno } from '../../src/errors.js';
import {
  iomapBufferedRead,
  iomapBufferedWrite,
  iomapFsync,
  iomapTruncate,
  iomapWritepages,
  iomapZeroRange,
  PageCache,
} from '../../src/iomap/index.js';
import { instantiateWasm } from '../../src/wasm/index.js';
import { nonZeroBytes as pattern, rng } from '../helpers/bytes.js';
import { expectSameBytes as sameBytes } from '../helpers/compare.js';
import { iomapSetup, TestFs, TestInode } from '../helpers/iomap-testfs.js';
import { ByteModel as Model } from '../helpers/model.js';

const setup = (bs: number, maxFolioSize: number, budget = 64 << 20, fsOpts = {}) => iomapSetup(bs, maxFolioSize, { budget, fsOpts });

describe('iomap buffered I/O against a byte-array model', () => {
  const configs: Array<[number, number, object]> = [
    [512, 4096, {}],
    [1024, 65536, { allocUnwritten: true }],
    [4096, 2 << 20, {}],
    [4096, 16384, { allocAtWrite: true }],
    [16384, 65536, { allocUnwritten: true }],
    [65536, 2 << 20, {}],
  ];
  for (const [bs, mfs, fsOpts] of configs) {
    it(`random write/read/zero/truncate/fsync/drop, block ${bs}, max folio ${mfs}, ${JSON.stringify(fsOpts)}`, async () => {
      const { cache, fs, inode } = await setup(bs, mfs, 64 << 20, fsOpts);
      const model = new Model();
      const r = rng(bs + mfs);
      const span = Math.max(8 * mfs, 64 * bs);
      // IOMAP_VERITY_SOAK=1 runs the long version.
      const steps = process.env.IOMAP_VERITY_SOAK ? 20000 : 150;
      for (let step = 0; step < steps; step++) {
        const op = r(); if (process.env.DBG) console.log(step, op.toFixed(2), inode.size, inode.mapping.folioCount);
        const pos = Math.floor(r() * span);
        const len = Math.floor(r() * (r() < 0.2 ? 3 * mfs : 3 * bs)) + 1;
        if (op < 0.4) {
          const d = pattern(len, step);
          expect(await iomapBufferedWrite(inode, pos, d, fs)).toBe(len);
          model.write(pos, d);
        } else if (op < 0.65) {
          const got = await iomapBufferedRead(inode, pos, len, fs);
          sameBytes(got, model.read(pos, len), `step ${step} read ${pos}+${len}`);
        } else if (op < 0.72) {
          await iomapZeroRange(inode, pos, len, fs);
          model.zero(pos, len);
        } else if (op < 0.8) {
          const n = Math.floor(r() * span);
          await iomapTruncate(inode, n, fs);
          if (n < model.size) fs.punch(inode, Math.ceil(n / bs));
          model.truncate(n);
        } else if (op < 0.9) {
          await iomapFsync(inode, fs);
          expect(inode.mapping.dirtyCount).toBe(0);
        } else {
          await iomapWritepages(inode, fs);
          cache.dropClean();
        }
        expect(inode.size).toBe(model.size);
      }
      await iomapFsync(inode, fs);
      cache.dropClean();
      expect(inode.mapping.folioCount).toBe(0);
      sameBytes(await iomapBufferedRead(inode, 0, model.size + 100, fs), model.read(0, model.size));
    });
  }

  it('reads zeros from holes and stops at EOF', async () => {
    const { fs, inode } = await setup(4096, 65536);
    await iomapBufferedWrite(inode, 100_000, new Uint8Array([1, 2, 3]), fs);
    expect(inode.size).toBe(100_003);
    const got = await iomapBufferedRead(inode, 99_990, 100, fs);
    expect(got.length).toBe(13);
    expect([...got.subarray(10)]).toEqual([1, 2, 3]);
    expect(got.subarray(0, 10).every((b) => b === 0)).toBe(true);
    expect((await iomapBufferedRead(inode, 200_000, 10, fs)).length).toBe(0);
  });

  it('truncate down zeroes the tail of the new EOF block on the device; truncate up reads zeros', async () => {
    const { cache, dev, fs, inode } = await setup(4096, 65536);
    await iomapBufferedWrite(inode, 0, new Uint8Array(20000).fill(0xab), fs);
    await iomapFsync(inode, fs);
    await iomapTruncate(inode, 5000, fs);
    fs.punch(inode, 2);
    await iomapFsync(inode, fs);
    const blk = new Uint8Array(4096);
    const addr = inode.blocks.get(1);
    expect(addr?.kind).toBe('written');
    await dev.read((addr as { dev: number }).dev * 4096, blk);
    expect(blk.subarray(0, 5000 - 4096).every((b) => b === 0xab)).toBe(true);
    expect(blk.subarray(5000 - 4096).every((b) => b === 0)).toBe(true);
    await iomapTruncate(inode, 30000, fs);
    expect(inode.size).toBe(30000);
    cache.dropClean();
    const got = await iomapBufferedRead(inode, 0, 30000, fs);
    expect(got.subarray(0, 5000).every((b) => b === 0xab)).toBe(true);
    expect(got.subarray(5000).every((b) => b === 0)).toBe(true);
  });

  it('zero range zeroes cached and on-device data without changing i_size', async () => {
    const { cache, fs, inode } = await setup(4096, 65536);
    await iomapBufferedWrite(inode, 0, new Uint8Array(50000).fill(0x5a), fs);
    await iomapFsync(inode, fs);
    cache.dropClean();
    await iomapZeroRange(inode, 1000, 30000, fs);
    expect(inode.size).toBe(50000);
    await iomapFsync(inode, fs);
    cache.dropClean();
    const got = await iomapBufferedRead(inode, 0, 50000, fs);
    expect(got.subarray(0, 1000).every((b) => b === 0x5a)).toBe(true);
    expect(got.subarray(1000, 31000).every((b) => b === 0)).toBe(true);
    expect(got.subarray(31000).every((b) => b === 0x5a)).toBe(true);
  });

  it('rejects bad offsets with EINVAL', async () => {
    const { fs, inode } = await setup(4096, 65536);
    await expect(iomapBufferedRead(inode, -1, 10, fs)).rejects.toSatisfy((e) => isErrno(e, 'EINVAL'));
    await expect(iomapBufferedWrite(inode, 2 ** 53, new Uint8Array(1), fs)).rejects.toSatisfy((e) => isErrno(e, 'EINVAL'));
    await expect(iomapTruncate(inode, 1.5, fs)).rejects.toSatisfy((e) => isErrno(e, 'EINVAL'));
  });

  it('a partial-block write reads the rest of the block from the device first', async () => {
    const { cache, dev, fs, inode } = await setup(4096, 65536);
    await iomapBufferedWrite(inode, 0, pattern(8192, 7), fs);
    await iomapFsync(inode, fs);
    cache.dropClean();
    dev.resetStats();
    await iomapBufferedWrite(inode, 100, new Uint8Array([9, 9]), fs);
    expect(dev.stats.reads).toBe(1);
    expect(dev.stats.bytesRead).toBe(4096);
    const want = pattern(8192, 7);
    want[100] = 9;
    want[101] = 9;
    await iomapFsync(inode, fs);
    cache.dropClean();
    sameBytes(await iomapBufferedRead(inode, 0, 8192, fs), want);
  });

  it('writeback merges contiguous folios into one ioend and one device write per memory run', async () => {
    const { dev, fs, inode } = await setup(4096, 16384);
    await iomapBufferedWrite(inode, 0, pattern(1 << 20, 3), fs);
    dev.resetStats();
    const res = await iomapWritepages(inode, fs);
    expect(res.ioends).toBe(1);
    expect(res.bytes).toBe(1 << 20);
    expect(fs.completions.length).toBe(1);
    // 64 folios of 16 KiB: adjacent ones in WASM memory share a device write.
    expect(dev.stats.writes).toBeGreaterThanOrEqual(1);
    expect(dev.stats.writes).toBeLessThanOrEqual(64);
    expect(dev.stats.bytesWritten).toBe(1 << 20);
  });

  it('writeback splits ioends where the device addresses are not contiguous', async () => {
    const { fs, inode } = await setup(4096, 16384);
    await iomapBufferedWrite(inode, 0, pattern(8192, 1), fs);
    await iomapWritepages(inode, fs);
    fs.nextDev += 10; // a gap on the device
    await iomapBufferedWrite(inode, 8192, pattern(8192, 2), fs);
    await iomapBufferedWrite(inode, 0, pattern(4096, 3), fs);
    const res = await iomapWritepages(inode, fs);
    expect(res.ioends).toBe(2);
  });

  it('unwritten extents are converted on ioend completion', async () => {
    const { fs, inode } = await setup(4096, 65536, 64 << 20, { allocUnwritten: true });
    await iomapBufferedWrite(inode, 0, pattern(20000, 5), fs);
    await iomapFsync(inode, fs);
    expect([...inode.blocks.values()].every((s) => s.kind === 'written')).toBe(true);
    expect(fs.completions.every((c) => c.ioend.type === 3)).toBe(true);
  });

  it('a failed device write keeps the data dirty and the next fsync reports EIO, once', async () => {
    const wasm = await instantiateWasm();
    const cache = new PageCache(wasm);
    const mem = new MemoryDevice({ blockSize: 512, size: 64 << 20 });
    const dev = new FaultyDevice(mem, { writeCache: false });
    const fs = new TestFs(4096);
    const inode = new TestInode(1, 4096, dev, cache, 65536);
    const data = pattern(50000, 11);
    await iomapBufferedWrite(inode, 0, data, fs);
    const h = dev.injectFault({ op: 'write' });
    const res = await iomapWritepages(inode, fs);
    expect(isErrno(res.error, 'EIO')).toBe(true);
    expect(h.fired).toBe(1);
    expect(inode.mapping.dirtyCount).toBeGreaterThan(0);
    await expect(iomapFsync(inode, fs)).rejects.toSatisfy((e) => isErrno(e, 'EIO'));
    // The retry inside that fsync wrote the data; the error was reported once.
    await iomapFsync(inode, fs);
    expect(inode.mapping.dirtyCount).toBe(0);
    cache.dropClean();
    sameBytes(await iomapBufferedRead(inode, 0, 50000, fs), data);
  });

  it('a failed device read gives EIO and caches nothing', async () => {
    const wasm = await instantiateWasm();
    const cache = new PageCache(wasm);
    const mem = new MemoryDevice({ blockSize: 512, size: 64 << 20 });
    const dev = new FaultyDevice(mem, { writeCache: false });
    const fs = new TestFs(4096);
    const inode = new TestInode(1, 4096, dev, cache, 65536);
    const data = pattern(300000, 12);
    await iomapBufferedWrite(inode, 0, data, fs);
    await iomapFsync(inode, fs);
    cache.dropClean();
    const h = dev.injectFault({ op: 'read', sticky: true });
    await expect(iomapBufferedRead(inode, 70000, 100, fs)).rejects.toSatisfy((e) => isErrno(e, 'EIO'));
    expect(h.fired).toBeGreaterThan(0);
    expect(inode.mapping.folioCount).toBe(0);
    expect(cache.bytes).toBe(0);
    h.remove();
    sameBytes(await iomapBufferedRead(inode, 0, 300000, fs), data);
  });
});
