/**
 * `fsverityDigestFile`: the digest of a file on disk, in Node. The only
 * module of src/verity that uses node:fs, and only through a dynamic import
 * when called: a browser bundle of the package index never needs it.
 *
 * The file is read in large chunks (a few MiB) and all-zero blocks are
 * found by a scan, not hashed: they go into the tree as holes, which the
 * builder collapses to precomputed digests. A sparse file therefore costs
 * a read of its zeros but almost no hashing. Memory: the I/O buffer plus
 * one block per tree level; the tree, if asked for, streams to `treeSink`.
 */
import type { FileHandle } from 'node:fs/promises';
import { fail, type ErrnoCode } from '../errors.js';
import { finishDigest, TreeCollector, type FsverityDigestOptions, type FsverityDigestResult } from './digest.js';
import { computeMerkleTreeParams, validateDigestParams } from './params.js';
import { MerkleTreeBuilder, type MerkleBlockSink } from './tree.js';

/** Options of `fsverityDigestFile`. */
export interface FsverityDigestFileOptions extends FsverityDigestOptions {
  /**
   * Receives each Merkle tree block with its byte offset in the stored tree
   * (as `--out-merkle-tree` lays it out), while the file is read; the block
   * is only valid during the call. Lets a caller write a tree of any size
   * without holding it.
   */
  treeSink?: (offset: number, block: Uint8Array) => void | Promise<void>;
  /** Called after each chunk read with bytes done and the file size. */
  onProgress?: (done: number, total: number) => void;
}

/** Bytes read per I/O (rounded to whole blocks; at least one block). */
const IO_SIZE = 4 << 20;

const PASS_THROUGH: readonly string[] = ['ENOENT', 'EISDIR', 'ENOTDIR', 'ENAMETOOLONG', 'EPERM'];

// The words of strerror(3), so messages read like fsverity-utils' own.
const STRERROR: Record<string, string> = {
  ENOENT: 'No such file or directory',
  EACCES: 'Permission denied',
  EPERM: 'Operation not permitted',
  EISDIR: 'Is a directory',
  ENOTDIR: 'Not a directory',
  ENAMETOOLONG: 'File name too long',
  EIO: 'Input/output error',
};

function ioError(e: unknown, what: string): Error {
  const code = (e as NodeJS.ErrnoException)?.code ?? '';
  const errno: ErrnoCode = code === 'EACCES' ? 'EPERM' : PASS_THROUGH.includes(code) ? (code as ErrnoCode) : 'EIO';
  return fail(errno, `${what}: ${STRERROR[code] ?? (e as Error)?.message ?? String(e)}`, e);
}

/**
 * The fs-verity digest of the file at `path`, exactly as
 * `fsverity digest` computes it. Errors: EINVAL for bad parameters, ENOENT,
 * EISDIR, EPERM or EIO when the file cannot be read (the message names it),
 * EIO when it shrinks while being read.
 */
export async function fsverityDigestFile(path: string, opts?: FsverityDigestFileOptions): Promise<FsverityDigestResult> {
  const params = validateDigestParams(opts);
  const { open } = await import('node:fs/promises');
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
      const ioSize = Math.max(bs, Math.floor(IO_SIZE / bs) * bs);
      // A file smaller than the I/O size is read in one piece of its own
      // size (the builder zero-pads the last block), so huge block sizes
      // do not cost a huge buffer for a small file.
      const buf = new Uint8Array(Math.max(1, Math.min(ioSize, size)));
      let done = 0;
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
