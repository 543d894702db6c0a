/**
 * Whole-volume fuzz of damaged images. format-fuzz.test.ts fuzzes
 * the format loader alone; this file opens damaged images with
 * `Volume.open` and reads every file back through the page cache and the
 * iomap engine, fs-verity sealed files included.
 *
 * Each base image is built through the public API with several commits, so
 * that both superblock slots hold a commit: the newest (G) and the one
 * before it (G-1). What each of those two commits holds (names, exact
 * contents, sealed-ness) is recorded as it is committed.
 *
 * The rule that makes G-1 exact: between commit G-1 and commit G the build
 * only writes blocks nobody in G-1 owns (a new file, a removal whose blocks
 * stay pending until the commit after G, an enableVerity whose Merkle tree
 * and descriptor go to newly allocated blocks past EOF). Overwrites in place
 * happen only before G-1. So after a fallback to G-1 every file still reads
 * exactly as it was committed, not merely "some data written later"
 * (docs/FORMAT.md allows the latter in general); the build checks this on the
 * undamaged image with slot G wiped.
 *
 * Damage: byte changes (1..8) aimed at superblocks, metadata blobs, verity
 * metadata (tree, descriptor, size field) or sealed data, or anywhere; a
 * whole block zeroed; truncation; one slot copied over the other; both slots
 * wiped; a larger device (control) and a device with 4 KiB blocks.
 *
 * Plain (unsealed) file data has no checksum: when the damage touches the
 * device blocks of an unsealed file of the commit that loaded, that file's
 * bytes are not compared (its name, size and sealed-ness still are).
 *
 * The cases run in seeded batches (`volumeFuzz`), one `it` each, so that a
 * failure names its seed and case and a batch can be rerun alone; the
 * default run takes a slice (test/fs/volume-fuzz.test.ts), the slow script
 * all of them (test/fs/volume-fuzz.slow.test.ts). IOMAP_VERITY_SOAK=1 runs
 * twenty times as many cases with time seeds.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { MemoryDevice, Volume, isErrno, fsverityDigest } from '../../src/index.js';
import type { File } from '../../src/index.js';
import { encodeBlob, load, SUPERBLOCK_OFFSETS } from '../../src/fs/format.js';
import type { VolumeMeta } from '../../src/fs/meta.js';
import { loadWasm } from '../../src/wasm/index.js';
import { randomBytes, rng } from './bytes.js';
import { sameBytes as same } from './compare.js';
import { digestArgs, fsverity, HAVE_FSVERITY, IN_CI } from './fsverity.js';

const SOAK = process.env.IOMAP_VERITY_SOAK === '1';
const DEV_BS = 512;
/** Verity metadata starts at this file offset multiple past EOF on the device side (src/fs/inode.ts). */
const META_ALIGN = 65536;
/** A case that takes longer than this is a hang. */
const CASE_TIMEOUT_MS = 10_000;

type Alg = 'sha256' | 'sha512';
interface Seal {
  hashAlgorithm: Alg;
  blockSize: number;
  salt: Uint8Array;
}
interface FileModel {
  content: Uint8Array;
  seal?: Seal & { digest: Uint8Array; tree: Uint8Array; descriptor: Uint8Array };
}
type Range = [start: number, end: number];

/** One file of one committed state, with where its bytes live on the device. */
interface CommittedFile extends FileModel {
  name: string;
  /** Device byte ranges of the data (below EOF). */
  data: Range[];
  /** Device byte ranges of the verity metadata past EOF (tree, descriptor, size field). */
  meta: Range[];
  /** Device byte ranges of the descriptor and the size field after it. */
  desc: Range[];
}
interface Committed {
  generation: number;
  files: Map<string, CommittedFile>;
  /** names, sizes, sealed-ness: what a listing shows. */
  signature: string;
}

interface Image {
  label: string;
  fsBlockSize: number;
  bytes: Uint8Array;
  chunks: Array<[number, Uint8Array]>;
  /** [previous (G-1), newest (G)]. */
  states: [Committed, Committed];
  /** Slot of the newest commit. */
  newestSlot: number;
  regions: Record<'sb' | 'blob' | 'vmeta' | 'vdesc' | 'sdata' | 'any', Range[]>;
  /** Every byte either commit reads: superblocks, blobs, and all extents of both commits. */
  live: Range[];
}

// ---------------------------------------------------------------------------
// Building base images.

function cloneModel(m: Map<string, FileModel>): Map<string, FileModel> {
  return new Map([...m].map(([k, v]) => [k, { content: v.content.slice(), seal: v.seal }]));
}

/**
 * The true digest and tree of `content`, from fsverityDigest (which the
 * golden fixtures pin to fsverity-utils' output), checked once against
 * fsverity-utils itself when it is installed, and always under CI.
 */
