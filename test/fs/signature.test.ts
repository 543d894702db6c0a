// fs-verity built-in signatures in the engine: stored after the descriptor
// at sealing, given back by readVerityMetadata('signature') as
// `fsverity dump_metadata signature` would, kept across close, reopen and
// crashes, and a volume opened with requireSignatures behaves as the
// kernel with fs.verity.require_signatures=1. The signatures are
// `fsverity sign`'s bytes for the committed RSA test keys (see
// test/verity/signature.test.ts), made here by signFsverityDigest.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  FaultyDevice,
  fsverityDigest,
  IomapVerityError,
  MemoryDevice,
  signFsverityDigest,
  Volume,
  type File,
} from '../../src/index.js';
import { generate } from '../fixtures/generate.mjs';

const FIXTURES = new URL('../fixtures/signatures/', import.meta.url).pathname;
const KEY = readFileSync(join(FIXTURES, 'rsa2048.key'), 'latin1');
const CERT = readFileSync(join(FIXTURES, 'rsa2048.crt'), 'latin1');
const OTHER_CERT = readFileSync(join(FIXTURES, 'rsa3072.crt'), 'latin1');

const DATA = generate({ pattern: 'random', size: 300_001, seed: 77 });
let SIG: Uint8Array;
let DESCRIPTOR: Uint8Array;
let DIGEST: string;
beforeAll(async () => {
  const r = await fsverityDigest(DATA);
  SIG = await signFsverityDigest(r, { key: KEY, cert: CERT });
  DESCRIPTOR = r.descriptor;
  DIGEST = r.formatted;
});

async function code(p: Promise<unknown>): Promise<string> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  if (!(e instanceof IomapVerityError)) throw new Error(`expected an IomapVerityError, got ${String(e)}`);
  return e.code;
}

async function sealed(vol: Volume, name: string, data: Uint8Array, signature?: Uint8Array): Promise<File> {
  const f = await vol.create(name);
  await f.write(0, data);
  await f.enableVerity({ signature });
  return f;
}

describe('a signature stored with the seal', () => {
  it('reads back as stored; the descriptor and digest are those of an unsigned seal', async () => {
    const dev = new MemoryDevice({ blockSize: 4096, size: 32 << 20 });
    let vol = await Volume.format(dev);
    const f = await sealed(vol, 'signed', DATA, SIG);
    expect(await f.readVerityMetadata('signature', 0, 1 << 20)).toEqual(SIG);
    expect(await f.readVerityMetadata('signature', 10, 20)).toEqual(SIG.subarray(10, 30));
    expect(await f.readVerityMetadata('signature', SIG.length, 10)).toEqual(new Uint8Array(0));
    expect(await f.readVerityMetadata('descriptor', 0, 1 << 20)).toEqual(DESCRIPTOR);
    expect((await f.measureVerity()).formatted).toBe(DIGEST);
    expect(await f.read(0, DATA.length)).toEqual(DATA);
    const u = await sealed(vol, 'unsigned', DATA);
    expect(await code(u.readVerityMetadata('signature', 0, 100))).toBe('ENODATA');
    await vol.close();

    vol = await Volume.open(dev);
    const again = await vol.open('signed');
    expect(again.isVerity).toBe(true);
    expect(await again.readVerityMetadata('signature', 0, 1 << 20)).toEqual(SIG);
    expect((await again.measureVerity()).formatted).toBe(DIGEST);
    expect(await again.read(0, DATA.length)).toEqual(DATA);
    await vol.close();
  });

  it('refuses a signature that is not bytes, or too large for a descriptor', async () => {
    const vol = await Volume.format(new MemoryDevice({ blockSize: 4096, size: 16 << 20 }));
    const f = await vol.create('f');
    await f.write(0, DATA.subarray(0, 5000));
    expect(await code(f.enableVerity({ signature: 'abc' as unknown as Uint8Array }))).toBe('EINVAL');
    expect(await code(f.enableVerity({ signature: new Uint8Array(16129) }))).toBe('EMSGSIZE');
    expect(f.isVerity).toBe(false);
    await f.write(0, new Uint8Array([1])); // still writable
    await f.enableVerity({ signature: new Uint8Array(16128).fill(7) }); // the largest the kernel takes: stored, not checked
    expect((await f.readVerityMetadata('signature', 0, 1 << 20)).length).toBe(16128);
    await vol.close();
  });
});

