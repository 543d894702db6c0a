import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isErrno } from '../../src/errors.js';
import { instantiateWasm, type Wasm } from '../../src/wasm/index.js';
import { isZeroAt, Sha256BlockHasher, sha256 } from '../../src/wasm/sha256.js';

/** fs-verity's block hash, from node:crypto: H(salt padded to 64 || block), no prefix for an empty salt. */
function refBlockHash(salt: Uint8Array, block: Uint8Array): Buffer {
  const h = createHash('sha256');
  if (salt.length > 0) {
    const pad = new Uint8Array(64);
    pad.set(salt);
    h.update(pad);
  }
  return h.update(block).digest();
}

function refDigests(salt: Uint8Array, data: Uint8Array, bs: number): Buffer {
  const n = data.length / bs;
  const out = Buffer.alloc(n * 32);
  for (let i = 0; i < n; i++) refBlockHash(salt, data.subarray(i * bs, (i + 1) * bs)).copy(out, i * 32);
  return out;
}

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

const BLOCK_SIZES = Array.from({ length: 11 }, (_, i) => 64 << i); // 64 B .. 64 KiB
const SALT_SIZES = [0, 1, 31, 32];
const COUNTS = [1, 2, 3, 4, 5, 6, 9];

function expectErrno(fn: () => unknown, code: string): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(isErrno(err), String(err)).toBe(true);
  expect((err as { code: string }).code).toBe(code);
}

