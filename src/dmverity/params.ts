/**
 * dm-verity parameters and the shape of its hash tree, as cryptsetup's
 * `veritysetup` and the kernel's dm-verity target lay it out.
 *
 * A hash block holds 2^k hashes, the largest power of two that fits
 * (`hash_per_block_bits`). In format 1 each hash sits in a slot padded
 * with zeros to the next power of two of the digest size; format 0 (the
 * original Chrome OS layout) packs them back to back. The rest of a
 * block is zeros. The tree is stored top level first, each level's
 * blocks in order, after the superblock's hash block (or at the hash
 * offset when there is no superblock). A device of one data block has no
 * stored tree: its root hash is that block's hash.
 */
import { fail, isUint8Array } from '../errors.js';

/** Names accepted for `hashAlgorithm`. */
export type DmverityHashName = 'sha256' | 'sha512' | 'sha1';

/** The algorithms we hash with, and their digest sizes. */
export const DMVERITY_HASH_ALGORITHMS: Readonly<Record<DmverityHashName, number>> = Object.freeze({
  sha256: 32,
  sha512: 64,
  sha1: 20,
});

/** Smallest block size veritysetup accepts (block sizes are powers of two). */
export const DMVERITY_MIN_BLOCK_SIZE = 512;
/** Largest block size veritysetup accepts (the kernel activates only up to the page size). */
export const DMVERITY_MAX_BLOCK_SIZE = 512 * 1024;
/** Largest salt the superblock holds. */
export const DMVERITY_MAX_SALT_SIZE = 256;
/** veritysetup's default salt size, used when no salt is given. */
export const DMVERITY_DEFAULT_SALT_SIZE = 32;
/** The kernel's limit on tree levels. */
export const DMVERITY_MAX_LEVELS = 63;

/** Options shared by format and verify; every field defaults as veritysetup does. */
export interface DmverityParamsOptions {
  /** 'sha256' (default), 'sha512' or 'sha1'. */
  hashAlgorithm?: string;
  /** Data block size in bytes, 512 to 512 KiB, a power of two (default 4096). */
  dataBlockSize?: number;
  /** Hash block size in bytes, 512 to 512 KiB, a power of two (default 4096). */
  hashBlockSize?: number;
  /** Salt bytes, at most 256. Default for format: 32 random bytes. */
  salt?: Uint8Array;
  /** 1 (default: salt before each block, padded hash slots) or 0 (Chrome OS: salt after, packed). */
  format?: number;
  /** Write (or expect) the 512-byte superblock at the hash offset (default true). */
  superblock?: boolean;
  /** The superblock's UUID, 8-4-4-4-12 hex digits, as `0b3f6c2a-58d4-4e7c-9a61-2f0d8e5b7c13` (default: random). */
  uuid?: string;
  /** Byte offset of the superblock (or tree) in the hash device, a multiple of 512 (default 0). */
  hashOffset?: number;
  /** Number of data blocks to protect (default: the data's size over the data block size). */
  dataBlocks?: number;
}

/** Validated parameters: what the superblock says, plus where it is. */
export interface DmverityParams {
  readonly hashAlgorithm: DmverityHashName;
  readonly digestSize: number;
  readonly dataBlockSize: number;
  readonly hashBlockSize: number;
  readonly salt: Uint8Array;
  readonly format: 0 | 1;
  readonly superblock: boolean;
  /** Lower-case UUID, or '' without a superblock. */
  readonly uuid: string;
  readonly hashOffset: number;
  readonly dataBlocks: number;
}

/** The tree's shape: computed once, so finding a hash is arithmetic. */
export interface DmverityLayout {
  readonly params: DmverityParams;
  /** Hashes per hash block: a power of two. */
  readonly hashesPerBlock: number;
  readonly hashesPerBlockBits: number;
  /** Bytes from one hash to the next inside a block (digest size rounded up to a power of two in format 1). */
  readonly slotSize: number;
  /** Tree levels; level 0 holds the hashes of the data blocks. 0 when there is a single data block. */
  readonly levels: number;
  /** First hash block of each level, in hash blocks from the start of the hash device. */
  readonly levelStart: readonly number[];
  /** Blocks in each level. */
  readonly levelSize: readonly number[];
  /** First hash block of the tree (after the superblock), in hash blocks. */
  readonly treeStart: number;
  /** Blocks of the tree: veritysetup's "Hash blocks". */
  readonly hashBlocks: number;
  /** Bytes from the start of the hash device to the end of the tree. */
  readonly hashDeviceSize: number;
}

/** Where the hash of a block is stored. */
export interface DmverityHashLocation {
  /** Hash block holding it, from the start of the hash device. */
  readonly hashBlock: number;
  /** Byte offset of the hash in the hash device. */
  readonly offset: number;
  /** Slot of the hash inside its block. */
  readonly slot: number;
}

