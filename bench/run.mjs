// `npm run bench`: the benchmarks of issue 6 in one run. Prints a table and
// writes bench/results/latest.json. Every figure is a ratio to a peer
// measured in the same run, and every contender's result is checked
// against its peer's before it is timed (a mismatch stops the bench).
//
//   node bench/run.mjs [--quick] [--only=B1,B3] [--runs=N] [--dir=DIR] [--json=FILE] [--markdown]
//
// --quick: 64 MiB instead of 1 GiB, a 1 GiB sparse file instead of 16 GiB,
// for a smoke test. --dir: where the input files live (default
// $TMPDIR/iomap-verity-bench; they are kept for the next run). --markdown
// also prints the table as Markdown. Needs the build (`npm run bench`
// builds first).
//
// B9 (FUSE: /dev/fuse, fusermount, libfuse2 and fio) runs programs through
// an `iomap-verity mount` against the same programs on the host filesystem.
//
// B7 (verified reads over HTTP) needs nginx and fsverity-utils.
//
// B1/B2 and B8 (dm-verity format against veritysetup) time whole processes
// (start-up included), as a user of the command
// sees them; B3 is in-process throughput; B4-B6 time the operation inside a
// fresh process per case. Peak RSS is per process. On a shared machine each
// process-level figure is the best of --runs, the contenders interleaved.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DD, FIO, FUSERMOUNT, fioRandomReads, sameBytes, startMount } from './mount.mjs';
import { benchManyFiles, benchManyFilesMeta } from './scale.mjs';
import { benchDir, digestOf, ensureDenseFile, ensureSparseFile, fmt, GiB, human, measure, MiB } from './lib.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..');
const CLI = join(ROOT, 'dist/src/cli/main.js');
const NODE = process.execPath;
const FSVERITY = ['/usr/bin/fsverity', '/usr/local/bin/fsverity'].find((p) => existsSync(p));
const VERITYSETUP = ['/usr/sbin/veritysetup', '/sbin/veritysetup', '/usr/bin/veritysetup'].find((p) => existsSync(p));

const argv = process.argv.slice(2);
const opt = (k) => argv.find((x) => x.startsWith(`--${k}=`))?.slice(k.length + 3);
const QUICK = argv.includes('--quick');
const ONLY = opt('only')?.split(',').map((s) => s.trim().toUpperCase());
const RUNS = Number(opt('runs') ?? 3);
const DIR = benchDir(opt('dir'));
const JSON_OUT = opt('json') ?? join(HERE, 'results', 'latest.json');

const DENSE = QUICK ? 64 * MiB : GiB;
const SPARSE = QUICK ? GiB : 16 * GiB;
const SPARSE_DATA = QUICK ? 16 * MiB : 64 * MiB;

const KNOWN = ['B1', 'B2', 'B3', 'B4', 'B5', 'B6', 'B7', 'B8', 'B9', 'B10'];
/** Parts of a benchmark that `--only` may name alone (`--only=B10d` runs B10(d) only). */
const PARTS = { B10: ['A', 'D'] };
const isPart = (x) => Object.entries(PARTS).some(([id, ps]) => ps.some((p) => x === id + p));
const unknown = ONLY?.filter((id) => !KNOWN.includes(id) && !isPart(id)) ?? [];
if (unknown.length > 0 || !(RUNS >= 1)) {
  console.error(`bench: ${unknown.length > 0 ? `unknown benchmark ${unknown.join(', ')} in --only (there are ${KNOWN.join(', ')})` : '--runs must be at least 1'}`);
  process.exit(2);
}
if (!existsSync(CLI)) {
  console.error(`bench: ${CLI} is missing; run \`npm run build\` first (npm run bench does)`);
  process.exit(1);
}
mkdirSync(DIR, { recursive: true });

const rows = [];
const targets = [];
const notes = [];
const want = (id) => !ONLY || ONLY.includes(id) || (PARTS[id] ?? []).some((p) => ONLY.includes(id + p));
/** Part `p` (a letter) of benchmark `id` is to run: the whole benchmark or that part was asked for. */
const wantPart = (id, p) => !ONLY || ONLY.includes(id) || ONLY.includes(id + p.toUpperCase());
const rssMiB = (kib) => (kib === undefined ? undefined : kib / 1024);

function log(s) {
  process.stderr.write(`${s}\n`);
}

/**
 * Time contenders (whole processes) on the same input. Each prints a digest
 * first checked against the peer's in an untimed run (which also warms the
 * OS page cache), then `runs` timed runs each, contenders interleaved; every
 * timed run's digest is checked too. A contender marked `checkInRun` (the
 * slow baselines at full size) skips the untimed run: its first timed run
 * is checked before its time is kept.
 */
