// One engine case of bench/run.mjs per process, so each has its own peak
// RSS and a cold page cache:
//
//   node bench/engine.mjs CASE '{"json":"args"}'
//
// prints one JSON line: { seconds (the timed part only), maxRssKiB, ... }.
// Cases check their own results (read back and compare with the source)
// outside the timed part; a mismatch exits non-zero.
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { FileDevice, MemoryDevice, Volume } from '../dist/src/index.js';

const MiB = 1 << 20;
const CHUNK = MiB;
const POOL = 64 * MiB;
/** Page-cache budget of the sealing and verified-read cases (B5, B6): the memory a server would give one volume. */
const SEAL_CACHE_BYTES = 64 * MiB;
/** B6 warm: the random reads fall in this much of the file, cached beforehand (it fits the budget with its tree). */
const WARM_WINDOW = 32 * MiB;

const [, , name, argJson] = process.argv;
const a = JSON.parse(argJson ?? '{}');

function now() {
  return performance.now() / 1000;
}

/** The bytes the write cases write: a 64 MiB random pool, repeated. */
function sourcePool() {
  return new Uint8Array(randomBytes(POOL));
}

function chunkAt(pool, pos, len) {
  const off = pos % POOL;
  return pool.subarray(off, off + len);
}

async function checkVolumeFile(file, pool, size) {
  for (let pos = 0; pos < size; pos += CHUNK) {
    const len = Math.min(CHUNK, size - pos);
    const got = await file.read(pos, len);
    if (!Buffer.from(got).equals(chunkAt(pool, pos, len))) throw new Error(`read back differs at ${pos}`);
  }
}

function readFileRange(fd, pos, len) {
  const buf = Buffer.alloc(len);
  let got = 0;
  while (got < len) {
    const n = readSync(fd, buf, got, len - got, pos + got);
    if (n === 0) break;
    got += n;
  }
  return buf.subarray(0, got);
}

