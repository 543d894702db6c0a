/**
 * `iomap-verity veritysetup format|verify|dump`: cryptsetup's
 * `veritysetup` for the actions that run on plain files, with its option
 * names, its output lines and its exit statuses (0 done, 1 failed or bad
 * command line, 2 verification failed, 4 a device that does not exist).
 */
import { closeSync, fstatSync, openSync, readFileSync, statSync, writeFileSync, writeSync, constants as fsc } from 'node:fs';
import {
  DMVERITY_HASH_ALGORITHMS,
  DMVERITY_MAX_BLOCK_SIZE,
  DMVERITY_MIN_BLOCK_SIZE,
  DMVERITY_MAX_SALT_SIZE,
  dmverityFormat,
  dmverityHex,
  dmverityReadParams,
  dmverityVerify,
  computeDmverityLayout,
  isErrno,
  type DmverityLayout,
  type DmverityParams,
  type DmverityParamsOptions,
} from '../../index.js';
import { UsageError, type CliIo, type Command } from '../command.js';
import { getoptLong } from '../getopt.js';

const USAGE = `Usage: iomap-verity veritysetup <action> [OPTION...] <action-specific>
    format <data_device> <hash_device>              - format device
    verify <data_device> <hash_device> [<root_hash>] - verify device
    dump <hash_device>                              - show on-disk information
Options (as veritysetup's):
    [--hash=sha256|sha512|sha1] [--data-block-size=bytes] [--hash-block-size=bytes]
    [--data-blocks=blocks] [--hash-offset=bytes] [--salt=hex|-] [--uuid=UUID]
    [--format=0|1] [--no-superblock] [--root-hash-file=FILE] [-v|--verbose]
Hash algorithms: sha256, sha512, sha1. Block sizes: 512 to 524288 bytes, powers of two.
`;

const LONGOPTS = [
  { name: 'hash', hasArg: true },
  { name: 'data-block-size', hasArg: true },
  { name: 'hash-block-size', hasArg: true },
  { name: 'data-blocks', hasArg: true },
  { name: 'hash-offset', hasArg: true },
  { name: 'salt', hasArg: true },
  { name: 'uuid', hasArg: true },
  { name: 'format', hasArg: true },
  { name: 'no-superblock', hasArg: false },
  { name: 'root-hash-file', hasArg: true },
  { name: 'verbose', hasArg: false },
  { name: 'debug', hasArg: false },
] as const;

/** Exit statuses of cryptsetup's tools (translate_errno). */
const EXIT_FAILED = 1;
const EXIT_PERM = 2;
const EXIT_NODEV = 4;
const FAILURE_WORDS: Record<number, string> = {
  [EXIT_FAILED]: 'wrong or missing parameters',
  [EXIT_PERM]: 'no permission or bad passphrase',
  [EXIT_NODEV]: 'wrong device or file specified',
};

/** A failure with veritysetup's message and exit status. */
class ToolError extends Error {
  constructor(
    message: string,
    readonly status = EXIT_FAILED,
  ) {
    super(message);
  }
}

interface CommandLine {
  action: string;
  operands: string[];
  opts: DmverityParamsOptions;
  saltGiven: boolean;
  rootHashFile: string | undefined;
  verbose: boolean;
}

// popt's short options: -h is --hash, -s --salt, -v --verbose.
function expandShort(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') {
      out.push(...args.slice(i));
      break;
    }
    if (a === '-v') out.push('--verbose');
    else if (a === '-h' || a === '-s') {
      if (i + 1 >= args.length) throw new UsageError(`option '${a}' requires an argument`);
      out.push(`--${a === '-h' ? 'hash' : 'salt'}=${args[++i]!}`);
    } else out.push(a);
  }
  return out;
}

function number(text: string): number {
  if (!/^\s*\+?\d+$/.test(text)) throw new UsageError('invalid numeric value');
  const n = Number(text.trim());
  if (!Number.isSafeInteger(n)) throw new UsageError('invalid numeric value');
  return n;
}

function parseHex(text: string): Uint8Array | undefined {
  if (!/^([0-9a-fA-F]{2})*$/.test(text)) return undefined;
  return Uint8Array.from(text.match(/../g) ?? [], (h) => parseInt(h, 16));
}

function parse(args: string[]): CommandLine {
  const { options, operands } = getoptLong('veritysetup', expandShort(args), LONGOPTS);
  const [action, ...rest] = operands;
  if (action === undefined) throw new UsageError('Argument <action> missing.');
  const cl: CommandLine = { action, operands: rest, opts: {}, saltGiven: false, rootHashFile: undefined, verbose: false };
  for (const { name, value } of options) {
    const v = value ?? '';
    switch (name) {
      case 'hash':
        cl.opts.hashAlgorithm = v;
        break;
      case 'data-block-size':
        cl.opts.dataBlockSize = number(v);
        break;
      case 'hash-block-size':
        cl.opts.hashBlockSize = number(v);
        break;
      case 'data-blocks':
        cl.opts.dataBlocks = number(v);
        break;
      case 'hash-offset':
        cl.opts.hashOffset = number(v);
        break;
      case 'format':
        cl.opts.format = number(v);
        break;
      case 'salt': {
        cl.saltGiven = true;
        if (v === '-') cl.opts.salt = new Uint8Array(0);
        else {
          const salt = parseHex(v);
          if (!salt) throw new ToolError('Invalid salt string specified.');
          cl.opts.salt = salt;
        }
        break;
      }
      case 'uuid':
        cl.opts.uuid = v;
        break;
      case 'no-superblock':
        cl.opts.superblock = false;
        break;
      case 'root-hash-file':
        cl.rootHashFile = v;
        break;
      case 'verbose':
        cl.verbose = true;
        break;
    }
  }
  return cl;
}