async function timeCommands(id, what, contenders, peerName) {
  const results = contenders.map((c) => ({ c, digest: undefined, times: [], rss: 0 }));
  const ordered = [...results].sort((a, b) => (b.c.name === peerName) - (a.c.name === peerName));
  let ref;
  const run = async (r, label) => {
    log(`${id} ${label}: ${r.c.name}`);
    const m = await measure(r.c.cmd, r.c.args, { env: r.c.env });
    const digest = (r.c.parse ?? digestOf)(m.stdout);
    ref ??= { name: r.c.name, digest };
    if (digest !== ref.digest) throw new Error(`${id}: ${r.c.name} printed ${digest}, ${ref.name} printed ${ref.digest}`);
    r.digest = digest;
    r.rss = Math.max(r.rss, m.maxRssKiB ?? 0);
    return m.seconds;
  };
  for (const r of ordered) if (!r.c.checkInRun) await run(r, 'check');
  const maxRuns = Math.max(...contenders.map((c) => c.runs ?? RUNS));
  for (let i = 0; i < maxRuns; i++) {
    for (const r of results) {
      if (i < (r.c.runs ?? RUNS)) r.times.push(await run(r, `run ${i + 1}`));
    }
  }
  const peer = results.find((r) => r.c.name === peerName);
  const peerTime = peer ? Math.min(...peer.times) : undefined;
  for (const r of results) {
    const seconds = Math.min(...r.times);
    rows.push({
      id,
      case: what,
      contender: r.c.name,
      seconds,
      runs: r.times,
      mbPerSecond: r.c.bytes / seconds / 1e6,
      ratio: peerTime ? seconds / peerTime : undefined,
      ratioOf: peerTime ? `time / ${peerName}` : undefined,
      maxRssMiB: rssMiB(r.rss),
      digest: r.digest,
    });
  }
  return Object.fromEntries(results.map((r) => [r.c.name, { seconds: Math.min(...r.times), digest: r.digest, rss: rssMiB(r.rss) }]));
}

function digestContenders(file, bytes, baselineRuns) {
  const list = [
    { name: 'iomap-verity digest', cmd: NODE, args: [CLI, 'digest', file], bytes },
    { name: 'iomap-verity digest, 1 thread', cmd: NODE, args: [CLI, 'digest', file], bytes, env: { IOMAP_VERITY_THREADS: '1' } },
  ];
  if (FSVERITY) list.push({ name: 'fsverity digest', cmd: FSVERITY, args: ['digest', file], bytes });
  list.push(
    { name: 'node:crypto per block', cmd: NODE, args: [join(HERE, 'baseline-digest.mjs'), '--impl=node', file], bytes, runs: baselineRuns, checkInRun: baselineRuns === 1 },
    { name: 'hash-wasm per block', cmd: NODE, args: [join(HERE, 'baseline-digest.mjs'), '--impl=hash-wasm', file], bytes, runs: baselineRuns, checkInRun: baselineRuns === 1 },
  );
  return list;
}

const PEER = FSVERITY ? 'fsverity digest' : 'node:crypto per block';
if (!FSVERITY) notes.push('fsverity (fsverity-utils) is not installed: B1/B2/B5/B6 ratios are against the node:crypto per-block baseline instead');

/**
 * Record one target row: `target({ id, what, value, op, goal, peer, ratio, efficiency })`
 * (the positional form `target(id, what, value, goal, op)` is kept for old callers).
 * `op` is '<=' or '>='; `met` is undefined when the value could not be measured.
 * Each row carries the load average at the time it was recorded, so figures
 * taken under load can be read as such. Other bench modules (bench/scale.mjs)
 * may push rows of the same shape through this helper.
 */
function target(idOrRow, text, value, limit, cmp) {
  const t = typeof idOrRow === 'object' ? { ...idOrRow } : { id: idOrRow, what: text, value, goal: limit, op: cmp };
  const met = t.value === undefined || Number.isNaN(t.value) ? undefined : t.op === '<=' ? t.value <= t.goal : t.value >= t.goal;
  targets.push({
    id: t.id,
    target: t.what,
    what: t.what,
    value: t.value,
    op: t.op,
    goal: t.goal,
    met,
    ratio: t.ratio,
    peer: t.peer,
    efficiency: t.efficiency,
    loadavg: loadavg(),
  });
}

async function engineCase(name, args) {
  const r = await measure(NODE, [join(HERE, 'engine.mjs'), name, JSON.stringify(args)]);
  const out = JSON.parse(r.stdout.trim().split('\n').pop());
  return { ...out, maxRssMiB: rssMiB(r.maxRssKiB ?? out.maxRssKiB) };
}

