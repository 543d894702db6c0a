/**
 * The reference filesystem's side of fs-verity, as XFS's xfs_fsverity.c is
 * for the kernel: it implements `VerityOps` over its own iomap ops (metadata
 * goes through `iomapFsverityWrite` and metadata reads, past EOF, with
 * IOMAP_F_FSVERITY mappings; the descriptor is found from the end of the
 * metadata area), keeps each sealed inode's opened state (the library's
 * `openVerity`, as the kernel keeps `i_verity_info`), gives iomap its read
 * hook, feeds the tree builder from the extent map, and runs the enable
 * sequence around the library's `buildVerityMetadata`:
 *
 *   refuse a sealed file (EEXIST) or one being sealed (EBUSY)
 *   -> write back the data and flush it
 *   -> drop stale metadata past EOF
 *   -> build the tree from the data (holes hash as zero blocks unread)
 *   -> write back the metadata, flush
 *   -> only then persist the verity flag (a metadata commit)
 *
 * and on any failure drops the metadata again, leaving the file as it was
 * and writable.
 *
 * All functions here run under the volume lock (`Mount.run`).
 */
import { fail, isErrno, MAX_OFFSET } from '../errors.js';
import { IOMAP_F_FSVERITY, type IomapFilledRange, type IomapVerifyHook } from '../iomap/types.js';
import { iomapFsverityWrite } from '../iomap/buffered-write.js';
import { iomapBufferedRead } from '../iomap/buffered-read.js';
import { buildVerityMetadata } from '../verity/enable.js';
import { locateDescriptor, verityLayout } from '../verity/layout.js';
import { computeMerkleTreeParams, type VerityParams } from '../verity/params.js';
import type { VerityOps } from '../verity/verity-ops.js';
import { openVerity, type VerityInfo } from '../verity/open.js';
import { measureVerity, type VerityMeasurement } from '../verity/measure.js';
import { readVerityMetadata, type VerityMetadataType } from '../verity/read-metadata.js';
import type { MerkleTreeBuilder } from '../verity/tree.js';
import { choosePool, POOL_CHUNK_BYTES, type LeafHashPool } from '../verity/pool.js';
import { feedLeafRun, JobWindow } from '../verity/pool-feed.js';
import { dropVerityMetadata, writebackInode } from './engine.js';
import { checkSignaturePolicy } from './verity-signature.js';
import type { Inode } from './inode.js';
import type { Mount } from './mount.js';

/** What a sealed inode keeps in memory once opened: the library's info and the read hook made from it. */
interface SealedState extends VerityInfo {
  /** The read hook, made once per sealed inode. */
  hook?: IomapVerifyHook;
}

const sealed = new WeakMap<Inode, SealedState>();

/** Bytes of data read per step while building the tree. */
const BUILD_CHUNK = 1 << 20;

function label(inode: Inode): string {
  return `file ${JSON.stringify(inode.name)}`;
}

/**
 * `VerityOps` for one inode: offsets relative to its metadata area, placed
 * by the inode's sizing policy. The descriptor is found from the end of the
 * area (the end of the file's last extent past EOF), whose last four bytes
 * hold its size (see src/verity/layout.ts).
 */
function verityOps(mp: Mount, inode: Inode): VerityOps {
  const ops: VerityOps = {
    async writeMetadata(offset, bytes) {
      await iomapFsverityWrite(inode, inode.cacheMetaStart + offset, bytes, mp.ops);
    },
    async readMetadata(offset, length) {
      return iomapBufferedRead(inode, inode.cacheMetaStart + offset, length, mp.ops, { metadata: true });
    },
    async getDescriptor() {
      const all = inode.extents.extents();
      const last = all[all.length - 1];
      const areaEnd = last ? (last.fileBlock + last.blocks) * inode.blockSize - inode.deviceMetaStart : 0;
      if (areaEnd < 4) throw fail('ERANGE', `${label(inode)} is marked sealed but has no fs-verity metadata past EOF`);
      const sizeField = await ops.readMetadata(areaEnd - 4, 4);
      const descSize = new DataView(sizeField.buffer, sizeField.byteOffset, 4).getUint32(0, false);
      const { descOffset } = locateDescriptor(areaEnd, descSize);
      return ops.readMetadata(descOffset, descSize);
    },
  };
  return ops;
}

