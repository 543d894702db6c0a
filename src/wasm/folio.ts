/**
 * The typed face of assembly/folio.ts for the layers above the page cache
 * (the page cache calls the bitmap, copy and zero kernels itself): the
 * zeroing rule of buffered reads and partial writes.
 */
import type { Wasm } from './index.js';

/**
 * Of `nblocks` blocks of `blockSize` bytes from file position `pos`, all
 * under one source mapping of `type` and `flags` in a file of `isize`
 * bytes, how many leading ones are read from the device; the rest are
 * zeroed (the kernel's iomap_block_needs_zeroing with the seed: not MAPPED
 * or NEW reads nothing, FSVERITY reads all, otherwise the blocks that start
 * below i_size).
 */
export function blocksToRead(wasm: Wasm, pos: number, blockSize: number, nblocks: number, type: number, flags: number, isize: number): number {
  return wasm.x.blocks_to_read(pos, blockSize, nblocks, type, flags, isize);
}
