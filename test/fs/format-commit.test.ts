import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FaultyDevice, FileDevice, MemoryDevice } from '../../src/device/index.js';
import { isErrno } from '../../src/errors.js';
import {
  commit,
  computeLayout,
  crc32c,
  decodeBlob,
  DeviceMetaStore,
  encodeBlob,
  formatDevice,
  load,
  SUPERBLOCK_OFFSETS,
} from '../../src/fs/format.js';
import type { VolumeMeta } from '../../src/fs/meta.js';
import { expectErrno } from '../helpers/device-suite.js';
import { randomMeta, rng } from '../helpers/format.js';

const enc = new TextEncoder();

describe('format: layout and checksums', () => {
  it('computes CRC-32C (Castagnoli) check values', () => {
    expect(crc32c(enc.encode('123456789'))).toBe(0xe3069283);
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
    expect(crc32c(new Uint8Array(0))).toBe(0);
  });

  it('lays out two superblocks, two metadata areas, then data', () => {
    const l = computeLayout(new MemoryDevice({ blockSize: 512, size: 64 << 20 }));
    expect(l.blockSize).toBe(4096);
    expect(l.superblockBlocks).toEqual([0, 16]);
    expect(l.areaLength * 4096).toBe(512 << 10); // 1/128 of the device
    expect(l.areaBlocks).toEqual([17, 17 + 128]);
    expect(l.dataStart).toBe(17 + 256);
    expect(l.deviceBlocks).toBe(16384);
    const big = computeLayout(new MemoryDevice({ size: 2 ** 40 }), { blockSize: 65536 });
    expect(big.superblockBlocks).toEqual([0, 1]);
    expect(big.areaLength * 65536).toBe(4 << 20);
    const small = computeLayout(new MemoryDevice({ blockSize: 512, size: 1 << 20 }), { blockSize: 512, metaAreaBytes: 5000 });
    expect(small.areaLength).toBe(10);
  });

  it('refuses bad block sizes, area sizes and devices too small', () => {
    const d = new MemoryDevice({ blockSize: 4096, size: 1 << 20 });
    const codeOf = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return isErrno(e) ? e.code : String(e);
      }
      return 'ok';
    };
    expect(codeOf(() => computeLayout(d, { blockSize: 3000 }))).toBe('EINVAL');
    expect(codeOf(() => computeLayout(d, { blockSize: 2048 }))).toBe('EINVAL'); // below the device's
    expect(codeOf(() => computeLayout(d, { metaAreaBytes: 100 }))).toBe('EINVAL');
    expect(codeOf(() => computeLayout(d, { metaAreaBytes: 2 ** 30 }))).toBe('EINVAL');
    expect(codeOf(() => computeLayout(new MemoryDevice({ size: 131072 })))).toBe('ENOSPC');
    expect(codeOf(() => computeLayout(d))).toBe('ok');
  });
});