describe('requireSignatures with trusted certificates', () => {
  it('needs trusted certificates', async () => {
    const dev = new MemoryDevice({ blockSize: 4096, size: 16 << 20 });
    expect(await code(Volume.format(dev, { requireSignatures: true }))).toBe('EINVAL');
    expect(await code(Volume.format(dev, { trusted: 'x' as unknown as string[] }))).toBe('EINVAL');
  });

  it('seals only with a signature that verifies, and leaves the file as it was otherwise', async () => {
    const vol = await Volume.format(new MemoryDevice({ blockSize: 4096, size: 32 << 20 }), { requireSignatures: true, trusted: [CERT] });
    const f = await vol.create('f');
    await f.write(0, DATA);
    expect(await code(f.enableVerity())).toBe('EPERM');
    expect(f.isVerity).toBe(false);
    // A signature of other bytes.
    const other = await signFsverityDigest(await fsverityDigest(DATA.subarray(1)), { key: KEY, cert: CERT });
    expect(await code(f.enableVerity({ signature: other }))).toBe('EKEYREJECTED');
    expect(await code(f.enableVerity({ signature: SIG.subarray(0, 100) }))).toBe('EBADMSG');
    expect(f.isVerity).toBe(false);
    await f.write(DATA.length, new Uint8Array(0)); // still writable
    // Other parameters make another digest: the same signature no longer fits.
    expect(await code(f.enableVerity({ signature: SIG, blockSize: 1024 }))).toBe('EKEYREJECTED');
    await f.enableVerity({ signature: SIG });
    expect(f.isVerity).toBe(true);
    expect(await f.read(0, DATA.length)).toEqual(DATA);
    await vol.close();
  });

  it('an unsigned or wrongly signed sealed file cannot be read, measured or dumped', async () => {
    const dev = new MemoryDevice({ blockSize: 4096, size: 32 << 20 });
    let vol = await Volume.format(dev);
    await sealed(vol, 'unsigned', DATA);
    await sealed(vol, 'signed', DATA, SIG);
    await sealed(vol, 'junk', DATA, new Uint8Array(300).fill(0x30));
    await vol.close();

    vol = await Volume.open(dev, { requireSignatures: true, trusted: [CERT] });
    const u = await vol.open('unsigned');
    expect(await code(u.read(0, 10))).toBe('EPERM');
    expect(await code(u.measureVerity())).toBe('EPERM');
    expect(await code(u.readVerityMetadata('descriptor', 0, 256))).toBe('EPERM');
    expect(await code((await vol.open('junk')).read(0, 10))).toBe('EBADMSG');
    const s = await vol.open('signed');
    expect(await s.read(0, DATA.length)).toEqual(DATA);
    await vol.close();

    // Trusting another certificate only: the kernel's ENOKEY, EKEYREJECTED here.
    vol = await Volume.open(dev, { requireSignatures: true, trusted: [OTHER_CERT] });
    expect(await code((await vol.open('signed')).read(0, 10))).toBe('EKEYREJECTED');
    await vol.close();

    // Trusted certificates without requireSignatures: an unsigned file reads, a signed one is checked.
    vol = await Volume.open(dev, { trusted: [OTHER_CERT] });
    expect(await (await vol.open('unsigned')).read(0, 5)).toEqual(DATA.subarray(0, 5));
    expect(await code((await vol.open('signed')).read(0, 10))).toBe('EKEYREJECTED');
    await vol.close();
  });
});

describe('crash safety', () => {
  it('a crash at any device operation of a signed seal leaves the file sealed with its signature, or unsealed', async () => {
    // Count the operations of one signed seal, then cut the power at each,
    // losing every unflushed write or none (both at each cut under
    // IOMAP_VERITY_SOAK=1, alternately otherwise).
    const soak = process.env.IOMAP_VERITY_SOAK === '1';
    const data = DATA.subarray(0, 9000);
    const signature = await signFsverityDigest(await fsverityDigest(data), { key: KEY, cert: CERT });
    const probe = new FaultyDevice(new MemoryDevice({ blockSize: 4096, size: 4 << 20 }));
    const pv = await Volume.format(probe, { metaAreaBytes: 65536 });
    const pf = await pv.create('f');
    await pf.write(0, data);
    await pf.fsync();
    const start = probe.nextSeq;
    await pf.enableVerity({ signature });
    const ops = probe.nextSeq - start;
    await pv.close();
    expect(ops).toBeGreaterThan(3);

    let sealedCount = 0;
    for (let cut = 0; cut < ops; cut++) {
      for (const keep of soak ? (['none', 'all'] as const) : ([cut % 2 ? 'all' : 'none'] as const)) {
        const dev = new FaultyDevice(new MemoryDevice({ blockSize: 4096, size: 4 << 20 }));
        const vol = await Volume.format(dev, { metaAreaBytes: 65536 });
        const f = await vol.create('f');
        await f.write(0, data);
        await f.fsync();
        dev.cutPower(dev.nextSeq + cut);
        await f.enableVerity({ signature }).catch((e: unknown) => {
          if (!(e instanceof IomapVerityError)) throw e;
        });
        await vol.close().catch(() => undefined);
        await dev.crash({ keep });
        const again = await Volume.open(dev, { requireSignatures: true, trusted: [CERT] });
        const g = await again.open('f');
        if (g.isVerity) {
          sealedCount++;
          expect(await g.readVerityMetadata('signature', 0, 1 << 20)).toEqual(signature);
        }
        expect(await g.read(0, data.length), `cut ${cut} keep ${keep}`).toEqual(data);
        await again.close();
      }
    }
    expect(sealedCount).toBeGreaterThan(0);
  }, 120_000);
});
