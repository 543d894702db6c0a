/**
 * dm-verity block hashing: H(salt || block) in format 1, H(block || salt)
 * in format 0, the salt as it is (no padding to the hash's input block,
 * unlike fs-verity). SHA-256 runs on our WebAssembly kernel
 * (assembly/dmverity.ts), where blocks are read straight into its memory
 * and all-zero blocks are recognised instead of hashed; SHA-512 on the
 * streaming SHA-512 of assembly/sha512.ts over the same staging memory
 * (one block at a time: the unpadded salt leaves nothing to precompute in
 * general); SHA-1 on hash-wasm, which keeps the salted state and reloads
 * it per block.
 */
import type { IHasher } from 'hash-wasm';
import { loadWasm, type Wasm } from '../wasm/index.js';
import { DmverityBlockHasher } from '../wasm/dmverity.js';
import type { DmverityHashName } from './params.js';

/**
 * Hashes blocks of one size under one salt and format. `staging(n)` is a
 * buffer for up to `capacity` blocks, to be filled before `hashStaged`; it
 * is valid until the next call on this hasher.
 */
export interface DmBlockHasher {
  readonly blockSize: number;
  readonly digestSize: number;
  /** Blocks the staging buffer holds. */
  readonly capacity: number;
  /** The digest of an all-zero block. */
  readonly zeroDigest: Uint8Array;
  staging(blocks: number): Uint8Array;
  /** Hash the first `count` staged blocks; digests back to back into `out`; returns how many were all zero. */
  hashStaged(count: number, out: Uint8Array): number;
  /** Hash one block given in JS memory. */
  hashBlock(block: Uint8Array): Uint8Array;
  dispose(): void;
}

/** Staging bytes per hasher (whole blocks; at least one). */
const STAGING_BYTES = 4 << 20;

let hashWasm: Promise<typeof import('hash-wasm')> | undefined;

/** A hasher for blocks of `blockSize` bytes. */
export async function createDmBlockHasher(
  alg: DmverityHashName,
  salt: Uint8Array,
  format: 0 | 1,
  blockSize: number,
  capacity = Math.max(1, Math.floor(STAGING_BYTES / blockSize)),
): Promise<DmBlockHasher> {
  if (alg === 'sha256') return WasmDmHasher.create(await loadWasm(), salt, format, blockSize, capacity);
  if (alg === 'sha512') return WasmSha512DmHasher.create(await loadWasm(), salt, format, blockSize, capacity);
  const mod = await (hashWasm ??= import('hash-wasm'));
  return new HashWasmDmHasher(await mod.createSHA1(), 20, salt, format, blockSize, capacity);
}

/**
 * SHA-512 in dm-verity's framing on the WebAssembly streaming SHA-512.
 * Format 0 hashes each staged block where it lies and then the salt;
 * format 1 copies each block behind a copy of the salt (the salt's length
 * need not be a whole number of SHA-512 input blocks, so the pair must be
 * contiguous).
 */
class WasmSha512DmHasher implements DmBlockHasher {
  readonly digestSize = 64;
  zeroDigest: Uint8Array = new Uint8Array(64);
  /** Staged blocks. */
  private buf = 0;
  /** Format 0: the salt; format 1: the salt followed by room for one block. */
  private msg = 0;
  /** The streaming state, then one digest. */
  private st = 0;
  private out = 0;

  private constructor(
    private readonly wasm: Wasm,
    private readonly saltLen: number,
    private readonly format: 0 | 1,
    readonly blockSize: number,
    readonly capacity: number,
  ) {}

  static create(wasm: Wasm, salt: Uint8Array, format: 0 | 1, blockSize: number, capacity: number): WasmSha512DmHasher {
    const h = new WasmSha512DmHasher(wasm, salt.length, format, blockSize, capacity);
    try {
      h.buf = wasm.alloc(capacity * blockSize);
      h.msg = wasm.alloc(salt.length + (format === 1 ? blockSize : 0) + 1);
      const stateSize = wasm.x.sha512_state_size();
      h.st = wasm.alloc(stateSize + 64);
      h.out = h.st + stateSize;
      wasm.bytes(h.msg, salt.length).set(salt);
      h.zeroDigest = h.hashBlock(new Uint8Array(blockSize));
    } catch (e) {
      h.dispose();
      throw e;
    }
    return h;
  }

  staging(blocks: number): Uint8Array {
    return this.wasm.bytes(this.buf, blocks * this.blockSize);
  }

  /** The digest of the block at `src` (WASM memory) to `this.out`. */
  private hashAt(src: number): void {
    const x = this.wasm.x;
    const bs = this.blockSize;
    const sl = this.saltLen;
    if (this.format === 1) {
      this.wasm.u8().copyWithin(this.msg + sl, src, src + bs);
      x.sha512(this.msg, sl + bs, this.out);
      return;
    }
    // Block sizes are powers of two from 512 bytes: whole SHA-512 input blocks.
    const saltChunks = Math.floor(sl / 128);
    x.sha512_init(this.st);
    x.sha512_update(this.st, src, bs / 128);
    if (saltChunks > 0) x.sha512_update(this.st, this.msg, saltChunks);
    x.sha512_final(this.st, this.msg + saltChunks * 128, sl - saltChunks * 128, bs + sl, 0, this.out);
  }

