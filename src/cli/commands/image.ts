/**
 * The volume-image subcommands: `mkfs`, `put`, `get`, `ls`, `rm`, `enable`,
 * `measure`, `dump`. They share opening an image file, option parsing and
 * error reporting, so they live together; each is one `Command` in the
 * table of commands/index.ts.
 *
 * Exit statuses as elsewhere: 2 for a bad command line, 1 for a failure
 * while working (the message names the errno code).
 */
import { closeSync, createReadStream, existsSync, openSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { FileDevice, IomapVerityError, Volume, type File } from '../../index.js';
import { EXIT_FAILURE, UsageError, type CliIo, type Command } from '../command.js';
import { getoptLong, type LongOption } from '../getopt.js';
import { createProgress } from '../progress.js';

const CHUNK = 1 << 20;

/** `64M`, `1G`, `4096`: a size with an optional K/M/G/T suffix (powers of 1024). */
export function parseSize(text: string, what: string): number {
  const m = /^(\d+)([KMGT]?)(i?B)?$/i.exec(text.trim());
  if (!m) throw new UsageError(`ERROR: invalid ${what} '${text}': use a number with an optional K, M, G or T suffix`);
  const n = Number(m[1]) * 1024 ** ' KMGT'.indexOf((m[2] || ' ').toUpperCase());
  if (!Number.isSafeInteger(n) || n <= 0) throw new UsageError(`ERROR: invalid ${what} '${text}'`);
  return n;
}

function parse(cmd: string, args: string[], longopts: readonly LongOption[], operands: [number, number]) {
  const parsed = getoptLong(cmd, args, longopts);
  const [min, max] = operands;
  if (parsed.operands.length < min || parsed.operands.length > max) {
    throw new UsageError(`ERROR: ${cmd} takes ${min === max ? min : `${min} to ${max}`} arguments, got ${parsed.operands.length}`);
  }
  const opts = new Map<string, string>();
  for (const o of parsed.options) {
    if (opts.has(o.name)) throw new UsageError(`ERROR: --${o.name} can only be specified once`);
    opts.set(o.name, o.value ?? '');
  }
  return { opts, operands: parsed.operands };
}

/** Open the volume in image `path`, run `body`, close (which syncs). */
async function withVolume<T>(path: string, body: (v: Volume) => Promise<T>): Promise<T> {
  if (!existsSync(path)) throw new IomapVerityError('ENOENT', `image '${path}' does not exist (make one with 'iomap-verity mkfs')`);
  const dev = await FileDevice.open(path, { blockSize: 512 });
  try {
    const vol = await Volume.open(dev);
    try {
      return await body(vol);
    } finally {
      await vol.close();
    }
  } finally {
    await dev.close();
  }
}

async function readSignatureFile(path: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'ENOENT' : 'EIO';
    throw new IomapVerityError(code, `can't read signature file '${path}': ${(e as Error).message}`);
  }
}

function writeOut(io: CliIo, bytes: Uint8Array): void {
  (io.stdout as { write(b: Uint8Array | string): unknown }).write(bytes);
}

/** Run a command body, turning engine errors into a message and exit 1. */
async function guarded(io: CliIo, body: () => Promise<number | void>): Promise<number> {
  try {
    return (await body()) ?? 0;
  } catch (e) {
    if (e instanceof IomapVerityError) {
      io.stderr.write(`ERROR: ${e.message} (${e.code})\n`);
      return EXIT_FAILURE;
    }
    throw e;
  }
}

function hexSalt(text: string): Uint8Array {
  if (text.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(text)) throw new UsageError(`ERROR: invalid salt '${text}': use an even number of hex digits`);
  return Uint8Array.from(Buffer.from(text, 'hex'));
}

function command(name: string, summary: string, usage: string, run: Command['run']): Command {
  return { name, summary, usage: `Usage:\n    iomap-verity ${usage}\n`, run };
}

