/**
 * openVerified trusting a built-in signature instead of a bare digest: the
 * signature must verify against a trusted certificate for the digest the
 * descriptor hashes to, before anything in the descriptor is believed.
 * Keys and certificates are the committed test fixtures (made by openssl);
 * signing goes through signFsverityDigest, which the signature tests check
 * byte for byte against `fsverity sign`.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { fsverityDigest, isErrno, openVerified, signFsverityDigest } from '../../src/index.js';
import { randomBytes } from '../helpers/bytes.js';

const fixture = (name: string) => readFileSync(new URL(`../fixtures/signatures/${name}`, import.meta.url), 'utf8');
const KEY = fixture('rsa2048.key');
const CERT = fixture('rsa2048.crt');
const OTHER_CERT = fixture('rsa3072.crt');

async function sealed(size: number, seed: number) {
  const data = randomBytes(size, seed);
  const r = await fsverityDigest(data, { merkleTree: true });
  const signature = await signFsverityDigest(r.formatted, { key: KEY, cert: CERT });
  return { data, tree: r.merkleTree!, descriptor: r.descriptor, signature, formatted: r.formatted };
}

async function code(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (e) {
    return isErrno(e) ? e.code : `uncoded: ${String(e)}`;
  }
}

describe('openVerified with { signature, trusted }', () => {
  it('reads verified bytes when the signature verifies against a trusted certificate', async () => {
    const f = await sealed(300_000, 1);
    const v = await openVerified({ data: f.data, tree: f.tree, descriptor: f.descriptor }, { signature: f.signature, trusted: [OTHER_CERT, CERT] });
    expect(v.size).toBe(f.data.length);
    expect(await v.read(12_345, 70_000)).toEqual(f.data.subarray(12_345, 82_345));
    await v.close();
  });

  it('refuses a signature from an untrusted certificate, a tampered signature, and another file’s descriptor', async () => {
    const f = await sealed(50_000, 2);
    const g = await sealed(50_000, 3);
    const sources = { data: f.data, tree: f.tree, descriptor: f.descriptor };
    expect(await code(openVerified(sources, { signature: f.signature, trusted: [OTHER_CERT] }))).toBe('EKEYREJECTED');
    const flipped = f.signature.slice();
    flipped[flipped.length - 10]! ^= 1;
    expect(['EKEYREJECTED', 'EBADMSG']).toContain(await code(openVerified(sources, { signature: flipped, trusted: [CERT] })));
    // A validly signed descriptor of another file does not vouch for this one's signature.
    expect(await code(openVerified({ ...sources, descriptor: g.descriptor }, { signature: f.signature, trusted: [CERT] }))).toBe('EKEYREJECTED');
  });

  it('still refuses damaged data after the signature verified', async () => {
    const f = await sealed(40_000, 4);
    const bad = f.data.slice();
    bad[20_000]! ^= 0x80;
    const v = await openVerified({ data: bad, tree: f.tree, descriptor: f.descriptor }, { signature: f.signature, trusted: [CERT] });
    expect(await v.read(0, 4096)).toEqual(f.data.subarray(0, 4096));
    expect(await code(v.read(16_384, 8192))).toBe('EIO');
    await v.close();
  });

  it('bad trust arguments are EINVAL before anything is read', async () => {
    const f = await sealed(1000, 5);
    expect(await code(openVerified({ data: f.data, tree: f.tree, descriptor: f.descriptor }, { signature: f.signature, trusted: [] }))).toBe('EINVAL');
    expect(await code(openVerified({ data: f.data, tree: f.tree } as never, { signature: f.signature, trusted: [CERT] }))).toBe('EINVAL');
    expect(await code(openVerified({ data: f.data, tree: f.tree, descriptor: f.descriptor }, { signature: new Uint8Array(0), trusted: [CERT] }))).toBe('EBADMSG');
  });
});
