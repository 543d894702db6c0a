/**
 * The shape of a hash tree, as the verifier needs it: where the hash of a
 * block is stored and how a block is hashed. fs-verity's layout is one
 * implementation (`fsverityGeometry`, here); dm-verity's is another
 * (src/dmverity/geometry.ts). `MerkleVerifier` walks any of them, so both
 * formats are checked by one verifier.
 *
 * Levels are numbered as in both kernels: level 0 holds the hashes of the
 * data blocks, level `levels - 1` is the single top block whose hash is the
 * root hash. A tree with `levels` 0 has one data block, and the root hash
 * is that block's hash.
 *
 * The two layouts differ in what the interface hides:
 * - fs-verity: tree blocks as large as data blocks, digests packed back to
 *   back, the salt zero-padded to the hash's input block and hashed first;
 *   tree blocks that are only an all-zero subtree's digest repeated may be
 *   left unstored (they read as zeros).
 * - dm-verity: data and hash blocks of their own sizes, each hash in a slot
 *   padded to a power of two (format 1) or packed (format 0), the salt
 *   unpadded before (format 1) or after (format 0) the block; every block
 *   is stored, after a superblock and at an offset of the hash device.
 * Both store the top level first.
 */
import { createBlockHasher } from './hash-algs.js';
import type { MerkleTreeParams } from './params.js';
import type { Wasm } from '../wasm/index.js';

/**
 * Hashes whole blocks of one size, the way one tree format hashes them
 * (salt and all). Not safe to share between concurrent users.
 */
export interface TreeHasher {
  /** Size of every block this hasher hashes. */
  readonly blockSize: number;
  /** The digest of a block of zeros. */
  readonly zeroBlockDigest: Uint8Array;
  /**
   * Hash `count` consecutive blocks starting at `data[0]` and write their
   * digests back to back into `out` from `outOffset`. `data` must hold at
   * least `count * blockSize` bytes.
   */
  hashBlocks(data: Uint8Array, count: number, out: Uint8Array, outOffset: number): void;
  /**
   * Present when blocks in WASM memory can be hashed in place: hash `count`
   * blocks at `ptr` of `wasm` into `out`; false (nothing done) when `wasm`
   * is not the hasher's own instance.
   */
  hashBlocksAt?(wasm: Wasm, ptr: number, count: number, out: Uint8Array, outOffset: number): boolean;
  /** Release what the backend holds; the hasher is unusable after. */
  dispose(): void;
}

/** Where a hash is stored: the tree block holding it, and the byte inside that block. */
export interface TreeHashLocation {
  /** The block's index inside its level. */
  readonly index: number;
  /** Byte offset of the hash inside the block. */
  readonly offset: number;
}

/**
 * A hash tree's geometry (see the module comment). Every number is
 * computed from validated parameters before a geometry is made; the
 * methods are arithmetic and take only in-range arguments.
 */
export interface TreeGeometry {
  /** 'fs-verity' or 'dm-verity': the first word of every error message. */
  readonly format: string;
  /** The hash algorithm's name, as digests are printed ('sha256'). */
  readonly hashName: string;
  readonly digestSize: number;
  readonly dataBlockSize: number;
  readonly dataBlocks: number;
  /** Bytes of a tree (hash) block. */
  readonly hashBlockSize: number;
  /** Hashes one tree block holds. */
  readonly hashesPerBlock: number;
  /** Tree levels; 0 when the root hash is the hash of the single data block. */
  readonly levels: number;
  /** Blocks in `level`. */
  levelBlocks(level: number): number;
  /** Byte offset, in the tree source, of block `index` of `level`. */
  blockOffset(level: number, index: number): number;
  /**
   * Where the hash of `index` is stored in `level`: with `level` 0,
   * `index` is a data block; with `level` n, a block of level n - 1.
   */
  hashLocation(level: number, index: number): TreeHashLocation;
  /**
   * True when a tree block that reads as all zeros stands for one left
   * unstored (fs-verity's all-zero subtrees): the verifier then checks the
   * block it stands for in its place. False: every block is stored as is.
   */
  readonly unstoredZeroBlocks: boolean;
  /** Fresh hashers for data blocks and for tree blocks (the same object when they coincide). */
  createHashers(): Promise<{ data: TreeHasher; hash: TreeHasher }>;
}

/**
 * fs-verity's geometry for a validated tree shape (`computeMerkleTreeParams`):
 * the tree source is the tree as `fsverity digest --out-merkle-tree`
 * writes it, or a filesystem's metadata area read through `readMetadata`.
 */
export function fsverityGeometry(tree: MerkleTreeParams): TreeGeometry {
  const bs = tree.blockSize;
  const per = tree.hashesPerBlock;
  const ds = tree.digestSize;
  return Object.freeze({
    format: 'fs-verity',
    hashName: tree.algorithm.name,
    digestSize: ds,
    dataBlockSize: bs,
    dataBlocks: tree.dataBlocks,
    hashBlockSize: bs,
    hashesPerBlock: per,
    levels: tree.numLevels,
    levelBlocks: (level: number) => tree.levelBlocks[level]!,
    blockOffset: (level: number, index: number) => (tree.levelStart[level]! + index) * bs,
    hashLocation: (_level: number, index: number) => ({ index: Math.floor(index / per), offset: (index % per) * ds }),
    unstoredZeroBlocks: true,
    createHashers: async () => {
      const h = await createBlockHasher(tree.algorithm, tree.salt, bs);
      return { data: h, hash: h };
    },
  });
}
