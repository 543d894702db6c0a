/**
 * FS_IOC_MEASURE_VERITY (the kernel's fs/verity/measure.c): the file digest
 * of an opened sealed file, from its descriptor.
 */
import { computeFileDigest, formatDigest } from './descriptor.js';
import type { VerityInfo } from './open.js';

/** What measuring a sealed file gives: the same digest `fsverity measure` prints. */
export interface VerityMeasurement {
  algorithm: 'sha256' | 'sha512';
  digest: Uint8Array;
  /** `sha256:<hex>`, as `fsverity measure` prints it. */
  formatted: string;
}

/**
 * The file digest: the hash of the descriptor with `sig_size` zero, so a
 * signature never changes it. Never fails for an opened file.
 */
export async function measureVerity(info: VerityInfo): Promise<VerityMeasurement> {
  const alg = info.descriptor.params.algorithm;
  const digest = await computeFileDigest(alg, info.descriptorBytes);
  return { algorithm: alg.name, digest, formatted: formatDigest(alg, digest) };
}
