/**
 * Running the image commands as a user would, as separate processes, in
 * one temporary directory per test file (made here, removed by the caller
 * with `cleanup`), plus the byte patterns and checks the safety tests share.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'vitest';

export const BIN = new URL('../../dist/src/cli/main.js', import.meta.url).pathname;

export interface CliRun {
  status: number;
  stdout: Buffer;
  err: string;
}

/** A fresh directory others may traverse (the read-only case runs as another user). */
export function cliDir(prefix: string) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.chmodSync(dir, 0o755);
  const at = (name: string) => path.join(dir, name);

  /** `iomap-verity ARGS` in `dir`, without blocking the event loop; `kill()` sends SIGKILL. */
  function cli(args: string[]): Promise<CliRun> & { pid: number; kill(): void } {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const p = new Promise<CliRun>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (code, signal) => resolve({ status: code ?? (signal ? 128 : -1), stdout: Buffer.concat(out), err }));
    });
    return Object.assign(p, { pid: child.pid!, kill: () => void child.kill('SIGKILL') });
  }

  /** Files a command left behind in `dir` (its temporary names). */
  function leftovers(): string[] {
    return fs.readdirSync(dir).filter((n) => /\.(mkfs|get)-\d+-/.test(n));
  }

  /** mkfs an image and put `files` into it. */
  async function image(name: string, size = '16M', files: Record<string, Buffer> = {}): Promise<string> {
    const img = at(name);
    expect((await cli(['mkfs', img, `--size=${size}`])).status).toBe(0);
    for (const [n, data] of Object.entries(files)) {
      const src = at(`${name}.${n}.src`);
      fs.writeFileSync(src, data);
      const r = await cli(['put', img, n, src]);
      expect(r.err).toBe('');
    }
    return img;
  }

  /** `get IMG NAME` to stdout, which must succeed. */
  async function contents(img: string, name: string): Promise<Buffer> {
    const r = await cli(['get', img, name]);
    expect(r.err).toBe('');
    return r.stdout;
  }

  /** Names `ls IMG` lists. */
  async function names(img: string): Promise<string[]> {
    const r = await cli(['ls', img]);
    expect(r.err).toBe('');
    return r.stdout
      .toString()
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split('\t')[2]!);
  }

  return { dir, at, cli, leftovers, image, contents, names, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** Deterministic bytes of `len` from `seed`. */
export function pattern(len: number, seed: number): Buffer {
  const b = Buffer.alloc(len);
  let x = (seed * 2654435761 + 1) >>> 0;
  for (let i = 0; i < len; i++) {
    if ((i & 3) === 0) x = (x * 1103515245 + 12345) >>> 0;
    b[i] = (x >>> ((i & 3) * 8)) & 0xff;
  }
  return b;
}
