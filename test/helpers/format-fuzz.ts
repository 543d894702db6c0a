/**
 * Fuzzing the one validating door of the on-device format. Every damaged
 * image must load as one of the committed VolumeMetas or fail with an
 * IomapVerityError: never another exception, a hang or a huge allocation.
 * The main fuzz runs in seeded batches (`formatFuzz`), one `it` each, so
 * that a failure names its seed and case; the default run takes a slice
 * (test/fs/format-fuzz.test.ts), the slow script all 10,000 cases
 * (test/fs/format-fuzz.slow.test.ts). IOMAP_VERITY_SOAK=1 runs twenty times
 * as many cases.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { MemoryDevice } from '../../src/device/index.js';
import { isErrno } from '../../src/errors.js';
import { commit, crc32c, decodeBlob, encodeBlob, formatDevice, load, SUPERBLOCK_OFFSETS } from '../../src/fs/format.js';
import type { VolumeMeta } from '../../src/fs/meta.js';
import { randomMeta, rng } from './format.js';

const SOAK = process.env.IOMAP_VERITY_SOAK === '1';
/** The loops below only await microtasks; let vitest's worker RPC breathe now and then. */
const breathe = (i: number) => (i % 2000 === 1999 ? new Promise<void>((res) => setImmediate(res)) : undefined);
const DEV_BS = 512;

interface Image {
  bytes: Uint8Array;
  committed: VolumeMeta[];
  /** Byte ranges holding superblocks and blobs: where flips matter most. */
  hot: Array<[number, number]>;
}

async function buildImage(seed: number, blockSize: number): Promise<Image> {
  const r = rng(seed);
  const d = new MemoryDevice({ blockSize: DEV_BS, size: 320 << 10 });
  const f = await formatDevice(d, { blockSize, metaAreaBytes: 8192 });
  const committed = [f.meta];
  let state = f.state;
  for (let i = 0; i < 3; i++) {
    const m = randomMeta(state.layout, r, 10, 6);
    state = await commit(d, m, state);
    committed.push(m);
  }
  const bytes = new Uint8Array(d.size);
  await d.read(0, bytes);
  const l = state.layout;
  const hot: Array<[number, number]> = [
    [SUPERBLOCK_OFFSETS[0], 128],
    [SUPERBLOCK_OFFSETS[1], 128],
    [l.areaBlocks[0] * blockSize, 8192],
    [l.areaBlocks[1] * blockSize, 8192],
  ];
  return { bytes, committed, hot };
}

/** Stamps a fresh CRC into each superblock, as if the damage had been forged consistently. */
function reseal(img: Uint8Array): void {
  for (const off of SUPERBLOCK_OFFSETS) {
    if (off + 128 > img.length) continue;
    const dv = new DataView(img.buffer, img.byteOffset + off, 128);
    dv.setUint32(124, crc32c(img.subarray(off, off + 124)), true);
  }
}

function mutate(src: Image, r: () => number): { img: Uint8Array; size: number } {
  const img = src.bytes.slice();
  let size = img.length;
  const kind = r();
  if (kind < 0.15) {
    // Truncation, to a whole number of device blocks (what a device can be).
    size = Math.max(1, Math.floor((r() * img.length) / DEV_BS)) * DEV_BS;
  } else {
    const flips = 1 + Math.floor(r() * 4);
    for (let i = 0; i < flips; i++) {
      let at: number;
      if (r() < 0.85) {
        const [start, len] = src.hot[Math.floor(r() * src.hot.length)]!;
        at = start + Math.floor(r() * len);
      } else at = Math.floor(r() * img.length);
      if (r() < 0.5) img[at]! ^= 1 << Math.floor(r() * 8);
      else img[at] = Math.floor(r() * 256);
    }
  }
  return { img, size };
}

async function loadImage(img: Uint8Array, size: number): Promise<VolumeMeta | Error> {
  const d = new MemoryDevice({ blockSize: DEV_BS, size });
  await d.write(0, img.subarray(0, size));
  try {
    return (await load(d)).meta;
  } catch (e) {
    return e as Error;
  }
}

/** What the fuzz runs: `cases` damaged images in batches of `batch`, each from a seed of its own. */
export interface FormatFuzzOptions {
  cases: number;
  batch: number;
  /** Also the forged-damage, blob-decoder and huge-count tests. */
  others?: boolean;
}

