/**
 * `Volume`: the reference filesystem over one block device. A flat
 * namespace of files, each an inode with an extent map; data moves through
 * the page cache and the iomap engine; metadata is committed through a
 * `MetaStore` after the data it points to is on the device.
 *
 * Every public call validates its arguments first, then runs under the
 * volume's lock (one operation at a time, the way i_rwsem serialises a file
 * in the kernel, here for the whole volume: it keeps allocation and commits
 * simple and costs nothing in a single-threaded runtime).
 */
import { fail, isErrno, isUint8Array } from '../errors.js';
import type { PemInput } from '../verity/signature.js';
import { BlockDevice } from '../device/block-device.js';
import { PageCache, DEFAULT_CACHE_BYTES } from '../pagecache/index.js';
import { DEFAULT_MAX_FOLIO_SIZE } from '../pagecache/index.js';
import { Allocator } from './allocator.js';
import { Inode } from './inode.js';
import type { FsIomapOps, FsWritebackOps } from './iomap-ops.js';
import { Mount, type SignaturePolicy } from './mount.js';
import { claimDevice, releaseDevice } from './claim.js';
import type { VolumeMeta } from './meta.js';
import type { MetaStore } from './meta-store.js';
import { DeviceMetaStore } from './format.js';
import { checkName } from './validate.js';
import { File } from './file.js';
import { writebackInode } from './engine.js';
import { forgetVerity } from './verity.js';
import { DirtyInodes } from './dirty-list.js';

/**
 * Most bytes one visit of pressure writeback writes of one inode (the
 * kernel's MAX_WRITEBACK_PAGES of 4 KiB pages): a file with more dirty
 * data goes back to the tail of the dirty list, after the older others.
 */
const WRITEBACK_CHUNK_BYTES = 4 * 1024 * 1024;
/**
 * Pressure writeback frees at least this share of the cache budget per
 * call (capped at one chunk), not just the folio asked for: the next
 * writes then find room at once, and writeback goes out in batches rather
 * than a block at a time.
 */
const PRESSURE_BATCH_DIVISOR = 16;

/** Engine settings; they are not part of the volume and may differ at each open. */
export interface VolumeOpenOptions {
  /** Largest page-cache folio in bytes: a power of two from 4 KiB to 2 MiB, at least the block size (default 2 MiB). */
  maxFolioSize?: number;
  /** Page cache byte budget (default 256 MiB). */
  cacheBytes?: number;
  /**
   * Where metadata is committed. Default: on the device itself, in the
   * on-device format (src/fs/format.ts, docs/FORMAT.md). `MemoryMetaStore`
   * keeps it in this process instead.
   */
  metaStore?: MetaStore;
  /**
   * Open for reading only: nothing is ever written to the device (a
   * read-only `FileDevice` needs it), and every call that would change the
   * volume (create, remove, rename, and a file's write, truncate, allocate,
   * enableVerity) fails with EROFS; sync, fsync and close have nothing to do.
   * Default false. Not for `format`.
   */
  readOnly?: boolean;
  /**
   * Certificates (PEM) trusted to sign sealed files, the counterpart of the
   * kernel's `.fs-verity` keyring: a file sealed with a built-in signature
   * has it checked against them when sealed and when first read or
   * measured (EKEYREJECTED or EBADMSG when it fails). Without them,
   * signatures are stored and returned but not checked.
   */
  trusted?: readonly PemInput[];
  /**
   * As the kernel with `fs.verity.require_signatures=1`: sealing without a
   * signature is EPERM, and a sealed file without one cannot be read or
   * measured (EPERM). Needs `trusted`.
   */
  requireSignatures?: boolean;
}


