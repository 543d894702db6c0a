/**
 * enableVerity with an AbortSignal: an abort during sealing rejects with
 * ECANCELED and leaves the file exactly as it was (not sealed, writable,
 * same bytes, no space kept by metadata), on a MemoryDevice and on a
 * FileDevice (whose sealing hashes on the worker pool).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FaultyDevice, FileDevice, fsverityDigest, MemoryDevice, Volume, type BlockDevice } from '../../src/index.js';
import { randomBytes } from '../helpers/bytes.js';
import { expectSameBytes } from '../helpers/compare.js';

const dir = mkdtempSync(join(tmpdir(), 'iomap-verity-fs-cancel-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const devices: Array<[string, () => Promise<BlockDevice>]> = [
  ['MemoryDevice', async () => new MemoryDevice({ size: 256 << 20 })],
  ['FileDevice', () => FileDevice.open(join(dir, 'img'), { size: 256 << 20, create: true })],
];

describe('enableVerity with a signal', () => {
  for (const [kind, make] of devices) {
    it(`an abort mid-way is ECANCELED and leaves the file as it was (${kind})`, async () => {
      const dev = await make();
      const volume = await Volume.format(dev, { cacheBytes: 32 << 20 });
      const data = randomBytes(96 << 20, 5);
      const f = await volume.create('big');
      await f.write(0, data);
      await volume.sync();
      const free = volume.space().freeBlocks;
      const ac = new AbortController();
      const p = f.enableVerity({
        signal: ac.signal,
        onProgress: (done) => {
          if (done > 0) ac.abort(new Error('changed my mind'));
        },
      });
      await expect(p).rejects.toMatchObject({ code: 'ECANCELED' });
      expect(f.isVerity).toBe(false);
      await volume.sync();
      expect(volume.space().freeBlocks).toBe(free);
      await f.write(0, data.subarray(0, 10));
      expect(await f.read(12_345_678, 1000)).toEqual(data.subarray(12_345_678, 12_346_678));
      // A seal after the cancelled one is whole and right.
      const aborted = new AbortController();
      aborted.abort();
      await expect(f.enableVerity({ signal: aborted.signal })).rejects.toMatchObject({ code: 'ECANCELED' });
      await f.enableVerity();
      expect((await f.measureVerity()).formatted).toBe((await fsverityDigest(data)).formatted);
      await volume.close();
      await dev.close();
    });
  }
});

describe('reads, writes and streams with a signal', () => {
  const MiB = 1 << 20;

  /** A volume on a FaultyDevice whose `onRead(offset)` sees every device read (it never fails one). */
  async function setup(onRead: (offset: number) => void = () => {}) {
    const dev = new FaultyDevice(new MemoryDevice({ size: 256 << 20 }));
    dev.injectFault({ op: 'read', sticky: true, when: (op) => (onRead(op.offset), false) });
    const volume = await Volume.format(dev, { cacheBytes: 8 << 20 });
    return { dev, volume };
  }

  it('a read aborted part-way is ECANCELED, copies only a prefix of true bytes and changes nothing', async () => {
    let ac = new AbortController();
    let reads = -1;
    const { volume } = await setup(() => {
      // Armed (reads >= 0): the second device read of the call aborts it.
      if (reads >= 0 && ++reads === 2) ac.abort(new Error('enough'));
    });
    const data = randomBytes(64 * MiB, 11);
    const f = await volume.create('plain');
    await f.write(0, data);
    await volume.sync();
    for (const sealed of [false, true]) {
      if (sealed) await f.enableVerity();
      await volume.dropCaches();
      ac = new AbortController();
      reads = 0;
      const dst = new Uint8Array(data.length);
      await expect(f.readInto(0, dst, { signal: ac.signal })).rejects.toMatchObject({ code: 'ECANCELED', message: expect.stringContaining('enough') });
      reads = -1;
      // It stopped part-way: some whole 16 MiB pieces were copied, not all,
      // all of them true bytes, and nothing past them.
      let copied = 0;
      while (copied < dst.length && dst[copied] === data[copied]) copied++;
      const pieces = Math.floor(copied / (16 * MiB));
      expect({ sealed, copied, pieces }).toMatchObject({ pieces: expect.any(Number) });
      expect(pieces, `copied ${copied}`).toBeGreaterThan(0);
      expect(pieces, `copied ${copied}`).toBeLessThan(4);
      expectSameBytes(dst.subarray(0, pieces * 16 * MiB), data.subarray(0, pieces * 16 * MiB), 'copied pieces');
      expect(dst.subarray(pieces * 16 * MiB).every((x) => x === 0)).toBe(true);
      // The file is untouched and reads whole afterwards.
      expect(f.size).toBe(data.length);
      expectSameBytes(await f.read(0, data.length), data, 'read after the abort');
    }
    await volume.close();
  });

  it('an abort before the call, or while it waits its turn, is ECANCELED and writes nothing', async () => {
    const { volume } = await setup();
    const f = await volume.create('w');
    const old = randomBytes(3 * MiB, 12);
    await f.write(0, old);
    await volume.sync();
    const aborted = new AbortController();
    aborted.abort();
    const s = aborted.signal;
    await expect(f.read(0, 10, { signal: s })).rejects.toMatchObject({ code: 'ECANCELED' });
    await expect(f.readInto(0, new Uint8Array(10), { signal: s })).rejects.toMatchObject({ code: 'ECANCELED' });
    await expect(f.write(0, new Uint8Array(10).fill(1), { signal: s })).rejects.toMatchObject({ code: 'ECANCELED' });
    // Queued behind a long call: the abort lands before the write's turn.
    const ac = new AbortController();
    const big = f.write(8 * MiB, randomBytes(32 * MiB, 13));
    const queued = f.write(0, new Uint8Array(1 * MiB).fill(7), { signal: ac.signal });
    const grow = f.write(100 * MiB, new Uint8Array(5).fill(9), { signal: ac.signal });
    ac.abort(new Error('not now'));
    await big;
    await expect(queued).rejects.toMatchObject({ code: 'ECANCELED', message: expect.stringContaining('not now') });
    await expect(grow).rejects.toMatchObject({ code: 'ECANCELED' });
    expect(f.size).toBe(40 * MiB);
    expect(await f.read(0, old.length)).toEqual(old);
    // A write whose signal never aborts is whole.
    await f.write(0, new Uint8Array(4).fill(3), { signal: new AbortController().signal });
    expect(await f.read(0, 5)).toEqual(Uint8Array.from([3, 3, 3, 3, old[4]]));
    await volume.close();
  });

  it('a stream errors with ECANCELED after an abort, having handed out only true chunks', async () => {
    const { volume } = await setup();
    const data = randomBytes(8 * MiB, 14);
    const f = await volume.create('s');
    await f.write(0, data);
    await f.enableVerity();
    const ac = new AbortController();
    const reader = f.stream({ chunkSize: MiB, signal: ac.signal }).getReader();
    const first = await reader.read();
    expect(first.value).toEqual(data.subarray(0, MiB));
    ac.abort();
    await expect(reader.read()).rejects.toMatchObject({ code: 'ECANCELED' });
    await volume.close();
  });

  it('a signal that is not an AbortSignal is EINVAL', async () => {
    const { volume } = await setup();
    const f = await volume.create('x');
    const bad = { aborted: 'no' } as unknown as AbortSignal;
    await expect(f.read(0, 1, { signal: bad })).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(f.write(0, new Uint8Array(1), { signal: bad })).rejects.toMatchObject({ code: 'EINVAL' });
    expect(() => f.stream({ signal: bad })).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(f.size).toBe(0);
    await volume.close();
  });
});
