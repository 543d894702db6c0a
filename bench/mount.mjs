// B9's pieces: an `iomap-verity mount` child process (started, waited for,
// ended with fusermount -u) and fio's 4 KiB random-read rate, for
// bench/run.mjs. Programs run over the mount only as child processes.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';

export const FUSERMOUNT = ['/usr/bin/fusermount', '/bin/fusermount'].find((p) => existsSync(p));
export const FIO = ['/usr/bin/fio'].find((p) => existsSync(p));
export const DD = ['/usr/bin/dd', '/bin/dd'].find((p) => existsSync(p));
export const CMP = ['/usr/bin/cmp'].find((p) => existsSync(p));

function runProgram(cmd, args) {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    c.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    c.on('error', reject);
    c.on('close', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${stderr.trim()}`))));
  });
}

/** `cmp A B`, rejecting when they differ: the check before a figure counts. */
export function sameBytes(a, b) {
  return runProgram(CMP, [a, b]);
}

/** Start `node CLI mount IMG DIR ...args`; resolves with a stop() once the mount is up. */
export function startMount(node, cli, img, dir, args = []) {
  const child = spawn(node, [cli, 'mount', img, dir, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d) => (err += d));
  const exited = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  return new Promise((resolve, reject) => {
    const poll = setInterval(() => {
      if (!out.includes('mounted ')) return;
      clearInterval(poll);
      resolve({
        async stop() {
          await runProgram(FUSERMOUNT, ['-u', dir]);
          const e = await exited;
          if (e.code !== 0) throw new Error(`mount exited ${e.code ?? e.signal}: ${err.trim()}`);
        },
        kill() {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
          return runProgram(FUSERMOUNT, ['-u', '-z', dir]).catch(() => undefined);
        },
      });
    }, 20);
    exited.then((e) => {
      clearInterval(poll);
      reject(new Error(`mount exited (${e.code ?? e.signal}) before it was up: ${err.trim()}`));
    });
  });
}

/** fio 4 KiB random reads of `file` (psync, one job) for `seconds`: reads per second. */
export async function fioRandomReads(file, size, seconds) {
  const out = await runProgram(FIO, [
    '--name=b9',
    `--filename=${file}`,
    `--size=${size}`,
    '--rw=randread',
    '--bs=4k',
    '--ioengine=psync',
    '--time_based',
    `--runtime=${seconds}`,
    '--invalidate=0',
    '--output-format=json',
  ]);
  const job = JSON.parse(out.slice(out.indexOf('{'))).jobs[0];
  if (job.error !== 0) throw new Error(`fio reported error ${job.error}`);
  return job.read.iops;
}
