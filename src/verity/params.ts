/**
 * fs-verity parameters: checking what a caller asks for, and the Merkle
 * tree's shape computed once from them (the kernel's `merkle_tree_params`),
 * so that finding a block of the tree is arithmetic.
 *
 * Two doors with different rules:
 * - `validateDigestParams` accepts exactly what fsverity-utils 1.5
 *   `fsverity digest` accepts: any power-of-two block size from two digests
 *   (64 B for SHA-256, 128 B for SHA-512) up to 1 GiB, salts of 0..32 bytes.
 * - `validateSealParams` is the kernel's rule for enabling verity on a file
 *   of the engine: Merkle block size 1024..65536.
 */
import { fail, MAX_OFFSET, isUint8Array } from '../errors.js';
import { requireHashAlgorithm, type HashAlgorithm, type HashAlgorithmName } from './hash-algs.js';

/** Options a caller passes to choose fs-verity parameters; all optional. */
export interface VerityParamsOptions {
  /** 'sha256' (default) or 'sha512'. */
  hashAlgorithm?: HashAlgorithmName;
  /** Merkle tree block size in bytes; default 4096. */
  blockSize?: number;
  /** Salt prepended (padded) to every hashed block; 0..32 bytes, default none. */
  salt?: Uint8Array;
}

/** Checked parameters: every consumer past the validators trusts these. */
export interface VerityParams {
  readonly algorithm: HashAlgorithm;
  readonly blockSize: number;
  readonly logBlockSize: number;
  /** A private copy of the salt, 0..32 bytes. */
  readonly salt: Uint8Array;
}

/** fs-verity's default Merkle block size (what `fsverity digest` uses). */
export const DEFAULT_BLOCK_SIZE = 4096;
/** The descriptor's salt field is 32 bytes. */
export const MAX_SALT_SIZE = 32;
/**
 * fsverity-utils parses `--block-size` as a number below INT_MAX that is a
 * power of two, so 2^30 is the largest it takes.
 */
export const MAX_DIGEST_BLOCK_SIZE = 2 ** 30;
/** The kernel's smallest and (with 64 KiB pages) largest Merkle block size. */
export const MIN_SEAL_BLOCK_SIZE = 1024;
/** Largest Merkle block size for sealing (the kernel with 64 KiB pages). */
export const MAX_SEAL_BLOCK_SIZE = 65536;

function isPowerOfTwo(n: number): boolean {
  return Number.isSafeInteger(n) && n > 0 && 2 ** Math.round(Math.log2(n)) === n;
}

function common(opts: VerityParamsOptions | undefined, maxBlock: number, minBlock: number, who: string, longSalt: 'EINVAL' | 'EMSGSIZE'): VerityParams {
  if (opts !== undefined && (opts === null || typeof opts !== 'object')) {
    throw fail('EINVAL', `fs-verity options must be an object, got ${opts === null ? 'null' : typeof opts}`);
  }
  const algorithm = requireHashAlgorithm(opts?.hashAlgorithm ?? 'sha256');
  const blockSize = opts?.blockSize ?? DEFAULT_BLOCK_SIZE;
  if (typeof blockSize !== 'number' || !isPowerOfTwo(blockSize)) {
    throw fail('EINVAL', `invalid Merkle tree block size ${String(blockSize)}: it must be a power of two`);
  }
  const minimum = Math.max(minBlock, 2 * algorithm.digestSize);
  if (blockSize < minimum) {
    throw fail(
      'EINVAL',
      blockSize < 2 * algorithm.digestSize
        ? `Merkle tree block size ${blockSize} is too small for ${algorithm.name}: a block must hold at least two ${algorithm.digestSize}-byte digests (${2 * algorithm.digestSize} bytes)`
        : `Merkle tree block size ${blockSize} is too small ${who}: the smallest is ${minimum}`,
    );
  }
  if (blockSize > maxBlock) {
    throw fail('EINVAL', `Merkle tree block size ${blockSize} is too large ${who}: the largest is ${maxBlock}`);
  }
  const salt = opts?.salt ?? new Uint8Array(0);
  if (!isUint8Array(salt)) {
    throw fail('EINVAL', 'the salt must be a Uint8Array');
  }
  if (salt.length > MAX_SALT_SIZE) {
    throw fail(longSalt, `salt of ${salt.length} bytes is too long: fs-verity allows at most ${MAX_SALT_SIZE}`);
  }
  return Object.freeze({
    algorithm,
    blockSize,
    logBlockSize: Math.round(Math.log2(blockSize)),
    salt: salt.slice(),
  });
}