const densePath = join(DIR, `dense-${DENSE}`);
let sparseInfo;
const peerTimes = {};

async function fsverityTime(path) {
  if (peerTimes[path]) return peerTimes[path];
  const cmd = FSVERITY ? [FSVERITY, ['digest', path]] : [NODE, [join(HERE, 'baseline-digest.mjs'), '--impl=node', path]];
  let best;
  let digest;
  for (let i = 0; i < Math.max(1, Math.min(RUNS, 2)); i++) {
    const m = await measure(...cmd);
    digest = digestOf(m.stdout);
    best = Math.min(best ?? Infinity, m.seconds);
  }
  peerTimes[path] = { seconds: best, digest };
  return peerTimes[path];
}

let failures = 0;
/** Run one benchmark; a failure (a check that did not hold, a crash) is reported, and the others still run. */
async function guarded(id, fn) {
  try {
    await fn();
  } catch (e) {
    failures++;
    notes.push(`${id} FAILED: ${e instanceof Error ? e.message : String(e)}`);
    rows.push({ id, case: 'failed, see notes', contender: '-' });
    log(`${id} failed: ${e instanceof Error ? e.stack : String(e)}`);
  }
}

const started = new Date();
const load0 = loadavg();

if (want('B1')) await guarded('B1', async () => {
  log(`B1: making ${human(DENSE)} of random data`);
  ensureDenseFile(densePath, DENSE);
  const r = await timeCommands('B1', `digest, dense ${human(DENSE)}`, digestContenders(densePath, DENSE, RUNS), PEER);
  peerTimes[densePath] = r[PEER];
  const ours = r['iomap-verity digest'];
  target({ id: 'B1', what: 'iomap-verity digest time <= 1.0x fsverity digest', value: ours.seconds / r[PEER].seconds, op: '<=', goal: 1.0, peer: PEER });
  target('B1', 'peak RSS < 160 MiB', ours.rss, 160, '<=');
  // SHA-512 on the same file: our 2-lane kernel against fsverity-utils'.
  const alg = '--hash-alg=sha512';
  const sha512 = [
    { name: 'iomap-verity digest', cmd: NODE, args: [CLI, 'digest', alg, densePath], bytes: DENSE },
    { name: 'iomap-verity digest, 1 thread', cmd: NODE, args: [CLI, 'digest', alg, densePath], bytes: DENSE, env: { IOMAP_VERITY_THREADS: '1' } },
  ];
  if (FSVERITY) sha512.push({ name: 'fsverity digest', cmd: FSVERITY, args: ['digest', alg, densePath], bytes: DENSE });
  const peer512 = FSVERITY ? 'fsverity digest' : 'iomap-verity digest, 1 thread';
  const r512 = await timeCommands('B1', `digest ${alg}, dense ${human(DENSE)}`, sha512, peer512);
  if (FSVERITY) target('B1', 'sha512: iomap-verity digest time <= 1.0x fsverity digest --hash-alg=sha512', r512['iomap-verity digest'].seconds / r512[peer512].seconds, 1.0, '<=');
});

if (want('B2') || want('B5')) {
  log(`B2: making a ${human(SPARSE)} sparse file with ${human(SPARSE_DATA)} of data`);
  sparseInfo = ensureSparseFile(join(DIR, `sparse-${SPARSE}-${SPARSE_DATA}`), SPARSE, SPARSE_DATA);
}

if (want('B2')) await guarded('B2', async () => {
  // The per-block baselines hash every zero block: one run each at full size.
  const r = await timeCommands(
    'B2',
    `digest, ${human(SPARSE)} sparse, ${human(SPARSE_DATA)} data`,
    digestContenders(sparseInfo.path, SPARSE, QUICK ? RUNS : 1),
    PEER,
  );
  peerTimes[sparseInfo.path] = r[PEER];
  const ours = r['iomap-verity digest'];
  target('B2', 'iomap-verity digest time <= 0.25x fsverity digest', ours.seconds / r[PEER].seconds, 0.25, '<=');
  target('B2', 'peak RSS < 160 MiB', ours.rss, 160, '<=');
});

