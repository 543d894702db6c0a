/**
 * `iomap-verity sign` against `fsverity sign`: the same command lines give
 * the same stdout, exit status and signature file (RSA), and the same tree
 * and descriptor files; errors go to stderr with the exit status
 * fsverity-utils gives. Runs the built CLI (dist/): `npm test` builds it first.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { fillRandom } from '../fixtures/generate.mjs';
import { fsverity, requireOracleInCi, type Run } from '../helpers/fsverity.js';
import { describeWithTool } from '../helpers/tools.js';
import { cmsVerify, encryptKey, makeKeyPair, requireOpensslInCi, type KeyPair } from '../helpers/openssl.js';

const BIN = new URL('../../dist/src/cli/main.js', import.meta.url).pathname;

function ours(args: string[], cwd: string): Run {
  const r = spawnSync(process.execPath, [BIN, 'sign', ...args], { encoding: 'utf8', cwd });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

describeWithTool('fsverity', 'iomap-verity sign', () => describeWithTool('openssl', 'agrees with fsverity sign', () => {
  const dir = mkdtempSync(join(tmpdir(), 'iomap-verity-sign-'));
  let rsa: KeyPair;
  let ec: KeyPair;
  let rsa1: KeyPair;
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  beforeAll(() => {
    if (!existsSync(BIN)) throw new Error(`${BIN} is missing: run \`npm run build\` first`);
    rsa = makeKeyPair(dir, 'rsa', { type: 'rsa', bits: 2048 });
    rsa1 = makeKeyPair(dir, 'rsa1', { type: 'rsa', bits: 3072 }, { format: 'traditional' });
    ec = makeKeyPair(dir, 'ec', { type: 'ec', curve: 'P-256' }, { format: 'traditional' });
    writeFileSync(join(dir, 'both.pem'), rsa.key + rsa.cert);
    encryptKey(rsa.keyPath, join(dir, 'enc.pem'), 'pw');
    writeFileSync(join(dir, 'f'), fillRandom(new Uint8Array(300_001), 3));
    writeFileSync(join(dir, 'empty'), new Uint8Array(0));
  }, 60_000);

  const SALT = '0011223344556677';
  /** [name, args before the files]: both tools must write the same bytes. */
  const SAME: [string, string[], string][] = [
    ['defaults', ['--key=rsa.key', '--cert=rsa.crt'], 'f'],
    ['PKCS#1 key, sha512, 1 KiB blocks, a salt', ['--key=rsa1.key', '--cert=rsa1.crt', '--hash-alg=sha512', '--block-size=1024', `--salt=${SALT}`], 'f'],
    ['the certificate in the key file', ['--key=both.pem'], 'f'],
    ['an empty file', ['--key', 'rsa.key', '--cert', 'rsa.crt'], 'empty'],
    ['abbreviated options', ['--ke=rsa.key', '--ce=rsa.crt', '--hash=sha256'], 'f'],
  ];
  it.each(SAME)('%s', (_n, opts, file) => {
    const a = fsverity(['sign', file, 'theirs.sig', ...opts, '--out-merkle-tree=theirs.tree', '--out-descriptor=theirs.desc'], dir);
    const b = ours([file, 'ours.sig', ...opts, '--out-merkle-tree=ours.tree', '--out-descriptor=ours.desc'], dir);
    expect(a.status, a.stderr).toBe(0);
    expect(b.status, b.stderr).toBe(0);
    expect(b.stdout).toBe(a.stdout);
    expect(b.stderr).toBe('');
    for (const ext of ['sig', 'tree', 'desc']) {
      expect(readFileSync(join(dir, `ours.${ext}`)).equals(readFileSync(join(dir, `theirs.${ext}`))), ext).toBe(true);
    }
  });

  it('ECDSA: a signature openssl cms -verify accepts, and the same output line', () => {
    const a = fsverity(['sign', 'f', 'theirs.sig', '--key=ec.key', '--cert=ec.crt'], dir);
    const b = ours(['f', 'ours.sig', '--key=ec.key', '--cert=ec.crt'], dir);
    expect(b.status, b.stderr).toBe(0);
    expect(b.stdout).toBe(a.stdout);
    const d = spawnSync(process.execPath, [BIN, 'digest', 'f', '--for-builtin-sig', '--compact'], { cwd: dir, encoding: 'utf8' });
    writeFileSync(join(dir, 'content'), Buffer.from(d.stdout.trim(), 'hex'));
    const v = cmsVerify(join(dir, 'ours.sig'), join(dir, 'content'), ec.certPath);
    expect(v.status, v.stderr).toBe(0);
  });

  /** [name, args]: the same exit status, and stderr that says something. */
  const ERRORS: [string, string[], RegExp][] = [
    ['no operands', ['--key=rsa.key'], /Usage:/],
    ['one operand', ['f', '--key=rsa.key'], /Usage:/],
    ['no key', ['f', 'x.sig'], /no private key specified/],
    ['no such file', ['nofile', 'x.sig', '--key=rsa.key', '--cert=rsa.crt'], /can't open 'nofile' for reading/],
    ['no such key file', ['f', 'x.sig', '--key=nokey', '--cert=rsa.crt'], /can't open 'nokey' for reading/],
    ['no certificate in the key file', ['f', 'x.sig', '--key=rsa.key'], /certificate/],
    ['a key of another certificate', ['f', 'x.sig', '--key=rsa.key', '--cert=ec.crt'], /does not match the certificate/],
    ['a block size not a power of 2', ['f', 'x.sig', '--key=rsa.key', '--block-size=3000'], /Invalid block size/],
    ['an unknown hash', ['f', 'x.sig', '--key=rsa.key', '--hash-alg=md5'], /unknown hash algorithm/],
    ['a bad salt', ['f', 'x.sig', '--key=rsa.key', '--salt=xyz'], /salt is not a valid hex string/],
    ['--key twice', ['f', 'x.sig', '--key=rsa.key', '--key=rsa.key'], /--key can only be specified once/],
    ['an unwritable signature file', ['f', join(dir, 'nodir', 'x.sig'), '--key=rsa.key', '--cert=rsa.crt'], /can't open .* for writing/],
  ];
  it.each(ERRORS)('%s', (_n, args, words) => {
    const a = fsverity(['sign', ...args], dir);
    const b = ours(args, dir);
    expect(b.status, b.stderr).toBe(a.status);
    expect(a.status).not.toBe(0);
    expect(b.stdout).toBe('');
    expect(b.stderr).toMatch(words);
  });

  it('refuses PKCS#11 tokens with EOPNOTSUPP, and encrypted keys with a way out', () => {
    const p = ours(['f', 'x.sig', '--pkcs11-engine=/x.so', '--pkcs11-module=/y.so', '--pkcs11-keyid=1'], dir);
    expect(p.status).toBe(1);
    expect(p.stderr).toMatch(/PKCS#11 tokens are not supported \(EOPNOTSUPP\)/);
    const e = ours(['f', 'x.sig', '--key=enc.pem', '--cert=rsa.crt'], dir);
    expect(e.status).toBe(1);
    expect(e.stderr).toMatch(/encrypted.*openssl pkey.*\(EOPNOTSUPP\)\nERROR: failed to sign digest\n$/s);
  });

  it('enable --signature stores what sign wrote; dump --type=signature gives it back', () => {
    const cli = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { cwd: dir, encoding: 'utf8' });
    const sig = ours(['f', 'f.sig', '--key=rsa.key', '--cert=rsa.crt'], dir);
    expect(sig.status, sig.stderr).toBe(0);
    for (const step of [['mkfs', 'img', '--size=16M'], ['put', 'img', 'f', 'f'], ['put', 'img', 'u', 'f'], ['enable', 'img', 'f', '--signature=f.sig'], ['enable', 'img', 'u']]) {
      const r = cli(...step);
      expect(r.status, `${step.join(' ')}: ${r.stderr}`).toBe(0);
    }
    const dumped = spawnSync(process.execPath, [BIN, 'dump', 'img', 'f', '--type=signature'], { cwd: dir });
    expect(dumped.status).toBe(0);
    expect(Buffer.from(dumped.stdout).equals(readFileSync(join(dir, 'f.sig')))).toBe(true);
    const desc = spawnSync(process.execPath, [BIN, 'dump', 'img', 'f', '--type=descriptor'], { cwd: dir });
    fsverity(['digest', 'f', '--out-descriptor=f.desc'], dir);
    expect(Buffer.from(desc.stdout).equals(readFileSync(join(dir, 'f.desc')))).toBe(true);
    const none = cli('dump', 'img', 'u', '--type=signature');
    expect(none.status).toBe(1);
    expect(none.stderr).toMatch(/ENODATA/);
    const missing = cli('enable', 'img', 'u2', '--signature=nonexistent.sig');
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/nonexistent\.sig/);
  });

  it('--help prints the usage', () => {
    const h = ours(['--help'], dir);
    expect(h.status).toBe(0);
    expect(h.stdout).toMatch(/iomap-verity sign FILE OUT_SIGFILE/);
  });
}));

it('has fsverity and openssl when CI is set', () => {
  requireOracleInCi();
  requireOpensslInCi();
});
