/**
 * `iomap-verity digest FILE...`: the same command line, output and files
 * as fsverity-utils' `fsverity digest`, exit statuses included (2 for a
 * bad command line, 1 for a failure while digesting).
 */
import { closeSync, openSync, writeSync } from 'node:fs';
// The modules themselves, not the package index: the index loads the
// signature code (pkijs, asn1js), a tenth of a second of start-up that a
// digest only needs for --for-builtin-sig, where it is loaded on use.
import { isErrno } from '../../errors.js';
import { toHex } from '../../verity/descriptor.js';
import type { FsverityDigestResult } from '../../verity/digest.js';
import { fsverityDigestFile } from '../../verity/digest-file.js';
import { hashAlgorithmById, hashAlgorithmByName, HASH_ALGORITHMS, type HashAlgorithm } from '../../verity/hash-algs.js';
import { errorMessage, EXIT_FAILURE, strerror, UsageError, type CliIo, type Command } from '../command.js';
import { getoptLong, parseUnsignedLong } from '../getopt.js';
import { createProgress, type Progress } from '../progress.js';

const USAGE = `Usage:
    iomap-verity digest FILE...
               [--hash-alg=HASH_ALG] [--block-size=BLOCK_SIZE] [--salt=SALT]
               [--out-merkle-tree=FILE] [--out-descriptor=FILE]
               [--compact] [--for-builtin-sig] [--json]
`;

/** The options that choose a tree and where it goes, shared with `sign` (as fsverity-utils shares them between its commands). */
export const TREE_LONGOPTS = [
  { name: 'hash-alg', hasArg: true },
  { name: 'block-size', hasArg: true },
  { name: 'salt', hasArg: true },
  { name: 'out-merkle-tree', hasArg: true },
  { name: 'out-descriptor', hasArg: true },
] as const;

const LONGOPTS = [
  ...TREE_LONGOPTS,
  { name: 'compact', hasArg: false },
  { name: 'for-builtin-sig', hasArg: false },
  { name: 'json', hasArg: false },
] as const;

const INT32_MAX = 2 ** 31 - 1;

/** What the tree options of a command line asked for. */
export interface TreeOptions {
  /** An fs-verity algorithm number: may be one we do not know (refused per file, as fsverity-utils does). */
  algId: number | undefined;
  blockSize: number | undefined;
  salt: Uint8Array | undefined;
  treeFd: number | undefined;
  descFd: number | undefined;
}

interface DigestCommandLine extends TreeOptions {
  compact: boolean;
  /** One JSON object per file and line instead of fsverity's text (README: "JSON output"). */
  json: boolean;
  forBuiltinSig: boolean;
  files: string[];
}

function once<T>(current: T | undefined, opt: string): void {
  if (current !== undefined) throw new UsageError(`ERROR: --${opt} can only be specified once`);
}

function openForWriting(path: string): number {
  try {
    return openSync(path, 'w');
  } catch (e) {
    throw new UsageError(`ERROR: can't open '${path}' for writing: ${strerror(e)}`);
  }
}

/** A TreeOptions with nothing chosen yet. */
export function newTreeOptions(): TreeOptions {
  return { algId: undefined, blockSize: undefined, salt: undefined, treeFd: undefined, descFd: undefined };
}

/**
 * Apply one option of TREE_LONGOPTS to `t`, with fsverity-utils' checks and
 * words; false for an option that is not one of them. Throws UsageError
 * (the caller closes the outputs already opened, with closeTreeOutputs).
 */
export function parseTreeOption(t: TreeOptions, name: string, value: string | undefined): boolean {
  const v = value ?? '';
  switch (name) {
    case 'hash-alg': {
      once(t.algId, name);
      const n = parseUnsignedLong(v);
      if (n > 0 && n < INT32_MAX) t.algId = n;
      else {
        const alg = hashAlgorithmByName(v);
        if (!alg) {
          throw new UsageError(
            `ERROR: unknown hash algorithm: '${v}'\nAvailable hash algorithms: ${HASH_ALGORITHMS.map((a) => a.name).join(' ')}`,
          );
        }
        t.algId = alg.id;
      }
      return true;
    }
    case 'block-size': {
      once(t.blockSize, name);
      const n = parseUnsignedLong(v);
      if (!(n > 0 && n < INT32_MAX) || (n & (n - 1)) !== 0) {
        throw new UsageError(`ERROR: Invalid block size: ${v}.  Must be power of 2`);
      }
      t.blockSize = n;
      return true;
    }
    case 'salt':
      once(t.salt, name);
      if (v.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(v)) throw new UsageError('ERROR: salt is not a valid hex string');
      t.salt = Uint8Array.from(v.match(/../g) ?? [], (h) => parseInt(h, 16));
      return true;
    case 'out-merkle-tree':
      once(t.treeFd, name);
      t.treeFd = openForWriting(v);
      return true;
    case 'out-descriptor':
      once(t.descFd, name);
      t.descFd = openForWriting(v);
      return true;
    default:
      return false;
  }
}

