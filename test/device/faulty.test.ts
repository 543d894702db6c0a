import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FaultyDevice, FileDevice, MemoryDevice } from '../../src/device/index.js';
import { deviceSuite, expectErrno, pattern } from '../helpers/device-suite.js';

deviceSuite('FaultyDevice (write cache) over MemoryDevice', {
  make: async (g) => new FaultyDevice(new MemoryDevice(g)),
});
deviceSuite('FaultyDevice (write-through) over MemoryDevice', {
  make: async (g) => new FaultyDevice(new MemoryDevice(g), { writeCache: false }),
});

const BS = 4096;
const mk = () => {
  const inner = new MemoryDevice({ blockSize: BS, size: 64 * BS });
  return { inner, dev: new FaultyDevice(inner) };
};
async function readAll(d: { read(o: number, b: Uint8Array): Promise<void>; size: number }): Promise<Uint8Array> {
  const b = new Uint8Array(d.size);
  await d.read(0, b);
  return b;
}
const eq = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

describe('FaultyDevice fault injection', () => {
  it('fails exactly the nth write, once, and leaves the device unchanged by it', async () => {
    const { dev } = mk();
    const h = dev.injectFault({ op: 'write', nth: 3 });
    await dev.write(0, pattern(BS, 1));
    await dev.read(0, new Uint8Array(BS)); // reads do not count towards a write rule
    await dev.write(BS, pattern(BS, 2));
    await expectErrno(dev.write(2 * BS, pattern(BS, 3)), 'EIO');
    await dev.write(3 * BS, pattern(BS, 4));
    expect(h.fired).toBe(1);
    const all = await readAll(dev);
    expect(eq(all.subarray(2 * BS, 3 * BS), new Uint8Array(BS))).toBe(true);
    expect(eq(all.subarray(3 * BS, 4 * BS), pattern(BS, 4))).toBe(true);
    expect(dev.ops.filter((o) => o.failed).map((o) => o.seq)).toEqual([3]);
    expect(dev.ops.map((o) => o.op)).toEqual(['write', 'read', 'write', 'write', 'write', 'read']);
  });

  it('sticky range rules fail every write touching the range and nothing else', async () => {
    const { dev } = mk();
    const h = dev.injectFault({ op: 'write', range: { offset: 10 * BS, length: 2 * BS }, sticky: true });
    await expectErrno(dev.write(9 * BS, new Uint8Array(2 * BS)), 'EIO'); // overlaps the start
    await expectErrno(dev.write(11 * BS, new Uint8Array(BS)), 'EIO');
    await expectErrno(dev.write(11 * BS, new Uint8Array(BS)), 'EIO');
    await dev.write(8 * BS, new Uint8Array(2 * BS)); // ends where the range starts
    await dev.write(12 * BS, new Uint8Array(BS)); // starts where it ends
    await dev.read(10 * BS, new Uint8Array(BS)); // reads are not affected
    await dev.flush();
    expect(h.fired).toBe(3);
    h.remove();
    await dev.write(10 * BS, new Uint8Array(BS));
  });

  it('sticky nth fails from the nth on; predicates see op, offset, length and seq', async () => {
    const { dev } = mk();
    dev.injectFault({ op: 'read', nth: 2, sticky: true });
    await dev.read(0, new Uint8Array(BS));
    await expectErrno(dev.read(0, new Uint8Array(BS)), 'EIO');
    await expectErrno(dev.read(BS, new Uint8Array(BS)), 'EIO');
    dev.clearFaults();
    await dev.read(0, new Uint8Array(BS));
    const seen: string[] = [];
    dev.injectFault({
      when: (o) => {
        seen.push(`${o.op}:${o.offset}:${o.length}:${o.seq}`);
        return o.op === 'discard' && o.length === 2 * BS;
      },
    });
    await dev.discard(0, BS);
    await expectErrno(dev.discard(BS, 2 * BS), 'EIO');
    await dev.discard(BS, 2 * BS); // one-shot: disarmed
    expect(seen).toEqual([`discard:0:${BS}:4`, `discard:${BS}:${2 * BS}:5`]);
  });

  it('a failed flush keeps the cached writes; a later flush lands them', async () => {
    const { inner, dev } = mk();
    dev.injectFault({ op: 'flush', nth: 1 });
    await dev.write(0, pattern(BS, 1));
    await expectErrno(dev.flush(), 'EIO');
    expect(dev.pendingWrites.length).toBe(1);
    expect(eq((await readAll(inner)).subarray(0, BS), new Uint8Array(BS))).toBe(true);
    await dev.flush();
    expect(dev.pendingWrites.length).toBe(0);
    expect(eq((await readAll(inner)).subarray(0, BS), pattern(BS, 1))).toBe(true);
  });

  it('counts reads, writes, bytes and flushes', async () => {
    const { dev } = mk();
    await dev.write(0, new Uint8Array(2 * BS));
    await dev.read(0, new Uint8Array(3 * BS));
    await dev.read(0, new Uint8Array(BS));
    await dev.flush();
    expect(dev.stats).toMatchObject({ reads: 2, bytesRead: 4 * BS, writes: 1, bytesWritten: 2 * BS, flushes: 1 });
  });
});

