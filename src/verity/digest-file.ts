/**
 * `fsverityDigestFile`: the digest of a file on disk, in Node. With the
 * worker pool (pool.ts), the only modules of src/verity that use Node APIs,
 * always through dynamic imports when called: a browser bundle of the
 * package index never needs them.
 *
 * The file is read in large chunks (4 MiB) and all-zero blocks are found
 * by a scan, not hashed: they go into the tree as holes, which the builder
 * collapses to precomputed digests. A sparse file therefore costs a read of
 * its zeros but almost no hashing. The chunks are read straight into
 * WebAssembly memory and scanned and hashed there; huge blocks go through
 * a JS buffer. Memory: the I/O buffer plus one block per
 * tree level; the tree, if asked for, streams to `treeSink`.
 *
 * Files of `PARALLEL_THRESHOLD` bytes or more have their whole blocks read
 * and hashed by the worker pool (pool.ts) once it runs; a file of 64 MiB or
 * more starts it, and this thread hashes until the workers have booted.
 * Each worker reads its own
 * ranges straight into its own WebAssembly memory; this thread keeps the
 * order, builds the levels above and reads the final partial block. An
 * all-zero 4 MiB range comes back as "all zero" and costs no hashing here
 * either. Same bytes either way. Measured on 2 cores, whole `iomap-verity
 * digest` process: a dense 1 GiB file in 0.96 s (1.69 s on one thread), a
 * 16 GiB sparse file holding 64 MiB of data in 1.76 s (3.12 s).
 */
import type { FileHandle } from 'node:fs/promises';
import { fail, IomapVerityError, throwIfAborted, type ErrnoCode } from '../errors.js';
import { finishDigest, TreeCollector, type FsverityDigestOptions, type FsverityDigestResult } from './digest.js';
import { computeMerkleTreeParams, validateDigestParams, type VerityParams } from './params.js';
import { feedLeavesFromPool } from './pool-feed.js';
import { choosePool, POOL_CHUNK_BYTES, POOL_USE_BYTES, PoolShortReadError, type LeafHashPool, type PoolChoice } from './pool.js';
import { loadWasm } from '../wasm/index.js';
import { Sha256BlockHasher } from '../wasm/sha256.js';
import { Sha512BlockHasher } from '../wasm/sha512.js';
import { nodeFs, nodeFsPromises } from '#platform';
import { MerkleTreeBuilder, type MerkleBlockSink } from './tree.js';

/** Options of `fsverityDigestFile`. */
export interface FsverityDigestFileOptions extends Omit<FsverityDigestOptions, 'onProgress'> {
  /**
   * Receives each Merkle tree block with its byte offset in the stored tree
   * (as `--out-merkle-tree` lays it out), while the file is read; the block
   * is only valid during the call. Lets a caller write a tree of any size
   * without holding it.
   */
  treeSink?: (offset: number, block: Uint8Array) => void | Promise<void>;
  /** Called after each chunk read with bytes done and the file size. */
  onProgress?: (done: number, total: number) => void;
  /**
   * Hash on worker threads (default true): files of `PARALLEL_THRESHOLD`
   * bytes or more once the process's pool runs, and a file of 64 MiB or
   * more starts it. SHA-256 or SHA-512 with 1 KiB to 64 KiB blocks only; anything
   * else, a one-core machine, or `IOMAP_VERITY_THREADS=1` takes the
   * one-thread path, which gives the same bytes.
   */
  parallel?: boolean;
}

/**
 * Files from this size up are hashed on the worker pool when it is running
 * (two 4 MiB jobs or more); smaller ones stay on this thread.
 */
export const PARALLEL_THRESHOLD = POOL_USE_BYTES;

/** Bytes read per I/O (rounded to whole blocks; at least one block). */
const IO_SIZE = 4 << 20;

const PASS_THROUGH: readonly string[] = ['ENOENT', 'EISDIR', 'ENOTDIR', 'ENAMETOOLONG', 'EPERM'];

/**
 * A system error while opening or reading the file: its errno code where
 * ours has it (EACCES as EPERM, the rest EIO), a message of what was being
 * done, then `: ` and the system's own message, and the system error as
 * `cause` (a command line that wants strerror(3)'s words, as fsverity-utils
 * prints them, puts them in place of the system's message).
 */
/** The file being digested and what each path of hashing needs of it. */
interface OpenFile {
  readonly builder: MerkleTreeBuilder;
  readonly fd: number;
  readonly size: number;
  /** Names the file in messages. */
  readonly path: string;
  readonly opts: FsverityDigestFileOptions | undefined;
}

function ioError(e: unknown, what: string): Error {
  const code = (e as NodeJS.ErrnoException)?.code ?? '';
  const errno: ErrnoCode = code === 'EACCES' ? 'EPERM' : PASS_THROUGH.includes(code) ? (code as ErrnoCode) : 'EIO';
  return fail(errno, `${what}: ${(e as Error)?.message ?? String(e)}`, e);
}

