/**
 * The hash algorithms fs-verity knows, and block hashing with a salt.
 *
 * fs-verity numbers its algorithms (SHA-256 = 1, SHA-512 = 2: the value
 * stored in the descriptor) and hashes every data and tree block as
 * H(salt zero-padded to the hash's input block size || block). Padding the
 * salt to a whole input block means the salted prefix is one compression of
 * its own, so its state can be computed once and restarted for every block
 * (the kernel's `hash_init_state`, fsverity-utils' `padded_salt`).
 *
 * Block hashing is behind `BlockHasher` so the backend is chosen in one
 * place: both algorithms on our WASM kernels (SHA-256 4-lane SIMD, SHA-512
 * 2-lane SIMD), which run in browsers too.
 */
import { fail } from '../errors.js';
import type { TreeHasher } from './geometry.js';
import { loadWasm, type Wasm } from '../wasm/index.js';
import { sha256 as wasmSha256, Sha256BlockHasher } from '../wasm/sha256.js';
import { sha512 as wasmSha512, Sha512BlockHasher } from '../wasm/sha512.js';

/** Names accepted for `hashAlgorithm`. */
export type HashAlgorithmName = 'sha256' | 'sha512';

/** One fs-verity hash algorithm: its number in the descriptor and its sizes. */
export interface HashAlgorithm {
  readonly name: HashAlgorithmName;
  /** `FS_VERITY_HASH_ALG_*`: the byte stored in the descriptor. */
  readonly id: number;
  /** Bytes of one digest. */
  readonly digestSize: number;
  /** The hash's input block size, to which the salt is zero-padded. */
  readonly inputBlockSize: number;
}

/** The algorithms fs-verity defines, in number order. */
export const HASH_ALGORITHMS: readonly HashAlgorithm[] = Object.freeze([
  Object.freeze({ name: 'sha256', id: 1, digestSize: 32, inputBlockSize: 64 }),
  Object.freeze({ name: 'sha512', id: 2, digestSize: 64, inputBlockSize: 128 }),
] as HashAlgorithm[]);

/** The largest digest any algorithm has: the size of the descriptor's root hash field. */
export const MAX_DIGEST_SIZE = 64;

/** Look an algorithm up by name; undefined when fs-verity has none of that name. */
export function hashAlgorithmByName(name: string): HashAlgorithm | undefined {
  return HASH_ALGORITHMS.find((a) => a.name === name);
}

/** Look an algorithm up by its descriptor number; undefined when unknown. */
export function hashAlgorithmById(id: number): HashAlgorithm | undefined {
  return HASH_ALGORITHMS.find((a) => a.id === id);
}

/** The algorithm named `name`, or EINVAL naming the ones that exist. */
export function requireHashAlgorithm(name: unknown): HashAlgorithm {
  const alg = typeof name === 'string' ? hashAlgorithmByName(name) : undefined;
  if (!alg) {
    throw fail(
      'EINVAL',
      `unknown hash algorithm ${JSON.stringify(name)}: fs-verity supports ${HASH_ALGORITHMS.map((a) => a.name).join(', ')}`,
    );
  }
  return alg;
}

/** The salt zero-padded to the algorithm's input block size (empty when there is no salt). */
export function padSalt(alg: HashAlgorithm, salt: Uint8Array): Uint8Array {
  if (salt.length === 0) return new Uint8Array(0);
  const padded = new Uint8Array(Math.ceil(salt.length / alg.inputBlockSize) * alg.inputBlockSize);
  padded.set(salt);
  return padded;
}

/**
 * Hashes whole fs-verity blocks with one salt (padded, first): a
 * `TreeHasher` that also names its algorithm. Not safe to share between
 * concurrent users (it holds one hashing state); create one per builder.
 */
export interface BlockHasher extends TreeHasher {
  readonly algorithm: HashAlgorithm;
}

/** A one-shot hash of `data` (no salt): the file digest is this over the descriptor. */
export async function hashBytes(alg: HashAlgorithm, data: Uint8Array): Promise<Uint8Array> {
  const wasm = await loadWasm();
  return alg.id === 1 ? wasmSha256(wasm, data) : wasmSha512(wasm, data);
}

/**
 * A `BlockHasher` for `alg`, `salt` and `blockSize` (parameters already
 * validated by the caller).
 */
export async function createBlockHasher(
  alg: HashAlgorithm,
  salt: Uint8Array,
  blockSize: number,
): Promise<BlockHasher> {
  const wasm = await loadWasm();
  if (alg.id === 1) return new WasmBlockHasher(alg, wasm, Sha256BlockHasher.create(wasm, salt, blockSize));
  return new WasmBlockHasher(alg, wasm, Sha512BlockHasher.create(wasm, salt, blockSize));
}

/** What WasmBlockHasher needs of a kernel's hasher (Sha256BlockHasher and Sha512BlockHasher have it). */
interface WasmKernelHasher {
  readonly blockSize: number;
  readonly zeroBlockDigest: Uint8Array;
  hashBlocks(data: Uint8Array, out: Uint8Array, outOffset: number): void;
  hashBlocksAt(src: number, count: number, dst: number): void;
  dispose(): void;
}

/**
 * A WASM kernel's hasher as a BlockHasher. JS bytes are copied into WASM
 * memory by the kernel's wrapper; blocks already in WASM memory are hashed
 * in place and only their digests come out, through a scratch run of one
 * block.
 */
class WasmBlockHasher implements BlockHasher {
  readonly blockSize: number;
  readonly zeroBlockDigest: Uint8Array;
  private digests = 0;

  constructor(
    readonly algorithm: HashAlgorithm,
    private readonly wasm: Wasm,
    private readonly k: WasmKernelHasher,
  ) {
    this.blockSize = k.blockSize;
    this.zeroBlockDigest = k.zeroBlockDigest;
  }

  hashBlocks(data: Uint8Array, count: number, out: Uint8Array, outOffset: number): void {
    this.k.hashBlocks(data.subarray(0, count * this.blockSize), out, outOffset);
  }

  hashBlocksAt(wasm: Wasm, ptr: number, count: number, out: Uint8Array, outOffset: number): boolean {
    if (wasm !== this.wasm) return false;
    // The digest scratch holds a pending tree block's worth of digests, and
    // at least 256 of them so that small blocks still go in long runs.
    const scratchBytes = Math.max(this.blockSize, 8192);
    if (this.digests === 0) this.digests = this.wasm.alloc(scratchBytes);
    const ds = this.algorithm.digestSize;
    const per = scratchBytes / ds;
    for (let i = 0; i < count; i += per) {
      const n = Math.min(per, count - i);
      this.k.hashBlocksAt(ptr + i * this.blockSize, n, this.digests);
      out.set(this.wasm.bytes(this.digests, n * ds), outOffset + i * ds);
    }
    return true;
  }

  dispose(): void {
    if (this.digests !== 0) this.wasm.free(this.digests);
    this.digests = 0;
    this.k.dispose();
  }
}
