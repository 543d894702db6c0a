/**
 * A small filesystem for the iomap and page cache tests: a per-block extent
 * table over any BlockDevice, with holes, delayed allocation (blocks chosen
 * at writeback), unwritten extents converted at ioend completion, and an
 * fs-verity metadata area (IOMAP_F_FSVERITY past `metaStart`), and
 * mapping revalidation (a change counter as the validity cookie). Deliberately
 * naive (one Map entry per block) so the tests check iomap, not it.
 */
import { MemoryDevice, type BlockDevice } from '../../src/device/index.js';
import {
  IOMAP_DELALLOC,
  IOMAP_F_FSVERITY,
  IOMAP_F_NEW,
  IOMAP_HOLE,
  IOMAP_MAPPED,
  IOMAP_NULL_ADDR,
  IOMAP_UNWRITTEN,
  IOMAP_VERITY,
  IOMAP_WRITE,
  type Iomap,
  type IomapInode,
  type IomapIoend,
  type IomapOps,
  type IomapType,
  type IomapWritebackOps,
} from '../../src/iomap/index.js';
import { PageCache, type AddressSpace } from '../../src/pagecache/index.js';
import { instantiateWasm } from '../../src/wasm/index.js';

type BlockState = { kind: 'delalloc' } | { kind: 'unwritten'; dev: number } | { kind: 'written'; dev: number };

export interface TestFsOptions {
  /** Delalloc blocks become unwritten extents at writeback, converted on completion (else written directly). */
  allocUnwritten?: boolean;
  /** Writes allocate real blocks at once (MAPPED|NEW) instead of delalloc. */
  allocAtWrite?: boolean;
  /** File offset from which blocks are fs-verity metadata (IOMAP_F_FSVERITY). */
  metaStart?: number;
}

/**
 * The per-block table, counting its changes: `seq` is the extent-map
 * sequence number that `TestFs.iomapValid` compares with the cookie begin()
 * put in the mapping.
 */
class BlockTable extends Map<number, BlockState> {
  seq = 0;
  override set(k: number, v: BlockState): this {
    this.seq++;
    return super.set(k, v);
  }
  override delete(k: number): boolean {
    this.seq++;
    return super.delete(k);
  }
  override clear(): void {
    this.seq++;
    super.clear();
  }
}

export class TestInode implements IomapInode {
  size = 0;
  readonly blocks = new BlockTable();
  readonly mapping: AddressSpace;
  constructor(
    readonly ino: number,
    readonly blockSize: number,
    readonly device: BlockDevice,
    cache: PageCache,
    maxFolioSize?: number,
  ) {
    this.mapping = cache.createMapping({ blockSize, maxFolioSize });
  }
}

export class TestFs implements IomapOps, IomapWritebackOps {
  /** Next free device block (a bump allocator; tests never run out). */
  nextDev: number;
  readonly completions: Array<{ ioend: IomapIoend; error?: Error }> = [];
  beginCalls = 0;
  /** Device blocks freed by punch, reused once the bump pointer reaches the end. */
  readonly free: number[] = [];
  constructor(
    readonly bs: number,
    readonly opts: TestFsOptions = {},
    firstDevBlock = 1,
  ) {
    this.nextDev = firstDevBlock;
  }

  private isMeta(pos: number, flags: number): boolean {
    return (flags & IOMAP_VERITY) !== 0 || (this.opts.metaStart !== undefined && pos >= this.opts.metaStart);
  }

  /** Map a run of same-state blocks starting at block `b` (contiguous on the device for real blocks). */
  private run(inode: TestInode, b: number, maxBlocks: number): { n: number; st: BlockState | undefined } {
    const st = inode.blocks.get(b);
    let n = 1;
    while (n < maxBlocks) {
      const nx = inode.blocks.get(b + n);
      if (!st) {
        if (nx) break;
      } else if (!nx || nx.kind !== st.kind || ('dev' in st && 'dev' in nx && nx.dev !== st.dev + n)) break;
      n++;
    }
    return { n, st };
  }

  private toIomap(b: number, n: number, st: BlockState | undefined, flags: number): Iomap {
    const bs = this.bs;
    const type: IomapType = !st ? IOMAP_HOLE : st.kind === 'delalloc' ? IOMAP_DELALLOC : st.kind === 'unwritten' ? IOMAP_UNWRITTEN : IOMAP_MAPPED;
    const addr = st && 'dev' in st ? st.dev * bs : IOMAP_NULL_ADDR;
    return { addr, offset: b * bs, length: n * bs, type, flags };
  }