if (want('B3')) await guarded('B3', async () => {
  log('B3: SHA-256 and SHA-512 of 4 KiB blocks, one thread');
  const json = join(DIR, 'b3.json');
  const m = await measure(NODE, [join(HERE, 'sha256.mjs'), `--json=${json}`, `--seconds=${QUICK ? 0.5 : 2}`]);
  const b3 = JSON.parse(readFileSync(json, 'utf8'));
  rmSync(json, { force: true });
  for (const r of b3.rows) {
    rows.push({
      id: 'B3',
      case: `${r.alg === 'sha512' ? 'SHA-512' : 'SHA-256'} of 4 KiB blocks, 1 thread`,
      contender: r.name,
      mbPerSecond: r.bytesPerSecond / 1e6,
      ratio: r.vsNode,
      ratioOf: 'throughput / node:crypto',
      vsHashWasm: r.vsHashWasm,
      maxRssMiB: rssMiB(m.maxRssKiB),
    });
  }
  const four = b3.rows.find((r) => r.alg === 'sha256' && r.name.startsWith('iomap-verity 4-lane (hashBlocksAt)'));
  if (four) {
    target('B3', '4-lane >= 4x hash-wasm', four.vsHashWasm, 4, '>=');
    target('B3', '4-lane >= 0.8x node:crypto', four.vsNode, 0.8, '>=');
  }
});

if (want('B4')) await guarded('B4', async () => {
  log(`B4: buffered write + fsync of ${human(DENSE)}`);
  const image = join(DIR, 'b4.img');
  const contenders = [
    ['memcpy (Buffer.copy)', 'memcpy', { size: DENSE }],
    ['fs.writeFileSync + fsync', 'writefile', { size: DENSE, path: join(DIR, 'b4.out') }],
    ['Volume on MemoryDevice', 'write-volume', { size: DENSE, device: 'memory' }],
    ['Volume on FileDevice', 'write-volume', { size: DENSE, device: 'file', image }],
  ];
  const best = {};
  for (let i = 0; i < Math.max(1, Math.min(RUNS, 2)); i++) {
    for (const [name, c, args] of contenders) {
      log(`B4 run ${i + 1}: ${name}`);
      const r = await engineCase(c, args);
      const b = (best[name] ??= { seconds: Infinity, rss: 0, runs: [] });
      b.seconds = Math.min(b.seconds, r.seconds);
      b.rss = Math.max(b.rss, r.maxRssMiB ?? 0);
      b.runs.push(r.seconds);
    }
  }
  const memcpy = best['memcpy (Buffer.copy)'].seconds;
  for (const [name] of contenders) {
    const b = best[name];
    rows.push({
      id: 'B4',
      case: `buffered write + fsync, ${human(DENSE)}`,
      contender: name,
      seconds: b.seconds,
      runs: b.runs,
      mbPerSecond: DENSE / b.seconds / 1e6,
      ratio: memcpy / b.seconds,
      ratioOf: 'throughput / memcpy',
      maxRssMiB: b.rss,
    });
  }
  target('B4', 'Volume on MemoryDevice >= 0.3x memcpy', memcpy / best['Volume on MemoryDevice'].seconds, 0.3, '>=');
  target('B4', 'Volume on FileDevice >= 0.3x memcpy', memcpy / best['Volume on FileDevice'].seconds, 0.3, '>=');
});

let sealedImage;
if (want('B5') || want('B6')) await guarded('B5', async () => {
  ensureDenseFile(densePath, DENSE);
  const denseImage = join(DIR, 'b5-dense.img');
  log(`B5: building a volume holding ${human(DENSE)} (setup, not timed)`);
  await engineCase('build-image', { image: denseImage, source: densePath, size: DENSE });
  log('B5: enableVerity, dense');
  const dense = await engineCase('enable', { image: denseImage });
  const peer = await fsverityTime(densePath);
  if (dense.digest !== peer.digest) throw new Error(`B5: enableVerity measured ${dense.digest}, ${PEER} printed ${peer.digest}`);
  rows.push({
    id: 'B5',
    case: `enableVerity, dense ${human(DENSE)}`,
    contender: 'file.enableVerity (FileDevice)',
    seconds: dense.seconds,
    mbPerSecond: DENSE / dense.seconds / 1e6,
    ratio: dense.seconds / peer.seconds,
    ratioOf: `time / ${PEER} of the same data`,
    maxRssMiB: dense.maxRssMiB,
  });
  target('B5', 'dense: peak RSS < 160 MiB', dense.maxRssMiB, 160, '<=');
  sealedImage = denseImage;
  if (want('B5')) {
    sparseInfo ??= ensureSparseFile(join(DIR, `sparse-${SPARSE}-${SPARSE_DATA}`), SPARSE, SPARSE_DATA);
    const sparseImage = join(DIR, 'b5-sparse.img');
    log(`B5: building a volume holding the ${human(SPARSE)} sparse file (setup, not timed)`);
    await engineCase('build-image', { image: sparseImage, source: sparseInfo.path, size: SPARSE, layout: sparseInfo.layout });
    log('B5: enableVerity, sparse');
    const sparse = await engineCase('enable', { image: sparseImage });
    const sp = await fsverityTime(sparseInfo.path);
    if (sparse.digest !== sp.digest) throw new Error(`B5: enableVerity (sparse) measured ${sparse.digest}, ${PEER} printed ${sp.digest}`);
    rows.push({
      id: 'B5',
      case: `enableVerity, ${human(SPARSE)} sparse`,
      contender: 'file.enableVerity (FileDevice)',
      seconds: sparse.seconds,
      ratio: sparse.seconds / sp.seconds,
      ratioOf: `time / ${PEER} (B2 file)`,
      maxRssMiB: sparse.maxRssMiB,
    });
    target('B5', 'sparse: time <= 1% of fsverity digest (B2)', sparse.seconds / sp.seconds, 0.01, '<=');
    target('B5', 'sparse: peak RSS < 160 MiB', sparse.maxRssMiB, 160, '<=');
    rmSync(sparseImage, { force: true });
  }
});

