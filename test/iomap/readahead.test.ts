import { describe, expect, it } from 'vitest';
import { MemoryDevice } from '../../src/device/index.js';
import { fail, isErrno } from '../../src/errors.js';
import {
  iomapBufferedRead,
  iomapBufferedWrite,
  iomapFsync,
  iomapTraceRing,
  iomapWritepages,
  PageCache,
} from '../../src/iomap/index.js';
import { instantiateWasm } from '../../src/wasm/index.js';
import { randomBytes as fill } from '../helpers/bytes.js';
import { expectSameBytes as same } from '../helpers/compare.js';
import { TestFs, TestInode } from '../helpers/iomap-testfs.js';

async function fileOf(size: number, maxFolioSize = 2 << 20, budget = 64 << 20) {
  const cache = new PageCache(await instantiateWasm(), { budgetBytes: budget });
  const dev = new MemoryDevice({ blockSize: 4096, size: 128 << 20 });
  const fs = new TestFs(4096);
  const inode = new TestInode(1, 4096, dev, cache, maxFolioSize);
  const data = fill(size, 1);
  await iomapBufferedWrite(inode, 0, data, fs);
  await iomapFsync(inode, fs);
  cache.dropClean();
  dev.resetStats();
  return { cache, dev, fs, inode, data };
}

describe('readahead', () => {
  it('grows the window and the folio order while reads stay sequential', async () => {
    const { dev, fs, inode, data } = await fileOf(16 << 20);
    const ring = iomapTraceRing(10000);
    const chunk = 16 << 10;
    for (let p = 0; p < data.length; p += chunk) same(await iomapBufferedRead(inode, p, chunk, fs), data.subarray(p, p + chunk));
    ring.stop();
    const windows = ring.events().filter((e) => e.name === 'iomap_readahead').map((e) => e.length);
    expect(windows[0]).toBeLessThan(windows[windows.length - 2]);
    for (let i = 1; i < windows.length - 1; i++) expect(windows[i]).toBeGreaterThanOrEqual(windows[i - 1]);
    expect(Math.max(...windows)).toBe(2 << 20);
    const orders = inode.mapping.foliosIn().map((f) => f.order);
    expect(orders[0]).toBeLessThan(9);
    if (process.env.DBG) console.log(windows.join(' '), orders.join(' '));
    expect(Math.max(...orders)).toBe(9); // 2 MiB folios once the window is large
    // 1024 reads of 16 KiB were served by far fewer device reads.
    expect(dev.stats.reads).toBeLessThan(100);
    expect(dev.stats.bytesRead).toBe(16 << 20);
  });

  it('reads a window of small folios with few device reads (pieces adjacent on the device and in memory merge)', async () => {
    const { dev, fs, inode, data } = await fileOf(8 << 20, 16384);
    for (let p = 0; p < data.length; p += 1 << 20) same(await iomapBufferedRead(inode, p, 1 << 20, fs), data.subarray(p, p + (1 << 20)));
    const folios = inode.mapping.folioCount;
    expect(folios).toBeGreaterThanOrEqual(512);
    expect(dev.stats.bytesRead).toBe(8 << 20);
    expect(dev.stats.reads).toBeLessThan(folios / 4);
  });

  it('keeps the window small for random reads', async () => {
    const { dev, fs, inode, data } = await fileOf(16 << 20);
    let seed = 5;
    const n = 50;
    for (let i = 0; i < n; i++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      const p = (seed % 4000) * 4096;
      same(await iomapBufferedRead(inode, p, 4096, fs), data.subarray(p, p + 4096));
    }
    expect(dev.stats.bytesRead).toBeLessThanOrEqual(n * 16384);
  });
});

describe('the verification hook', () => {
  it('sees every newly read range before it is up to date, and its failure is EIO with nothing cached', async () => {
    const { cache, fs, inode, data } = await fileOf(1 << 20, 65536);
    let bad = 200_000;
    const seen: number[] = [];
    const verify = (_i: unknown, r: { pos: number; length: number; ptr: number }) => {
      seen.push(r.pos);
      // The bytes handed over are the ones about to become visible.
      const mine = cache.wasm.bytes(r.ptr, r.length);
      same(mine, data.subarray(r.pos, r.pos + r.length));
      if (r.pos <= bad && bad < r.pos + r.length) throw fail('EIO', `block at ${bad} does not match its hash`);
    };
    await expect(iomapBufferedRead(inode, 196_608, 8192, fs, { verify })).rejects.toSatisfy(
      (e) => isErrno(e, 'EIO') && /does not match its hash/.test((e as Error).message),
    );
    const f = inode.mapping.lookup(Math.floor(bad / 4096));
    expect(f === undefined || !f.isRangeUptodate(bad - f.pos, 1)).toBe(true);
    expect(seen.length).toBeGreaterThan(0);
    // Other ranges still read; once the data verifies, so does this one.
    same(await iomapBufferedRead(inode, 0, 4096, fs, { verify }), data.subarray(0, 4096));
    bad = -1;
    same(await iomapBufferedRead(inode, 196_608, 8192, fs, { verify }), data.subarray(196_608, 204_800));
  });
});

describe('concurrency', () => {
  it('interleaved writes, reads, writeback and reclaim on one inode keep every byte', async () => {
    const cache = new PageCache(await instantiateWasm(), { budgetBytes: 512 << 10 });
    const dev = new MemoryDevice({ blockSize: 4096, size: 64 << 20 });
    const fs = new TestFs(4096);
    const inode = new TestInode(1, 4096, dev, cache, 64 << 10);
    cache.onPressure = async () => {
      await iomapWritepages(inode, fs);
    };
    const piece = 40_000; // not block aligned: neighbours share blocks
    const n = 40;
    const want = new Uint8Array(piece * n);
    const ops: Promise<unknown>[] = [];
    // Writes are serialised, as the filesystem's inode lock does (i_rwsem);
    // reads and writeback run alongside them.
    let writes: Promise<unknown> = Promise.resolve();
    for (let i = 0; i < n; i++) {
      const d = fill(piece, i + 3);
      want.set(d, i * piece);
      writes = writes.then(() => iomapBufferedWrite(inode, i * piece, d, fs));
      ops.push(writes);
      if (i % 5 === 4) ops.push(iomapWritepages(inode, fs));
      if (i % 7 === 6) ops.push(iomapBufferedRead(inode, 0, i * piece, fs));
    }
    await Promise.all(ops);
    await iomapFsync(inode, fs);
    cache.dropClean();
    same(await iomapBufferedRead(inode, 0, want.length, fs), want);
  });
});