function checkSignaturePolicy(opts: VolumeOpenOptions): SignaturePolicy {
  const { trusted, requireSignatures = false } = opts;
  if (typeof requireSignatures !== 'boolean') throw fail('EINVAL', 'requireSignatures must be true or false');
  if (trusted !== undefined && (!Array.isArray(trusted) || !trusted.every((t) => typeof t === 'string' || isUint8Array(t)))) {
    throw fail('EINVAL', 'trusted must be an array of PEM certificates (strings or their bytes)');
  }
  if (requireSignatures && (trusted === undefined || trusted.length === 0)) {
    throw fail('EINVAL', 'requireSignatures needs trusted certificates: with none, no signature could ever verify');
  }
  return { trusted: trusted && [...trusted], require: requireSignatures };
}

/** Options of `Volume.format`: the format's own settings plus those of the open. */
export interface VolumeFormatOptions extends VolumeOpenOptions {
  /** Filesystem block size: a power of two from 512 to 65536 and a multiple of the device's (default max(4096, device block size)). */
  blockSize?: number;
  /** Bytes per metadata area of the on-device format (see FormatOptions in src/fs/format.ts). */
  metaAreaBytes?: number;
}

/** Options of `Volume.rename`. */
export interface RenameOptions {
  /** Replace `to` even when it is sealed with fs-verity (default false: EPERM). */
  replaceSealed?: boolean;
}

/** Space accounting, in filesystem blocks. */
export interface VolumeSpace {
  blockSize: number;
  totalBlocks: number;
  freeBlocks: number;
  reservedBlocks: number;
  /** Freed but not yet reusable: free again after the next two syncs (the previous commit still refers to them). */
  pendingFreeBlocks: number;
}

/** A synchronous throw (a refused argument) as a rejection: every method here returns a promise. */
function rejecting<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return fn();
  } catch (e) {
    return Promise.reject(e);
  }
}

const MAX_FOLIO_LIMIT = 2 * 1024 * 1024;

function checkPow2(what: string, v: unknown, lo: number, hi: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi || (v & (v - 1)) !== 0) {
    throw fail('EINVAL', `${what} must be a power of two from ${lo} to ${hi}, got ${String(v)}`);
  }
  return v;
}

function checkOpenOptions(opts: VolumeOpenOptions, blockSize: number): { maxFolioSize: number; cacheBytes: number } {
  const maxFolioSize = checkPow2('maxFolioSize', opts.maxFolioSize ?? DEFAULT_MAX_FOLIO_SIZE, 4096, MAX_FOLIO_LIMIT);
  if (maxFolioSize < blockSize) {
    throw fail('EINVAL', `maxFolioSize ${maxFolioSize} is smaller than the block size ${blockSize}: a folio must hold a whole block`);
  }
  const cacheBytes = opts.cacheBytes ?? DEFAULT_CACHE_BYTES;
  if (typeof cacheBytes !== 'number' || !Number.isSafeInteger(cacheBytes) || cacheBytes < 4 * maxFolioSize) {
    throw fail('EINVAL', `cacheBytes must be an integer of at least 4 folios (${4 * maxFolioSize} bytes), got ${String(cacheBytes)}`);
  }
  return { maxFolioSize, cacheBytes };
}

/**
 * Run `make` (format or open) holding `device` for the volume it returns:
 * one Volume per device at a time, as a mounted block device is busy. The
 * claim is taken before any I/O and given back if `make` fails.
 */
async function claimed(device: BlockDevice, make: () => Promise<Volume>): Promise<Volume> {
  if (!(device instanceof BlockDevice)) {
    throw fail('EINVAL', `a Volume needs a BlockDevice (MemoryDevice, FileDevice, ...), got ${device === null ? 'null' : typeof device}`);
  }
  const token = claimDevice(device);
  try {
    const volume = await make();
    claimDevice(device, volume, token);
    return volume;
  } catch (e) {
    releaseDevice(device, token);
    throw e;
  }
}

