/**
 * The volume-image subcommands: `mkfs`, `put`, `get`, `ls`, `rm`, `enable`,
 * `measure`, `dump`. They share opening an image file, option parsing and
 * error reporting, so they live together; each is one `Command` in the
 * table of commands/index.ts.
 *
 * Exit statuses as elsewhere: 2 for a bad command line, 1 for a failure
 * while working (the message names the errno code).
 */
import {
  closeSync,
  constants as fsc,
  fstatSync,
  fsyncSync,
  linkSync,
  lstatSync,
  openSync,
  readSync,
  realpathSync,
  renameSync,
  unlinkSync,
  writeSync,
  type Stats,
} from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { FileDevice, IomapVerityError, Volume, isErrno, type File } from '../../index.js';
import { EXIT_FAILURE, UsageError, type CliIo, type Command } from '../command.js';
import { getoptLong, type LongOption } from '../getopt.js';
import { createProgress } from '../progress.js';

const CHUNK = 1 << 20;

/**
 * Page-cache budget of every command: with the 1 MiB chunks, the worker
 * pool and Node itself this keeps a command well under 160 MiB of RSS
 * whatever the file size (the cache is reclaimed, not grown, past it).
 */
const CLI_CACHE_BYTES = 32 << 20;

/**
 * Names in the volume that `put` writes under before it renames them into
 * place. One left behind (a command killed mid-way) is removed by the next
 * command that opens the image for writing: the image lock says no other
 * command can be using it.
 */
const TMP_PREFIX = '.iomap-verity-put.';

/** `64M`, `1G`, `4096`: a size with an optional K/M/G/T suffix (powers of 1024). */
export function parseSize(text: string, what: string, min = 1): number {
  const m = /^(\d+)([KMGT]?)(i?B)?$/i.exec(text.trim());
  if (!m) throw new UsageError(`ERROR: invalid ${what} '${text}': use a number with an optional K, M, G or T suffix`);
  const n = Number(m[1]) * 1024 ** ' KMGT'.indexOf((m[2] || ' ').toUpperCase());
  if (!Number.isSafeInteger(n) || n < min) throw new UsageError(`ERROR: invalid ${what} '${text}'`);
  return n;
}

/**
 * A file name as `ls` prints it: control characters (C0, DEL, C1) and the
 * backslash escaped, so a name can neither move the cursor, clear the
 * screen nor forge another line of the listing.
 */