/**
 * The worker pool and the device's descriptor, when sealing should hash
 * written extents there: a device whose bytes workers can read (a
 * FileDevice, after the writeback and flush that start sealing), and what
 * the pool policy (`choosePool`, which also says whether the pool takes the
 * algorithm and block size) says for this many bytes of written data.
 */
async function sealPool(mp: Mount, inode: Inode, params: VerityParams): Promise<{ pool: LeafHashPool; fd: number; ready: () => boolean } | undefined> {
  const fd = mp.device.readFd;
  if (fd === undefined) return undefined;
  const written = inode.extents.extents().reduce((n, e) => n + (e.state === 'written' ? e.blocks * inode.blockSize : 0), 0);
  // A pool just started boots for tens of milliseconds: this thread hashes
  // the device steps itself until its workers are up (or for good, if it
  // failed to start).
  const choice = await choosePool(params, written);
  return choice && { pool: choice.pool, fd, ready: choice.up };
}

/** The first file block at or after `fb` that holds data (not a hole, not unwritten); Infinity when none does. */
function nextDataBlock(inode: Inode, fb: number): number {
  for (;;) {
    const found = inode.extents.lookup(fb);
    if (found.kind === 'hole') {
      if (found.blocks === Infinity) return Infinity;
      fb += found.blocks;
    } else if (found.extent.state === 'unwritten') {
      fb = found.extent.fileBlock + found.extent.blocks;
    } else {
      return fb;
    }
  }
}

/**
 * One step of feeding the builder: a run of zero blocks; a range read
 * through the engine; or whole Merkle blocks inside one written extent,
 * read straight from the device at byte `at` (by a worker of the pool, or
 * by this thread into WASM memory).
 */
type FeedStep =
  | { kind: 'zero'; pos: number; blocks: number }
  | { kind: 'read'; pos: number; len: number }
  | { kind: 'device'; pos: number; len: number; at: number };

/**
 * The steps that feed the file's data to the builder, in order, from its
 * extent map (written back and flushed: the device holds what the cache
 * does). Holes and unwritten extents become runs of zero blocks (one step
 * each, never read). Runs of whole Merkle blocks inside one written extent
 * become device steps of at most one pool job each. The rest (Merkle
 * blocks across extent edges, the partial last one) is read through the
 * engine in steps of at most `chunk`. Steps start on Merkle block
 * boundaries; only the last may be partial.
 */
function feedSteps(inode: Inode, mb: number, chunk: number, deviceBlockSize: number): FeedStep[] {
  const size = inode.size;
  const bs = inode.blockSize;
  // Device reads go by whole device blocks.
  const direct = mb % deviceBlockSize === 0;
  const wholeBlocks = Math.floor(size / mb);
  const steps: FeedStep[] = [];
  for (let pos = 0; pos < size; ) {
    const dataAt = nextDataBlock(inode, Math.floor(pos / bs)) * bs;
    const zeroEnd = Math.floor(Math.min(dataAt, size) / mb) * mb;
    if (zeroEnd > pos) {
      steps.push({ kind: 'zero', pos, blocks: (zeroEnd - pos) / mb });
      pos = zeroEnd;
      continue;
    }
    const found = inode.extents.lookup(Math.floor(Math.max(pos, dataAt) / bs));
    let end = Math.min(pos + chunk, size);
    if (found.kind === 'extent') {
      const e = found.extent;
      const extentEnd = (e.fileBlock + e.blocks) * bs;
      const runEnd = Math.min(Math.floor(extentEnd / mb), wholeBlocks) * mb;
      if (direct && dataAt === pos && e.state === 'written' && runEnd > pos) {
        for (let p = pos; p < runEnd; p += POOL_CHUNK_BYTES) {
          steps.push({ kind: 'device', pos: p, len: Math.min(POOL_CHUNK_BYTES, runEnd - p), at: e.devBlock * bs + (p - e.fileBlock * bs) });
        }
        pos = runEnd;
        continue;
      }
      // Read up to the Merkle block where this extent ends: what follows
      // may be a hole to skip or an extent for the pool.
      end = Math.min(end, Math.max(pos + mb, Math.ceil(extentEnd / mb) * mb));
    }
    steps.push({ kind: 'read', pos, len: end - pos });
    pos = end;
  }
  return steps;
}

