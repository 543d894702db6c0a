/**
 * The reference filesystem's side of fs-verity, as XFS's xfs_fsverity.c is
 * for the kernel: it implements `VerityOps` over its own iomap ops (metadata
 * goes through `iomapFsverityWrite` and metadata reads, past EOF, with
 * IOMAP_F_FSVERITY mappings), and runs the enable sequence around the
 * library's `buildVerityMetadata`:
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
 * All functions here run under the volume lock (`Volume.run`).
 */
import { fail, isErrno } from '../errors.js';
import { IOMAP_F_FSVERITY, type IomapFilledRange, type IomapVerifyHook } from '../iomap/types.js';
import { iomapFsverityWrite } from '../iomap/buffered-write.js';
import { iomapBufferedRead } from '../iomap/buffered-read.js';
import { computeFileDigest, formatDigest, validateDescriptor, type VerityDescriptor } from '../verity/descriptor.js';
import { buildVerityMetadata } from '../verity/enable.js';
import { locateDescriptor } from '../verity/layout.js';
import type { VerityParams } from '../verity/params.js';
import type { VerityOps } from '../verity/verity-ops.js';
import { MerkleVerifier } from '../verity/verify.js';
import { feedLeavesFromPool, type LeafDigestSink } from '../verity/pool-feed.js';
import { leafHashPool, startedLeafHashPool, POOL_MAX_BLOCK_SIZE, POOL_MIN_BLOCK_SIZE, type LeafHashPool } from '../verity/pool.js';
import { dropVerityMetadata, writebackInode } from './engine.js';
import type { Inode } from './inode.js';
import type { Volume } from './volume.js';

/** What a sealed inode keeps in memory once its descriptor was read and checked. */
interface SealedState {
  readonly descriptorBytes: Uint8Array;
  readonly descriptor: VerityDescriptor;
  readonly verifier: MerkleVerifier;
  /** The read hook, made once per sealed inode. */
  hook?: IomapVerifyHook;
}

const sealed = new WeakMap<Inode, SealedState>();

/** Bytes of data read per step while building the tree. */
const BUILD_CHUNK = 1 << 20;

function label(inode: Inode): string {
  return `file ${JSON.stringify(inode.name)}`;
}

/** `VerityOps` for one inode: offsets relative to its metadata area, placed by the inode's sizing policy. */
function verityOps(volume: Volume, inode: Inode): VerityOps {
  return {
    async writeMetadata(offset, bytes) {
      await iomapFsverityWrite(inode, inode.cacheMetaStart + offset, bytes, volume.ops);
    },
    async readMetadata(offset, length) {
      return iomapBufferedRead(inode, inode.cacheMetaStart + offset, length, volume.ops, { metadata: true });
    },
  };
}

/** What the feed needs of a builder (MerkleTreeBuilder has all of it). */
interface TreeFeedSink extends LeafDigestSink {
  readonly params: VerityParams;
  addBlocks(d: Uint8Array): Promise<void>;
}

/**
 * Written data at least this large is hashed on the worker pool when it is
 * not running yet (a cold pool costs tens of milliseconds to boot); a
 * running pool takes anything from POOL_USE_BYTES.
 */
const POOL_START_BYTES = 64 << 20;
const POOL_USE_BYTES = 8 << 20;

/**
 * The worker pool and the device's descriptor, when sealing should hash
 * written extents there: SHA-256 at a block size the pool takes, a device
 * whose bytes workers can read (a FileDevice, after the writeback and flush
 * that start sealing), and enough written data to pay for it.
 */
async function sealPool(volume: Volume, inode: Inode, params: VerityParams): Promise<{ pool: LeafHashPool; fd: number } | undefined> {
  const fd = volume.device.readFd;
  const mb = params.blockSize;
  if (fd === undefined || params.algorithm.name !== 'sha256' || mb < POOL_MIN_BLOCK_SIZE || mb > POOL_MAX_BLOCK_SIZE) return undefined;
  const written = inode.extents.extents().reduce((n, e) => n + (e.state === 'written' ? e.blocks * inode.blockSize : 0), 0);
  let pool = startedLeafHashPool();
  if (!pool && written >= POOL_START_BYTES) pool = await leafHashPool();
  // Jobs submitted before the workers have booted wait in the pool's queue.
  if (!pool || written < POOL_USE_BYTES) return undefined;
  return { pool, fd };
}