export function printableName(name: string): string {
  return name.replace(/[\\\u0000-\u001f\u007f-\u009f]/g, (c) => {
    const named: Record<string, string> = { '\\': '\\\\', '\n': '\\n', '\t': '\\t', '\r': '\\r' };
    return named[c] ?? `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
  });
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

/** Node's error for `path` as one of ours, keeping its errno name when we have it. */
function nodeError(e: unknown, what: string): IomapVerityError {
  if (e instanceof IomapVerityError) return e;
  const code = (e as NodeJS.ErrnoException)?.code;
  const known = ['ENOENT', 'EISDIR', 'ENOTDIR', 'EEXIST', 'ENOSPC', 'EFBIG', 'EROFS', 'ENAMETOOLONG'] as const;
  const ours = known.find((k) => k === code) ?? (code === 'EACCES' || code === 'EPERM' ? 'EPERM' : 'EIO');
  return new IomapVerityError(ours, `${what}: ${(e as Error)?.message ?? String(e)}`, { cause: e });
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw nodeError(e, `cannot look at '${path}'`);
  }
}

/** fsync the directory holding `path`, so a rename or link in it is durable. */
function syncDir(path: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dirname(path), fsc.O_RDONLY | fsc.O_DIRECTORY);
    fsyncSync(fd);
  } catch (e) {
    throw nodeError(e, `cannot sync the directory of '${path}'`);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * Open the volume in image `path`, run `body`, close (which syncs).
 * `write`: the image lock is exclusive and leftovers of a killed `put` are
 * removed first; otherwise the image file is opened read-only, shared with
 * other readers, and may be one the user cannot write.
 */
async function withVolume<T>(path: string, mode: 'read' | 'write', body: (v: Volume) => Promise<T>): Promise<T> {
  if (lstatOrUndefined(path) === undefined) {
    throw new IomapVerityError('ENOENT', `image '${path}' does not exist (make one with 'iomap-verity mkfs')`);
  }
  const readOnly = mode === 'read';
  const dev = await FileDevice.open(path, { blockSize: 512, readOnly });
  try {
    const vol = await Volume.open(dev, { readOnly, cacheBytes: CLI_CACHE_BYTES });
    try {
      if (!readOnly) {
        const stale = (await vol.list()).filter((n) => n.startsWith(TMP_PREFIX));
        for (const n of stale) await vol.remove(n);
        if (stale.length > 0) await vol.sync();
      }
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

/** Write to stdout, waiting while the pipe is full, so memory stays bounded however slow the reader. */
function writeOut(io: CliIo, bytes: Uint8Array): Promise<void> | undefined {
  const out = io.stdout as { write(b: Uint8Array | string): boolean; once?(ev: string, f: () => void): unknown };
  if (out.write(bytes) !== false || typeof out.once !== 'function') return undefined;
  return new Promise((resolve) => out.once!('drain', resolve));
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

/** A name beside `path` that nothing else uses (created with O_EXCL by whoever takes it). */
function besidePath(path: string, what: string): string {
  return join(dirname(path), `.${basename(path)}.${what}-${process.pid}-${Date.now().toString(36)}`);
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Already gone, or never made.
  }
}

/** `mkfs IMG`: make a new volume image file, never replacing anything but a regular file (and that only with --force). */
export const mkfsCommand = command(
  'mkfs',
  'make a new volume image file',
  'mkfs IMG [--size=64M] [--block-size=4096] [--force]',
  async (args, io) => {
    const { opts, operands } = parse(
      'mkfs',
      args,
      [{ name: 'size', hasArg: true }, { name: 'block-size', hasArg: true }, { name: 'force', hasArg: false }],
      [1, 1],
    );
    const size = parseSize(opts.get('size') ?? '64M', 'size');
    const blockSize = parseSize(opts.get('block-size') ?? '4096', 'block size');
    const force = opts.has('force');
    const img = operands[0]!;
    return guarded(io, async () => {
      if (size % 512 !== 0) throw new IomapVerityError('EINVAL', `image size ${size} is not a multiple of 512 bytes`);
      const st = lstatOrUndefined(img);
      if (st !== undefined && !force) {
        throw new IomapVerityError('EEXIST', `'${img}' already exists: choose another name, or pass --force to replace it with a new, empty image`);
      }
      if (st !== undefined && !st.isFile()) {
        const kind = st.isSymbolicLink() ? 'a symbolic link' : st.isDirectory() ? 'a directory' : st.isFIFO() ? 'a FIFO' : st.isBlockDevice() || st.isCharacterDevice() ? 'a device node' : 'not a regular file';
        throw new IomapVerityError('EEXIST', `'${img}' is ${kind}: mkfs only ever replaces a regular file, even with --force`);
      }
      // The image being replaced must not be in use by another command: hold its write lock until the new one is in place.
      let old: FileDevice | undefined;
      if (st !== undefined) {
        try {
          old = await FileDevice.open(img, { blockSize: 512 });
        } catch (e) {
          // Not a device we can open (an odd size, say) cannot be an image in use; anything else stops us.
          if (!isErrno(e, 'EINVAL')) throw e;
        }
      }
      const tmp = besidePath(img, 'mkfs');
      try {
        const dev = await FileDevice.open(tmp, { blockSize: 512, size, create: true, exclusive: true });
        let space;
        try {
          const vol = await Volume.format(dev, { blockSize, cacheBytes: CLI_CACHE_BYTES });
          space = vol.space();
          await vol.close();
        } finally {
          await dev.close();
        }
        try {
          // Over nothing: link fails if something appeared at IMG meanwhile, so nothing is replaced by surprise.
          if (st === undefined) {
            linkSync(tmp, img);
            unlinkSync(tmp);
          } else renameSync(tmp, img);
        } catch (e) {
          throw nodeError(e, `cannot put the new image at '${img}'`);
        }
        syncDir(img);
        io.stdout.write(`${img}: ${size} bytes, ${blockSize}-byte blocks, ${space.freeBlocks * blockSize} bytes free\n`);
      } finally {
        unlinkQuietly(tmp);
        await old?.close();
      }
    });
  },
);

/** Open `src` for reading as a regular file: EISDIR, ENOENT, EPERM, ... before the image is touched. */
function openSource(src: string): { fd: number; size: number } {
  let fd: number;
  try {
    fd = openSync(src, 'r');
  } catch (e) {
    throw nodeError(e, `can't read '${src}'`);
  }
  const st = fstatSync(fd);
  if (st.isDirectory()) {
    closeSync(fd);
    throw new IomapVerityError('EISDIR', `can't read '${src}': it is a directory`);
  }
  return { fd, size: st.isFile() ? st.size : 0 };
}

/** `put IMG NAME SRC`: copy a file into an image, all or nothing (a sealed file is replaced only with --force). */
export const putCommand = command('put', 'copy a file into an image, all or nothing', 'put IMG NAME SRC [--force]', async (args, io) => {
  const { opts, operands } = parse('put', args, [{ name: 'force', hasArg: false }], [3, 3]);
  const [img, name, src] = operands as [string, string, string];
  const force = opts.has('force');
  return guarded(io, async () => {
    const source = openSource(src);
    try {
      await withVolume(img, 'write', async (vol) => {
        if ((await vol.list()).includes(name) && (await vol.open(name)).isVerity && !force) {
          throw new IomapVerityError('EPERM', `'${name}' in ${img} is sealed with fs-verity: pass --force to replace it`);
        }
        // Everything goes into a file of its own; one rename and one commit swap it in.
        const tmpName = `${TMP_PREFIX}${process.pid}.${Date.now().toString(36)}`;
        const f = await vol.create(tmpName);
        try {
          const total = source.size;
          const bar = createProgress(io, name, total);
          const buf = new Uint8Array(CHUNK);
          let pos = 0;
          for (;;) {
            let n: number;
            try {
              n = readSync(source.fd, buf, 0, CHUNK, null);
            } catch (e) {
              throw nodeError(e, `can't read '${src}'`);
            }
            if (n === 0) break;
            await f.write(pos, buf.subarray(0, n));
            pos += n;
            bar?.update(pos, Math.max(pos, total));
          }
          bar?.phase('syncing');
          await vol.rename(tmpName, name, { replaceSealed: force });
          await vol.sync();
          bar?.done();
        } catch (e) {
          // The old file, or no file, as before: drop what was written (committed by the close).
          await vol.remove(tmpName).catch(() => undefined);
          throw e;
        }
      });
    } finally {
      closeSync(source.fd);
    }
  });
});

async function readAll(f: File, io: CliIo, label: string, sink: (b: Uint8Array) => Promise<void> | undefined | void): Promise<void> {
  const total = f.size;
  const bar = createProgress(io, label, total);
  for (let pos = 0; pos < total; pos += CHUNK) {
    const wait = sink(await f.read(pos, Math.min(CHUNK, total - pos)));
    if (wait) await wait;
    bar?.update(Math.min(pos + CHUNK, total), total);
  }
  bar?.done();
}

function writeAllSync(fd: number, b: Uint8Array, what: string): void {
  try {
    for (let done = 0; done < b.length; ) done += writeSync(fd, b, done, b.length - done);
  } catch (e) {
    throw nodeError(e, `cannot write '${what}'`);
  }
}

/** `get IMG NAME [DST]`: copy a file out of an image, verified if sealed; DST appears only once complete. */
export const getCommand = command('get', 'copy a file out of an image (verified if sealed), all or nothing', 'get IMG NAME [DST]', async (args, io) => {
  const { operands } = parse('get', args, [], [2, 3]);
  const [img, name] = operands as [string, string];
  let dst = operands[2];
  return guarded(io, () =>
    withVolume(img, 'read', async (vol) => {
      const f = await vol.open(name);
      if (dst === undefined) return readAll(f, io, name, (b) => writeOut(io, b));
      let st = lstatOrUndefined(dst);
      // Through a symbolic link, as cp does: the copy replaces the file it points to.
      if (st?.isSymbolicLink()) {
        try {
          dst = realpathSync(dst);
        } catch (e) {
          throw nodeError(e, `cannot follow the link '${dst}'`);
        }
        st = lstatOrUndefined(dst);
      }
      if (st?.isDirectory()) throw new IomapVerityError('EISDIR', `'${dst}' is a directory: give the path of the file to write`);
      if (st !== undefined && !st.isFile()) {
        // A FIFO, a terminal, /dev/null: nothing to swap in, the bytes go straight there.
        let fd: number;
        try {
          fd = openSync(dst, 'w');
        } catch (e) {
          throw nodeError(e, `cannot open '${dst}'`);
        }
        try {
          return await readAll(f, io, name, (b) => writeAllSync(fd, b, dst));
        } finally {
          closeSync(fd);
        }
      }
      // A new file beside DST, renamed over it only once every byte was read (and verified) and is on disk.
      const tmp = besidePath(dst, 'get');
      let fd: number;
      try {
        fd = openSync(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o666);
      } catch (e) {
        throw nodeError(e, `cannot create a file beside '${dst}'`);
      }
      try {
        try {
          await readAll(f, io, name, (b) => writeAllSync(fd, b, tmp));
          fsyncSync(fd);
        } finally {
          closeSync(fd);
        }
        try {
          renameSync(tmp, dst);
        } catch (e) {
          throw nodeError(e, `cannot put the copy at '${dst}'`);
        }
        syncDir(dst);
      } finally {
        unlinkQuietly(tmp);
      }
    }),
  );
});

/** `ls IMG`: list the files of an image. */
export const lsCommand = command('ls', 'list the files of an image', 'ls IMG [--json]', async (args, io) => {
  const { opts, operands } = parse('ls', args, [{ name: 'json', hasArg: false }], [1, 1]);
  const json = opts.has('json');
  return guarded(io, () =>
    withVolume(operands[0]!, 'read', async (vol) => {
      for (const name of (await vol.list()).sort()) {
        // A put killed mid-way left this; the next writer removes it.
        if (name.startsWith(TMP_PREFIX)) continue;
        const f = await vol.open(name);
        if (json) {
          const digest = f.isVerity ? (await f.measureVerity()).formatted : undefined;
          io.stdout.write(`${JSON.stringify({ name, size: f.size, verity: f.isVerity, ...(digest ? { digest } : {}) })}\n`);
        } else {
          io.stdout.write(`${f.size}\t${f.isVerity ? 'verity' : '-'}\t${printableName(name)}\n`);
        }
      }
    }),
  );
});

/** `rm IMG NAME`: remove a file from an image. */
export const rmCommand = command('rm', 'remove a file from an image', 'rm IMG NAME', async (args, io) => {
  const { operands } = parse('rm', args, [], [2, 2]);
  // Success is reported only once the removal is committed.
  return guarded(io, () =>
    withVolume(operands[0]!, 'write', async (vol) => {
      await vol.remove(operands[1]!);
      await vol.sync();
    }),
  );
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
      withVolume(operands[0]!, 'write', async (vol) => {
        // As `fsverity enable --signature`: the file `fsverity sign` wrote, stored after the descriptor.
        const signature = sigPath === undefined ? undefined : await readSignatureFile(sigPath);
        const f = await vol.open(operands[1]!);
        const bar = createProgress(io, `sealing ${operands[1]!}`, f.size);
        const onProgress = (done: number, total: number): void => {
          bar?.update(done, total);
          // The last byte is hashed; the tree's upper levels, the descriptor and the commit follow.
          if (done >= total) bar?.phase('writing the tree and committing');
        };
        await f.enableVerity({ hashAlgorithm: alg, blockSize, salt, signature, onProgress });
        bar?.done();
      }),
    );
  },
);