/**
 * Feed the file's data to the builder in order (see feedSteps). With the
 * pool, device steps are handed to the workers ahead of time, a few per
 * worker, across holes and reads in between, and their digests are fed in
 * their turn. Without it, until a cold pool's workers are up, and for any
 * step not handed out, this thread reads the range from the device into
 * WASM memory and hashes it there, past the page cache.
 */
function feedData(mp: Mount, inode: Inode, onProgress?: (bytesDone: number, totalBytes: number) => void) {
  return async (builder: MerkleTreeBuilder) => {
    const size = inode.size;
    const params = builder.params;
    const mb = params.blockSize;
    const chunk = Math.max(BUILD_CHUNK, mb, inode.blockSize);
    const direct = await sealPool(mp, inode, params);
    const steps = feedSteps(inode, mb, chunk, mp.device.blockSize);
    const wasm = inode.mapping.cache.wasm;
    const jobs = direct && new JobWindow(direct.pool);
    let next = 0;
    const handOut = (from: number): void => {
      if (!jobs || !direct?.ready()) return;
      next = Math.max(next, from);
      for (; next < steps.length && !jobs.full; next++) {
        const s = steps[next]!;
        if (s.kind === 'device') jobs.start(next, direct.pool.hashFileBlocks(direct.fd, s.at, s.len / mb, mb, params.salt, params.algorithm.name));
      }
    };
    // One buffer for every engine read (the builder copies what it keeps),
    // one run of WASM memory for device reads.
    let buf: Uint8Array | undefined;
    let scratch = 0;
    try {
      for (let i = 0; i < steps.length; i++) {
        handOut(i);
        const s = steps[i]!;
        const job = jobs?.take(i);
        if (job) {
          const run = await job;
          handOut(i + 1);
          await feedLeafRun(builder, run);
        } else if (s.kind === 'zero') {
          await builder.addZeroBlocks(s.blocks);
        } else if (s.kind === 'device') {
          if (scratch === 0) scratch = wasm.alloc(POOL_CHUNK_BYTES);
          try {
            await mp.device.read(s.at, wasm.bytes(scratch, s.len));
          } catch (e) {
            throw isErrno(e, 'EIO') ? e : fail('EIO', `reading ${label(inode)} at ${s.pos} for its Merkle tree failed`, e);
          }
          await builder.addBlocksAt(wasm, scratch, s.len / mb);
        } else {
          buf ??= new Uint8Array(chunk);
          for (let p = s.pos; p < s.pos + s.len; p += chunk) {
            const len = Math.min(chunk, s.pos + s.len - p);
            await builder.addBlocks(await iomapBufferedRead(inode, p, len, mp.ops, { into: buf }));
          }
        }
        onProgress?.(s.kind === 'zero' ? s.pos + s.blocks * mb : s.pos + s.len, size);
        // Device reads may finish without leaving the microtask queue:
        // let a booting pool's start-up messages in.
        if (direct && !direct.ready() && s.kind !== 'zero') await new Promise<void>((resolve) => setImmediate(resolve));
      }
    } finally {
      if (scratch !== 0) wasm.free(scratch);
      // Jobs still out read the device: let them finish before it can close.
      await jobs?.settle();
    }
  };
}

