/**
 * Writeback of a volume with many dirty files: pressure writeback walks the
 * list of dirty inodes oldest first in bounded batches, never the clean
 * ones (so its cost is the folios it frees, not the number of files), and
 * a sync of many dirty files is one metadata commit. A seeded random
 * sequence over many small files and a tiny cache checks the data against
 * plain byte arrays through syncs, fsyncs, cache drops and reopens.
 */
import { describe, expect, it } from 'vitest';
import { MemoryDevice } from '../../src/device/index.js';
import { Volume, type File } from '../../src/fs/index.js';
import { DeviceMetaStore } from '../../src/fs/format.js';
import type { VolumeMeta } from '../../src/fs/meta.js';
import type { MetaStore } from '../../src/fs/meta-store.js';
import { randomBytes, rng } from '../helpers/bytes.js';
import { firstDiff } from '../helpers/compare.js';
import { ByteModel } from '../helpers/model.js';

const BS = 4096;
const CACHE = 256 * 1024;

/** The on-device store, counting its commits. */
class CountingStore implements MetaStore {
  commits = 0;
  constructor(private readonly inner: DeviceMetaStore) {}
  get dataStart(): number {
    return this.inner.dataStart;
  }
  get fallbackMeta(): VolumeMeta | undefined {
    return this.inner.fallbackMeta;
  }
  load(): Promise<VolumeMeta> {
    return this.inner.load();
  }
  async commit(meta: VolumeMeta): Promise<void> {
    this.commits++;
    await this.inner.commit(meta);
  }
}

function block(i: number): Uint8Array {
  return randomBytes(BS, i + 1);
}

