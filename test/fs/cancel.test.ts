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
import { FileDevice, fsverityDigest, MemoryDevice, Volume, type BlockDevice } from '../../src/index.js';
import { randomBytes } from '../helpers/bytes.js';

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
