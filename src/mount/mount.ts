/**
 * `mountVolume`: a `Volume` served to the kernel through FUSE, so that any
 * program reads and writes its files through the engine (page cache,
 * iomap, writeback) and every read of a sealed file is verified.
 *
 * The volume's namespace is flat: the mount's root directory holds the
 * files and nothing else; `mkdir` is EPERM. The format keeps no times,
 * modes or owners: every file shows the mounting user, mode 0644 (0444
 * once sealed) and a modification time kept in memory for the mount's
 * life (the mount's start for files it has not changed).
 *
 * FUSE requests arrive on the binding's threads and are handed to the
 * Node main thread, where each becomes one call on the volume (which
 * serialises them under its lock); nothing here blocks the event loop, so
 * a slow call only delays the requests queued behind it.
 */
import { IomapVerityError, type File, type Volume } from '../index.js';
import { loadFuse, type FuseClass, type FuseInstance, type Reply } from './fuse.js';
import { nodeFsPromises } from '#platform';

/** Options of `mountVolume`. */
export interface MountOptions {
  /** Refuse every change (EROFS), and tell the kernel the mount is read-only. Default false. */
  readOnly?: boolean;
  /** Let other users reach the mount (FUSE's allow_other; needs user_allow_other in /etc/fuse.conf unless root). Default false. */
  allowOther?: boolean;
  /** libfuse's debug output on stderr. Default false. */
  debug?: boolean;
}

/** A live mount. */
export interface Mount {
  /** The mount point, resolved. */
  readonly dir: string;
  /**
   * Resolves once the mount is gone, by `unmount()` or from outside
   * (`fusermount -u DIR`), after the volume has been synced.
   */
  readonly closed: Promise<void>;
  /**
   * Unmount (lazily, as `fusermount -u -z`: programs still inside finish
   * with ENOTCONN) and sync the volume. The volume stays open: it belongs
   * to the caller, who closes it. A second call waits for the first.
   */
  unmount(): Promise<void>;
}

/** The extended attribute that carries a sealed file's fs-verity digest, as `fsverity digest` prints it. */
export const DIGEST_XATTR = 'user.fsverity.digest';

/** How often the mount table is read to notice an unmount made from outside (`fusermount -u`). */
const WATCH_MS = 200;
const O_ACCMODE = 3;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
/** What a timespec of UTIME_NOW or UTIME_OMIT becomes in the binding's milliseconds (0 s and about 1.07e9 ns). */
const UTIME_SPECIAL_MS = 1073;

interface Handle {
  file: File;
  writable: boolean;
}

