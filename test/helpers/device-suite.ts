/**
 * The shared BlockDevice test suite: every backend must pass it.
 * Call `deviceSuite(name, factory)` from a *.test.ts file.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { BlockDevice } from '../../src/device/index.js';
import { isErrno } from '../../src/errors.js';
import { xorshiftBytes } from './bytes.js';

export interface DeviceFactory {
  /** Makes a fresh, never-written device of this geometry. */
  make(geom: { blockSize: number; size: number }): Promise<BlockDevice>;
  /** Called after each test with the devices it made (already closed or not). */
  cleanup?(): Promise<void>;
}

export const BLOCK_SIZES = [512, 1024, 2048, 4096, 8192, 16384, 32768, 65536];

/** Deterministic bytes: a cheap xorshift keyed by seed. */
export const pattern = xorshiftBytes;

export async function expectErrno(p: Promise<unknown>, code: string): Promise<void> {
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  expect(err, `expected ${code}`).toBeDefined();
  expect(isErrno(err), `not an IomapVerityError: ${String(err)}`).toBe(true);
  expect((err as { code: string }).code).toBe(code);
}

export function deviceSuite(name: string, factory: DeviceFactory): void {
  describe(`${name}: BlockDevice contract`, () => {
    const made: BlockDevice[] = [];
    const make = async (blockSize: number, size: number) => {
      const d = await factory.make({ blockSize, size });
      made.push(d);
      return d;
    };
    afterEach(async () => {
      for (const d of made.splice(0)) await d.close();
      await factory.cleanup?.();
    });

    it('reports its geometry', async () => {
      const d = await make(4096, 1 << 20);
      expect(d.blockSize).toBe(4096);
      expect(d.size).toBe(1 << 20);
      expect(d.closed).toBe(false);
    });

    it.each(BLOCK_SIZES)('round-trips writes at block size %i against a byte-array model', async (bs) => {
      const size = bs * 64;
      const d = await make(bs, size);
      const model = new Uint8Array(size);
      let seed = bs;
      for (let i = 0; i < 24; i++) {
        const blocks = 1 + ((seed * 7 + i) % 5);
        const start = (seed * 13 + i * 11) % (64 - blocks + 1);
        const data = pattern(blocks * bs, seed++);
        await d.write(start * bs, data);
        model.set(data, start * bs);
        if (i % 6 === 5) {
          const dStart = (seed * 3) % 60;
          await d.discard(dStart * bs, 2 * bs);
          model.fill(0, dStart * bs, (dStart + 2) * bs);
        }
      }
      const all = new Uint8Array(size);
      await d.read(0, all);
      expect(Buffer.from(all).equals(Buffer.from(model))).toBe(true);
      // Unaligned-to-chunk, multi-block reads into a view with a byte offset,
      // as a folio view over WebAssembly memory would be.
      const backing = new Uint8Array(size + 3 * bs);
      for (let s = 0; s < 64; s += 7) {
        const n = Math.min(9, 64 - s);
        const view = backing.subarray(bs, bs + n * bs);
        await d.read(s * bs, view);
        expect(Buffer.from(view).equals(Buffer.from(model.subarray(s * bs, (s + n) * bs)))).toBe(true);
      }
    });

    it('reads and writes straight through a view over WebAssembly memory', async () => {
      const bs = 4096;
      const d = await make(bs, 64 * bs);
      const mem = new WebAssembly.Memory({ initial: 2 });
      const view = new Uint8Array(mem.buffer, 8192, 3 * bs);
      view.set(pattern(3 * bs, 99));
      await d.write(5 * bs, view);
      const back = new Uint8Array(mem.buffer, 65536, 3 * bs);
      await d.read(5 * bs, back);
      expect(Buffer.from(back).equals(Buffer.from(pattern(3 * bs, 99)))).toBe(true);
    });

    it('reads never-written space as zeros, also far into a large device', async () => {
      const bs = 4096;
      const size = 2 ** 34; // 16 GiB: only sparse backends can afford this
      const d = await make(bs, size);
      const buf = new Uint8Array(8 * bs).fill(0xaa);
      await d.read(0, buf);
      expect(buf.every((b) => b === 0)).toBe(true);
      buf.fill(0xaa);
      await d.read(size - buf.length, buf);
      expect(buf.every((b) => b === 0)).toBe(true);
      // A written block next to unwritten ones: neighbours stay zero.
      await d.write(size / 2, pattern(bs, 1));
      const around = new Uint8Array(3 * bs).fill(0x55);
      await d.read(size / 2 - bs, around);
      expect(around.subarray(0, bs).every((b) => b === 0)).toBe(true);
      expect(Buffer.from(around.subarray(bs, 2 * bs)).equals(Buffer.from(pattern(bs, 1)))).toBe(true);
      expect(around.subarray(2 * bs).every((b) => b === 0)).toBe(true);
    });

    it('refuses malformed offsets and lengths with EINVAL and writes past the end with ENOSPC', async () => {
      const bs = 4096;
      const size = 16 * bs;
      const d = await make(bs, size);
      const blk = new Uint8Array(bs);
      for (const off of [-bs, 1, bs / 2, 1.5, Number.NaN, Infinity, 2 ** 60]) {
        await expectErrno(d.read(off, blk), 'EINVAL');
        await expectErrno(d.discard(off, bs), 'EINVAL');
      }
      for (const off of [-bs, 1, bs / 2, 1.5, Number.NaN]) await expectErrno(d.write(off, blk), 'EINVAL');
      await expectErrno(d.read(0, new Uint8Array(bs + 1)), 'EINVAL');
      await expectErrno(d.write(0, new Uint8Array(bs - 1)), 'EINVAL');
      await expectErrno(d.discard(0, 100), 'EINVAL');
      await expectErrno(d.discard(0, -bs), 'EINVAL');
      await expectErrno(d.read(0, [1, 2, 3] as unknown as Uint8Array), 'EINVAL');
      await expectErrno(d.write(0, new DataView(new ArrayBuffer(bs)) as unknown as Uint8Array), 'EINVAL');
      // Past the end.
      await expectErrno(d.read(size, blk), 'EINVAL');
      await expectErrno(d.read(size - bs, new Uint8Array(2 * bs)), 'EINVAL');
      await expectErrno(d.discard(size - bs, 2 * bs), 'EINVAL');
      await expectErrno(d.write(size, blk), 'ENOSPC');
      await expectErrno(d.write(size - bs, new Uint8Array(2 * bs)), 'ENOSPC');
      await expectErrno(d.write(2 ** 53 - bs, blk), 'ENOSPC');
      // The last block itself is fine, and nothing refused changed anything.
      await d.write(size - bs, pattern(bs, 5));
      const all = new Uint8Array(size);
      await d.read(0, all);
      expect(all.subarray(0, size - bs).every((b) => b === 0)).toBe(true);
      expect(Buffer.from(all.subarray(size - bs)).equals(Buffer.from(pattern(bs, 5)))).toBe(true);
    });

    it('accepts zero-length operations as no-ops, even at the very end', async () => {
      const d = await make(512, 4096);
      await d.read(4096, new Uint8Array(0));
      await d.write(4096, new Uint8Array(0));
      await d.discard(4096, 0);
      expect(d.stats.reads + d.stats.writes + d.stats.discards).toBe(0);
    });

    it('fails every operation after close with EBADF; a second close is a no-op', async () => {
      const d = await make(4096, 1 << 16);
      await d.write(0, pattern(4096, 3));
      await d.close();
      expect(d.closed).toBe(true);
      await d.close();
      await expectErrno(d.read(0, new Uint8Array(4096)), 'EBADF');
      await expectErrno(d.write(0, new Uint8Array(4096)), 'EBADF');
      await expectErrno(d.flush(), 'EBADF');
      await expectErrno(d.discard(0, 4096), 'EBADF');
    });

    it('discard makes the range read as zeros and leaves its neighbours alone', async () => {
      const bs = 1024;
      const size = 256 * bs; // spans several 64 KiB chunks
      const d = await make(bs, size);
      const data = pattern(size, 77);
      await d.write(0, data);
      await d.discard(3 * bs, 100 * bs);
      await d.discard(200 * bs, 56 * bs);
      const back = new Uint8Array(size);
      await d.read(0, back);
      const model = data.slice();
      model.fill(0, 3 * bs, 103 * bs);
      model.fill(0, 200 * bs);
      expect(Buffer.from(back).equals(Buffer.from(model))).toBe(true);
      // Writing after a discard works.
      await d.write(50 * bs, pattern(bs, 8));
      const one = new Uint8Array(bs);
      await d.read(50 * bs, one);
      expect(Buffer.from(one).equals(Buffer.from(pattern(bs, 8)))).toBe(true);
    });

    it('flush resolves and keeps the data; stats count the traffic', async () => {
      const d = await make(4096, 1 << 20);
      await d.write(0, pattern(8192, 1));
      await d.write(65536, pattern(4096, 2));
      await d.flush();
      const buf = new Uint8Array(8192);
      await d.read(0, buf);
      expect(Buffer.from(buf).equals(Buffer.from(pattern(8192, 1)))).toBe(true);
      expect(d.stats.writes).toBe(2);
      expect(d.stats.bytesWritten).toBe(12288);
      expect(d.stats.flushes).toBe(1);
      expect(d.stats.reads).toBe(1);
      expect(d.stats.bytesRead).toBe(8192);
      d.resetStats();
      expect(d.stats.reads).toBe(0);
    });

    it('is done with the caller\'s view when the call returns (safe against memory.grow)', async () => {
      // The engine may grow WebAssembly memory (detaching its views) as soon
      // as it gets control back, so the bytes must move during the call.
      const d = await make(4096, 1 << 20);
      const src = pattern(16384, 4);
      const p = d.write(0, src);
      src.fill(0);
      await p;
      const dst = new Uint8Array(16384);
      const q = d.read(0, dst);
      const atReturn = dst.slice();
      await q;
      expect(Buffer.from(atReturn).equals(Buffer.from(pattern(16384, 4)))).toBe(true);
    });
  });
}
