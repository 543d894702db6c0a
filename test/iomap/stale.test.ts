/**
 * Stale mappings (the kernel's iomap_valid / IOMAP_F_STALE): a buffered
 * write or zero step holds its mapping while it gets folios, and getting a
 * folio can run pressure writeback, which allocates delayed blocks, converts
 * unwritten ones and lets the folios it cleaned be reclaimed. The step must
 * then look the mapping up again instead of zero-filling a partial block
 * whose data is now only on the device.
 *
 * Each race is forced deterministically: the cache budget is set so that
 * exactly the folio under test pushes it over, and the pressure callback
 * writes back the inode (the range under the write included) and drops
 * every clean folio. The same race without `iomapValid` loses data, which
 * shows the tests can fail.
 */
import { describe, expect, it } from 'vitest';
import { MemoryDevice } from '../../src/device/index.js';
import { isErrno } from '../../src/errors.js';
import {
  IOMAP_F_STALE,
  iomapBufferedRead,
  iomapBufferedWrite,
  iomapFsync,
  iomapTraceRing,
  iomapWritepages,
  iomapZeroRange,
  PageCache,
  PAGE_SIZE,
  type IomapOps,
} from '../../src/iomap/index.js';
import { instantiateWasm } from '../../src/wasm/index.js';
import { nonZeroBytes as pattern } from '../helpers/bytes.js';
import { firstDiff } from '../helpers/compare.js';
import { TestFs, TestInode } from '../helpers/iomap-testfs.js';

async function setup(bs: number, maxFolioSize: number, fsOpts = {}) {
  const cache = new PageCache(await instantiateWasm(), { budgetBytes: 64 << 20 });
  const dev = new MemoryDevice({ blockSize: 512, size: 64 << 20 });
  const fs = new TestFs(bs, fsOpts);
  const inode = new TestInode(1, bs, dev, cache, maxFolioSize);
  let pressureRuns = 0;
  // "Writeback under memory pressure" at its most hostile: everything dirty
  // goes out, the range under the running write included, and every clean
  // idle folio is reclaimed.
  cache.onPressure = async () => {
    pressureRuns++;
    await iomapWritepages(inode, fs);
    cache.dropClean();
  };
  /**
   * From now on, the first cache reservation that would add more than
   * `extra` bytes runs pressure. getFolio reserves the folio's size before
   * it looks the index up, so a cached folio's turn counts too.
   */
  const armPressure = (extra: number) => {
    cache.budget = cache.bytes + extra;
  };
  return { cache, dev, fs, inode, armPressure, pressure: () => pressureRuns };
}

/** The test filesystem's ops without revalidation: what iomap did before iomapValid. */
function withoutValid(fs: TestFs): IomapOps {
  return { begin: (i, p, l, f) => fs.begin(i, p, l, f) };
}

/**
 * One partial-block write into a delalloc block whose dirty folio gets
 * written back and reclaimed while the write obtains it. Returns what reads
 * back and what should.
 */
async function partialWriteIntoDelalloc(valid: boolean, bs: number, folio: number) {
  const t = await setup(bs, folio, { allocUnwritten: true });
  const a = pattern(bs, 1);
  await iomapBufferedWrite(t.inode, 0, a, t.fs);
  expect(t.inode.blocks.get(0)?.kind).toBe('delalloc');
  // The step maps DELALLOC, then its only folio's reservation runs pressure:
  // the block becomes written on the device and its folio is reclaimed.
  t.armPressure(0);
  const b = pattern(100, 2);
  const ring = iomapTraceRing(256);
  try {
    await iomapBufferedWrite(t.inode, 300, b, valid ? t.fs : withoutValid(t.fs));
  } finally {
    ring.stop();
  }
  expect(t.pressure()).toBe(1);
  const want = a.slice();
  want.set(b, 300);
  t.cache.budget = 64 << 20;
  await iomapFsync(t.inode, t.fs);
  t.cache.dropClean();
  const got = await iomapBufferedRead(t.inode, 0, bs, t.fs);
  return { got, want, events: ring.events(), t };
}