describe('format: metadata blob', () => {
  it('round-trips 300 random VolumeMetas through encode and decode', () => {
    const layout = computeLayout(new MemoryDevice({ blockSize: 512, size: 2 ** 40 }), { blockSize: 512 });
    const r = rng(7);
    for (let i = 0; i < 300; i++) {
      const meta = randomMeta(layout, r, 20, 20);
      const gen = 1 + Math.floor(r() * 1e6);
      const blob = encodeBlob(meta, gen);
      expect(decodeBlob(blob, { ...layout, generation: gen })).toEqual(meta);
    }
  });

  it('refuses to encode invalid metadata with EINVAL naming the problem', () => {
    const layout = computeLayout(new MemoryDevice({ size: 16 << 20 }));
    const base = (): VolumeMeta => ({
      blockSize: 4096,
      deviceBlocks: layout.deviceBlocks,
      dataStart: layout.dataStart,
      nextIno: 10,
      inodes: [
        { ino: 1, name: 'a', size: 5, flags: 0, extents: [{ fileBlock: 0, devBlock: layout.dataStart, blocks: 2, unwritten: false }] },
        { ino: 2, name: 'b', size: 5, flags: 1, extents: [{ fileBlock: 3, devBlock: layout.dataStart + 5, blocks: 1, unwritten: true }] },
      ],
    });
    expect(() => encodeBlob(base(), 1)).not.toThrow();
    const cases: Array<[string, (m: VolumeMeta) => void, RegExp]> = [
      ['duplicate name', (m) => (m.inodes[1]!.name = 'a'), /twice/],
      ['duplicate ino', (m) => (m.inodes[1]!.ino = 1), /twice/],
      ['ino >= nextIno', (m) => (m.nextIno = 2), /nextIno/],
      ['slash in name', (m) => (m.inodes[0]!.name = 'a/b'), /valid file name/],
      ['empty name', (m) => (m.inodes[0]!.name = ''), /name length/],
      ['lone surrogate', (m) => (m.inodes[0]!.name = 'x\ud800'), /Unicode/],
      ['name too long', (m) => (m.inodes[0]!.name = 'n'.repeat(256)), /name length/],
      ['size too big', (m) => (m.inodes[0]!.size = 2 ** 53), /2\^53/],
      ['negative size', (m) => (m.inodes[0]!.size = -1), /non-negative/],
      ['extent in metadata area', (m) => (m.inodes[0]!.extents[0]!.devBlock = 3), /outside the data area/],
      ['extent past the device', (m) => (m.inodes[0]!.extents[0]!.devBlock = layout.deviceBlocks - 1), /outside the data area/],
      ['shared device block', (m) => (m.inodes[1]!.extents[0]!.devBlock = layout.dataStart + 1), /belongs to both/],
      ['unsorted extents', (m) => m.inodes[0]!.extents.push({ fileBlock: 1, devBlock: layout.dataStart + 9, blocks: 1, unwritten: false }), /sorted/],
      ['empty extent', (m) => (m.inodes[0]!.extents[0]!.blocks = 0), /empty/],
      ['fractional block', (m) => (m.inodes[0]!.extents[0]!.fileBlock = 0.5), /integer/],
      ['missing extents', (m) => ((m.inodes[0] as unknown as { extents: unknown }).extents = undefined), /array/],
    ];
    for (const [what, mutate, msg] of cases) {
      const m = base();
      mutate(m);
      let err: unknown;
      try {
        encodeBlob(m, 1);
      } catch (e) {
        err = e;
      }
      expect(isErrno(err, 'EINVAL'), `${what}: ${String(err)}`).toBe(true);
      expect((err as Error).message, what).toMatch(msg);
    }
  });
});

async function readImage(d: MemoryDevice | FaultyDevice): Promise<Uint8Array> {
  const b = new Uint8Array(d.size);
  await d.read(0, b);
  return b;
}

