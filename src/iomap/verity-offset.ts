/**
 * Where fs-verity metadata starts in the page cache (the sizing
 * policy of docs/DESIGN-NOTES.md): the first folio boundary after the largest folio that can hold
 * EOF, so no folio ever mixes file data with Merkle tree blocks, and the
 * writeback rule "an FSVERITY folio starts at or after i_size" holds for
 * every folio size up to `maxFolioSize`.
 */
import { fail, MAX_OFFSET } from '../errors.js';

/** roundUp(iSize, maxFolioSize); `maxFolioSize` must be a power of two. */
export function fsverityMetadataOffset(iSize: number, maxFolioSize: number): number {
  if (!Number.isSafeInteger(iSize) || iSize < 0)
    throw fail('EINVAL', `i_size ${iSize} must be a non-negative integer below 2^53`);
  if (!Number.isSafeInteger(maxFolioSize) || maxFolioSize < 4096 || !Number.isInteger(Math.log2(maxFolioSize)))
    throw fail('EINVAL', `max folio size ${maxFolioSize} must be a power of two of at least 4096`);
  const r = Math.ceil(iSize / maxFolioSize) * maxFolioSize;
  if (r > MAX_OFFSET) throw fail('EFBIG', `fs-verity metadata offset for i_size ${iSize} is past 2^53`);
  return r;
}
