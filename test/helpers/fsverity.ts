/**
 * The oracle: fsverity-utils' `fsverity` binary. Live tests run whenever it
 * is installed; in CI (`CI` set) its absence is a failure, not a skip.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export const FSVERITY = ['/usr/bin/fsverity', '/usr/local/bin/fsverity'].find((p) => existsSync(p));
export const HAVE_FSVERITY = FSVERITY !== undefined;
export const IN_CI = Boolean(process.env.CI);

/** Throws when CI runs without the oracle, so live tests cannot silently vanish. */
export function requireOracleInCi(): void {
  if (IN_CI && !HAVE_FSVERITY) throw new Error('fsverity (fsverity-utils) is not installed but CI is set: .ci/run must install it');
}

export interface Run {
  status: number;
  stdout: string;
  stderr: string;
}

/** Run the real `fsverity` with `args`. */
export function fsverity(args: string[], cwd?: string): Run {
  const r = spawnSync(FSVERITY!, args, { encoding: 'utf8', cwd });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Run `cmd args` without blocking the event loop (for tests run concurrently). */
export function runAsync(cmd: string, args: string[], cwd?: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ status: code ?? -1, stdout, stderr }));
  });
}

/** A file with the tree and descriptor fsverity-utils wrote for it, and the digest it printed. */
export interface FsverityFiles {
  data: string;
  tree: string;
  descriptor: string;
  digest: string;
}

/**
 * `fsverity digest PATH --out-merkle-tree=PATH.tree --out-descriptor=PATH.desc`
 * plus `args` (say `--block-size=1024`): the oracle's tree, descriptor and digest.
 */
export function fsverityFiles(path: string, args: string[] = []): FsverityFiles {
  const r = fsverity(['digest', path, `--out-merkle-tree=${path}.tree`, `--out-descriptor=${path}.desc`, ...args]);
  if (r.status !== 0) throw new Error(`fsverity digest ${path} failed: ${r.stderr}`);
  return { data: path, tree: `${path}.tree`, descriptor: `${path}.desc`, digest: r.stdout.split(' ')[0]! };
}
