/**
 * The streaming Merkle tree builder as a filesystem uses it: blocks from JS
 * bytes, from WASM memory, and declared holes must build the same tree.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isErrno } from '../../src/errors.js';
import { toHex } from '../../src/verity/descriptor.js';
import { fsverityDigest } from '../../src/verity/digest.js';
import { computeMerkleTreeParams, validateDigestParams, type VerityParams } from '../../src/verity/params.js';
import { MerkleTreeBuilder } from '../../src/verity/tree.js';
import { loadWasm } from '../../src/wasm/index.js';
import { fillRandom } from '../fixtures/generate.mjs';

interface Emitted {
  level: number;
  index: number;
  bytes: Uint8Array;
  zero: boolean;
}

function recorder(): { sink: (l: number, i: number, b: Uint8Array, z: boolean) => Promise<void>; blocks: Emitted[] } {
  const blocks: Emitted[] = [];
  return {
    blocks,
    // Async on purpose: the builder must wait for it.
    sink: async (level, index, bytes, zero) => {
      await Promise.resolve();
      blocks.push({ level, index, bytes: bytes.slice(), zero });
    },
  };
}

function layout(params: VerityParams, dataSize: number, blocks: Emitted[]): Uint8Array {
  const shape = computeMerkleTreeParams(params, dataSize);
  const out = new Uint8Array(shape.treeSize);
  for (const b of blocks) out.set(b.bytes, (shape.levelStart[b.level]! + b.index) * params.blockSize);
  return out;
}

type Op = { kind: 'bytes' | 'zero' | 'wasm'; blocks: number };

describe('MerkleTreeBuilder', () => {
  it('builds the same tree from bytes, WASM memory and declared holes', async () => {
    const wasm = await loadWasm();
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(
          validateDigestParams({ blockSize: 64 }),
          validateDigestParams({ blockSize: 128, hashAlgorithm: 'sha512' }),
          validateDigestParams({ blockSize: 1024, salt: new Uint8Array([5, 6, 7]) }),
        ),
        fc.array(fc.record({ kind: fc.constantFrom<Op['kind']>('bytes', 'zero', 'wasm'), blocks: fc.integer({ min: 0, max: 300 }) }), {
          maxLength: 8,
        }),
        fc.integer({ min: 0, max: 1023 }),
        async (params, ops, tail) => {
          const bs = params.blockSize;
          const tailLen = tail % bs;
          const total = ops.reduce((n, o) => n + o.blocks, 0) * bs + tailLen;
          const data = new Uint8Array(total);
          const rec = recorder();
          const b = await MerkleTreeBuilder.create(params, { sink: rec.sink });
          let at = 0;
          for (const op of ops) {
            const len = op.blocks * bs;
            if (op.kind === 'zero') {
              await b.addZeroBlocks(op.blocks);
            } else {
              fillRandom(data.subarray(at, at + len), at + 1);
              if (op.kind === 'bytes') {
                await b.addBlocks(data.subarray(at, at + len));
              } else {
                const ptr = wasm.alloc(Math.max(len, 1));
                wasm.u8().set(data.subarray(at, at + len), ptr);
                await b.addBlocksAt(wasm, ptr, op.blocks);
                wasm.free(ptr);
              }
            }
            at += len;
          }
          fillRandom(data.subarray(at), 99);
          await b.addBlocks(data.subarray(at));
          expect(b.blocksAdded).toBe(Math.ceil(total / bs));
          const r = await b.finish();
          const ref = await fsverityDigest(data, {
            hashAlgorithm: params.algorithm.name,
            blockSize: bs,
            salt: params.salt,
            merkleTree: true,
          });
          expect(r.dataSize).toBe(total);
          expect(toHex(r.rootHash)).toBe(toHex(ref.rootHash));
          expect(toHex(layout(params, total, rec.blocks))).toBe(toHex(ref.merkleTree!));
          const shape = computeMerkleTreeParams(params, total);
          expect(r.levelBlocks).toEqual(shape.levelBlocks);
          // Each level's blocks arrive in order.
          for (let l = 0; l < shape.numLevels; l++) {
            expect(rec.blocks.filter((x) => x.level === l).map((x) => x.index)).toEqual(
              Array.from({ length: shape.levelBlocks[l]! }, (_, i) => i),
            );
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it.each(['sha256', 'sha512'] as const)('reads WASM memory afresh when a sink grows it (%s)', async (alg) => {
    const wasm = await loadWasm();
    const params = validateDigestParams({ hashAlgorithm: alg, blockSize: 128 });
    const blocks = 200;
    const data = fillRandom(new Uint8Array(blocks * 128), 5);
    const ptr = wasm.alloc(data.length);
    wasm.u8().set(data, ptr);
    const held: number[] = [];
    const b = await MerkleTreeBuilder.create(params, {
      // Allocating 1 MiB per tree block forces memory.grow mid-stream.
      sink: () => void held.push(wasm.alloc(1 << 20)),
    });
    const before = wasm.x.memory.buffer.byteLength;
    await b.addBlocksAt(wasm, ptr, blocks);
    const r = await b.finish();
    expect(wasm.x.memory.buffer.byteLength).toBeGreaterThan(before);
    for (const p of held) wasm.free(p);
    wasm.free(ptr);
    const ref = await fsverityDigest(data, { hashAlgorithm: alg, blockSize: 128 });
    expect(toHex(r.rootHash)).toBe(toHex(ref.rootHash));
  });

  it('flags exactly the blocks made of zero-subtree digests', async () => {
    const params = validateDigestParams({ blockSize: 64 });
    const rec = recorder();
    const b = await MerkleTreeBuilder.create(params, { sink: rec.sink });
    await b.addZeroBlocks(8); // level 0 blocks 0..3 zero, level 1 blocks 0..1 zero
    await b.addBlocks(new Uint8Array(64 * 8)); // zeros, hashed: same blocks, same flags
    const one = new Uint8Array(64);
    one[0] = 1;
    await b.addBlocks(one);
    await b.finish();
    const flags = rec.blocks.map((x) => `${x.level}:${x.index}:${x.zero ? 'z' : '-'}`).sort();
    // 17 data blocks, arity 2: levels of 9, 5, 3, 2 and 1 blocks. The first
    // 16 data blocks are zero, so every block above only them is flagged.
    const want = [
      ...Array.from({ length: 8 }, (_, i) => `0:${i}:z`), '0:8:-',
      ...Array.from({ length: 4 }, (_, i) => `1:${i}:z`), '1:4:-',
      '2:0:z', '2:1:z', '2:2:-', '3:0:z', '3:1:-', '4:0:-',
    ].sort();
    expect(flags).toEqual(want);
    // A zero-padded last block is not a full block of zero digests.
    expect(rec.blocks.find((x) => x.level === 0 && x.index === 8)!.zero).toBe(false);
  });

  it('handles a billion-block hole without touching each block', async () => {
    const params = validateDigestParams({ blockSize: 4096 });
    let calls = 0;
    const b = await MerkleTreeBuilder.create(params, { sink: () => void calls++ });
    const t0 = Date.now();
    await b.addZeroBlocks(2 ** 30); // a 4 TiB hole
    const r = await b.finish();
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(r.dataSize).toBe(2 ** 42);
    expect(calls).toBe(computeMerkleTreeParams(params, 2 ** 42).treeBlocks);
  });

  it('refuses misuse with EINVAL', async () => {
    const params = validateDigestParams({ blockSize: 64 });
    const b = await MerkleTreeBuilder.create(params);
    await b.addBlocks(new Uint8Array(100));
    await expect(b.addBlocks(new Uint8Array(64))).rejects.toSatisfy((e) => isErrno(e, 'EINVAL'));
    await expect(b.addZeroBlocks(1)).rejects.toSatisfy((e) => isErrno(e, 'EINVAL'));
    await expect(b.addZeroBlocks(-1)).rejects.toSatisfy((e) => isErrno(e, 'EINVAL'));
    await b.finish();
    await expect(b.finish()).rejects.toSatisfy((e) => isErrno(e, 'EINVAL'));
    await expect(b.addZeroBlocks(1)).rejects.toSatisfy((e) => isErrno(e, 'EINVAL'));
  });

  it('refuses data past 2^53 bytes with EFBIG', async () => {
    const b = await MerkleTreeBuilder.create(validateDigestParams({ blockSize: 4096 }));
    await b.addZeroBlocks(2 ** 41 - 1);
    await expect(b.addZeroBlocks(1)).rejects.toSatisfy((e) => isErrno(e, 'EFBIG'));
    b.dispose();
  });

  it('gives the special roots: zeros when empty, the block hash for one block', async () => {
    const params = validateDigestParams();
    const empty = await (await MerkleTreeBuilder.create(params)).finish();
    expect(toHex(empty.rootHash)).toBe('00'.repeat(32));
    expect(empty.levelBlocks).toEqual([]);
    const one = await MerkleTreeBuilder.create(params);
    await one.addZeroBlocks(1);
    const r = await one.finish();
    // SHA-256 of 4096 zero bytes.
    expect(toHex(r.rootHash)).toBe('ad7facb2586fc6e966c004d7d1d16b024f5805ff7cb47c7a85dabd8b48892ca7');
  });
});
