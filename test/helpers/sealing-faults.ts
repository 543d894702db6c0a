/**
 * Failures while sealing: a device fault at a step of enableVerity leaves
 * the file as it was and writable, or, when only the final commit failed,
 * sealed (test/fs/verity-engine.test.ts runs a slice,
 * test/fs/verity-faults.slow.test.ts every step).
 */
import { describe, expect, it } from 'vitest';
import { FaultyDevice, MemoryDevice, Volume } from '../../src/index.js';
import { randomBytes, rng } from './bytes.js';

/**
 * A read, write or flush failing at each device operation of a seal. Every
 * `every`th operation from a seeded start is failed (every one with
 * `every` = 1): the default run takes a slice, the slow script all of them.
 */
export function sealingFaults(every: number, seed = 1): void {
  describe('failures while sealing', () => {
    it(`a read, write or flush failing at ${every === 1 ? 'any step' : `every ${every}th step (from seed ${seed})`} leaves the file as it was and writable, or (in the final commit) sealed`, async () => {
      const data = randomBytes(300_000, rng(seed));
      // count the device operations of a clean run
      const probe = new FaultyDevice(new MemoryDevice({ blockSize: 4096, size: 16 << 20 }), { writeCache: false });
      const pv = await Volume.format(probe, { maxFolioSize: 65536, cacheBytes: 1 << 20 });
      const pf = await pv.create('f');
      await pf.write(0, data);
      await pf.fsync();
      const before = probe.ops.length;
      await pf.enableVerity();
      const count = (op: string) => probe.ops.slice(before).filter((o) => o.op === op).length;
      const steps = { write: count('write'), flush: count('flush'), read: count('read') };
      expect(steps.write + steps.flush).toBeGreaterThan(3);
      expect(steps.read).toBeGreaterThan(0);
      const want = (await pf.measureVerity()).formatted;
      for (const op of ['write', 'flush', 'read'] as const) {
        for (let n = 1 + (seed % every); n <= steps[op]; n += every) {
          const dev = new FaultyDevice(new MemoryDevice({ blockSize: 4096, size: 16 << 20 }), { writeCache: false });
          const vol = await Volume.format(dev, { maxFolioSize: 65536, cacheBytes: 1 << 20 });
          const f = await vol.create('f');
          await f.write(0, data);
          await f.fsync();
          const rule = dev.injectFault({ op, nth: n });
          let message = '';
          const r = await f.enableVerity().then(
            () => 'ok',
            (e) => ((message = e.message), e.code),
          );
          rule.remove();
          if (r === 'ok') {
            expect(f.isVerity).toBe(true);
          } else if (/committing the seal failed/.test(message)) {
            // Only the final commit failed: the tree is complete, so the file
            // stays sealed (its superblock may be on the device already) and
            // the close below commits it.
            expect(r).toBe('EIO');
            expect(f.isVerity).toBe(true);
            await expect(f.write(0, new Uint8Array([1]))).rejects.toMatchObject({ code: 'EPERM' });
          } else {
            expect(r).toBe('EIO');
            expect(f.isVerity).toBe(false);
            expect(f.size).toBe(data.length);
            expect(Buffer.from(await f.read(0, data.length))).toEqual(Buffer.from(data));
            await f.write(0, new Uint8Array([1]));
            await f.write(0, data.subarray(0, 1));
            await f.enableVerity();
          }
          expect((await f.measureVerity()).formatted).toBe(want);
          await vol.close();
        }
      }
    });
  });
}
