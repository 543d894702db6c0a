// Scale benchmarks (B10) of bench/run.mjs: how the filesystem's costs grow
// with the number of files. Each case is a function returning its rows and
// targets, so run.mjs only calls it and pushes what it returns.
//
//   node bench/scale.mjs a|d [--quick]   (one case alone, prints its rows)
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { loadavg } from 'node:os';
import { pathToFileURL } from 'node:url';
import { FileDevice, MemoryDevice, Volume } from '../dist/src/index.js';

const MiB = 1 << 20;
const BLOCK = 4096;

/** The bytes of file `i`: one block, different in every file (checked after the run). */
function fileBytes(i) {
  const b = new Uint8Array(BLOCK);
  const dv = new DataView(b.buffer);
  for (let o = 0; o < BLOCK; o += 4) dv.setUint32(o, (Math.imul(i + 1, 0x9e3779b1) ^ o) >>> 0, true);
  return b;
}

function sameBytes(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * B10(a): many one-block files written without any sync through a Volume
 * whose 32 MiB page cache fills with dirty data after ~8,000 files, so
 * every later write needs pressure writeback. The cost of writeback under
 * pressure should be that of the folios it frees, not of the files that
 * exist: the time per 10,000 files stays flat (target: the last 10,000
 * within 1.5x of the first). The files live on a FileDevice (a sparse file
 * in `dir`); the final sync, and a read-back of every 97th file after a
 * reopen, are checked outside the per-10,000 times.
 *
 * Returns { rows, targets, notes } in bench/run.mjs's shapes.
 */
export async function benchManyFiles({ quick = false, dir, log = () => {}, files: count } = {}) {
  const files = count ?? (quick ? 20_000 : 200_000);
  const step = 10_000;
  const cacheBytes = 32 * MiB;
  const path = join(dir, `b10a-${files}.img`);
  rmSync(path, { force: true });
  // Data blocks, plus room for two metadata areas of the largest size.
  const size = Math.ceil((files * BLOCK * 1.25 + 160 * MiB) / MiB) * MiB;
  const dev = await FileDevice.open(path, { size, create: true, blockSize: BLOCK });
  const rows = [];
  const notes = [];
  try {
    const vol = await Volume.format(dev, { blockSize: BLOCK, maxFolioSize: BLOCK, cacheBytes, metaAreaBytes: 64 * MiB });
    const per = [];
    let t0 = performance.now();
    for (let i = 0; i < files; i++) {
      const f = await vol.create(`f${i}`);
      await f.write(0, fileBytes(i));
      if ((i + 1) % step === 0 || i + 1 === files) {
        const t = performance.now();
        per.push({ upTo: i + 1, seconds: (t - t0) / 1000 });
        log(`B10a: files ${i + 2 - ((i % step) + 1)}..${i + 1}: ${((t - t0) / 1000).toFixed(2)} s (load ${loadavg()[0].toFixed(2)})`);
        t0 = t;
      }
    }
    const s0 = performance.now();
    await vol.close();
    const syncSeconds = (performance.now() - s0) / 1000;
    // Check: what the run wrote is what the volume holds after a reopen.
    const again = await Volume.open(dev, { cacheBytes });
    for (let i = 0; i < files; i += 97) {
      const f = await again.open(`f${i}`);
      const got = await f.read(0, BLOCK + 1);
      if (!sameBytes(got, fileBytes(i))) throw new Error(`B10a: file f${i} reads back wrong after the run`);
    }
    if ((await again.list()).length !== files) throw new Error('B10a: the volume does not hold every file after the run');
    await again.close();
    const first = per[0].seconds;
    for (const p of per) {
      const n = p.upTo - (per.indexOf(p) === 0 ? 0 : per[per.indexOf(p) - 1].upTo);
      rows.push({
        id: 'B10',
        case: `(a) ${files} one-block files unsynced, 32 MiB cache: files to ${p.upTo}`,
        contender: 'Volume on FileDevice',
        seconds: p.seconds,
        filesPerSecond: n / p.seconds,
        ratio: p.seconds / first,
        ratioOf: `time / first ${step}`,
      });
    }
    rows.push({ id: 'B10', case: `(a) sync (close) of ${files} dirty files`, contender: 'Volume on FileDevice', seconds: syncSeconds });
    const last = per[per.length - 1];
    const full = per.length > 1 && last.upTo - per[per.length - 2].upTo === step;
    const lastTime = full ? last.seconds : per.length > 1 ? per[per.length - 2].seconds : last.seconds;
    const targets = [{ id: 'B10', target: `(a) last ${step} files within 1.5x of the first ${step} (ratio)`, value: lastTime / first, met: lastTime / first <= 1.5 }];
    return { rows, targets, notes };
  } finally {
    await dev.close();
    rmSync(path, { force: true });
  }
}

const ms = (t0) => performance.now() - t0;

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/**
 * One-file commits of a volume holding `files` empty files: the median time
 * of `reps` rounds of "write one block into one file, sync".
 */
async function oneFileCommits(vol, files, reps) {
  const times = [];
  const block = new Uint8Array(BLOCK).fill(7);
  for (let r = 0; r < reps; r++) {
    const f = await vol.open(`f${(r * 7919) % files}`);
    await f.write(0, block);
    const t0 = performance.now();
    await vol.sync();
    times.push(ms(t0));
  }
  return median(times);
}

/**
 * B10(d): a volume with many files. On a MemoryDevice with 64 MiB
 * metadata areas: create `files` empty files, commit them, `list()`, open
 * each by name, commit after changing one file (write one block + sync,
 * median of 5), reopen (load and validate everything), remove every file,
 * commit the removals. The one-file commit is also taken at 10,000 files
 * in the same run: the ratio shows how commit cost grows with files that
 * did not change (the on-device format rewrites the whole metadata blob
 * per commit, so bytes written grow with the file count; what the engine
 * encodes and validates grows only with what changed).
 *
 * Returns { rows, targets, notes } in bench/run.mjs's shapes.
 */
export async function benchManyFilesMeta({ quick = false, log = () => {}, files: count } = {}) {
  const files = count ?? (quick ? 100_000 : 1_000_000);
  const small = 10_000;
  const rows = [];
  const notes = [];
  const contender = 'Volume on MemoryDevice';
  const caseName = (what) => `(d) ${what}, ${files} files`;
  const rate = (what, n, t) => {
    rows.push({ id: 'B10', case: caseName(what), contender, seconds: t / 1000, opsPerSecond: (n * 1000) / t });
    log(`B10d: ${what}: ${n} in ${(t / 1000).toFixed(3)} s = ${Math.round((n * 1000) / t)}/s (load ${loadavg()[0].toFixed(2)})`);
  };
  const time = (what, t) => {
    rows.push({ id: 'B10', case: caseName(what), contender, seconds: t / 1000 });
    log(`B10d: ${what}: ${t.toFixed(1)} ms (load ${loadavg()[0].toFixed(2)})`);
  };
  const fmtOpts = { blockSize: BLOCK, maxFolioSize: BLOCK, metaAreaBytes: 64 * MiB };
  // The same one-file commit with few files, as the peer of the big one.
  const dev0 = new MemoryDevice({ size: 256 * MiB, blockSize: BLOCK });
  const v0 = await Volume.format(dev0, fmtOpts);
  for (let i = 0; i < small; i++) await v0.create(`f${i}`);
  await v0.sync();
  const commitSmall = await oneFileCommits(v0, small, 5);
  await v0.close();
  time(`one-file commit at ${small} files (median of 5)`, commitSmall);

  const dev = new MemoryDevice({ size: 512 * MiB, blockSize: BLOCK });
  let vol = await Volume.format(dev, fmtOpts);
  let t0 = performance.now();
  for (let i = 0; i < files; i++) await vol.create(`f${i}`);
  rate('create', files, ms(t0));
  t0 = performance.now();
  await vol.sync();
  time('first commit of all files', ms(t0));
  t0 = performance.now();
  const names = await vol.list();
  time('list()', ms(t0));
  if (names.length !== files) throw new Error(`B10d: list() returned ${names.length} names, expected ${files}`);
  t0 = performance.now();
  for (let i = 0; i < files; i++) await vol.open(`f${i}`);
  rate('open by name', files, ms(t0));
  const commitBig = await oneFileCommits(vol, files, 5);
  time('one-file commit (median of 5)', commitBig);
  await vol.close();
  t0 = performance.now();
  vol = await Volume.open(dev);
  time('reopen (load and validate)', ms(t0));
  const f = await vol.open('f0');
  if ((await f.read(0, 1))[0] !== 7) throw new Error('B10d: the one-file commit did not survive the reopen');
  t0 = performance.now();
  for (let i = 0; i < files; i++) await vol.remove(`f${i}`);
  rate('remove', files, ms(t0));
  t0 = performance.now();
  await vol.sync();
  time('commit of the removals', ms(t0));
  if ((await vol.list()).length !== 0) throw new Error('B10d: files left after removing all');
  await vol.close();
  const ratio = commitBig / commitSmall;
  rows.push({ id: 'B10', case: caseName('one-file commit vs at 10,000 files'), contender, ratio, ratioOf: `time / at ${small} files` });
  const perFile = commitBig / files; // ms per file present
  notes.push(
    `B10(d): one-file commit ${commitBig.toFixed(1)} ms at ${files} files, ${commitSmall.toFixed(2)} ms at ${small} (${ratio.toFixed(1)}x for ${files / small}x the files, ${(perFile * 1e6).toFixed(0)} ns per file present): format version 1 rewrites the whole metadata blob per commit`,
  );
  const targets = [
    { id: 'B10', target: `(d) one-file commit at ${files} files <= 0.5 s`, what: `(d) one-file commit at ${files} files <= 0.5 s`, value: commitBig / 1000, op: '<=', goal: 0.5, met: commitBig / 1000 <= 0.5 },
    {
      id: 'B10',
      target: `(d) one-file commit at ${files} files within ${files / small / 4}x of at ${small} (a quarter of the file ratio: no per-file work beyond copying bytes)`,
      what: `(d) one-file commit at ${files} files within ${files / small / 4}x of at ${small}`,
      value: ratio,
      op: '<=',
      goal: files / small / 4,
      met: ratio <= files / small / 4,
      peer: `one-file commit at ${small} files`,
      ratio,
    },
  ];
  return { rows, targets, notes };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const sub = process.argv[2] ?? 'a';
  const quick = process.argv.includes('--quick');
  const dir = process.env.TMPDIR ?? '/tmp';
  const log = (s) => process.stderr.write(`${s}\n`);
  const cases = { a: () => benchManyFiles({ quick, dir, log }), d: () => benchManyFilesMeta({ quick, log }) };
  if (!(sub in cases)) throw new Error(`unknown B10 sub-case ${sub} (there are ${Object.keys(cases).join(', ')})`);
  const out = await cases[sub]();
  console.log(JSON.stringify(out, null, 2));
}
