/**
 * iomap-verity: the public API.
 *
 * Standalone fs-verity (`fsverityDigest`, `fsverityDigestFile`), block
 * devices, and the engine (`Volume`, `File`). Filesystem authors find the
 * iomap layer under 'iomap-verity/iomap'.
 */
export { IomapVerityError, isErrno } from './errors.js';
export type { ErrnoCode } from './errors.js';

// Standalone fs-verity: digests identical to `fsverity digest`.
export { fsverityDigest } from './verity/digest.js';
export type { FsverityDigestOptions, FsverityDigestResult, DigestInput } from './verity/digest.js';
export { fsverityDigestFile } from './verity/digest-file.js';
export type { FsverityDigestFileOptions } from './verity/digest-file.js';
// Building blocks for filesystems that seal files with fs-verity.
export {
  validateDigestParams,
  validateSealParams,
  computeMerkleTreeParams,
  DEFAULT_BLOCK_SIZE,
  MAX_SALT_SIZE,
  MAX_DIGEST_BLOCK_SIZE,
  MIN_SEAL_BLOCK_SIZE,
  MAX_SEAL_BLOCK_SIZE,
} from './verity/params.js';
export type { VerityParams, VerityParamsOptions, MerkleTreeParams } from './verity/params.js';
export { HASH_ALGORITHMS, hashAlgorithmByName, hashAlgorithmById, createBlockHasher } from './verity/hash-algs.js';
export type { HashAlgorithm, HashAlgorithmName, BlockHasher } from './verity/hash-algs.js';
export {
  DESCRIPTOR_SIZE,
  encodeDescriptor,
  validateDescriptor,
  computeFileDigest,
  formatDigest,
  toHex,
} from './verity/descriptor.js';
export type { VerityDescriptor } from './verity/descriptor.js';
export { MerkleTreeBuilder } from './verity/tree.js';
export type { MerkleBlockSink, MerkleTreeResult } from './verity/tree.js';
// The engine: block devices, and the reference filesystem over them.
export { BlockDevice, MemoryDevice, FileDevice, FaultyDevice } from './device/index.js';
export type { MemoryDeviceOptions, FileDeviceOptions, FaultyDeviceOptions, FaultRule, CrashKeep } from './device/index.js';
export { Volume, File } from './fs/index.js';
export type { VolumeFormatOptions, VolumeOpenOptions, VolumeSpace, RenameOptions, AllocateOptions, EnableVerityOptions, MetaStore, VerityMeasurement, VerityMetadataType } from './fs/index.js';
