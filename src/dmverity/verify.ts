/**
 * `dmverityVerify`: check a data device against its hash device and a root
 * hash, in the order `veritysetup verify` checks them, so both name the
 * same first failure: every data block against level 0, then each level
 * against the one above, then the top block against the root hash. The
 * padding of every hash slot and the rest of every hash block must be
 * zeros, as veritysetup requires.
 *
 * Memory: one piece of data (4 MiB) and one hash block at a time; all-zero
 * data blocks are recognised, not hashed.
 */
import { fail } from '../errors.js';
import { createDmBlockHasher, type DmBlockHasher } from './hash.js';
import { openSource, type DmSource, type DmverityInput } from './io.js';
import { computeDmverityLayout, parseDmverityRootHash, requireHashOffset, validateDmverityParams, type DmverityLayout, type DmverityParams, type DmverityParamsOptions } from './params.js';
import { decodeDmveritySuperblock, DMVERITY_SUPERBLOCK_SIZE } from './superblock.js';
import { dmverityHex } from './format.js';

/** Options of `dmverityVerify` and `dmverityReadParams`. */
export interface DmverityVerifyOptions extends DmverityParamsOptions {
  /** Called as data is checked, with bytes done and bytes to do. */
  onProgress?: (done: number, total: number) => void;
}

/** The first thing found wrong. */
export interface DmverityFailure {
  /**
   * 'hash': a block's hash differs from the one stored for it at `level`;
   * 'spare': bytes of the hash device that must be zero are not;
   * 'root': the top block (or the single data block) does not hash to the root hash.
   */
  readonly reason: 'hash' | 'spare' | 'root';
  /** The level whose stored hash disagrees (0: the hashes of data blocks); for 'root', the number of levels. */
  readonly level: number;
  /** The block that fails: a data block number at level 0, else a block number inside level `level - 1`. For 'spare', the hash block holding the bytes. */
  readonly block: number;
  /** Byte offset veritysetup reports: of the failing block in its device (data or hash), or of the first spare byte checked. */
  readonly position: number;
  readonly expected?: Uint8Array;
  readonly actual?: Uint8Array;
  /** In words, naming the block, the level and the hashes. */
  readonly message: string;
}

/** What `dmverityVerify` found. */
export interface DmverityVerifyResult {
  readonly ok: boolean;
  readonly params: DmverityParams;
  readonly layout: DmverityLayout;
  readonly failure?: DmverityFailure;
}

/**
 * The parameters a hash device describes: its superblock at `hashOffset`
 * (through the one validating door, `decodeDmveritySuperblock`), or, with
 * `superblock: false`, `opts` themselves with the data device's size.
 */