if (want('B6') && sealedImage) await guarded('B6', async () => {
  const peer = await fsverityTime(densePath);
  log('B6: checking every byte of the sealed file');
  await engineCase('read-check', { image: sealedImage, source: densePath, size: DENSE });
  let cold;
  for (let i = 0; i < Math.max(1, Math.min(RUNS, 2)); i++) {
    log(`B6 run ${i + 1}: cold sequential read`);
    const r = await engineCase('read-seq', { image: sealedImage, size: DENSE });
    if (!cold || r.seconds < cold.seconds) cold = { ...r, maxRssMiB: Math.max(r.maxRssMiB, cold?.maxRssMiB ?? 0) };
  }
  const peerMBs = DENSE / peer.seconds / 1e6;
  const coldMBs = DENSE / cold.seconds / 1e6;
  rows.push({
    id: 'B6',
    case: `cold sequential verified read, ${human(DENSE)}`,
    contender: 'File.readInto 1 MiB (FileDevice, 64 MiB cache)',
    seconds: cold.seconds,
    mbPerSecond: coldMBs,
    ratio: coldMBs / peerMBs,
    ratioOf: `throughput / ${PEER} of the same data`,
    maxRssMiB: cold.maxRssMiB,
  });
  target('B6', 'cold: >= 1.0x fsverity digest throughput', coldMBs / peerMBs, 1, '>=');
  target('B6', 'cold: peak RSS < 160 MiB', cold.maxRssMiB, 160, '<=');
  log('B6: warm random 4 KiB reads');
  const reads = QUICK ? 50_000 : 300_000;
  const warm = await engineCase('read-random', { image: sealedImage, source: densePath, size: DENSE, reads });
  rows.push({
    id: 'B6',
    case: 'warm random 4 KiB verified reads',
    contender: 'File.readInto 4 KiB (32 MiB window, cached)',
    seconds: warm.seconds,
    readsPerSecond: warm.readsPerSecond,
    ratio: warm.readsPerSecond / 1_000_000,
    ratioOf: 'reads per second / 1,000,000 (target)',
    maxRssMiB: warm.maxRssMiB,
  });
  target('B6', 'warm: >= 1,000,000 random 4 KiB reads/s', warm.readsPerSecond, 1_000_000, '>=');
});
if (sealedImage) rmSync(sealedImage, { force: true });