function parseCommandLine(args: string[]): DigestCommandLine {
  const { options, operands } = getoptLong('digest', args, LONGOPTS);
  const cl: DigestCommandLine = { ...newTreeOptions(), compact: false, forBuiltinSig: false, json: false, files: operands };
  try {
    for (const { name, value } of options) {
      if (parseTreeOption(cl, name, value)) continue;
      if (name === 'compact') cl.compact = true;
      else if (name === 'for-builtin-sig') cl.forBuiltinSig = true;
      else if (name === 'json') cl.json = true;
    }
    if (cl.files.length === 0) throw new UsageError('');
    return cl;
  } catch (e) {
    closeTreeOutputs(cl);
    throw e;
  }
}

/** Close the --out-merkle-tree and --out-descriptor files, once. */
export function closeTreeOutputs(t: TreeOptions): void {
  if (t.treeFd !== undefined) closeSync(t.treeFd);
  if (t.descFd !== undefined) closeSync(t.descFd);
  t.treeFd = t.descFd = undefined;
}

function writeFully(fd: number, bytes: Uint8Array, position: number): void {
  for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off, bytes.length - off, position + off);
}

/**
 * Digest one file with the tree options, writing its tree and (at
 * `descOffset`) its descriptor to the files asked for, with a progress bar
 * on a terminal. Rejects as fsverityDigestFile does; reportDigestFailure
 * prints that as fsverity-utils would.
 */
export async function digestWithTreeOptions(
  file: string,
  t: TreeOptions,
  io: CliIo,
  descOffset = 0,
): Promise<{ alg: HashAlgorithm; result: FsverityDigestResult }> {
  const alg = hashAlgorithmById(t.algId ?? 1);
  if (!alg) throw new UnknownAlgorithm(t.algId!);
  let progress: Progress | undefined;
  let progressChecked = false;
  const treeFd = t.treeFd;
  try {
    const result = await fsverityDigestFile(file, {
      hashAlgorithm: alg.name,
      blockSize: t.blockSize ?? 4096,
      salt: t.salt,
      treeSink: treeFd === undefined ? undefined : (offset, block) => writeFully(treeFd, block, offset),
      onProgress: (done, total) => {
        if (!progressChecked) progress = createProgress(io, file, total);
        progressChecked = true;
        progress?.update(done, total);
      },
    });
    if (t.descFd !== undefined) writeFully(t.descFd, result.descriptor, descOffset);
    return { alg, result };
  } finally {
    progress?.done();
  }
}

class UnknownAlgorithm extends Error {
  constructor(readonly algId: number) {
    super(`unknown hash algorithm: ${algId}`);
  }
}

/** Print a failure of digestWithTreeOptions as `fsverity digest` does and give the exit status; rethrows what is not ours. */
export function reportDigestFailure(e: unknown, io: CliIo): number {
  if (e instanceof UnknownAlgorithm) {
    io.stderr.write(`ERROR: ${e.message}\nERROR: failed to compute digest\n`);
    return EXIT_FAILURE;
  }
  if (!isErrno(e)) throw e;
  const failedToCompute = e.code === 'EINVAL' ? '\nERROR: failed to compute digest' : '';
  io.stderr.write(`ERROR: ${errorMessage(e)}${failedToCompute}\n`);
  return EXIT_FAILURE;
}

/** The `--json` line of one file: what `fsverity digest` prints, and the parameters behind it. */
function digestJson(file: string, r: { digest: Uint8Array; rootHash: Uint8Array; descriptor: Uint8Array }, algorithm: string) {
  // The descriptor holds the parameters as used: log2 block size at byte 2,
  // salt size at 3, the data size (le64) at 8 and the salt at 80.
  const d = r.descriptor;
  const view = new DataView(d.buffer, d.byteOffset, d.byteLength);
  return {
    file,
    digest: `${algorithm}:${toHex(r.digest)}`,
    algorithm,
    blockSize: 2 ** d[2]!,
    salt: toHex(d.subarray(80, 80 + d[3]!)),
    size: Number(view.getBigUint64(8, true)),
    rootHash: toHex(r.rootHash),
  };
}

async function run(args: string[], io: CliIo): Promise<number> {
  const cl = parseCommandLine(args);
  try {
    // fsverity-utils 1.5 writes each file's tree at offset 0 of the tree
    // file (pwrite at tree offsets), so with several files they overlay,
    // while descriptors are appended one after another. Same bytes here.
    let descBase = 0;
    for (const file of cl.files) {
      try {
        const { alg, result: r } = await digestWithTreeOptions(file, cl, io, descBase);
        descBase += r.descriptor.length;
        const hex = cl.forBuiltinSig ? toHex((await import('../../verity/signature.js')).formatSignedDigest(r)) : toHex(r.digest);
        if (cl.json) io.stdout.write(`${JSON.stringify(digestJson(file, r, alg.name))}\n`);
        else if (cl.compact) io.stdout.write(`${hex}\n`);
        else if (cl.forBuiltinSig) io.stdout.write(`${hex} ${file}\n`);
        else io.stdout.write(`${alg.name}:${hex} ${file}\n`);
      } catch (e) {
        return reportDigestFailure(e, io);
      }
    }
    return 0;
  } finally {
    closeTreeOutputs(cl);
  }
}

/** `iomap-verity digest`: `fsverity digest`'s command line, output and exit statuses. */
export const digestCommand: Command = {
  name: 'digest',
  summary: 'compute the fs-verity digest of files, as `fsverity digest` does',
  usage: USAGE,
  run,
};
