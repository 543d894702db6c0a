/**
 * `iomap-verity digest FILE...`: the same command line, output and files
 * as fsverity-utils' `fsverity digest`, exit statuses included (2 for a
 * bad command line, 1 for a failure while digesting).
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import {
  fsverityDigestFile,
  hashAlgorithmById,
  hashAlgorithmByName,
  HASH_ALGORITHMS,
  isErrno,
  toHex,
  type HashAlgorithm,
} from '../../index.js';
import { errorMessage, EXIT_FAILURE, strerror, UsageError, type CliIo, type Command } from '../command.js';
import { getoptLong, parseUnsignedLong } from '../getopt.js';
import { createProgress, type Progress } from '../progress.js';

const USAGE = `Usage:
    iomap-verity digest FILE...
               [--hash-alg=HASH_ALG] [--block-size=BLOCK_SIZE] [--salt=SALT]
               [--out-merkle-tree=FILE] [--out-descriptor=FILE]
               [--compact] [--for-builtin-sig]
`;

const LONGOPTS = [
  { name: 'hash-alg', hasArg: true },
  { name: 'block-size', hasArg: true },
  { name: 'salt', hasArg: true },
  { name: 'compact', hasArg: false },
  { name: 'for-builtin-sig', hasArg: false },
  { name: 'out-merkle-tree', hasArg: true },
  { name: 'out-descriptor', hasArg: true },
] as const;

const INT32_MAX = 2 ** 31 - 1;

interface DigestCommandLine {
  /** An fs-verity algorithm number: may be one we do not know (refused per file, as fsverity-utils does). */
  algId: number | undefined;
  blockSize: number | undefined;
  salt: Uint8Array | undefined;
  compact: boolean;
  forBuiltinSig: boolean;
  treeFd: number | undefined;
  descFd: number | undefined;
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

function parseCommandLine(args: string[]): DigestCommandLine {
  const { options, operands } = getoptLong('digest', args, LONGOPTS);
  const cl: DigestCommandLine = {
    algId: undefined,
    blockSize: undefined,
    salt: undefined,
    compact: false,
    forBuiltinSig: false,
    treeFd: undefined,
    descFd: undefined,
    files: operands,
  };
  try {
    for (const { name, value } of options) {
      const v = value ?? '';
      switch (name) {
        case 'hash-alg': {
          once(cl.algId, name);
          const n = parseUnsignedLong(v);
          if (n > 0 && n < INT32_MAX) cl.algId = n;
          else {
            const alg = hashAlgorithmByName(v);
            if (!alg) {
              throw new UsageError(
                `ERROR: unknown hash algorithm: '${v}'\nAvailable hash algorithms: ${HASH_ALGORITHMS.map((a) => a.name).join(' ')}`,
              );
            }
            cl.algId = alg.id;
          }
          break;
        }
        case 'block-size': {
          once(cl.blockSize, name);
          const n = parseUnsignedLong(v);
          if (!(n > 0 && n < INT32_MAX) || (n & (n - 1)) !== 0) {
            throw new UsageError(`ERROR: Invalid block size: ${v}.  Must be power of 2`);
          }
          cl.blockSize = n;
          break;
        }
        case 'salt':
          once(cl.salt, name);
          if (v.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(v)) throw new UsageError('ERROR: salt is not a valid hex string');
          cl.salt = Uint8Array.from(v.match(/../g) ?? [], (h) => parseInt(h, 16));
          break;
        case 'compact':
          cl.compact = true;
          break;
        case 'for-builtin-sig':
          cl.forBuiltinSig = true;
          break;
        case 'out-merkle-tree':
          once(cl.treeFd, name);
          cl.treeFd = openForWriting(v);
          break;
        case 'out-descriptor':
          once(cl.descFd, name);
          cl.descFd = openForWriting(v);
          break;
      }
    }
    if (cl.files.length === 0) throw new UsageError('');
    return cl;
  } catch (e) {
    closeOutputs(cl);
    throw e;
  }
}

function closeOutputs(cl: DigestCommandLine): void {
  if (cl.treeFd !== undefined) closeSync(cl.treeFd);
  if (cl.descFd !== undefined) closeSync(cl.descFd);
  cl.treeFd = cl.descFd = undefined;
}

/** `fsverity digest --for-builtin-sig` output: "FSVerity", le16 algorithm, le16 size, digest. */
function builtinSigBlob(alg: HashAlgorithm, digest: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + digest.length);
  out.set(new TextEncoder().encode('FSVerity'));
  const dv = new DataView(out.buffer);
  dv.setUint16(8, alg.id, true);
  dv.setUint16(10, digest.length, true);
  out.set(digest, 12);
  return out;
}

function writeFully(fd: number, bytes: Uint8Array, position: number): void {
  for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off, bytes.length - off, position + off);
}

async function run(args: string[], io: CliIo): Promise<number> {
  const cl = parseCommandLine(args);
  try {
    // fsverity-utils 1.5 writes each file's tree at offset 0 of the tree
    // file (pwrite at tree offsets), so with several files they overlay,
    // while descriptors are appended one after another. Same bytes here.
    let descBase = 0;
    for (const file of cl.files) {
      const alg = hashAlgorithmById(cl.algId ?? 1);
      if (!alg) {
        io.stderr.write(`ERROR: unknown hash algorithm: ${cl.algId}\nERROR: failed to compute digest\n`);
        return EXIT_FAILURE;
      }
      let progress: Progress | undefined;
      let progressChecked = false;
      const treeFd = cl.treeFd;
      try {
        const r = await fsverityDigestFile(file, {
          hashAlgorithm: alg.name,
          blockSize: cl.blockSize ?? 4096,
          salt: cl.salt,
          treeSink:
            treeFd === undefined
              ? undefined
              : (offset, block) => writeFully(treeFd, block, offset),
          onProgress: (done, total) => {
            if (!progressChecked) progress = createProgress(io, file, total);
            progressChecked = true;
            progress?.update(done, total);
          },
        });
        if (cl.descFd !== undefined) {
          writeFully(cl.descFd, r.descriptor, descBase);
          descBase += r.descriptor.length;
        }
        const hex = cl.forBuiltinSig ? toHex(builtinSigBlob(alg, r.digest)) : toHex(r.digest);
        progress?.done();
        if (cl.compact) io.stdout.write(`${hex}\n`);
        else if (cl.forBuiltinSig) io.stdout.write(`${hex} ${file}\n`);
        else io.stdout.write(`${alg.name}:${hex} ${file}\n`);
      } catch (e) {
        progress?.done();
        if (!isErrno(e)) throw e;
        const failedToCompute = e.code === 'EINVAL' ? '\nERROR: failed to compute digest' : '';
        io.stderr.write(`ERROR: ${errorMessage(e)}${failedToCompute}\n`);
        return EXIT_FAILURE;
      }
    }
    return 0;
  } finally {
    closeOutputs(cl);
  }
}

/** `iomap-verity digest`: `fsverity digest`'s command line, output and exit statuses. */
export const digestCommand: Command = {
  name: 'digest',
  summary: 'compute the fs-verity digest of files, as `fsverity digest` does',
  usage: USAGE,
  run,
};