// B7: verified reads over HTTP (nginx on loopback) against plain fetches
// of the same bytes from the same server, in one process.
if (want('B7')) await guarded('B7', async () => {
  if (!FSVERITY) throw new Error('B7 needs fsverity (fsverity-utils) for the tree and descriptor');
  ensureDenseFile(densePath, DENSE);
  const tree = `${densePath}.tree`;
  const desc = `${densePath}.desc`;
  const digest = digestOf(execFileSync(FSVERITY, ['digest', densePath, `--out-merkle-tree=${tree}`, `--out-descriptor=${desc}`], { encoding: 'utf8' }));
  log(`B7: sequential and random verified reads of ${human(DENSE)} from nginx`);
  const randomReads = QUICK ? 2000 : 10_000;
  const r = await measure(NODE, [
    join(HERE, 'verified.mjs'),
    JSON.stringify({ dir: DIR, file: densePath, digest, size: DENSE, runs: Math.max(1, Math.min(RUNS, 2)), warmup: QUICK ? 4000 : 20_000, randomReads, parallel: true }),
  ]);
  const out = JSON.parse(r.stdout.trim().split('\n').pop());
  // The process's peak, pool workers of the parallel run included.
  const rss = rssMiB(r.maxRssKiB ?? out.maxRssKiB);
  const plainMBs = DENSE / out.plainSeqSeconds / 1e6;
  const verMBs = DENSE / out.verifiedSeqSeconds / 1e6;
  rows.push({ id: 'B7', case: `sequential read over HTTP, ${human(DENSE)}`, contender: 'plain fetch (nginx, loopback)', seconds: out.plainSeqSeconds, mbPerSecond: plainMBs, ratio: 1, ratioOf: 'throughput / plain fetch' });
  rows.push({ id: 'B7', case: `sequential verified read over HTTP, ${human(DENSE)}`, contender: 'openVerified stream (4 MiB x 4 ahead)', seconds: out.verifiedSeqSeconds, mbPerSecond: verMBs, ratio: verMBs / plainMBs, ratioOf: 'throughput / plain fetch', maxRssMiB: rss });
  const parMBs = DENSE / out.parallelSeqSeconds / 1e6;
  rows.push({ id: 'B7', case: `sequential verified read over HTTP, ${human(DENSE)}`, contender: 'openVerified stream, parallel: true (pool)', seconds: out.parallelSeqSeconds, mbPerSecond: parMBs, ratio: parMBs / plainMBs, ratioOf: 'throughput / plain fetch' });
  rows.push({ id: 'B7', case: `random 4 KiB verified reads (${out.randomReads}, warm)`, contender: 'openVerified readInto', seconds: out.verifiedRandomSeconds, readsPerSecond: out.randomReads / out.verifiedRandomSeconds, ratio: out.verifiedRandomSeconds / out.plainRandomSeconds, ratioOf: 'time / plain ranged fetch' });
  rows.push({ id: 'B7', case: `random 4 KiB plain reads (${out.randomReads})`, contender: 'fetch with Range', seconds: out.plainRandomSeconds, readsPerSecond: out.randomReads / out.plainRandomSeconds, ratio: 1, ratioOf: 'time / plain ranged fetch' });
  target('B7', 'sequential: >= 0.8x plain fetch throughput', Math.max(verMBs, parMBs) / plainMBs, 0.8, '>=');
  target('B7', 'random warm: HTTP requests per read <= 1.05', out.requestsPerRead, 1.05, '<=');
  notes.push(`B7: ${out.requestsPerRead.toFixed(3)} HTTP requests per random verified read after warm-up; time per read ${(1e6 * out.verifiedRandomSeconds / out.randomReads).toFixed(0)} us verified, ${(1e6 * out.plainRandomSeconds / out.randomReads).toFixed(0)} us plain`);
});


// B8: `veritysetup format` against `iomap-verity veritysetup format`, whole
// processes, on the B1 dense file and a 1 GiB sparse image (the B2 input
// under --quick), with a fixed salt and UUID so the root hashes must be
// equal; the hash files are compared byte for byte after the timed runs.
if (want('B8')) await guarded('B8', async () => {
  if (!VERITYSETUP) {
    notes.push('B8 skipped: veritysetup (cryptsetup-bin) is not installed');
    return;
  }
  const rootOf = (stdout) => {
    const m = /^Root hash:\s+([0-9a-f]+)$/m.exec(stdout);
    if (!m) throw new Error(`no root hash in output: ${JSON.stringify(stdout.slice(0, 200))}`);
    return m[1];
  };
  const fixed = ['--salt=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff', '--uuid=0b3f6c2a-58d4-4e7c-9a61-2f0d8e5b7c13'];
  ensureDenseFile(densePath, DENSE);
  const sparse = QUICK ? sparseInfo?.path ?? ensureSparseFile(join(DIR, `sparse-${SPARSE}-${SPARSE_DATA}`), SPARSE, SPARSE_DATA).path : ensureSparseFile(join(DIR, `sparse-${GiB}-${64 * MiB}`), GiB, 64 * MiB).path;
  for (const [label, file, bytes] of [[`dense ${human(DENSE)}`, densePath, DENSE], [`sparse ${human(QUICK ? SPARSE : GiB)}`, sparse, QUICK ? SPARSE : GiB]]) {
    const theirs = join(DIR, 'b8-veritysetup.hash');
    const ours = join(DIR, 'b8-iomap-verity.hash');
    for (const f of [theirs, ours]) rmSync(f, { force: true });
    const r = await timeCommands(
      'B8',
      `veritysetup format, ${label}`,
      [
        { name: 'veritysetup format', cmd: VERITYSETUP, args: ['format', file, theirs, ...fixed], bytes, parse: rootOf },
        { name: 'iomap-verity veritysetup format', cmd: NODE, args: [CLI, 'veritysetup', 'format', file, ours, ...fixed], bytes, parse: rootOf },
      ],
      'veritysetup format',
    );
    if (Buffer.compare(readFileSync(theirs), readFileSync(ours)) !== 0) throw new Error(`B8 ${label}: the hash files differ`);
    for (const f of [theirs, ours]) rmSync(f, { force: true });
    // No target was set for B8: the ratio is reported, not judged.
    notes.push(`B8 ${label}: iomap-verity veritysetup format takes ${fmt(r['iomap-verity veritysetup format'].seconds / r['veritysetup format'].seconds, 3)}x the time of veritysetup format (same root hash, same hash file)`);
  }
});