/**
 * The fs-verity digest of the file at `path`, exactly as
 * `fsverity digest` computes it. Errors: EINVAL for bad parameters, ENOENT,
 * EISDIR, EPERM or EIO when the file cannot be read (the message names it),
 * EIO when it shrinks while being read.
 */
export async function fsverityDigestFile(path: string, options?: FsverityDigestFileOptions): Promise<FsverityDigestResult> {
  const params = validateDigestParams(options);
  const signal = options?.signal;
  throwIfAborted(signal, `fsverityDigestFile of '${path}'`);
  // Every path below reports progress after each read or job: the abort is
  // checked there, and the error stops the read loop or the pool's window.
  const opts: FsverityDigestFileOptions | undefined = signal
    ? {
        ...options,
        onProgress: (done, total) => {
          throwIfAborted(signal, `fsverityDigestFile of '${path}'`);
          options?.onProgress?.(done, total);
        },
      }
    : options;
  const { open } = await nodeFsPromises();
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    throw ioError(e, `can't open '${path}' for reading`);
  }
  try {
    const st = await fh.stat();
    if (st.isDirectory()) throw fail('EISDIR', `reading from '${path}': Is a directory`);
    const size = st.size;
    const shape = computeMerkleTreeParams(params, size);
    const collector = opts?.merkleTree ? new TreeCollector() : undefined;
    const treeSink = opts?.treeSink;
    const bs = params.blockSize;
    let sink: MerkleBlockSink | undefined;
    if (collector || treeSink) {
      sink = async (level, index, block, zero) => {
        if (collector) await collector.sink(level, index, block, zero);
        if (treeSink) await treeSink((shape.levelStart[level]! + index) * bs, block);
      };
    }
    const builder = await MerkleTreeBuilder.create(params, { sink });
    try {
      // Whole blocks go to the pool or are hashed in WASM memory on this
      // thread; what is left (the final partial block, or everything for
      // huge blocks) goes through a JS buffer.
      let done = 0;
      const whole = Math.floor(size / bs) * bs;
      const choice = await choosePool(params, size, opts?.parallel === false ? false : undefined);
      const file: OpenFile = { builder, fd: fh.fd, size, path, opts };
      if (choice) done = await digestParallel(choice, file);
      if (done < whole && useInline(params)) done = await digestInline(file, done);
      const ioSize = Math.max(bs, Math.floor(IO_SIZE / bs) * bs);
      // A file smaller than the I/O size is read in one piece of its own
      // size (the builder zero-pads the last block), so huge block sizes
      // do not cost a huge buffer for a small file.
      const buf = new Uint8Array(Math.max(1, Math.min(ioSize, size - done)));
      while (done < size) {
        const want = Math.min(buf.length, size - done);
        let got = 0;
        while (got < want) {
          let n: number;
          try {
            ({ bytesRead: n } = await fh.read(buf, got, want - got, done + got));
          } catch (e) {
            throw ioError(e, `reading from '${path}'`);
          }
          if (n === 0) throw fail('EIO', `'${path}' shrank while being read: ended at ${done + got} of ${size} bytes`);
          got += n;
        }
        await addZeroAware(builder, buf.subarray(0, got), bs);
        done += got;
        opts?.onProgress?.(done, size);
      }
      const tree = await builder.finish();
      const result = await finishDigest(params, tree);
      if (collector) result.merkleTree = collector.assemble(params, tree.dataSize);
      return result;
    } finally {
      builder.dispose();
    }
  } finally {
    await fh.close();
  }
}

// The one-thread path hashes in place up to this block size (4 blocks per
// 4 MiB read keep the SIMD kernels busy); larger blocks take the JS-buffer
// path below.
const INLINE_MAX_BLOCK_SIZE = 1 << 20;

function useInline(params: VerityParams): boolean {
  return params.blockSize <= INLINE_MAX_BLOCK_SIZE;
}

/**
 * The one-thread path: what a pool worker does, on this thread.
 * The file's whole blocks are read straight into WebAssembly memory (no
 * copy through a JS buffer) and hashed there by the zero-aware kernel; a
 * read that was all zeros goes to the builder as a zero run. Reads are
 * synchronous so that nothing can grow the memory under a read in flight;
 * returns the bytes covered (the final partial block is left to the caller).
 */
