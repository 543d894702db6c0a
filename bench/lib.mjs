// Helpers of bench/run.mjs: running a case in a child process with its wall
// time and peak RSS, making the input files once, and small statistics.
import { spawn } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { closeSync, existsSync, fstatSync, ftruncateSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const MiB = 1 << 20;
export const GiB = 1 << 30;

// IOMAP_VERITY_BENCH_NO_TIME=1 forces the /proc fallback (to test it where GNU time exists).
const TIME = process.env.IOMAP_VERITY_BENCH_NO_TIME ? undefined : ['/usr/bin/time'].find((p) => existsSync(p));

/**
 * Run `cmd args` and measure it: wall seconds (from spawn to exit, this
 * process's clock), peak RSS in KiB (GNU time's %M when /usr/bin/time is
 * there, else the last VmHWM read from /proc while it ran), stdout.
 * Rejects when it exits non-zero.
 */
export function measure(cmd, args, { env, timeoutMs = 30 * 60_000 } = {}) {
  return new Promise((resolve, reject) => {
    let argv = [cmd, ...args];
    let rssFile;
    if (TIME) {
      rssFile = join(mkdtempSync(join(tmpdir(), 'iomap-verity-rss-')), 'rss');
      argv = [TIME, '-f', '%M', '-o', rssFile, ...argv];
    }
    const t0 = process.hrtime.bigint();
    const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    let hwm = 0;
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    const poll = TIME
      ? undefined
      : setInterval(() => {
          try {
            const m = /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
            if (m) hwm = Math.max(hwm, Number(m[1]));
          } catch {
            // Gone already, or no /proc here: the peak stays what was seen.
          }
        }, 5);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      clearTimeout(timer);
      if (poll) clearInterval(poll);
      let maxRssKiB = hwm || undefined;
      if (rssFile) {
        try {
          const lines = readFileSync(rssFile, 'utf8').trim().split('\n');
          maxRssKiB = Number(lines[lines.length - 1]);
        } catch {
          maxRssKiB = undefined;
        }
        rmSync(join(rssFile, '..'), { recursive: true, force: true });
      }
      if (code !== 0) {
        reject(new Error(`${cmd} ${args.join(' ')} failed (${signal ?? `exit ${code}`}): ${stderr.trim().split('\n').slice(-5).join(' | ')}`));
        return;
      }
      resolve({ seconds, maxRssKiB, stdout, stderr });
    });
  });
}

/** A scratch directory for the bench's inputs: --dir, else $TMPDIR/iomap-verity-bench. */
export function benchDir(given) {
  return given ?? join(tmpdir(), 'iomap-verity-bench');
}

function sizeOk(path, size) {
  try {
    return statSync(path).size === size;
  } catch {
    return false;
  }
}

/** A file of `size` random bytes at `path`, made once and kept for later runs. */
export function ensureDenseFile(path, size) {
  if (sizeOk(path, size)) return path;
  const fd = openSync(path, 'w');
  try {
    const buf = Buffer.alloc(4 * MiB);
    for (let pos = 0; pos < size; pos += buf.length) {
      const n = Math.min(buf.length, size - pos);
      randomFillSync(buf, 0, n);
      writeSync(fd, buf, 0, n, pos);
    }
  } finally {
    closeSync(fd);
  }
  return path;
}

/**
 * A sparse file of `size` bytes holding `dataBytes` of random data in
 * `pieces` runs spread evenly over it (the rest is holes), made once. The
 * layout is returned so that an engine case can build the same file.
 */
export function ensureSparseFile(path, size, dataBytes, pieces = 16) {
  const piece = dataBytes / pieces;
  const stride = Math.floor(size / pieces / 4096) * 4096;
  const layout = Array.from({ length: pieces }, (_, i) => ({ pos: i * stride, len: piece }));
  const marker = `${path}.layout.json`;
  const want = JSON.stringify({ size, layout });
  if (sizeOk(path, size) && existsSync(marker) && readFileSync(marker, 'utf8') === want) return { path, layout };
  const fd = openSync(path, 'w');
  try {
    ftruncateSync(fd, size);
    const buf = Buffer.alloc(piece);
    for (const { pos, len } of layout) {
      randomFillSync(buf);
      writeSync(fd, buf, 0, len, pos);
    }
    if (fstatSync(fd).size !== size) throw new Error(`${path}: could not make a sparse file of ${size} bytes`);
  } finally {
    closeSync(fd);
  }
  writeSyncFile(marker, want);
  return { path, layout };
}

function writeSyncFile(path, text) {
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
}

/** The `sha256:<hex>` of `fsverity digest`-style output. */
export function digestOf(stdout) {
  const m = /^(sha\d+:[0-9a-f]+)\s/m.exec(stdout);
  if (!m) throw new Error(`no digest in output: ${JSON.stringify(stdout.slice(0, 200))}`);
  return m[1];
}

export function fmt(n, digits = 2) {
  return n === undefined || n === null || Number.isNaN(n) ? '-' : n.toFixed(digits);
}

/** Human size: 64 MiB, 1 GiB, 16 GiB. */
export function human(bytes) {
  return bytes >= GiB ? `${bytes / GiB} GiB` : `${bytes / MiB} MiB`;
}