async function withSeal(content: Uint8Array, s: Seal): Promise<FileModel['seal']> {
  const d = await fsverityDigest(content, { ...s, merkleTree: true });
  if (HAVE_FSVERITY || IN_CI) {
    const dir = mkdtempSync(join(tmpdir(), 'volume-fuzz-'));
    try {
      writeFileSync(join(dir, 'f'), content);
      expect(fsverity(digestArgs(join(dir, 'f'), s)).stdout.split(' ')[0]).toBe(d.formatted);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return { ...s, digest: d.digest, tree: d.merkleTree!, descriptor: d.descriptor };
}

/** Device byte ranges holding file bytes [from, to) according to `extents`. */
function mapRange(extents: VolumeMeta['inodes'][number]['extents'], bs: number, from: number, to: number): Range[] {
  const out: Range[] = [];
  for (const e of extents) {
    const a = Math.max(from, e.fileBlock * bs);
    const z = Math.min(to, (e.fileBlock + e.blocks) * bs);
    if (a < z) out.push([e.devBlock * bs + (a - e.fileBlock * bs), e.devBlock * bs + (z - e.fileBlock * bs)]);
  }
  return out;
}

function committedState(meta: VolumeMeta, generation: number, model: Map<string, FileModel>): Committed {
  const bs = meta.blockSize;
  const files = new Map<string, CommittedFile>();
  for (const ino of meta.inodes) {
    const m = model.get(ino.name);
    if (!m) throw new Error(`build: commit ${generation} holds ${ino.name}, the model does not`);
    expect(ino.size).toBe(m.content.length);
    expect((ino.flags & 1) === 1).toBe(m.seal !== undefined);
    const metaStart = Math.ceil(ino.size / META_ALIGN) * META_ALIGN;
    const last = ino.extents[ino.extents.length - 1];
    const areaEnd = last ? (last.fileBlock + last.blocks) * bs : 0;
    let desc: Range[] = [];
    if (m.seal) {
      // src/verity/layout.ts locateDescriptor: the descriptor sits at the last
      // 64 KiB boundary of the area that leaves room for it before the size field.
      const descOff = metaStart + Math.floor((areaEnd - metaStart - 4 - 256) / 65536) * 65536;
      desc = [...mapRange(ino.extents, bs, descOff, descOff + 256), ...mapRange(ino.extents, bs, areaEnd - 4, areaEnd)];
    }
    files.set(ino.name, {
      name: ino.name,
      ...m,
      data: mapRange(ino.extents, bs, 0, ino.size),
      meta: mapRange(ino.extents, bs, metaStart, Infinity),
      desc,
    });
  }
  expect([...files.keys()].sort()).toEqual([...model.keys()].sort());
  return { generation, files, signature: signatureOf(files) };
}

function signatureOf(files: Map<string, { content: Uint8Array; seal?: unknown }> | Array<[string, number, boolean]>): string {
  const rows = Array.isArray(files) ? files : [...files].map(([n, f]): [string, number, boolean] => [n, f.content.length, f.seal !== undefined]);
  return JSON.stringify([...rows].sort((a, b) => (a[0] < b[0] ? -1 : 1)));
}

async function deviceWith(bytes: Uint8Array, size = bytes.length, blockSize = DEV_BS): Promise<MemoryDevice> {
  const d = new MemoryDevice({ blockSize, size });
  await d.write(0, size <= bytes.length ? bytes.subarray(0, size) : bytes);
  return d;
}

/** 64 KiB pieces of `bytes` that are not all zero: a MemoryDevice stores nothing for the rest. */
function nonZeroChunks(bytes: Uint8Array): Array<[number, Uint8Array]> {
  const out: Array<[number, Uint8Array]> = [];
  for (let at = 0; at < bytes.length; at += 65536) {
    const c = bytes.subarray(at, Math.min(bytes.length, at + 65536));
    if (c.some((b) => b !== 0)) out.push([at, c]);
  }
  return out;
}

/** `bytes` opens as exactly `state`: names, sizes, sealed-ness, contents and digests. */
async function expectExact(bytes: Uint8Array, state: Committed): Promise<void> {
  const vol = await Volume.open(await deviceWith(bytes), { maxFolioSize: 65536, cacheBytes: 1 << 20 });
  try {
    expect(await vol.list()).toEqual([...state.files.keys()].sort());
    for (const [name, want] of state.files) {
      const f = await vol.open(name);
      expect(f.isVerity, name).toBe(want.seal !== undefined);
      expect(same(await f.read(0, want.content.length + 1), want.content), name).toBe(true);
      if (want.seal) expect(same((await f.measureVerity()).digest, want.seal.digest), name).toBe(true);
    }
  } finally {
    await vol.close();
  }
}

interface ImageSpec {
  label: string;
  seed: number;
  fsBlockSize: number;
  deviceSize: number;
  /** Seal parameters of the two sealed files. */
  v256: Seal;
  v512: Seal;
  /** What the last commit (G) does after G-1. */
  last: 'seal' | 'remove-plain' | 'remove-sealed';
}

async function buildImage(spec: ImageSpec): Promise<Image> {
  const r = rng(spec.seed);
  const dev = new MemoryDevice({ blockSize: DEV_BS, size: spec.deviceSize });
  const vol = await Volume.format(dev, { blockSize: spec.fsBlockSize, metaAreaBytes: 8192, maxFolioSize: 65536, cacheBytes: 4 << 20 });
  const model = new Map<string, FileModel>();
  const files = new Map<string, File>();
  const put = async (name: string, pos: number, data: Uint8Array) => {
    let f = files.get(name);
    if (!f) {
      f = await vol.create(name);
      files.set(name, f);
      model.set(name, { content: new Uint8Array(0) });
    }
    await f.write(pos, data);
    const m = model.get(name)!;
    if (pos + data.length > m.content.length) {
      const grown = new Uint8Array(pos + data.length);
      grown.set(m.content);
      m.content = grown;
    }
    m.content.set(data, pos);
  };
  const remove = async (name: string) => {
    await vol.remove(name);
    files.delete(name);
    model.delete(name);
  };
  const seal = async (name: string, s: Seal) => {
    await files.get(name)!.enableVerity(s);
    model.get(name)!.seal = await withSeal(model.get(name)!.content, s);
  };

  // Commit 2: files of every shape.
  await vol.create('empty').then((f) => files.set('empty', f));
  model.set('empty', { content: new Uint8Array(0) });
  await put('small', 0, randomBytes(100, r));
  await put('multi', 0, randomBytes(7000 + spec.fsBlockSize, r));
  await put('sparse', 0, randomBytes(3000, r));
  await put('sparse', 200_000, randomBytes(4000, r));
  await put('overwritten', 0, randomBytes(30_000, r));
  await put('temp', 0, randomBytes(2000, r));
  await vol.sync();
  // Commit 3: overwrite in place, shrink, remove, and a sparse file to seal.
  await put('overwritten', 9000, randomBytes(5000, r));
  await files.get('multi')!.truncate(6000);
  model.get('multi')!.content = model.get('multi')!.content.slice(0, 6000);
  await remove('temp');
  await put('v256', 0, randomBytes(20_000, r));
  await put('v256', 150_000, randomBytes(20_000 + 123, r));
  await vol.sync();
  // Commit 4: seal it.
  await seal('v256', spec.v256);
  // Commit 5: a file to seal with SHA-512.
  await put('v512', 0, randomBytes(45_000 + 7, r));
  await vol.sync();
  // The last two commits write only blocks that the one before does not own.
  let prev: Map<string, FileModel>;
  if (spec.last === 'seal') {
    prev = cloneModel(model);
    await seal('v512', spec.v512); // commit 6 = G
  } else {
    await seal('v512', spec.v512); // commit 6 = G-1
    prev = cloneModel(model);
    await remove(spec.last === 'remove-plain' ? 'small' : 'v256');
    await put('late', 0, randomBytes(1500, r));
    await vol.sync(); // commit 7 = G
  }
  await vol.close();

  const bytes = new Uint8Array(dev.size);
  await dev.read(0, bytes);
  // Read both commits back through the format, for where their extents are.
  const top = await load(await deviceWith(bytes));
  const wiped = bytes.slice();
  wiped.fill(0, SUPERBLOCK_OFFSETS[top.slot], SUPERBLOCK_OFFSETS[top.slot] + 128);
  const below = await load(await deviceWith(wiped));
  const G = top.state.generation;
  expect(below.state.generation).toBe(G - 1);
  expect(G).toBe(spec.last === 'seal' ? 6 : 7);
  const states: [Committed, Committed] = [committedState(below.meta, G - 1, prev), committedState(top.meta, G, model)];
  expect(states[0].signature).not.toBe(states[1].signature);
  // Both commits read back exactly as recorded, G-1 with slot G wiped.
  await expectExact(bytes, states[1]);
  await expectExact(wiped, states[0]);

  const bs = spec.fsBlockSize;
  const blob = (m: VolumeMeta, gen: number, area: number): Range => {
    const at = top.state.layout.areaBlocks[area]! * bs;
    return [at, at + encodeBlob(m, gen).length];
  };
  const all = (pick: (f: CommittedFile) => Range[]) => states.flatMap((s) => [...s.files.values()].flatMap(pick));
  const regions: Image['regions'] = {
    sb: SUPERBLOCK_OFFSETS.map((o): Range => [o, o + 128]),
    blob: [blob(top.meta, G, G % 2), blob(below.meta, G - 1, (G - 1) % 2)],
    vmeta: all((f) => f.meta),
    vdesc: all((f) => f.desc),
    sdata: all((f) => (f.seal ? f.data : [])),
    any: [[0, bytes.length]],
  };
  for (const [k, v] of Object.entries(regions)) expect(v.length, `region ${k}`).toBeGreaterThan(0);
  const live = [...regions.sb, ...regions.blob, ...all((f) => [...f.data, ...f.meta])];
  return { label: spec.label, fsBlockSize: bs, bytes, chunks: nonZeroChunks(bytes), states, newestSlot: top.slot, regions, live };
}

// ---------------------------------------------------------------------------
// Damage.

type Kind = 'flips' | 'zero-block' | 'truncate' | 'copy-slot' | 'wipe-slots' | 'grow' | 'dev-4k';
interface Damaged {
  kind: Kind;
  /** Bytes written over the image at these offsets. */
  patches: Array<[at: number, bytes: Uint8Array]>;
  /** Device size in bytes. */
  size: number;
  devBlockSize: number;
  /** Device byte ranges whose contents changed (or may have). */
  touched: Range[];
  /** For copy-slot: the generation that must load. */
  expectGeneration?: number;
}

function pickIn(r: () => number, ranges: Range[]): number {
  const total = ranges.reduce((s, [a, z]) => s + (z - a), 0);
  let k = Math.floor(r() * total);
  for (const [a, z] of ranges) {
    if (k < z - a) return a + k;
    k -= z - a;
  }
  return ranges[0]![0];
}

const FLIP_FOCUS: Array<keyof Image['regions']> = ['sb', 'sb', 'blob', 'blob', 'vmeta', 'vdesc', 'sdata', 'sdata', 'any'];

function damage(img: Image, r: () => number): Damaged {
  const x = r();
  const size = img.bytes.length;
  const out = (kind: Kind, extra: Partial<Damaged> = {}): Damaged => ({ kind, patches: [], size, devBlockSize: DEV_BS, touched: [], ...extra });
  if (x < 0.6) {
    // 1..8 byte changes, all in one region, or (1 case in 8) each in a region of its own.
    const n = 1 + Math.floor(r() * 8);
    const mixed = r() < 0.125;
    let focus = FLIP_FOCUS[Math.floor(r() * FLIP_FOCUS.length)]!;
    const changed = new Map<number, number>();
    for (let i = 0; i < n; i++) {
      if (mixed) focus = FLIP_FOCUS[Math.floor(r() * FLIP_FOCUS.length)]!;
      const at = pickIn(r, img.regions[focus]);
      changed.set(at, (changed.get(at) ?? img.bytes[at]!) ^ (1 + Math.floor(r() * 255)));
    }
    return out('flips', {
      patches: [...changed].map(([at, v]): [number, Uint8Array] => [at, Uint8Array.of(v)]),
      touched: [...changed.keys()].map((at): Range => [at, at + 1]),
    });
  }
  const bs = img.fsBlockSize;
  if (x < 0.72) {
    // A whole filesystem block reads back as zeros.
    const focus = FLIP_FOCUS[Math.floor(r() * FLIP_FOCUS.length)]!;
    const at = Math.floor(pickIn(r, img.regions[focus]) / bs) * bs;
    return out('zero-block', { patches: [[at, new Uint8Array(bs)]], touched: [[at, at + bs]] });
  }
  if (x < 0.82) {
    // A device shorter than the volume, a whole number of device blocks.
    return out('truncate', { size: Math.min(size - DEV_BS, Math.max(1, Math.floor((r() * size) / DEV_BS)) * DEV_BS) });
  }
  if (x < 0.9) {
    // One slot's block copied over the other's: the copy names the wrong slot.
    const from = r() < 0.5 ? 0 : 1;
    const src = SUPERBLOCK_OFFSETS[from];
    const dst = SUPERBLOCK_OFFSETS[1 - from];
    const gen = from === img.newestSlot ? img.states[1].generation : img.states[0].generation;
    return out('copy-slot', { patches: [[dst, img.bytes.slice(src, src + bs)]], touched: [[dst, dst + bs]], expectGeneration: gen });
  }
  if (x < 0.93) {
    return out('wipe-slots', {
      patches: SUPERBLOCK_OFFSETS.map((o): [number, Uint8Array] => [o, new Uint8Array(bs)]),
      touched: SUPERBLOCK_OFFSETS.map((o): Range => [o, o + bs]),
    });
  }
  // Control: the same image on a larger device (the volume keeps its size).
  if (x < 0.97) return out('grow', { size: size + (1 + Math.floor(r() * 64)) * 4096 });
  // The image on a device with 4 KiB blocks: only a 4 KiB-block volume fits.
  return out('dev-4k', { devBlockSize: 4096 });
}

/** A fresh device holding the image with the damage applied. */
async function damagedDevice(img: Image, d: Damaged): Promise<MemoryDevice> {
  const dev = new MemoryDevice({ blockSize: d.devBlockSize, size: d.size });
  for (const [at, c] of img.chunks) if (at < d.size) await dev.write(at, c.subarray(0, Math.min(c.length, d.size - at)));
  const dbs = d.devBlockSize;
  for (const [at, p] of d.patches) {
    const from = Math.floor(at / dbs) * dbs;
    const buf = new Uint8Array(Math.ceil((at + p.length) / dbs) * dbs - from);
    await dev.read(from, buf);
    buf.set(p, at - from);
    await dev.write(from, buf);
  }
  return dev;
}

// ---------------------------------------------------------------------------
// One case.

interface Counts {
  cases: number;
  /** Per damage kind: cases, opened newest / previous, refused by code. */
  byKind: Record<string, Record<string, number>>;
  openedNewest: number;
  openedPrevious: number;
  refused: Record<string, number>;
  sealedReadOk: number;
  sealedReadFail: Record<string, number>;
  measureOk: number;
  measureFail: Record<string, number>;
  measureChanged: number;
  plainSkipped: number;
  treeChecked: number;
  /** Damage that touched no byte either commit uses. */
  inert: number;
  /** Sealed files of a damaged image whose own bytes were not damaged (all their reads must succeed). */
  sealedUndamagedOk: number;
  /** A descriptor whose salt_size grew over zero padding: another digest, the same tree. */
  saltSizeAlias: number;
}

const bump = (o: Record<string, number>, k: string) => (o[k] = (o[k] ?? 0) + 1);
const overlaps = (a: Range[], b: Range[]) => a.some(([s, e]) => b.some(([s2, e2]) => s < e2 && s2 < e));
/** Codes a damaged sealed file may answer with: EIO from verification; the descriptor's door (locateDescriptor, validateDescriptor) says ERANGE, EINVAL or EFBIG. */
const SEALED_CODES = ['EIO', 'EINVAL', 'ERANGE', 'EFBIG'];

/** Runs `fn`; an IomapVerityError is returned, anything else is a failure of the test. */
async function attempt<T>(what: string, fn: () => Promise<T>): Promise<{ ok: true; v: T } | { ok: false; code: string; message: string }> {
  try {
    return { ok: true, v: await fn() };
  } catch (e) {
    if (!isErrno(e)) throw new Error(`${what}: threw something other than an IomapVerityError: ${(e as Error)?.stack ?? String(e)}`);
    return { ok: false, code: e.code, message: e.message };
  }
}

async function runCase(img: Image, d: Damaged, r: () => number, c: Counts, where: string): Promise<void> {
  const dev = await damagedDevice(img, d);
  const folio = [4096, 16384, 65536, 2 << 20][Math.floor(r() * 4)]!;
  const opened = await attempt(`${where} Volume.open`, () => Volume.open(dev, { maxFolioSize: folio, cacheBytes: Math.max(4 * folio, 1 << 20) }));
  const kc = (c.byKind[d.kind] ??= {});
  bump(kc, 'cases');
  if (!opened.ok) {
    bump(c.refused, opened.code);
    bump(kc, `refused ${opened.code}`);
    // Refusing a volume is EIO (damaged commits) or EINVAL (no superblock at all).
    expect(['EIO', 'EINVAL'], `${where}: refused with ${opened.code}`).toContain(opened.code);
    if (d.kind === 'wipe-slots') expect(opened.code, where).toBe('EINVAL');
    // A device shorter than the volume: each slot says the volume does not fit (or is cut off).
    if (d.kind === 'truncate') expect(opened.message, where).toMatch(/^no valid commit on this device: slot 0: .*does not fit.*; slot 1: .*(does not fit|past the end)/);
    if (d.kind === 'copy-slot' || d.kind === 'grow' || (d.kind === 'dev-4k' && img.fsBlockSize >= 4096)) {
      throw new Error(`${where}: ${d.kind} must open, got ${opened.code}`);
    }
    return;
  }
  // Every device shorter than the volume is refused, even when only unused
  // blocks were cut: the superblock's deviceBlocks must fit (FORMAT.md).
  if (d.kind === 'truncate') throw new Error(`${where}: a device of ${d.size} bytes, shorter than the volume, opened`);
  if (d.kind === 'wipe-slots') throw new Error(`${where}: opened with both superblocks wiped`);
  if (d.kind === 'dev-4k' && img.fsBlockSize < 4096) throw new Error(`${where}: a ${img.fsBlockSize}-byte-block volume opened on a 4 KiB-block device`);
  const vol = opened.v;
  try {
    const names = await vol.list();
    const handles = new Map<string, File>();
    const rows: Array<[string, number, boolean]> = [];
    for (const n of names) {
      const f = await vol.open(n);
      handles.set(n, f);
      rows.push([n, f.size, f.isVerity]);
    }
    const sig = signatureOf(rows);
    const state = img.states.find((s) => s.signature === sig);
    if (!state) throw new Error(`${where}: the listing ${sig} matches neither committed state`);
    const newest = state === img.states[1];
    if (newest) c.openedNewest++;
    else c.openedPrevious++;
    bump(kc, newest ? 'newest' : 'previous');
    if (d.expectGeneration !== undefined) expect(state.generation, `${where}: ${d.kind}`).toBe(d.expectGeneration);
    if (d.kind === 'grow' || d.kind === 'dev-4k') expect(state, `${where}: undamaged image`).toBe(img.states[1]);
    // Damage outside every byte either commit uses changes nothing.
    const inert = !overlaps(img.live, d.touched);
    if (inert) {
      c.inert++;
      expect(state, `${where}: damage outside the live bytes`).toBe(img.states[1]);
    }

    for (const [name, want] of state.files) {
      const f = handles.get(name)!;
      const size = want.content.length;
      if (!want.seal) {
        // Plain data is not checksummed: damage in its blocks shows up as is.
        const got = await f.read(0, size + 1);
        expect(got.length, `${where}: ${name} length`).toBe(size);
        if (overlaps(want.data, d.touched)) c.plainSkipped++;
        else if (!same(got, want.content)) throw new Error(`${where}: plain file ${name} reads back other bytes`);
        continue;
      }
      // A sealed file: exactly its content, or a clear error; never other bytes.
      let measured: Uint8Array | undefined;
      const measure = async () => {
        const m = await attempt(`${where} measureVerity(${name})`, () => f.measureVerity());
        if (m.ok) {
          c.measureOk++;
          measured = m.v.digest;
          expect(m.v.algorithm).toBe(want.seal!.hashAlgorithm);
        } else {
          expect(SEALED_CODES, `${where}: measureVerity(${name}) failed with ${m.code}`).toContain(m.code);
          bump(c.measureFail, m.code);
        }
      };
      const measureFirst = r() < 0.5;
      if (measureFirst) await measure();
      // A random piece first (partial Merkle blocks at both ends), then the whole file.
      const pos = Math.floor(r() * size);
      const len = 1 + Math.floor(r() * Math.min(size - pos, 3 * want.seal.blockSize));
      const piece = await attempt(`${where} read(${name})`, () => f.read(pos, len));
      if (piece.ok && !same(piece.v, want.content.subarray(pos, pos + len))) throw new Error(`${where}: sealed ${name} [${pos}, +${len}) read back other bytes`);
      const whole = await attempt(`${where} read(${name})`, () => f.read(0, size + 1));
      for (const res of [piece, whole]) {
        if (res.ok) c.sealedReadOk++;
        else {
          expect(SEALED_CODES, `${where}: read(${name}) failed with ${res.code}`).toContain(res.code);
          bump(c.sealedReadFail, res.code);
        }
      }
      if (whole.ok && !same(whole.v, want.content)) throw new Error(`${where}: sealed ${name} read back other bytes`);
      if (!measureFirst) await measure();
      if (!overlaps([...want.data, ...want.meta], d.touched)) {
        // Nothing of this file was damaged (bytes past EOF in its last block
        // may have been: they count as zeros): no spurious refusal.
        expect([piece.ok, whole.ok, measured !== undefined], `${where}: undamaged sealed ${name}: read, read, measure`).toEqual([true, true, true]);
        c.sealedUndamagedOk++;
      }
      if (measured !== undefined && !same(measured, want.seal.digest)) {
        // FS_IOC_MEASURE_VERITY reports the digest of the descriptor as stored,
        // so a damaged descriptor shows as another digest (which is how a user
        // holding the true digest detects it). It must be the descriptor that
        // was damaged; reads that still succeed returned the true bytes (above).
        c.measureChanged++;
        expect(overlaps(want.desc, d.touched), `${where}: ${name} measured another digest without its descriptor being damaged`).toBe(true);
        if (piece.ok || whole.ok) {
          // The data verified against the damaged descriptor: the one change
          // fs-verity cannot see in the tree is a larger salt_size over the
          // zero bytes after the salt (the salt is zero-padded to the hash
          // block before use, in the kernel too), which changes only the digest.
          const stored = await f.readVerityMetadata('descriptor', 0, 4096);
          const diff = [...stored.keys()].filter((k) => stored[k] !== want.seal!.descriptor[k]);
          expect(diff, `${where}: ${name} verified against a descriptor changed at ${diff.join(',')}`).toEqual([3]);
          expect(want.seal.salt.length).toBeGreaterThan(0);
          expect(stored[3]!).toBeGreaterThan(want.seal.salt.length);
          c.saltSizeAlias++;
        }
      }
      if (!overlaps(want.meta, d.touched) && r() < 0.25) {
        // Undamaged metadata reads back as fsverity-utils' tree (unstored blocks filled in).
        const t = await attempt(`${where} readVerityMetadata(${name})`, () => f.readVerityMetadata('merkle_tree', 0, 1 << 24));
        if (t.ok) {
          c.treeChecked++;
          if (!same(t.v, want.seal.tree)) throw new Error(`${where}: ${name} merkle_tree metadata differs though undamaged`);
        }
      }
    }
  } finally {
    await vol.close();
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, rej) => {
    timer = setTimeout(() => rej(new Error(`${what}: no answer after ${ms} ms (hang)`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

// ---------------------------------------------------------------------------

const SPECS: ImageSpec[] = [
  {
    label: '512-byte blocks, last commit seals',
    seed: 11,
    fsBlockSize: 512,
    deviceSize: 1 << 20,
    v256: { hashAlgorithm: 'sha256', blockSize: 1024, salt: new Uint8Array(0) },
    v512: { hashAlgorithm: 'sha512', blockSize: 4096, salt: Uint8Array.of(1, 2, 3, 4, 5, 6, 7) },
    last: 'seal',
  },
  {
    label: '1 KiB blocks, last commit removes a plain file',
    seed: 12,
    fsBlockSize: 1024,
    deviceSize: 3 << 19,
    v256: { hashAlgorithm: 'sha256', blockSize: 4096, salt: new Uint8Array(32).fill(0xa5) },
    v512: { hashAlgorithm: 'sha512', blockSize: 1024, salt: Uint8Array.of(9, 8, 7) },
    last: 'remove-plain',
  },
  {
    label: '4 KiB blocks, last commit removes a sealed file',
    seed: 13,
    fsBlockSize: 4096,
    deviceSize: 2 << 20,
    v256: { hashAlgorithm: 'sha256', blockSize: 1024, salt: Uint8Array.of(0x5a, 0, 0x5a, 0, 0x5a) },
    v512: { hashAlgorithm: 'sha512', blockSize: 4096, salt: new Uint8Array(0) },
    last: 'remove-sealed',
  },
];

/** The base images, built once for both tests. */
let built: Promise<Image[]> | undefined;
function baseImages(): Promise<Image[]> {
  built ??= (async () => {
    const out: Image[] = [];
    for (const s of SPECS) out.push(await buildImage(s));
    return out;
  })();
  return built;
}

const UNDAMAGED = (img: Image): Damaged => ({ kind: 'grow', patches: [], size: img.bytes.length, devBlockSize: DEV_BS, touched: [] });

/** What the fuzz runs: `cases` damaged images in batches of `batch`, each batch from a seed of its own. */
export interface VolumeFuzzOptions {
  cases: number;
  batch: number;
  /** Also the two fixed damage tests of the verifiers' memory and the salt size. */
  fixed?: boolean;
}

/**
 * Registers the fuzz: batch k draws its damage from seed 5000 + k (a time
 * seed under soak); one last test checks that every outcome class happened
 * across the batches, so the fuzz cannot pass vacuously.
 */
export function volumeFuzz(o: VolumeFuzzOptions): void {
  const CASES = SOAK ? o.cases * 20 : o.cases;
  const batches = Math.ceil(CASES / o.batch);
  describe(`volume fuzz: damaged images through Volume.open and file reads (${CASES} cases)`, () => {
    const c: Counts = {
      cases: 0,
      byKind: {},
      openedNewest: 0,
      openedPrevious: 0,
      refused: {},
      sealedReadOk: 0,
      sealedReadFail: {},
      measureOk: 0,
      measureFail: {},
      measureChanged: 0,
      plainSkipped: 0,
      treeChecked: 0,
      inert: 0,
      sealedUndamagedOk: 0,
      saltSizeAlias: 0,
    };
    let arenaBase = 0;
    let ms = 0;
    beforeAll(async () => {
      const images = await baseImages();
      const wasm = await loadWasm();
      // One undamaged round per image first: also warms the WASM arena, so
      // its use after the batches can be compared with this baseline.
      const r = rng(5);
      for (const img of images) await runCase(img, UNDAMAGED(img), r, c, `${img.label}, undamaged`);
      arenaBase = wasm.x.arena_bytes_used();
    }, 120_000);
    const time = SOAK ? Date.now() : 0;
    for (let k = 0; k < batches; k++) {
      const seed = SOAK ? time + k : 5000 + k;
      const first = k * o.batch;
      const last = Math.min(CASES, first + o.batch);
      it(`seed ${seed}: cases ${first}..${last - 1} open as the newest or previous commit with exact contents, or refuse with a code`, async () => {
        const images = await baseImages();
        const r = rng(seed);
        const started = Date.now();
        for (let i = first; i < last; i++) {
          // Let vitest's worker RPC run now and then.
          if (i % 500 === 499) await new Promise<void>((res) => setImmediate(res));
          const img = images[i % images.length]!;
          const d = damage(img, r);
          const where = `seed ${seed} case ${i} (${img.label}, ${d.kind})`;
          await withTimeout(runCase(img, d, r, c, where), CASE_TIMEOUT_MS, where);
          c.cases++;
        }
        ms += Date.now() - started;
      }, SOAK ? 3_600_000 : 120_000);
    }
    it(`every outcome class happens across the ${batches} batches, and closing gives the WASM memory back`, async () => {
      const wasm = await loadWasm();
      expect(c.cases).toBe(CASES);
      const { byKind, ...rest } = c;
      const lines = Object.entries(byKind).map(([k, v]) => `  ${k}: ${JSON.stringify(v)}`);
      console.log(`volume fuzz: ${c.cases} cases in ${ms} ms (${batches} batches)\n${lines.join('\n')}\n  ${JSON.stringify(rest)}`);
      // Every outcome class happens, so the test cannot pass vacuously.
      expect(c.openedNewest).toBeGreaterThan(CASES / 10);
      expect(c.openedPrevious).toBeGreaterThan(CASES / 50);
      expect(c.refused.EIO ?? 0).toBeGreaterThan(CASES / 50);
      expect(c.refused.EINVAL ?? 0).toBeGreaterThan(0);
      expect(c.sealedReadOk).toBeGreaterThan(CASES / 10);
      expect(c.sealedReadFail.EIO ?? 0).toBeGreaterThan(CASES / 100);
      expect(Object.values(c.measureFail).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
      expect(c.measureChanged).toBeGreaterThan(0);
      expect(c.plainSkipped).toBeGreaterThan(0);
      expect(c.treeChecked).toBeGreaterThan(0);
      expect(c.inert).toBeGreaterThan(0);
      expect(c.sealedUndamagedOk).toBeGreaterThan(CASES / 10);
      // Closing each volume gave back its WASM memory (folios, the hashers of
      // sealed files' verifiers). What may stay: a slab page or two of folio
      // state bitmaps (assembly/folio.ts ifs_alloc keeps them for reuse).
      // Before Volume.close disposed the verifiers this grew by ~2 GiB.
      expect(wasm.x.arena_bytes_used() - arenaBase).toBeLessThanOrEqual(64 << 10);
      expect(ms).toBeLessThan(SOAK ? 3_600_000 : 60_000);
    });
    if (o.fixed) fixedDamage();
  });
}

/** Two hand-made damages, on the first base image. */
function fixedDamage(): void {
  it("closing a volume, or removing a sealed file, gives back the WASM memory of the file's verifier", async () => {
    const [img] = await baseImages();
    const wasm = await loadWasm();
    const sealed = [...img!.states[1].files.values()].filter((f) => f.seal);
    expect(sealed.map((f) => f.seal!.hashAlgorithm).sort()).toEqual(['sha256', 'sha512']);
    // Open, read and measure every sealed file, then close or remove.
    const cycle = async (how: 'close' | 'remove') => {
      const vol = await Volume.open(await damagedDevice(img!, UNDAMAGED(img!)), { maxFolioSize: 65536, cacheBytes: 1 << 20 });
      for (const want of sealed) {
        const f = await vol.open(want.name);
        expect(same(await f.read(0, want.content.length), want.content)).toBe(true);
        expect(same((await f.measureVerity()).digest, want.seal!.digest)).toBe(true);
        if (how === 'remove') await vol.remove(want.name);
      }
      if (how === 'remove') {
        // Before the close: the removals alone must have released the verifiers.
        await vol.dropCaches();
        expect(wasm.x.arena_bytes_used()).toBe(base);
      }
      await vol.close();
    };
    let base = 0;
    await cycle('close');
    base = wasm.x.arena_bytes_used();
    for (let i = 0; i < 5; i++) {
      await cycle('close');
      expect(wasm.x.arena_bytes_used()).toBe(base);
    }
    await cycle('remove');
    expect(wasm.x.arena_bytes_used()).toBe(base);
  });
  it('a salt_size grown over the zero padding changes the measured digest but not the verified data (as in fs-verity)', async () => {
    const [img] = await baseImages();
    const want = img!.states[1].files.get('v512')!;
    expect(want.seal!.salt.length).toBe(7);
    const at = want.desc[0]![0] + 3; // salt_size byte of the descriptor
    expect(img!.bytes[at]).toBe(7);
    const d: Damaged = { ...UNDAMAGED(img!), kind: 'flips', patches: [[at, Uint8Array.of(20)]], touched: [[at, at + 1]] };
    const vol = await Volume.open(await damagedDevice(img!, d));
    try {
      const f = await vol.open('v512');
      const m = await f.measureVerity();
      expect(same(m.digest, want.seal!.digest)).toBe(false);
      // The salt as stored is the true salt and 13 zero bytes: the same salted hash state.
      expect(same(await f.read(0, want.content.length), want.content)).toBe(true);
    } finally {
      await vol.close();
    }
  });
}