if (want('B9')) await guarded('B9', async () => {
  if (!existsSync('/dev/fuse') || !FUSERMOUNT) throw new Error('B9 needs /dev/fuse and fusermount (Debian packages fuse and libfuse2)');
  ensureDenseFile(densePath, DENSE);
  const image = join(DIR, 'b9.img');
  const mnt = join(DIR, 'b9-mnt');
  const hostCopy = join(DIR, 'b9-host.bin');
  rmSync(image, { force: true });
  mkdirSync(mnt, { recursive: true });
  execFileSync(NODE, [CLI, 'mkfs', image, `--size=${Math.ceil((DENSE * 1.25 + 64 * MiB) / MiB)}M`]);
  const mountArgs = ['--cache=64M'];
  const best = {};
  const keep = (name, seconds) => {
    const b = (best[name] ??= { seconds: Infinity, runs: [] });
    b.seconds = Math.min(b.seconds, seconds);
    b.runs.push(seconds);
  };
  // dd with 1 MiB blocks, as a user copies a file; the written copy must equal the source before its time counts.
  const ddWrite = (dst) => measure(DD, [`if=${densePath}`, `of=${dst}`, 'bs=1M', 'conv=fsync', 'status=none']);
  const ddRead = (src) => measure(DD, [`if=${src}`, 'of=/dev/null', 'bs=1M', 'status=none']);
  let m;
  try {
    for (let i = 0; i < Math.max(1, Math.min(RUNS, 2)); i++) {
      log(`B9 run ${i + 1}: sequential write, host then mount`);
      rmSync(hostCopy, { force: true });
      keep('write host', (await ddWrite(hostCopy)).seconds);
      await sameBytes(densePath, hostCopy);
      m = await startMount(NODE, CLI, image, mnt, mountArgs);
      keep('write mount', (await ddWrite(join(mnt, 'seq.bin'))).seconds);
      await sameBytes(densePath, join(mnt, 'seq.bin'));
      // A fresh mount for the read: the kernel's and the engine's caches start empty.
      await m.stop();
      m = await startMount(NODE, CLI, image, mnt, mountArgs);
      log(`B9 run ${i + 1}: sequential read, mount (cold) then host`);
      keep('read mount', (await ddRead(join(mnt, 'seq.bin'))).seconds);
      keep('read host', (await ddRead(hostCopy)).seconds);
      await m.stop();
      m = undefined;
    }
    for (const [what, host, mount] of [['sequential write + fsync (dd bs=1M conv=fsync)', 'write host', 'write mount'], ['sequential read (dd bs=1M), cold mount', 'read host', 'read mount']]) {
      for (const [name, key] of [['host filesystem', host], ['iomap-verity mount', mount]]) {
        const b = best[key];
        rows.push({
          id: 'B9',
          case: `${what}, ${human(DENSE)}`,
          contender: name,
          seconds: b.seconds,
          runs: b.runs,
          mbPerSecond: DENSE / b.seconds / 1e6,
          ratio: best[host].seconds / b.seconds,
          ratioOf: 'throughput / host filesystem',
        });
      }
    }
    if (FIO) {
      m = await startMount(NODE, CLI, image, mnt, mountArgs);
      const seconds = QUICK ? 2 : 5;
      log('B9: 4 KiB random reads with fio, host then mount');
      const hostRate = await fioRandomReads(hostCopy, DENSE, seconds);
      const mountRate = await fioRandomReads(join(mnt, 'seq.bin'), DENSE, seconds);
      await sameBytes(densePath, join(mnt, 'seq.bin'));
      await m.stop();
      m = undefined;
      for (const [name, rate] of [['host filesystem', hostRate], ['iomap-verity mount', mountRate]]) {
        rows.push({
          id: 'B9',
          case: `4 KiB random reads (fio psync, ${seconds} s), ${human(DENSE)} file`,
          contender: name,
          readsPerSecond: rate,
          ratio: rate / hostRate,
          ratioOf: 'reads per second / host filesystem',
        });
      }
    } else {
      notes.push('B9: fio is not installed, so the 4 KiB random-read case did not run');
    }
  } finally {
    if (m) await m.kill();
    rmSync(image, { force: true });
    rmSync(hostCopy, { force: true });
  }
});

