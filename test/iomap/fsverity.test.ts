/**
 * The seed patch's rules (docs/DESIGN-NOTES.md, "The seed's rules"), one named test
 * each, on a tiny filesystem defined here: a fixed extent table over a
 * MemoryDevice, so these tests depend on nothing but iomap itself.
 */
import { describe, expect, it } from 'vitest';
import { MemoryDevice } from '../../src/device/index.js';
import { isErrno } from '../../src/errors.js';
import {
  formatIomapFlags,
  formatTraceEvent,
  fsverityMetadataOffset,
  IOMAP_F_FSVERITY,
  IOMAP_F_NEW,
  IOMAP_F_SIZE_CHANGED,
  IOMAP_HOLE,
  IOMAP_MAPPED,
  IOMAP_NULL_ADDR,
  iomapBufferedRead,
  iomapBufferedWrite,
  iomapFsverityWrite,
  iomapFsync,
  iomapReadFolio,
  iomapTraceRing,
  iomapWritepages,
  PageCache,
  type Iomap,
  type IomapInode,
  type IomapOps,
  type IomapWritebackOps,
} from '../../src/iomap/index.js';
import type { AddressSpace } from '../../src/pagecache/index.js';
import { instantiateWasm } from '../../src/wasm/index.js';

const BS = 4096;
const FOLIO = 65536; // max folio size: one folio holds 16 blocks
const META = 65536; // fsverityMetadataOffset(10000, 65536)
const META_DEV = 1 << 20; // where the metadata extent lives on the device

/** A fixed extent table: data [0, 64K) at device 0, metadata [64K, 128K) at 1 MiB with a hole at block 2. */
class FixedFs implements IomapOps, IomapWritebackOps {
  ends: Iomap[] = [];
  constructor(private readonly metaFlag = IOMAP_F_FSVERITY) {}
  private extents(): Iomap[] {
    const f = this.metaFlag;
    return [
      { offset: 0, length: META, addr: 0, type: IOMAP_MAPPED, flags: 0 },
      { offset: META, length: 2 * BS, addr: META_DEV, type: IOMAP_MAPPED, flags: f },
      { offset: META + 2 * BS, length: BS, addr: IOMAP_NULL_ADDR, type: IOMAP_HOLE, flags: f },
      { offset: META + 3 * BS, length: META - 3 * BS, addr: META_DEV + 3 * BS, type: IOMAP_MAPPED, flags: f },
    ];
  }
  lookup(pos: number): Iomap {
    const e = this.extents().find((x) => x.offset <= pos && pos < x.offset + x.length);
    return e ?? { offset: pos, length: BS, addr: IOMAP_NULL_ADDR, type: IOMAP_HOLE, flags: 0 };
  }
  begin(_i: IomapInode, pos: number) {
    return { iomap: this.lookup(pos) };
  }
  end(_i: IomapInode, _p: number, _l: number, _w: number, _f: number, iomap: Iomap) {
    this.ends.push({ ...iomap });
  }
  mapBlocks(_i: IomapInode, pos: number) {
    return this.lookup(pos);
  }
}

async function setup(metaFlag = IOMAP_F_FSVERITY) {
  const wasm = await instantiateWasm();
  const cache = new PageCache(wasm);
  const device = new MemoryDevice({ blockSize: 512, size: 4 << 20 });
  const mapping: AddressSpace = cache.createMapping({ blockSize: BS, maxFolioSize: FOLIO });
  const inode: IomapInode = { ino: 7, size: 10000, blockSize: BS, mapping, device };
  const fs = new FixedFs(metaFlag);
  // Device contents: file data 0x11 and, in the metadata extent, each block
  // filled with its block number + 0x40.
  await device.write(0, new Uint8Array(META).fill(0x11));
  for (let b = 0; b < 16; b++) await device.write(META_DEV + b * BS, new Uint8Array(BS).fill(0x40 + b));
  return { wasm, cache, device, mapping, inode, fs };
}

function blockOf(bytes: Uint8Array, b: number) {
  return bytes.subarray(b * BS, (b + 1) * BS);
}

