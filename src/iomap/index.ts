/** iomap-verity/iomap: the iomap layer for filesystem authors. */
export {};
