/**
 * Model-based random test of the reference filesystem: long sequences of
 * write, read, truncate, allocate, fsync, cache drop and remount run against
 * a `File` and against a plain byte array, which must agree after every step.
 * Every block size from 512 to 65536 and max folio sizes from 4 KiB to 2 MiB,
 * on MemoryDevice and on FileDevice (a real temp file).
 *
 * IOMAP_VERITY_SOAK=1 runs many more and longer sequences.
 */
import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryDevice, FileDevice, type BlockDevice } from '../../src/device/index.js';
import { Volume, type File } from '../../src/fs/index.js';
import { xorshiftBytes as pattern } from '../helpers/bytes.js';
import { firstDiff } from '../helpers/compare.js';
import { ByteModel as Model } from '../helpers/model.js';

const SOAK = process.env.IOMAP_VERITY_SOAK === '1';
const tmp = mkdtempSync(join(tmpdir(), 'iomap-verity-fs-model-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** `f` picks one of two files, so writeback pressure and removal of one act on the other. */
type Op =
  | { t: 'write'; f: number; pos: number; len: number; seed: number }
  | { t: 'read'; f: number; pos: number; len: number }
  | { t: 'truncate'; f: number; size: number }
  | { t: 'allocate'; f: number; pos: number; len: number; keepSize: boolean }
  | { t: 'fsync'; f: number }
  | { t: 'recreate'; f: number }
  | { t: 'drop' }
  | { t: 'remount' };

/** Positions that hit the interesting places: block and folio edges, and random ones. */
function posArb(bs: number, folio: number, span: number): fc.Arbitrary<number> {
  const edge = fc.tuple(fc.integer({ min: 0, max: Math.floor(span / folio) }), fc.integer({ min: -bs - 1, max: bs + 1 }), fc.constantFrom(bs, folio)).map(([k, d, unit]) =>
    Math.max(0, Math.min(span, k * unit + d)),
  );
  return fc.oneof(fc.integer({ min: 0, max: 3 * bs }), edge, fc.integer({ min: 0, max: span }));
}

function opArb(bs: number, folio: number): fc.Arbitrary<Op> {
  const span = Math.max(4 * folio, 8 * bs, 256 * 1024);
  const pos = posArb(bs, folio, span);
  const len = fc.oneof(fc.integer({ min: 0, max: 2 * bs + 3 }), fc.integer({ min: 0, max: Math.min(2 * folio + 7, 1 << 20) }));
  const f = fc.constantFrom(0, 0, 1);
  return fc.oneof(
    { weight: 5, arbitrary: fc.record({ t: fc.constant('write' as const), f, pos, len, seed: fc.nat() }) },
    { weight: 4, arbitrary: fc.record({ t: fc.constant('read' as const), f, pos, len }) },
    { weight: 2, arbitrary: fc.record({ t: fc.constant('truncate' as const), f, size: pos }) },
    { weight: 1, arbitrary: fc.record({ t: fc.constant('allocate' as const), f, pos, len, keepSize: fc.boolean() }) },
    { weight: 1, arbitrary: fc.record({ t: fc.constant('fsync' as const), f }) },
    { weight: 1, arbitrary: fc.constant({ t: 'drop' as const }) },
    { weight: 1, arbitrary: fc.constant({ t: 'remount' as const }) },
    { weight: 1, arbitrary: fc.record({ t: fc.constant('recreate' as const), f }) },
  );
}

const NAMES = ['f', 'g'];

async function runSequence(dev: BlockDevice, bs: number, folio: number, ops: Op[]): Promise<void> {
  // MemoryDevice settles everything in microtasks: give the event loop a turn
  // so vitest's worker can answer its RPCs during long soak runs.
  await new Promise((r) => setImmediate(r));
  // Small enough that dirty data often pushes the cache into pressure writeback.
  const cacheBytes = Math.max(4 * folio, 128 * 1024);
  let vol = await Volume.format(dev, { blockSize: bs, maxFolioSize: folio, cacheBytes });
  const files: File[] = [await vol.create('f'), await vol.create('g')];
  const models = [new Model(), new Model()];
  const check = async (where: string) => {
    await vol.dropCaches();
    for (const k of [0, 1]) {
      const all = await files[k].read(0, models[k].bytes.length + 10);
      expect(firstDiff(all, models[k].bytes), `${where}: file ${NAMES[k]}`).toBe(-1);
      // What writeback put where: every written extent holds the file's
      // bytes on the device, zeros past EOF; nothing is left delayed.
      for (const e of files[k].inode.extents.extents()) {
        expect(e.state, `${where}: ${NAMES[k]} extent ${JSON.stringify(e)}`).not.toBe('delalloc');
        if (e.state !== 'written') continue;
        const onDev = new Uint8Array(e.blocks * bs);
        await dev.read(e.devBlock * bs, onDev);
        const want = new Uint8Array(onDev.length);
        want.set(models[k].bytes.subarray(e.fileBlock * bs, (e.fileBlock + e.blocks) * bs));
        expect(firstDiff(onDev, want), `${where}: ${NAMES[k]} on the device at extent ${JSON.stringify(e)}`).toBe(-1);
      }
    }
  };
  try {
    for (const [i, op] of ops.entries()) {
      const where = `step ${i} ${JSON.stringify(op)} (bs ${bs}, folio ${folio})`;
      switch (op.t) {
        case 'write': {
          const data = pattern(op.len, op.seed);
          await files[op.f].write(op.pos, data);
          models[op.f].write(op.pos, data);
          break;
        }
        case 'read': {
          const bytes = models[op.f].bytes;
          let got: Uint8Array;
          if (op.len % 2 === 0) {
            got = await files[op.f].read(op.pos, op.len);
          } else {
            // pread into a larger buffer: only the bytes read change
            const dst = new Uint8Array(op.len + 3).fill(0xa5);
            const n = await files[op.f].readInto(op.pos, dst.subarray(0, op.len));
            if (dst.subarray(n).some((b) => b !== 0xa5)) throw new Error(`${where}: readInto wrote past the ${n} bytes it read`);
            got = dst.subarray(0, n);
          }
          const want = bytes.slice(Math.min(op.pos, bytes.length), Math.min(op.pos + op.len, bytes.length));
          const d = firstDiff(got, want);
          if (d >= 0) throw new Error(`${where}: read differs at +${d} (got ${got.length} bytes, want ${want.length})`);
          break;
        }
        case 'truncate':
          await files[op.f].truncate(op.size);
          models[op.f].truncate(op.size);
          break;
        case 'allocate':
          await files[op.f].allocate(op.pos, op.len, { keepSize: op.keepSize });
          if (!op.keepSize && op.len > 0 && op.pos + op.len > models[op.f].bytes.length) models[op.f].truncate(op.pos + op.len);
          break;
        case 'fsync':
          await files[op.f].fsync();
          break;
        case 'drop':
          await vol.dropCaches();
          break;
        case 'remount':
          await vol.close();
          vol = await Volume.open(dev, { maxFolioSize: folio, cacheBytes });
          for (const k of [0, 1]) files[k] = await vol.open(NAMES[k]);
          break;
        case 'recreate':
          await vol.remove(NAMES[op.f]);
          files[op.f] = await vol.create(NAMES[op.f]);
          models[op.f] = new Model();
          break;
      }
      for (const k of [0, 1]) expect(files[k].size, `${where}: size of ${NAMES[k]}`).toBe(models[k].bytes.length);
    }
    // Everything, once more, from the device, and again after a remount.
    await check('final');
    await vol.close();
    vol = await Volume.open(dev, { maxFolioSize: folio, cacheBytes });
    for (const k of [0, 1]) files[k] = await vol.open(NAMES[k]);
    await check('after remount');
    // No block is lost: after removing both files and two commits (the
    // previous commit still refers to them after one), all space is free.
    await vol.remove('f');
    await vol.remove('g');
    await vol.sync();
    await vol.sync();
    const space = vol.space();
    expect(space.freeBlocks).toBe(space.totalBlocks);
    expect(space.reservedBlocks).toBe(0);
  } finally {
    await vol.close().catch(() => undefined);
  }
}

/** Every block size, each with its smallest folio, 64 KiB and 2 MiB folios. */
const CONFIGS: Array<[number, number]> = [];
for (let bs = 512; bs <= 65536; bs *= 2) {
  for (const folio of new Set([Math.max(4096, bs), Math.max(65536, bs), 2 << 20])) CONFIGS.push([bs, folio]);
}

const DEVICE_SIZE = 64 << 20;

describe('fs model: File agrees with a byte array', () => {
  for (const [bs, folio] of CONFIGS) {
    it(`MemoryDevice, block ${bs}, max folio ${folio}`, async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(opArb(bs, folio), { minLength: 10, maxLength: SOAK ? 200 : 40, size: "max" }), async (ops) => {
          await runSequence(new MemoryDevice({ blockSize: 512, size: DEVICE_SIZE }), bs, folio, ops);
        }),
        { numRuns: SOAK ? 300 : 25 },
      );
    });
  }
  for (const [bs, folio] of [[512, 4096], [4096, 2 << 20], [8192, 65536], [65536, 65536]] as const) {
    it(`FileDevice, block ${bs}, max folio ${folio}`, async () => {
      let n = 0;
      await fc.assert(
        fc.asyncProperty(fc.array(opArb(bs, folio), { minLength: 10, maxLength: SOAK ? 200 : 30, size: "max" }), async (ops) => {
          const dev = await FileDevice.open(join(tmp, `dev-${bs}-${folio}-${n++}`), { blockSize: Math.min(bs, 4096), size: DEVICE_SIZE, create: true });
          try {
            await runSequence(dev, bs, folio, ops);
          } finally {
            await dev.close();
          }
        }),
        { numRuns: SOAK ? 100 : 10 },
      );
    });
  }
});
