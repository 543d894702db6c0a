/**
 * The veritysetup superblock: 512 bytes at the hash offset of the hash
 * device, little-endian (cryptsetup's `struct verity_sb`):
 *
 *   0  signature "verity\0\0"     8  version (u32, 1)      12 hash type (u32, 0 or 1)
 *   16 uuid (16 bytes)            32 algorithm (32 bytes, NUL-terminated, lower case)
 *   64 data block size (u32)      68 hash block size (u32) 72 data blocks (u64)
 *   80 salt size (u16)            82 padding (6)           88 salt (256)
 *   344 padding (168)
 *
 * `decodeDmveritySuperblock` is the one door for a superblock read from a
 * device: everything behind it trusts its result. `dmverityParamsFromSuperblock`
 * goes through it and then holds the parameters a caller gave beside it.
 */
import { fail } from '../errors.js';
import {
  DMVERITY_HASH_ALGORITHMS,
  DMVERITY_MAX_BLOCK_SIZE,
  DMVERITY_MAX_SALT_SIZE,
  DMVERITY_MIN_BLOCK_SIZE,
  formatUuid,
  parseUuid,
  requireDmverityHash,
  type DmverityParams,
  type DmverityParamsOptions,
} from './params.js';

/** Bytes of the superblock. */
export const DMVERITY_SUPERBLOCK_SIZE = 512;
const SIGNATURE = [0x76, 0x65, 0x72, 0x69, 0x74, 0x79, 0, 0]; // "verity\0\0"

/** The superblock of `params` (which must have `superblock` set and a UUID). */
export function encodeDmveritySuperblock(params: DmverityParams): Uint8Array {
  const sb = new Uint8Array(DMVERITY_SUPERBLOCK_SIZE);
  const dv = new DataView(sb.buffer);
  sb.set(SIGNATURE, 0);
  dv.setUint32(8, 1, true);
  dv.setUint32(12, params.format, true);
  sb.set(parseUuid(params.uuid), 16);
  sb.set(new TextEncoder().encode(params.hashAlgorithm), 32);
  dv.setUint32(64, params.dataBlockSize, true);
  dv.setUint32(68, params.hashBlockSize, true);
  dv.setBigUint64(72, BigInt(params.dataBlocks), true);
  dv.setUint16(80, params.salt.length, true);
  sb.set(params.salt, 88);
  return sb;
}

function blockSizeOk(n: number): boolean {
  return n >= DMVERITY_MIN_BLOCK_SIZE && n <= DMVERITY_MAX_BLOCK_SIZE && (n & (n - 1)) === 0;
}

/**
 * Parse and check a superblock found at `hashOffset`. EINVAL, with what is
 * wrong, for: a wrong signature (not a dm-verity hash device), a version
 * other than 1, a hash type other than 0 or 1, block sizes out of range,
 * an algorithm we do not support, a salt size over 256, no data blocks or
 * more than 2^53 bytes of data.
 */
export function decodeDmveritySuperblock(bytes: Uint8Array, hashOffset = 0): DmverityParams {
  if (!(bytes instanceof Uint8Array) || bytes.length < DMVERITY_SUPERBLOCK_SIZE) {
    throw fail('EINVAL', `not a dm-verity hash device: ${bytes?.length ?? 0} bytes where a 512-byte superblock should be`);
  }
  for (let i = 0; i < 8; i++) {
    if (bytes[i] !== SIGNATURE[i]) throw fail('EINVAL', `not a dm-verity hash device: no "verity" signature at offset ${hashOffset}`);
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, DMVERITY_SUPERBLOCK_SIZE);
  const version = dv.getUint32(8, true);
  if (version !== 1) throw fail('EINVAL', `unsupported dm-verity superblock version ${version}: only 1 exists`);
  const format = dv.getUint32(12, true);
  if (format > 1) throw fail('EINVAL', `unsupported dm-verity hash type ${format}: 0 or 1`);
  const dataBlockSize = dv.getUint32(64, true);
  const hashBlockSize = dv.getUint32(68, true);
  if (!blockSizeOk(dataBlockSize) || !blockSizeOk(hashBlockSize)) {
    throw fail('EINVAL', `unsupported dm-verity block sizes ${dataBlockSize} (data) and ${hashBlockSize} (hash)`);
  }
  const algBytes = bytes.subarray(32, 64);
  const nul = algBytes.indexOf(0);
  const algorithm = new TextDecoder().decode(algBytes.subarray(0, nul < 0 ? 32 : nul));
  const hashAlgorithm = requireDmverityHash(algorithm);
  const dataBlocks = dv.getBigUint64(72, true);
  if (dataBlocks === 0n || dataBlocks * BigInt(dataBlockSize) > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw fail('EINVAL', `dm-verity superblock says ${dataBlocks} data blocks: need 1 to 2^53 bytes of data`);
  }
  const saltSize = dv.getUint16(80, true);
  if (saltSize > DMVERITY_MAX_SALT_SIZE) throw fail('EINVAL', `dm-verity superblock corrupted: salt size ${saltSize} over ${DMVERITY_MAX_SALT_SIZE}`);
  return {
    hashAlgorithm,
    digestSize: DMVERITY_HASH_ALGORITHMS[hashAlgorithm],
    dataBlockSize,
    hashBlockSize,
    salt: bytes.slice(88, 88 + saltSize),
    format: format as 0 | 1,
    superblock: true,
    uuid: formatUuid(bytes.subarray(16, 32)),
    hashOffset,
    dataBlocks: Number(dataBlocks),
  };
}

/**
 * The parameters of the superblock `bytes` found at `hashOffset`, decoded
 * by `decodeDmveritySuperblock` (its EINVAL for a bad superblock), with
 * every parameter set in `given` held against it: EINVAL naming the first
 * one that differs (hash algorithm, block sizes, salt, format, UUID, data
 * blocks). Options left undefined are taken from the superblock.
 */
export function dmverityParamsFromSuperblock(bytes: Uint8Array, hashOffset: number, given: DmverityParamsOptions = {}): DmverityParams {
  const p = decodeDmveritySuperblock(bytes, hashOffset);
  const differs = (what: string, theirs: unknown, ours: unknown): never => {
    throw fail('EINVAL', `the dm-verity superblock at offset ${hashOffset} says ${what} ${String(ours)}, the options say ${String(theirs)}`);
  };
  if (given.hashAlgorithm !== undefined && requireDmverityHash(given.hashAlgorithm) !== p.hashAlgorithm) differs('hash algorithm', given.hashAlgorithm, p.hashAlgorithm);
  if (given.dataBlockSize !== undefined && given.dataBlockSize !== p.dataBlockSize) differs('data block size', given.dataBlockSize, p.dataBlockSize);
  if (given.hashBlockSize !== undefined && given.hashBlockSize !== p.hashBlockSize) differs('hash block size', given.hashBlockSize, p.hashBlockSize);
  if (given.format !== undefined && given.format !== p.format) differs('format (hash type)', given.format, p.format);
  if (given.dataBlocks !== undefined && given.dataBlocks !== p.dataBlocks) differs('data blocks', given.dataBlocks, p.dataBlocks);
  if (given.salt !== undefined) {
    const hex = (b: Uint8Array) => (b.length ? Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('') : '-');
    if (!(given.salt instanceof Uint8Array)) throw fail('EINVAL', 'salt must be a Uint8Array');
    if (hex(given.salt) !== hex(p.salt)) differs('salt', hex(given.salt), hex(p.salt));
  }
  if (given.uuid !== undefined && formatUuid(parseUuid(given.uuid)) !== p.uuid) differs('UUID', given.uuid, p.uuid);
  return p;
}
