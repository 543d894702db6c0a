/**
 * What a filesystem implements so that this library can seal its files and
 * verify them: the counterpart of the kernel's `struct fsverity_operations`.
 *
 * Offsets are relative to the start of the file's verity metadata area,
 * which the filesystem places past EOF (the reference filesystem: at
 * `roundUp(i_size, 65536)` on the device and `fsverityMetadataOffset(i_size,
 * maxFolioSize)` in the page cache, translating between the two in its iomap
 * ops). The library never learns where that is.
 *
 * Calls are made by `buildVerityMetadata` while sealing (writes) and by
 * `MerkleVerifier` while verifying reads and reading metadata back (reads),
 * with whatever lock the filesystem holds around those calls.
 */
export interface VerityOps {
  /**
   * Write `bytes` at `offset` of the metadata area, through the filesystem's
   * fs-verity write path (IOMAP_F_FSVERITY mappings: i_size never moves).
   * Ranges the library never writes must read back as zeros.
   */
  writeMetadata(offset: number, bytes: Uint8Array): Promise<void>;
  /**
   * Read `length` bytes at `offset` of the metadata area; holes read as
   * zeros. Errors surface as EIO.
   */
  readMetadata(offset: number, length: number): Promise<Uint8Array>;
}