  hashStaged(count: number, out: Uint8Array): number {
    const bs = this.blockSize;
    let zeros = 0;
    for (let i = 0; i < count; i++) {
      if (isZero(this.wasm.bytes(this.buf + i * bs, bs))) {
        out.set(this.zeroDigest, i * 64);
        zeros++;
      } else {
        this.hashAt(this.buf + i * bs);
        out.set(this.wasm.bytes(this.out, 64), i * 64);
      }
    }
    return zeros;
  }

  hashBlock(block: Uint8Array): Uint8Array {
    this.wasm.bytes(this.buf, this.blockSize).set(block.subarray(0, this.blockSize));
    this.hashAt(this.buf);
    return this.wasm.bytes(this.out, 64).slice();
  }

  dispose(): void {
    for (const p of [this.st, this.msg, this.buf]) if (p !== 0) this.wasm.free(p);
    this.st = this.msg = this.buf = 0;
  }
}

class WasmDmHasher implements DmBlockHasher {
  readonly digestSize = 32;
  readonly zeroDigest: Uint8Array;
  private buf = 0;
  private dig = 0;

  private constructor(
    private readonly wasm: Wasm,
    private readonly k: DmverityBlockHasher,
    readonly capacity: number,
  ) {
    this.zeroDigest = k.zeroDigest;
  }

  get blockSize(): number {
    return this.k.blockSize;
  }

  static create(wasm: Wasm, salt: Uint8Array, format: 0 | 1, blockSize: number, capacity: number): WasmDmHasher {
    const h = new WasmDmHasher(wasm, DmverityBlockHasher.create(wasm, salt, format, blockSize), capacity);
    try {
      h.buf = wasm.alloc(capacity * blockSize);
      h.dig = wasm.alloc(capacity * 32);
    } catch (e) {
      h.dispose();
      throw e;
    }
    return h;
  }

  staging(blocks: number): Uint8Array {
    return this.wasm.bytes(this.buf, blocks * this.blockSize);
  }

  hashStaged(count: number, out: Uint8Array): number {
    const zeros = this.k.hashBlocksAtSkipZero(this.buf, count, this.dig);
    out.set(this.wasm.bytes(this.dig, count * 32));
    return zeros;
  }

  hashBlock(block: Uint8Array): Uint8Array {
    this.wasm.bytes(this.buf, this.blockSize).set(block.subarray(0, this.blockSize));
    this.k.hashBlocksAtOneBuffer(this.buf, 1, this.dig);
    return this.wasm.bytes(this.dig, 32).slice();
  }

  dispose(): void {
    for (const p of [this.dig, this.buf]) if (p !== 0) this.wasm.free(p);
    this.dig = this.buf = 0;
    this.k.dispose();
  }
}

class HashWasmDmHasher implements DmBlockHasher {
  readonly zeroDigest: Uint8Array;
  private readonly buf: Uint8Array;
  private readonly salted: Uint8Array | undefined;

  constructor(
    private readonly h: IHasher,
    readonly digestSize: number,
    private readonly salt: Uint8Array,
    private readonly format: 0 | 1,
    readonly blockSize: number,
    readonly capacity: number,
  ) {
    this.buf = new Uint8Array(this.capacity * blockSize);
    if (format === 1) {
      h.init();
      h.update(salt);
      this.salted = h.save();
    }
    this.zeroDigest = this.hashBlock(new Uint8Array(blockSize));
  }

  staging(blocks: number): Uint8Array {
    return this.buf.subarray(0, blocks * this.blockSize);
  }

  private hashAt(block: Uint8Array, out: Uint8Array, at: number): void {
    if (this.salted) {
      this.h.load(this.salted);
      this.h.update(block);
    } else {
      this.h.init();
      this.h.update(block);
      this.h.update(this.salt);
    }
    out.set(this.h.digest('binary'), at);
  }

  hashStaged(count: number, out: Uint8Array): number {
    const bs = this.blockSize;
    let zeros = 0;
    for (let i = 0; i < count; i++) {
      const block = this.buf.subarray(i * bs, (i + 1) * bs);
      if (isZero(block)) {
        out.set(this.zeroDigest, i * this.digestSize);
        zeros++;
      } else this.hashAt(block, out, i * this.digestSize);
    }
    return zeros;
  }

  hashBlock(block: Uint8Array): Uint8Array {
    const out = new Uint8Array(this.digestSize);
    this.hashAt(block.subarray(0, this.blockSize), out, 0);
    return out;
  }

  dispose(): void {
    // hash-wasm instances are garbage collected with the object.
  }
}

function isZero(b: Uint8Array): boolean {
  if (b.byteOffset % 4 === 0 && b.length % 4 === 0) {
    const w = new Uint32Array(b.buffer, b.byteOffset, b.length / 4);
    for (let i = 0; i < w.length; i++) if (w[i] !== 0) return false;
    return true;
  }
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}
