// The one WebAssembly module of iomap-verity. Every export takes and returns
// numbers only (pointers into this module's memory, lengths, flags): the
// TypeScript side owns all policy, this side owns the bytes.
//
// arena.ts  - the folio arena: a buddy allocator over linear memory
// sha256.ts - SHA-256, one buffer and 4-lane SIMD multi-buffer, salted states
// sha512.ts - SHA-512, one buffer and 2-lane SIMD multi-buffer, salted states
// folio.ts  - per-folio block bitmaps, zeroing decisions, copy and zero
// dmverity.ts - dm-verity block hashing: salt before or after each block, unpadded
export * from "./arena";
export * from "./sha256";
export * from "./sha512";
export * from "./folio";
export * from "./dmverity";