/**
 * An open volume of the reference filesystem on one `BlockDevice`
 * (`Volume.format` or `Volume.open`; one Volume per device at a time,
 * EBUSY otherwise). A flat namespace of files (`create`, `open`, `list`,
 * `remove`) plus `sync`, `dropCaches`, `space` and `close`; `blockSize` and
 * `maxFolioSize` are fixed for this open. Every call validates its
 * arguments, then runs under the volume lock. Errors by code: EINVAL for
 * bad arguments or no volume on the device; ENOENT, EEXIST for names;
 * EBADF after close; EIO when the device fails (and for every call after a
 * close that failed to write back). Durability: `sync` and `close` make
 * every file's data, size and seal durable when they resolve; a removal is
 * durable at the next sync; what was durable survives any crash.
 */
export class Volume {
  private readonly byName = new Map<string, Inode>();
  private nextIno: number;
  private lockTail: Promise<unknown> = Promise.resolve();
  /** Calls started through `run` and not yet settled. */
  private queued = 0;
  private closed = false;
  /** Set when close() failed to write everything back: later calls get EIO instead of EBADF. */
  private closeError: Error | undefined;
  /** Something changed since the last commit that is not in an inode (removals). */
  private volumeDirty = false;
  /** What the filesystem's own code works with. */
  private readonly mp: Mount;
  /** Inodes with dirty data or uncommitted metadata, oldest first (see DirtyInodes). */
  private readonly dirty = new DirtyInodes();
  /** Inodes whose mapping holds a writeback error no sync or fsync has reported yet. */
  private readonly errored = new Set<Inode>();
  /**
   * @internal For tests: called after each pressure writeback with the
   * numbers of the inodes it wrote back, in the order it visited them.
   */
  pressureTrace: ((visited: number[]) => void) | undefined;

  private constructor(
    private readonly device: BlockDevice,
    private readonly store: MetaStore,
    private readonly cache: PageCache,
    /** Filesystem block size in bytes, fixed when the volume was formatted. */
    readonly blockSize: number,
    /** Largest page-cache folio in bytes, as chosen at this open. */
    readonly maxFolioSize: number,
    private readonly meta: VolumeMeta,
    /** Opened with `readOnly`: every change is EROFS. */
    readonly readOnly = false,
  ) {
    const runs = (m: VolumeMeta) => m.inodes.flatMap((i) => i.extents.map((e) => ({ start: e.devBlock, blocks: e.blocks })));
    // What open would fall back to is on the device too: its blocks are not reused before the next commit replaces it.
    const fallback = store.fallbackMeta;
    const allocator = new Allocator(meta.dataStart, meta.deviceBlocks, runs(meta), fallback ? runs(fallback) : []);
    this.mp = new Mount(device, cache, allocator, blockSize, maxFolioSize, readOnly, {
      run: (fn) => this.run(fn),
      commit: () => this.commitLocked(),
      sync: (freeSpace) => this.syncLocked(freeSpace),
    });
    this.nextIno = meta.nextIno;
    for (const rec of meta.inodes) {
      this.byName.set(rec.name, this.newInode(rec.ino, rec.name, rec));
    }
    // Dirty data over budget is written back without committing metadata:
    // the extents it creates are unwritten until their ioends complete, so
    // nothing committed later can point at unwritten bytes.
    cache.onPressure = (need: number) => this.writebackOldest(need);
  }

