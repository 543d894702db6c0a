/**
 * The fs-verity descriptor: 256 bytes that pin down the file (parameters,
 * size, root hash). The file digest is the hash of the descriptor with no
 * signature, `sig_size` zero.
 *
 *   0  u8   version (1)          8  le64 data_size
 *   1  u8   hash_algorithm      16  u8[64] root_hash (digest, zero-padded)
 *   2  u8   log_blocksize       80  u8[32] salt (zero-padded)
 *   3  u8   salt_size          112  u8[144] reserved, zero
 *   4  le32 sig_size           256  signature (sig_size bytes), optional
 *
 * `validateDescriptor` is the only door for a descriptor read from
 * anywhere; whatever is behind it trusts its result.
 */
import { fail, MAX_OFFSET, isUint8Array } from '../errors.js';
import { hashAlgorithmById, hashBytes, MAX_DIGEST_SIZE, type HashAlgorithm } from './hash-algs.js';
import {
  MAX_SALT_SIZE,
  validateDigestParams,
  validateSealParams,
  type VerityParams,
} from './params.js';

/** Size of the descriptor without signature. */
export const DESCRIPTOR_SIZE = 256;

const OFF_VERSION = 0;
const OFF_ALG = 1;
const OFF_LOG_BS = 2;
const OFF_SALT_SIZE = 3;
const OFF_SIG_SIZE = 4;
const OFF_DATA_SIZE = 8;
const OFF_ROOT = 16;
const OFF_SALT = 80;
const OFF_RESERVED = 112;

/** A descriptor taken apart, after validation. */
export interface VerityDescriptor {
  readonly params: VerityParams;
  readonly dataSize: number;
  readonly rootHash: Uint8Array;
  /** The signature following the descriptor, empty when there is none. */
  readonly signature: Uint8Array;
}

/** Encode the descriptor (no signature, `sig_size` 0) for checked `params`. */
export function encodeDescriptor(params: VerityParams, dataSize: number, rootHash: Uint8Array): Uint8Array {
  if (rootHash.length !== params.algorithm.digestSize) {
    throw fail('EINVAL', `root hash has ${rootHash.length} bytes, ${params.algorithm.name} digests have ${params.algorithm.digestSize}`);
  }
  if (!Number.isSafeInteger(dataSize) || dataSize < 0) {
    throw fail('EINVAL', `invalid data size ${dataSize} for a descriptor`);
  }
  const d = new Uint8Array(DESCRIPTOR_SIZE);
  const dv = new DataView(d.buffer);
  d[OFF_VERSION] = 1;
  d[OFF_ALG] = params.algorithm.id;
  d[OFF_LOG_BS] = params.logBlockSize;
  d[OFF_SALT_SIZE] = params.salt.length;
  dv.setBigUint64(OFF_DATA_SIZE, BigInt(dataSize), true);
  d.set(rootHash, OFF_ROOT);
  d.set(params.salt, OFF_SALT);
  return d;
}

