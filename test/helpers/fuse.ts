/**
 * FUSE for the mount tests: whether this machine can mount (/dev/fuse,
 * fusermount, libfuse2 and the fuse-native binding), and the real programs
 * run over a mount, each by its absolute path and always as an asynchronous
 * child process. A FUSE server answers on the Node main thread, so a
 * synchronous call into the mount from the process serving it would wait
 * for itself forever.
 *
 * Outside CI a missing piece skips the mount tests with a notice; with
 * `CI` set it is a failure (.ci/run installs libfuse2, fuse, fio and attr).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { IN_CI } from './fsverity.js';

function firstOf(...paths: string[]): string | undefined {
  return paths.find((p) => existsSync(p));
}

function bindingLoads(): string | undefined {
  try {
    createRequire(import.meta.url)('fuse-native');
    return undefined;
  } catch (e) {
    return (e as Error).message.split('\n')[0];
  }
}

export const FUSERMOUNT = firstOf('/usr/bin/fusermount', '/bin/fusermount');

/** Why mounting cannot work here, or undefined when it can. */
export const FUSE_MISSING: string | undefined = !existsSync('/dev/fuse')
  ? '/dev/fuse is missing'
  : FUSERMOUNT === undefined
    ? 'fusermount is not installed (Debian package fuse)'
    : bindingLoads();
export const HAVE_FUSE = FUSE_MISSING === undefined;

/** Throws under CI when FUSE is missing; otherwise prints the reason the mount tests are skipped, once. */
let noticed = false;
export function requireFuseInCi(): void {
  if (HAVE_FUSE) return;
  if (IN_CI) throw new Error(`FUSE is not usable (${FUSE_MISSING}) but CI is set: .ci/run must install libfuse2 and fuse, and npm ci the optional fuse-native`);
  if (!noticed) console.warn(`mount tests skipped: ${FUSE_MISSING}`);
  noticed = true;
}

/** The programs the tests run over a mount, by absolute path. */
const TOOLS: Record<string, string | undefined> = {
  cat: firstOf('/usr/bin/cat', '/bin/cat'),
  cp: firstOf('/usr/bin/cp', '/bin/cp'),
  cmp: firstOf('/usr/bin/cmp'),
  dd: firstOf('/usr/bin/dd', '/bin/dd'),
  mv: firstOf('/usr/bin/mv', '/bin/mv'),
  rm: firstOf('/usr/bin/rm', '/bin/rm'),
  mkdir: firstOf('/usr/bin/mkdir', '/bin/mkdir'),
  ln: firstOf('/usr/bin/ln', '/bin/ln'),
  ls: firstOf('/usr/bin/ls', '/bin/ls'),
  sh: firstOf('/usr/bin/sh', '/bin/sh'),
  stat: firstOf('/usr/bin/stat'),
  truncate: firstOf('/usr/bin/truncate'),
  touch: firstOf('/usr/bin/touch'),
  sha256sum: firstOf('/usr/bin/sha256sum'),
  tar: firstOf('/usr/bin/tar', '/bin/tar'),
  df: firstOf('/usr/bin/df', '/bin/df'),
  sync: firstOf('/usr/bin/sync', '/bin/sync'),
  fio: firstOf('/usr/bin/fio'),
  fsverity: firstOf('/usr/bin/fsverity', '/usr/local/bin/fsverity'),
  getfattr: firstOf('/usr/bin/getfattr'),
};
export type Tool = keyof typeof TOOLS;

/** True when `tool` is installed. */
export function haveTool(tool: Tool): boolean {
  return TOOLS[tool] !== undefined;
}

/** The absolute path of `tool`, for a shell script run over a mount. Throws when it is not installed. */
export function toolPath(tool: Tool): string {
  const p = TOOLS[tool];
  if (p === undefined) throw new Error(`${tool} is not installed`);
  return p;
}

/** Under CI a missing tool is a failure; elsewhere the caller skips. */
export function requireToolInCi(tool: Tool): void {
  if (IN_CI && !haveTool(tool)) throw new Error(`${tool} is not installed but CI is set: .ci/run must install it`);
}

export interface ToolRun {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
}

/** Run `tool args` as a child process without blocking this thread; never rejects for a non-zero exit. */
export function run(tool: Tool, args: string[], opts: { cwd?: string; timeoutMs?: number } = {}): Promise<ToolRun> {
  const path = TOOLS[tool];
  if (path === undefined) return Promise.reject(new Error(`${tool} is not installed`));
  return new Promise((resolve, reject) => {
    const child = spawn(path, args, { cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
    const out: Buffer[] = [];
    let stderr = '';
    const guard = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', (e) => {
      clearTimeout(guard);
      reject(e);
    });
    child.on('close', (status, signal) => {
      clearTimeout(guard);
      resolve({ status, signal, stdout: Buffer.concat(out), stderr });
    });
  });
}

/** `run` that throws with the program's stderr unless it exits 0. */
export async function runOk(tool: Tool, args: string[], opts: { cwd?: string; timeoutMs?: number } = {}): Promise<ToolRun> {
  const r = await run(tool, args, opts);
  if (r.status !== 0) throw new Error(`${tool} ${args.join(' ')} exited ${r.status ?? r.signal}: ${r.stderr}`);
  return r;
}

/** Whether `dir` is a FUSE mount point now (read from the mount table, not through the mount). */
export function isFuseMounted(dir: string): boolean {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[4] === dir && l.includes(' - fuse'));
}

/** `fusermount -u -z DIR` when something is mounted there: the cleanup after every mount test, even a failed one. */
export async function forceUnmount(dir: string): Promise<void> {
  if (!FUSERMOUNT || !isFuseMounted(dir)) return;
  await new Promise<void>((resolve) => {
    const c = spawn(FUSERMOUNT, ['-u', '-z', dir], { stdio: 'ignore' });
    c.on('error', () => resolve());
    c.on('close', () => resolve());
  });
}

/** `fusermount -u DIR` (not lazy), as a user ends a mount. */
export function fusermountU(dir: string): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const c = spawn(FUSERMOUNT!, ['-u', dir], { stdio: 'ignore' });
    c.on('error', reject);
    c.on('close', (code) => resolve(code));
  });
}

const BIN = new URL('../../dist/src/cli/main.js', import.meta.url).pathname;

export interface CliMount {
  child: ChildProcess;
  /** Everything it printed so far. */
  output(): { stdout: string; stderr: string };
  /** Resolves with its exit when it ends. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * `iomap-verity mount IMG DIR ...args` (the built command line) as a child
 * process; resolves once it prints that the mount is up. Rejects when it
 * exits first or takes over 20 s.
 */
export function mountWithCli(img: string, dir: string, args: string[] = []): Promise<CliMount> {
  const child = spawn(process.execPath, [BIN, 'mount', img, dir, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal }));
  });
  const m: CliMount = { child, output: () => ({ stdout, stderr }), exited };
  return new Promise((resolve, reject) => {
    const guard = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`mount did not come up in 20 s: ${stderr}`));
    }, 20_000);
    const poll = setInterval(() => {
      if (stdout.includes('mounted ')) {
        clearInterval(poll);
        clearTimeout(guard);
        resolve(m);
      }
    }, 20);
    void exited.then(({ code, signal }) => {
      clearInterval(poll);
      clearTimeout(guard);
      reject(new Error(`mount exited (${code ?? signal}) before it was up: ${stderr}`));
    });
  });
}
