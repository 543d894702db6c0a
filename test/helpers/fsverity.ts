/**
 * The oracle: fsverity-utils' `fsverity` binary, found through tools.ts (so
 * `IOMAP_VERITY_HIDE_TOOLS=fsverity` hides it). Live tests run whenever it
 * is installed; outside CI they skip without it (the summary says what to
 * install); in CI (`CI` set) its absence is a failure, not a skip.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { IN_CI, requireTool, requireToolInCi, tool } from './tools.js';

export { IN_CI };
export const FSVERITY = tool('fsverity');
export const HAVE_FSVERITY = FSVERITY !== undefined;

/** Throws when CI runs without the oracle, so live tests cannot silently vanish. */
export function requireOracleInCi(): void {
  requireToolInCi('fsverity');
}

export interface Run {
  status: number;
  stdout: string;
  stderr: string;
}

/** Run the real `fsverity` with `args`; throws (saying what to install) when it is missing. */
export function fsverity(args: string[], cwd?: string): Run {
  const r = spawnSync(requireTool('fsverity'), args, { encoding: 'utf8', cwd, maxBuffer: 1 << 30 });
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

/** The options of `fsverity digest` for a hash algorithm, Merkle block size and salt. */
export function digestArgs(file: string, p: { hashAlgorithm: string; blockSize: number; salt?: Uint8Array }): string[] {
  const args = ['digest', file, `--hash-alg=${p.hashAlgorithm}`, `--block-size=${p.blockSize}`];
  if (p.salt?.length) args.push(`--salt=${Buffer.from(p.salt).toString('hex')}`);
  return args;
}

/** `fsverity digest FILE ...` with the tree and descriptor written beside FILE and read back. */
export function fsverityDigestOf(
  file: string,
  p: { hashAlgorithm: string; blockSize: number; salt?: Uint8Array },
): { digest: string; tree: Uint8Array; descriptor: Uint8Array } {
  const r = fsverity([...digestArgs(file, p), `--out-merkle-tree=${file}.tree`, `--out-descriptor=${file}.desc`]);
  if (r.status !== 0) throw new Error(`fsverity digest failed (${r.status}): ${r.stderr}`);
  return { digest: r.stdout.split(' ')[0]!, tree: readFileSync(`${file}.tree`), descriptor: readFileSync(`${file}.desc`) };
}