function isPow2(n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
}

function blockSize(v: unknown, what: string): number {
  const n = v ?? 4096;
  if (typeof n !== 'number' || !isPow2(n) || n < DMVERITY_MIN_BLOCK_SIZE || n > DMVERITY_MAX_BLOCK_SIZE) {
    throw fail('EINVAL', `unsupported ${what} ${String(n)}: a power of two from ${DMVERITY_MIN_BLOCK_SIZE} to ${DMVERITY_MAX_BLOCK_SIZE} bytes`);
  }
  return n;
}

/** The algorithm named `name`, or EINVAL naming those supported. */
export function requireDmverityHash(name: unknown): DmverityHashName {
  const n = name ?? 'sha256';
  if (typeof n !== 'string' || !Object.hasOwn(DMVERITY_HASH_ALGORITHMS, n.toLowerCase())) {
    throw fail(
      'EINVAL',
      `hash algorithm ${JSON.stringify(n)} not supported: dm-verity here supports ${Object.keys(DMVERITY_HASH_ALGORITHMS).join(', ')}`,
    );
  }
  return n.toLowerCase() as DmverityHashName;
}

const UUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** The 16 bytes of a UUID string, or EINVAL. */
export function parseUuid(uuid: string): Uint8Array {
  if (!UUID_RE.test(uuid)) throw fail('EINVAL', `wrong UUID format ${JSON.stringify(uuid)}: expected 8-4-4-4-12 hex digits such as 0b3f6c2a-58d4-4e7c-9a61-2f0d8e5b7c13`);
  const hex = uuid.replace(/-/g, '');
  const out = new Uint8Array(16);
  for (let i = 0; i < 16; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** A UUID's 16 bytes as the lower-case string `uuid_unparse` writes. */
export function formatUuid(bytes: Uint8Array): string {
  const h = Array.from(bytes.subarray(0, 16), (b) => b.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** A random version-4 UUID (what `uuid_generate` gives). */
export function randomUuid(): string {
  const b = new Uint8Array(16);
  globalThis.crypto.getRandomValues(b);
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  return formatUuid(b);
}

/**
 * Validate `opts` into parameters. `dataBlocks` defaults to whole blocks of
 * `dataSize` (bytes of the data device; a trailing partial block is not
 * protected, as veritysetup does). `randomSalt`: make veritysetup's random
 * 32-byte salt when none is given (format), else an empty one.
 */
export function validateDmverityParams(opts: DmverityParamsOptions | undefined, dataSize: number | undefined, randomSalt: boolean): DmverityParams {
  const o = opts ?? {};
  const hashAlgorithm = requireDmverityHash(o.hashAlgorithm);
  const dataBlockSize = blockSize(o.dataBlockSize, 'data block size');
  const hashBlockSize = blockSize(o.hashBlockSize, 'hash block size');
  const format = o.format ?? 1;
  if (format !== 0 && format !== 1) throw fail('EINVAL', `unsupported dm-verity hash type ${String(format)}: 0 (Chrome OS) or 1 (normal)`);
  let salt: Uint8Array;
  if (o.salt === undefined) {
    salt = new Uint8Array(randomSalt ? DMVERITY_DEFAULT_SALT_SIZE : 0);
    if (randomSalt) globalThis.crypto.getRandomValues(salt);
  } else {
    if (!(o.salt instanceof Uint8Array)) throw fail('EINVAL', 'salt must be a Uint8Array');
    if (o.salt.length > DMVERITY_MAX_SALT_SIZE) throw fail('EINVAL', `salt of ${o.salt.length} bytes: at most ${DMVERITY_MAX_SALT_SIZE}`);
    salt = o.salt.slice();
  }
  const superblock = o.superblock ?? true;
  let uuid = '';
  if (superblock) uuid = o.uuid === undefined ? randomUuid() : formatUuid(parseUuid(o.uuid));
  const hashOffset = requireHashOffset(o.hashOffset);
  let dataBlocks = o.dataBlocks;
  if (dataBlocks === undefined || dataBlocks === 0) {
    if (dataSize === undefined) throw fail('EINVAL', 'dataBlocks must be given when the data size is not known');
    dataBlocks = Math.floor(dataSize / dataBlockSize);
  }
  if (!Number.isSafeInteger(dataBlocks) || dataBlocks < 1) {
    throw fail('EINVAL', `the data device holds ${String(dataBlocks)} blocks of ${dataBlockSize} bytes: at least one is needed`);
  }
  if (dataSize !== undefined && dataBlocks * dataBlockSize > dataSize) {
    throw fail('EIO', `the data device holds ${dataSize} bytes, less than ${dataBlocks} blocks of ${dataBlockSize}`);
  }
  const digestSize = DMVERITY_HASH_ALGORITHMS[hashAlgorithm];
  return { hashAlgorithm, digestSize, dataBlockSize, hashBlockSize, salt, format, superblock, uuid, hashOffset, dataBlocks };
}

/** A hash offset (default 0): a multiple of 512 bytes, or EINVAL. */
export function requireHashOffset(v: unknown): number {
  const n = v ?? 0;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0 || n % 512 !== 0) {
    throw fail('EINVAL', `unsupported hash offset ${String(n)}: a multiple of 512 bytes`);
  }
  return n;
}

/**
 * A root hash given as hex or bytes: the bytes, or EINVAL. With
 * `digestSize`, it must be one digest long.
 */
export function parseDmverityRootHash(rootHash: unknown, digestSize?: number): Uint8Array {
  let bytes: Uint8Array;
  if (isUint8Array(rootHash)) {
    bytes = rootHash.slice();
  } else {
    if (typeof rootHash !== 'string' || !/^([0-9a-fA-F]{2})+$/.test(rootHash)) {
      throw fail('EINVAL', `invalid root hash ${JSON.stringify(rootHash)}: hex digits expected, as veritysetup prints it`);
    }
    bytes = Uint8Array.from(rootHash.match(/../g)!, (h) => parseInt(h, 16));
  }
  if (digestSize !== undefined && bytes.length !== digestSize) {
    throw fail('EINVAL', `root hash of ${bytes.length} bytes (${2 * bytes.length} hex digits): this tree's hashes have ${digestSize} (${2 * digestSize} hex digits)`);
  }
  return bytes;
}

/** The tree's shape for validated parameters; EINVAL when it cannot exist (too many levels, offsets past 2^53). */
export function computeDmverityLayout(params: DmverityParams): DmverityLayout {
  const { digestSize, hashBlockSize: hbs, dataBlocks, format } = params;
  const bits = Math.floor(Math.log2(Math.floor(hbs / digestSize)));
  const per = 2 ** bits;
  const slotSize = format === 1 ? 2 ** Math.ceil(Math.log2(digestSize)) : digestSize;
  let levels = 0;
  while (bits * levels < 64 && Math.floor((dataBlocks - 1) / 2 ** (bits * levels)) > 0) levels++;
  if (levels > DMVERITY_MAX_LEVELS) throw fail('EINVAL', `a tree of ${levels} levels: dm-verity allows ${DMVERITY_MAX_LEVELS}`);
  // The superblock takes the first hash block(s) from the offset: the tree
  // starts at the first hash block boundary after its 512 bytes.
  const treeStart = params.superblock ? Math.ceil((params.hashOffset + 512) / hbs) : Math.floor(params.hashOffset / hbs);
  const levelStart: number[] = new Array<number>(levels);
  const levelSize: number[] = new Array<number>(levels);
  let pos = treeStart;
  for (let i = levels - 1; i >= 0; i--) {
    levelStart[i] = pos;
    levelSize[i] = Math.ceil(dataBlocks / 2 ** ((i + 1) * bits));
    pos += levelSize[i]!;
  }
  const hashDeviceSize = pos * hbs;
  if (!Number.isSafeInteger(hashDeviceSize)) throw fail('EINVAL', 'the hash device would be larger than 2^53 bytes');
  return { params, hashesPerBlock: per, hashesPerBlockBits: bits, slotSize, levels, levelStart, levelSize, treeStart, hashBlocks: pos - treeStart, hashDeviceSize };
}

/**
 * Where the hash of block `index` of level `level - 1` is stored: with
 * `level` 0, `index` is a data block and the hash is in level 0; with
 * `level` n, `index` is a block of level n - 1. This is the lookup a
 * verified reader does from a data block up to the root: for data block
 * b, level i holds its ancestor's hash at `dmverityHashLocation(layout, i,
 * floor(b / hashesPerBlock^i))`.
 */
export function dmverityHashLocation(layout: DmverityLayout, level: number, index: number): DmverityHashLocation {
  if (!Number.isInteger(level) || level < 0 || level >= layout.levels) {
    throw fail('EINVAL', `level ${level} of a tree of ${layout.levels} levels`);
  }
  const count = level === 0 ? layout.params.dataBlocks : layout.levelSize[level - 1]!;
  if (!Number.isInteger(index) || index < 0 || index >= count) throw fail('EINVAL', `block ${index} of ${count} below level ${level}`);
  const per = layout.hashesPerBlock;
  const hashBlock = layout.levelStart[level]! + Math.floor(index / per);
  const slot = index % per;
  return { hashBlock, slot, offset: hashBlock * layout.params.hashBlockSize + slot * layout.slotSize };
}
