import { describe, expect, it } from 'vitest';
import { MemoryDevice } from '../../src/device/index.js';
import { deviceSuite, expectErrno, pattern } from '../helpers/device-suite.js';

deviceSuite('MemoryDevice', { make: async (g) => new MemoryDevice(g) });

describe('MemoryDevice specifics', () => {
  it('costs no memory for unwritten space and frees discarded chunks', async () => {
    const d = new MemoryDevice({ blockSize: 4096, size: 2 ** 40 });
    expect(d.bytesAllocated).toBe(0);
    await d.read(2 ** 39, new Uint8Array(1 << 20));
    expect(d.bytesAllocated).toBe(0);
    await d.write(2 ** 40 - 4096, pattern(4096, 1));
    await d.write(0, pattern(3 * 65536, 2));
    expect(d.bytesAllocated).toBe(4 * 65536);
    await d.discard(0, 2 * 65536); // two whole chunks
    expect(d.bytesAllocated).toBe(2 * 65536);
    // A chunk discarded piece by piece is freed once nothing is left in it.
    for (let off = 2 * 65536; off < 3 * 65536; off += 4096) await d.discard(off, 4096);
    expect(d.bytesAllocated).toBe(65536);
  });

  it('refuses bad geometry with EINVAL', () => {
    const bad = [
      { blockSize: 256, size: 4096 },
      { blockSize: 131072, size: 131072 },
      { blockSize: 3000, size: 6000 },
      { blockSize: 4096, size: 4097 },
      { blockSize: 4096, size: 0 },
      { blockSize: 4096, size: -4096 },
      { blockSize: 4096, size: 2 ** 54 },
    ];
    for (const g of bad) {
      let err: unknown;
      try {
        new MemoryDevice(g);
      } catch (e) {
        err = e;
      }
      expect((err as { code?: string })?.code, JSON.stringify(g)).toBe('EINVAL');
    }
    expect(new MemoryDevice({ size: 8192 }).blockSize).toBe(4096);
  });

  it('close drops the contents', async () => {
    const d = new MemoryDevice({ size: 65536 });
    await d.write(0, pattern(4096, 1));
    await d.close();
    expect(d.bytesAllocated).toBe(0);
    await expectErrno(d.read(0, new Uint8Array(4096)), 'EBADF');
  });
});