/** Registers the fuzz: batch k draws from seed 4200 + k (a time seed under soak). */
export function formatFuzz(o: FormatFuzzOptions): void {
  const cases = SOAK ? o.cases * 20 : o.cases;
  const batches = Math.ceil(cases / o.batch);
  describe(`format fuzz (${cases} cases)`, () => {
    let images: Image[] = [];
    let keys: Array<Set<string>> = [];
    let errors = 0;
    let loaded = 0;
    let ms = 0;
    beforeAll(async () => {
      images = [await buildImage(1, 512), await buildImage(2, 1024), await buildImage(3, 4096)];
      keys = images.map((im) => new Set(im.committed.map((m) => JSON.stringify(m))));
    });
    const time = SOAK ? Date.now() : 0;
    for (let k = 0; k < batches; k++) {
      const seed = SOAK ? time + k : 4200 + k;
      const first = k * o.batch;
      const last = Math.min(cases, first + o.batch);
      it(`seed ${seed}: damaged images ${first}..${last - 1} load as a committed VolumeMeta or fail with IomapVerityError`, async () => {
        const r = rng(seed);
        const started = Date.now();
        for (let i = first; i < last; i++) {
          await breathe(i);
          const which = i % images.length;
          const { img, size } = mutate(images[which]!, r);
          const res = await loadImage(img, size);
          if (res instanceof Error) {
            if (!isErrno(res)) throw new Error(`seed ${seed} case ${i}: not an IomapVerityError: ${res.stack}`);
            expect(['EIO', 'EINVAL']).toContain(res.code);
            errors++;
          } else {
            if (!keys[which]!.has(JSON.stringify(res))) throw new Error(`seed ${seed} case ${i}: loaded metadata that was never committed`);
            loaded++;
          }
        }
        ms += Date.now() - started;
      });
    }
    it(`both outcomes happen across the ${batches} batches`, () => {
      // Both outcomes happen, so the test exercises fallback and refusal alike.
      expect(errors + loaded).toBe(cases);
      expect(errors).toBeGreaterThan(cases / 50);
      expect(loaded).toBeGreaterThan(cases / 5);
      expect(ms).toBeLessThan(SOAK ? 3_600_000 : 60_000);
    });
    if (o.others) others();
  });
}

/** The forged-damage and blob-decoder fuzzes and the huge-count refusals. */
function others(): void {
  it('forged damage (superblock checksums recomputed) still never escapes as another exception', async () => {
    const images = [await buildImage(4, 512), await buildImage(5, 2048)];
    const cases = SOAK ? 100_000 : 3_000;
    const r = rng(SOAK ? Date.now() + 1 : 43);
    for (let i = 0; i < cases; i++) {
      await breathe(i);
      const { img, size } = mutate(images[i % images.length]!, r);
      reseal(img);
      const res = await loadImage(img, size);
      if (res instanceof Error && !isErrno(res)) throw new Error(`case ${i}: not an IomapVerityError: ${res.stack}`);
    }
  });

  it('the blob decoder accepts a damaged blob only if it is a canonical encoding of valid metadata', async () => {
    const r = rng(SOAK ? Date.now() + 2 : 44);
    const layout = { blockSize: 1024, deviceBlocks: 100_000, dataStart: 200 };
    const cases = SOAK ? 400_000 : 20_000;
    let accepted = 0;
    for (let i = 0; i < cases; i++) {
      await breathe(i);
      const meta = randomMeta({ ...layout, superblockBlocks: [0, 64], areaBlocks: [65, 130], areaLength: 65 }, r, 6, 5);
      const blob = encodeBlob(meta, 9);
      const bad = blob.slice(0, r() < 0.1 ? Math.floor(r() * blob.length) : blob.length);
      const flips = r() < 0.1 ? 0 : 1 + Math.floor(r() * 3);
      for (let k = 0; k < flips && bad.length > 0; k++) bad[Math.floor(r() * bad.length)] = Math.floor(r() * 256);
      let out: VolumeMeta | undefined;
      try {
        out = decodeBlob(bad, { ...layout, generation: 9 });
      } catch (e) {
        if (!isErrno(e, 'EIO')) throw new Error(`case ${i}: ${String((e as Error).stack)}`);
        continue;
      }
      accepted++;
      // Whatever the decoder accepts is valid metadata whose encoding is exactly these bytes.
      expect(Buffer.from(encodeBlob(out, 9)).equals(Buffer.from(bad))).toBe(true);
    }
    expect(accepted).toBeGreaterThan(0);
  });

  it('a huge count or length in a blob is refused without allocating or looping', () => {
    const layout = { blockSize: 4096, deviceBlocks: 1000, dataStart: 10, generation: 1 };
    // magic, gen 1, bs 4096, 1000 blocks, data 10, nextIno 5, then an absurd inode count.
    const head = [0x49, 0x56, 0x4d, 0x44, 1, 0x80, 0x20, 0xe8, 0x07, 10, 5];
    const huge = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f]; // 2^53-1
    const t0 = Date.now();
    expect(() => decodeBlob(new Uint8Array([...head, ...huge]), layout)).toThrow(/cannot fit/);
    expect(() => decodeBlob(new Uint8Array([...head, ...[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]]), layout)).toThrow(/longer than 8 bytes|exceeds/);
    // One inode, name length 2^53-1.
    expect(() => decodeBlob(new Uint8Array([...head, 1, 1, ...huge]), layout)).toThrow(/name length/);
    // One inode with an absurd extent count.
    expect(() => decodeBlob(new Uint8Array([...head, 1, 1, 1, 0x61, 0, 0, ...huge]), layout)).toThrow(/extent count/);
    // Overlong (non-canonical) varint.
    expect(() => decodeBlob(new Uint8Array([...head.slice(0, 4), 0x81, 0x00]), layout)).toThrow(/minimally/);
    expect(Date.now() - t0).toBeLessThan(1000);
  });
}