/** Mount points are unescaped from /proc/self/mountinfo's octal escapes (\040 for a space). */
function unescapeMountPath(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

async function isMounted(dir: string): Promise<boolean> {
  const { readFile } = await nodeFsPromises();
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  return text.split('\n').some((line) => {
    const f = line.split(' ');
    return f[4] !== undefined && unescapeMountPath(f[4]) === dir && line.includes(' - fuse');
  });
}

/**
 * Mount `volume` on the directory `dir` and serve it until `unmount()` or
 * an unmount from outside. Rejects with EOPNOTSUPP when FUSE or the
 * optional `fuse-native` package is missing, ENOENT or ENOTDIR for a bad
 * mount point, EBUSY when something is mounted there already, EIO when
 * libfuse refuses the mount.
 *
 * Errors of the volume reach programs as their errno (`EIO` for a sealed
 * block that fails verification: `cat` prints "Input/output error"); a
 * sealed file opened for writing is EPERM; an fsync returns once the
 * file's data and the metadata are durable (`File.fsync`). A file removed
 * while open stays readable through its handles: libfuse renames it to
 * `.fuse_hidden…` and removes it at the last close.
 */
export async function mountVolume(volume: Volume, dir: string, opts: MountOptions = {}): Promise<Mount> {
  const Fuse = await loadFuse();
  // Node modules load here, not at import: the package also runs in browsers.
  const { realpath } = await nodeFsPromises();
  let mountDir: string;
  try {
    mountDir = await realpath(dir);
  } catch (e) {
    throw new IomapVerityError('ENOENT', `mount point ${JSON.stringify(dir)} does not exist: make the directory first`, { cause: e });
  }
  if (await isMounted(mountDir)) throw new IomapVerityError('EBUSY', `${mountDir} is already a FUSE mount point: unmount it first (fusermount -u ${mountDir})`);
  const server = new MountServer(Fuse, volume, opts);
  const fuse = new Fuse(mountDir, server.operations(), {
    // A long fsync is legitimate; the kernel waits as long as it takes.
    timeout: false,
    allowOther: Boolean(opts.allowOther),
    debug: Boolean(opts.debug),
    maxRead: 1 << 17,
    // Every change reaches the volume through this mount (the image is
    // not written by anyone else meanwhile), so the kernel's page cache
    // stays coherent and may be kept across opens, as for a local
    // filesystem; a sealed file's pages enter it only once verified.
    kernelCache: true,
    // fuse-native has no option for these: libfuse2 takes them in the
    // same comma-separated -o list. big_writes lifts writes from one page
    // to max_write per request.
    fsname: `iomap-verity,subtype=iomap-verity,big_writes,max_write=${1 << 17}${opts.readOnly ? ',ro' : ''}`,
  });
  await new Promise<void>((resolve, reject) => {
    fuse.mount((err) => {
      if (!err) return resolve();
      const msg = err.message;
      if (/not a directory/i.test(msg)) reject(new IomapVerityError('ENOTDIR', `mount point ${mountDir} is not a directory`, { cause: err }));
      else if (/in use/i.test(msg)) reject(new IomapVerityError('EBUSY', `mount point ${mountDir} is in use`, { cause: err }));
      else reject(new IomapVerityError('EIO', `libfuse could not mount ${mountDir} (${msg}): is /dev/fuse there and fusermount installed?`, { cause: err }));
    });
  });
  return new LiveMount(mountDir, fuse, volume);
}

class LiveMount implements Mount {
  readonly closed: Promise<void>;
  private stopping: Promise<void> | undefined;
  private watch: ReturnType<typeof setInterval>;
  private resolveClosed!: () => void;
  private rejectClosed!: (e: unknown) => void;

  constructor(
    readonly dir: string,
    private readonly fuse: FuseInstance,
    private readonly volume: Volume,
  ) {
    this.closed = new Promise<void>((resolve, reject) => {
      this.resolveClosed = resolve;
      this.rejectClosed = reject;
    });
    // A caller that only awaits unmount() must not see an unhandled rejection.
    this.closed.catch(() => undefined);
    let reading = false;
    this.watch = setInterval(() => {
      if (reading || this.stopping) return;
      reading = true;
      isMounted(this.dir)
        .then((still) => {
          if (!still && !this.stopping) this.stopping = this.finish(false);
        })
        .catch(() => undefined)
        .finally(() => {
          reading = false;
        });
    }, WATCH_MS);
    this.watch.unref?.();
  }

  unmount(): Promise<void> {
    this.stopping ??= this.finish(true);
    return this.stopping;
  }

  private async finish(detach: boolean): Promise<void> {
    clearInterval(this.watch);
    try {
      if (detach) {
        await new Promise<void>((resolve, reject) => {
          this.fuse.unmount((err) => (err ? reject(new IomapVerityError('EBUSY', `could not unmount ${this.dir}: ${err.message}`, { cause: err })) : resolve()));
        });
      }
      await this.volume.sync();
      this.resolveClosed();
    } catch (e) {
      this.rejectClosed(e);
      throw e;
    }
  }
}

/** The FUSE operations over one volume, with the table of open handles. */
class MountServer {
  private readonly handles = new Map<number, Handle>();
  private nextFd = 1;
  /** Modification times of this mount's life, by name (the format keeps none). */
  private readonly mtimes = new Map<string, number>();
  private readonly started = Date.now();
  private readonly uid = process.getuid?.() ?? 0;
  private readonly gid = process.getgid?.() ?? 0;

  constructor(
    private readonly Fuse: FuseClass,
    private readonly volume: Volume,
    private readonly opts: MountOptions,
  ) {}

  private errno(code: string): number {
    const n = this.Fuse[code];
    return typeof n === 'number' ? n : (this.Fuse.EIO as number);
  }

  /** The negative errno a program sees for `e`. */
  private toErrno(e: unknown): number {
    if (e instanceof IomapVerityError) return this.errno(e.code);
    const code = (e as NodeJS.ErrnoException)?.code;
    if (typeof code === 'string' && typeof this.Fuse[code] === 'number') return this.Fuse[code] as number;
    // Not one of ours: a bug, reported where the mount's owner sees it.
    process.emitWarning(`iomap-verity mount: unexpected error ${String((e as Error)?.stack ?? e)}`);
    return this.errno('EIO');
  }

  /** Run `work` and answer the kernel with its result, or the errno of its failure. */
  private answer<T>(cb: Reply, work: () => Promise<T> | T, ok: (v: T) => unknown[]): void {
    let p: Promise<T>;
    try {
      p = Promise.resolve(work());
    } catch (e) {
      cb(this.toErrno(e));
      return;
    }
    p.then(
      (v) => {
        const [code, ...rest] = ok(v);
        cb(code as number, ...rest);
      },
      (e: unknown) => cb(this.toErrno(e)),
    );
  }

  /** The file name of a path in the flat namespace; ENOENT for anything deeper. */
  private nameOf(path: string): string {
    const name = path.slice(1);
    if (!path.startsWith('/') || name === '' || name.includes('/')) {
      throw new IomapVerityError('ENOENT', `no such file ${JSON.stringify(path)}: the volume has no directories`);
    }
    return name;
  }

  private changing(): void {
    if (this.opts.readOnly) throw new IomapVerityError('EROFS', 'the volume is mounted read-only');
  }

  private handle(fd: number): Handle {
    const h = this.handles.get(fd);
    if (!h) throw new IomapVerityError('EBADF', `no open file handle ${fd}`);
    return h;
  }

  private touch(name: string): void {
    this.mtimes.set(name, Date.now());
  }

  private stat(file: File): Record<string, unknown> {
    const t = new Date(this.mtimes.get(file.name) ?? this.started);
    return {
      mode: S_IFREG | (file.isVerity ? 0o444 : 0o644),
      uid: this.uid,
      gid: this.gid,
      size: file.size,
      nlink: 1,
      blksize: this.volume.blockSize,
      blocks: Math.ceil(file.allocatedBytes / 512),
      atime: t,
      mtime: t,
      ctime: t,
    };
  }

  private rootStat(): Record<string, unknown> {
    const t = new Date(this.started);
    return { mode: S_IFDIR | 0o755, uid: this.uid, gid: this.gid, size: 4096, nlink: 2, atime: t, mtime: t, ctime: t };
  }

  private register(file: File, writable: boolean): number {
    const fd = this.nextFd++;
    this.handles.set(fd, { file, writable });
    return fd;
  }

  /** The operations table fuse-native takes; each answers through its callback. */
  operations(): Record<string, (...args: never[]) => void> {
    const v = this.volume;
    const ops = {
      init: (cb: Reply) => cb(0),
      getattr: (path: string, cb: Reply) => {
        if (path === '/') return cb(0, this.rootStat());
        this.answer(cb, async () => this.stat(await v.open(this.nameOf(path))), (s) => [0, s]);
      },
      readdir: (path: string, cb: Reply) => {
        if (path !== '/') return cb(this.errno('ENOTDIR'));
        this.answer(cb, () => v.list(), (names) => [0, ['.', '..', ...names]]);
      },
      statfs: (_path: string, cb: Reply) => {
        this.answer(
          cb,
          async () => ({ space: v.space(), files: (await v.list()).length }),
          ({ space, files }) => {
            const avail = Math.max(0, space.freeBlocks - space.reservedBlocks);
            return [
              0,
              {
                bsize: space.blockSize,
                frsize: space.blockSize,
                blocks: space.totalBlocks,
                bfree: avail,
                bavail: avail,
                files: files + 1000000,
                ffree: 1000000,
                favail: 1000000,
                namemax: 255,
              },
            ];
          },
        );
      },
      open: (path: string, flags: number, cb: Reply) => {
        const writable = (flags & O_ACCMODE) !== 0;
        this.answer(
          cb,
          async () => {
            if (writable) this.changing();
            const file = await v.open(this.nameOf(path));
            if (writable && file.isVerity) {
              throw new IomapVerityError('EPERM', `${file.name} is sealed with fs-verity and read-only`);
            }
            return this.register(file, writable);
          },
          (fd) => [0, fd],
        );
      },
      create: (path: string, _mode: number, cb: Reply) => {
        this.answer(
          cb,
          async () => {
            this.changing();
            const file = await v.create(this.nameOf(path));
            this.touch(file.name);
            return this.register(file, true);
          },
          (fd) => [0, fd],
        );
      },
      // A failed block fails the whole request, never a short count (which
      // FUSE takes for EOF): the kernel then reads the range again page by
      // page, so a program gets every page before the bad one and EIO there.
      read: (_path: string, fd: number, buf: Buffer, len: number, pos: number, cb: Reply) => {
        this.answer(cb, () => this.handle(fd).file.readInto(pos, buf.subarray(0, len)), (n) => [n]);
      },
      write: (_path: string, fd: number, buf: Buffer, len: number, pos: number, cb: Reply) => {
        this.answer(
          cb,
          async () => {
            const h = this.handle(fd);
            if (!h.writable) throw new IomapVerityError('EBADF', 'the file was not opened for writing');
            await h.file.write(pos, buf.subarray(0, len));
            this.touch(h.file.name);
          },
          () => [len],
        );
      },
      truncate: (path: string, size: number, cb: Reply) => {
        this.answer(
          cb,
          async () => {
            this.changing();
            const file = await v.open(this.nameOf(path));
            await file.truncate(size);
            this.touch(file.name);
          },
          () => [0],
        );
      },
      ftruncate: (_path: string, fd: number, size: number, cb: Reply) => {
        this.answer(
          cb,
          async () => {
            this.changing();
            const h = this.handle(fd);
            await h.file.truncate(size);
            this.touch(h.file.name);
          },
          () => [0],
        );
      },
      fsync: (_path: string, _datasync: number, fd: number, cb: Reply) => {
        this.answer(cb, () => this.handle(fd).file.fsync(), () => [0]);
      },
      // close(2) promises nothing about durability; fsync does.
      flush: (_path: string, _fd: number, cb: Reply) => cb(0),
      release: (_path: string, fd: number, cb: Reply) => {
        this.handles.delete(fd);
        cb(0);
      },
      unlink: (path: string, cb: Reply) => {
        this.answer(
          cb,
          async () => {
            this.changing();
            const name = this.nameOf(path);
            await v.remove(name);
            this.mtimes.delete(name);
          },
          () => [0],
        );
      },
      rename: (from: string, to: string, cb: Reply) => {
        this.answer(
          cb,
          async () => {
            this.changing();
            const a = this.nameOf(from);
            const b = this.nameOf(to);
            // rename(2) replaces a sealed file as readily as any other.
            await v.rename(a, b, { replaceSealed: true });
            this.mtimes.set(b, this.mtimes.get(a) ?? Date.now());
            this.mtimes.delete(a);
          },
          () => [0],
        );
      },
      utimens: (path: string, atime: number, _mtime: number, cb: Reply) => {
        // The format keeps no times. "Now" (touch) is what the file shows
        // anyway after a change; any other time would be lost, so it is
        // refused rather than silently dropped.
        this.answer(
          cb,
          async () => {
            this.changing();
            const file = await v.open(this.nameOf(path));
            if (atime !== UTIME_SPECIAL_MS && Math.abs(atime - Date.now()) > 5000) {
              throw new IomapVerityError('EPERM', 'the volume keeps no file times: only the current time can be set');
            }
            this.touch(file.name);
          },
          () => [0],
        );
      },
      getxattr: (path: string, name: string, _position: number, cb: Reply) => {
        this.answer(
          cb,
          async () => {
            const file = await v.open(this.nameOf(path));
            if (name !== DIGEST_XATTR || !file.isVerity) throw new IomapVerityError('ENODATA', `no attribute ${name}`);
            return Buffer.from((await file.measureVerity()).formatted);
          },
          (value) => [0, value],
        );
      },
      listxattr: (path: string, cb: Reply) => {
        this.answer(cb, () => v.open(this.nameOf(path)), (file) => [0, file.isVerity ? [DIGEST_XATTR] : []]);
      },
      setxattr: (_path: string, _name: string, _value: Buffer, _position: number, _flags: number, cb: Reply) => cb(this.errno('EOPNOTSUPP')),
      removexattr: (_path: string, _name: string, cb: Reply) => cb(this.errno('EOPNOTSUPP')),
      // Modes and owners are not kept: setting what a file already shows
      // (as tar and cp -p do) succeeds, anything else would be lost and is EPERM.
      chmod: (path: string, mode: number, cb: Reply) => {
        this.answer(
          cb,
          async () => {
            const file = await v.open(this.nameOf(path));
            if ((mode & 0o7777) !== ((this.stat(file).mode as number) & 0o7777)) {
              throw new IomapVerityError('EPERM', 'the volume keeps no file modes: a file is 0644, or 0444 once sealed');
            }
          },
          () => [0],
        );
      },
      chown: (path: string, uid: number, gid: number, cb: Reply) => {
        this.answer(
          cb,
          async () => {
            await v.open(this.nameOf(path));
            // -1 (all ones as an unsigned 32-bit id) leaves an id as it is.
            const keep = (id: number, own: number) => id === own || id === 0xffffffff || id === -1;
            if (!keep(uid, this.uid) || !keep(gid, this.gid)) throw new IomapVerityError('EPERM', 'the volume keeps no owners: every file belongs to the user who mounted it');
          },
          () => [0],
        );
      },
      mkdir: (_path: string, _mode: number, cb: Reply) => cb(this.errno('EPERM')),
      rmdir: (_path: string, cb: Reply) => cb(this.errno('ENOTDIR')),
      link: (_from: string, _to: string, cb: Reply) => cb(this.errno('EPERM')),
      symlink: (_from: string, _to: string, cb: Reply) => cb(this.errno('EPERM')),
      mknod: (_path: string, _mode: number, _dev: number, cb: Reply) => cb(this.errno('EPERM')),
    };
    return ops as unknown as Record<string, (...args: never[]) => void>;
  }
}