/** The checks crypt_format makes before any I/O, in its order and words. */
function checkFormatOptions(cl: CommandLine, hashPath: string): void {
  const o = cl.opts;
  if ((o.format ?? 1) > 1) throw new ToolError(`Unsupported VERITY hash type ${o.format}.`);
  for (const bs of [o.dataBlockSize ?? 4096, o.hashBlockSize ?? 4096]) {
    if (bs < DMVERITY_MIN_BLOCK_SIZE || bs > DMVERITY_MAX_BLOCK_SIZE || (bs & (bs - 1)) !== 0) throw new ToolError('Unsupported VERITY block size.');
  }
  if ((o.hashOffset ?? 0) % 512 !== 0) throw new ToolError('Unsupported VERITY hash offset.');
  const alg = o.hashAlgorithm ?? 'sha256';
  if (!Object.hasOwn(DMVERITY_HASH_ALGORITHMS, alg.toLowerCase())) {
    // veritysetup's words; our supported list is in `--help`.
    throw new ToolError(`Hash algorithm ${alg} not supported.`);
  }
  if (o.salt && o.salt.length > DMVERITY_MAX_SALT_SIZE) throw new ToolError(`Salt of ${o.salt.length} bytes: at most ${DMVERITY_MAX_SALT_SIZE}.`);
  if (o.superblock !== false && o.uuid !== undefined && !/^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$/.test(o.uuid)) {
    throw new ToolError(`Wrong VERITY UUID format provided on device ${hashPath}.`);
  }
}

/** The lines crypt_dump prints for a verity device, in its order. */
function dumpLines(hashPath: string, params: DmverityParams, layout: DmverityLayout, uuid: string, rootHash?: string): string {
  const lines = [
    `VERITY header information for ${hashPath}`,
    `UUID:            \t${uuid}`,
    `Hash type:       \t${params.format}`,
    `Data blocks:     \t${params.dataBlocks}`,
    `Data block size: \t${params.dataBlockSize}`,
    `Hash blocks:     \t${layout.hashBlocks}`,
    `Hash block size: \t${params.hashBlockSize}`,
    `Hash algorithm:  \t${params.hashAlgorithm}`,
    `Salt:            \t${params.salt.length ? dmverityHex(params.salt) : '-'}`,
  ];
  if (rootHash !== undefined) lines.push(`Root hash:      \t${rootHash}`);
  if (params.hashOffset === 0) lines.push(`Hash device size: \t${layout.hashDeviceSize} [bytes]`);
  return `${lines.join('\n')}\n`;
}

function noDevice(e: unknown, path: string): never {
  if (isErrno(e, 'ENOENT') || isErrno(e, 'EPERM') || isErrno(e, 'ENOTDIR')) throw new ToolError(`Device ${path} does not exist or access denied.`, EXIT_NODEV);
  throw e;
}

/** Data and hash in one file: the tree must start past the data, or formatting would overwrite it. */
function checkOverlap(cl: CommandLine, dataPath: string, hashFd: number): void {
  let data;
  try {
    data = statSync(dataPath);
  } catch {
    return; // reported by the format itself
  }
  const hash = fstatSync(hashFd);
  if (data.dev !== hash.dev || data.ino !== hash.ino) return;
  const bs = cl.opts.dataBlockSize ?? 4096;
  const blocks = cl.opts.dataBlocks || Math.floor(data.size / bs);
  if (blocks * bs > (cl.opts.hashOffset ?? 0)) throw new ToolError('Data area overlaps with hash area.');
}

