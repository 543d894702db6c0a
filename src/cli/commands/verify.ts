/**
 * `iomap-verity verify FILE --digest=D [--tree=T --descriptor=DESC]` and
 * `iomap-verity cat SRC --digest=D --tree=T --descriptor=DESC`: verified
 * reads of files kept anywhere (local paths or http(s) URLs) against the
 * digest `fsverity digest` printed, with the tree and descriptor it wrote;
 * or, with `--hash-device=HASH --root-hash=HEX` and veritysetup's options,
 * of a dm-verity image against the root hash `veritysetup format` printed.
 * Memory stays bounded: data goes through one reused buffer.
 */
import {
  fsverityDigestFile,
  IomapVerityError,
  openDmverity,
  openVerified,
  parseFsverityDigest,
  DmverityFile,
  type DmverityTrust,
  type VerifiedFile,
  type VerifiedReader,
} from '../../index.js';
import { engineFailure, EXIT_FAILURE, UsageError, type CliIo, type Command } from '../command.js';
import { getoptLong, parseUnsignedLong } from '../getopt.js';

const DM_USAGE = `
  dm-verity: --hash-device=HASH --root-hash=HEX instead of the digest, tree
  and descriptor, with veritysetup's options for the tree: --hash=ALG,
  --data-block-size=N, --hash-block-size=N, --salt=HEX|-, --format=0|1,
  --hash-offset=N, --data-blocks=N, --no-superblock (with a superblock,
  the parameters come from it and those given must agree).
`;

const VERIFY_USAGE = `Usage:
    iomap-verity verify FILE --digest=ALG:HEX [--tree=FILE --descriptor=FILE] [--all] [--json]
    iomap-verity verify IMAGE --hash-device=HASH --root-hash=HEX [veritysetup options] [--all] [--json]

  With --tree and --descriptor (as \`fsverity digest --out-merkle-tree
  --out-descriptor\` writes them), every block of FILE is checked against
  the digest and the first bad block is reported (every bad range with
  --all). Without them, FILE's fs-verity digest (default parameters) is
  computed and compared. FILE, the tree and the descriptor may be local
  paths or http(s) URLs (a URL needs --tree and --descriptor).
  Exit status 0 when everything verifies, 1 when anything fails.
${DM_USAGE}`;

const CAT_USAGE = `Usage:
    iomap-verity cat SRC --digest=ALG:HEX --tree=FILE --descriptor=FILE [--offset=N] [--length=N]
    iomap-verity cat IMAGE --hash-device=HASH --root-hash=HEX [veritysetup options] [--offset=N] [--length=N]

  Writes the bytes of SRC (a local path or an http(s) URL) to standard
  output, each block verified before it is written. On a bad block it
  stops before writing any of it and exits 1 with the message.
${DM_USAGE}`;

/** Bytes checked per step. */
const STEP = 1 << 20;

interface Parsed {
  operands: string[];
  values: Map<string, string>;
  flags: Set<string>;
}

function parse(cmd: string, args: string[], withValue: string[], flags: string[]): Parsed {
  const { options, operands } = getoptLong(cmd, args, [...withValue.map((name) => ({ name, hasArg: true })), ...flags.map((name) => ({ name, hasArg: false }))]);
  const values = new Map<string, string>();
  const set = new Set<string>();
  for (const { name, value } of options) {
    if (value === undefined) set.add(name);
    else {
      if (values.has(name)) throw new UsageError(`ERROR: --${name} can only be specified once`);
      values.set(name, value);
    }
  }
  return { operands, values, flags: set };
}

/** The options of the dm-verity mode, as veritysetup names them. */
const DM_VALUES = ['hash-device', 'root-hash', 'hash', 'data-block-size', 'hash-block-size', 'salt', 'format', 'hash-offset', 'data-blocks'];
const DM_FLAGS = ['no-superblock'];

