/**
 * Where each piece of a file's verity metadata sits inside its metadata area
 * (docs/DESIGN-NOTES.md, "Where verity metadata lives"), relative to the area's start:
 *
 *   [0, treeSize)                 the Merkle tree, levels root first; blocks
 *                                 that are only an all-zero subtree's digest
 *                                 repeated are not written (they read as
 *                                 zeros and are synthesized on read)
 *   descOffset = roundUp(treeSize, 65536)
 *   [descOffset, +descSize)       the descriptor (256 bytes) and its built-in
 *                                 signature if any (sig_size bytes), as
 *                                 ext4 and f2fs store them
 *   sizeOffset = roundUp(descOffset + descSize + 4, fsBlockSize) - 4
 *   [sizeOffset, +4)              descSize as a big-endian u32: the last
 *                                 bytes of the area, found from its end
 */
import { fail } from '../errors.js';
import { DESCRIPTOR_SIZE } from './descriptor.js';

/** Alignment of the descriptor inside the metadata area (see the sizing policy in docs/DESIGN-NOTES.md). */
export const VERITY_DESC_ALIGN = 65536;

/** The largest built-in signature (the kernel's FS_VERITY_MAX_SIGNATURE_SIZE: a 16 KiB descriptor less its fixed part). */
export const MAX_SIGNATURE_SIZE = 16384 - DESCRIPTOR_SIZE;

/** Offsets of the pieces of a metadata area, relative to its start. */
export interface VerityLayout {
  readonly treeSize: number;
  readonly descOffset: number;
  readonly descSize: number;
  readonly sizeOffset: number;
  /** Bytes from the area's start to its end (just past the size field). */
  readonly end: number;
}

function roundUp(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

/** The layout of a freshly written area, with a signature of `sigSize` bytes after the descriptor. */
export function verityLayout(treeSize: number, fsBlockSize: number, sigSize = 0): VerityLayout {
  if (!Number.isSafeInteger(sigSize) || sigSize < 0 || sigSize > MAX_SIGNATURE_SIZE) {
    throw fail('EMSGSIZE', `an fs-verity signature of ${sigSize} bytes is too large: at most ${MAX_SIGNATURE_SIZE} bytes are allowed`);
  }
  const descOffset = roundUp(treeSize, VERITY_DESC_ALIGN);
  const descSize = DESCRIPTOR_SIZE + sigSize;
  const sizeOffset = roundUp(descOffset + descSize + 4, fsBlockSize) - 4;
  return { treeSize, descOffset, descSize, sizeOffset, end: sizeOffset + 4 };
}

/**
 * Where the descriptor is, given the area's end (the end of the file's last
 * extent past EOF) and the size field read from the last four bytes. This
 * is the one door for those two untrusted numbers: a size smaller than a
 * descriptor or larger than one with the largest signature, or a position
 * that cannot hold it, is ERANGE.
 */
export function locateDescriptor(areaEnd: number, descSize: number): { descOffset: number; descSize: number } {
  if (!Number.isSafeInteger(areaEnd) || areaEnd < DESCRIPTOR_SIZE + 4) {
    throw fail('ERANGE', `fs-verity metadata area of ${areaEnd} bytes is too small to hold a descriptor`);
  }
  if (descSize < DESCRIPTOR_SIZE || descSize > DESCRIPTOR_SIZE + MAX_SIGNATURE_SIZE) {
    throw fail('ERANGE', `fs-verity descriptor size field says ${descSize} bytes; ${DESCRIPTOR_SIZE} to ${DESCRIPTOR_SIZE + MAX_SIGNATURE_SIZE} (with a signature) are possible`);
  }
  const sizeOffset = areaEnd - 4;
  const descOffset = Math.floor((sizeOffset - descSize) / VERITY_DESC_ALIGN) * VERITY_DESC_ALIGN;
  if (descOffset + descSize > sizeOffset) {
    throw fail('ERANGE', `fs-verity descriptor of ${descSize} bytes does not fit before its size field at ${sizeOffset}`);
  }
  return { descOffset, descSize };
}
