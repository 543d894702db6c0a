/**
 * The mount: what the filesystem's own code (engine.ts, file.ts,
 * verity.ts) needs of an open volume, as XFS code takes an `xfs_mount`
 * rather than the VFS superblock. `Volume` makes one when it opens and
 * keeps it private; the public face of a volume is `Volume` alone.
 *
 * `run`, `commit` and `sync` are the volume's, handed in as functions so
 * that this file imports nothing that imports it back: the filesystem's
 * files form no import circle.
 */
import { fail } from '../errors.js';
import type { BlockDevice } from '../device/block-device.js';
import type { PageCache } from '../pagecache/index.js';
import type { Allocator } from './allocator.js';
import { FsAllocContext, FsIomapOps, FsWritebackOps } from './iomap-ops.js';
import type { PemInput } from '../verity/signature.js';

/** The volume's calls a mount hands on; see the methods of `Mount` of the same names. */
export interface MountHooks {
  run<T>(fn: () => Promise<T> | T): Promise<T>;
  commit(): Promise<void>;
  sync(freeSpace?: boolean): Promise<void>;
}

/** How this open of a volume treats fs-verity built-in signatures (set by Volume from its open options). */
export interface SignaturePolicy {
  readonly trusted: readonly PemInput[] | undefined;
  readonly require: boolean;
}

/**
 * One open volume as the filesystem's own code sees it. Made by `Volume`
 * only; its methods other than `releaseExtent` are the volume's lock and
 * commits, with the errors and durability given at each.
 */
export class Mount {
  /** Checked by verity-signature.ts when a file is sealed or opened. */
  signatures: SignaturePolicy = { trusted: undefined, require: false };

  /** The allocator and its next-fit rotor, shared by both ops tables. */
  readonly alloc: FsAllocContext;
  /** The iomap ops of reads, buffered writes, zeroing and truncation. */
  readonly ops: FsIomapOps;
  /** The iomap ops of writeback. */
  readonly wbOps: FsWritebackOps;

  constructor(
    readonly device: BlockDevice,
    readonly cache: PageCache,
    allocator: Allocator,
    /** Filesystem block size in bytes. */
    readonly blockSize: number,
    /** Largest page-cache folio in bytes. */
    readonly maxFolioSize: number,
    /** Opened read-only: every change is EROFS, and commits write nothing. */
    readonly readOnly: boolean,
    private readonly hooks: MountHooks,
  ) {
    this.alloc = new FsAllocContext(allocator);
    this.ops = new FsIomapOps(this.alloc);
    this.wbOps = new FsWritebackOps(this.alloc);
  }

  /**
   * Run `fn` under the volume lock, after checking the volume is open
   * (EBADF when closed, EIO after a close that failed to write back).
   */
  run<T>(fn: () => Promise<T> | T): Promise<T> {
    return this.hooks.run(fn);
  }

  /** EROFS when the volume was opened read-only; `what` names the refused call. */
  checkWritable(what: string): void {
    if (this.readOnly) throw fail('EROFS', `${what}: the volume is open read-only`);
  }

  /**
   * Under the lock: flush the device, then commit the metadata (EIO when
   * the device fails). Durable when it resolves.
   */
  commit(): Promise<void> {
    return this.hooks.commit();
  }

  /**
   * Under the lock: write back every file, then commit even if a writeback
   * failed; rejects with the first error after. With `freeSpace`, commits
   * even with nothing new, so that blocks only the previous commit still
   * refers to become free (freed blocks wait two commits, see Allocator).
   */
  sync(freeSpace = false): Promise<void> {
    return this.hooks.sync(freeSpace);
  }

  /** Give back the space of an extent taken out of a map: a reservation at once, blocks after the next commit. */
  releaseExtent(e: { state: string; devBlock: number; blocks: number }): void {
    if (e.state === 'delalloc') this.alloc.allocator.unreserve(e.blocks);
    else this.alloc.allocator.release(e.devBlock, e.blocks);
  }
}
