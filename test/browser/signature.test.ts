// fs-verity signatures in a real browser (Debian's Chromium, driven by
// playwright-core): the bundled package signs with WebCrypto and gives
// `fsverity sign`'s bytes for an RSA key of the golden fixtures, makes
// ECDSA signatures that Node and `openssl cms -verify` accept, verifies
// what fsverity-utils made, and refuses a tampered one.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatSignedDigest, verifyFsveritySignature } from '../../src/verity/signature.js';
import { browserBundle } from '../helpers/browser-bundle.js';
import { IN_CI } from '../helpers/fsverity.js';
import { tool } from '../helpers/tools.js';
import { cmsVerify, HAVE_OPENSSL, makeKeyPair, requireOpensslInCi } from '../helpers/openssl.js';

const CHROMIUM = tool('chromium');
const FIXTURES = new URL('../fixtures/signatures/', import.meta.url).pathname;
const golden = JSON.parse(readFileSync(join(FIXTURES, 'golden.json'), 'utf8')) as {
  cases: { key: string; alg: string; digest: string; signature: string }[];
};
const dir = mkdtempSync(join(tmpdir(), 'iomap-verity-browser-sig-'));
let server: Server | undefined;
let origin = '';

beforeAll(async () => {
  if (!CHROMIUM) return;
  const page = `<!doctype html><meta charset="utf-8"><script>${await browserBundle()}</script>`;
  server = createServer((_req, res) => {
    res.setHeader('content-type', 'text/html');
    res.end(page);
  });
  await new Promise<void>((ok) => server!.listen(0, '127.0.0.1', ok));
  const addr = server.address();
  origin = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/`;
});

afterAll(async () => {
  await new Promise<void>((ok) => (server ? server.close(() => ok()) : ok()));
  rmSync(dir, { recursive: true, force: true });
});

describe('in Chromium', () => {
  it('signs and verifies fs-verity signatures with WebCrypto', async (ctx) => {
    if (!CHROMIUM) {
      if (IN_CI) throw new Error('chromium is not installed but CI is set: .ci/run must install it');
      ctx.skip();
      return;
    }
    requireOpensslInCi();
    const rsaCase = golden.cases.find((c) => c.key === 'rsa3072' && c.alg === 'sha512')!;
    const rsa = { key: readFileSync(join(FIXTURES, 'rsa3072.key'), 'latin1'), cert: readFileSync(join(FIXTURES, 'rsa3072.crt'), 'latin1') };
    const ec = HAVE_OPENSSL ? makeKeyPair(dir, 'ec', { type: 'ec', curve: 'P-384' }, { format: 'traditional' }) : undefined;
    const ecDigest = golden.cases[0]!.digest;

    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    try {
      const page = await browser.newPage();
      await page.goto(origin);
      const got = await page.evaluate(
        async ({ rsa, rsaCase, ec, ecDigest }) => {
          type IV = {
            signFsverityDigest: (d: string, o: { key: string; cert: string }) => Promise<Uint8Array>;
            verifyFsveritySignature: (s: Uint8Array, d: string, o: { trusted: string[] }) => Promise<{ subject: string }>;
          };
          const IV = (globalThis as unknown as { IomapVerity: IV }).IomapVerity;
          const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
          const unhex = (h: string) => Uint8Array.from(h.match(/../g) ?? [], (x) => parseInt(x, 16));
          const rsaSig = hex(await IV.signFsverityDigest(rsaCase.digest, rsa));
          const theirs = unhex(rsaCase.signature);
          const subject = (await IV.verifyFsveritySignature(theirs, rsaCase.digest, { trusted: [rsa.cert] })).subject;
          theirs[theirs.length - 1]! ^= 1;
          const tampered = await IV.verifyFsveritySignature(theirs, rsaCase.digest, { trusted: [rsa.cert] }).then(
            () => 'accepted',
            (e: { code?: string }) => e.code,
          );
          const ecSig = ec ? hex(await IV.signFsverityDigest(ecDigest, ec)) : '';
          const isSecure = globalThis.isSecureContext;
          return { rsaSig, subject, tampered, ecSig, isSecure, hasProcess: typeof (globalThis as { process?: unknown }).process !== 'undefined' };
        },
        { rsa, rsaCase, ec: ec ? { key: ec.key, cert: ec.cert } : undefined, ecDigest },
      );
      expect(got.hasProcess).toBe(false);
      expect(got.rsaSig).toBe(rsaCase.signature);
      expect(got.subject).toBe('CN=iomap-verity test rsa3072, O=test fixtures');
      expect(got.tampered).toBe('EKEYREJECTED');
      if (ec) {
        const sig = Buffer.from(got.ecSig, 'hex');
        expect((await verifyFsveritySignature(sig, ecDigest, { trusted: [ec.cert] })).subject).toBe('CN=ec');
        writeFileSync(join(dir, 'ec.sig'), sig);
        writeFileSync(join(dir, 'content'), formatSignedDigest(ecDigest));
        const v = cmsVerify(join(dir, 'ec.sig'), join(dir, 'content'), ec.certPath);
        expect(v.status, v.stderr).toBe(0);
      }
    } finally {
      await browser.close();
    }
  }, 120_000);
});