/** Seal `inode` with fs-verity. `params` are checked (validateSealParams). */
export async function enableVerity(
  mp: Mount,
  inode: Inode,
  params: VerityParams,
  onProgress?: (bytesDone: number, totalBytes: number) => void,
  signature: Uint8Array = new Uint8Array(0),
): Promise<void> {
  if (inode.verity === 'sealed') throw fail('EEXIST', `${label(inode)} is already sealed with fs-verity`);
  if (inode.verity === 'building') throw fail('EBUSY', `fs-verity is already being enabled on ${label(inode)}`);
  // The tree's size is known before anything is hashed: metadata that cannot
  // fit below the largest file offset is refused at once (as the kernel's
  // EFBIG), not after hashing a file of petabytes.
  const metaBytes = verityLayout(computeMerkleTreeParams(params, inode.size).treeSize, inode.blockSize, signature.length).end;
  const metaStart = Math.max(inode.deviceMetaStart, inode.cacheMetaStart);
  if (metaStart > MAX_OFFSET || metaBytes > MAX_OFFSET - metaStart) {
    throw fail(
      'EFBIG',
      `${label(inode)} is too large to seal: its ${metaBytes} bytes of fs-verity metadata would end past the largest file offset (2^53 - 1)`,
    );
  }
  if (signature.length === 0) await checkSignaturePolicy(mp, inode, params.algorithm, new Uint8Array(0), signature, 'seal');
  await writebackInode(mp, inode);
  await mp.device.flush();
  inode.verity = 'building';
  try {
    await dropVerityMetadata(mp, inode);
    const ops = verityOps(mp, inode);
    const built = await buildVerityMetadata(params, inode.size, inode.blockSize, ops, feedData(mp, inode, onProgress), signature);
    // As the kernel: a signature is checked before the seal is committed.
    if (signature.length > 0) await checkSignaturePolicy(mp, inode, params.algorithm, built.descriptor, signature, 'seal');
    await writebackInode(mp, inode);
    await mp.device.flush();
  } catch (e) {
    inode.verity = 'none';
    try {
      await dropVerityMetadata(mp, inode);
    } catch {
      // The metadata is past EOF and unreferenced by any seal: the next
      // enable drops it again. The first error is the one to report.
    }
    throw isErrno(e) ? e : fail('EIO', `enabling fs-verity on ${label(inode)} failed: ${(e as Error)?.message ?? e}`, e);
  }
  // Tree and descriptor are complete and on the device. From here the file
  // is sealed: if the commit fails, its superblock may have reached the
  // device anyway, so going back to writable could let a write change data
  // under a seal that a crash then brings back. Sealed it stays, and the
  // next sync commits it again; after a crash it is either sealed and
  // verifying in full, or as it was.
  inode.verity = 'sealed';
  inode.metaDirty = true;
  try {
    await mp.commit();
  } catch (e) {
    throw fail(
      'EIO',
      `${label(inode)} is sealed, but committing the seal failed (${(e as Error)?.message ?? e}): it stays read-only, and the next sync or fsync commits it`,
      e,
    );
  }
}

/**
 * The opened fs-verity state of a sealed `inode` (its fsverity_info),
 * made by the library's `openVerity` the first time it is needed.
 * ENODATA when the file is not sealed.
 */
async function sealedState(mp: Mount, inode: Inode): Promise<SealedState> {
  const have = sealed.get(inode);
  if (have) return have;
  if (inode.verity !== 'sealed') throw fail('ENODATA', `${label(inode)} is not sealed with fs-verity`);
  const state: SealedState = await openVerity(verityOps(mp, inode), inode.size, label(inode));
  try {
    await checkSignaturePolicy(mp, inode, state.descriptor.params.algorithm, state.descriptorBytes, state.descriptor.signature, 'open');
  } catch (e) {
    state.dispose();
    throw e;
  }
  sealed.set(inode, state);
  return state;
}

