/**
 * Opening a sealed file's fs-verity state (the library half of the kernel's
 * fs/verity/open.c): the descriptor is asked of the filesystem
 * (`VerityOps.getDescriptor`), checked through the one validating door
 * (`validateDescriptor`, kernel rules), matched against the file's size,
 * and turned into the verifier that every later read of the file uses.
 */
import { fail } from '../errors.js';
import { DESCRIPTOR_SIZE, validateDescriptor, type VerityDescriptor } from './descriptor.js';
import type { VerityOps } from './verity-ops.js';
import { MerkleVerifier } from './verify.js';

/**
 * What a sealed file keeps in memory once opened, the kernel's
 * `struct fsverity_info`: the descriptor as stored (signature included),
 * taken apart, and the verifier over its tree. `dispose` releases the
 * verifier's WASM memory; the info is unusable after it.
 */
export interface VerityInfo {
  /** The stored bytes: the 256-byte descriptor, then the signature if any. */
  readonly descriptorBytes: Uint8Array;
  readonly descriptor: VerityDescriptor;
  readonly verifier: MerkleVerifier;
  dispose(): void;
}

/**
 * Read, check and take apart the descriptor of a sealed file of `dataSize`
 * bytes and build its verifier. `what` names the file in messages.
 * Errors: whatever `getDescriptor` rejects with (ERANGE, EIO); EINVAL/EFBIG
 * from `validateDescriptor` for a damaged descriptor; EINVAL when the
 * descriptor is for another size than the file has (the kernel's
 * "inconsistent i_size" check).
 */
export async function openVerity(ops: VerityOps, dataSize: number, what: string): Promise<VerityInfo> {
  const descriptorBytes = await ops.getDescriptor();
  const descriptor = validateDescriptor(descriptorBytes, { rules: 'seal' });
  if (descriptor.dataSize !== dataSize) {
    throw fail('EINVAL', `fs-verity descriptor of ${what} is for ${descriptor.dataSize} bytes, the file has ${dataSize}`);
  }
  // The stored size covers the descriptor and its signature, nothing more:
  // any other size means the size field or sig_size was damaged.
  if (descriptorBytes.length !== DESCRIPTOR_SIZE + descriptor.signature.length) {
    throw fail('EINVAL', `fs-verity descriptor of ${what} is stored in ${descriptorBytes.length} bytes but holds ${DESCRIPTOR_SIZE + descriptor.signature.length} (256 and a ${descriptor.signature.length}-byte signature)`);
  }
  const verifier = await MerkleVerifier.create(descriptor, ops, what);
  return { descriptorBytes, descriptor, verifier, dispose: () => verifier.dispose() };
}
