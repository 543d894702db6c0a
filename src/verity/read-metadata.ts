/**
 * FS_IOC_READ_VERITY_METADATA (the kernel's fs/verity/read_metadata.c):
 * pread over one kind of an opened sealed file's metadata.
 */
import { fail } from '../errors.js';
import { DESCRIPTOR_SIZE } from './descriptor.js';
import type { VerityInfo } from './open.js';

/** The kinds of metadata FS_VERITY_METADATA_TYPE_* names. */
export type VerityMetadataType = 'merkle_tree' | 'descriptor' | 'signature';

/** Where the descriptor keeps `sig_size` (a le32). */
const SIG_SIZE_OFFSET = 4;

function window(bytes: Uint8Array, offset: number, length: number): Uint8Array {
  return bytes.slice(Math.min(offset, bytes.length), Math.min(offset + length, bytes.length));
}

/**
 * Up to `length` bytes at `offset` (checked non-negative integers) of:
 * 'merkle_tree', the tree as `fsverity digest --out-merkle-tree` writes it
 * (unstored blocks filled in; EIO or EINVAL when a tree block fails to read
 * or verify); 'descriptor', the 256 bytes of `--out-descriptor` (no
 * signature); 'signature', the built-in signature, ENODATA when the file
 * has none. Short at the end, empty past it. `what` names the file.
 */
export async function readVerityMetadata(
  info: VerityInfo,
  type: VerityMetadataType,
  offset: number,
  length: number,
  what: string,
): Promise<Uint8Array> {
  switch (type) {
    case 'merkle_tree':
      return info.verifier.readTree(offset, length);
    case 'descriptor': {
      // As the kernel returns it: without the signature, so sig_size reads 0.
      const d = info.descriptorBytes.slice(0, DESCRIPTOR_SIZE);
      new DataView(d.buffer).setUint32(SIG_SIZE_OFFSET, 0, true);
      return window(d, offset, length);
    }
    case 'signature':
      if (info.descriptor.signature.length === 0) throw fail('ENODATA', `${what} has no fs-verity built-in signature`);
      return window(info.descriptor.signature, offset, length);
  }
}
