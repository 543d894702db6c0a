/**
 * The 2^53 boundary. Files hold at most 2^53 - 1 bytes (MAX_OFFSET, the
 * filesystem's s_maxbytes), so every offset and size is an exact JS integer;
 * the block- and folio-rounded end of the last byte is then 2^53, which is
 * exact too, and iomap must accept ranges that end there (IOMAP_MAX_END).
 * File offsets are sparse, so a small MemoryDevice holds a file of the
 * largest size: the boundary is tested for real, at the iomap level with the
 * test filesystem and at the File front of the reference filesystem.
 */
import { describe, expect, it } from 'vitest';
import { MemoryDevice } from '../../src/device/index.js';
import { isErrno, MAX_OFFSET } from '../../src/errors.js';
import { Volume } from '../../src/fs/index.js';
import { MAX_FILE_SIZE } from '../../src/fs/validate.js';
import {
  IOMAP_MAX_END,
  IOMAP_WRITE,
  iomapBufferedRead,
  iomapBufferedWrite,
  iomapFsync,
  iomapTruncate,
  iomapZeroRange,
  newIomapIter,
} from '../../src/iomap/index.js';
import { nonZeroBytes as bytes } from '../helpers/bytes.js';
import { iomapSetup } from '../helpers/iomap-testfs.js';

const setup = (bs: number, maxFolioSize: number) => iomapSetup(bs, maxFolioSize, { deviceSize: 16 << 20, fsOpts: { allocUnwritten: true } });

const TOP = 2 ** 53;

async function errOf(p: Promise<unknown> | (() => unknown)): Promise<unknown> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    return e;
  }
  return undefined;
}

describe('the largest file: 2^53 - 1 bytes', () => {
  it('the limits are what the boundary needs', () => {
    expect(MAX_FILE_SIZE).toBe(MAX_OFFSET);
    expect(MAX_OFFSET).toBe(TOP - 1);
    expect(IOMAP_MAX_END).toBe(TOP);
    // 2^53 is exact; the next integer is not, which is why sums are not trusted.
    expect(TOP + 1).toBe(TOP);
  });

  it('the iterator takes ranges ending at 2^53, refuses one byte more even when the sum rounds', async () => {
    const { inode } = await setup(4096, 4096);
    expect(newIomapIter(inode, TOP - 4096, 4096, IOMAP_WRITE).len).toBe(4096);
    expect(newIomapIter(inode, MAX_OFFSET, 1, IOMAP_WRITE).pos).toBe(MAX_OFFSET);
    // MAX_OFFSET + 2 evaluates to 2^53: a check on the sum would let it by.
    expect(MAX_OFFSET + 2).toBe(TOP);
    expect(isErrno(await errOf(() => newIomapIter(inode, MAX_OFFSET, 2, IOMAP_WRITE)), 'EINVAL')).toBe(true);
    expect(isErrno(await errOf(() => newIomapIter(inode, TOP, 0, IOMAP_WRITE)), 'EINVAL')).toBe(true);
    expect(isErrno(await errOf(() => newIomapIter(inode, 0, TOP + 2, IOMAP_WRITE)), 'EINVAL')).toBe(true);
  });

  for (const [bs, folio] of [
    [512, 4096],
    [4096, 2 << 20],
    [65536, 65536],
    [65536, 4 << 20],
  ] as const) {
    it(`write, read back, truncate and zero at the last byte (block ${bs}, folio ${folio})`, async () => {
      const { cache, fs, inode } = await setup(bs, folio);
      const tail = bytes(3000, 1);
      await iomapBufferedWrite(inode, MAX_OFFSET - tail.length, tail, fs);
      expect(inode.size).toBe(MAX_OFFSET);
      expect(await iomapBufferedRead(inode, MAX_OFFSET - tail.length, 10_000, fs)).toEqual(tail);
      await iomapFsync(inode, fs);
      cache.dropClean();
      expect(inode.mapping.folioCount).toBe(0);
      // From the device, through a folio whose rounded end is 2^53.
      expect(await iomapBufferedRead(inode, MAX_OFFSET - tail.length, 10_000, fs)).toEqual(tail);

      // One byte past the largest size: EFBIG, and nothing changed.
      for (const [pos, len] of [
        [MAX_OFFSET - 2, 3],
        [MAX_OFFSET, 1],
        [MAX_OFFSET, 2],
      ]) {
        const e = await errOf(iomapBufferedWrite(inode, pos, new Uint8Array(len).fill(9), fs));
        expect(isErrno(e, 'EFBIG'), `write of ${len} at ${pos}: ${String(e)}`).toBe(true);
      }
      expect(inode.size).toBe(MAX_OFFSET);

      // Shrinking into the last block zeroes its tail up to the block end, 2^53.
      await iomapTruncate(inode, MAX_OFFSET - 1000, fs);
      expect(inode.size).toBe(MAX_OFFSET - 1000);
      // The filesystem's half of truncate: blocks wholly past EOF go.
      fs.punch(inode, Math.ceil(inode.size / bs));
      // Growing back: the bytes past the old EOF read as zeros.
      await iomapTruncate(inode, MAX_OFFSET, fs);
      const want = tail.slice();
      want.fill(0, tail.length - 1000);
      expect(await iomapBufferedRead(inode, MAX_OFFSET - tail.length, 10_000, fs)).toEqual(want);
      await iomapFsync(inode, fs);
      cache.dropClean();
      expect(await iomapBufferedRead(inode, MAX_OFFSET - tail.length, 10_000, fs)).toEqual(want);

      // Zero range may end at 2^53 (a block end), not past it.
      await iomapZeroRange(inode, MAX_OFFSET - 100, 101, fs);
      want.fill(0, tail.length - 100);
      expect(await iomapBufferedRead(inode, MAX_OFFSET - tail.length, 10_000, fs)).toEqual(want);
      expect(isErrno(await errOf(iomapZeroRange(inode, MAX_OFFSET - 100, 102, fs)), 'EFBIG')).toBe(true);
      expect(isErrno(await errOf(iomapTruncate(inode, TOP, fs)), 'EINVAL')).toBe(true);
      expect(inode.size).toBe(MAX_OFFSET);
    });
  }
});