  /**
   * Pressure writeback (the kernel's wb_writeback over b_dirty): write back
   * the oldest dirty inodes, at most a chunk of each per visit, until the
   * batch is freed. One round visits only the inodes that were on the list
   * when it began; an inode left dirty (a bigger file, or a failed write)
   * goes to the tail for a later round; a round that frees nothing ends
   * the call (the allocation then goes over budget, see PageCache.reserve).
   * Clean inodes are never visited. Even the range a buffered write is
   * working on is written: the write's mapping goes stale and iomap looks
   * it up again (iomapValid).
   */
  private async writebackOldest(need: number): Promise<void> {
    const cache = this.cache;
    const batch = Math.max(need, Math.min(WRITEBACK_CHUNK_BYTES, Math.floor(cache.budget / PRESSURE_BATCH_DIVISOR)));
    const visited: number[] | undefined = this.pressureTrace ? [] : undefined;
    let freed = 0;
    try {
      while (freed < batch && this.dirty.dataCount > 0) {
        const cutoff = this.dirty.nextSeq;
        let roundFreed = 0;
        for (const [inode, seq] of this.dirty.dataEntries()) {
          if (seq >= cutoff || freed >= batch) break;
          visited?.push(inode.ino);
          const before = cache.dirtyBytes;
          try {
            await writebackInode(this.mp, inode, false, { maxBytes: Math.min(WRITEBACK_CHUNK_BYTES, Math.max(batch - freed, 1)) });
          } finally {
            const got = Math.max(0, before - cache.dirtyBytes);
            freed += got;
            roundFreed += got;
            // Still dirty (more than a chunk, or the write failed): behind the others.
            this.dirty.requeue(inode);
          }
        }
        if (roundFreed === 0) break;
      }
    } finally {
      if (visited) this.pressureTrace?.(visited);
    }
  }

  /**
   * Make a new, empty volume on `device` and open it. The block size is
   * fixed here; `maxFolioSize` and `cacheBytes` are engine settings of this
   * open only. EINVAL for settings out of range or a device too small.
   */
  static async format(device: BlockDevice, opts: VolumeFormatOptions = {}): Promise<Volume> {
    return claimed(device, () => Volume.formatClaimed(device, opts ?? {}));
  }

  private static async formatClaimed(device: BlockDevice, opts: VolumeFormatOptions): Promise<Volume> {
    if (opts.readOnly || device.readOnly) throw fail('EROFS', 'cannot format a volume read-only: open the device read-write');
    const blockSize = checkPow2('blockSize', opts.blockSize ?? Math.max(4096, device.blockSize), 512, 65536);
    if (blockSize % device.blockSize !== 0) {
      throw fail('EINVAL', `blockSize ${blockSize} is not a multiple of the device block size ${device.blockSize}`);
    }
    const settings = checkOpenOptions(opts, blockSize);
    const signatures = checkSignaturePolicy(opts);
    const store = opts.metaStore ?? new DeviceMetaStore(device, { blockSize, metaAreaBytes: opts.metaAreaBytes });
    const deviceBlocks = Math.floor(device.size / blockSize);
    if (deviceBlocks <= store.dataStart) {
      throw fail('EINVAL', `device of ${device.size} bytes has no room for data after ${store.dataStart} metadata blocks of ${blockSize} bytes`);
    }
    const meta: VolumeMeta = { blockSize, deviceBlocks, dataStart: store.dataStart, nextIno: 1, inodes: [] };
    await device.flush();
    await store.commit(meta);
    const cache = await PageCache.create({ budgetBytes: settings.cacheBytes });
    const volume = new Volume(device, store, cache, blockSize, settings.maxFolioSize, meta);
    volume.mp.signatures = signatures;
    return volume;
  }

  /**
   * Open the volume committed on `device`. EINVAL when there is none;
   * EBUSY while another Volume of this process has the device open.
   */
  static async open(device: BlockDevice, opts: VolumeOpenOptions = {}): Promise<Volume> {
    return claimed(device, () => Volume.openClaimed(device, opts ?? {}));
  }

  private static async openClaimed(device: BlockDevice, opts: VolumeOpenOptions): Promise<Volume> {
    const readOnly = opts.readOnly ?? false;
    if (typeof readOnly !== 'boolean') throw fail('EINVAL', 'readOnly must be a boolean');
    if (device.readOnly && !readOnly) throw fail('EROFS', 'the device is read-only: open the volume with { readOnly: true }');
    const store = opts.metaStore ?? new DeviceMetaStore(device);
    const meta = await store.load();
    if (meta.blockSize % device.blockSize !== 0 || meta.deviceBlocks * meta.blockSize > device.size) {
      throw fail('EINVAL', `the volume (${meta.deviceBlocks} blocks of ${meta.blockSize} bytes) does not fit this device (${device.size} bytes, blocks of ${device.blockSize})`);
    }
    const settings = checkOpenOptions(opts, meta.blockSize);
    const signatures = checkSignaturePolicy(opts);
    const cache = await PageCache.create({ budgetBytes: settings.cacheBytes });
    const volume = new Volume(device, store, cache, meta.blockSize, settings.maxFolioSize, meta, readOnly);
    volume.mp.signatures = signatures;
    return volume;
  }

