/**
 * The `openssl` command line: makes the keys and certificates of the
 * signature tests and checks our CMS messages with `openssl cms -verify`.
 * Tests needing it skip when it is missing, except under CI, where its
 * absence is a failure (`requireOpensslInCi`).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Run } from './fsverity.js';
import { requireToolInCi, tool } from './tools.js';

export const OPENSSL = tool('openssl');
export const HAVE_OPENSSL = OPENSSL !== undefined;

/** Throws when CI runs without openssl, so the signature tests cannot silently vanish. */
export function requireOpensslInCi(): void {
  requireToolInCi('openssl');
}

/** Run `openssl args` in `cwd`. */
export function openssl(args: string[], cwd?: string, input?: Uint8Array): Run {
  const r = spawnSync(OPENSSL!, args, { encoding: 'utf8', cwd, input });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function must(args: string[], cwd?: string): Run {
  const r = openssl(args, cwd);
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r;
}

export type KeySpec = { type: 'rsa'; bits: 2048 | 3072 | 4096 } | { type: 'ec'; curve: 'P-256' | 'P-384' };

/** Key file formats: PKCS#8 ("PRIVATE KEY"), or the traditional PKCS#1 / SEC1 ("RSA PRIVATE KEY" / "EC PRIVATE KEY"). */
export type KeyFormat = 'pkcs8' | 'traditional';

/** A key and its self-signed certificate, as files in `dir`, and their PEM text. */
export interface KeyPair {
  keyPath: string;
  certPath: string;
  key: string;
  cert: string;
}

/**
 * Make a private key of `spec` in `dir/<name>.key` (format `format`) and a
 * self-signed certificate for it valid `days` days in `dir/<name>.crt`.
 */
export function makeKeyPair(dir: string, name: string, spec: KeySpec, opts: { format?: KeyFormat; days?: number; subject?: string } = {}): KeyPair {
  const keyPath = join(dir, `${name}.key`);
  const certPath = join(dir, `${name}.crt`);
  const pkcs8 = join(dir, `${name}.pkcs8`);
  const genopts = spec.type === 'rsa' ? ['-algorithm', 'RSA', '-pkeyopt', `rsa_keygen_bits:${spec.bits}`] : ['-algorithm', 'EC', '-pkeyopt', `ec_paramgen_curve:${spec.curve}`];
  must(['genpkey', ...genopts, '-out', pkcs8]);
  // `openssl ec` writes SEC1 by default; `openssl rsa` needs -traditional for PKCS#1.
  if (opts.format === 'traditional') must(spec.type === 'rsa' ? ['rsa', '-in', pkcs8, '-traditional', '-out', keyPath] : ['ec', '-in', pkcs8, '-out', keyPath]);
  else must(['pkey', '-in', pkcs8, '-out', keyPath]);
  must(['req', '-new', '-x509', '-key', pkcs8, '-out', certPath, '-subj', opts.subject ?? `/CN=${name}`, '-days', String(opts.days ?? 3650)]);
  return { keyPath, certPath, key: readFileSync(keyPath, 'latin1'), cert: readFileSync(certPath, 'latin1') };
}

/** `openssl pkey -aes256`: the key of `keyPath` encrypted with `passphrase`, in PKCS#8 or traditional PEM. */
export function encryptKey(keyPath: string, out: string, passphrase: string, format: KeyFormat = 'pkcs8'): string {
  must(['pkey', '-in', keyPath, '-aes256', '-passout', `pass:${passphrase}`, ...(format === 'traditional' ? ['-traditional'] : []), '-out', out]);
  return readFileSync(out, 'latin1');
}

/**
 * `openssl cms -verify` of a detached DER signature over `contentPath`,
 * with `certPath` as both the signer's certificate and the trust anchor
 * (the certificates are self-signed). Status 0 when OpenSSL accepts it.
 */
export function cmsVerify(sigPath: string, contentPath: string, certPath: string): Run {
  return openssl(['cms', '-verify', '-binary', '-inform', 'DER', '-in', sigPath, '-content', contentPath, '-certfile', certPath, '-CAfile', certPath, '-purpose', 'any', '-out', '/dev/null']);
}