describe('format: commit and load', () => {
  it('formats, commits a series of random metadata and loads the newest each time', async () => {
    const d = new MemoryDevice({ blockSize: 512, size: 8 << 20 });
    const f = await formatDevice(d, { blockSize: 1024 });
    expect(f.state.generation).toBe(1);
    expect(f.meta.inodes).toEqual([]);
    expect((await load(d)).meta).toEqual(f.meta);
    let state = f.state;
    const r = rng(11);
    for (let i = 0; i < 20; i++) {
      const meta = randomMeta(state.layout, r);
      state = await commit(d, meta, state);
      const got = await load(d);
      expect(got.meta).toEqual(meta);
      expect(got.state.generation).toBe(i + 2);
      expect(got.slot).toBe((i + 2) % 2);
      expect(got.otherSlotInvalid).toBeUndefined();
    }
  });

  it('refuses a device without a volume (EINVAL) and a commit whose geometry does not match (EINVAL)', async () => {
    const d = new MemoryDevice({ size: 4 << 20 });
    await expectErrno(load(d), 'EINVAL');
    const f = await formatDevice(d);
    await expectErrno(commit(d, { ...f.meta, dataStart: 0 }, f.state), 'EINVAL');
    await expectErrno(commit(d, { ...f.meta, blockSize: 8192 }, f.state), 'EINVAL');
    expect((await load(d)).state.generation).toBe(1);
  });

  it('says ENOSPC, with a hint, when the metadata does not fit its area, and keeps the previous commit', async () => {
    const d = new MemoryDevice({ blockSize: 512, size: 4 << 20 });
    const f = await formatDevice(d, { blockSize: 512, metaAreaBytes: 4096 });
    const meta: VolumeMeta = { ...f.meta, nextIno: 1000, inodes: [] };
    for (let i = 1; i < 400; i++) meta.inodes.push({ ino: i, name: `file-number-${i}`, size: 0, flags: 0, extents: [] });
    let err: unknown;
    try {
      await commit(d, meta, f.state);
    } catch (e) {
      err = e;
    }
    expect(isErrno(err, 'ENOSPC')).toBe(true);
    expect((err as Error).message).toMatch(/metaAreaBytes/);
    expect((await load(d)).meta).toEqual(f.meta);
  });

  it('a reformat wipes the old volume: its newer generations cannot win', async () => {
    const d = new MemoryDevice({ size: 4 << 20 });
    let { state } = await formatDevice(d);
    for (let i = 0; i < 5; i++) state = await commit(d, { ...(await load(d)).meta, nextIno: 50 + i }, state);
    const again = await formatDevice(d);
    const got = await load(d);
    expect(got.state.generation).toBe(1);
    expect(got.meta).toEqual(again.meta);
  });

  it('a crash at every point of a commit, with any subset of unflushed writes kept, leaves the old or the new commit', async () => {
    const layoutDev = new MemoryDevice({ blockSize: 512, size: 1 << 20 });
    const r = rng(5);
    const layout = computeLayout(layoutDev, { blockSize: 512, metaAreaBytes: 8192 });
    const metaOld = randomMeta(layout, r);
    const metaNew = randomMeta(layout, r);
    // Count the operations of one commit, to cut the power at each of them.
    const probe = new FaultyDevice(new MemoryDevice({ blockSize: 512, size: 1 << 20 }));
    const p = await formatDevice(probe, { blockSize: 512, metaAreaBytes: 8192 });
    const ps = await commit(probe, metaOld, p.state);
    const startSeq = probe.nextSeq;
    await commit(probe, metaNew, ps);
    const commitOps = probe.ops.slice(startSeq).map((o) => o.op);
    expect(commitOps).toEqual(['write', 'flush', 'write', 'flush']);
    let sawOld = 0;
    let sawNew = 0;
    for (let cut = 0; cut <= commitOps.length; cut++) {
      for (const keep of ['none', 'all', [0], [1]] as const) {
        const dev = new FaultyDevice(new MemoryDevice({ blockSize: 512, size: 1 << 20 }));
        const f = await formatDevice(dev, { blockSize: 512, metaAreaBytes: 8192 });
        const s1 = await commit(dev, metaOld, f.state);
        dev.cutPower(dev.nextSeq + cut);
        let committed = false;
        try {
          await commit(dev, metaNew, s1);
          committed = true;
        } catch (e) {
          expect(isErrno(e, 'EIO')).toBe(true);
        }
        expect(committed).toBe(cut === commitOps.length);
        await dev.crash({ keep: keep as 'none' | 'all' | number[] });
        const got = await load(dev);
        if (committed) expect(got.meta).toEqual(metaNew);
        else expect([metaOld, metaNew]).toContainEqual(got.meta);
        if (JSON.stringify(got.meta) === JSON.stringify(metaNew)) sawNew++;
        else sawOld++;
        // The loaded state commits on: the next commit is loadable too.
        const third = randomMeta(layout, r);
        await commit(dev, third, got.state);
        expect((await load(dev)).meta).toEqual(third);
      }
    }
    // The superblock write kept without its final flush makes the new commit visible.
    expect(sawOld).toBeGreaterThan(0);
    expect(sawNew).toBeGreaterThan(4);
  });

  it('a torn blob write (some blocks kept) never loads as the new commit', async () => {
    const r = rng(9);
    const dev = new FaultyDevice(new MemoryDevice({ blockSize: 512, size: 1 << 20 }));
    const f = await formatDevice(dev, { blockSize: 512, metaAreaBytes: 8192 });
    const metaOld = randomMeta(f.state.layout, r, 30, 10);
    const metaNew = randomMeta(f.state.layout, r, 30, 10);
    const s1 = await commit(dev, metaOld, f.state);
    await commit(dev, metaNew, s1); // gen 3 in area 1
    // Now gen 4 (area 0, overwriting gen 2's blob) is cut after its blob write.
    const meta4 = randomMeta(f.state.layout, r, 30, 10);
    const s3 = (await load(dev)).state;
    dev.cutPower(dev.nextSeq + 1);
    await expectErrno(commit(dev, meta4, s3), 'EIO');
    expect(dev.pendingWrites[0]!.length).toBeGreaterThan(512);
    await dev.crash({ keep: () => [0] });
    const got = await load(dev);
    expect(got.meta).toEqual(metaNew);
    expect(got.otherSlotInvalid?.reason).toMatch(/checksum/);
  });

  it('a write error during a commit surfaces as EIO and the previous commit stays', async () => {
    const dev = new FaultyDevice(new MemoryDevice({ size: 4 << 20 }), { writeCache: false });
    const f = await formatDevice(dev);
    const meta = { ...f.meta, nextIno: 7 };
    for (const nth of [1, 2]) {
      dev.injectFault({ op: 'write', nth });
      await expectErrno(commit(dev, meta, f.state), 'EIO');
      expect((await load(dev)).meta).toEqual(f.meta);
    }
    dev.injectFault({ op: 'flush', nth: 1 });
    await expectErrno(commit(dev, meta, f.state), 'EIO');
    expect((await load(dev)).meta).toEqual(f.meta);
  });

  it('falls back to the previous commit when the newest superblock or blob is damaged', async () => {
    const r = rng(3);
    for (const target of ['superblock', 'blob', 'magic'] as const) {
      const d = new MemoryDevice({ blockSize: 512, size: 2 << 20 });
      const f = await formatDevice(d, { blockSize: 512 });
      const m2 = randomMeta(f.state.layout, r);
      const m3 = randomMeta(f.state.layout, r);
      const s2 = await commit(d, m2, f.state);
      const s3 = await commit(d, m3, s2); // gen 3: slot 1, area 1
      const sbOff = SUPERBLOCK_OFFSETS[1];
      const blobOff = s3.layout.areaBlocks[1] * 512;
      const at = target === 'blob' ? blobOff + 2 : target === 'magic' ? sbOff : sbOff + 30;
      const blk = new Uint8Array(512);
      const base = at - (at % 512);
      await d.read(base, blk);
      blk[at - base]! ^= 0x10;
      await d.write(base, blk);
      const got = await load(d);
      expect(got.meta, target).toEqual(m2);
      expect(got.state.generation).toBe(2);
      expect(got.otherSlotInvalid?.slot).toBe(1);
      expect(got.otherSlotInvalid?.reason).toMatch(target === 'magic' ? /magic/ : /checksum/);
      // Committing on from the fallback overwrites the damaged slot.
      const s = await commit(d, m3, got.state);
      expect(s.generation).toBe(3);
      expect((await load(d)).meta).toEqual(m3);
    }
  });

  it('refuses with EIO, naming both slots, when neither commit is valid', async () => {
    const d = new MemoryDevice({ blockSize: 512, size: 2 << 20 });
    const f = await formatDevice(d, { blockSize: 512 });
    await commit(d, f.meta, f.state);
    for (const off of SUPERBLOCK_OFFSETS) {
      const blk = new Uint8Array(512);
      await d.read(off, blk);
      blk[20]! ^= 1;
      await d.write(off, blk);
    }
    let err: unknown;
    try {
      await load(d);
    } catch (e) {
      err = e;
    }
    expect(isErrno(err, 'EIO')).toBe(true);
    expect((err as Error).message).toMatch(/slot 0: superblock checksum mismatch; slot 1: superblock checksum mismatch/);
  });

  it('refuses a volume larger than its device (an image cut short)', async () => {
    const d = new MemoryDevice({ blockSize: 512, size: 2 << 20 });
    await formatDevice(d, { blockSize: 512 });
    const img = await readImage(d);
    const short = new MemoryDevice({ blockSize: 512, size: 1 << 20 });
    await short.write(0, img.subarray(0, 1 << 20));
    let err: unknown;
    try {
      await load(short);
    } catch (e) {
      err = e;
    }
    expect(isErrno(err, 'EIO')).toBe(true);
    expect((err as Error).message).toMatch(/does not fit/);
  });

  it('DeviceMetaStore formats on first commit, reopens from a file, and commits on', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iomap-verity-format-'));
    try {
      const img = path.join(dir, 'vol.img');
      const dev = await FileDevice.open(img, { size: 8 << 20, create: true });
      const store = new DeviceMetaStore(dev, { blockSize: 4096 });
      const layout = computeLayout(dev);
      expect(store.dataStart).toBe(layout.dataStart);
      const meta = randomMeta(layout, rng(1));
      await store.commit(meta);
      expect(store.generation).toBe(1);
      await dev.close();
      const dev2 = await FileDevice.open(img);
      const store2 = new DeviceMetaStore(dev2);
      expect(() => store2.dataStart).toThrow(/load/);
      await expectErrno(store2.commit(meta), 'EINVAL');
      expect(await store2.load()).toEqual(meta);
      expect(store2.dataStart).toBe(layout.dataStart);
      const meta2 = randomMeta(layout, rng(2));
      await store2.commit(meta2);
      expect(await new DeviceMetaStore(dev2).load()).toEqual(meta2);
      await dev2.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
