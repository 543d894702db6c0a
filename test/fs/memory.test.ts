/**
 * The page cache stays within its byte budget while a file many times the
 * budget is written and read back through a Volume.
 */
import { describe, expect, it } from 'vitest';
import { MemoryDevice } from '../../src/device/index.js';
import { Volume } from '../../src/fs/index.js';
import { loadWasm } from '../../src/wasm/index.js';

const MiB = 1 << 20;

function chunk(i: number, len: number): Uint8Array {
  const b = new Uint8Array(len);
  const dv = new DataView(b.buffer);
  for (let o = 0; o + 4 <= len; o += 4) dv.setUint32(o, (i * 0x9e3779b1 + o) >>> 0, true);
  return b;
}

describe('fs memory budget', () => {
  it.each([
    [4 * MiB, 256 * 1024],
    [8 * MiB, 2 * MiB],
    [4 * MiB, 4096],
  ])('writes and reads a 64 MiB file with a %i-byte cache and %i-byte folios, arena use stays within budget + 2 folios', async (budget, folio) => {
    const wasm = await loadWasm();
    const base = wasm.x.arena_bytes_used();
    const dev = new MemoryDevice({ blockSize: 4096, size: 80 * MiB });
    const vol = await Volume.format(dev, { blockSize: 4096, maxFolioSize: folio, cacheBytes: budget });
    const f = await vol.create('big');
    const total = 64 * MiB;
    const step = MiB;
    let peak = 0;
    for (let i = 0; i < total / step; i++) {
      await f.write(i * step, chunk(i, step));
      peak = Math.max(peak, wasm.x.arena_bytes_used() - base);
    }
    await f.fsync();
    for (let i = 0; i < total / step; i++) {
      const got = await f.read(i * step, step);
      expect(got.length).toBe(step);
      expect(Buffer.from(got).equals(chunk(i, step)), `chunk ${i}`).toBe(true);
      peak = Math.max(peak, wasm.x.arena_bytes_used() - base);
    }
    // Folio bitmaps live in the arena too: allow two folios of slack plus one page of state.
    expect(peak).toBeLessThanOrEqual(budget + 2 * folio + 4096);
    expect(peak).toBeGreaterThan(budget / 2);
    await vol.close();
    expect(wasm.x.arena_bytes_used() - base).toBeLessThanOrEqual(8192);
  });
});
