/**
 * fs-verity built-in signatures: `signFsverityDigest` gives `fsverity
 * sign`'s very bytes for RSA keys (golden fixtures and a live matrix), its
 * ECDSA signatures are accepted by `openssl cms -verify`, and
 * `verifyFsveritySignature` accepts what fsverity-utils and OpenSSL make
 * and refuses every tampered, untrusted, expired or malformed one.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IomapVerityError } from '../../src/errors.js';
import { fsverityDigest } from '../../src/verity/digest.js';
import type { HashAlgorithmName } from '../../src/verity/hash-algs.js';
import { formatSignedDigest, signFsverityDigest, verifyFsveritySignature } from '../../src/verity/signature.js';
import { generate, type InputSpec } from '../fixtures/generate.mjs';
import { fsverity, requireOracleInCi } from '../helpers/fsverity.js';
import { describeWithTool } from '../helpers/tools.js';
import { cmsVerify, encryptKey, makeKeyPair, openssl, requireOpensslInCi, type KeyPair } from '../helpers/openssl.js';

const SOAK = process.env.IOMAP_VERITY_SOAK === '1';
const FIXTURES = new URL('../fixtures/signatures/', import.meta.url).pathname;
const fixture = (name: string) => readFileSync(join(FIXTURES, name), 'latin1');

interface GoldenSig {
  key: string;
  alg: HashAlgorithmName;
  blockSize: number;
  salt: string;
  input: InputSpec;
  digest: string;
  signature: string;
}
const golden = JSON.parse(readFileSync(join(FIXTURES, 'golden.json'), 'utf8')) as { oracle: string; cases: GoldenSig[] };

async function rejects(p: Promise<unknown>, code: string, message?: RegExp): Promise<IomapVerityError> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e, 'expected a rejection').toBeInstanceOf(IomapVerityError);
  expect((e as IomapVerityError).code, (e as Error).message).toBe(code);
  if (message) expect((e as Error).message).toMatch(message);
  return e as IomapVerityError;
}

describe(`golden signatures from ${golden.oracle}`, () => {
  it('cover RSA 2048/3072/4096, both hashes, two block sizes, three salts, empty, one-block and multi-level files', () => {
    expect(new Set(golden.cases.map((c) => c.key))).toEqual(new Set(['rsa2048', 'rsa3072', 'rsa4096']));
    expect(new Set(golden.cases.map((c) => c.alg))).toEqual(new Set(['sha256', 'sha512']));
    expect(new Set(golden.cases.map((c) => c.salt.length / 2))).toEqual(new Set([0, 1, 32]));
    expect(golden.cases.some((c) => c.input.size === 0)).toBe(true);
    expect(golden.cases.some((c) => c.input.size === c.blockSize)).toBe(true);
    expect(golden.cases.some((c) => c.input.size > (c.blockSize * c.blockSize) / (c.alg === 'sha256' ? 32 : 64))).toBe(true);
  });

  it.each(golden.cases.map((c) => [`${c.key} ${c.alg} bs=${c.blockSize} salt=${c.salt.length / 2}B ${c.input.size}B`, c] as const))(
    '%s: same bytes, and it verifies',
    async (_n, c) => {
      const r = await fsverityDigest(generate(c.input), { hashAlgorithm: c.alg, blockSize: c.blockSize, salt: Buffer.from(c.salt, 'hex') });
      expect(r.formatted).toBe(c.digest);
      const sig = await signFsverityDigest(r, { key: fixture(`${c.key}.key`), cert: fixture(`${c.key}.crt`) });
      expect(Buffer.from(sig).toString('hex')).toBe(c.signature);
      const who = await verifyFsveritySignature(Buffer.from(c.signature, 'hex'), c.digest, { trusted: [fixture(`${c.key}.crt`)] });
      expect(who.subject).toBe(`CN=iomap-verity test ${c.key}, O=test fixtures`);
      expect(who.hashAlgorithm).toBe(c.alg);
    },
  );
});

describe('formatSignedDigest', () => {
  it('is what `fsverity digest --for-builtin-sig` describes: "FSVerity", le16 algorithm, le16 size, digest', () => {
    const d = new Uint8Array(64).map((_, i) => i);
    const f = formatSignedDigest({ algorithm: 'sha512', digest: d });
    expect(Buffer.from(f.subarray(0, 12)).toString('hex')).toBe(Buffer.from('FSVerity').toString('hex') + '02004000');
    expect(f.subarray(12)).toEqual(d);
    expect(formatSignedDigest(`sha512:${Buffer.from(d).toString('hex')}`)).toEqual(f);
  });
  it('refuses what is not an fs-verity digest', () => {
    expect(() => formatSignedDigest('sha256:abcd')).toThrow(/32 bytes/);
    expect(() => formatSignedDigest('md5:' + '00'.repeat(16))).toThrow(/unknown/);
    expect(() => formatSignedDigest('nonsense')).toThrow(/not an fs-verity digest/);
  });
});

describeWithTool('openssl', 'keys and certificates made by openssl', () => {
  let dir: string;
  const pairs: Record<string, KeyPair> = {};
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'iomap-verity-sig-'));
    pairs.rsa2048 = makeKeyPair(dir, 'rsa2048', { type: 'rsa', bits: 2048 });
    pairs.rsa3072 = makeKeyPair(dir, 'rsa3072', { type: 'rsa', bits: 3072 }, { format: 'traditional' });
    pairs.rsa4096 = makeKeyPair(dir, 'rsa4096', { type: 'rsa', bits: 4096 });
    pairs.p256 = makeKeyPair(dir, 'p256', { type: 'ec', curve: 'P-256' });
    pairs.p384 = makeKeyPair(dir, 'p384', { type: 'ec', curve: 'P-384' }, { format: 'traditional' });
    pairs.p256sec1 = makeKeyPair(dir, 'p256sec1', { type: 'ec', curve: 'P-256' }, { format: 'traditional' });
    pairs.short = makeKeyPair(dir, 'short', { type: 'rsa', bits: 2048 }, { days: 1 });
  }, 60_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('are in the formats asked for', () => {
    expect(pairs.rsa2048!.key).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(pairs.rsa3072!.key).toMatch(/^-----BEGIN RSA PRIVATE KEY-----/);
    expect(pairs.p384!.key).toMatch(/^-----BEGIN EC PRIVATE KEY-----/);
  });

  describeWithTool('fsverity', 'live against fsverity sign', () => {
    // The whole matrix under IOMAP_VERITY_SOAK; by default every key and
    // hash with one block size, and the other axes on their own.
    const matrix: [string, HashAlgorithmName, number, string, number][] = [];
    const SALT = 'ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100';
    for (const key of ['rsa2048', 'rsa3072', 'rsa4096']) {
      for (const alg of ['sha256', 'sha512'] as const) {
        for (const bs of [1024, 4096]) {
          for (const salt of ['', SALT]) {
            for (const size of [0, bs, (bs / (alg === 'sha256' ? 32 : 64)) * bs + 7]) {
              const slice = bs === 4096 && salt === '' && size !== bs;
              const axes = key === 'rsa2048' && alg === 'sha256' && (bs === 1024 || salt !== '');
              if (SOAK || slice || axes) matrix.push([key, alg, bs, salt, size]);
            }
          }
        }
      }
    }
    it.each(matrix)('%s %s bs=%i salt=%s size=%i: byte-identical', async (key, alg, bs, salt, size) => {
      const p = pairs[key]!;
      const f = join(dir, `in-${key}-${alg}-${bs}-${salt.length}-${size}`);
      const data = generate({ pattern: 'random', size, seed: size + bs });
      writeFileSync(f, data);
      const run = fsverity(['sign', f, `${f}.sig`, `--key=${p.keyPath}`, `--cert=${p.certPath}`, `--hash-alg=${alg}`, `--block-size=${bs}`, `--salt=${salt}`]);
      expect(run.status, run.stderr).toBe(0);
      const r = await fsverityDigest(data, { hashAlgorithm: alg, blockSize: bs, salt: Buffer.from(salt, 'hex') });
      expect(run.stdout).toBe(`Signed file '${f}' (${r.formatted})\n`);
      const sig = await signFsverityDigest(r, { key: p.key, cert: p.cert });
      expect(Buffer.from(sig).equals(readFileSync(`${f}.sig`))).toBe(true);
      await verifyFsveritySignature(sig, r.formatted, { trusted: [p.cert] });
    });

    it.each(['p256', 'p384', 'p256sec1'])('%s: fsverity sign makes ECDSA signatures we accept', async (key) => {
      const p = pairs[key]!;
      const f = join(dir, `ec-${key}`);
      writeFileSync(f, generate({ pattern: 'random', size: 12345, seed: 5 }));
      for (const alg of ['sha256', 'sha512'] as const) {
        const run = fsverity(['sign', f, `${f}.sig`, `--key=${p.keyPath}`, `--cert=${p.certPath}`, `--hash-alg=${alg}`]);
        expect(run.status, run.stderr).toBe(0);
        const digest = /\((\S+)\)/.exec(run.stdout)![1]!;
        const who = await verifyFsveritySignature(readFileSync(`${f}.sig`), digest, { trusted: [pairs.rsa2048!.cert, p.cert] });
        expect(who.index).toBe(1);
      }
    });
  });

  it.each(['p256', 'p384', 'p256sec1'])('%s: our ECDSA signatures pass openssl cms -verify, and ours', async (key) => {
    const p = pairs[key]!;
    for (const alg of ['sha256', 'sha512'] as const) {
      const r = await fsverityDigest(generate({ pattern: 'random', size: 9000, seed: 11 }), { hashAlgorithm: alg });
      const sig = await signFsverityDigest(r, { key: p.key, cert: p.cert });
      const sigPath = join(dir, `${key}-${alg}.sig`);
      const content = join(dir, `${key}-${alg}.content`);
      writeFileSync(sigPath, sig);
      writeFileSync(content, formatSignedDigest(r));
      const v = cmsVerify(sigPath, content, p.certPath);
      expect(v.status, v.stderr).toBe(0);
      expect((await verifyFsveritySignature(sig, r, { trusted: [p.cert] })).subject).toBe(`CN=${key}`);
      // And OpenSSL refuses it for another digest, as we do.
      const other = formatSignedDigest({ algorithm: alg, digest: r.digest.map((b, i) => (i === 0 ? b ^ 1 : b)) });
      writeFileSync(content, other);
      expect(cmsVerify(sigPath, content, p.certPath).status).not.toBe(0);
    }
  });

  it('our RSA signatures pass openssl cms -verify', async () => {
    const p = pairs.rsa3072!;
    const r = await fsverityDigest(generate({ pattern: 'random', size: 5000, seed: 3 }), { hashAlgorithm: 'sha512' });
    writeFileSync(join(dir, 'rsa.sig'), await signFsverityDigest(r, { key: p.key, cert: p.cert }));
    writeFileSync(join(dir, 'rsa.content'), formatSignedDigest(r));
    const v = cmsVerify(join(dir, 'rsa.sig'), join(dir, 'rsa.content'), p.certPath);
    expect(v.status, v.stderr).toBe(0);
  });

  it('accepts signatures with signed attributes (openssl cms -sign), checking their message digest', async () => {
    for (const key of ['rsa2048', 'p256']) {
      const p = pairs[key]!;
      const r = await fsverityDigest(generate({ pattern: 'random', size: 777, seed: 9 }));
      const content = join(dir, `attrs-${key}.content`);
      writeFileSync(content, formatSignedDigest(r));
      const s = openssl(['cms', '-sign', '-binary', '-nocerts', '-outform', 'DER', '-md', 'sha256', '-in', content, '-signer', p.certPath, '-inkey', p.keyPath, '-out', `${content}.sig`]);
      expect(s.status, s.stderr).toBe(0);
      const sig = readFileSync(`${content}.sig`);
      expect((await verifyFsveritySignature(sig, r, { trusted: [p.cert] })).subject).toBe(`CN=${key}`);
      const other = { algorithm: r.algorithm, digest: r.digest.map((b, i) => (i === 31 ? b ^ 0x80 : b)) };
      await rejects(verifyFsveritySignature(sig, other, { trusted: [p.cert] }), 'EKEYREJECTED', /another file digest/);
    }
  });

  describe('refusals', () => {
    let r: Awaited<ReturnType<typeof fsverityDigest>>;
    let sig: Uint8Array;
    beforeAll(async () => {
      r = await fsverityDigest(generate({ pattern: 'random', size: 50_000, seed: 21 }));
      sig = await signFsverityDigest(r, { key: pairs.rsa2048!.key, cert: pairs.rsa2048!.cert });
    });

    it('every flipped bit of the message is refused', async () => {
      // One bit in each byte, in turn: the signature value, the issuer and
      // serial, the algorithm identifiers, lengths and tags.
      // By default the whole message but the RSA signature value, of which
      // its first and last bytes (any change there is caught the same way).
      const accepted: number[] = [];
      const value = sig.length - 256;
      for (let i = 0; i < sig.length; i++) {
        if (!SOAK && i >= value + 4 && i < sig.length - 4) continue;
        const bad = Uint8Array.from(sig);
        bad[i]! ^= 1 << (i % 8);
        const e = await verifyFsveritySignature(bad, r, { trusted: [pairs.rsa2048!.cert] }).then(
          () => undefined,
          (x: unknown) => x,
        );
        if (e === undefined) accepted.push(i);
        else expect(['EBADMSG', 'EKEYREJECTED']).toContain((e as IomapVerityError).code);
      }
      // The one flip that is no tampering: SignedData version 1 to 3, the
      // CMS version, which the kernel accepts as well (nothing signed
      // changes). Byte 25: SEQUENCE, OID, [0], SEQUENCE headers, INTEGER.
      expect(sig[25]).toBe(1);
      expect(accepted).toEqual([25]);
    }, 60_000);

    it('every flipped bit of an ECDSA message is refused', async () => {
      const p = pairs.p256!;
      const ec = await signFsverityDigest(r, { key: p.key, cert: p.cert });
      const accepted: number[] = [];
      for (let i = 0; i < ec.length; i++) {
        const bad = Uint8Array.from(ec);
        bad[i]! ^= 1 << (i % 8);
        const e = await verifyFsveritySignature(bad, r, { trusted: [p.cert] }).then(
          () => undefined,
          (x: unknown) => x,
        );
        if (e === undefined) accepted.push(i);
        else expect(['EBADMSG', 'EKEYREJECTED']).toContain((e as IomapVerityError).code);
      }
      // At most the SignedData version, 1 turned into 3 (see above).
      expect(accepted.length).toBeLessThanOrEqual(1);
      for (const i of accepted) expect([ec[i], ec[i]! ^ (1 << (i % 8))]).toEqual([1, 3]);
    }, 60_000);

    it('a flipped bit of the digest is refused', async () => {
      for (const i of [0, 13, 31]) {
        const d = { algorithm: r.algorithm, digest: r.digest.map((b, j) => (j === i ? b ^ (1 << (i % 8)) : b)) };
        await rejects(verifyFsveritySignature(sig, d, { trusted: [pairs.rsa2048!.cert] }), 'EKEYREJECTED', /another file digest/);
      }
      await rejects(verifyFsveritySignature(sig, { algorithm: 'sha512', digest: new Uint8Array(64) }, { trusted: [pairs.rsa2048!.cert] }), 'EKEYREJECTED');
    });

    it('a flipped bit of the trusted certificate is refused', async () => {
      const der = Buffer.from(pairs.rsa2048!.cert.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64');
      let refused = 0;
      for (let i = 0; i < der.length; i += 7) {
        const bad = Buffer.from(der);
        bad[i]! ^= 0x10;
        const pem = `-----BEGIN CERTIFICATE-----\n${bad.toString('base64')}\n-----END CERTIFICATE-----\n`;
        const e = await verifyFsveritySignature(sig, r, { trusted: [pem] }).then(
          () => undefined,
          (x: unknown) => x,
        );
        // A flip in the certificate's own signature or in an extension other
        // than the key identifier changes nothing the verifier relies on (the
        // kernel trusts the keyring's key, not the certificate's signature),
        // so those may pass; a changed name, serial, key or validity must not.
        if (e) {
          expect(e).toBeInstanceOf(IomapVerityError);
          expect(['EBADMSG', 'EKEYREJECTED']).toContain((e as IomapVerityError).code);
          refused++;
        }
      }
      expect(refused).toBeGreaterThan(der.length / 7 / 2);
    }, 60_000);

    it('signed by a certificate that is not trusted: EKEYREJECTED naming the signer', async () => {
      await rejects(verifyFsveritySignature(sig, r, { trusted: [pairs.rsa3072!.cert, pairs.p256!.cert] }), 'EKEYREJECTED', /not trusted.*CN=rsa2048/);
      await rejects(verifyFsveritySignature(sig, r, { trusted: [] }), 'EKEYREJECTED', /no trusted certificate/);
    });

    it('an expired or not yet valid certificate: EKEYREJECTED, unless time: false', async () => {
      const p = pairs.short!;
      const s = await signFsverityDigest(r, { key: p.key, cert: p.cert });
      const later = new Date(Date.now() + 3 * 86400_000);
      await rejects(verifyFsveritySignature(s, r, { trusted: [p.cert], time: later }), 'EKEYREJECTED', /expired on/);
      await rejects(verifyFsveritySignature(s, r, { trusted: [p.cert], time: new Date(Date.now() - 86400_000) }), 'EKEYREJECTED', /not valid before/);
      await verifyFsveritySignature(s, r, { trusted: [p.cert], time: false });
      await verifyFsveritySignature(s, r, { trusted: [p.cert] });
    });

    it('malformed messages: EBADMSG saying why', async () => {
      const trusted = [pairs.rsa2048!.cert];
      await rejects(verifyFsveritySignature(new Uint8Array(0), r, { trusted }), 'EBADMSG', /empty/);
      await rejects(verifyFsveritySignature(sig.subarray(0, sig.length - 1), r, { trusted }), 'EBADMSG');
      await rejects(verifyFsveritySignature(new Uint8Array([...sig, 0]), r, { trusted }), 'EBADMSG', /after its end/);
      await rejects(verifyFsveritySignature(new TextEncoder().encode('hello'), r, { trusted }), 'EBADMSG');
    });

    it('signing refuses encrypted keys, keys of another certificate, and what is not PEM', async () => {
      for (const format of ['pkcs8', 'traditional'] as const) {
        const enc = encryptKey(pairs.rsa2048!.keyPath, join(dir, `enc-${format}.pem`), 'secret', format);
        await rejects(signFsverityDigest(r, { key: enc, cert: pairs.rsa2048!.cert }), 'EOPNOTSUPP', /encrypted.*openssl pkey/);
      }
      await rejects(signFsverityDigest(r, { key: pairs.rsa2048!.key, cert: pairs.rsa3072!.cert }), 'EKEYREJECTED', /does not match the certificate/);
      await rejects(signFsverityDigest(r, { key: pairs.p256!.key, cert: pairs.rsa2048!.cert }), 'EKEYREJECTED', /does not match/);
      await rejects(signFsverityDigest(r, { key: pairs.rsa2048!.cert, cert: pairs.rsa2048!.cert }), 'EBADMSG', /no private key/);
      await rejects(signFsverityDigest(r, { key: pairs.rsa2048!.key, cert: pairs.rsa2048!.key }), 'EBADMSG', /CERTIFICATE/);
      await rejects(signFsverityDigest(r, { key: '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n', cert: pairs.rsa2048!.cert }), 'EBADMSG');
      await rejects(signFsverityDigest('sha256:00', { key: pairs.rsa2048!.key, cert: pairs.rsa2048!.cert }), 'EINVAL');
    });

    it('a key and its certificate in one PEM text, as `fsverity sign --key` alone takes them', async () => {
      const both = pairs.rsa2048!.key + pairs.rsa2048!.cert;
      expect(await signFsverityDigest(r, { key: both, cert: both })).toEqual(sig);
      expect(await signFsverityDigest(r, { key: Buffer.from(both), cert: Buffer.from(both) })).toEqual(sig);
    });
  });
});

it('has openssl and fsverity when CI is set', () => {
  requireOpensslInCi();
  requireOracleInCi();
});