describe('dirty-inode list', () => {
  it('pressure writeback visits only dirty inodes, oldest dirtied first, in bounded batches', async () => {
    const dev = new MemoryDevice({ blockSize: BS, size: 64 << 20 });
    const vol = await Volume.format(dev, { blockSize: BS, maxFolioSize: BS, cacheBytes: CACHE });
    // 200 files made clean by a sync: pressure must never visit them.
    const clean = new Set<number>();
    for (let i = 0; i < 200; i++) {
      const f = await vol.create(`clean${i}`);
      await f.write(0, block(i));
      clean.add(f.inode.ino);
    }
    await vol.sync();
    const calls: number[][] = [];
    vol.pressureTrace = (v) => calls.push(v);
    const order: number[] = [];
    const n = 600;
    for (let i = 0; i < n; i++) {
      const f = await vol.create(`dirty${i}`);
      order.push(f.inode.ino);
      await f.write(0, block(1000 + i));
    }
    vol.pressureTrace = undefined;
    expect(calls.length).toBeGreaterThan(2);
    const all = calls.flat();
    for (const ino of all) expect(clean.has(ino), `clean inode ${ino} visited`).toBe(false);
    // Each one-block file is written back once, in the order it was dirtied.
    expect(new Set(all).size).toBe(all.length);
    expect(all).toEqual(order.slice(0, all.length));
    // A batch is 1/16 of the budget: 4 one-block files here, whatever the number of files.
    for (const c of calls) expect(c.length).toBeLessThanOrEqual(CACHE / 16 / BS);
    // Everything written is there after a cache drop and a reopen.
    await vol.close();
    const again = await Volume.open(dev, { maxFolioSize: BS, cacheBytes: CACHE });
    for (let i = 0; i < n; i += 37) {
      const got = await (await again.open(`dirty${i}`)).read(0, BS + 1);
      expect(firstDiff(got, block(1000 + i))).toBe(-1);
    }
    await again.close();
  });

  it('one file many times the cache goes out through many pressure calls, each on that dirty file only, and reads back whole', async () => {
    const dev = new MemoryDevice({ blockSize: BS, size: 64 << 20 });
    const vol = await Volume.format(dev, { blockSize: BS, maxFolioSize: BS, cacheBytes: 1 << 20 });
    const calls: number[][] = [];
    vol.pressureTrace = (v) => calls.push(v);
    const big = await vol.create('big');
    const data = randomBytes(6 << 20, 7);
    await big.write(0, data);
    // The cache (1 MiB) held at most that much dirty data at any time, each call freeing a bounded batch.
    expect(calls.length).toBeGreaterThan(4);
    for (const c of calls) expect(c.every((ino) => ino === big.inode.ino)).toBe(true);
    await vol.dropCaches();
    expect(firstDiff(await big.read(0, data.length + 1), data)).toBe(-1);
    await vol.close();
  });

  it('sync of many dirty files is one metadata commit', async () => {
    const dev = new MemoryDevice({ blockSize: BS, size: 64 << 20 });
    const store = new CountingStore(new DeviceMetaStore(dev, { blockSize: BS }));
    const vol = await Volume.format(dev, { blockSize: BS, maxFolioSize: BS, cacheBytes: CACHE, metaStore: store });
    const base = store.commits;
    for (let i = 0; i < 300; i++) await (await vol.create(`f${i}`)).write(0, block(i));
    // Pressure wrote many of them back on the way: without a commit.
    expect(store.commits).toBe(base);
    await vol.sync();
    expect(store.commits).toBe(base + 1);
    // Nothing dirty: no commit at all.
    await vol.sync();
    expect(store.commits).toBe(base + 1);
    await vol.close();
    const again = await Volume.open(dev, { maxFolioSize: BS, cacheBytes: CACHE });
    expect((await again.list()).length).toBe(300);
    for (let i = 0; i < 300; i += 29) expect(firstDiff(await (await again.open(`f${i}`)).read(0, BS + 1), block(i))).toBe(-1);
    await again.close();
  });

  it.each([1, 2, 3])('random writes, syncs and reopens of 40 small files with a tiny cache agree with byte arrays (seed %i)', async (seed) => {
    const r = rng(seed * 7919);
    const int = (n: number) => Math.floor(r() * n);
    const dev = new MemoryDevice({ blockSize: 512, size: 32 << 20 });
    const cacheBytes = 64 * 1024;
    let vol = await Volume.format(dev, { blockSize: 1024, maxFolioSize: 4096, cacheBytes });
    const N = 40;
    const models: ByteModel[] = [];
    const open: (File | undefined)[] = [];
    for (let i = 0; i < N; i++) {
      models.push(new ByteModel());
      open.push(await vol.create(`s${i}`));
    }
    const file = async (i: number) => (open[i] ??= await vol.open(`s${i}`));
    const check = async (where: string) => {
      for (let i = 0; i < N; i++) {
        const got = await (await file(i)).read(0, models[i].size + 100);
        expect(firstDiff(got, models[i].bytes), `${where}: s${i}`).toBe(-1);
      }
    };
    for (let step = 0; step < 400; step++) {
      const k = int(100);
      const i = int(N);
      if (k < 70) {
        const pos = int(3) === 0 ? int(20000) : int(6000);
        const len = 1 + int(int(4) === 0 ? 9000 : 1500);
        const data = randomBytes(len, seed * 100000 + step);
        await (await file(i)).write(pos, data);
        models[i].write(pos, data);
      } else if (k < 78) {
        const size = int(12000);
        await (await file(i)).truncate(size);
        models[i].truncate(size);
      } else if (k < 84) {
        await (await file(i)).fsync();
      } else if (k < 90) {
        await vol.sync();
      } else if (k < 94) {
        await vol.dropCaches();
      } else if (k < 97) {
        await vol.close();
        vol = await Volume.open(dev, { maxFolioSize: 4096, cacheBytes });
        open.fill(undefined);
        await check(`after reopen at step ${step}`);
      } else {
        await check(`step ${step}`);
      }
    }
    await vol.close();
    vol = await Volume.open(dev, { maxFolioSize: 4096, cacheBytes });
    open.fill(undefined);
    await check('at the end');
    await vol.close();
  });
});
