/**
 * The dm-verity SHA-256 kernel (assembly/dmverity.ts) against node:crypto:
 * H(salt || block) and H(block || salt) for every salt length from 0 to
 * 130 and the longest (256), block sizes from 64 bytes up, the one-buffer
 * and 4-lane paths, groups of 1 to 9 blocks (spare lanes), zero blocks
 * skipped and not.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { loadWasm } from '../../src/wasm/index.js';
import { fillRandom } from '../fixtures/generate.mjs';

function expected(format: number, salt: Uint8Array, block: Uint8Array): Buffer {
  const h = createHash('sha256');
  return (format === 1 ? h.update(salt).update(block) : h.update(block).update(salt)).digest();
}

describe('dm-verity SHA-256 kernel', () => {
  it('matches node:crypto for every salt length, both formats, both kernels', async () => {
    const wasm = await loadWasm();
    const k = wasm.x;
    const ctx = wasm.alloc(4096);
    const src = wasm.alloc(9 * 4096);
    const dst = wasm.alloc(9 * 64);
    try {
      const salts = [...Array.from({ length: 131 }, (_, i) => i), 256];
      for (const bs of [64, 512, 4096]) {
        const blocks = fillRandom(new Uint8Array(9 * bs), bs);
        blocks.fill(0, 2 * bs, 3 * bs); // block 2 is zero
        for (const format of [0, 1]) {
          for (const n of salts) {
            const salt = fillRandom(new Uint8Array(n), n + 1);
            wasm.bytes(src, n).set(salt);
            expect(k.dmv_ctx_init(ctx, src, n, bs, format)).toBe(0);
            wasm.bytes(src, bs).fill(0);
            k.dmv_ctx_zero_digest(ctx, src);
            const count = 1 + ((n + bs) % 9);
            wasm.bytes(src, 9 * bs).set(blocks);
            for (const fn of ['dmv_blocks', 'dmv_blocks4'] as const) {
              for (const skip of [0, 1]) {
                const zeros = k[fn](ctx, src, count, dst, 64, skip);
                expect(zeros).toBe(skip && count > 2 ? 1 : 0);
                for (let i = 0; i < count; i++) {
                  const want = expected(format, salt, blocks.subarray(i * bs, (i + 1) * bs));
                  expect(Buffer.from(wasm.bytes(dst + i * 64, 32)).equals(want), `${fn} bs ${bs} format ${format} salt ${n} block ${i}`).toBe(true);
                }
              }
            }
          }
        }
      }
      expect(k.dmv_ctx_init(ctx, src, 257, 4096, 1)).toBe(-1);
      expect(k.dmv_ctx_init(ctx, src, 0, 100, 1)).toBe(-1);
      expect(k.dmv_ctx_init(ctx, src, 0, 4096, 2)).toBe(-1);
    } finally {
      for (const p of [dst, src, ctx]) wasm.free(p);
    }
  });
});
