/**
 * Every export of the WebAssembly module (assembly/*.ts), described once.
 *
 * `WasmExports` is the typed face the glue hands out as `Wasm.x`;
 * `WASM_FUNCTION_ARITY` is the same list as data, checked by the compiler
 * against the interface (a missing, extra or wrongly sized entry does not
 * build) and by `checkWasmExports` against a live instance, so a module and
 * a glue out of step fail at instantiation with a message, not later with a
 * wrong answer. Pointers are u32 and come back as i32: read them with
 * `>>> 0`. File positions are f64. Nothing else crosses the boundary.
 */
import { fail } from '../errors.js';
import { webAssembly, type WasmGlobal, type WasmMemory } from './webassembly.js';

/** The functions of the module, by assembly file. */
export interface WasmFunctions {
  // -- assembly/arena.ts: the folio arena, a buddy allocator of 4 KiB pages

  /** The order (log2 of pages) of the smallest run holding `bytes`. */
  arena_order_for(bytes: number): number;
  /** A run of 2^order pages aligned to its size, not zeroed; 0 when memory cannot grow. */
  arena_alloc_order(order: number): number;
  /** A run holding at least `bytes`, as arena_alloc_order; 0 when memory cannot grow. */
  arena_alloc(bytes: number): number;
  /** Free a run: 0, or -1 (and nothing changes) when `ptr` is not the head of an allocated run. */
  arena_free(ptr: number): number;
  /** Bytes of the allocated run at `ptr`, or 0 when it is not one. */
  arena_size_of(ptr: number): number;
  /** Bytes handed out and not yet freed. */
  arena_bytes_used(): number;
  /** Bytes of linear memory the arena has claimed (never shrinks). */
  arena_bytes_reserved(): number;

  // -- assembly/folio.ts: per-folio block bitmaps (uptodate bits, then dirty bits), zeroing rule, copy

  /** Bytes of the bitmap of a folio of `nblocks` blocks. */
  ifs_bytes(nblocks: number): number;
  /** A zeroed bitmap for `nblocks` blocks from the slab; 0 when memory cannot grow. */
  ifs_alloc(nblocks: number): number;
  /** Return a bitmap from ifs_alloc(nblocks) to its slab. */
  ifs_free(ptr: number, nblocks: number): void;
  /** Arena bytes held by bitmap slabs. */
  ifs_slab_bytes(): number;
  /** Set bits [start, start+n). */
  bits_set(map: number, start: number, n: number): void;
  /** Clear bits [start, start+n). */
  bits_clear(map: number, start: number, n: number): void;
  /** First set bit in [start, end), or `end`. */
  bits_next_set(map: number, start: number, end: number): number;
  /** First clear bit in [start, end), or `end`. */
  bits_next_clear(map: number, start: number, end: number): number;
  /** 1 when every bit of [start, start+n) is set, else 0. */
  bits_all_set(map: number, start: number, n: number): number;
  /** 1 when any bit of [start, start+n) is set, else 0. */
  bits_any_set(map: number, start: number, n: number): number;
  /** First dirty block at or after `from`, or `nblocks`. */
  ifs_next_dirty(map: number, nblocks: number, from: number): number;
  /** End (exclusive) of the dirty run starting at block `start`. */
  ifs_dirty_run_end(map: number, nblocks: number, start: number): number;
  /** Leading blocks of a run under one source mapping that are read rather than zeroed (iomap_block_needs_zeroing). */
  blocks_to_read(pos: number, blockSize: number, nblocks: number, type: number, flags: number, isize: number): number;
  /** Copy `len` bytes from `src` to `dst`; the ranges may overlap. */
  folio_copy(dst: number, src: number, len: number): void;
  /** Zero `len` bytes at `ptr`. */
  folio_zero(ptr: number, len: number): void;
  /** Fill `len` bytes at `ptr` with the byte `value`. */
  folio_fill(ptr: number, value: number, len: number): void;

  // -- assembly/sha256.ts: fs-verity block hashing, zero detection, plain SHA-256