/** `mkfs IMG`: make a new volume image file. */
export const mkfsCommand = command('mkfs', 'make a new volume image file', 'mkfs IMG [--size=64M] [--block-size=4096]', async (args, io) => {
  const { opts, operands } = parse('mkfs', args, [{ name: 'size', hasArg: true }, { name: 'block-size', hasArg: true }], [1, 1]);
  const size = parseSize(opts.get('size') ?? '64M', 'size');
  const blockSize = parseSize(opts.get('block-size') ?? '4096', 'block size');
  const img = operands[0]!;
  return guarded(io, async () => {
    if (size % 512 !== 0) throw new IomapVerityError('EINVAL', `image size ${size} is not a multiple of 512 bytes`);
    if (existsSync(img)) unlinkSync(img);
    const dev = await FileDevice.open(img, { blockSize: 512, size, create: true });
    try {
      const vol = await Volume.format(dev, { blockSize });
      const space = vol.space();
      await vol.close();
      io.stdout.write(`${img}: ${size} bytes, ${blockSize}-byte blocks, ${space.freeBlocks * blockSize} bytes free\n`);
    } finally {
      await dev.close();
    }
  });
});

/** `put IMG NAME SRC`: copy a file into an image. */
export const putCommand = command('put', 'copy a file into an image', 'put IMG NAME SRC', async (args, io) => {
  const { operands } = parse('put', args, [], [3, 3]);
  const [img, name, src] = operands as [string, string, string];
  return guarded(io, async () => {
    let total: number;
    try {
      total = statSync(src).size;
    } catch (e) {
      throw new IomapVerityError('ENOENT', `can't read '${src}': ${(e as Error).message}`);
    }
    await withVolume(img, async (vol) => {
      if ((await vol.list()).includes(name)) await vol.remove(name);
      const f = await vol.create(name);
      const bar = createProgress(io, name, total);
      let pos = 0;
      for await (const chunk of createReadStream(src, { highWaterMark: CHUNK })) {
        await f.write(pos, chunk as Buffer);
        pos += (chunk as Buffer).length;
        bar?.update(pos, total);
      }
      await f.fsync();
      bar?.done();
    });
  });
});

async function readAll(f: File, io: CliIo, label: string, sink: (b: Uint8Array) => void): Promise<void> {
  const total = f.size;
  const bar = createProgress(io, label, total);
  for (let pos = 0; pos < total; pos += CHUNK) {
    sink(await f.read(pos, Math.min(CHUNK, total - pos)));
    bar?.update(Math.min(pos + CHUNK, total), total);
  }
  bar?.done();
}

/** `get IMG NAME [DST]`: copy a file out of an image, verified if sealed. */
export const getCommand = command('get', 'copy a file out of an image (verified if sealed)', 'get IMG NAME [DST]', async (args, io) => {
  const { operands } = parse('get', args, [], [2, 3]);
  const [img, name, dst] = operands as [string, string, string | undefined];
  return guarded(io, () =>
    withVolume(img, async (vol) => {
      const f = await vol.open(name);
      if (dst === undefined) return readAll(f, io, name, (b) => writeOut(io, b));
      const fd = openSync(dst, 'w');
      try {
        await readAll(f, io, name, (b) => writeSync(fd, b));
      } finally {
        closeSync(fd);
      }
    }),
  );
});

/** `ls IMG`: list the files of an image. */
export const lsCommand = command('ls', 'list the files of an image', 'ls IMG', async (args, io) => {
  const { operands } = parse('ls', args, [], [1, 1]);
  return guarded(io, () =>
    withVolume(operands[0]!, async (vol) => {
      for (const name of (await vol.list()).sort()) {
        const f = await vol.open(name);
        io.stdout.write(`${f.size}\t${f.isVerity ? 'verity' : '-'}\t${name}\n`);
      }
    }),
  );
});

