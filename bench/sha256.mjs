// B3: SHA-256 and SHA-512 of 4 KiB blocks on one thread, fs-verity style
// (one digest per block): our WASM one-buffer and SIMD kernels (SHA-256
// 4-lane, SHA-512 2-lane) against hash-wasm and node:crypto, measured in the
// same run, each algorithm against its own peers. Every contender's digests
// are checked against node:crypto's before it is timed.
//
//   npx tsc -p tsconfig.build.json && node bench/sha256.mjs [--json=FILE] [--seconds=N]
//
// Exports runSha256Bench() for bench/run.mjs.
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createSHA256, createSHA512 } from 'hash-wasm';
import { instantiateWasm } from '../dist/src/wasm/index.js';
import { Sha256BlockHasher } from '../dist/src/wasm/sha256.js';
import { Sha512BlockHasher } from '../dist/src/wasm/sha512.js';

const BS = 4096;
const COUNT = 1024; // 4 MiB per pass: fits in L2/L3 less than in RAM, like a folio batch

// The machine is shared: each contender runs in several short slices,
// interleaved with the others, and keeps its best slice, so a burst of
// someone else's work costs every contender alike instead of one.
function timeSlice(ms, fn) {
  let reps = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < ms) {
    fn();
    reps++;
    t = performance.now();
  }
  return (reps * COUNT * BS) / ((t - t0) / 1000);
}

/**
 * Runs B3 and returns rows of { alg, name, bytesPerSecond, vsHashWasm, vsNode }:
 * SHA-256's contenders, then SHA-512's, each ratio to the same algorithm's
 * node:crypto and hash-wasm rows.
 */
export async function runSha256Bench({ seconds = 2 } = {}) {
  // `seconds` is per contender, spread over its slices.
  const wasm = await instantiateWasm();
  const data = new Uint8Array(randomBytes(BS * COUNT));
  const src = wasm.alloc(BS * COUNT);
  wasm.u8().set(data, src);
  const groups = [
    { alg: 'sha256', ds: 32, hashWasm: await createSHA256(), simd: '4-lane',
      one: Sha256BlockHasher.create(wasm, new Uint8Array(0), BS, { lanes: 1 }),
      many: Sha256BlockHasher.create(wasm, new Uint8Array(0), BS, { lanes: 4 }) },
    { alg: 'sha512', ds: 64, hashWasm: await createSHA512(), simd: '2-lane',
      one: Sha512BlockHasher.create(wasm, new Uint8Array(0), BS, { lanes: 1 }),
      many: Sha512BlockHasher.create(wasm, new Uint8Array(0), BS, { lanes: 2 }) },
  ];
  const dst = wasm.alloc(64 * COUNT);
  const contenders = [];
  for (const { alg, ds, hashWasm: hw, simd, one, many } of groups) {
    const want = Buffer.alloc(ds * COUNT);
    for (let i = 0; i < COUNT; i++) createHash(alg).update(data.subarray(i * BS, (i + 1) * BS)).digest().copy(want, i * ds);
    const out = new Uint8Array(ds * COUNT);
    const upper = alg.toUpperCase();
    contenders.push(
      [alg, want, 'node:crypto createHash per block', () => {
        for (let i = 0; i < COUNT; i++) createHash(alg).update(data.subarray(i * BS, (i + 1) * BS)).digest().copy(out, i * ds);
        return out;
      }],
      [alg, want, `hash-wasm create${upper} per block`, () => {
        for (let i = 0; i < COUNT; i++) {
          hw.init();
          hw.update(data.subarray(i * BS, (i + 1) * BS));
          out.set(hw.digest('binary'), i * ds);
        }
        return out;
      }],
      [alg, want, 'iomap-verity one-buffer (hashBlocksAt, lanes 1)', () => {
        one.hashBlocksAt(src, COUNT, dst);
        return wasm.bytes(dst, ds * COUNT);
      }],
      [alg, want, `iomap-verity ${simd} (hashBlocksAt)`, () => {
        many.hashBlocksAt(src, COUNT, dst);
        return wasm.bytes(dst, ds * COUNT);
      }],
      [alg, want, `iomap-verity ${simd}, zero-aware (no zero blocks)`, () => {
        many.hashBlocksAtSkipZero(src, COUNT, dst);
        return wasm.bytes(dst, ds * COUNT);
      }],
      [alg, want, `iomap-verity ${simd} from JS (hashBlocks, copies in)`, () => {
        many.hashBlocks(data, out);
        return out;
      }],
    );
  }
  const rows = [];
  for (const [alg, want, name, fn] of contenders) {
    // also the warm-up: compiles and tiers up
    if (!Buffer.from(fn()).equals(want)) throw new Error(`${alg} ${name}: digests differ from node:crypto`);
    rows.push({ alg, name, bytesPerSecond: 0 });
  }
  const slices = 8;
  for (let s = 0; s < slices; s++) {
    contenders.forEach(([, , , fn], i) => {
      rows[i].bytesPerSecond = Math.max(rows[i].bytesPerSecond, timeSlice((seconds * 1000) / slices, fn));
    });
  }
  for (const r of rows) {
    const peers = rows.filter((p) => p.alg === r.alg);
    r.vsNode = r.bytesPerSecond / peers[0].bytesPerSecond;
    r.vsHashWasm = r.bytesPerSecond / peers[1].bytesPerSecond;
  }
  for (const g of groups) {
    g.one.dispose();
    g.many.dispose();
  }
  return rows;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const arg = (k) => process.argv.find((a) => a.startsWith(`--${k}=`))?.slice(k.length + 3);
  const rows = await runSha256Bench({ seconds: Number(arg('seconds') ?? 2) });
  console.log(`B3 SHA-256 and SHA-512 of ${BS}-byte blocks, one thread, node ${process.version}`);
  console.log('contender'.padEnd(60) + 'MB/s'.padStart(8) + 'x hash-wasm'.padStart(13) + 'x node'.padStart(9));
  for (const r of rows) {
    console.log(
      `${r.alg} ${r.name}`.padEnd(60) +
        (r.bytesPerSecond / 1e6).toFixed(0).padStart(8) +
        r.vsHashWasm.toFixed(2).padStart(13) +
        r.vsNode.toFixed(2).padStart(9),
    );
  }
  const json = arg('json');
  if (json) writeFileSync(json, JSON.stringify({ bench: 'B3-sha256-4k', node: process.version, rows }, null, 2));
}