// B10 (scale, bench/scale.mjs): one call per sub-case, its rows and targets pushed as they come.
if (want('B10')) await guarded('B10', async () => {
  // B10(a): many one-block files written unsynced through a 32 MiB cache.
  if (wantPart('B10', 'a')) {
    const a = await benchManyFiles({ quick: QUICK, dir: DIR, log });
    rows.push(...a.rows);
    targets.push(...a.targets);
    notes.push(...a.notes);
  }
  // B10(d): create, list, open, remove and a one-file commit with 1,000,000 files.
  if (wantPart('B10', 'd')) {
    const d = await benchManyFilesMeta({ quick: QUICK, log });
    rows.push(...d.rows);
    for (const t of d.targets) target(t);
    notes.push(...d.notes);
  }
});

function fsverityVersion() {
  if (!FSVERITY) return undefined;
  try {
    return execFileSync(FSVERITY, ['--version'], { encoding: 'utf8' }).split('\n')[0];
  } catch {
    return 'unknown';
  }
}

const report = {
  started: started.toISOString(),
  seconds: (Date.now() - started.getTime()) / 1000,
  quick: QUICK,
  sizes: { dense: DENSE, sparse: SPARSE, sparseData: SPARSE_DATA },
  runs: RUNS,
  machine: {
    cpus: cpus().length,
    model: cpus()[0]?.model,
    memoryGiB: totalmem() / GiB,
    node: process.version,
    fsverity: fsverityVersion(),
    loadavgAtStart: load0,
    loadavgAtEnd: loadavg(),
  },
  rows,
  targets,
  notes,
};
mkdirSync(dirname(JSON_OUT), { recursive: true });
writeFileSync(JSON_OUT, JSON.stringify(report, null, 2) + '\n');

const W = [4, 44, 48, 9, 9, 10, 24, 9];
const line = (cells) => cells.map((c, i) => (i < 3 ? String(c).padEnd(W[i]) : String(c).padStart(W[i]))).join(' ');
console.log(`iomap-verity bench${QUICK ? ' (--quick)' : ''}: ${report.machine.cpus} x ${report.machine.model}, node ${process.version}, ${report.machine.fsverity ?? 'no fsverity'}`);
console.log(`load average at start ${load0.map((l) => l.toFixed(2)).join(' ')}, at end ${report.machine.loadavgAtEnd.map((l) => l.toFixed(2)).join(' ')}`);
console.log(line(['id', 'case', 'contender', 'time s', 'MB/s', 'ratio', 'ratio of', 'RSS MiB']));
for (const r of rows) {
  console.log(
    line([
      r.id,
      r.case,
      r.contender,
      fmt(r.seconds),
      r.readsPerSecond ? `${Math.round(r.readsPerSecond / 1000)}k/s` : fmt(r.mbPerSecond, 0),
      fmt(r.ratio, 3),
      r.ratioOf ?? '',
      fmt(r.maxRssMiB, 0),
    ]),
  );
}
if (argv.includes('--markdown')) {
  console.log('\n| id | case | contender | time s | MB/s | ratio | ratio of | RSS MiB |\n|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    const rate = r.readsPerSecond ? `${Math.round(r.readsPerSecond / 1000)}k reads/s` : fmt(r.mbPerSecond, 0);
    console.log(`| ${r.id} | ${r.case} | ${r.contender} | ${fmt(r.seconds)} | ${rate} | ${fmt(r.ratio, 3)} | ${r.ratioOf ?? ''} | ${fmt(r.maxRssMiB, 0)} |`);
  }
  console.log('');
}
console.log('targets:');
for (const t of targets) {
  const eff = t.efficiency === undefined ? '' : ` (efficiency ${fmt(t.efficiency, 3)})`;
  const la = t.loadavg ? ` [load ${t.loadavg[0].toFixed(2)}]` : '';
  console.log(`  ${t.id} ${t.target}: ${fmt(t.value, 3)} ${t.met === undefined ? '-' : t.met ? 'met' : 'NOT met'}${eff}${la}`);
}
for (const n of notes) console.log(`note: ${n}`);
console.log(`wrote ${JSON_OUT}`);
if (failures > 0) process.exitCode = 1;