/**
 * Feed the file's data to the builder in order. Ranges without written
 * blocks are holes, hashed as zero blocks unread. With the worker pool,
 * runs of whole Merkle blocks inside one written extent are read and hashed
 * by the workers straight from the device; the rest (and everything without
 * a pool) is read through the engine on this thread.
 */
function feedData(volume: Volume, inode: Inode, onProgress?: (bytesDone: number, totalBytes: number) => void) {
  return async (builder: TreeFeedSink) => {
    const size = inode.size;
    const bs = inode.blockSize;
    const params = builder.params;
    const mb = params.blockSize;
    const chunk = Math.max(BUILD_CHUNK, mb, bs);
    const wholeBlocks = Math.floor(size / mb);
    const direct = await sealPool(volume, inode, params);
    // One buffer for every step: the builder copies what it keeps.
    let buf: Uint8Array | undefined;
    for (let pos = 0; pos < size; ) {
      let len = Math.min(chunk, size - pos);
      if (direct) {
        const found = inode.extents.lookup(Math.floor(pos / bs));
        if (found.kind === 'extent' && found.extent.state === 'written') {
          const e = found.extent;
          const runEnd = Math.min(Math.floor(((e.fileBlock + e.blocks) * bs) / mb), wholeBlocks);
          const first = pos / mb;
          if (runEnd > first) {
            const at = e.devBlock * bs + (pos - e.fileBlock * bs);
            const report = onProgress && ((done: number) => onProgress(done, size));
            await feedLeavesFromPool(direct.pool, direct.fd, first, runEnd, mb, params.salt, builder, report, at);
            pos = runEnd * mb;
            continue;
          }
          // The extent ends inside this Merkle block (or it is the last,
          // partial one): read just this block here.
          len = Math.min(len, mb);
        } else {
          // Stop this step at the Merkle block where the next written extent starts.
          const next = inode.extents.range(Math.floor(pos / bs), Math.ceil((pos + len) / bs)).find((x) => x.state === 'written');
          if (next) {
            const cut = Math.ceil((next.fileBlock * bs) / mb) * mb;
            if (cut > pos) len = Math.min(len, cut - pos);
          }
        }
      }
      const written = inode.extents
        .range(Math.floor(pos / bs), Math.ceil((pos + len) / bs))
        .some((e) => e.state !== 'unwritten');
      if (!written && len % mb === 0) {
        await builder.addZeroBlocks(len / mb);
      } else {
        buf ??= new Uint8Array(chunk);
        await builder.addBlocks(await iomapBufferedRead(inode, pos, len, volume.ops, { into: buf }));
      }
      pos += len;
      onProgress?.(pos, size);
    }
  };
}

/** Seal `inode` with fs-verity. `params` are checked (validateSealParams). */
export async function enableVerity(
  volume: Volume,
  inode: Inode,
  params: VerityParams,
  onProgress?: (bytesDone: number, totalBytes: number) => void,
): Promise<void> {
  if (inode.verity === 'sealed') throw fail('EEXIST', `${label(inode)} is already sealed with fs-verity`);
  if (inode.verity === 'building') throw fail('EBUSY', `fs-verity is already being enabled on ${label(inode)}`);
  await writebackInode(volume, inode);
  await volume.device.flush();
  inode.verity = 'building';
  try {
    await dropVerityMetadata(volume, inode);
    const ops = verityOps(volume, inode);
    await buildVerityMetadata(params, inode.size, inode.blockSize, ops, feedData(volume, inode, onProgress));
    await writebackInode(volume, inode);
    await volume.device.flush();
    inode.verity = 'sealed';
    inode.metaDirty = true;
    await volume.commitLocked();
  } catch (e) {
    inode.verity = 'none';
    try {
      await dropVerityMetadata(volume, inode);
    } catch {
      // The metadata is past EOF and unreferenced by any seal: the next
      // enable drops it again. The first error is the one to report.
    }
    throw isErrno(e) ? e : fail('EIO', `enabling fs-verity on ${label(inode)} failed: ${(e as Error)?.message ?? e}`, e);
  }
}

