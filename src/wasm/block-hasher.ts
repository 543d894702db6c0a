/**
 * What fs-verity's salted block hashers share, whatever their hash: the
 * checks of what callers pass (so a bad pointer is an IomapVerityError, not a
 * WebAssembly trap), the context page and its layout, the scratch run JS data
 * is copied through, streaming of blocks larger than that run, the
 * zero-block digest, dispose, and plain hashing of JS data. sha256.ts and
 * sha512.ts differ only in their sizes and the kernel calls of a
 * `BlockKernel`.
 */
import { fail, isUint8Array } from '../errors.js';
import type { Wasm } from './index.js';
import type { WasmExports } from './exports.js';

/** Largest salt fs-verity allows. */
export const MAX_SALT_SIZE = 32;
/** Largest block size the hashers take (fsverity-utils' digest goes to 8 MiB; this leaves room). */
export const MAX_HASH_BLOCK_SIZE = 1 << 30;

/**
 * One hash's kernels (assembly/sha256.ts, assembly/sha512.ts) and sizes:
 * all that tells one salted block hasher from another. `ctx` is a context
 * page's kernel part, `st` a streaming state; every argument is a number.
 */
export interface BlockKernel {
  /** The hasher's name in messages (EBADF after dispose). */
  readonly className: string;
  /** The hash's name in messages ('SHA-256'). */
  readonly name: string;
  /** Bytes of one digest. */
  readonly digestSize: number;
  /** The hash's input block: fs-verity pads the salt to it; the smallest block size. */
  readonly inputBlockSize: number;
  ctxSize(x: WasmExports): number;
  stateSize(x: WasmExports): number;
  /** Nonzero when the kernel refuses the block size or salt. */
  ctxInit(x: WasmExports, ctx: number, salt: number, saltLen: number, blockSize: number): number;
  /** Where the kernel keeps the zero block's digest. */
  zeroDigest(x: WasmExports, ctx: number): number;
  /** `count` blocks at `src` to digests at `dst`, `lanes` as the hasher was created with. */
  blocks(x: WasmExports, ctx: number, src: number, count: number, dst: number, lanes: number): void;
  /** As `blocks`, all-zero blocks not hashed; how many were. */
  blocksSkipZero(x: WasmExports, ctx: number, src: number, count: number, dst: number, lanes: number): number;
  blockBegin(x: WasmExports, ctx: number, st: number): void;
  blockEnd(x: WasmExports, ctx: number, st: number, out: number): void;
  init(x: WasmExports, st: number): void;
  /** Hash `chunks` whole input blocks at `src` into `st`. */
  update(x: WasmExports, st: number, src: number, chunks: number): void;
  final(x: WasmExports, st: number, tail: number, tailLen: number, totalLo: number, totalHi: number, out: number): number;
}

// The context page: the kernel's context first (as large as the module
// says), then per-hasher scratch.
const CTX_PAGE = 4096;

/** Offsets in a hasher's context page of what the hasher stages there (SHA-256 and SHA-512 alike). */
export interface ContextLayout {
  /** The salt, staged for the kernel's ctx_init (at most one input block). */
  salt: number;
  /** The state for streaming one large block. */
  stream: number;
  /** Up to four digests of large blocks. */
  digests: number;
}

const align16 = (n: number) => (n + 15) & ~15;

/**
 * A hasher's context page layout, from the sizes its kernel reports (`ctxSize`,
 * `stateSize`) and its algorithm's input block and digest sizes; EIO when
 * it would not fit a page.
 */
export function contextPageLayout(name: string, ctxSize: number, stateSize: number, blockSize: number, digestSize: number): ContextLayout {
  const salt = align16(ctxSize);
  const stream = salt + blockSize;
  const digests = stream + align16(stateSize);
  if (digests + 4 * digestSize > CTX_PAGE)
    throw fail('EIO', `the ${name} kernel's context (${salt} bytes) leaves no room for a hasher's scratch in ${CTX_PAGE} bytes`);
  return { salt, stream, digests };
}

/** EINVAL unless `ptr`..`ptr + len` lies inside WASM memory (so a bad pointer never reaches a kernel). */
export function checkRange(wasm: Wasm, what: string, ptr: number, len: number): void {
  const size = wasm.x.memory.buffer.byteLength;
  if (!Number.isInteger(ptr) || ptr < 0 || !Number.isInteger(len) || len < 0 || ptr + len > size) {
    throw fail('EINVAL', `${what}: range ${ptr}+${len} is not inside WebAssembly memory (${size} bytes)`);
  }
}

// hashBlocks copies JS data through one scratch run, sized so that the SIMD
// kernels always get their lanes' worth of blocks where they can:
// - blocks up to 64 KiB: 256 KiB of blocks, then their digests (at most
//   256 KiB / 64 * 32 or / 128 * 64 = 128 KiB) in the same 512 KiB run;
// - up to 1 MiB: four blocks fill the run (at most the arena's 4 MiB
//   maximum), their digests go to the context page;
// - larger: one block at a time streams through 256 KiB pieces with the
//   one-buffer kernel.
const CHUNK = 256 << 10;
const SMALL_BLOCK_MAX = 64 << 10;
const FOUR_BLOCK_MAX = 1 << 20;

