/**
 * Where a volume's metadata is persisted: one small interface, so the
 * filesystem does not care whether the metadata lives in this process
 * (`MemoryMetaStore`) or on the device itself (the on-device format of
 * src/fs/format.ts).
 *
 * The contract is a copy-on-write commit: `commit` makes `meta` the state that
 * the next `load` returns, atomically (a crash during a commit leaves the
 * previous commit loadable). The volume calls it only after the data the
 * metadata points to has been written and flushed.
 */
import { fail } from '../errors.js';
import type { VolumeMeta } from './meta.js';

/** Where a volume's metadata is committed; see the module comment for the contract. */
export interface MetaStore {
  /** The last committed metadata. EINVAL/EIO when there is none or it is damaged. */
  load(): Promise<VolumeMeta>;
  /** Make `meta` durable, atomically. */
  commit(meta: VolumeMeta): Promise<void>;
  /** Blocks [0, dataStart) the store keeps for itself; the allocator starts after them. */
  readonly dataStart: number;
  /**
   * After `load`: the older commit the store still holds and would fall
   * back to if the newest were found damaged (undefined when there is
   * none). Its blocks must not be overwritten until the next commit
   * replaces it.
   */
  readonly fallbackMeta?: VolumeMeta | undefined;
}

function cloneMeta(m: VolumeMeta): VolumeMeta {
  return {
    ...m,
    inodes: m.inodes.map((i) => ({ ...i, extents: i.extents.map((e) => ({ ...e })) })),
  };
}

/**
 * Metadata kept in this process, keyed by device object: `Volume.open` of a
 * device formatted (and committed) earlier in the same process finds it
 * again. Nothing is written to the device, so `dataStart` is 0 and a crash
 * or a new process loses the metadata: for tests and for volumes that live
 * only as long as the process (the default, `DeviceMetaStore`, keeps the
 * metadata on the device in the format of docs/FORMAT.md).
 */
export class MemoryMetaStore implements MetaStore {
  private static readonly registry = new WeakMap<object, MemoryMetaStore>();
  private committedMeta: VolumeMeta | undefined;
  readonly dataStart = 0;

  /** The store of `device`, created on first use. */
  static for(device: object): MemoryMetaStore {
    let s = MemoryMetaStore.registry.get(device);
    if (s === undefined) {
      s = new MemoryMetaStore();
      MemoryMetaStore.registry.set(device, s);
    }
    return s;
  }

  async load(): Promise<VolumeMeta> {
    if (this.committedMeta === undefined) {
      throw fail('EINVAL', 'no volume on this device: format it first (Volume.format)');
    }
    return cloneMeta(this.committedMeta);
  }

  async commit(meta: VolumeMeta): Promise<void> {
    this.committedMeta = cloneMeta(meta);
  }
}