  /** Bytes of a block-hashing context (the caller allocates it, 16-aligned). */
  sha256_ctx_size(): number;
  /** Bytes of a streaming SHA-256 state (sha256_init, sha256_update, sha256_block_begin). */
  sha256_state_size(): number;
  /** 0, or -1 when saltLen > 64 or blockSize is not a non-zero multiple of 64. */
  sha256_ctx_init(ctx: number, salt: number, saltLen: number, blockSize: number): number;
  /** Address of the context's zero-block digest (computed on first call). */
  sha256_ctx_zero_digest(ctx: number): number;
  /** Digests of `count` blocks at `src` to `dst`, four at a time through the 4-lane kernel. */
  sha256_blocks(ctx: number, src: number, count: number, dst: number): void;
  /** As sha256_blocks with the one-buffer kernel only. */
  sha256_blocks_1(ctx: number, src: number, count: number, dst: number): void;
  /** As sha256_blocks, all-zero blocks not hashed; returns how many were all zero. `lanes` 4 uses the 4-lane kernel. */
  sha256_blocks_skip_zero(ctx: number, src: number, count: number, dst: number, lanes: number): number;
  /** Start streaming one large block: the salted state to `st`. */
  sha256_block_begin(ctx: number, st: number): void;
  /** Finish a streamed block: its digest to `out`. */
  sha256_block_end(ctx: number, st: number, out: number): void;
  /** 1 when the range is all zero bytes, else 0. */
  is_zero(ptr: number, len: number): number;
  /** SHA-256's initial state to `st`. */
  sha256_init(st: number): void;
  /** Compress `chunks` 64-byte chunks at `src` into `st`. */
  sha256_update(st: number, src: number, chunks: number): void;
  /** Finish a message of `totalLo + 2^32 totalHi` bytes whose last `tailLen` (< 64) are at `tail`; 0, or -1 when tailLen >= 64. */
  sha256_final(st: number, tail: number, tailLen: number, totalLo: number, totalHi: number, out: number): number;
  /** SHA-256 of `len` bytes at `src` to `out`. */
  sha256(src: number, len: number, out: number): void;

  // -- assembly/dmverity.ts: dm-verity block hashing, the salt unpadded before (format 1) or after (format 0)

  /** Bytes of a dm-verity hashing context. */
  dmv_ctx_size(): number;
  /** 0, or -1 when saltLen > 256, blockSize is not a non-zero multiple of 64, or format > 1. */
  dmv_ctx_init(ctx: number, salt: number, saltLen: number, blockSize: number, format: number): number;
  /** Address of the zero-block digest; `zeros` points at one zero block on the first call. */
  dmv_ctx_zero_digest(ctx: number, zeros: number): number;
  /** Digests `stride` bytes apart (one-buffer kernel); returns how many blocks were all zero when `skipZero` is 1. */
  dmv_blocks(ctx: number, src: number, count: number, dst: number, stride: number, skipZero: number): number;
  /** As dmv_blocks, four blocks at a time through the 4-lane kernel. */
  dmv_blocks4(ctx: number, src: number, count: number, dst: number, stride: number, skipZero: number): number;

  // -- assembly/sha512.ts: fs-verity block hashing and plain SHA-512

  /** Bytes of a block-hashing context (the caller allocates it, 16-aligned). */
  sha512_ctx_size(): number;
  /** Bytes of a streaming SHA-512 state (sha512_init, sha512_update, sha512_block_begin). */
  sha512_state_size(): number;
  /** 0, or -1 when saltLen > 128 or blockSize is not a non-zero multiple of 128. */
  sha512_ctx_init(ctx: number, salt: number, saltLen: number, blockSize: number): number;
  /** Address of the context's zero-block digest (computed on first call). */
  sha512_ctx_zero_digest(ctx: number): number;
  /** Digests of `count` blocks at `src` to `dst`; `lanes` 2 takes pairs through the 2-lane kernel, else one-buffer only. */
  sha512_blocks(ctx: number, src: number, count: number, dst: number, lanes: number): void;
  /** As sha512_blocks, all-zero blocks not hashed; returns how many were all zero. */
  sha512_blocks_skip_zero(ctx: number, src: number, count: number, dst: number, lanes: number): number;
  /** Start streaming one large block: the salted state to `st`. */
  sha512_block_begin(ctx: number, st: number): void;
  /** Finish a streamed block: its digest to `out`. */
  sha512_block_end(ctx: number, st: number, out: number): void;
  /** SHA-512's initial state to `st`. */
  sha512_init(st: number): void;
  /** Compress `chunks` 128-byte chunks at `src` into `st`. */
  sha512_update(st: number, src: number, chunks: number): void;
  /** Finish a message of `totalLo + 2^32 totalHi` bytes whose last `tailLen` (< 128) are at `tail`; 0, or -1 when tailLen >= 128. */
  sha512_final(st: number, tail: number, tailLen: number, totalLo: number, totalHi: number, out: number): number;
  /** SHA-512 of `len` bytes at `src` to `out`. */
  sha512(src: number, len: number, out: number): void;
}