/**
 * fs-verity's salted block hasher for one (salt, blockSize) and one hash:
 * every block is hashed as H(salt zero-padded to the hash's input block ||
 * block), or H(block) when the salt is empty. The salted state and the
 * final padding block's schedule are computed once, at create. Scratch
 * memory comes from the arena once and goes back at dispose().
 * Sha256BlockHasher and Sha512BlockHasher are this with their kernels.
 */
export class SaltedBlockHasher<Lanes extends number> {
  /** Bytes of one digest: lets callers size digest buffers for either hasher. */
  readonly digestSize: number;
  private ctx: number;
  private scratch = 0;
  private zero: Uint8Array | undefined;

  /** Use a subclass's `create`. */
  protected constructor(
    private readonly wasm: Wasm,
    private readonly kernel: BlockKernel,
    private readonly at: ContextLayout,
    ctx: number,
    /** Bytes of every block hashed. */
    readonly blockSize: number,
    /** Which kernel groups of blocks go through (the subclass's `lanes` option). */
    readonly lanes: Lanes,
  ) {
    this.ctx = ctx;
    this.digestSize = kernel.digestSize;
  }

  /**
   * The checks and set-up of a subclass's `create`: `salt` 0 to 32 bytes,
   * `blockSize` a power of two from the hash's input block to 2^30, `lanes`
   * one of `allowed` (EINVAL for anything else); then the context page,
   * salted by the kernel. Returns what the constructor takes.
   */
  protected static setUp<L extends number>(
    wasm: Wasm,
    kernel: BlockKernel,
    salt: Uint8Array,
    blockSize: number,
    lanes: L,
    allowed: readonly L[],
  ): { at: ContextLayout; ctx: number } {
    if (!isUint8Array(salt)) throw fail('EINVAL', 'salt must be a Uint8Array');
    if (salt.length > MAX_SALT_SIZE) {
      throw fail('EINVAL', `salt is ${salt.length} bytes; fs-verity allows at most ${MAX_SALT_SIZE}`);
    }
    const min = kernel.inputBlockSize;
    if (!Number.isInteger(blockSize) || blockSize < min || blockSize > MAX_HASH_BLOCK_SIZE || (blockSize & (blockSize - 1)) !== 0) {
      throw fail('EINVAL', `block size ${blockSize} is not a power of two from ${min} to ${MAX_HASH_BLOCK_SIZE}`);
    }
    if (!allowed.includes(lanes)) throw fail('EINVAL', `lanes must be ${allowed.join(' or ')}, not ${String(lanes)}`);
    const x = wasm.x;
    const at = contextPageLayout(kernel.name, kernel.ctxSize(x), kernel.stateSize(x), kernel.inputBlockSize, kernel.digestSize);
    const ctx = wasm.alloc(CTX_PAGE);
    wasm.u8().set(salt, ctx + at.salt);
    if (kernel.ctxInit(x, ctx, ctx + at.salt, salt.length, blockSize) !== 0) {
      wasm.free(ctx);
      throw fail('EINVAL', `the ${kernel.name} kernel refused block size ${blockSize} with a ${salt.length}-byte salt`);
    }
    return { at, ctx };
  }

  private live(): number {
    if (this.ctx === 0) throw fail('EBADF', `${this.kernel.className} used after dispose()`);
    return this.ctx;
  }

  private checkBlocksAt(what: string, src: number, count: number, dst: number): void {
    if (!Number.isInteger(count) || count < 0 || count > 0xffffffff) {
      throw fail('EINVAL', `block count must be a non-negative integer, not ${count}`);
    }
    checkRange(this.wasm, `${what} source`, src, count * this.blockSize);
    checkRange(this.wasm, `${what} digests`, dst, count * this.digestSize);
  }

  /**
   * Hash `count` contiguous blocks at WASM address `src`; write the digests
   * contiguously at WASM address `dst`, which must not overlap the blocks.
   * Groups go through the SIMD kernel unless the hasher was created with
   * `lanes: 1`, the rest through the one-buffer kernel.
   */
  hashBlocksAt(src: number, count: number, dst: number): void {
    const ctx = this.live();
    this.checkBlocksAt('hashBlocksAt', src, count, dst);
    this.kernel.blocks(this.wasm.x, ctx, src, count, dst, this.lanes);
  }

  /**
   * As hashBlocksAt, but an all-zero block gets the zero-block digest without
   * being hashed (the zero test reads 16 bytes per load and stops at the
   * first non-zero one). Returns how many blocks were all zero.
   */
  hashBlocksAtSkipZero(src: number, count: number, dst: number): number {
    const ctx = this.live();
    this.checkBlocksAt('hashBlocksAtSkipZero', src, count, dst);
    return this.kernel.blocksSkipZero(this.wasm.x, ctx, src, count, dst, this.lanes) >>> 0;
  }