describe('the File front: files up to 2^53 - 1 bytes, EFBIG beyond', () => {
  for (const [bs, folio] of [
    [4096, 2 << 20],
    [65536, 65536],
  ] as const) {
    it(`writes and truncates at and just past the limit (block ${bs}, folio ${folio})`, async () => {
      const dev = new MemoryDevice({ blockSize: 512, size: 16 << 20 });
      const vol = await Volume.format(dev, { blockSize: bs, maxFolioSize: folio });
      try {
        const f = await vol.create('huge');
        // The front refuses before it returns a promise: pass a thunk.
        const expectErr = async (p: () => Promise<unknown>, code: 'EFBIG' | 'EINVAL') => {
          const e = await errOf(p);
          expect(isErrno(e, code), String(e)).toBe(true);
        };
        await expectErr(() => f.write(MAX_OFFSET - 4, new Uint8Array(5)), 'EFBIG');
        await expectErr(() => f.write(MAX_OFFSET, new Uint8Array(1)), 'EFBIG');
        await expectErr(() => f.truncate(TOP), 'EFBIG');
        await expectErr(() => f.truncate(TOP * 2), 'EFBIG');
        await expectErr(() => f.allocate(MAX_OFFSET - 4096, 4097), 'EFBIG');
        await expectErr(() => f.truncate(-1), 'EINVAL');
        await expectErr(() => f.truncate(1.5), 'EINVAL');
        expect(f.size).toBe(0);

        await f.write(MAX_OFFSET - 5, new Uint8Array([1, 2, 3, 4, 5]));
        expect(f.size).toBe(MAX_OFFSET);
        await f.fsync();
        await vol.dropCaches();
        expect(Array.from(await f.read(MAX_OFFSET - 7, 7))).toEqual([0, 0, 1, 2, 3, 4, 5]);
        // One block holds the data, and it survives a remount.
        expect(vol.space().freeBlocks).toBe(vol.space().totalBlocks - 1);

        // Truncate into the last block, then back up to the limit.
        await f.truncate(MAX_OFFSET - 2);
        await f.truncate(MAX_OFFSET);
        expect(Array.from(await f.read(MAX_OFFSET - 7, 7))).toEqual([0, 0, 1, 2, 3, 0, 0]);
        await expectErr(() => f.truncate(MAX_OFFSET + 1), 'EFBIG');
        await vol.close();
        const vol2 = await Volume.open(dev, { maxFolioSize: folio });
        const g = await vol2.open('huge');
        expect(g.size).toBe(MAX_OFFSET);
        expect(Array.from(await g.read(MAX_OFFSET - 7, 7))).toEqual([0, 0, 1, 2, 3, 0, 0]);
        await vol2.close();
      } finally {
        await vol.close().catch(() => undefined);
      }
    });
  }
});