/** Forget what was cached about a sealed inode (on remove or close). */
export function forgetVerity(inode: Inode): void {
  sealed.get(inode)?.dispose();
  sealed.delete(inode);
}

/** Read file bytes straight from the device, bypassing the cache: for the parts of a Merkle block outside a range being filled. */
async function readDirect(mp: Mount, inode: Inode, pos: number, out: Uint8Array): Promise<void> {
  const bs = inode.blockSize;
  const tmp = new Uint8Array(bs);
  for (let p = pos; p < pos + out.length; ) {
    const fb = Math.floor(p / bs);
    const n = Math.min((fb + 1) * bs, pos + out.length) - p;
    const found = inode.extents.lookup(fb);
    if (found.kind === 'extent' && found.extent.state === 'written') {
      await mp.device.read((found.extent.devBlock + fb - found.extent.fileBlock) * bs, tmp);
      out.set(tmp.subarray(p - fb * bs, p - fb * bs + n), p - pos);
    } else {
      out.fill(0, p - pos, p - pos + n);
    }
    p += n;
  }
}

/**
 * The verification hook for buffered reads of a sealed file: every Merkle
 * block of data in a newly filled range is checked before iomap marks it up
 * to date. Bytes past EOF count as zeros whatever the device holds there
 * (they are never returned).
 */
export function verityReadHook(mp: Mount, inode: Inode): IomapVerifyHook | Promise<IomapVerifyHook> {
  // Every read of a sealed file asks for this: answer without a promise once made.
  return sealed.get(inode)?.hook ?? makeVerityReadHook(mp, inode);
}

async function makeVerityReadHook(mp: Mount, inode: Inode): Promise<IomapVerifyHook> {
  const state = await sealedState(mp, inode);
  const { verifier } = state;
  const wasm = inode.mapping.cache.wasm;
  return (state.hook ??= async (_ino, r: IomapFilledRange) => {
    if (r.iomapFlags & IOMAP_F_FSVERITY) return;
    const size = inode.size;
    const start = r.pos;
    const end = Math.min(r.pos + r.length, size);
    if (end <= start) return;
    const mb = verifier.geometry.dataBlockSize;
    const first = Math.floor(start / mb);
    const last = Math.ceil(end / mb);
    if (start === first * mb && last * mb - start <= r.length) {
      // The range holds whole Merkle blocks: hash them where they are. The
      // folio past EOF is zeroed first, as the kernel zeroes a page past
      // i_size, so the last block hashes as fs-verity pads it.
      if (last * mb > end) wasm.bytes(r.ptr + (end - start), last * mb - end).fill(0);
      if (await verifier.verifyDataAt(wasm, r.ptr, first, last - first)) return;
    }
    const bytes = wasm.bytes(r.ptr, end - start).slice();
    const whole = new Uint8Array((last - first) * mb);
    if (first * mb < start) await readDirect(mp, inode, first * mb, whole.subarray(0, start - first * mb));
    whole.set(bytes, start - first * mb);
    const tailEnd = Math.min(last * mb, size);
    if (end < tailEnd) await readDirect(mp, inode, end, whole.subarray(end - first * mb, tailEnd - first * mb));
    await verifier.verifyData(first, whole);
  });
}

/** FS_IOC_MEASURE_VERITY of a sealed `inode` (see `measureVerity` in src/verity/measure.ts). */
export async function measureInode(mp: Mount, inode: Inode): Promise<VerityMeasurement> {
  return measureVerity(await sealedState(mp, inode));
}

/** FS_IOC_READ_VERITY_METADATA of a sealed `inode` (see `readVerityMetadata` in src/verity/read-metadata.ts). */
export async function readInodeVerityMetadata(
  mp: Mount,
  inode: Inode,
  type: VerityMetadataType,
  offset: number,
  length: number,
): Promise<Uint8Array> {
  return readVerityMetadata(await sealedState(mp, inode), type, offset, length, label(inode));
}