/**
 * Check parameters for a standalone digest. Accepts and refuses exactly as
 * fsverity-utils' `fsverity digest` does; throws EINVAL saying what is wrong.
 */
export function validateDigestParams(opts?: VerityParamsOptions): VerityParams {
  return common(opts, MAX_DIGEST_BLOCK_SIZE, 1, 'for fsverity digest', 'EINVAL');
}

/**
 * Check parameters for sealing a file of the engine: the kernel's limits
 * (Merkle block 1024..65536), stricter than `validateDigestParams`. A salt
 * over 32 bytes is EMSGSIZE here, as FS_IOC_ENABLE_VERITY says ("the salt
 * or signature is too long"); `fsverity digest` keeps its own EINVAL.
 */
export function validateSealParams(opts?: VerityParamsOptions): VerityParams {
  return common(opts, MAX_SEAL_BLOCK_SIZE, MIN_SEAL_BLOCK_SIZE, 'for enabling fs-verity on a file', 'EMSGSIZE');
}

/**
 * The shape of the Merkle tree over `dataSize` bytes. Levels are numbered as
 * in the kernel: level 0 holds the hashes of data blocks, level
 * `numLevels - 1` is the single block whose hash is the root hash. They are
 * stored root level first, each level's blocks in order, so block `i` of
 * level `l` is at byte `(levelStart[l] + i) * blockSize` of the tree.
 */
export interface MerkleTreeParams extends VerityParams {
  readonly dataSize: number;
  readonly digestSize: number;
  /** Digests per tree block: blockSize / digestSize (always a power of two). */
  readonly hashesPerBlock: number;
  readonly logArity: number;
  /** Number of data blocks: ceil(dataSize / blockSize). */
  readonly dataBlocks: number;
  /** 0 when the file has at most one block: no tree is stored. */
  readonly numLevels: number;
  /** Blocks in each level, level 0 first. */
  readonly levelBlocks: readonly number[];
  /** First block of each level within the stored tree, in blocks. */
  readonly levelStart: readonly number[];
  readonly treeBlocks: number;
  /** Bytes of the stored tree: treeBlocks * blockSize. */
  readonly treeSize: number;
}

/** Compute the tree's shape for checked `params` over a file of `dataSize` bytes. */
export function computeMerkleTreeParams(params: VerityParams, dataSize: number): MerkleTreeParams {
  if (!Number.isSafeInteger(dataSize) || dataSize < 0) {
    throw fail(dataSize > MAX_OFFSET ? 'EFBIG' : 'EINVAL', `invalid data size ${dataSize}: must be an integer from 0 to ${MAX_OFFSET}`);
  }
  const digestSize = params.algorithm.digestSize;
  const hashesPerBlock = params.blockSize / digestSize;
  const dataBlocks = Math.ceil(dataSize / params.blockSize);
  const levelBlocks: number[] = [];
  for (let n = dataBlocks; n > 1; ) {
    n = Math.ceil(n / hashesPerBlock);
    levelBlocks.push(n);
  }
  const levelStart: number[] = new Array<number>(levelBlocks.length);
  let at = 0;
  for (let l = levelBlocks.length - 1; l >= 0; l--) {
    levelStart[l] = at;
    at += levelBlocks[l]!;
  }
  return Object.freeze({
    ...params,
    dataSize,
    digestSize,
    hashesPerBlock,
    logArity: Math.round(Math.log2(hashesPerBlock)),
    dataBlocks,
    numLevels: levelBlocks.length,
    levelBlocks: Object.freeze(levelBlocks),
    levelStart: Object.freeze(levelStart),
    treeBlocks: at,
    treeSize: at * params.blockSize,
  });
}