  begin(iinode: IomapInode, pos: number, length: number, flags: number) {
    this.beginCalls++;
    const inode = iinode as TestInode;
    const bs = this.bs;
    const b = Math.floor(pos / bs);
    const nmax = Math.max(1, Math.ceil((pos + length) / bs) - b);
    const meta = this.isMeta(pos, flags) ? IOMAP_F_FSVERITY : 0;
    const { n, st } = this.run(inode, b, nmax);
    if (!(flags & IOMAP_WRITE) || st) return { iomap: { ...this.toIomap(b, n, st, meta), validityCookie: inode.blocks.seq } };
    // A write over a hole: reserve (delalloc) or allocate now.
    const devBlocks = Math.floor(inode.device.size / bs);
    for (let i = 0; i < n; i++) {
      if (!this.opts.allocAtWrite) inode.blocks.set(b + i, { kind: 'delalloc' });
      else {
        const dev = this.nextDev < devBlocks ? this.nextDev++ : this.free.pop();
        if (dev === undefined) throw new Error('test filesystem full');
        inode.blocks.set(b + i, { kind: 'written', dev });
      }
    }
    const again = this.run(inode, b, n);
    return { iomap: { ...this.toIomap(b, again.n, again.st, meta | IOMAP_F_NEW), validityCookie: inode.blocks.seq } };
  }

  /** The mapping is stale once the block table changed after begin() made it (xfs_iomap_valid). */
  iomapValid(iinode: IomapInode, iomap: Iomap): boolean {
    return iomap.validityCookie === (iinode as TestInode).blocks.seq;
  }

  mapBlocks(iinode: IomapInode, pos: number, length: number): Iomap {
    const inode = iinode as TestInode;
    const bs = this.bs;
    const b = Math.floor(pos / bs);
    const nmax = Math.max(1, Math.ceil((pos + length) / bs) - b);
    const meta = this.isMeta(pos, 0) ? IOMAP_F_FSVERITY : 0;
    let { n, st } = this.run(inode, b, nmax);
    if (st?.kind === 'delalloc') {
      // Allocate the whole delalloc run contiguously when the device has
      // room past the bump pointer: that is what lets writeback merge it
      // into one ioend. Otherwise reuse freed blocks one by one.
      const kind = this.opts.allocUnwritten ? 'unwritten' : 'written';
      const devBlocks = Math.floor(inode.device.size / bs);
      for (let i = 0; i < n; i++) {
        const dev = this.nextDev < devBlocks ? this.nextDev++ : this.free.pop();
        if (dev === undefined) throw new Error('test filesystem full');
        inode.blocks.set(b + i, { kind, dev });
      }
      ({ n, st } = this.run(inode, b, n));
    }
    return this.toIomap(b, n, st, meta);
  }

  ioendCompletion(ioend: IomapIoend, error?: Error): void {
    this.completions.push({ ioend, error });
    if (error || ioend.type !== IOMAP_UNWRITTEN) return;
    const inode = ioend.inode as TestInode;
    for (let p = ioend.offset; p < ioend.offset + ioend.length; p += this.bs) {
      const st = inode.blocks.get(p / this.bs);
      if (st && st.kind === 'unwritten') inode.blocks.set(p / this.bs, { kind: 'written', dev: st.dev });
    }
  }

  /** Free blocks at and past `fromBlock` (truncate). */
  punch(inode: TestInode, fromBlock: number): void {
    for (const [k, st] of [...inode.blocks]) {
      if (k < fromBlock) continue;
      inode.blocks.delete(k);
      if ('dev' in st) this.free.push(st.dev);
    }
  }
}

/** Options of `iomapSetup`; the defaults are what most iomap tests use. */
export interface IomapSetupOptions {
  /** Page cache budget (64 MiB). */
  budget?: number;
  /** Bytes of the MemoryDevice under the file (256 MiB; sparse, so cheap). */
  deviceSize?: number;
  /** Device block size (512). */
  deviceBlockSize?: number;
  /** TestFs options: allocUnwritten, allocAtWrite, ... */
  fsOpts?: ConstructorParameters<typeof TestFs>[1];
}

/**
 * One file on a TestFs for the iomap tests: a fresh WASM instance and page
 * cache, a MemoryDevice, and inode 1 with block size `bs` and folios up to
 * `maxFolioSize`.
 */
export async function iomapSetup(bs: number, maxFolioSize: number, o: IomapSetupOptions = {}) {
  const wasm = await instantiateWasm();
  const cache = new PageCache(wasm, { budgetBytes: o.budget ?? 64 << 20 });
  const dev = new MemoryDevice({ blockSize: o.deviceBlockSize ?? 512, size: o.deviceSize ?? 256 << 20 });
  const fs = new TestFs(bs, o.fsOpts);
  const inode = new TestInode(1, bs, dev, cache, maxFolioSize);
  return { wasm, cache, dev, fs, inode };
}
