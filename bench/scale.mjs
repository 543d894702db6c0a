// Scale benchmarks (B10) of bench/run.mjs: how the filesystem's costs grow
// with the number of files. Each case is a function returning its rows and
// targets, so run.mjs only calls it and pushes what it returns.
//
//   node bench/scale.mjs a [--quick]     (one case alone, prints its rows)
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { loadavg } from 'node:os';
import { pathToFileURL } from 'node:url';
import { FileDevice, Volume } from '../dist/src/index.js';

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

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const sub = process.argv[2] ?? 'a';
  const quick = process.argv.includes('--quick');
  const dir = process.env.TMPDIR ?? '/tmp';
  if (sub !== 'a') throw new Error(`unknown B10 sub-case ${sub}`);
  const out = await benchManyFiles({ quick, dir, log: (s) => process.stderr.write(`${s}\n`) });
  console.log(JSON.stringify(out, null, 2));
}