/** `rm IMG NAME`: remove a file from an image. */
export const rmCommand = command('rm', 'remove a file from an image', 'rm IMG NAME', async (args, io) => {
  const { operands } = parse('rm', args, [], [2, 2]);
  return guarded(io, () => withVolume(operands[0]!, (vol) => vol.remove(operands[1]!)));
});

/** `enable IMG NAME`: seal a file of an image with fs-verity. */
export const enableCommand = command(
  'enable',
  'seal a file of an image with fs-verity',
  'enable IMG NAME [--hash-alg=sha256|sha512] [--block-size=4096] [--salt=HEX] [--signature=SIGFILE]',
  async (args, io) => {
    const { opts, operands } = parse(
      'enable',
      args,
      [{ name: 'hash-alg', hasArg: true }, { name: 'block-size', hasArg: true }, { name: 'salt', hasArg: true }, { name: 'signature', hasArg: true }],
      [2, 2],
    );
    const alg = opts.get('hash-alg') ?? 'sha256';
    if (alg !== 'sha256' && alg !== 'sha512') throw new UsageError(`ERROR: unknown hash algorithm '${alg}': use sha256 or sha512`);
    const blockSize = opts.has('block-size') ? parseSize(opts.get('block-size')!, 'block size') : 4096;
    const salt = opts.has('salt') ? hexSalt(opts.get('salt')!) : new Uint8Array(0);
    const sigPath = opts.get('signature');
    return guarded(io, () =>
      withVolume(operands[0]!, async (vol) => {
        // As `fsverity enable --signature`: the file `fsverity sign` wrote, stored after the descriptor.
        const signature = sigPath === undefined ? undefined : await readSignatureFile(sigPath);
        const f = await vol.open(operands[1]!);
        const bar = createProgress(io, `sealing ${operands[1]!}`, f.size);
        await f.enableVerity({ hashAlgorithm: alg, blockSize, salt, signature, onProgress: (done, total) => bar?.update(done, total) });
        bar?.done();
      }),
    );
  },
);

/** `measure IMG NAME`: print a sealed file's fs-verity digest. */
export const measureCommand = command('measure', "print a sealed file's fs-verity digest, like `fsverity measure`", 'measure IMG NAME', async (args, io) => {
  const { operands } = parse('measure', args, [], [2, 2]);
  return guarded(io, () =>
    withVolume(operands[0]!, async (vol) => {
      const m = await (await vol.open(operands[1]!)).measureVerity();
      io.stdout.write(`${m.formatted} ${operands[1]}\n`);
    }),
  );
});

/** `dump IMG NAME --type=...`: write a sealed file's fs-verity metadata to stdout. */
export const dumpCommand = command(
  'dump',
  'write fs-verity metadata to stdout, like `fsverity dump_metadata`',
  'dump IMG NAME --type=merkle_tree|descriptor|signature [--offset=N] [--length=N]',
  async (args, io) => {
    const { opts, operands } = parse(
      'dump',
      args,
      [{ name: 'type', hasArg: true }, { name: 'offset', hasArg: true }, { name: 'length', hasArg: true }],
      [2, 2],
    );
    const type = opts.get('type');
    if (type !== 'merkle_tree' && type !== 'descriptor' && type !== 'signature') {
      throw new UsageError(`ERROR: --type must be merkle_tree, descriptor or signature`);
    }
    const offset = opts.has('offset') ? Number(opts.get('offset')) : 0;
    const length = opts.has('length') ? Number(opts.get('length')) : Number.MAX_SAFE_INTEGER;
    if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
      throw new UsageError('ERROR: --offset and --length take non-negative integers');
    }
    return guarded(io, () =>
      withVolume(operands[0]!, async (vol) => {
        const f = await vol.open(operands[1]!);
        for (let pos = offset, left = length; left > 0; ) {
          const b = await f.readVerityMetadata(type, pos, Math.min(left, CHUNK));
          if (b.length === 0) break;
          writeOut(io, b);
          pos += b.length;
          left -= b.length;
        }
      }),
    );
  },
);