  private newInode(ino: number, name: string, rec?: VolumeMeta['inodes'][number]): Inode {
    let inode: Inode | undefined;
    const mapping = this.cache.createMapping({
      blockSize: this.blockSize,
      maxFolioSize: this.maxFolioSize,
      onDirtyChange: (dirty) => {
        if (inode?.dirtyList) inode.dirtyList.noteData(inode, dirty);
      },
      onError: () => {
        if (inode?.dirtyList) this.errored.add(inode);
      },
    });
    inode = new Inode(ino, name, this.blockSize, mapping, this.device, this.maxFolioSize, rec);
    inode.dirtyList = this.dirty;
    return inode;
  }

  /** @internal The read and write iomap ops, for tests that call iomap directly. */
  get ops(): FsIomapOps {
    return this.mp.ops;
  }

  /** @internal The writeback iomap ops, for tests that call them directly. */
  get wbOps(): FsWritebackOps {
    return this.mp.wbOps;
  }

  /** @internal Give back the space of an extent taken out of a map (tests that drop metadata by hand). */
  releaseExtent(e: { state: string; devBlock: number; blocks: number }): void {
    this.mp.releaseExtent(e);
  }

  /** Run `fn` under the volume lock, after checking the volume is open. */
  private run<T>(fn: () => Promise<T> | T): Promise<T> {
    const go = async (): Promise<T> => {
      this.checkOpen();
      return fn();
    };
    // Nothing queued: start now rather than a microtask later (cached reads
    // are a few microseconds, so the hop shows).
    const p = this.queued === 0 ? go() : this.lockTail.then(go, go);
    this.queued++;
    const done = () => {
      this.queued--;
    };
    this.lockTail = p.then(done, done);
    return p;
  }

  private checkOpen(): void {
    if (this.closeError) throw fail('EIO', 'the volume failed to close cleanly; reopen the device', this.closeError);
    if (this.closed) throw fail('EBADF', 'the volume is closed');
  }

  /** Create an empty file. EEXIST when the name is taken. */
  create(name: string): Promise<File> {
    return rejecting(() => {
      const n = checkName(name);
      return this.run(() => {
        this.mp.checkWritable(`create ${JSON.stringify(n)}`);
        if (this.byName.has(n)) throw fail('EEXIST', `file ${JSON.stringify(n)} already exists`);
        const inode = this.newInode(this.nextIno++, n);
        inode.metaDirty = true;
        this.byName.set(n, inode);
        return new File(this.mp, inode);
      });
    });
  }

  /** Open an existing file. ENOENT when there is none of that name. */
  open(name: string): Promise<File> {
    return rejecting(() => {
      const n = checkName(name);
      return this.run(() => new File(this.mp, this.lookup(n)));
    });
  }

  /** Names of all files, sorted. */
  list(): Promise<string[]> {
    return this.run(() => [...this.byName.keys()].sort());
  }

  /**
   * Remove a file: its cached data is dropped, its blocks become free after
   * the next commit, and every `File` open on it gets ENOENT from then on.
   */
  remove(name: string): Promise<void> {
    return rejecting(() => {
      const n = checkName(name);
      return this.run(async () => {
        this.mp.checkWritable(`remove ${JSON.stringify(n)}`);
        await this.dropInode(this.lookup(n));
      });
    });
  }

