/**
 * Power cut at every device operation of a workload, then recovery.
 *
 * A fixed, seeded workload (creates, appends, overwrites, sparse writes far
 * past EOF, truncates down and up, removes, fsync, volume.sync, enableVerity
 * with SHA-256 and SHA-512/salt, more writes after) runs once uncut to learn
 * how many device operations it issues. Then, for every operation k, it runs
 * again on a fresh FaultyDevice whose power is cut at k (the workload stops
 * at the first error, which must be an IomapVerityError), the device crashes
 * keeping several subsets of its unflushed writes (none, all, random, an
 * in-order prefix, torn at device-block granularity), and the volume is
 * reopened and checked against a model of the durability contract:
 *
 *  - the volume opens, twice, with the same result (recovery is idempotent);
 *  - a file durable by fsync / volume.sync / enableVerity and not touched
 *    since reads back byte for byte with its size and sealed-ness;
 *  - a removed file is gone once a volume.sync returned after the removal;
 *  - a sealed file reads whole, its content is what it held when sealing
 *    began, and measureVerity() matches fsverityDigest of it;
 *  - no file shows a size or a byte it never held since its last durable
 *    point (past a size it had, the byte may be zero);
 *  - the recovered volume takes a new file, syncs, and reopens with it.
 *
 * The workload runs once per crash point; the device state at the cut (the
 * flushed image and the unflushed writes with their bytes) is captured and
 * rebuilt on a fresh device for each subset.
 *
 * `crashPoints` registers one test per geometry and seed: the default run
 * takes the last geometry (test/crash/crash-points.test.ts), the slow
 * script all three (test/crash/crash-points.slow.test.ts).
 * IOMAP_VERITY_SOAK=1 runs about ten times as much: four workloads per
 * geometry and 30 subsets per crash point instead of 11.
 */
import { describe, expect, it } from 'vitest';
import {
  FaultyDevice,
  File,
  IomapVerityError,
  MemoryDevice,
  Volume,
  fsverityDigest,
  type CrashKeep,
} from '../../src/index.js';
import type { PendingWrite } from '../../src/device/faulty-device.js';
import { rng } from './bytes.js';
import { sameBytes as equalBytes } from './compare.js';

const SOAK = process.env.IOMAP_VERITY_SOAK === '1';
const ZEROS = new Uint8Array(65536);
/** Bytes that are never all zero and differ between calls. */
function pattern(len: number, r: () => number): Uint8Array {
  const out = new Uint8Array(len);
  let x = (Math.floor(r() * 0xffffffff) | 1) >>> 0;
  for (let i = 0; i < len; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = (x & 0xff) | 1;
  }
  return out;
}

/** Steps per workload. */
const STEPS = 60;

interface Geometry {
  label: string;
  deviceBlock: number;
  deviceSize: number;
  blockSize: number;
  maxFolioSize: number;
  cacheBytes: number;
}

const GEOMETRIES: Geometry[] = [
  // Cache of four 16 KiB folios: most writes overflow it, so writeback under
  // pressure (without a commit) runs in the middle of the workload.
  { label: 'dev 512 / fs 4096 / folio 16K / cache 64K', deviceBlock: 512, deviceSize: 8 << 20, blockSize: 4096, maxFolioSize: 16384, cacheBytes: 65536 },
  { label: 'dev 512 / fs 1024 / folio 64K / cache 256K', deviceBlock: 512, deviceSize: 8 << 20, blockSize: 1024, maxFolioSize: 65536, cacheBytes: 262144 },
  // Device blocks inside a 16 KiB filesystem block: a torn write splits one.
  { label: 'dev 4096 / fs 16384 / folio 64K / cache 256K', deviceBlock: 4096, deviceSize: 8 << 20, blockSize: 16384, maxFolioSize: 65536, cacheBytes: 262144 },
];

// ---------------------------------------------------------------------------
// The workload: a plan of steps, fixed by a seed before it runs.