describe('SHA-256 WASM kernel', () => {
  let w: Wasm;
  const getW = async () => (w ??= await instantiateWasm());

  for (const lanes of [1, 4] as const) {
    it(`salted block hashes (lanes ${lanes}) match node:crypto for every block size 64 B..64 KiB, salt and count`, async () => {
      const wasm = await getW();
      for (const bs of BLOCK_SIZES) {
        const maxCount = Math.max(...COUNTS);
        const src = wasm.alloc(bs * maxCount);
        const dst = wasm.alloc(32 * maxCount);
        for (const saltLen of SALT_SIZES) {
          const salt = new Uint8Array(randomBytes(saltLen));
          const hasher = Sha256BlockHasher.create(wasm, salt, bs, { lanes });
          expect(hasher.blockSize).toBe(bs);
          for (const count of COUNTS) {
            const data = new Uint8Array(randomBytes(bs * count));
            const want = hex(refDigests(salt, data, bs));
            wasm.u8().set(data, src);
            hasher.hashBlocksAt(src, count, dst);
            expect(hex(wasm.bytes(dst, 32 * count)), `bs ${bs} salt ${saltLen} count ${count}`).toBe(want);
            const out = new Uint8Array(32 * count + 7);
            hasher.hashBlocks(data, out, 7);
            expect(hex(out.subarray(7)), `hashBlocks bs ${bs} salt ${saltLen} count ${count}`).toBe(want);
          }
          hasher.dispose();
        }
        wasm.free(src);
        wasm.free(dst);
      }
    });
  }

  it('4-lane and one-buffer kernels agree when the lanes hold different data at the same offsets', async () => {
    // Catches a transposition slip: lanes swapped or words taken from the wrong lane.
    const wasm = await getW();
    const bs = 128;
    const data = new Uint8Array(bs * 4);
    for (let lane = 0; lane < 4; lane++) data.fill(lane + 1, lane * bs, lane * bs + bs);
    data[bs * 2 + 5] = 0xee;
    const a = new Uint8Array(128);
    const b = new Uint8Array(128);
    const h4 = Sha256BlockHasher.create(wasm, new Uint8Array([9]), bs);
    const h1 = Sha256BlockHasher.create(wasm, new Uint8Array([9]), bs, { lanes: 1 });
    h4.hashBlocks(data, a);
    h1.hashBlocks(data, b);
    expect(hex(a)).toBe(hex(b));
    expect(hex(a)).toBe(hex(refDigests(new Uint8Array([9]), data, bs)));
    h4.dispose();
    h1.dispose();
  });

  it('hashBlocks takes large blocks: four at a time up to 1 MiB, streamed beyond', async () => {
    const wasm = await getW();
    const used = wasm.x.arena_bytes_used();
    for (const bs of [128 << 10, 1 << 20, 2 << 20]) {
      for (const lanes of [1, 4] as const) {
        const salt = new Uint8Array(randomBytes(32));
        const count = bs === 2 << 20 ? 2 : 5;
        const data = new Uint8Array(randomBytes(bs * count));
        const h = Sha256BlockHasher.create(wasm, salt, bs, { lanes });
        const out = new Uint8Array(32 * count);
        h.hashBlocks(data, out);
        expect(hex(out), `bs ${bs} lanes ${lanes}`).toBe(hex(refDigests(salt, data, bs)));
        h.dispose();
      }
    }
    expect(wasm.x.arena_bytes_used()).toBe(used);
  });

  it('one-shot SHA-256 matches node:crypto for every length 0..4096 and some large ones', async () => {
    const wasm = await getW();
    const big = new Uint8Array(randomBytes((3 << 20) + 1));
    expect(hex(sha256(wasm, new TextEncoder().encode('abc')))).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
    for (let len = 0; len <= 4096; len++) {
      const d = big.subarray(len, len + len);
      expect(hex(sha256(wasm, d)), `length ${len}`).toBe(createHash('sha256').update(d).digest('hex'));
    }
    for (const len of [65472, 65473, 65536 + 55, 65536 + 56, 2 * 65472 + 63, 1 << 20, big.length]) {
      const d = big.subarray(0, len);
      expect(hex(sha256(wasm, d)), `length ${len}`).toBe(createHash('sha256').update(d).digest('hex'));
    }
  });

  for (const lanes of [1, 4] as const) {
    it(`zero-aware hashing (lanes ${lanes}) copies the zero digest for zero blocks and hashes the rest`, async () => {
      const wasm = await getW();
      let seed = 7;
      const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
      for (const bs of [64, 1024, 4096]) {
        for (const saltLen of [0, 32]) {
          const salt = new Uint8Array(randomBytes(saltLen));
          const h = Sha256BlockHasher.create(wasm, salt, bs, { lanes });
          expect(hex(h.zeroBlockDigest)).toBe(hex(refBlockHash(salt, new Uint8Array(bs))));
          for (let trial = 0; trial < 20; trial++) {
            const count = 1 + Math.floor(rnd() * 13);
            const data = new Uint8Array(bs * count);
            let zeros = 0;
            for (let i = 0; i < count; i++) {
              const kind = Math.floor(rnd() * 5);
              const at = i * bs;
              if (kind === 0) zeros++;
              else if (kind === 1) data[at + bs - 1] = 1; // only the last byte set
              else if (kind === 2) data[at] = 0x80; // only the first byte set
              else if (kind === 3) data[at + Math.floor(rnd() * bs)] = 1 + Math.floor(rnd() * 255);
              else data.set(randomBytes(bs), at);
            }
            const src = wasm.alloc(data.length);
            const dst = wasm.alloc(32 * count);
            wasm.u8().set(data, src);
            expect(h.hashBlocksAtSkipZero(src, count, dst)).toBe(zeros);
            expect(hex(wasm.bytes(dst, 32 * count)), `bs ${bs} trial ${trial}`).toBe(hex(refDigests(salt, data, bs)));
            wasm.free(src);
            wasm.free(dst);
          }
          h.dispose();
        }
      }
    });
  }

  it('is_zero is right at every alignment, length and position of a single non-zero byte', async () => {
    const wasm = await getW();
    const x = wasm.x;
    const base = wasm.alloc(4096);
    wasm.u8().fill(0, base, base + 4096);
    for (let start = 0; start < 64; start++) {
      for (let len = 0; len <= 160; len++) {
        const p = base + 64 + start;
        expect(x.is_zero(p, len)).toBe(1);
        // A non-zero byte just outside the range on either side does not count.
        const u8 = wasm.u8();
        u8[p - 1] = 1;
        u8[p + len] = 1;
        expect(x.is_zero(p, len), `start ${start} len ${len} outside`).toBe(1);
        u8[p - 1] = 0;
        u8[p + len] = 0;
        for (let i = 0; i < len; i++) {
          u8[p + i] = 0x40;
          if (x.is_zero(p, len) !== 0) expect.fail(`start ${start} len ${len}: byte ${i} missed`);
          u8[p + i] = 0;
        }
      }
    }
    expect(isZeroAt(wasm, base, 4096)).toBe(true);
    wasm.free(base);
  });

  it('refuses bad parameters and bad ranges with IomapVerityError, and returns its memory', async () => {
    const wasm = await getW();
    const used = wasm.x.arena_bytes_used();
    expectErrno(() => Sha256BlockHasher.create(wasm, new Uint8Array(33), 4096), 'EINVAL');
    for (const bs of [0, 32, 3000, 4095, 2 ** 31, 1.5, NaN]) {
      expectErrno(() => Sha256BlockHasher.create(wasm, new Uint8Array(0), bs), 'EINVAL');
    }
    expectErrno(() => Sha256BlockHasher.create(wasm, new Uint8Array(0), 4096, { lanes: 2 as 4 }), 'EINVAL');
    const h = Sha256BlockHasher.create(wasm, new Uint8Array(0), 4096);
    expectErrno(() => h.hashBlocks(new Uint8Array(4097), new Uint8Array(64)), 'EINVAL');
    expectErrno(() => h.hashBlocks(new Uint8Array(8192), new Uint8Array(63)), 'EINVAL');
    expectErrno(() => h.hashBlocks(new Uint8Array(4096), new Uint8Array(32), 1), 'EINVAL');
    const end = wasm.x.memory.buffer.byteLength;
    expectErrno(() => h.hashBlocksAt(end - 4096, 2, 0), 'EINVAL');
    expectErrno(() => h.hashBlocksAt(0, 1, end - 16), 'EINVAL');
    expectErrno(() => h.hashBlocksAt(-1, 1, 0), 'EINVAL');
    expectErrno(() => h.hashBlocksAtSkipZero(0, -1, 0), 'EINVAL');
    expectErrno(() => isZeroAt(wasm, end - 1, 2), 'EINVAL');
    h.hashBlocks(new Uint8Array(4096), new Uint8Array(32));
    h.dispose();
    h.dispose();
    expectErrno(() => h.hashBlocksAt(0, 0, 0), 'EBADF');
    expectErrno(() => h.zeroBlockDigest, 'EBADF');
    expect(wasm.x.arena_bytes_used()).toBe(used);
  });
});