/** The sealed state of `inode`, reading and checking its descriptor the first time. */
async function sealedState(volume: Volume, inode: Inode): Promise<SealedState> {
  const have = sealed.get(inode);
  if (have) return have;
  if (inode.verity !== 'sealed') throw fail('ENODATA', `${label(inode)} is not sealed with fs-verity`);
  const ops = verityOps(volume, inode);
  const all = inode.extents.extents();
  const last = all[all.length - 1];
  const areaEnd = last ? (last.fileBlock + last.blocks) * inode.blockSize - inode.deviceMetaStart : 0;
  if (areaEnd < 4) throw fail('ERANGE', `${label(inode)} is marked sealed but has no fs-verity metadata past EOF`);
  const sizeField = await ops.readMetadata(areaEnd - 4, 4);
  const descSize = new DataView(sizeField.buffer, sizeField.byteOffset, 4).getUint32(0, false);
  const { descOffset } = locateDescriptor(areaEnd, descSize);
  const descriptorBytes = await ops.readMetadata(descOffset, descSize);
  const descriptor = validateDescriptor(descriptorBytes, { rules: 'seal' });
  if (descriptor.dataSize !== inode.size) {
    throw fail('EINVAL', `fs-verity descriptor of ${label(inode)} is for ${descriptor.dataSize} bytes, the file has ${inode.size}`);
  }
  const verifier = await MerkleVerifier.create(descriptor, ops, label(inode));
  const state = { descriptorBytes, descriptor, verifier };
  sealed.set(inode, state);
  return state;
}

/** Forget what was cached about a sealed inode (on remove or close). */
export function forgetVerity(inode: Inode): void {
  sealed.get(inode)?.verifier.dispose();
  sealed.delete(inode);
}

/** Read file bytes straight from the device, bypassing the cache: for the parts of a Merkle block outside a range being filled. */
async function readDirect(volume: Volume, inode: Inode, pos: number, out: Uint8Array): Promise<void> {
  const bs = inode.blockSize;
  const tmp = new Uint8Array(bs);
  for (let p = pos; p < pos + out.length; ) {
    const fb = Math.floor(p / bs);
    const n = Math.min((fb + 1) * bs, pos + out.length) - p;
    const found = inode.extents.lookup(fb);
    if (found.kind === 'extent' && found.extent.state === 'written') {
      await volume.device.read((found.extent.devBlock + fb - found.extent.fileBlock) * bs, tmp);
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
export async function verityReadHook(volume: Volume, inode: Inode): Promise<IomapVerifyHook> {
  const state = await sealedState(volume, inode);
  const { verifier } = state;
  const wasm = inode.mapping.cache.wasm;
  return (state.hook ??= async (_ino, r: IomapFilledRange) => {
    if (r.iomapFlags & IOMAP_F_FSVERITY) return;
    const size = inode.size;
    const start = r.pos;
    const end = Math.min(r.pos + r.length, size);
    if (end <= start) return;
    const mb = verifier.tree.blockSize;
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
    if (first * mb < start) await readDirect(volume, inode, first * mb, whole.subarray(0, start - first * mb));
    whole.set(bytes, start - first * mb);
    const tailEnd = Math.min(last * mb, size);
    if (end < tailEnd) await readDirect(volume, inode, end, whole.subarray(end - first * mb, tailEnd - first * mb));
    await verifier.verifyData(first, whole);
  });
}

export interface VerityMeasurement {
  algorithm: 'sha256' | 'sha512';
  digest: Uint8Array;
  /** `sha256:<hex>`, as `fsverity measure` prints it. */
  formatted: string;
}

export async function measureVerity(volume: Volume, inode: Inode): Promise<VerityMeasurement> {
  const s = await sealedState(volume, inode);
  const alg = s.descriptor.params.algorithm;
  const digest = await computeFileDigest(alg, s.descriptorBytes);
  return { algorithm: alg.name, digest, formatted: formatDigest(alg, digest) };
}

export type VerityMetadataType = 'merkle_tree' | 'descriptor' | 'signature';

/** FS_IOC_READ_VERITY_METADATA: pread semantics over the tree (unstored blocks filled in) or the descriptor. */
export async function readVerityMetadata(
  volume: Volume,
  inode: Inode,
  type: VerityMetadataType,
  offset: number,
  length: number,
): Promise<Uint8Array> {
  const s = await sealedState(volume, inode);
  switch (type) {
    case 'merkle_tree':
      return s.verifier.readTree(offset, length);
    case 'descriptor':
      return s.descriptorBytes.slice(Math.min(offset, s.descriptorBytes.length), Math.min(offset + length, s.descriptorBytes.length));
    case 'signature':
      throw fail('ENODATA', `${label(inode)} has no fs-verity built-in signature`);
  }
}
