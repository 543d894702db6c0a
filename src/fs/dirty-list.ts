/**
 * The volume's dirty inodes, in the order they got dirty: the kernel's
 * per-superblock writeback lists (b_dirty, filled by __mark_inode_dirty and
 * walked oldest first by writeback_sb_inodes). Pressure writeback and sync
 * walk these lists, so their cost is that of the dirty inodes, never that
 * of every inode of the volume.
 *
 * Two lists, as the kernel keeps inodes dirty only in their timestamps on a
 * list of their own (b_dirty_time) so that data writeback never walks them:
 * - `data`: inodes with dirty page-cache folios. An inode joins at the tail
 *   when its mapping gets its first dirty folio and leaves when it has none;
 *   writeback that leaves some dirty sends it back to the tail (`requeue`,
 *   the kernel's redirty_tail / b_more_io).
 * - `meta`: inodes whose metadata (size, extents, flags) awaits a commit.
 *   Joins when `Inode.metaDirty` is set, leaves when it is cleared.
 * An inode is dirty while it is on either list. Every join, leave and
 * requeue is O(1) (insertion-ordered Map and Set).
 */
import type { Inode } from './inode.js';

/** The dirty inodes of one volume; see the module comment. */
export class DirtyInodes {
  /** Inodes with dirty data, oldest first, each with the sequence number it joined (or was requeued) with. */
  private readonly data = new Map<Inode, number>();
  /** Inodes whose metadata is not committed, oldest first. */
  private readonly meta = new Set<Inode>();
  private seq = 0;

  /** Called when `inode`'s mapping gets its first dirty folio (true) or loses its last (false). */
  noteData(inode: Inode, dirty: boolean): void {
    if (dirty) {
      if (!this.data.has(inode)) this.data.set(inode, this.seq++);
    } else {
      this.data.delete(inode);
    }
  }

  /** Called when `inode.metaDirty` changes. */
  noteMeta(inode: Inode, dirty: boolean): void {
    if (dirty) this.meta.add(inode);
    else this.meta.delete(inode);
  }

  /** Send an inode that still has dirty data after a writeback batch to the tail of `data`. */
  requeue(inode: Inode): void {
    if (!this.data.delete(inode)) return;
    this.data.set(inode, this.seq++);
  }

  /** Take `inode` off both lists (it was removed from the volume). */
  forget(inode: Inode): void {
    this.data.delete(inode);
    this.meta.delete(inode);
  }

  /**
   * The sequence number the next join or requeue gets: an inode whose
   * `dataEntries` number is at least this joined after the call, which is
   * how one writeback round stops at the inodes that were dirty when it
   * began (the kernel's `older_than_this` cut-off).
   */
  get nextSeq(): number {
    return this.seq;
  }

  /**
   * The inodes with dirty data, oldest first, with their sequence numbers:
   * a live view, so inodes cleaned during the walk are skipped and those
   * joining or requeued come at its end.
   */
  dataEntries(): IterableIterator<[Inode, number]> {
    return this.data.entries();
  }

  /** The inodes with dirty data now, oldest first (a copy). */
  dataInodes(): Inode[] {
    return [...this.data.keys()];
  }

  /** How many inodes have dirty data. */
  get dataCount(): number {
    return this.data.size;
  }

  /** How many inodes have metadata awaiting a commit. */
  get metaCount(): number {
    return this.meta.size;
  }
}