async function format(cl: CommandLine, io: CliIo): Promise<void> {
  if (cl.operands.length < 2) throw new UsageError('format: requires <data_device> <hash_device> as arguments');
  const [dataPath, hashPath] = cl.operands as [string, string];
  // As veritysetup: create the hash image when missing, never truncate it.
  let fd: number;
  try {
    fd = openSync(hashPath, fsc.O_RDWR | fsc.O_CREAT, 0o600);
  } catch {
    throw new ToolError(`Cannot create hash image ${hashPath} for writing.`);
  }
  try {
    checkFormatOptions(cl, hashPath);
    checkOverlap(cl, dataPath, fd);
    let r;
    try {
      r = await dmverityFormat(dataPath, {
        ...cl.opts,
        sink: (offset, bytes) => {
          for (let done = 0; done < bytes.length; ) done += writeSync(fd, bytes, done, bytes.length - done, offset + done);
        },
      });
    } catch (e) {
      if (isErrno(e, 'EIO')) throw new ToolError('Input/output error while creating hash area.');
      if (isErrno(e, 'EINVAL') && /at least one is needed/.test((e as Error).message)) {
        throw new ToolError(`Header detected but device ${dataPath} is too small.`);
      }
      noDevice(e, dataPath);
    }
    const uuid = r.params.superblock ? (cl.opts.uuid ?? r.params.uuid) : '';
    io.stdout.write(dumpLines(hashPath, r.params, r.layout, uuid, r.rootHashHex));
    if (cl.rootHashFile !== undefined) {
      try {
        writeFileSync(cl.rootHashFile, r.rootHashHex, { mode: 0o600 });
      } catch {
        throw new ToolError(`Cannot create root hash file ${cl.rootHashFile} for writing.`);
      }
    }
  } finally {
    closeSync(fd);
  }
}

async function verify(cl: CommandLine): Promise<void> {
  if (cl.operands.length < 2) throw new UsageError('verify: requires <data_device> <hash_device> [<root_hash>] as arguments');
  const [dataPath, hashPath, rootArg] = cl.operands as [string, string, string | undefined];
  let root = rootArg;
  if (root === undefined) {
    if (cl.rootHashFile === undefined) throw new ToolError('Command requires <root_hash> or --root-hash-file option as argument.');
    try {
      root = readFileSync(cl.rootHashFile, 'utf8').trim();
    } catch {
      throw new ToolError(`Cannot read root hash file ${cl.rootHashFile}.`);
    }
  }
  let params: DmverityParams;
  let dataSize: number;
  try {
    dataSize = statSync(dataPath).size;
  } catch {
    throw new ToolError(`Device ${dataPath} does not exist or access denied.`, EXIT_NODEV);
  }
  try {
    params = await dmverityReadParams(hashPath, cl.opts, dataSize);
  } catch (e) {
    if (isErrno(e, 'EINVAL') && cl.opts.superblock !== false) throw new ToolError(`Device ${hashPath} is not a valid VERITY device.`);
    if (isErrno(e, 'EINVAL')) throw new ToolError((e as Error).message);
    noDevice(e, hashPath);
  }
  if (!/^([0-9a-fA-F]{2})*$/.test(root) || root.length !== 2 * params.digestSize) throw new ToolError('Invalid root hash string specified.');
  let r;
  try {
    r = await dmverityVerify(dataPath, hashPath, root, cl.opts);
  } catch (e) {
    if (isErrno(e, 'EIO')) throw new ToolError('Verification of data area failed.');
    noDevice(e, dataPath);
  }
  if (r.ok) return;
  const f = r.failure!;
  if (f.reason === 'root') throw new ToolError('Verification of root hash failed.');
  const where = f.reason === 'spare' ? `Spare area is not zeroed at position ${f.position}.` : `Verification failed at position ${f.position}.`;
  throw new ToolError(`${where}\nVerification of data area failed.`, EXIT_PERM);
}

async function dump(cl: CommandLine, io: CliIo): Promise<void> {
  if (cl.operands.length < 1) throw new UsageError('dump: requires <hash_device> as arguments');
  const hashPath = cl.operands[0]!;
  let params: DmverityParams;
  try {
    params = await dmverityReadParams(hashPath, { hashOffset: cl.opts.hashOffset });
  } catch (e) {
    if (isErrno(e, 'EINVAL')) throw new ToolError(`Device ${hashPath} is not a valid VERITY device.`);
    noDevice(e, hashPath);
  }
  io.stdout.write(dumpLines(hashPath, params, computeDmverityLayout(params), params.uuid));
}

export const veritysetupCommand: Command = {
  name: 'veritysetup',
  summary: 'dm-verity hash devices as veritysetup makes them: format, verify, dump',
  usage: USAGE,
  async run(args: string[], io: CliIo): Promise<number> {
    let cl: CommandLine | undefined;
    try {
      cl = parse(args);
      if (cl.action === 'format') await format(cl, io);
      else if (cl.action === 'verify') await verify(cl);
      else if (cl.action === 'dump') await dump(cl, io);
      else throw new UsageError('Unknown action.');
      if (cl.verbose) io.stdout.write('Command successful.\n');
      return 0;
    } catch (e) {
      if (e instanceof UsageError) {
        io.stderr.write(`iomap-verity veritysetup: ${e.message}\n${USAGE}`);
        return EXIT_FAILED;
      }
      if (e instanceof ToolError) {
        io.stderr.write(`${e.message}\n`);
        if (cl?.verbose) io.stdout.write(`Command failed with code ${-e.status} (${FAILURE_WORDS[e.status]}).\n`);
        return e.status;
      }
      if (isErrno(e)) {
        io.stderr.write(`${(e as Error).message}\n`);
        return EXIT_FAILED;
      }
      throw e;
    }
  },
};