/** The trust of the dm-verity mode, when --root-hash is given; undefined otherwise (the fs-verity mode). */
function dmverityTrust(p: Parsed, cmd: string): { hash: string; trust: DmverityTrust } | undefined {
  const rootHash = p.values.get('root-hash');
  const hash = p.values.get('hash-device');
  const dmGiven = DM_VALUES.some((k) => p.values.has(k)) || DM_FLAGS.some((k) => p.flags.has(k));
  if (rootHash === undefined) {
    if (dmGiven) throw new UsageError(`ERROR: ${cmd} of a dm-verity image needs --root-hash=HEX (as veritysetup format printed it)`);
    return undefined;
  }
  if (hash === undefined) throw new UsageError(`ERROR: ${cmd} of a dm-verity image needs --hash-device=HASH`);
  for (const k of ['digest', 'tree', 'descriptor']) if (p.values.has(k)) throw new UsageError(`ERROR: --${k} is for fs-verity; a dm-verity image takes --hash-device and --root-hash`);
  const num = (k: string): number | undefined => sizeOption(p, k);
  const trust: DmverityTrust = { rootHash };
  const alg = p.values.get('hash');
  if (alg !== undefined) trust.hashAlgorithm = alg;
  for (const [k, field] of [['data-block-size', 'dataBlockSize'], ['hash-block-size', 'hashBlockSize'], ['format', 'format'], ['hash-offset', 'hashOffset'], ['data-blocks', 'dataBlocks']] as const) {
    const n = num(k);
    if (n !== undefined) trust[field] = n;
  }
  const salt = p.values.get('salt');
  if (salt !== undefined) {
    if (salt !== '-' && !/^([0-9a-fA-F]{2})*$/.test(salt)) throw new UsageError(`ERROR: invalid --salt '${salt}': use hex digits, or - for none`);
    trust.salt = Uint8Array.from(salt === '-' ? [] : (salt.match(/../g) ?? []), (h) => parseInt(h, 16));
  }
  if (p.flags.has('no-superblock')) trust.superblock = false;
  return { hash, trust };
}

function digestOption(p: Parsed): string {
  const d = p.values.get('digest');
  if (d === undefined) throw new UsageError('ERROR: --digest=ALG:HEX is required (as `fsverity digest` prints it)');
  try {
    parseFsverityDigest(d);
  } catch (e) {
    throw new UsageError(`ERROR: ${(e as Error).message}`);
  }
  return d;
}

function sizeOption(p: Parsed, name: string): number | undefined {
  const v = p.values.get(name);
  if (v === undefined) return undefined;
  const n = parseUnsignedLong(v);
  if (!(n >= 0) || !Number.isSafeInteger(n) || !/^\s*\+?\d+$/.test(v)) throw new UsageError(`ERROR: invalid --${name} '${v}': use a byte count`);
  return n;
}

interface BadRange {
  firstBlock: number;
  lastBlock: number;
  start: number;
  end: number;
  error: string;
}

/** The bad blocks of [pos, pos + len): each block read alone, its errors merged into ranges. */
async function badBlocks(f: VerifiedReader, pos: number, len: number, buf: Uint8Array, stopAtFirst: boolean, out: BadRange[]): Promise<void> {
  const bs = f.blockSize;
  for (let b = pos / bs; b * bs < pos + len; b++) {
    try {
      await f.readInto(b * bs, buf.subarray(0, Math.min(bs, f.size - b * bs)));
    } catch (e) {
      if (!(e instanceof IomapVerityError)) throw e;
      const last = out[out.length - 1];
      const end = Math.min(f.size, (b + 1) * bs);
      if (last && last.lastBlock === b - 1) {
        last.lastBlock = b;
        last.end = end;
      } else out.push({ firstBlock: b, lastBlock: b, start: b * bs, end, error: e.message });
      if (stopAtFirst) return;
    }
  }
}