/** `measure IMG NAME`: print a sealed file's fs-verity digest. */
export const measureCommand = command('measure', "print a sealed file's fs-verity digest, like `fsverity measure`", 'measure IMG NAME [--json]', async (args, io) => {
  const { opts, operands } = parse('measure', args, [{ name: 'json', hasArg: false }], [2, 2]);
  return guarded(io, () =>
    withVolume(operands[0]!, 'read', async (vol) => {
      const m = await (await vol.open(operands[1]!)).measureVerity();
      if (opts.has('json')) io.stdout.write(`${JSON.stringify({ name: operands[1], digest: m.formatted, algorithm: m.algorithm })}\n`);
      else io.stdout.write(`${m.formatted} ${operands[1]}\n`);
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
    // Numbers as every other option takes them (K/M/G/T suffixes), zero allowed.
    const offset = opts.has('offset') ? parseSize(opts.get('offset')!, 'offset', 0) : 0;
    const length = opts.has('length') ? parseSize(opts.get('length')!, 'length', 0) : Number.MAX_SAFE_INTEGER;
    return guarded(io, () =>
      withVolume(operands[0]!, 'read', async (vol) => {
        const f = await vol.open(operands[1]!);
        for (let pos = offset, left = length; left > 0; ) {
          const b = await f.readVerityMetadata(type, pos, Math.min(left, CHUNK));
          if (b.length === 0) break;
          await writeOut(io, b);
          pos += b.length;
          left -= b.length;
        }
      }),
    );
  },
);
