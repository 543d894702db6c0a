// fs-verity on the engine: sealing, measuring, reading the metadata back,
// verified reads and refusals, checked against fsverity-utils.
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FaultyDevice, FileDevice, MemoryDevice, Volume, fsverityDigest, isErrno } from '../../src/index.js';
import type { BlockDevice } from '../../src/device/index.js';
import { leafHashPool } from '../../src/verity/pool.js';
import { randomBytes as bytesFrom, rng } from '../helpers/bytes.js';
import { fsverityDigestOf } from '../helpers/fsverity.js';
import { sealingFaults } from '../helpers/sealing-faults.js';
import { itWithTool } from '../helpers/tools.js';

const dir = mkdtempSync(join(tmpdir(), 'iomap-verity-engine-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** One stream for the whole file: each test draws its bytes from it in turn. */
const rnd = rng(0x9e3779b9);
const randomBytes = (n: number) => bytesFrom(n, rnd);

function oracle(data: Uint8Array, alg: string, bs: number, salt: Uint8Array) {
  const f = join(dir, 'in');
  writeFileSync(f, data);
  return fsverityDigestOf(f, { hashAlgorithm: alg, blockSize: bs, salt });
}

async function sealed(
  device: BlockDevice,
  data: Uint8Array,
  fsBlock: number,
  folio: number,
  v: { hashAlgorithm: 'sha256' | 'sha512'; blockSize: number; salt: Uint8Array },
  holeAt?: number,
) {
  const vol = await Volume.format(device, { blockSize: fsBlock, maxFolioSize: folio, cacheBytes: Math.max(4 * folio, 1 << 20) });
  const f = await vol.create('f');
  if (holeAt === undefined) {
    await f.write(0, data);
  } else {
    // leave [holeAt, holeAt + 1 MiB) a hole of the extent map
    await f.write(0, data.subarray(0, holeAt));
    await f.write(holeAt + (1 << 20), data.subarray(holeAt + (1 << 20)));
  }
  await f.enableVerity(v);
  return { vol, f };
}

const CASES: Array<[string, number, number, 'sha256' | 'sha512', number, number]> = [
  // name, fs block, max folio, alg, merkle block, salt bytes
  ['4K fs, 2M folios, sha256 4K', 4096, 2 << 20, 'sha256', 4096, 0],
  ['512 fs, 4K folios, sha512 1K, salt 1', 512, 4096, 'sha512', 1024, 1],
  ['64K fs, 64K folios, sha256 64K, salt 32', 65536, 65536, 'sha256', 65536, 32],
  ['4K fs, 4K folios, sha256 16K (Merkle block larger than a folio)', 4096, 4096, 'sha256', 16384, 0],
  ['1K fs, 64K folios, sha512 4K, salt 32', 1024, 65536, 'sha512', 4096, 32],
];

describe('fs-verity on the engine', () => {
  // Every case on a MemoryDevice; the sizes around a Merkle block also on a
  // real file through FileDevice.
  const runs: Array<[string, number, 'memory' | 'file']> = [];
  for (const [name, , , , mb] of CASES) {
    for (const size of [0, 1, mb, 3 * mb + 17, 300_000]) runs.push([name, size, 'memory']);
    for (const size of [mb, 3 * mb + 17]) runs.push([name, size, 'file']);
  }
  for (const [name, fsb, folio, alg, mb, saltLen] of CASES) {
    for (const [, size, kind] of runs.filter((r) => r[0] === name)) {
      itWithTool('fsverity', `${name}: ${size} bytes on a ${kind} device: measure, tree and descriptor equal fsverity-utils`, async () => {
        const data = randomBytes(size);
        const salt = randomBytes(saltLen);
        const dev: BlockDevice =
          kind === 'memory'
            ? new MemoryDevice({ blockSize: 512, size: 64 << 20 })
            : await FileDevice.open(join(dir, `matrix-${fsb}-${mb}-${size}.img`), { blockSize: 512, size: 64 << 20, create: true });
        const { vol, f } = await sealed(dev, data, fsb, folio, { hashAlgorithm: alg, blockSize: mb, salt });
        const want = oracle(data, alg, mb, salt);
        expect(f.isVerity).toBe(true);
        expect((await f.measureVerity()).formatted).toBe(want.digest);
        expect(Buffer.from(await f.readVerityMetadata('merkle_tree', 0, 1 << 30))).toEqual(Buffer.from(want.tree));
        expect(Buffer.from(await f.readVerityMetadata('descriptor', 0, 4096))).toEqual(Buffer.from(want.descriptor));
        // reopen: the seal persisted, reads verify, the digest is the same
        await vol.close();
        const again = await Volume.open(dev);
        const g = await again.open('f');
        expect(g.isVerity).toBe(true);
        expect((await g.measureVerity()).formatted).toBe(want.digest);
        expect(Buffer.from(await g.read(0, size + 10))).toEqual(Buffer.from(data));
        await again.close();
        await dev.close();
      });
    }
  }

  itWithTool('fsverity', 'a sparse file seals with holes hashed unread, and its zero tree blocks are not stored', async () => {
    const size = 64 << 20;
    const data = new Uint8Array(size);
    data.set(randomBytes(1 << 20), 0);
    data.set(randomBytes(1 << 20), size - (1 << 20));
    const inner = new MemoryDevice({ blockSize: 4096, size: 128 << 20 });
    const vol = await Volume.format(inner, { maxFolioSize: 2 << 20, cacheBytes: 16 << 20 });
    const f = await vol.create('sparse');
    await f.write(0, data.subarray(0, 1 << 20));
    await f.write(size - (1 << 20), data.subarray(size - (1 << 20)));
    await f.fsync();
    await vol.close();
    const faulty = new FaultyDevice(inner, { writeCache: false });
    const v2 = await Volume.open(faulty);
    const g = await v2.open('sparse');
    faulty.resetStats();
    await g.enableVerity();
    // 2 MiB of data, the tree (~512 KiB) and some metadata: not 64 MiB
    expect(faulty.stats.bytesRead).toBeLessThan(4 << 20);
    const want = oracle(data, 'sha256', 4096, new Uint8Array(0));
    expect((await g.measureVerity()).formatted).toBe(want.digest);
    expect(Buffer.from(await g.readVerityMetadata('merkle_tree', 0, 1 << 30))).toEqual(Buffer.from(want.tree));
    await v2.dropCaches();
    expect(Buffer.from(await g.read(size / 2, 4096))).toEqual(Buffer.alloc(4096));
    await v2.close();
  });

  it('refuses writes and truncates on a sealed file, a second seal, bad parameters and missing metadata', async () => {
    const dev = new MemoryDevice({ blockSize: 4096, size: 16 << 20 });
    const vol = await Volume.format(dev);
    const f = await vol.create('f');
    await expect(f.measureVerity()).rejects.toMatchObject({ code: 'ENODATA' });
    await expect(f.readVerityMetadata('descriptor', 0, 10)).rejects.toMatchObject({ code: 'ENODATA' });
    await expect(f.enableVerity({ blockSize: 512 })).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(f.enableVerity({ blockSize: 3000 })).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(f.enableVerity({ salt: new Uint8Array(33) })).rejects.toMatchObject({ code: 'EMSGSIZE' });
    await expect(f.enableVerity({ hashAlgorithm: 'md5' as 'sha256' })).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(f.enableVerity({ onProgress: 5 as unknown as () => void })).rejects.toMatchObject({ code: 'EINVAL' });
    await f.write(0, randomBytes(10000));
    await f.enableVerity();
    await expect(f.enableVerity()).rejects.toMatchObject({ code: 'EEXIST' });
    await expect(f.write(0, new Uint8Array(1))).rejects.toMatchObject({ code: 'EPERM' });
    await expect(f.truncate(0)).rejects.toMatchObject({ code: 'EPERM' });
    await expect(f.readVerityMetadata('signature', 0, 10)).rejects.toMatchObject({ code: 'ENODATA' });
    await expect(f.readVerityMetadata('nonsense' as 'descriptor', 0, 1)).rejects.toMatchObject({ code: 'EINVAL' });
    expect((await f.readVerityMetadata('descriptor', 250, 100)).length).toBe(6);
    expect((await f.readVerityMetadata('descriptor', 300, 100)).length).toBe(0);
    await vol.close();
  });

  it('a second enable while one is under way gets EBUSY, from another File too; after it, EEXIST', async () => {
    const dev = new MemoryDevice({ blockSize: 4096, size: 64 << 20 });
    const vol = await Volume.format(dev);
    const f = await vol.create('f');
    await f.write(0, randomBytes(8 << 20));
    const other = await vol.open('f');
    const first = f.enableVerity();
    const second = f.enableVerity();
    const third = other.enableVerity();
    await expect(second).rejects.toMatchObject({ code: 'EBUSY' });
    await expect(third).rejects.toMatchObject({ code: 'EBUSY' });
    await first;
    expect(f.isVerity).toBe(true);
    await expect(f.enableVerity()).rejects.toMatchObject({ code: 'EEXIST' });
    // a failed enable clears the mark too: the next one is not EBUSY
    await expect(f.enableVerity()).rejects.toMatchObject({ code: 'EEXIST' });
    await vol.close();
  });
});

describe('sealing on the worker pool', () => {
  // A FileDevice lets the workers read written extents straight from the
  // image: runs of whole Merkle blocks inside one extent go to the pool,
  // the blocks that straddle extents or EOF and the holes stay on this thread.
  const LAYOUTS: Array<[string, number, number]> = [
    // name, fs block, Merkle block
    ['1K fs blocks, 4K Merkle blocks', 1024, 4096],
    ['64K fs blocks, 4K Merkle blocks', 65536, 4096],
    ['4K fs blocks, 64K Merkle blocks', 4096, 65536],
  ];
  for (const [name, fsb, mb] of LAYOUTS) {
    itWithTool('fsverity', `${name}: extents, holes and a partial tail hash on the workers to fsverity-utils' tree`, async () => {
      process.env.IOMAP_VERITY_THREADS = '2';
      const pool = (await leafHashPool())!;
      expect(pool).toBeDefined();
      // data | hole | data starting off a Merkle boundary | hole | partial tail
      const size = 29 * 1024 * 1024 + 1234;
      const data = new Uint8Array(size);
      const runs: Array<[number, number]> = [
        [0, 9 << 20],
        [(12 << 20) + 3 * fsb + 100, 5 << 20],
        [(24 << 20) + 7, size - (24 << 20) - 7],
      ];
      for (const [at, len] of runs) data.set(randomBytes(len), at);
      const path = join(dir, `pool-${fsb}-${mb}.img`);
      const dev = await FileDevice.open(path, { blockSize: 512, size: 64 << 20, create: true });
      const vol = await Volume.format(dev, { blockSize: fsb, maxFolioSize: Math.max(fsb, 65536), cacheBytes: 8 << 20 });
      const f = await vol.create('p');
      for (const [at, len] of runs) await f.write(at, data.subarray(at, at + len));
      const jobs = pool.jobsDone;
      const reports: number[] = [];
      await f.enableVerity({ blockSize: mb, salt: new Uint8Array([1, 2, 3]), onProgress: (done, total) => reports.push(done, total) });
      // progress: rising, ending at the size
      const dones = reports.filter((_, i) => i % 2 === 0);
      expect(reports.filter((_, i) => i % 2 === 1).every((t) => t === size)).toBe(true);
      expect(dones.every((d, i) => i === 0 || d >= dones[i - 1]!)).toBe(true);
      expect(dones[dones.length - 1]).toBe(size);
      expect(pool.jobsDone - jobs).toBeGreaterThanOrEqual(4);
      const want = oracle(data, 'sha256', mb, new Uint8Array([1, 2, 3]));
      expect((await f.measureVerity()).formatted).toBe(want.digest);
      expect(Buffer.from(await f.readVerityMetadata('merkle_tree', 0, 1 << 30)).equals(Buffer.from(want.tree))).toBe(true);
      await vol.dropCaches();
      expect(Buffer.from(await f.read(0, size)).equals(Buffer.from(data))).toBe(true);
      await vol.close();
      await dev.close();
    });
  }
});

describe('tampering', () => {
  it('flipped bytes in the data, in every tree level and in the descriptor never yield wrong bytes', async () => {
    const path = join(dir, 'tamper.img');
    const fsb = 4096;
    const size = 1536 * 1024 + 5000; // three levels with 1 KiB Merkle blocks (32 SHA-256 digests each)
    const data = randomBytes(size);
    let tree: Uint8Array;
    let desc: Uint8Array;
    {
      const dev = await FileDevice.open(path, { blockSize: 4096, size: 32 << 20, create: true });
      const vol = await Volume.format(dev, { blockSize: fsb, maxFolioSize: 65536, cacheBytes: 1 << 20 });
      const f = await vol.create('t');
      await f.write(0, data);
      await f.enableVerity({ blockSize: 1024 });
      tree = await f.readVerityMetadata('merkle_tree', 0, 1 << 30);
      desc = await f.readVerityMetadata('descriptor', 0, 1 << 30);
      await vol.close();
      await dev.close();
    }
    const image = readFileSync(path);
    // Find the file's data, tree and descriptor in the image by their bytes.
    const dataAt = image.indexOf(Buffer.from(data.subarray(0, 64)));
    const treeAt = image.indexOf(Buffer.from(tree.subarray(0, 64)));
    const descAt = image.indexOf(Buffer.from(desc.subarray(0, 64)));
    expect(Math.min(dataAt, treeAt, descAt)).toBeGreaterThan(0);
    const spots: number[] = [];
    for (let i = 0; i < 40; i++) spots.push(dataAt + Math.floor(rnd() * size));
    // the root block, every level below it, each in several places
    for (let off = 0; off < tree.length; off += 499) spots.push(treeAt + off);
    // every field of the descriptor, and its size field at the end of its block
    for (const off of [0, 1, 2, 3, 8, 15, 16, 40, 80, 90, 120, 200, 255, fsb - 4, fsb - 1]) spots.push(descAt + off);
    let refused = 0;
    // One byte flipped in place and put back after each spot: rewriting the
    // 32 MiB image per spot cost more than the reads being tested.
    const fd = openSync(path, 'r+');
    const patch = (spot: number, byte: number) => writeSync(fd, Uint8Array.of(byte), 0, 1, spot);
    for (const spot of spots) {
      patch(spot, image[spot]! ^ 0x40);
      const dev = await FileDevice.open(path, { blockSize: 4096 });
      let vol: Volume | undefined;
      try {
        vol = await Volume.open(dev);
        const f = await vol.open('t');
        for (let p = 0; p < size; p += 65536) {
          try {
            const got = await f.read(p, 65536);
            expect(Buffer.from(got).equals(Buffer.from(data.subarray(p, p + 65536)))).toBe(true);
          } catch (e) {
            if (!isErrno(e)) throw e;
            expect(['EIO', 'ERANGE', 'EINVAL', 'EFBIG']).toContain(e.code);
            refused++;
          }
        }
      } finally {
        await vol?.close().catch(() => undefined);
        await dev.close().catch(() => undefined);
        patch(spot, image[spot]!);
      }
    }
    closeSync(fd);
    // every metadata flip must be refused somewhere; data flips are refused at their block
    expect(refused).toBeGreaterThanOrEqual(spots.length);
    expect(readFileSync(path).equals(image)).toBe(true);
  });

  // Small files: every byte of every data block, of the Merkle tree and of
  // the descriptor's block (its size field included) is flipped in turn.
  const SMALL: Array<[string, number, 'sha256' | 'sha512', number]> = [
    ['2000 bytes, sha256, no salt', 2000, 'sha256', 0],
    ['1500 bytes, sha512, 5-byte salt', 1500, 'sha512', 5],
  ];
  for (const [name, size, alg, saltLen] of SMALL) {
    it(`${name}: a flip of any byte of the data, the tree or the descriptor never yields wrong bytes`, async () => {
      const fsb = 1024;
      const data = randomBytes(size);
      const salt = randomBytes(saltLen);
      const dev = new MemoryDevice({ blockSize: 512, size: 1 << 20 });
      {
        const vol = await Volume.format(dev, { blockSize: fsb, maxFolioSize: 4096, cacheBytes: 1 << 20 });
        const f = await vol.create('s');
        await f.write(0, data);
        await f.enableVerity({ hashAlgorithm: alg, blockSize: 1024, salt });
        await vol.close();
      }
      const image = new Uint8Array(dev.size);
      await dev.read(0, image);
      const want = (await fsverityDigest(data, { hashAlgorithm: alg, blockSize: 1024, salt, merkleTree: true }));
      const find = (needle: Uint8Array) => Buffer.from(image).indexOf(Buffer.from(needle));
      const dataAt = find(data.subarray(0, 64));
      const treeAt = find(want.merkleTree!.subarray(0, 64));
      const descAt = find(want.descriptor.subarray(0, 64));
      expect(Math.min(dataAt, treeAt, descAt)).toBeGreaterThan(0);
      // whole filesystem blocks: the tail of the last data block past EOF, the
      // tree block's padding, the descriptor, its padding and its size field
      const ranges: Array<[number, number]> = [
        [dataAt, Math.ceil(size / fsb) * fsb],
        [treeAt, 1024],
        [descAt, fsb],
      ];
      const counts = { intact: 0, refusedAtOpen: 0, refusedRead: 0 };
      // Only bytes no hash covers may change without a refusal: the last data
      // block past EOF (read as zeros) and the descriptor block between the
      // 256-byte descriptor and the size field at its end. And the salt size:
      // fs-verity pads the salt with zeros to the hash's block size, so a
      // salt grown by zero bytes hashes every block the same (the file digest
      // changes, the data read does not).
      const mayPass = (spot: number) =>
        (spot >= dataAt + size && spot < treeAt) || (spot >= descAt + 256 && spot < descAt + fsb - 4) || (saltLen > 0 && spot === descAt + 3);
      const passed: number[] = [];
      const block = new Uint8Array(512);
      for (const [start, len] of ranges) {
        for (let spot = start; spot < start + len; spot++) {
          const at = spot - (spot % 512);
          block.set(image.subarray(at, at + 512));
          block[spot - at]! ^= 0x10;
          await dev.write(at, block);
          const vol = await Volume.open(dev, { maxFolioSize: 4096, cacheBytes: 1 << 20 });
          try {
            const f = await vol.open('s');
            let got: Uint8Array | undefined;
            try {
              got = await f.read(0, size + 1);
            } catch (e) {
              if (!isErrno(e)) throw e;
              expect(['EIO', 'ERANGE', 'EINVAL', 'EFBIG']).toContain(e.code);
            }
            if (got === undefined) counts.refusedRead++;
            else {
              // a read that succeeds returns exactly the sealed bytes
              if (!Buffer.from(got).equals(Buffer.from(data))) throw new Error(`flip at image byte ${spot} read back wrong bytes`);
              counts.intact++;
              mayPass(spot) || passed.push(spot);
            }
          } catch (e) {
            if (!isErrno(e)) throw e;
            counts.refusedAtOpen++;
          } finally {
            await vol.close();
          }
          await dev.write(at, image.subarray(at, at + 512));
        }
      }
      expect(passed).toEqual([]);
      expect(counts.refusedRead + counts.refusedAtOpen).toBeGreaterThanOrEqual(size + 1024 + 256 + 4 - (saltLen > 0 ? 1 : 0));
      const back = await Volume.open(dev);
      expect(Buffer.from(await (await back.open('s')).read(0, size))).toEqual(Buffer.from(data));
      await back.close();
    });
  }

  it('a refused block names the block, the level and both hashes, caches nothing, and good blocks still read', async () => {
    const dev = new MemoryDevice({ blockSize: 4096, size: 16 << 20 });
    const vol = await Volume.format(dev, { maxFolioSize: 4096, cacheBytes: 1 << 20 });
    const f = await vol.create('x');
    const data = randomBytes(40960);
    await f.write(0, data);
    await f.enableVerity();
    await vol.dropCaches();
    // corrupt data block 3 on the device
    const whole = new Uint8Array(16 << 20);
    await dev.read(0, whole);
    const at = Buffer.from(whole).indexOf(Buffer.from(data.subarray(3 * 4096, 3 * 4096 + 64)));
    whole[at + 100] ^= 1;
    await dev.write(at, whole.subarray(at, at + 4096));
    const err = await f.read(3 * 4096, 10).catch((e) => e);
    expect(err.code).toBe('EIO');
    expect(err.message).toMatch(/data block 3 .*expected sha256:[0-9a-f]{64}, got [0-9a-f]{64}/);
    await expect(f.read(3 * 4096, 10)).rejects.toMatchObject({ code: 'EIO' });
    await expect(f.readInto(2 * 4096, new Uint8Array(8192))).rejects.toMatchObject({ code: 'EIO' });
    expect(Buffer.from(await f.read(0, 4096))).toEqual(Buffer.from(data.subarray(0, 4096)));
    expect(Buffer.from(await f.read(5 * 4096, 4096))).toEqual(Buffer.from(data.subarray(5 * 4096, 6 * 4096)));
    await vol.close();
  });
});

sealingFaults(4);
