// The process that test/crash-sigkill.test.ts kills with SIGKILL.
//
// Run as `node crash-child.mjs IMAGE BLOCK_SIZE DEVICE_SIZE`: it formats
// IMAGE (when the file does not exist yet) or opens the volume on it, prints
// `ready N` with N one past the largest f<n> on the volume, then loops
// forever over n = N, N+1, ...:
//   create f<n> with contentFor(n) (holes left unwritten; a first
//   piece fsynced early), fsync                                     -> "synced n"
//   when sealParams(n): enableVerity on f<n>                         -> "sealed n"
//   when removeTarget(n) exists: remove it, volume.sync()             -> "removed m"
// Each ack is printed after the call returned, so the parent may rely on it.
// Imported by the test for the same content and schedule; nothing runs then.
import { argv, stdout } from 'node:process';
import { fileURLToPath } from 'node:url';

/** A small deterministic PRNG (mulberry32). */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * What f<n> holds: its size (0 to 320 KiB) and the runs of non-zero bytes;
 * everything else is a hole. About a third of the files are sparse.
 */
export function layoutFor(n) {
  const r = rng(n * 7919 + 1);
  const size = n % 9 === 4 ? 0 : Math.floor(r() * 320 * 1024) + (n % 5 === 0 ? 1 : 0);
  const runs = [];
  if (r() < 0.35 && size > 20000) {
    for (let pos = Math.floor(r() * 8000); pos < size; ) {
      const len = Math.min(size - pos, 1 + Math.floor(r() * 30000));
      runs.push({ pos, len });
      pos += len + 1 + Math.floor(r() * 70000);
    }
  } else if (size > 0) {
    runs.push({ pos: 0, len: size });
  }
  return { size, runs };
}

/** The bytes of f<n>: never zero inside a run, zero in the holes. */
export function contentFor(n) {
  const { size, runs } = layoutFor(n);
  const out = new Uint8Array(size);
  let x = (n * 2654435761 + 12345) >>> 0 || 1;
  for (const { pos, len } of runs) {
    for (let i = pos; i < pos + len; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      out[i] = (x & 0xff) | 1;
    }
  }
  return out;
}

/** fs-verity options when f<n> is sealed right after its fsync, else undefined. */
export function sealParams(n) {
  if (n % 3 !== 1) return undefined;
  if (n % 2 === 0) return { hashAlgorithm: 'sha256', blockSize: 4096 };
  const salt = new Uint8Array(1 + (n % 32)).map((_, i) => (n * 31 + i) & 0xff);
  return { hashAlgorithm: 'sha512', blockSize: 1024, salt };
}

/** The older file removed (if it exists) after f<n> is done, or undefined. */
export function removeTarget(n) {
  return n % 4 === 3 && n >= 6 ? n - 6 : undefined;
}

async function main() {
  const [image, bs, size] = argv.slice(2);
  const blockSize = Number(bs);
  const { existsSync } = await import('node:fs');
  const { FileDevice, Volume } = await import(new URL('../../dist/src/index.js', import.meta.url).href);
  const fresh = !existsSync(image);
  const dev = await FileDevice.open(image, { blockSize, size: Number(size), create: true });
  const vol = fresh ? await Volume.format(dev, { blockSize }) : await Volume.open(dev);
  const have = new Set(await vol.list());
  let n = 0;
  for (const name of have) {
    const m = /^f(\d+)$/.exec(name);
    if (m) n = Math.max(n, Number(m[1]) + 1);
  }
  stdout.write(`ready ${n}\n`);
  for (;; n++) {
    const name = `f${n}`;
    const { size: len, runs } = layoutFor(n);
    const data = contentFor(n);
    const f = await vol.create(name);
    // In pieces of at most 64 KiB, with an unacked fsync after the first
    // when more follow: a kill after it leaves a committed, partial file.
    let first = true;
    for (const { pos, len: l } of runs) {
      for (let p = pos; p < pos + l; p += 65536) {
        await f.write(p, data.subarray(p, Math.min(pos + l, p + 65536)));
        if (first && (p + 65536 < pos + l || runs.length > 1)) await f.fsync();
        first = false;
      }
    }
    if (f.size < len) await f.truncate(len);
    await f.fsync();
    have.add(name);
    stdout.write(`synced ${n}\n`);
    const seal = sealParams(n);
    if (seal) {
      await f.enableVerity(seal);
      stdout.write(`sealed ${n}\n`);
    }
    const old = removeTarget(n);
    if (old !== undefined && have.has(`f${old}`)) {
      await vol.remove(`f${old}`);
      have.delete(`f${old}`);
      await vol.sync();
      stdout.write(`removed ${old}\n`);
    }
  }
}

if (argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((e) => {
    process.stderr.write(`crash-child: ${e?.stack ?? e}\n`);
    process.exit(1);
  });
}
