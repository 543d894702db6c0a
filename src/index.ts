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
// Which worker threads hash in parallel here, if any.
export { leafHashPoolInfo } from './verity/pool.js';
export type { PoolWorkerKind } from './verity/pool.js';
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
// fs-verity built-in signatures: PKCS#7 as `fsverity sign` makes it.
export { signFsverityDigest, verifyFsveritySignature, formatSignedDigest } from './verity/signature.js';
export type {
  FsverityDigestInput,
  PemInput,
  SignFsverityDigestOptions,
  VerifyFsveritySignatureOptions,
  FsveritySignatureSigner,
} from './verity/signature.js';
export { MerkleTreeBuilder } from './verity/tree.js';
export type { MerkleBlockSink, MerkleTreeResult } from './verity/tree.js';
// The engine: block devices, and the reference filesystem over them.
export { BlockDevice, MemoryDevice, FileDevice, FaultyDevice } from './device/index.js';
export type { MemoryDeviceOptions, FileDeviceOptions, FaultyDeviceOptions, FaultRule, CrashKeep } from './device/index.js';
export { Volume, File } from './fs/index.js';
export type { VolumeFormatOptions, VolumeOpenOptions, VolumeSpace, RenameOptions, AllocateOptions, EnableVerityOptions, FileIoOptions, MetaStore } from './fs/index.js';
export type { VerityMeasurement } from './verity/measure.js';
export type { VerityMetadataType } from './verity/read-metadata.js';
// Serving a volume to other programs through FUSE (Linux; optional fuse-native).
export { mountVolume, DIGEST_XATTR } from './mount/index.js';
export type { Mount, MountOptions } from './mount/index.js';
// Verified reads from anywhere: a file, its tree and descriptor from any byte source, and a trusted digest.
export { openVerified, VerifiedFile, VerifiedReader, parseFsverityDigest } from './verity/verified-file.js';
export type { VerifiedSources, VerifiedTrust, OpenVerifiedOptions, VerifiedReadOptions, VerifiedStreamOptions } from './verity/verified-file.js';
export { openSource, toNodeReadable } from './source/index.js';
export type { ByteSource, ReaderLike, Src, SourceOptions, HttpSourceOptions } from './source/index.js';
// dm-verity: hash devices identical to `veritysetup format`'s, their verification, and verified reads.
export {
  dmverityFormat,
  dmverityVerify,
  dmverityReadParams,
  openDmverity,
  DmverityFile,
  dmverityParamsFromSuperblock,
  parseDmverityRootHash,
  dmverityHashLocation,
  computeDmverityLayout,
  validateDmverityParams,
  encodeDmveritySuperblock,
  decodeDmveritySuperblock,
  requireDmverityHash,
  dmverityHex,
  DMVERITY_HASH_ALGORITHMS,
  DMVERITY_SUPERBLOCK_SIZE,
  DMVERITY_MIN_BLOCK_SIZE,
  DMVERITY_MAX_BLOCK_SIZE,
  DMVERITY_MAX_SALT_SIZE,
  DMVERITY_DEFAULT_SALT_SIZE,
} from './dmverity/index.js';
export type {
  DmverityHashName,
  DmverityParams,
  DmverityParamsOptions,
  DmverityLayout,
  DmverityHashLocation,
  DmverityFormatOptions,
  DmverityFormatResult,
  DmverityHashSink,
  DmverityVerifyOptions,
  DmverityVerifyResult,
  DmverityFailure,
  DmverityInput,
  DmveritySources,
  DmverityTrust,
} from './dmverity/index.js';
