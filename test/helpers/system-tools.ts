/**
 * util-linux and coreutils programs the command-line safety tests need:
 * `mkfifo` and `mknod` to put odd things where an image would go (always
 * under a temporary directory the test made), `setpriv` to run a command
 * as an unprivileged user. Found through the tool switch of tools.ts: a
 * test needing one skips that part with the note when it is missing, and
 * fails in CI (`CI` set), where .ci/run installs them.
 */
import { spawn, spawnSync } from 'node:child_process';
import { requireToolInCi, tool, toolNote } from './tools.js';

export const MKFIFO = tool('mkfifo');
export const MKNOD = tool('mknod');
export const SETPRIV = tool('setpriv');
/** Only root may make a device node, and only root can drop to another user. */
export const IS_ROOT = typeof process.getuid === 'function' && process.getuid() === 0;
/** The unprivileged user the tests become (nobody). */
export const NOBODY = 65534;

/** True when `path` (the tool `name`) is there; otherwise the skip note (a failure in CI). */
export function haveTool(path: string | undefined, name: string): path is string {
  if (path !== undefined) return true;
  requireToolInCi(name);
  console.warn(`skipping the ${name} part: ${toolNote(name)}`);
  return false;
}

/** mkfifo PATH. */
export function mkfifo(path: string): void {
  const r = spawnSync(MKFIFO!, [path], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`mkfifo ${path}: ${r.stderr}`);
}

/** A character device node at PATH with the null device's numbers (1, 3): harmless if written. Root only. */
export function mknodNull(path: string): void {
  const r = spawnSync(MKNOD!, [path, 'c', '1', '3'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`mknod ${path}: ${r.stderr}`);
}

export interface AsRun {
  status: number;
  stdout: Buffer;
  stderr: string;
}

/** Run `cmd args` as user and group `uid` with no supplementary groups (setpriv). */
export function runAs(uid: number, cmd: string, args: string[], cwd?: string): Promise<AsRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(SETPRIV!, [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', cmd, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ status: code ?? -1, stdout: Buffer.concat(out), stderr }));
  });
}