  /**
   * Rename `from` to `to` in one step (rename(2)): every `File` open on it
   * keeps working under the new name, and the new name is durable at the
   * next sync or fsync, in the same commit that drops the old one, so a
   * crash shows the file under exactly one of the two names. A file already
   * called `to` is replaced: its open handles get ENOENT and its blocks are
   * freed by that commit. Replacing a file sealed with fs-verity is EPERM
   * unless `opts.replaceSealed` says the caller means it, since a sealed
   * file is the one a user least expects to lose to a stray rename.
   * ENOENT when there is no `from`; EBUSY while fs-verity is being enabled
   * on either file; EINVAL/ENAMETOOLONG for a bad name. Renaming a file to
   * its own name does nothing.
   */
  rename(from: string, to: string, opts: RenameOptions = {}): Promise<void> {
    let f: string;
    let t: string;
    let replaceSealed: unknown;
    try {
      f = checkName(from);
      t = checkName(to);
      replaceSealed = opts?.replaceSealed ?? false;
      if (typeof replaceSealed !== 'boolean') throw fail('EINVAL', 'replaceSealed must be a boolean');
      // As a second enable is refused at once, so is a rename of a file
      // being sealed, rather than queued until the seal is done.
      for (const n of [f, t]) {
        if (this.byName.get(n)?.enablePending) throw fail('EBUSY', `cannot rename: fs-verity is being enabled on ${JSON.stringify(n)}`);
      }
    } catch (e) {
      return Promise.reject(e);
    }
    return this.run(async () => {
      this.mp.checkWritable(`rename ${JSON.stringify(f)}`);
      const inode = this.lookup(f);
      if (f === t) return;
      if (inode.enablePending || inode.verity === 'building') {
        throw fail('EBUSY', `cannot rename ${JSON.stringify(f)}: fs-verity is being enabled on it`);
      }
      const old = this.byName.get(t);
      if (old !== undefined) {
        if (old.enablePending || old.verity === 'building') {
          throw fail('EBUSY', `cannot replace ${JSON.stringify(t)}: fs-verity is being enabled on it`);
        }
        if (old.verity === 'sealed' && !replaceSealed) {
          throw fail('EPERM', `cannot replace ${JSON.stringify(t)}: it is sealed with fs-verity (pass { replaceSealed: true } to replace it anyway)`);
        }
        await this.dropInode(old);
      }
      this.byName.delete(f);
      inode.name = t;
      this.byName.set(t, inode);
      this.volumeDirty = true;
    });
  }

  /** Forget a file: its cache, its extents (freed at the next commit), its name. */
  private async dropInode(inode: Inode): Promise<void> {
    await inode.mapping.clear();
    inode.mapping.takeError();
    for (const e of inode.extents.punch(0, Infinity)) this.mp.releaseExtent(e);
    inode.removed = true;
    inode.dirtyList = undefined;
    this.dirty.forget(inode);
    this.errored.delete(inode);
    forgetVerity(inode);
    this.byName.delete(inode.name);
    this.volumeDirty = true;
  }

  private lookup(name: string): Inode {
    const inode = this.byName.get(name);
    if (inode === undefined) throw fail('ENOENT', `no file named ${JSON.stringify(name)}`);
    return inode;
  }

  /**
   * Write back every file, flush the device and commit the metadata. EIO
   * when any writeback failed. Space freed before the previous commit is
   * free again after this one (it commits for that alone if need be).
   */
  sync(): Promise<void> {
    return this.run(() => this.syncLocked(true));
  }

  /**
   * Write back everything, then commit even if some writeback failed: the
   * metadata only points at data whose writes completed (delalloc is not
   * committed and unwritten extents are converted only by successful
   * ioends), so what did reach the device becomes durable, and the first
   * error is reported after.
   */
  private async syncLocked(freeSpace = false): Promise<void> {
    if (this.readOnly) return;
    let firstError = await this.writebackAll();
    try {
      await this.commitLocked(freeSpace);
    } catch (e) {
      firstError ??= e;
    }
    if (firstError !== undefined) throw firstError;
  }