describe("the seed's IOMAP_F_FSVERITY rules", () => {
  it('flag bits and mapping types are the kernel values', () => {
    expect(IOMAP_F_FSVERITY).toBe(1 << 10);
    expect(IOMAP_F_SIZE_CHANGED).toBe(1 << 14);
    expect([IOMAP_HOLE, IOMAP_MAPPED]).toEqual([0, 2]);
    expect(fsverityMetadataOffset(10000, FOLIO)).toBe(META);
    expect(fsverityMetadataOffset(0, FOLIO)).toBe(0);
    expect(fsverityMetadataOffset(2 << 20, 2 << 20)).toBe(2 << 20);
    expect(fsverityMetadataOffset((2 << 20) + 1, 2 << 20)).toBe(4 << 20);
    expect(() => fsverityMetadataOffset(1, 3000)).toThrow(/power of two/);
  });

  it('read: a block of an FSVERITY mapping at or past i_size is read, not zeroed, and nothing else in its large folio is zeroed', async () => {
    const { inode, fs, mapping, cache } = await setup();
    // A 64 KiB folio over the metadata, its bytes poisoned to see what is touched.
    const folio = await mapping.getFolio(META / 4096, FOLIO);
    expect(folio.size).toBe(FOLIO);
    folio.fill(0xcc);
    folio.put();
    const seen: Array<{ pos: number; zeroed: boolean; flags: number }> = [];
    const verify = (_i: IomapInode, r: { pos: number; zeroed: boolean; iomapFlags: number }) =>
      void seen.push({ pos: r.pos, zeroed: r.zeroed, flags: r.iomapFlags });
    const got = await iomapBufferedRead(inode, META + 5 * BS, BS, fs, { metadata: true, verify });
    expect(got.every((b) => b === 0x45)).toBe(true);
    let bytes = cache.wasm.bytes(folio.ptr, folio.size);
    for (let b = 0; b < 16; b++) {
      const want = b === 5 ? 0x45 : 0xcc;
      expect(blockOf(bytes, b).every((x) => x === want), `block ${b} after a one-block read`).toBe(true);
    }
    expect(folio.isRangeUptodate(5 * BS, BS)).toBe(true);
    expect(folio.isRangeUptodate(4 * BS, BS)).toBe(false);
    // Reading the whole folio fills every Merkle block from the device; only
    // the hole (block 2) reads as zeros.
    await folio.lock();
    await iomapReadFolio(inode, folio, fs, { metadata: true, verify });
    folio.unlock();
    bytes = cache.wasm.bytes(folio.ptr, folio.size);
    for (let b = 0; b < 16; b++) {
      const want = b === 2 ? 0 : 0x40 + b;
      expect(blockOf(bytes, b).every((x) => x === want), `block ${b}`).toBe(true);
    }
    expect(seen.every((s) => s.flags & IOMAP_F_FSVERITY)).toBe(true);
    expect(seen.filter((s) => s.zeroed).map((s) => s.pos)).toEqual([META + 2 * BS]);
  });

  it('read: the same blocks in an ordinary mapping past i_size are zeroed, not read', async () => {
    const { inode, fs, mapping, cache, device } = await setup(0);
    device.resetStats();
    const folio = await mapping.getFolio(META / 4096, FOLIO);
    await folio.lock();
    await iomapReadFolio(inode, folio, fs);
    folio.unlock();
    folio.put();
    expect(device.stats.reads).toBe(0);
    expect(cache.wasm.bytes(folio.ptr, folio.size).every((x) => x === 0)).toBe(true);
  });

  it('write: FSVERITY writes leave i_size alone and skip the size-extended step', async () => {
    const { inode, fs, mapping, cache } = await setup();
    // Cache the EOF folio and leave stale bytes past EOF in it, as a failed
    // or racing write could: an ordinary extending write would zero them.
    await iomapBufferedRead(inode, 0, 10000, fs);
    const eof = mapping.lookup(Math.floor(10000 / 4096))!;
    const stale = () => cache.wasm.bytes(eof.ptr + 10000 - eof.pos, 100);
    stale().fill(0xee);
    fs.ends = [];
    const ring = iomapTraceRing();
    await iomapFsverityWrite(inode, META + BS, new Uint8Array(3 * BS).fill(0x99), fs);
    ring.stop();
    expect(inode.size).toBe(10000);
    expect(fs.ends.every((m) => (m.flags & IOMAP_F_SIZE_CHANGED) === 0 && m.flags & IOMAP_F_FSVERITY)).toBe(true);
    expect(ring.events().some((e) => e.name === 'iomap_isize_extended')).toBe(false);
    expect(fs.ends.length).toBeGreaterThan(0);
    expect(stale().every((x) => x === 0xee)).toBe(true);
    expect(eof.isDirty()).toBe(false);
    // The bytes are in the cache where the metadata reader will look.
    const back = await iomapBufferedRead(inode, META + BS, 3 * BS, fs, { metadata: true });
    expect(back.every((x) => x === 0x99)).toBe(true);
  });

  it('write: an ordinary write past EOF does extend i_size and zero stale bytes (the contrast)', async () => {
    const { inode, fs, mapping, cache } = await setup(0);
    await iomapBufferedRead(inode, 0, 10000, fs);
    const eof = mapping.lookup(Math.floor(10000 / 4096))!;
    const stale = () => cache.wasm.bytes(eof.ptr + 10000 - eof.pos, 100);
    stale().fill(0xee);
    await iomapBufferedWrite(inode, META + BS, new Uint8Array(BS).fill(0x99), fs);
    expect(inode.size).toBe(META + 2 * BS);
    expect(fs.ends.some((m) => m.flags & IOMAP_F_SIZE_CHANGED)).toBe(true);
    expect(stale().every((x) => x === 0)).toBe(true);
  });

  it('writeback: an FSVERITY folio wholly past EOF is written', async () => {
    const { inode, fs, device } = await setup();
    await iomapFsverityWrite(inode, META, new Uint8Array(2 * BS).fill(0x77), fs);
    device.resetStats();
    const res = await iomapWritepages(inode, fs);
    expect(res.error).toBeUndefined();
    expect(res.bytes).toBe(2 * BS);
    const out = new Uint8Array(2 * BS);
    await device.read(META_DEV, out);
    expect(out.every((x) => x === 0x77)).toBe(true);
    expect(inode.mapping.dirtyCount).toBe(0);
  });

  it('writeback: an ordinary folio wholly past EOF is skipped', async () => {
    const { inode, fs, device } = await setup(0);
    await iomapBufferedWrite(inode, META, new Uint8Array(2 * BS).fill(0x77), fs);
    inode.size = 10000; // truncated under the dirty folio, as in the kernel's race
    device.resetStats();
    const res = await iomapWritepages(inode, fs);
    expect(res.bytes).toBe(0);
    expect(device.stats.writes).toBe(0);
    const out = new Uint8Array(BS);
    await device.read(META_DEV, out);
    expect(out.every((x) => x === 0x40)).toBe(true);
    expect(inode.mapping.dirtyCount).toBe(0);
  });

  it('writeback: an FSVERITY folio that starts below i_size is refused loudly (EIO, warning trace, data kept dirty)', async () => {
    const { inode, fs, device } = await setup();
    await iomapFsverityWrite(inode, META, new Uint8Array(BS).fill(0x77), fs);
    inode.size = META + 100; // the metadata area now overlaps the file: a sizing-policy violation
    const ring = iomapTraceRing();
    device.resetStats();
    const res = await iomapWritepages(inode, fs);
    ring.stop();
    expect(isErrno(res.error, 'EIO')).toBe(true);
    expect(res.error!.message).toMatch(/fs-verity folio at file offset 65536 .* starts below i_size 65636/);
    expect(ring.events().some((e) => e.name === 'iomap_writeback_warn')).toBe(true);
    expect(device.stats.writes).toBe(0);
    expect(inode.mapping.dirtyCount).toBe(1);
    await expect(iomapFsync(inode, fs)).rejects.toThrow(/starts below i_size/);
  });

  it('writeback: an ordinary folio straddling EOF reaches the device with its tail zeroed', async () => {
    const { inode, fs, device } = await setup(0);
    inode.size = 0;
    await iomapBufferedWrite(inode, 0, new Uint8Array(4 * BS).fill(0xaa), fs);
    inode.size = 10000; // shrunk under the dirty folio: bytes 10000.. are stale
    device.resetStats();
    const res = await iomapWritepages(inode, fs);
    expect(res.error).toBeUndefined();
    // Blocks 0..2 are written (block 2 holds EOF), block 3 is wholly past EOF and is not.
    expect(device.stats.bytesWritten).toBe(3 * BS);
    const out = new Uint8Array(4 * BS);
    await device.read(0, out);
    expect(out.subarray(0, 10000).every((x) => x === 0xaa)).toBe(true);
    expect(out.subarray(10000, 3 * BS).every((x) => x === 0)).toBe(true);
    expect(out.subarray(3 * BS).every((x) => x === 0x11)).toBe(true);
  });

  it('trace: FSVERITY shows in the rendered flags of mapping events', async () => {
    const { inode, fs } = await setup();
    const ring = iomapTraceRing();
    await iomapFsverityWrite(inode, META, new Uint8Array(BS).fill(1), fs);
    await iomapWritepages(inode, fs);
    ring.stop();
    const lines = ring.events().map(formatTraceEvent);
    expect(lines.some((l) => /^iomap_iter_dstmap: .* type MAPPED flags FSVERITY$/.test(l))).toBe(true);
    expect(lines.some((l) => l.startsWith('iomap_writeback_map') && l.includes('FSVERITY'))).toBe(true);
    expect(formatIomapFlags(IOMAP_F_NEW | IOMAP_F_FSVERITY | IOMAP_F_SIZE_CHANGED)).toBe('NEW|FSVERITY|SIZE_CHANGED');
    expect(formatIomapFlags(1 << 11)).toBe('0x800');
  });
});
