/**
 * The dm-verity oracle: cryptsetup's `veritysetup` (Debian's
 * cryptsetup-bin), run on plain files. Tests that need it run whenever it
 * is installed; in CI (`CI` set) its absence is a failure, not a skip.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { Run } from './fsverity.js';

export const VERITYSETUP = ['/usr/sbin/veritysetup', '/sbin/veritysetup', '/usr/bin/veritysetup', '/usr/local/sbin/veritysetup'].find((p) =>
  existsSync(p),
);
export const HAVE_VERITYSETUP = VERITYSETUP !== undefined;

/** Throws when CI runs without the oracle; outside CI, says once why the live tests are skipped. */
export function requireVeritysetupInCi(): void {
  if (process.env.CI && !HAVE_VERITYSETUP) throw new Error('veritysetup (cryptsetup-bin) is not installed but CI is set: .ci/run must install it');
  if (!HAVE_VERITYSETUP) console.warn('veritysetup is not installed: the live dm-verity comparisons are skipped (apt-get install cryptsetup-bin)');
}

/** Run the real `veritysetup` with `args`. */
export function veritysetup(args: string[], cwd?: string): Run {
  const r = spawnSync(VERITYSETUP!, args, { encoding: 'utf8', cwd });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** The same, without blocking the event loop. */
export function veritysetupAsync(args: string[], cwd?: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(VERITYSETUP!, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ status: code ?? -1, stdout, stderr }));
  });
}

/** The root hash a `veritysetup format` printed. */
export function rootHashOf(stdout: string): string {
  const m = /^Root hash:\s+([0-9a-f]+)$/m.exec(stdout);
  if (!m) throw new Error(`no root hash in veritysetup's output:\n${stdout}`);
  return m[1]!;
}

/** veritysetup's options for a parameter set. */
export interface VeritysetupCase {
  hash: 'sha256' | 'sha512' | 'sha1';
  dataBlockSize: number;
  hashBlockSize: number;
  format: 0 | 1;
  salt: string; // hex, or '-' for none
  superblock: boolean;
  hashOffset: number;
  dataBlocks?: number;
}

export const FIXED_UUID = '0b3f6c2a-58d4-4e7c-9a61-2f0d8e5b7c13';

/** The command-line options of a case (with the fixed UUID when it has a superblock). */
export function veritysetupOptions(c: VeritysetupCase): string[] {
  const a = [
    `--hash=${c.hash}`,
    `--data-block-size=${c.dataBlockSize}`,
    `--hash-block-size=${c.hashBlockSize}`,
    `--format=${c.format}`,
    `--salt=${c.salt}`,
    `--hash-offset=${c.hashOffset}`,
  ];
  if (c.dataBlocks !== undefined) a.push(`--data-blocks=${c.dataBlocks}`);
  if (c.superblock) a.push(`--uuid=${FIXED_UUID}`);
  else a.push('--no-superblock');
  return a;
}

/** The library options of the same case. */
export function libraryOptions(c: VeritysetupCase) {
  return {
    hashAlgorithm: c.hash,
    dataBlockSize: c.dataBlockSize,
    hashBlockSize: c.hashBlockSize,
    format: c.format,
    salt: c.salt === '-' ? new Uint8Array(0) : Uint8Array.from(Buffer.from(c.salt, 'hex')),
    superblock: c.superblock,
    uuid: c.superblock ? FIXED_UUID : undefined,
    hashOffset: c.hashOffset,
    dataBlocks: c.dataBlocks,
  };
}