function allZero(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

/**
 * Check a descriptor (optionally followed by its signature) and take it
 * apart. Refuses, with EINVAL saying which field is wrong: a short buffer,
 * a version other than 1, an unknown algorithm, a block size the chosen
 * rules refuse (`rules: 'seal'`, the default, is the kernel's 1024..65536;
 * `'digest'` is fsverity-utils'), a salt over 32 bytes, nonzero bytes past
 * the digest in the root hash field, past the salt in the salt field or in
 * the reserved field, and a signature size larger than what follows. A data
 * size past 2^53 is EFBIG.
 */
export function validateDescriptor(bytes: Uint8Array, opts?: { rules?: 'seal' | 'digest' }): VerityDescriptor {
  if (!isUint8Array(bytes) || bytes.length < DESCRIPTOR_SIZE) {
    throw fail('EINVAL', `fs-verity descriptor too short: ${bytes?.length ?? 0} bytes, need ${DESCRIPTOR_SIZE}`);
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = bytes[OFF_VERSION]!;
  if (version !== 1) throw fail('EINVAL', `unsupported fs-verity descriptor version ${version}: only version 1 exists`);
  const algorithm = hashAlgorithmById(bytes[OFF_ALG]!);
  if (!algorithm) throw fail('EINVAL', `fs-verity descriptor names unknown hash algorithm ${bytes[OFF_ALG]}`);
  const logBs = bytes[OFF_LOG_BS]!;
  if (logBs > 30) throw fail('EINVAL', `fs-verity descriptor has an impossible block size 2^${logBs}`);
  const saltSize = bytes[OFF_SALT_SIZE]!;
  if (saltSize > MAX_SALT_SIZE) throw fail('EINVAL', `fs-verity descriptor salt size ${saltSize} exceeds ${MAX_SALT_SIZE}`);
  const sigSize = dv.getUint32(OFF_SIG_SIZE, true);
  if (sigSize > bytes.length - DESCRIPTOR_SIZE) {
    throw fail('EINVAL', `fs-verity descriptor claims a ${sigSize}-byte signature but only ${bytes.length - DESCRIPTOR_SIZE} bytes follow it`);
  }
  const dataSizeBig = dv.getBigUint64(OFF_DATA_SIZE, true);
  if (dataSizeBig > BigInt(MAX_OFFSET)) throw fail('EFBIG', `fs-verity descriptor data size ${dataSizeBig} is beyond 2^53`);
  if (!allZero(bytes.subarray(OFF_ROOT + algorithm.digestSize, OFF_ROOT + MAX_DIGEST_SIZE))) {
    throw fail('EINVAL', 'fs-verity descriptor has nonzero bytes after the root hash');
  }
  if (!allZero(bytes.subarray(OFF_SALT + saltSize, OFF_SALT + MAX_SALT_SIZE))) {
    throw fail('EINVAL', 'fs-verity descriptor has nonzero bytes after the salt');
  }
  if (!allZero(bytes.subarray(OFF_RESERVED, DESCRIPTOR_SIZE))) {
    throw fail('EINVAL', 'fs-verity descriptor has reserved bytes set');
  }
  const opt = { hashAlgorithm: algorithm.name, blockSize: 2 ** logBs, salt: bytes.slice(OFF_SALT, OFF_SALT + saltSize) };
  const params = (opts?.rules ?? 'seal') === 'seal' ? validateSealParams(opt) : validateDigestParams(opt);
  return {
    params,
    dataSize: Number(dataSizeBig),
    rootHash: bytes.slice(OFF_ROOT, OFF_ROOT + algorithm.digestSize),
    signature: bytes.slice(DESCRIPTOR_SIZE, DESCRIPTOR_SIZE + sigSize),
  };
}

/**
 * The fs-verity file digest: the hash of the 256-byte descriptor with
 * `sig_size` zero (what `FS_IOC_MEASURE_VERITY` and `fsverity digest` report).
 */
export async function computeFileDigest(algorithm: HashAlgorithm, descriptor: Uint8Array): Promise<Uint8Array> {
  if (descriptor.length < DESCRIPTOR_SIZE) throw fail('EINVAL', `fs-verity descriptor too short: ${descriptor.length} bytes`);
  const d = descriptor.slice(0, DESCRIPTOR_SIZE);
  new DataView(d.buffer).setUint32(OFF_SIG_SIZE, 0, true);
  return hashBytes(algorithm, d);
}

/** Lower-case hex of `bytes`. */
export function toHex(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += bytes[i]!.toString(16).padStart(2, '0');
  return s;
}

/** The digest as `fsverity digest` prints it: `sha256:<hex>`. */
export function formatDigest(algorithm: HashAlgorithm, digest: Uint8Array): string {
  return `${algorithm.name}:${toHex(digest)}`;
}