const cases = {
  /** B4: buffered write of `size` bytes through a Volume, then fsync (writeback). */
  async 'write-volume'() {
    const { size, device: kind, image } = a;
    const devSize = size + 256 * MiB;
    let device;
    if (kind === 'memory') device = new MemoryDevice({ size: devSize });
    else {
      rmSync(image, { force: true });
      device = await FileDevice.open(image, { size: devSize, create: true });
    }
    const volume = await Volume.format(device);
    const file = await volume.create('data');
    const pool = sourcePool();
    const t0 = now();
    for (let pos = 0; pos < size; pos += CHUNK) await file.write(pos, chunkAt(pool, pos, Math.min(CHUNK, size - pos)));
    await file.fsync();
    const seconds = now() - t0;
    await checkVolumeFile(file, pool, size);
    await volume.close();
    await device.close();
    if (image) rmSync(image, { force: true });
    return { seconds };
  },

  /** B4 peer: Buffer.copy of the same bytes into memory allocated and touched beforehand. */
  async memcpy() {
    const { size } = a;
    const pool = Buffer.from(sourcePool().buffer);
    const dst = Buffer.alloc(size);
    // Fault every page in first: the peer is the copy itself, not the kernel's page allocator.
    dst.fill(1);
    const t0 = now();
    for (let pos = 0; pos < size; pos += CHUNK) chunkAt(pool, pos, Math.min(CHUNK, size - pos)).copy(dst, pos);
    const seconds = now() - t0;
    for (let pos = 0; pos < size; pos += CHUNK) {
      if (!dst.subarray(pos, pos + CHUNK).equals(chunkAt(pool, pos, Math.min(CHUNK, size - pos)))) throw new Error(`memcpy differs at ${pos}`);
    }
    return { seconds };
  },

  /** B4 peer: fs.writeFileSync of the same bytes (held in one buffer), then fsync. */
  async writefile() {
    const { size, path } = a;
    const pool = sourcePool();
    const all = Buffer.allocUnsafe(size);
    for (let pos = 0; pos < size; pos += CHUNK) all.set(chunkAt(pool, pos, Math.min(CHUNK, size - pos)), pos);
    rmSync(path, { force: true });
    const t0 = now();
    writeFileSync(path, all);
    const fd = openSync(path, 'r+');
    fsyncSync(fd);
    closeSync(fd);
    const seconds = now() - t0;
    const fd2 = openSync(path, 'r');
    try {
      for (let pos = 0; pos < size; pos += 16 * CHUNK) {
        if (!readFileRange(fd2, pos, CHUNK).equals(all.subarray(pos, pos + CHUNK))) throw new Error(`writeFileSync read back differs at ${pos}`);
      }
    } finally {
      closeSync(fd2);
    }
    rmSync(path, { force: true });
    return { seconds };
  },

  /**
   * Setup for B5/B6 (not timed): an image on a FileDevice holding file
   * "data" with the contents of `source` (dense), or `size` bytes with the
   * runs of `layout` copied from `source` (sparse).
   */
  async 'build-image'() {
    const { image, source, size, layout } = a;
    rmSync(image, { force: true });
    const dataBytes = layout ? layout.reduce((s, r) => s + r.len, 0) : size;
    const device = await FileDevice.open(image, { size: Math.ceil((dataBytes * 1.25 + 256 * MiB) / MiB) * MiB, create: true });
    const volume = await Volume.format(device);
    const file = await volume.create('data');
    const fd = openSync(source, 'r');
    try {
      const runs = layout ?? [{ pos: 0, len: size }];
      if (layout) await file.truncate(size);
      for (const r of runs) {
        for (let off = 0; off < r.len; off += 4 * MiB) {
          const len = Math.min(4 * MiB, r.len - off);
          await file.write(r.pos + off, readFileRange(fd, r.pos + off, len));
        }
      }
    } finally {
      closeSync(fd);
    }
    await file.fsync();
    await volume.close();
    await device.close();
    return { seconds: 0 };
  },

  /** B5: enableVerity on the image's file; returns the measured digest. */
  async enable() {
    const { image } = a;
    const device = await FileDevice.open(image);
    const volume = await Volume.open(device, { cacheBytes: SEAL_CACHE_BYTES });
    const file = await volume.open('data');
    const t0 = now();
    await file.enableVerity();
    const seconds = now() - t0;
    const m = await file.measureVerity();
    await volume.close();
    await device.close();
    return { seconds, digest: m.formatted ?? `sha256:${Buffer.from(m.digest ?? m).toString('hex')}` };
  },

  /** B6 check (not timed): every byte of the sealed file equals the source. */
  async 'read-check'() {
    const { image, source, size } = a;
    const device = await FileDevice.open(image);
    const volume = await Volume.open(device, { cacheBytes: SEAL_CACHE_BYTES });
    const file = await volume.open('data');
    if (!file.isVerity) throw new Error('the file is not sealed');
    const fd = openSync(source, 'r');
    try {
      for (let pos = 0; pos < size; pos += 4 * MiB) {
        const len = Math.min(4 * MiB, size - pos);
        if (!Buffer.from(await file.read(pos, len)).equals(readFileRange(fd, pos, len))) throw new Error(`verified read differs at ${pos}`);
      }
    } finally {
      closeSync(fd);
    }
    await volume.close();
    await device.close();
    return { seconds: 0 };
  },

  /** B6 cold: read the whole sealed file sequentially in 1 MiB reads, in a fresh process. */
  async 'read-seq'() {
    const { image, size } = a;
    const device = await FileDevice.open(image);
    const volume = await Volume.open(device, { cacheBytes: SEAL_CACHE_BYTES });
    const file = await volume.open('data');
    const t0 = now();
    let total = 0;
    const buf = new Uint8Array(CHUNK);
    for (let pos = 0; pos < size; pos += CHUNK) total += await file.readInto(pos, buf);
    const seconds = now() - t0;
    if (total !== size) throw new Error(`read ${total} of ${size} bytes`);
    await volume.close();
    await device.close();
    return { seconds };
  },

  /** B6 warm: random aligned 4 KiB reads over a cached window of the sealed file. */
  async 'read-random'() {
    const { image, source, size, reads } = a;
    const window = Math.min(size, WARM_WINDOW);
    const device = await FileDevice.open(image);
    const volume = await Volume.open(device, { cacheBytes: SEAL_CACHE_BYTES });
    const file = await volume.open('data');
    for (let pos = 0; pos < window; pos += CHUNK) await file.read(pos, CHUNK);
    const blocks = window / 4096;
    const offsets = new Float64Array(reads);
    let x = 0x9e3779b9;
    for (let i = 0; i < reads; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      offsets[i] = ((x >>> 0) % blocks) * 4096;
    }
    const fd = openSync(source, 'r');
    try {
      for (let i = 0; i < 64; i++) {
        const got = await file.read(offsets[i], 4096);
        if (!Buffer.from(got).equals(readFileRange(fd, offsets[i], 4096))) throw new Error(`random read differs at ${offsets[i]}`);
      }
    } finally {
      closeSync(fd);
    }
    const t0 = now();
    const small = new Uint8Array(4096);
    for (let i = 0; i < reads; i++) await file.readInto(offsets[i], small);
    const seconds = now() - t0;
    await volume.close();
    await device.close();
    return { seconds, readsPerSecond: reads / seconds };
  },
};

const fn = cases[name];
if (!fn) {
  console.error(`unknown case ${name}; one of ${Object.keys(cases).join(', ')}`);
  process.exit(2);
}
const result = await fn();
writeSync(1, JSON.stringify({ ...result, maxRssKiB: process.resourceUsage().maxRSS }) + '\n');
