import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isErrno } from '../../src/errors.js';
import { instantiateWasm, type Wasm } from '../../src/wasm/index.js';
import { Sha512BlockHasher, sha512 } from '../../src/wasm/sha512.js';

/** fs-verity's block hash, from node:crypto: H(salt padded to 128 || block), no prefix for an empty salt. */
function refBlockHash(salt: Uint8Array, block: Uint8Array): Buffer {
  const h = createHash('sha512');
  if (salt.length > 0) {
    const pad = new Uint8Array(128);
    pad.set(salt);
    h.update(pad);
  }
  return h.update(block).digest();
}

function refDigests(salt: Uint8Array, data: Uint8Array, bs: number): Buffer {
  const n = data.length / bs;
  const out = Buffer.alloc(n * 64);
  for (let i = 0; i < n; i++) refBlockHash(salt, data.subarray(i * bs, (i + 1) * bs)).copy(out, i * 64);
  return out;
}

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

const BLOCK_SIZES = Array.from({ length: 10 }, (_, i) => 128 << i); // 128 B .. 64 KiB
const COUNTS = [1, 2, 3, 4, 5];

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

describe('SHA-512 WASM kernel', () => {
  let w: Wasm;
  const getW = async () => (w ??= await instantiateWasm());

  for (const lanes of [1, 2] as const) {
    it(`salted block hashes (lanes ${lanes}) match node:crypto for every block size 128 B..64 KiB, salts of 0..32 bytes and counts`, async () => {
      const wasm = await getW();
      let saltLen = 0;
      for (const bs of BLOCK_SIZES) {
        const maxCount = Math.max(...COUNTS);
        const src = wasm.alloc(bs * maxCount);
        const dst = wasm.alloc(64 * maxCount);
        // Every salt length 0..32 comes up across the block sizes and counts,
        // and the empty and the longest salt at every block size.
        for (const sl of [0, 32, -1]) {
          const len = sl >= 0 ? sl : (saltLen = (saltLen + 7) % 33);
          const salt = new Uint8Array(randomBytes(len));
          const hasher = Sha512BlockHasher.create(wasm, salt, bs, { lanes });
          expect(hasher.blockSize).toBe(bs);
          expect(hasher.lanes).toBe(lanes);
          for (const count of COUNTS) {
            const data = new Uint8Array(randomBytes(bs * count));
            const want = hex(refDigests(salt, data, bs));
            wasm.u8().set(data, src);
            hasher.hashBlocksAt(src, count, dst);
            expect(hex(wasm.bytes(dst, 64 * count)), `bs ${bs} salt ${len} count ${count}`).toBe(want);
            const out = new Uint8Array(64 * count + 5);
            hasher.hashBlocks(data, out, 5);
            expect(hex(out.subarray(5)), `hashBlocks bs ${bs} salt ${len} count ${count}`).toBe(want);
          }
          hasher.dispose();
        }
        wasm.free(src);
        wasm.free(dst);
      }
    });
  }

  it('the 2-lane kernel takes every salt length 0..32 on random blocks', async () => {
    const wasm = await getW();
    const bs = 1024;
    const src = wasm.alloc(bs * 6);
    const dst = wasm.alloc(64 * 6);
    for (let len = 0; len <= 32; len++) {
      const salt = new Uint8Array(randomBytes(len));
      const h = Sha512BlockHasher.create(wasm, salt, bs);
      const data = new Uint8Array(randomBytes(bs * 6));
      wasm.u8().set(data, src);
      h.hashBlocksAt(src, 6, dst);
      expect(hex(wasm.bytes(dst, 64 * 6)), `salt ${len}`).toBe(hex(refDigests(salt, data, bs)));
      h.dispose();
    }
    wasm.free(src);
    wasm.free(dst);
  });

  it('2-lane and one-buffer kernels agree when the lanes hold different data at the same offsets', async () => {
    // Catches a transposition slip: lanes swapped or words taken from the wrong lane.
    const wasm = await getW();
    const bs = 256;
    const data = new Uint8Array(bs * 2);
    data.fill(1, 0, bs);
    data.fill(2, bs, 2 * bs);
    data[bs + 9] = 0xee;
    const a = new Uint8Array(128);
    const b = new Uint8Array(128);
    const h2 = Sha512BlockHasher.create(wasm, new Uint8Array([9]), bs);
    const h1 = Sha512BlockHasher.create(wasm, new Uint8Array([9]), bs, { lanes: 1 });
    h2.hashBlocks(data, a);
    h1.hashBlocks(data, b);
    expect(hex(a)).toBe(hex(b));
    expect(hex(a)).toBe(hex(refDigests(new Uint8Array([9]), data, bs)));
    h2.dispose();
    h1.dispose();
  });

  it('hashBlocks takes large blocks: four at a time up to 1 MiB, streamed beyond', async () => {
    const wasm = await getW();
    const used = wasm.x.arena_bytes_used();
    for (const bs of [128 << 10, 1 << 20, 2 << 20]) {
      const salt = new Uint8Array(randomBytes(19));
      const count = bs === 2 << 20 ? 2 : 5;
      const data = new Uint8Array(randomBytes(bs * count));
      const h = Sha512BlockHasher.create(wasm, salt, bs);
      const out = new Uint8Array(64 * count);
      h.hashBlocks(data, out);
      expect(hex(out), `bs ${bs}`).toBe(hex(refDigests(salt, data, bs)));
      h.dispose();
    }
    expect(wasm.x.arena_bytes_used()).toBe(used);
  });

  it('one-buffer SHA-512 matches node:crypto for every length 0..4096 and some large ones', async () => {
    const wasm = await getW();
    const big = new Uint8Array(randomBytes((3 << 20) + 1));
    expect(hex(sha512(wasm, new TextEncoder().encode('abc')))).toBe(
      'ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f',
    );
    for (let len = 0; len <= 4096; len++) {
      const d = big.subarray(len, len + len);
      expect(hex(sha512(wasm, d)), `length ${len}`).toBe(createHash('sha512').update(d).digest('hex'));
    }
    // Around the one-shot run's 65280-byte pieces and the 112-byte tail limit.
    for (const len of [65280, 65281, 65280 + 111, 65280 + 112, 2 * 65280 + 127, 1 << 20, big.length]) {
      const d = big.subarray(0, len);
      expect(hex(sha512(wasm, d)), `length ${len}`).toBe(createHash('sha512').update(d).digest('hex'));
    }
  });

  for (const lanes of [1, 2] as const) {
    it(`zero-aware hashing (lanes ${lanes}) copies the zero digest for zero blocks and hashes the rest`, async () => {
      const wasm = await getW();
      let seed = 11;
      const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
      for (const bs of [128, 1024, 4096, 65536]) {
        for (const saltLen of [0, 5, 32]) {
          const salt = new Uint8Array(randomBytes(saltLen));
          const h = Sha512BlockHasher.create(wasm, salt, bs, { lanes });
          expect(hex(h.zeroBlockDigest)).toBe(hex(refBlockHash(salt, new Uint8Array(bs))));
          for (let trial = 0; trial < (bs === 65536 ? 3 : 15); trial++) {
            const count = 1 + Math.floor(rnd() * 9);
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
            const dst = wasm.alloc(64 * count);
            wasm.u8().set(data, src);
            expect(h.hashBlocksAtSkipZero(src, count, dst)).toBe(zeros);
            expect(hex(wasm.bytes(dst, 64 * count)), `bs ${bs} trial ${trial}`).toBe(hex(refDigests(salt, data, bs)));
            wasm.free(src);
            wasm.free(dst);
          }
          h.dispose();
        }
      }
    });
  }

  it('refuses bad parameters and bad ranges with IomapVerityError, and returns its memory', async () => {
    const wasm = await getW();
    const used = wasm.x.arena_bytes_used();
    expectErrno(() => Sha512BlockHasher.create(wasm, new Uint8Array(33), 4096), 'EINVAL');
    for (const bs of [0, 64, 3000, 4095, 2 ** 31, 1.5, NaN]) {
      expectErrno(() => Sha512BlockHasher.create(wasm, new Uint8Array(0), bs), 'EINVAL');
    }
    expectErrno(() => Sha512BlockHasher.create(wasm, new Uint8Array(0), 4096, { lanes: 4 as 2 }), 'EINVAL');
    // The kernel itself refuses what the glue would never pass.
    const ctx = wasm.alloc(4096);
    expect(wasm.x.sha512_ctx_init(ctx, ctx + 1024, 129, 4096)).toBe(-1);
    expect(wasm.x.sha512_ctx_init(ctx, ctx + 1024, 0, 4096 + 64)).toBe(-1);
    expect(wasm.x.sha512_final(ctx, ctx + 1024, 128, 0, 0, ctx + 2048)).toBe(-1);
    wasm.free(ctx);
    const h = Sha512BlockHasher.create(wasm, new Uint8Array(0), 4096);
    expectErrno(() => h.hashBlocks(new Uint8Array(4097), new Uint8Array(64)), 'EINVAL');
    expectErrno(() => h.hashBlocks(new Uint8Array(8192), new Uint8Array(127)), 'EINVAL');
    expectErrno(() => h.hashBlocks(new Uint8Array(4096), new Uint8Array(64), 1), 'EINVAL');
    const end = wasm.x.memory.buffer.byteLength;
    expectErrno(() => h.hashBlocksAt(end - 4096, 2, 0), 'EINVAL');
    expectErrno(() => h.hashBlocksAt(0, 1, end - 32), 'EINVAL');
    expectErrno(() => h.hashBlocksAt(-1, 1, 0), 'EINVAL');
    expectErrno(() => h.hashBlocksAtSkipZero(0, -1, 0), 'EINVAL');
    h.hashBlocks(new Uint8Array(4096), new Uint8Array(64));
    h.dispose();
    h.dispose();
    expectErrno(() => h.hashBlocksAt(0, 0, 0), 'EBADF');
    expectErrno(() => h.zeroBlockDigest, 'EBADF');
    expect(wasm.x.arena_bytes_used()).toBe(used);
  });
});
