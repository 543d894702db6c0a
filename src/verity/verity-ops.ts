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
 * Calls are made by `buildVerityMetadata` while sealing (writes), by
 * `openVerity` when a sealed file is first used (the descriptor), and by
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
  /**
   * The stored descriptor of a sealed file, as `get_verity_descriptor`
   * gives it to the kernel: the 256-byte descriptor followed by its
   * built-in signature when it has one (`sig_size` bytes, so a descriptor
   * with a signature is longer than 256 bytes and its `sig_size` field says
   * by how much). The filesystem finds it wherever it stored it; the
   * library checks what it returns (`validateDescriptor` in `openVerity`),
   * so a damaged store may return any bytes. ERANGE when the filesystem's
   * own record of where the descriptor is cannot be right; EIO when reading
   * it fails.
   */
  getDescriptor(): Promise<Uint8Array>;
}