  /**
   * Hash JS data: `data.length` must be a multiple of blockSize; the digests
   * go to `out` from `outOffset`, `digestSize` bytes per block. The data is
   * copied through an arena scratch run allocated on first use: 512 KiB for
   * blocks up to 64 KiB, four blocks for blocks up to 1 MiB, 256 KiB beyond
   * (those stream through the one-buffer kernel).
   */
  hashBlocks(data: Uint8Array, out: Uint8Array, outOffset = 0): void {
    const ctx = this.live();
    const bs = this.blockSize;
    const ds = this.digestSize;
    if (data.length % bs !== 0) {
      throw fail('EINVAL', `hashBlocks: ${data.length} bytes is not a whole number of ${bs}-byte blocks`);
    }
    const n = data.length / bs;
    if (!Number.isInteger(outOffset) || outOffset < 0 || outOffset + n * ds > out.length) {
      throw fail('EINVAL', `hashBlocks: ${n} digests do not fit in a ${out.length}-byte output at offset ${outOffset}`);
    }
    if (n === 0) return;
    if (this.scratch === 0) {
      this.scratch = this.wasm.alloc(bs <= SMALL_BLOCK_MAX ? 2 * CHUNK : bs <= FOUR_BLOCK_MAX ? 4 * bs : CHUNK);
    }
    const s = this.scratch;
    const x = this.wasm.x;
    const k = this.kernel;
    if (bs <= FOUR_BLOCK_MAX) {
      const per = bs <= SMALL_BLOCK_MAX ? CHUNK / bs : 4;
      const digests = bs <= SMALL_BLOCK_MAX ? s + CHUNK : ctx + this.at.digests;
      for (let i = 0; i < n; i += per) {
        const m = Math.min(per, n - i);
        this.wasm.u8().set(data.subarray(i * bs, (i + m) * bs), s);
        k.blocks(x, ctx, s, m, digests, this.lanes);
        out.set(this.wasm.bytes(digests, m * ds), outOffset + i * ds);
      }
      return;
    }
    // A block larger than the scratch run: stream it through the one-buffer kernel.
    const st = ctx + this.at.stream;
    for (let i = 0; i < n; i++) {
      k.blockBegin(x, ctx, st);
      for (let off = 0; off < bs; off += CHUNK) {
        this.wasm.u8().set(data.subarray(i * bs + off, i * bs + off + CHUNK), s);
        k.update(x, st, s, CHUNK / k.inputBlockSize);
      }
      k.blockEnd(x, ctx, st, ctx + this.at.digests);
      out.set(this.wasm.bytes(ctx + this.at.digests, ds), outOffset + i * ds);
    }
  }

  /** The digest of an all-zero block under this salt (a copy; computed once). */
  get zeroBlockDigest(): Uint8Array {
    if (this.zero === undefined) {
      const p = this.kernel.zeroDigest(this.wasm.x, this.live()) >>> 0;
      this.zero = this.wasm.bytes(p, this.digestSize).slice();
    }
    return this.zero.slice();
  }

  /** Return the scratch memory to the arena. Further use throws EBADF; a second dispose does nothing. */
  dispose(): void {
    if (this.ctx === 0) return;
    if (this.scratch !== 0) this.wasm.free(this.scratch);
    this.wasm.free(this.ctx);
    this.scratch = 0;
    this.ctx = 0;
  }
}

// A plain digest streams through one 64 KiB run: data, then the state and
// the digest in the last two input blocks (so the data part stays a
// multiple of the input block).
const ONE_SHOT_RUN = 64 << 10;

/** The plain (unsalted) digest of `data`, any length up to 2^53 - 1 bytes, with `kernel`'s hash. */
export function plainDigest(wasm: Wasm, kernel: BlockKernel, data: Uint8Array): Uint8Array {
  const x = wasm.x;
  const ib = kernel.inputBlockSize;
  const dataBytes = ONE_SHOT_RUN - 2 * ib;
  const run = wasm.alloc(ONE_SHOT_RUN);
  try {
    const st = run + dataBytes;
    const out = st + kernel.stateSize(x);
    const len = data.length;
    kernel.init(x, st);
    const full = len - (len % ib);
    for (let off = 0; off < full; off += dataBytes) {
      const k = Math.min(dataBytes, full - off);
      wasm.u8().set(data.subarray(off, off + k), run);
      kernel.update(x, st, run, k / ib);
    }
    wasm.u8().set(data.subarray(full), run);
    kernel.final(x, st, run, len - full, len >>> 0, Math.floor(len / 2 ** 32), out);
    return wasm.bytes(out, kernel.digestSize).slice();
  } finally {
    wasm.free(run);
  }
}