/** Everything the module exports: its functions, its memory and the arena's constants. */
export interface WasmExports extends WasmFunctions {
  /** The module's linear memory: grows, never shrinks; views detach when it grows. */
  memory: WasmMemory;
  /** log2 of the arena's page size (12). */
  ARENA_PAGE_SHIFT: WasmGlobal;
  /** Largest arena run order (10: 4 MiB). */
  ARENA_MAX_ORDER: WasmGlobal;
}

/** Parameter count of every function of `WasmFunctions`; the compiler holds the two lists together. */
export const WASM_FUNCTION_ARITY: { readonly [K in keyof WasmFunctions]: Parameters<WasmFunctions[K]>['length'] } = {
  arena_order_for: 1,
  arena_alloc_order: 1,
  arena_alloc: 1,
  arena_free: 1,
  arena_size_of: 1,
  arena_bytes_used: 0,
  arena_bytes_reserved: 0,
  ifs_bytes: 1,
  ifs_alloc: 1,
  ifs_free: 2,
  ifs_slab_bytes: 0,
  bits_set: 3,
  bits_clear: 3,
  bits_next_set: 3,
  bits_next_clear: 3,
  bits_all_set: 3,
  bits_any_set: 3,
  ifs_next_dirty: 3,
  ifs_dirty_run_end: 3,
  blocks_to_read: 6,
  folio_copy: 3,
  folio_zero: 2,
  folio_fill: 3,
  sha256_ctx_size: 0,
  sha256_state_size: 0,
  sha256_ctx_init: 4,
  sha256_ctx_zero_digest: 1,
  sha256_blocks: 4,
  sha256_blocks_1: 4,
  sha256_blocks_skip_zero: 5,
  sha256_block_begin: 2,
  sha256_block_end: 3,
  is_zero: 2,
  sha256_init: 1,
  sha256_update: 3,
  sha256_final: 6,
  sha256: 3,
  dmv_ctx_size: 0,
  dmv_ctx_init: 5,
  dmv_ctx_zero_digest: 2,
  dmv_blocks: 6,
  dmv_blocks4: 6,
  sha512_ctx_size: 0,
  sha512_state_size: 0,
  sha512_ctx_init: 4,
  sha512_ctx_zero_digest: 1,
  sha512_blocks: 5,
  sha512_blocks_skip_zero: 5,
  sha512_block_begin: 2,
  sha512_block_end: 3,
  sha512_init: 1,
  sha512_update: 3,
  sha512_final: 6,
  sha512: 3,
};

/** The non-function exports and their kinds. */
export const WASM_VALUE_EXPORTS = { memory: 'Memory', ARENA_PAGE_SHIFT: 'Global', ARENA_MAX_ORDER: 'Global' } as const;

/**
 * `exports` typed as WasmExports once every described export is there with
 * its kind and parameter count; EIO naming the first that is not (a module
 * built from other sources than this glue).
 */
export function checkWasmExports(exports: Record<string, unknown>): WasmExports {
  for (const [name, arity] of Object.entries(WASM_FUNCTION_ARITY)) {
    const f = exports[name];
    if (typeof f !== 'function' || f.length !== arity)
      throw fail('EIO', `the WebAssembly module does not match its glue: export ${name} should be a function of ${arity} parameters`);
  }
  for (const [name, kind] of Object.entries(WASM_VALUE_EXPORTS)) {
    if (!(exports[name] instanceof webAssembly()[kind]))
      throw fail('EIO', `the WebAssembly module does not match its glue: export ${name} should be a WebAssembly.${kind}`);
  }
  return exports as unknown as WasmExports;
}