describe('FaultyDevice crash simulation', () => {
  it('caches writes until flush: reads see them, the inner device does not', async () => {
    const { inner, dev } = mk();
    await dev.write(BS, pattern(2 * BS, 1));
    await dev.discard(2 * BS, BS);
    const view = await readAll(dev);
    expect(eq(view.subarray(BS, 2 * BS), pattern(2 * BS, 1).subarray(0, BS))).toBe(true);
    expect(eq(view.subarray(2 * BS, 3 * BS), new Uint8Array(BS))).toBe(true);
    expect((await readAll(inner)).every((b) => b === 0)).toBe(true);
    expect(dev.pendingWrites.map((w) => [w.index, w.kind])).toEqual([
      [0, 'write'],
      [1, 'discard'],
    ]);
  });

  it("crash({ keep: 'none' }) keeps exactly the flushed state, and the device is usable again", async () => {
    const { dev } = mk();
    await dev.write(0, pattern(BS, 1));
    await dev.flush();
    await dev.write(0, pattern(BS, 2));
    await dev.write(5 * BS, pattern(BS, 3));
    await dev.close();
    expect(await dev.crash()).toEqual([]);
    expect(dev.closed).toBe(false);
    const all = await readAll(dev);
    const model = new Uint8Array(64 * BS);
    model.set(pattern(BS, 1));
    expect(eq(all, model)).toBe(true);
  });

  it("crash({ keep: 'all' }) and keep by index apply the chosen writes in order", async () => {
    for (const [keep, expectKept] of [
      ['all', [0, 1, 2, 3]],
      [[1, 3], [1, 3]],
      [[0, 2], [0, 2]],
      [[], []],
    ] as const) {
      const { dev } = mk();
      const writes = [
        [0, pattern(2 * BS, 10)],
        [BS, pattern(BS, 11)], // overwrites the second block of write 0
        [8 * BS, pattern(BS, 12)],
        [8 * BS, null], // discard of write 2's block
      ] as const;
      for (const [off, data] of writes) {
        if (data) await dev.write(off, data);
        else await dev.discard(off, BS);
      }
      const kept = await dev.crash({ keep: keep as 'all' | number[] });
      expect(kept).toEqual(expectKept);
      const model = new Uint8Array(64 * BS);
      for (const i of kept) {
        const [off, data] = writes[i]!;
        if (data) model.set(data, off);
        else model.fill(0, off, off + BS);
      }
      expect(eq(await readAll(dev), model), `keep ${JSON.stringify(keep)}`).toBe(true);
    }
  });

  it('tears a write at block granularity when keep returns block numbers', async () => {
    const { dev } = mk();
    const data = pattern(4 * BS, 5);
    await dev.write(4 * BS, data);
    await dev.write(20 * BS, pattern(BS, 6));
    const kept = await dev.crash({ keep: (i, w) => (i === 0 ? [0, 2] : w.offset !== 20 * BS) });
    expect(kept).toEqual([0]);
    const all = await readAll(dev);
    const model = new Uint8Array(64 * BS);
    model.set(data.subarray(0, BS), 4 * BS);
    model.set(data.subarray(2 * BS, 3 * BS), 6 * BS);
    expect(eq(all, model)).toBe(true);
    await expectErrno(
      (async () => {
        await dev.write(0, new Uint8Array(BS));
        await dev.crash({ keep: () => [1] });
      })(),
      'EINVAL',
    );
  });

  it('a power cut at every point of a workload leaves exactly the state of its last completed flush', async () => {
    // The workload, as a list of steps; each flush marks a durable state.
    type Step = ['w', number, number, number] | ['d', number, number] | ['f'];
    const steps: Step[] = [];
    let s = 1;
    for (let i = 0; i < 30; i++) {
      const r = (s = (s * 48271) % 2147483647);
      if (r % 5 === 0) steps.push(['f']);
      else if (r % 7 === 0) steps.push(['d', r % 60, 1 + (r % 3)]);
      else steps.push(['w', r % 60, 1 + (r % 4), i]);
    }
    steps.push(['f']);
    const run = async (dev: FaultyDevice) => {
      for (const st of steps) {
        if (st[0] === 'w') await dev.write(st[1] * BS, pattern(st[2] * BS, st[3]));
        else if (st[0] === 'd') await dev.discard(st[1] * BS, st[2] * BS);
        else await dev.flush();
      }
    };
    const first = mk().dev;
    await run(first);
    const total = first.ops.length;
    expect(total).toBe(steps.length);
    for (let cut = 0; cut <= total; cut++) {
      const { dev } = mk();
      dev.cutPower(cut);
      let failedAt = -1;
      const m = new Uint8Array(64 * BS);
      const snapshots: Uint8Array[] = [m.slice()];
      try {
        for (let i = 0; i < steps.length; i++) {
          failedAt = i;
          const st = steps[i]!;
          if (st[0] === 'w') {
            await dev.write(st[1] * BS, pattern(st[2] * BS, st[3]));
            m.set(pattern(st[2] * BS, st[3]), st[1] * BS);
          } else if (st[0] === 'd') {
            await dev.discard(st[1] * BS, st[2] * BS);
            m.fill(0, st[1] * BS, (st[1] + st[2]) * BS);
          } else {
            await dev.flush();
            snapshots.push(m.slice());
          }
        }
        failedAt = -1;
      } catch (e) {
        expect((e as { code?: string }).code).toBe('EIO');
      }
      expect(failedAt).toBe(cut < steps.length ? cut : -1);
      await dev.crash();
      expect(eq(await readAll(dev), snapshots[snapshots.length - 1]!), `cut at ${cut}`).toBe(true);
    }
  });

  it('over a FileDevice, a crash leaves exactly the flushed bytes in the file on disk', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iomap-verity-faulty-'));
    try {
      const p = path.join(dir, 'img');
      const dev = new FaultyDevice(await FileDevice.open(p, { blockSize: 512, size: 65536, create: true }));
      await dev.write(0, pattern(1024, 1));
      await dev.flush();
      await dev.write(512, pattern(512, 2));
      await dev.write(4096, pattern(512, 3));
      expect(fs.readFileSync(p).subarray(4096, 4608).every((b) => b === 0)).toBe(true);
      await dev.crash({ keep: [1] });
      const disk = fs.readFileSync(p);
      expect(disk.subarray(0, 1024).equals(Buffer.from(pattern(1024, 1)))).toBe(true);
      expect(disk.subarray(4096, 4608).equals(Buffer.from(pattern(512, 3)))).toBe(true);
      await dev.release();
      expect(dev.inner.closed).toBe(true);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