export const verifyCommand: Command = {
  name: 'verify',
  summary: 'check a file (local or http) against its fs-verity digest, tree and descriptor',
  usage: VERIFY_USAGE,
  async run(args: string[], io: CliIo): Promise<number> {
    const p = parse('verify', args, ['digest', 'tree', 'descriptor', ...DM_VALUES], ['all', 'json', ...DM_FLAGS]);
    if (p.operands.length !== 1) throw new UsageError(p.operands.length ? 'ERROR: verify takes one FILE' : 'ERROR: no FILE given');
    const file = p.operands[0]!;
    const dm = dmverityTrust(p, 'verify');
    const digest = dm ? '' : digestOption(p);
    const tree = dm ? dm.hash : p.values.get('tree');
    const descriptor = p.values.get('descriptor');
    if (!dm && (tree === undefined) !== (descriptor === undefined)) throw new UsageError('ERROR: --tree and --descriptor go together');
    const json = p.flags.has('json');
    const report = (r: { ok: boolean; size?: number; digest?: string; rootHash?: string; bad?: BadRange[]; error?: string }): number => {
      if (json) io.stdout.write(`${JSON.stringify({ file, mode: dm ? 'dm-verity' : tree === undefined ? 'digest' : 'tree', ...r })}\n`);
      else if (r.ok) io.stdout.write(`${file}: OK\n`);
      else if (r.bad?.length) {
        for (const b of r.bad) {
          const blocks = b.firstBlock === b.lastBlock ? `data block ${b.firstBlock}` : `data blocks ${b.firstBlock}-${b.lastBlock}`;
          io.stdout.write(`${file}: FAILED at ${blocks} (bytes ${b.start}-${b.end - 1}): ${b.error}\n`);
        }
      } else io.stdout.write(`${file}: FAILED: ${r.error}\n`);
      return r.ok ? 0 : EXIT_FAILURE;
    };

    if (tree === undefined) {
      if (/^https?:\/\//i.test(file)) throw new UsageError('ERROR: a URL needs --tree and --descriptor');
      const alg = parseFsverityDigest(digest).algorithm;
      let got: string;
      try {
        got = (await fsverityDigestFile(file, { hashAlgorithm: alg.name })).formatted;
      } catch (e) {
        if (e instanceof IomapVerityError) return report({ ok: false, error: e.message });
        throw e;
      }
      const ok = got === digest.trim().toLowerCase();
      return report({ ok, digest: got, ...(ok ? {} : { error: `its digest is ${got}, expected ${digest}` }) });
    }

    let f: VerifiedReader;
    try {
      f = dm ? await openDmverity({ data: file, hash: dm.hash }, dm.trust) : await openVerified({ data: file, tree, descriptor: descriptor! }, { digest });
    } catch (e) {
      if (e instanceof IomapVerityError) return report({ ok: false, error: e.message });
      throw e;
    }
    try {
      const all = p.flags.has('all');
      const bad: BadRange[] = [];
      const bs = f.blockSize;
      const buf = new Uint8Array(Math.max(STEP, bs));
      const step = buf.length - (buf.length % bs);
      for (let pos = 0; pos < f.size; pos += step) {
        const len = Math.min(step, f.size - pos);
        try {
          await f.readInto(pos, buf.subarray(0, len));
        } catch (e) {
          if (!(e instanceof IomapVerityError)) throw e;
          // Find which blocks of this step are bad; the message of each first bad one is kept.
          await badBlocks(f, pos, len, buf, !all, bad);
          if (bad.length === 0) bad.push({ firstBlock: pos / bs, lastBlock: ((pos + len - 1) / bs) | 0, start: pos, end: pos + len, error: e.message });
          if (!all) break;
        }
      }
      const who = f instanceof DmverityFile ? { rootHash: f.rootHash } : { digest: (f as VerifiedFile).digest };
      return report({ ok: bad.length === 0, size: f.size, ...who, bad });
    } finally {
      await f.close();
    }
  },
};

/** Write `bytes` and wait for the stream to take more when it says it is full. */
async function writeOut(io: CliIo, bytes: Uint8Array): Promise<void> {
  const out = io.stdout as unknown as { write(b: Uint8Array): boolean; once?(ev: string, cb: () => void): unknown };
  if (out.write(bytes) === false && typeof out.once === 'function') await new Promise<void>((ok) => out.once!('drain', ok));
}

export const catCommand: Command = {
  name: 'cat',
  summary: 'write verified bytes of a file (local or http) to stdout',
  usage: CAT_USAGE,
  async run(args: string[], io: CliIo): Promise<number> {
    const p = parse('cat', args, ['digest', 'tree', 'descriptor', 'offset', 'length', ...DM_VALUES], DM_FLAGS);
    if (p.operands.length !== 1) throw new UsageError(p.operands.length ? 'ERROR: cat takes one SRC' : 'ERROR: no SRC given');
    const dm = dmverityTrust(p, 'cat');
    const digest = dm ? '' : digestOption(p);
    const tree = p.values.get('tree');
    const descriptor = p.values.get('descriptor');
    if (!dm && (tree === undefined || descriptor === undefined)) throw new UsageError('ERROR: cat needs --tree and --descriptor');
    const offset = sizeOption(p, 'offset') ?? 0;
    const length = sizeOption(p, 'length');
    try {
      const f: VerifiedReader = dm
        ? await openDmverity({ data: p.operands[0]!, hash: dm.hash }, dm.trust)
        : await openVerified({ data: p.operands[0]!, tree: tree!, descriptor: descriptor! }, { digest });
      try {
        const end = length === undefined ? f.size : Math.min(f.size, offset + length);
        if (offset < end) {
          const reader = f.stream({ start: offset, end }).getReader();
          for (let r = await reader.read(); !r.done; r = await reader.read()) await writeOut(io, r.value);
        }
      } finally {
        await f.close();
      }
      return 0;
    } catch (e) {
      return engineFailure(e, io);
    }
  },
};