  /**
   * Write back every file with dirty data, oldest dirtied first, and take
   * the unreported writeback errors of the others (a clean file is not
   * visited otherwise); each even after another failed. Resolves to the
   * first error (undefined when none).
   */
  private async writebackAll(): Promise<unknown> {
    let firstError: unknown;
    const todo = new Set(this.dirty.dataInodes());
    for (const inode of this.errored) todo.add(inode);
    for (const inode of todo) {
      if (inode.removed) continue;
      try {
        await writebackInode(this.mp, inode);
      } catch (e) {
        firstError ??= e;
      } finally {
        // writebackInode took the error, if any, whether it threw or not.
        this.errored.delete(inode);
      }
    }
    return firstError;
  }

  /**
   * Flush the device, then commit the metadata (which flushes again). The
   * first flush orders the data before the metadata that points to it.
   */
  private async commitLocked(freeSpace = false): Promise<void> {
    if (this.readOnly) return;
    await this.device.flush().catch((e: unknown) => {
      throw isErrno(e, 'EIO') ? e : fail('EIO', 'device flush failed', e);
    });
    const a = this.mp.alloc.allocator;
    // With `freeSpace`, a commit with nothing new in it still hands back the
    // blocks that only the previous commit refers to (see Allocator).
    const dirty =
      this.volumeDirty || this.dirty.metaCount > 0 || a.uncommittedFreedBlocks > 0 || (freeSpace && a.pendingBlocks > 0);
    if (!dirty) return;
    const meta: VolumeMeta = {
      blockSize: this.blockSize,
      deviceBlocks: this.meta.deviceBlocks,
      dataStart: this.meta.dataStart,
      nextIno: this.nextIno,
      inodes: [...this.byName.values()].sort((a, b) => a.ino - b.ino).map((i) => i.toRecord()),
    };
    await this.store.commit(meta);
    const recorded = new Map(meta.inodes.map((r) => [r.ino, r.size]));
    for (const i of this.byName.values()) {
      i.committedSize = recorded.get(i.ino) ?? i.committedSize;
      // A size held back (its data not yet written) is committed later.
      i.metaDirty = i.committedSize !== i.size;
    }
    this.volumeDirty = false;
    this.mp.alloc.allocator.committed();
  }

  /**
   * Write back all dirty data and evict every folio from the page cache
   * (the `echo 3 > drop_caches` of tests). Metadata is not committed.
   * EIO when writeback failed; the failed data stays cached and dirty.
   */
  dropCaches(): Promise<void> {
    return this.run(async () => {
      const firstError = await this.writebackAll();
      this.cache.dropClean();
      if (firstError !== undefined) throw firstError;
    });
  }

  /** Space accounting in blocks. */
  space(): VolumeSpace {
    const a = this.mp.alloc.allocator;
    return {
      blockSize: this.blockSize,
      totalBlocks: this.meta.deviceBlocks - this.meta.dataStart,
      freeBlocks: a.freeBlocks,
      reservedBlocks: a.reservedBlocks,
      pendingFreeBlocks: a.pendingBlocks,
    };
  }

  /**
   * Sync, then close. Later calls fail with EBADF. If the sync fails the
   * volume is closed anyway (EIO from this call and from later calls: the
   * data not written back is lost, as after a failed umount). The device
   * stays open: it belongs to the caller.
   */
  close(): Promise<void> {
    return this.run(async () => {
      try {
        await this.syncLocked();
      } catch (e) {
        this.closeError = e instanceof Error ? e : new Error(String(e));
        throw e;
      } finally {
        this.closed = true;
        releaseDevice(this.device, this);
        for (const inode of this.byName.values()) {
          await inode.mapping.clear();
          // A sealed file's verifier holds WASM memory (its hasher's scratch).
          forgetVerity(inode);
        }
        this.cache.onPressure = undefined;
      }
    });
  }
}