describe('stale mappings are looked up again (iomap_valid)', () => {
  for (const [bs, folio] of [
    [4096, 4096],
    [32768, 65536],
    [65536, 2 << 20],
  ] as const) {
    it(`a partial write into a delalloc block written back under it reads the block (block ${bs}, folio ${folio})`, async () => {
      const { got, want, events } = await partialWriteIntoDelalloc(true, bs, folio);
      expect(firstDiff(got, want)).toBe(-1);
      const stale = events.filter((e) => e.name === 'iomap_iter_stale');
      expect(stale.length).toBe(1);
      expect((stale[0].flags ?? 0) & IOMAP_F_STALE).toBe(IOMAP_F_STALE);
      expect(events.some((e) => e.name === 'iomap_write_stale')).toBe(true);
      // The remap found the block written and read it instead of zeroing it.
      const remaps = events.filter((e) => e.name === 'iomap_iter_dstmap');
      expect(remaps.map((e) => e.type)).toEqual([1 /* DELALLOC */, 2 /* MAPPED */]);
      expect(events.some((e) => e.name === 'iomap_read_blocks')).toBe(true);
    });
  }

  it('without iomapValid the same race zero-fills the block and loses data', async () => {
    const { got, want } = await partialWriteIntoDelalloc(false, 32768, 65536);
    const d = firstDiff(got, want);
    expect(d).toBe(0);
    expect(got.subarray(0, 300)).toEqual(new Uint8Array(300));
  });

  /**
   * A three-folio step over unwritten blocks: folios 0 and 2 hold dirty data,
   * folio 1 is new. Reserving folio 2 runs pressure: the ioends convert the
   * blocks to written and folio 2 is reclaimed. The step must stop after
   * folio 1 (end() hears the bytes done) and map again from folio 2.
   */
  async function midStepRace(valid: boolean) {
    const bs = 4096;
    const t = await setup(bs, 4096, { allocUnwritten: true });
    const dev0 = 10;
    for (let i = 0; i < 3; i++) t.inode.blocks.set(i, { kind: 'unwritten', dev: dev0 + i });
    t.inode.size = 3 * bs;
    const a0 = pattern(bs, 3);
    const a2 = pattern(bs, 4);
    await iomapBufferedWrite(t.inode, 0, a0, t.fs);
    await iomapBufferedWrite(t.inode, 2 * bs, a2, t.fs);
    expect(t.inode.mapping.folioCount).toBe(2);
    // Folio 0 is found and folio 1 allocated within the budget; folio 2's
    // reservation is one folio too many.
    t.armPressure(PAGE_SIZE);
    const ends: Array<[number, number, number]> = [];
    const base = valid ? t.fs : withoutValid(t.fs);
    const ops: IomapOps = {
      begin: (i, p, l, f) => base.begin(i, p, l, f),
      end: (_i, p, l, w) => {
        ends.push([p, l, w]);
      },
      ...(valid ? { iomapValid: (i, m) => t.fs.iomapValid(i, m) } : {}),
    };
    const b = pattern(2 * bs, 5);
    await iomapBufferedWrite(t.inode, 100, b, ops);
    expect(t.pressure()).toBe(1);
    t.cache.budget = 64 << 20;
    const want = new Uint8Array(3 * bs);
    want.set(a0, 0);
    want.set(a2, 2 * bs);
    want.set(b, 100);
    await iomapFsync(t.inode, t.fs);
    t.cache.dropClean();
    return { got: await iomapBufferedRead(t.inode, 0, 3 * bs, t.fs), want, ends };
  }

  it('a step goes stale in its middle: the folios done count, the rest is mapped again', async () => {
    const { got, want, ends } = await midStepRace(true);
    expect(firstDiff(got, want)).toBe(-1);
    // First step: all 8192 bytes under one UNWRITTEN mapping, stale at
    // folio 2 after 8192-100 bytes; second step: the last 100, now MAPPED.
    expect(ends).toEqual([
      [100, 8192, 8192 - 100],
      [8192, 100, 100],
    ]);
  });

  it('without iomapValid the mid-step race zeroes the rest of the last block', async () => {
    const { got, want, ends } = await midStepRace(false);
    expect(ends).toEqual([[100, 8192, 8192]]);
    expect(firstDiff(got, want)).toBe(2 * 4096 + 100);
  });

  it('zero range over a delalloc block written back under it keeps the bytes it does not zero', async () => {
    for (const valid of [true, false]) {
      const bs = 16384;
      const t = await setup(bs, 65536);
      const a = pattern(bs, 6);
      await iomapBufferedWrite(t.inode, 0, a, t.fs);
      t.armPressure(0);
      await iomapZeroRange(t.inode, 1000, 500, valid ? t.fs : withoutValid(t.fs));
      expect(t.pressure()).toBe(1);
      t.cache.budget = 64 << 20;
      await iomapFsync(t.inode, t.fs);
      t.cache.dropClean();
      const got = await iomapBufferedRead(t.inode, 0, bs, t.fs);
      const want = a.slice();
      want.fill(0, 1000, 1500);
      expect(firstDiff(got, want), valid ? 'with iomapValid' : 'without iomapValid').toBe(valid ? -1 : 0);
    }
  });

  it('an iomapValid that never accepts a mapping fails with EIO instead of spinning', async () => {
    const t = await setup(4096, 4096);
    const ops: IomapOps = { begin: (i, p, l, f) => t.fs.begin(i, p, l, f), iomapValid: () => false };
    const before = t.fs.beginCalls;
    const err = await iomapBufferedWrite(t.inode, 0, new Uint8Array(10), ops).catch((e: unknown) => e);
    expect(isErrno(err, 'EIO')).toBe(true);
    expect((err as Error).message).toMatch(/stale 1000 times in a row/);
    expect(t.fs.beginCalls - before).toBe(1001);
    expect(t.inode.size).toBe(0);
  });

  it('a mapping the filesystem did not change is not remapped, pressure or not', async () => {
    // Pressure that writes back only blocks already written changes no
    // mapping: no stale step, no extra begin().
    const t = await setup(4096, 4096, { allocAtWrite: true });
    await iomapBufferedWrite(t.inode, 0, pattern(8192, 7), t.fs);
    const begins = t.fs.beginCalls;
    t.armPressure(0);
    const ring = iomapTraceRing(256);
    try {
      await iomapBufferedWrite(t.inode, 4000, pattern(200, 8), t.fs);
    } finally {
      ring.stop();
    }
    expect(t.pressure()).toBe(1);
    expect(ring.events().some((e) => e.name === 'iomap_iter_stale')).toBe(false);
    expect(t.fs.beginCalls - begins).toBe(1);
  });
});