async function digestInline({ builder, fd, size, path, opts }: OpenFile, from: number, stop?: () => boolean): Promise<number> {
  const { readSync } = await nodeFs();
  const bs = builder.params.blockSize;
  const blocks = Math.floor(size / bs);
  if (blocks * bs <= from) return from;
  const per = Math.min(POOL_CHUNK_BYTES / bs, blocks);
  const wasm = await loadWasm();
  const { salt, algorithm } = builder.params;
  const hasher = algorithm.id === 1 ? Sha256BlockHasher.create(wasm, salt, bs) : Sha512BlockHasher.create(wasm, salt, bs);
  const ds = algorithm.digestSize;
  let buf = 0;
  let dig = 0;
  try {
    buf = wasm.alloc(per * bs);
    dig = wasm.alloc(per * ds);
    // The builder's sink may allocate (and grow memory), so digests leave
    // WASM memory before the builder sees them.
    const digests = new Uint8Array(per * ds);
    for (let b = from / bs; b < blocks; ) {
      if (stop) {
        // Let the workers' "ready" messages in (everything above is
        // synchronous or microtasks), then hand over if they arrived.
        await new Promise((resolve) => setImmediate(resolve));
        if (stop()) return b * bs;
      }
      const n = Math.min(per, blocks - b);
      const len = n * bs;
      const pos = b * bs;
      for (let got = 0; got < len; ) {
        let r: number;
        try {
          r = readSync(fd, wasm.bytes(buf + got, len - got), 0, len - got, pos + got);
        } catch (e) {
          throw ioError(e, `reading from '${path}'`);
        }
        if (r === 0) throw fail('EIO', `'${path}' shrank while being read: ended at ${pos + got} of ${size} bytes`);
        got += r;
      }
      if (hasher.hashBlocksAtSkipZero(buf, n, dig) === n) {
        await builder.addZeroBlocks(n);
      } else {
        digests.set(wasm.bytes(dig, n * ds));
        await builder.addLeafDigests(digests, n);
      }
      b += n;
      opts?.onProgress?.(b * bs, size);
    }
  } finally {
    if (dig !== 0) wasm.free(dig);
    if (buf !== 0) wasm.free(buf);
    hasher.dispose();
  }
  return blocks * bs;
}

/**
 * Hash the file's whole blocks in parallel on the chosen pool: a running
 * pool takes the whole file; while a cold one boots, this thread hashes
 * from the start of the file, and the workers take the rest once every
 * one is up. Returns the bytes covered (whole blocks).
 */
async function digestParallel(choice: PoolChoice, file: OpenFile): Promise<number> {
  let done = 0;
  if (!choice.up()) {
    done = await digestInline(file, 0, () => choice.up() || !choice.pool.usable);
    if (!choice.up()) return done;
  }
  return digestOnPool(choice.pool, file, done);
}

/**
 * Hash the file's whole blocks from byte `from` (a block boundary) on the
 * worker pool, in order into `builder`; returns the bytes covered up to the
 * last whole block (the final partial block is left to the caller).
 */
async function digestOnPool(pool: LeafHashPool, { builder, fd, size, path, opts }: OpenFile, from: number): Promise<number> {
  const bs = builder.params.blockSize;
  const blocks = Math.floor(size / bs);
  try {
    const onProgress = (done: number) => opts?.onProgress?.(done, size);
    const { salt, algorithm } = builder.params;
    await feedLeavesFromPool(pool, fd, from / bs, blocks, bs, salt, builder, onProgress, algorithm.name);
  } catch (e) {
    if (e instanceof PoolShortReadError) throw fail('EIO', `'${path}' shrank while being read: ended at ${e.endedAt} of ${size} bytes`, e);
    if (!(e instanceof IomapVerityError)) throw e;
    throw fail(e.code, `reading from '${path}': ${e.message}`, e);
  }
  return blocks * bs;
}

/** Hash the nonzero runs of `data`, and declare its all-zero whole blocks as holes. */
async function addZeroAware(builder: MerkleTreeBuilder, data: Uint8Array, bs: number): Promise<void> {
  const blocks = Math.floor(data.length / bs);
  let runStart = 0;
  let runZero = false;
  const words = data.byteOffset % 4 === 0 && bs % 4 === 0 ? new Uint32Array(data.buffer, data.byteOffset, blocks * (bs / 4)) : undefined;
  for (let b = 0; b < blocks; b++) {
    const z = words ? zeroWords(words, b * (bs / 4), bs / 4) : zeroBytes(data, b * bs, bs);
    if (b === 0) runZero = z;
    else if (z !== runZero) {
      await flushRun(builder, data, runStart, b, runZero, bs);
      runStart = b;
      runZero = z;
    }
  }
  if (blocks > 0) await flushRun(builder, data, runStart, blocks, runZero, bs);
  if (data.length > blocks * bs) await builder.addBlocks(data.subarray(blocks * bs));
}

function flushRun(builder: MerkleTreeBuilder, data: Uint8Array, from: number, to: number, zero: boolean, bs: number): Promise<void> {
  return zero ? builder.addZeroBlocks(to - from) : builder.addBlocks(data.subarray(from * bs, to * bs));
}

function zeroWords(w: Uint32Array, start: number, n: number): boolean {
  const end = start + n;
  for (let i = start; i < end; i += 8) {
    // OR eight words at a time: one branch per 32 bytes keeps the scan
    // well above the speed of reading the file.
    if ((w[i]! | w[i + 1]! | w[i + 2]! | w[i + 3]! | w[i + 4]! | w[i + 5]! | w[i + 6]! | w[i + 7]!) !== 0) return false;
  }
  return true;
}

function zeroBytes(b: Uint8Array, start: number, n: number): boolean {
  for (let i = start; i < start + n; i++) if (b[i] !== 0) return false;
  return true;
}