export async function dmverityReadParams(hash: DmverityInput, opts?: DmverityParamsOptions, dataSize?: number): Promise<DmverityParams> {
  if (opts?.superblock === false) return validateDmverityParams(opts, dataSize, false);
  const src = await openSource(hash, 'hash device');
  try {
    const off = requireHashOffset(opts?.hashOffset);
    if (src.size < off + DMVERITY_SUPERBLOCK_SIZE) throw fail('EINVAL', `not a dm-verity hash device: ${src.size} bytes, no superblock at offset ${off}`);
    const sb = new Uint8Array(DMVERITY_SUPERBLOCK_SIZE);
    src.readInto(off, sb);
    return decodeDmveritySuperblock(sb, off);
  } finally {
    src.close();
  }
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function firstNonZero(b: Uint8Array, from: number, to: number): number {
  for (let i = from; i < to; i++) if (b[i] !== 0) return i;
  return -1;
}

/**
 * Check `data` against `hash` and `rootHash` (hex or bytes). Parameters
 * come from the superblock at `opts.hashOffset`, or from `opts` with
 * `superblock: false`. Resolves to `{ ok: true }` or to the first failure
 * (block, level, position, expected and actual hashes); rejects only for
 * bad input: EINVAL for a bad superblock, parameters or root hash, EIO
 * when a device is shorter than its tree needs.
 */
export async function dmverityVerify(
  data: DmverityInput,
  hash: DmverityInput,
  rootHash: string | Uint8Array,
  opts?: DmverityVerifyOptions,
): Promise<DmverityVerifyResult> {
  const dataSrc = await openSource(data, 'data device');
  let hashSrc: DmSource | undefined;
  try {
    const params = await dmverityReadParams(hash, opts, dataSrc.size);
    const layout = computeDmverityLayout(params);
    const root = parseDmverityRootHash(rootHash, params.digestSize);
    if (dataSrc.size < params.dataBlocks * params.dataBlockSize) {
      throw fail('EIO', `data device holds ${dataSrc.size} bytes, less than ${params.dataBlocks} blocks of ${params.dataBlockSize}`);
    }
    hashSrc = await openSource(hash, 'hash device');
    // A single data block has no tree: nothing past the superblock is read.
    if (layout.levels > 0 && hashSrc.size < layout.hashDeviceSize) {
      throw fail('EIO', `hash device holds ${hashSrc.size} bytes, its tree ends at ${layout.hashDeviceSize}`);
    }
    const dataHasher = await createDmBlockHasher(params.hashAlgorithm, params.salt, params.format, params.dataBlockSize);
    let hashHasher: DmBlockHasher | undefined;
    try {
      hashHasher = await createDmBlockHasher(params.hashAlgorithm, params.salt, params.format, params.hashBlockSize);
      const failure =
        (await checkLevels(layout, dataSrc, hashSrc, dataHasher, hashHasher, opts?.onProgress)) ??
        checkRoot(layout, dataSrc, hashSrc, dataHasher, hashHasher, root);
      return failure ? { ok: false, params, layout, failure } : { ok: true, params, layout };
    } finally {
      dataHasher.dispose();
      hashHasher?.dispose();
    }
  } finally {
    dataSrc.close();
    hashSrc?.close();
  }
}

async function checkLevels(
  layout: DmverityLayout,
  dataSrc: DmSource,
  hashSrc: DmSource,
  dataHasher: DmBlockHasher,
  hashHasher: DmBlockHasher,
  onProgress: ((done: number, total: number) => void) | undefined,
): Promise<DmverityFailure | undefined> {
  const { params, hashesPerBlock: per, slotSize } = layout;
  const ds = params.digestSize;
  const hbs = params.hashBlockSize;
  const stored = new Uint8Array(hbs);
  for (let level = 0; level < layout.levels; level++) {
    const children = level === 0 ? params.dataBlocks : layout.levelSize[level - 1]!;
    const src = level === 0 ? dataSrc : hashSrc;
    const hasher = level === 0 ? dataHasher : hashHasher;
    const childBase = level === 0 ? 0 : layout.levelStart[level - 1]!;
    const cbs = hasher.blockSize;
    const digests = new Uint8Array(hasher.capacity * ds);
    for (let j = 0; j < layout.levelSize[level]!; j++) {
      const hashBlock = layout.levelStart[level]! + j;
      hashSrc.readInto(hashBlock * hbs, stored);
      const first = j * per;
      const last = Math.min(children, first + per);
      for (let c = first; c < last; ) {
        const n = Math.min(hasher.capacity, last - c);
        src.readInto((childBase + c) * cbs, hasher.staging(n));
        hasher.hashStaged(n, digests);
        for (let i = 0; i < n; i++) {
          const s = (c + i - first) * slotSize;
          const want = stored.subarray(s, s + ds);
          const got = digests.subarray(i * ds, (i + 1) * ds);
          if (!equal(want, got)) {
            const what = level === 0 ? `data block ${c + i}` : `hash block ${c + i} of level ${level - 1}`;
            return {
              reason: 'hash',
              level,
              block: c + i,
              position: (childBase + c + i) * cbs,
              expected: want.slice(),
              actual: got.slice(),
              message: `dm-verity: ${what} fails verification against its level-${level} hash: expected ${dmverityHex(want)}, got ${dmverityHex(got)}`,
            };
          }
          const z = firstNonZero(stored, s + ds, s + slotSize);
          if (z >= 0) return spare(level, hashBlock, hashBlock * hbs + s + ds);
        }
        c += n;
        if (level === 0) onProgress?.(c * cbs, children * cbs);
      }
      const used = (last - first) * slotSize;
      if (firstNonZero(stored, used, hbs) >= 0) return spare(level, hashBlock, hashBlock * hbs + used);
    }
  }
  return undefined;
}

function spare(level: number, hashBlock: number, position: number): DmverityFailure {
  return {
    reason: 'spare',
    level,
    block: hashBlock,
    position,
    message: `dm-verity: hash block ${hashBlock} (level ${level}) has non-zero bytes in its spare area from byte ${position} of the hash device`,
  };
}

function checkRoot(
  layout: DmverityLayout,
  dataSrc: DmSource,
  hashSrc: DmSource,
  dataHasher: DmBlockHasher,
  hashHasher: DmBlockHasher,
  root: Uint8Array,
): DmverityFailure | undefined {
  const { params } = layout;
  let got: Uint8Array;
  if (layout.levels === 0) {
    const b = new Uint8Array(params.dataBlockSize);
    dataSrc.readInto(0, b);
    got = dataHasher.hashBlock(b);
  } else {
    const b = new Uint8Array(params.hashBlockSize);
    hashSrc.readInto(layout.levelStart[layout.levels - 1]! * params.hashBlockSize, b);
    got = hashHasher.hashBlock(b);
  }
  if (equal(got, root)) return undefined;
  return {
    reason: 'root',
    level: layout.levels,
    block: 0,
    position: 0,
    expected: root.slice(),
    actual: got,
    message: `dm-verity: the ${layout.levels === 0 ? 'data block' : 'top hash block'} does not match the root hash: expected ${dmverityHex(root)}, got ${dmverityHex(got)}`,
  };
}
