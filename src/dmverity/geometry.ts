/**
 * dm-verity's tree geometry for the verity library's one verifier
 * (`TreeGeometry` in src/verity/geometry.ts): hashes found by
 * `dmverityHashLocation` in the layout veritysetup writes (top level
 * first, after the superblock, at the hash offset; slots padded to a
 * power of two in format 1), blocks hashed by the dm-verity hashers of
 * hash.ts (salt unpadded, before the block in format 1, after it in
 * format 0). Every block is stored: none stands for an all-zero subtree.
 */
import type { TreeGeometry, TreeHasher } from '../verity/geometry.js';
import { createDmBlockHasher, type DmBlockHasher } from './hash.js';
import { dmverityHashLocation, type DmverityLayout } from './params.js';

/** A dm-verity block hasher seen as the verifier's `TreeHasher`: blocks are staged, then hashed (all-zero ones recognised). */
class DmTreeHasher implements TreeHasher {
  readonly blockSize: number;
  readonly zeroBlockDigest: Uint8Array;
  constructor(private readonly h: DmBlockHasher) {
    this.blockSize = h.blockSize;
    this.zeroBlockDigest = h.zeroDigest;
  }

  hashBlocks(data: Uint8Array, count: number, out: Uint8Array, outOffset: number): void {
    const bs = this.blockSize;
    const ds = this.h.digestSize;
    for (let i = 0; i < count; ) {
      const n = Math.min(this.h.capacity, count - i);
      this.h.staging(n).set(data.subarray(i * bs, (i + n) * bs));
      this.h.hashStaged(n, out.subarray(outOffset + i * ds, outOffset + (i + n) * ds));
      i += n;
    }
  }

  dispose(): void {
    this.h.dispose();
  }
}

/** Data blocks staged per hash call: a read of the verified reader is 4 MiB at most. */
const DATA_STAGING = 1 << 20;

/** The geometry of a validated layout (`computeDmverityLayout`); the tree source is the whole hash device. */
export function dmverityGeometry(layout: DmverityLayout): TreeGeometry {
  const p = layout.params;
  const hbs = p.hashBlockSize;
  return Object.freeze({
    format: 'dm-verity',
    hashName: p.hashAlgorithm,
    digestSize: p.digestSize,
    dataBlockSize: p.dataBlockSize,
    dataBlocks: p.dataBlocks,
    hashBlockSize: hbs,
    hashesPerBlock: layout.hashesPerBlock,
    levels: layout.levels,
    levelBlocks: (level: number) => layout.levelSize[level]!,
    blockOffset: (level: number, index: number) => (layout.levelStart[level]! + index) * hbs,
    hashLocation: (level: number, index: number) => {
      const loc = dmverityHashLocation(layout, level, index);
      return { index: loc.hashBlock - layout.levelStart[level]!, offset: loc.offset - loc.hashBlock * hbs };
    },
    unstoredZeroBlocks: false,
    createHashers: async () => {
      const dbs = p.dataBlockSize;
      const data = new DmTreeHasher(await createDmBlockHasher(p.hashAlgorithm, p.salt, p.format, dbs, Math.max(1, DATA_STAGING / dbs)));
      if (dbs === hbs) return { data, hash: data };
      try {
        return { data, hash: new DmTreeHasher(await createDmBlockHasher(p.hashAlgorithm, p.salt, p.format, hbs, 1)) };
      } catch (e) {
        data.dispose();
        throw e;
      }
    },
  });
}