interface SealOpts {
  hashAlgorithm: 'sha256' | 'sha512';
  blockSize: number;
  salt?: Uint8Array;
}

type Step =
  | { kind: 'create'; name: string }
  | { kind: 'write'; name: string; pos: number; data: Uint8Array; what: string }
  | { kind: 'truncate'; name: string; size: number }
  | { kind: 'remove'; name: string }
  | { kind: 'fsync'; name: string }
  | { kind: 'sync' }
  | { kind: 'enable'; name: string; opts: SealOpts };


function planWorkload(seed: number, steps: number): Step[] {
  const r = rng(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
  const plan: Step[] = [];
  const size = new Map<string, number>();
  const sealed = new Set<string>();
  let next = 0;
  const create = () => {
    const name = `f${next++}`;
    plan.push({ kind: 'create', name });
    size.set(name, 0);
  };
  const writable = () => [...size.keys()].filter((n) => !sealed.has(n));
  const pick = (names: string[]) => names[Math.floor(r() * names.length)]!;
  for (let i = 0; i < 3; i++) create();
  let enables = 0;
  while (plan.length < steps) {
    const w = writable();
    const roll = r();
    if (w.length === 0 || (roll < 0.06 && size.size < 6)) {
      create();
    } else if (roll < 0.5) {
      const name = pick(w);
      const s = size.get(name)!;
      const sub = r();
      let pos: number;
      let len: number;
      let what: string;
      if (sub < 0.4 || s === 0) {
        pos = s;
        len = int(1, 60000);
        what = 'append';
      } else if (sub < 0.75) {
        pos = int(0, s - 1);
        len = int(1, 30000);
        what = 'overwrite';
      } else {
        pos = s + int(70000, 250000);
        len = int(1, 9000);
        what = 'sparse';
      }
      plan.push({ kind: 'write', name, pos, data: pattern(len, r), what });
      size.set(name, Math.max(s, pos + len));
    } else if (roll < 0.62) {
      const name = pick(w);
      const s = size.get(name)!;
      const to = r() < 0.55 ? int(0, s) : s + int(1, 90000);
      plan.push({ kind: 'truncate', name, size: to });
      size.set(name, to);
    } else if (roll < 0.68 && size.size > 2) {
      const name = pick([...size.keys()]);
      plan.push({ kind: 'remove', name });
      size.delete(name);
      sealed.delete(name);
    } else if (roll < 0.8) {
      plan.push({ kind: 'fsync', name: pick([...size.keys()]) });
    } else if (roll < 0.88) {
      plan.push({ kind: 'sync' });
    } else if (roll < 0.96 && w.length > 1) {
      const name = pick(w);
      const opts: SealOpts =
        enables++ % 2 === 0
          ? { hashAlgorithm: 'sha256', blockSize: 4096 }
          : { hashAlgorithm: 'sha512', blockSize: r() < 0.5 ? 1024 : 4096, salt: pattern(int(1, 32), r) };
      plan.push({ kind: 'enable', name, opts });
      sealed.add(name);
    }
  }
  return plan;
}

// ---------------------------------------------------------------------------
// The model: what each file held, and what the contract promises about it.

interface FileModel {
  /** Content now; null once removed. */
  cur: Uint8Array | null;
  /** Every content held since the last durable point, that one included. */
  versions: Uint8Array[];
  /** Content at the last durable point of this file (fsync, sync, enableVerity returned). */
  durable: Uint8Array | null;
  durableSealed: boolean;
  /** A write, truncate or remove was attempted after the durable point. */
  touched: boolean;
  removeAttempted: boolean;
  /** volume.sync() returned after the removal: the file must be gone. */
  removeSynced: boolean;
  /** Content when enableVerity began (it may not have returned), and that step. */
  sealStart: { content: Uint8Array; step: Extract<Step, { kind: 'enable' }> } | null;
}

function resized(b: Uint8Array, size: number): Uint8Array {
  const out = new Uint8Array(size);
  out.set(b.subarray(0, Math.min(size, b.length)));
  return out;
}

class Model {
  readonly files = new Map<string, FileModel>();

  /** Before a step runs: whatever it changes may reach the device even if it fails. */
  attempt(step: Step): void {
    const f = 'name' in step ? this.files.get(step.name) : undefined;
    switch (step.kind) {
      case 'create':
        this.files.set(step.name, {
          cur: new Uint8Array(0),
          versions: [new Uint8Array(0)],
          durable: null,
          durableSealed: false,
          touched: false,
          removeAttempted: false,
          removeSynced: false,
          sealStart: null,
        });
        return;
      case 'write': {
        const cur = f!.cur!;
        const next = resized(cur, Math.max(cur.length, step.pos + step.data.length));
        next.set(step.data, step.pos);
        f!.cur = next;
        f!.versions.push(next);
        f!.touched = true;
        return;
      }
      case 'truncate':
        f!.cur = resized(f!.cur!, step.size);
        f!.versions.push(f!.cur);
        f!.touched = true;
        return;
      case 'remove':
        f!.removeAttempted = true;
        f!.touched = true;
        return;
      case 'enable':
        f!.sealStart = { content: f!.cur!, step };
        return;
      default:
    }
  }

  /** After a step returned. */
  done(step: Step): void {
    const f = 'name' in step ? this.files.get(step.name) : undefined;
    const makeDurable = (m: FileModel, sealed: boolean) => {
      m.durable = m.cur;
      m.durableSealed = sealed;
      m.versions = [m.cur!];
      m.touched = false;
    };
    switch (step.kind) {
      case 'remove':
        f!.cur = null;
        return;
      case 'fsync':
        makeDurable(f!, f!.durableSealed);
        return;
      case 'enable':
        makeDurable(f!, true);
        return;
      case 'sync':
        for (const m of this.files.values()) {
          if (m.cur === null) m.removeSynced = true;
          else makeDurable(m, m.durableSealed);
        }
        return;
      default:
    }
  }
}

// ---------------------------------------------------------------------------
// Running and checking.

/** fsverityDigest of what a plan's enable step sealed: the same bytes in every run of the plan. */
const DIGESTS = new WeakMap<Step, string>();

async function expectedDigest(content: Uint8Array, step: Extract<Step, { kind: 'enable' }>): Promise<string> {
  let d = DIGESTS.get(step);
  if (d === undefined) {
    d = (await fsverityDigest(content, step.opts)).formatted;
    DIGESTS.set(step, d);
  }
  return d;
}

/** Writes and discards that reach it, with their bytes, while `log` is set. */
class RecordingDevice extends MemoryDevice {
  log: Array<{ offset: number; length: number; data: Uint8Array | null }> | undefined;
  protected override async _write(offset: number, src: Uint8Array): Promise<void> {
    this.log?.push({ offset, length: src.byteLength, data: src.slice() });
    return super._write(offset, src);
  }
  protected override async _discard(offset: number, length: number): Promise<void> {
    this.log?.push({ offset, length, data: null });
    return super._discard(offset, length);
  }
}

interface RunResult {
  model: Model;
  /** Steps that returned. */
  completed: number;
  error?: IomapVerityError;
  dev: FaultyDevice;
  mem: RecordingDevice;
  vol: Volume;
  /** Sequence number of the first workload operation (after format). */
  base: number;
}

/** Runs the plan with the power cut at workload operation `cut` (relative to after format). */
async function runWorkload(g: Geometry, plan: Step[], cut: number): Promise<RunResult> {
  const mem = new RecordingDevice({ blockSize: g.deviceBlock, size: g.deviceSize });
  const dev = new FaultyDevice(mem);
  const vol = await Volume.format(dev, { blockSize: g.blockSize, maxFolioSize: g.maxFolioSize, cacheBytes: g.cacheBytes, metaAreaBytes: 65536 });
  const base = dev.nextSeq;
  dev.cutPower(base + cut);
  const model = new Model();
  const handles = new Map<string, File>();
  let completed = 0;
  let error: IomapVerityError | undefined;
  for (const step of plan) {
    model.attempt(step);
    try {
      switch (step.kind) {
        case 'create':
          handles.set(step.name, await vol.create(step.name));
          break;
        case 'write':
          await handles.get(step.name)!.write(step.pos, step.data);
          break;
        case 'truncate':
          await handles.get(step.name)!.truncate(step.size);
          break;
        case 'remove':
          await vol.remove(step.name);
          break;
        case 'fsync':
          await handles.get(step.name)!.fsync();
          break;
        case 'sync':
          await vol.sync();
          break;
        case 'enable':
          await handles.get(step.name)!.enableVerity(step.opts);
          break;
      }
    } catch (e) {
      if (!(e instanceof IomapVerityError)) throw new Error(`step ${completed} (${step.kind}) threw a non-IomapVerityError`, { cause: e });
      error = e;
      break;
    }
    model.done(step);
    completed++;
  }
  return { dev, mem, vol, model, completed, error, base };
}

interface Seen {
  size: number;
  bytes: Uint8Array;
  sealed: boolean;
  digest?: string;
}

async function readAll(vol: Volume): Promise<Map<string, Seen>> {
  const out = new Map<string, Seen>();
  for (const name of await vol.list()) {
    const f = await vol.open(name);
    const bytes = await f.read(0, Math.max(1, f.size));
    const seen: Seen = { size: f.size, bytes, sealed: f.isVerity };
    if (f.isVerity) seen.digest = (await f.measureVerity()).formatted;
    out.set(name, seen);
  }
  return out;
}

/** True when `bytes[a, b)` is what version `v` held there (zeros past its end). */
function chunkHeld(bytes: Uint8Array, v: Uint8Array, a: number, b: number): boolean {
  const end = Math.max(a, Math.min(b, v.length));
  if (end > a && Buffer.compare(bytes.subarray(a, end), v.subarray(a, end)) !== 0) return false;
  return end === b || Buffer.compare(bytes.subarray(end, b), ZEROS.subarray(0, b - end)) === 0;
}

/**
 * The first position where `bytes` holds a value that no version held at
 * that position (past a version's end it held zero), or -1. Whole 4 KiB
 * pieces are compared first; byte by byte only where versions mix.
 */
function foreignByte(bytes: Uint8Array, versions: Uint8Array[]): number {
  const piece = 4096;
  for (let a = 0; a < bytes.length; a += piece) {
    const b = Math.min(bytes.length, a + piece);
    if (versions.some((v) => chunkHeld(bytes, v, a, b))) continue;
    outer: for (let i = a; i < b; i++) {
      const x = bytes[i]!;
      for (const v of versions) if ((i < v.length ? v[i]! : 0) === x) continue outer;
      return i;
    }
  }
  return -1;
}

interface Stats {
  /** Files read back exactly as durable. */
  exact: number;
  /** Files checked byte by byte against several versions. */
  mixed: number;
  /** Sealed files read, verified and measured. */
  sealed: number;
  /** Files that may have been absent and were. */
  absent: number;
}

/** Checks one recovered volume against the model; throws with `where` in the message on the first violation. */
async function checkRecovered(seen: Map<string, Seen>, model: Model, where: string, stats: Stats): Promise<void> {
  for (const name of seen.keys()) expect(model.files.has(name), `${where}: unknown file ${name}`).toBe(true);
  for (const [name, m] of model.files) {
    const s = seen.get(name);
    const at = `${where}: ${name}`;
    if (s === undefined) {
      // Absent is fine for a file never durable or one whose removal began.
      expect(m.durable === null || m.removeAttempted, `${at} is durable but gone`).toBe(true);
      stats.absent++;
      continue;
    }
    expect(m.removeSynced, `${at} was removed and synced but is back`).toBe(false);
    expect(s.bytes.length, `${at}: read returned ${s.bytes.length} bytes of ${s.size}`).toBe(s.size);
    if (s.sealed) {
      expect(m.sealStart, `${at} is sealed but enableVerity never ran on it`).not.toBeNull();
      const { content, step } = m.sealStart!;
      expect(equalBytes(s.bytes, content), `${at}: sealed content differs from the content when sealing began`).toBe(true);
      expect(s.digest, `${at}: measured digest`).toBe(await expectedDigest(content, step));
      stats.sealed++;
      continue;
    }
    expect(m.durableSealed, `${at}: enableVerity returned but the file is not sealed`).toBe(false);
    if (m.durable !== null && !m.touched) {
      expect(s.size, `${at}: size of a durable, untouched file`).toBe(m.durable.length);
      expect(equalBytes(s.bytes, m.durable), `${at}: content of a durable, untouched file`).toBe(true);
      stats.exact++;
      continue;
    }
    const sizes = new Set(m.versions.map((v) => v.length));
    expect(sizes.has(s.size), `${at}: size ${s.size} was never held (held: ${[...sizes].join(', ')})`).toBe(true);
    const bad = foreignByte(s.bytes, m.versions);
    expect(bad, `${at}: byte ${bad} = ${s.bytes[bad]} was never held there`).toBe(-1);
    if (m.versions.length > 1) stats.mixed++;
  }
}

function sameSeen(a: Map<string, Seen>, b: Map<string, Seen>, where: string): void {
  expect([...b.keys()], `${where}: files after the second open`).toEqual([...a.keys()]);
  for (const [name, s] of a) {
    const t = b.get(name)!;
    expect({ size: t.size, sealed: t.sealed, digest: t.digest }, `${where}: ${name} after the second open`).toEqual({
      size: s.size,
      sealed: s.sealed,
      digest: s.digest,
    });
    expect(equalBytes(t.bytes, s.bytes), `${where}: ${name} content after the second open`).toBe(true);
  }
}

type KeepChoice = { label: string; keep: (pending: readonly PendingWrite[]) => CrashKeep };

function keepChoices(r: () => number, bs: number, extra: number): KeepChoice[] {
  const choices: KeepChoice[] = [
    { label: 'none', keep: () => 'none' },
    { label: 'all', keep: () => 'all' },
    {
      label: 'prefix',
      keep: (p) => {
        const n = Math.floor(r() * (p.length + 1));
        return p.slice(0, n).map((w) => w.index);
      },
    },
  ];
  choices.push({ ...choices[2]!, label: 'prefix2' });
  for (let i = 0; i < 3 + extra; i++) {
    choices.push({ label: `subset${i}`, keep: (p) => p.filter(() => r() < 0.5).map((w) => w.index) });
    choices.push({
      label: `torn${i}`,
      keep: () => (_i: number, w: PendingWrite) => {
        const blocks = w.length / bs;
        if (r() < 0.25) return false;
        if (blocks === 1 || r() < 0.25) return true;
        const keepBlocks: number[] = [];
        for (let b = 0; b < blocks; b++) if (r() < 0.5) keepBlocks.push(b);
        return keepBlocks;
      },
    });
  }
  return choices;
}

const openOpts = (g: Geometry) => ({ maxFolioSize: g.maxFolioSize, cacheBytes: g.cacheBytes });

/**
 * The device at the moment of the cut, to crash it several ways: the
 * flushed image (non-zero 64 KiB pieces) and the unflushed writes with
 * their bytes, in order. Taken by crashing the run's device keeping all
 * writes and recording what reaches the memory below it.
 */
interface CutState {
  image: Array<{ offset: number; data: Uint8Array }>;
  writes: Array<{ offset: number; length: number; data: Uint8Array | null }>;
  pending: readonly PendingWrite[];
}

async function captureCut(run: RunResult): Promise<CutState> {
  // The dead volume's folios live in the shared WASM arena: close it to
  // free them. The power is still cut, so this writes nothing.
  await run.vol.close().catch(() => undefined);
  const pending = run.dev.pendingWrites;
  const image: CutState['image'] = [];
  const piece = 65536;
  for (let off = 0; off < run.mem.size; off += piece) {
    const data = new Uint8Array(Math.min(piece, run.mem.size - off));
    await run.mem.read(off, data);
    if (Buffer.compare(data, ZEROS.subarray(0, data.length)) !== 0) image.push({ offset: off, data });
  }
  run.mem.log = [];
  await run.dev.crash({ keep: 'all' });
  const writes = run.mem.log;
  run.mem.log = undefined;
  expect(writes.map((w) => [w.offset, w.length, w.data === null])).toEqual(pending.map((p) => [p.offset, p.length, p.kind === 'discard']));
  return { image, writes, pending };
}

/** A FaultyDevice in the state of the cut: the flushed image below, the same unflushed writes in its cache. */
async function rebuild(g: Geometry, cut: CutState): Promise<FaultyDevice> {
  const mem = new MemoryDevice({ blockSize: g.deviceBlock, size: g.deviceSize });
  for (const p of cut.image) await mem.write(p.offset, p.data);
  const dev = new FaultyDevice(mem);
  for (const w of cut.writes) {
    if (w.data === null) await dev.discard(w.offset, w.length);
    else await dev.write(w.offset, w.data);
  }
  return dev;
}

/** Crash, reopen, check against the model, reopen again, and prove the volume usable. */
async function crashAndCheck(g: Geometry, dev: FaultyDevice, model: Model, keep: CrashKeep, where: string, stats: Stats): Promise<void> {
  await dev.crash({ keep });
  let vol = await Volume.open(dev, openOpts(g));
  const first = await readAll(vol);
  await checkRecovered(first, model, where, stats);
  await vol.close();
  // Recovery is idempotent: a second open sees the same files.
  vol = await Volume.open(dev, openOpts(g));
  sameSeen(first, await readAll(vol), where);
  const probe = await vol.create('probe');
  const data = pattern(9000 + (dev.nextSeq % 5000), rng(dev.nextSeq));
  await probe.write(17, data);
  await vol.sync();
  await vol.close();
  vol = await Volume.open(dev, openOpts(g));
  expect(await vol.list(), `${where}: files after the probe`).toEqual([...first.keys(), 'probe'].sort());
  const p = await vol.open('probe');
  const want = new Uint8Array(17 + data.length);
  want.set(data, 17);
  expect(equalBytes(await p.read(0, want.length + 1), want), `${where}: probe file after sync and reopen`).toBe(true);
  await vol.close();
}

/** The geometries the workloads run on, by index in `crashPoints`. */
export const GEOMETRY_COUNT = GEOMETRIES.length;

/** Registers the power-cut tests for the geometries at `which` (indices below GEOMETRY_COUNT). */
export function crashPoints(which: number[]): void {
  describe('power cut at every device operation of a workload', () => {
    const seeds = SOAK ? [11, 12, 13, 14] : [11];
    for (const g of which.map((i) => GEOMETRIES[i]!)) {
      for (const seed of seeds) {
        it(`${g.label}, seed ${seed}: every crash point and kept subset recovers to a state the contract allows`, async () => {
          const t0 = Date.now();
          const plan = planWorkload(seed * 1000 + g.blockSize, STEPS);
          const kinds = new Set(plan.map((s) => (s.kind === 'write' ? s.what : s.kind === 'enable' ? `enable-${s.opts.hashAlgorithm}` : s.kind)));
          for (const k of ['create', 'append', 'overwrite', 'sparse', 'truncate', 'remove', 'fsync', 'sync', 'enable-sha256', 'enable-sha512']) {
            expect(kinds.has(k), `the plan covers ${k}`).toBe(true);
          }

          // Uncut: the workload completes, and a clean close leaves exactly
          // the final state. The number of device operations varies a little
          // from run to run: folios adjacent in WASM memory go out as one
          // device write (ioend.ts), and the shared arena's layout depends on
          // what ran before. So crash point k is "the k-th operation of that
          // run", and k goes on until a run finishes before its cut.
          const ref = await runWorkload(g, plan, Infinity);
          expect(ref.error, 'uncut run').toBeUndefined();
          const n = ref.dev.nextSeq - ref.base;
          await ref.vol.close();
          {
            const vol = await Volume.open(ref.dev, openOpts(g));
            const seen = await readAll(vol);
            const live = [...ref.model.files].filter(([, m]) => m.cur !== null);
            expect([...seen.keys()].sort()).toEqual(live.map(([k]) => k).sort());
            for (const [name, m] of live) expect(equalBytes(seen.get(name)!.bytes, m.cur!), `clean close: ${name}`).toBe(true);
            await vol.close();
          }

          const r = rng(seed ^ 0x5eed);
          let checks = 0;
          const stats: Stats = { exact: 0, mixed: 0, sealed: 0, absent: 0 };
          let withPending = 0;
          let torn = 0;
          let lastCut = 0;
          const stoppedIn = new Map<string, number>();
          for (let k = 0; ; k++) {
            const run = await runWorkload(g, plan, k);
            const at = `${g.label} seed ${seed} cut ${k} (of about ${n})`;
            let finished = false;
            if (run.error !== undefined) {
              expect(run.error.code, `${at}: ${run.error.message}`).toBe('EIO');
              expect(run.dev.ops[run.base + k]?.failed, `${at}: the workload stops at the cut`).toBe(true);
            } else {
              expect(run.completed).toBe(plan.length);
              expect(run.dev.nextSeq - run.base, `${at}: the workload finished before its cut`).toBeLessThanOrEqual(k);
              finished = true;
            }
            const step = run.completed < plan.length ? plan[run.completed]!.kind : 'end';
            stoppedIn.set(step, (stoppedIn.get(step) ?? 0) + 1);
            const cut = await captureCut(run);
            // With nothing unflushed every subset is the same crash.
            const choices = cut.pending.length === 0 ? keepChoices(r, g.deviceBlock, 0).slice(0, 1) : keepChoices(r, g.deviceBlock, SOAK ? 9 : 0);
            if (cut.pending.length > 0) withPending++;
            for (const choice of choices) {
              const dev = await rebuild(g, cut);
              const shape = (p: readonly PendingWrite[]) => p.map((w) => `${w.index}:${w.kind}@${w.offset}+${w.length}`);
              expect(shape(dev.pendingWrites)).toEqual(shape(cut.pending));
              const keep = choice.keep(cut.pending);
              if (typeof keep === 'function') torn++;
              await crashAndCheck(g, dev, run.model, keep, `${at} keep ${choice.label}`, stats);
              checks++;
            }
            lastCut = k;
            if (finished && k >= n) break;
            expect(k, 'the workload keeps running past twice its uncut length').toBeLessThan(2 * n);
          }
          const secs = (Date.now() - t0) / 1000;
          console.log(
            `[crash-points] ${g.label} seed ${seed}: ${plan.length} steps, ${n} device ops uncut, cuts 0..${lastCut} ` +
              `(${withPending} with unflushed writes), ${checks} crash/reopen checks (${torn} torn); files: ${stats.exact} exact, ` +
              `${stats.mixed} of mixed versions, ${stats.sealed} sealed and measured, ${stats.absent} absent; ` +
              `stopped in: ${[...stoppedIn].map(([k, v]) => `${k} ${v}`).join(', ')}; ${secs.toFixed(1)} s`,
          );
          expect(checks).toBeGreaterThan(3 * n);
          expect(Math.min(stats.exact, stats.mixed, stats.sealed, stats.absent), 'every kind of file check ran').toBeGreaterThan(0);
        });
      }
    }
  });
}
