/**
 * The on-device format of a volume: two superblock slots, two metadata
 * areas, copy-on-write commits. docs/FORMAT.md describes it byte by byte;
 * this file is the only code that reads or writes it.
 *
 * A commit of generation g writes the encoded `VolumeMeta` (the "blob") into
 * metadata area g % 2, flushes, writes superblock slot g % 2, and flushes.
 * The newest committed blob is therefore never overwritten by the next
 * commit, and a crash anywhere leaves either the new or the previous commit
 * loadable. `load` validates everything it reads in one place (`decodeBlob`
 * and `parseSuperblock`): nothing read from the device is trusted to size an
 * allocation or a loop before it has been range-checked.
 *
 * Checksums are CRC-32C (Castagnoli), computed here in TypeScript: it
 * catches the corruption a device produces (flipped bits, torn or misplaced
 * blocks) and needs nothing from the WASM module. It is not a defence
 * against someone forging an image; fs-verity's digests are the integrity
 * story for file contents.
 */
import type { BlockDevice } from '../device/index.js';
import { fail, MAX_OFFSET } from '../errors.js';
import type { ExtentRecord, InodeRecord, VolumeMeta } from './meta.js';

// ---------------------------------------------------------------------------
// Constants of the format (docs/FORMAT.md).

/** "IOMAPVFS": the first 8 bytes of a superblock. */
const SB_MAGIC = [0x49, 0x4f, 0x4d, 0x41, 0x50, 0x56, 0x46, 0x53];
/** "IVMD": the first 4 bytes of a metadata blob. */
const BLOB_MAGIC = [0x49, 0x56, 0x4d, 0x44];
/** Format version written and the only one accepted. */
export const FORMAT_VERSION = 1;
/**
 * Byte offsets of the two superblock slots. Fixed, not in blocks, so `load`
 * finds both without knowing the block size: 65536 is a multiple of every
 * block size the format allows.
 */
export const SUPERBLOCK_OFFSETS = [0, 65536] as const;
/** Bytes of a superblock that carry data; the rest of its block is zero. */
const SB_BYTES = 128;
/** Offset of the superblock's own CRC-32C (over bytes [0, SB_CRC_AT)). */
const SB_CRC_AT = 124;
/** Largest metadata area accepted: bounds what `load` ever reads and allocates. */
export const MAX_META_AREA_BYTES = 64 << 20;
const MIN_META_AREA_BYTES = 4096;
const MAX_NAME_BYTES = 255;

// ---------------------------------------------------------------------------
// CRC-32C.

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

/** CRC-32C (Castagnoli) of `data`, as an unsigned 32-bit number. */
export function crc32c(data: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// ---------------------------------------------------------------------------
// Layout.

/** Where everything lives, in filesystem blocks of `blockSize` bytes. */
export interface Layout {
  blockSize: number;
  /** Volume size in blocks (the device may be larger; the tail is unused). */
  deviceBlocks: number;
  /** Block of each superblock slot. */
  superblockBlocks: readonly [number, number];
  /** First block of metadata area 0 and 1. */
  areaBlocks: readonly [number, number];
  /** Blocks per metadata area. */
  areaLength: number;
  /** First block the data allocator may use. */
  dataStart: number;
}

/** Options of `DeviceMetaStore` when it formats a device (the on-device format of docs/FORMAT.md). */
export interface FormatOptions {
  /** Filesystem block size: a power of two from 512 to 65536, a multiple of the device block size. Default max(4096, device block size). */
  blockSize?: number;
  /**
   * Bytes per metadata area (rounded up to the block size; 4 KiB to 64 MiB).
   * Default: 1/128 of the device, between 64 KiB and 4 MiB. An extent takes
   * about 4 to 12 bytes encoded and an inode about 10 plus its name, so
   * 64 KiB holds thousands of extents and 4 MiB hundreds of thousands.
   */
  metaAreaBytes?: number;
}

function isPow2In(n: unknown, lo: number, hi: number): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= lo && n <= hi && (n & (n - 1)) === 0;
}

function layoutFrom(blockSize: number, deviceBlocks: number, areaLength: number): Layout {
  const sb1 = SUPERBLOCK_OFFSETS[1] / blockSize;
  const a0 = sb1 + 1;
  const a1 = a0 + areaLength;
  return {
    blockSize,
    deviceBlocks,
    superblockBlocks: [0, sb1],
    areaBlocks: [a0, a1],
    areaLength,
    dataStart: a1 + areaLength,
  };
}

/**
 * The layout a format of `device` with `opts` produces. EINVAL for a bad
 * block size or area size, ENOSPC when the device cannot hold the
 * superblocks, both metadata areas and at least one data block.
 */
export function computeLayout(device: BlockDevice, opts: FormatOptions = {}): Layout {
  const blockSize = opts.blockSize ?? Math.max(4096, device.blockSize);
  if (!isPow2In(blockSize, 512, 65536)) {
    throw fail('EINVAL', `filesystem block size must be a power of two from 512 to 65536, got ${String(blockSize)}`);
  }
  if (blockSize < device.blockSize) {
    throw fail('EINVAL', `filesystem block size ${blockSize} is smaller than the device block size ${device.blockSize}`);
  }
  const deviceBlocks = Math.floor(device.size / blockSize);
  let areaBytes = opts.metaAreaBytes ?? Math.min(4 << 20, Math.max(64 << 10, Math.floor(device.size / 128)));
  if (!Number.isInteger(areaBytes) || areaBytes < MIN_META_AREA_BYTES || areaBytes > MAX_META_AREA_BYTES) {
    throw fail('EINVAL', `metaAreaBytes must be an integer from ${MIN_META_AREA_BYTES} to ${MAX_META_AREA_BYTES}, got ${String(areaBytes)}`);
  }
  areaBytes = Math.ceil(areaBytes / blockSize) * blockSize;
  const layout = layoutFrom(blockSize, deviceBlocks, areaBytes / blockSize);
  if (layout.dataStart >= deviceBlocks) {
    const need = (layout.dataStart + 1) * blockSize;
    throw fail(
      'ENOSPC',
      `device of ${device.size} bytes is too small for a volume: superblocks and two ${areaBytes}-byte metadata areas need ${need} bytes with one data block; use a larger device or a smaller metaAreaBytes`,
    );
  }
  return layout;
}

// ---------------------------------------------------------------------------
// Varint writer and the single validating reader.

class Writer {
  private buf = new Uint8Array(256);
  len = 0;
  private room(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + n) cap *= 2;
    const b = new Uint8Array(cap);
    b.set(this.buf.subarray(0, this.len));
    this.buf = b;
  }
  bytes(b: ArrayLike<number>): void {
    this.room(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }
  /** LEB128, 7 bits a byte, up to 2^53-1 (8 bytes). */
  uint(what: string, n: unknown): void {
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > MAX_OFFSET) {
      throw fail('EINVAL', `cannot encode metadata: ${what} must be a non-negative integer up to 2^53-1, got ${String(n)}`);
    }
    this.room(8);
    let v = n;
    while (v >= 128) {
      this.buf[this.len++] = (v % 128) | 128;
      v = Math.floor(v / 128);
    }
    this.buf[this.len++] = v;
  }
  result(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

function corrupt(what: string): never {
  throw fail('EIO', `corrupt metadata: ${what}`);
}

class Reader {
  pos = 0;
  constructor(private readonly b: Uint8Array) {}
  get left(): number {
    return this.b.length - this.pos;
  }
  uint(what: string): number {
    let v = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      if (this.pos >= this.b.length) corrupt(`${what} runs past the end of the metadata blob`);
      const byte = this.b[this.pos++]!;
      v += (byte & 127) * scale;
      if (byte < 128) {
        // Canonical encodings only: a trailing zero group would let two byte
        // strings mean the same metadata.
        if (byte === 0 && i > 0) corrupt(`${what} is not minimally encoded`);
        if (v > MAX_OFFSET) corrupt(`${what} ${v} exceeds 2^53-1`);
        return v;
      }
      scale *= 128;
    }
    corrupt(`${what} is longer than 8 bytes`);
  }
  bytes(what: string, n: number): Uint8Array {
    if (n > this.left) corrupt(`${what} (${n} bytes) runs past the end of the metadata blob`);
    const out = this.b.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
}

// ---------------------------------------------------------------------------
// The metadata blob.

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Encodes `meta` as a metadata blob of `generation`. The result is decoded
 * again before it is returned, so nothing is ever committed that `load`
 * would refuse: EINVAL names what is wrong with `meta`.
 */
export function encodeBlob(meta: VolumeMeta, generation: number): Uint8Array {
  try {
    return encodeUnchecked(meta, generation);
  } catch (e) {
    if (e instanceof TypeError) throw fail('EINVAL', `cannot encode metadata: ${e.message}`, e);
    throw e;
  }
}

function encodeUnchecked(meta: VolumeMeta, generation: number): Uint8Array {
  const w = new Writer();
  w.bytes(BLOB_MAGIC);
  w.uint('generation', generation);
  w.uint('blockSize', meta.blockSize);
  w.uint('deviceBlocks', meta.deviceBlocks);
  w.uint('dataStart', meta.dataStart);
  w.uint('nextIno', meta.nextIno);
  if (!Array.isArray(meta.inodes)) throw fail('EINVAL', 'cannot encode metadata: inodes must be an array');
  w.uint('inode count', meta.inodes.length);
  for (const ino of meta.inodes) {
    w.uint('ino', ino.ino);
    if (typeof ino.name !== 'string') throw fail('EINVAL', `cannot encode metadata: inode ${ino.ino} has no name`);
    // TextEncoder would turn a lone surrogate into U+FFFD: the name read back
    // would differ from the one committed.
    if (/\p{Surrogate}/u.test(ino.name)) throw fail('EINVAL', `cannot encode metadata: name ${JSON.stringify(ino.name)} is not valid Unicode`);
    const name = utf8.encode(ino.name);
    w.uint('name length', name.length);
    w.bytes(name);
    w.uint(`size of ${ino.name}`, ino.size);
    w.uint(`flags of ${ino.name}`, ino.flags);
    if (!Array.isArray(ino.extents)) throw fail('EINVAL', `cannot encode metadata: extents of ${ino.name} must be an array`);
    w.uint('extent count', ino.extents.length);
    let prevEnd = 0;
    for (const e of ino.extents) {
      const gap = e.fileBlock - prevEnd;
      if (!(gap >= 0)) {
        throw fail('EINVAL', `cannot encode metadata: extents of ${ino.name} are not sorted and non-overlapping at file block ${e.fileBlock}`);
      }
      w.uint('extent gap', gap);
      w.uint('extent devBlock', e.devBlock);
      if (typeof e.unwritten !== 'boolean') throw fail('EINVAL', `cannot encode metadata: extent unwritten flag of ${ino.name} must be a boolean`);
      w.uint('extent length', typeof e.blocks === 'number' ? e.blocks * 2 + (e.unwritten ? 1 : 0) : e.blocks);
      prevEnd = e.fileBlock + e.blocks;
    }
  }
  const blob = w.result();
  try {
    decodeBlob(blob, { blockSize: meta.blockSize, deviceBlocks: meta.deviceBlocks, dataStart: meta.dataStart, generation });
  } catch (e) {
    throw fail('EINVAL', `refusing to commit invalid metadata: ${(e as Error).message.replace(/^corrupt metadata: /, '')}`, e);
  }
  return blob;
}

/** What the superblock says the blob must agree with. */
interface BlobExpect {
  blockSize: number;
  deviceBlocks: number;
  dataStart: number;
  generation: number;
}

/**
 * The single door for a metadata blob read from a device: every count, block
 * number, size and name is range-checked; counts are checked against the
 * bytes left before anything loops over them. EIO ("corrupt metadata: ...")
 * on the first violation.
 */
export function decodeBlob(blob: Uint8Array, expect: BlobExpect): VolumeMeta {
  const r = new Reader(blob);
  const magic = r.bytes('magic', 4);
  for (let i = 0; i < 4; i++) if (magic[i] !== BLOB_MAGIC[i]) corrupt('bad magic at the start of the metadata blob');
  const generation = r.uint('generation');
  if (generation !== expect.generation) corrupt(`blob is of generation ${generation}, its superblock says ${expect.generation}`);
  const blockSize = r.uint('blockSize');
  const deviceBlocks = r.uint('deviceBlocks');
  const dataStart = r.uint('dataStart');
  if (blockSize !== expect.blockSize || deviceBlocks !== expect.deviceBlocks || dataStart !== expect.dataStart) {
    corrupt(
      `blob geometry (block size ${blockSize}, ${deviceBlocks} blocks, data from ${dataStart}) disagrees with its superblock (${expect.blockSize}, ${expect.deviceBlocks}, ${expect.dataStart})`,
    );
  }
  const nextIno = r.uint('nextIno');
  if (nextIno < 1) corrupt('nextIno is 0');
  const count = r.uint('inode count');
  // An inode takes at least 6 bytes (ino, name length, 1 name byte, size, flags, extent count).
  if (count > r.left / 6) corrupt(`inode count ${count} cannot fit in the ${r.left} bytes left`);
  // A file's blocks: the largest offset is 2^53-1, so no extent reaches past this block.
  const maxFileBlocks = Math.ceil((MAX_OFFSET + 1) / blockSize);
  const inodes: InodeRecord[] = [];
  const inos = new Set<number>();
  const names = new Set<string>();
  const owned: Array<[number, number, string]> = []; // [devBlock, blocks, file name]
  for (let i = 0; i < count; i++) {
    const ino = r.uint('ino');
    if (ino < 1 || ino >= nextIno) corrupt(`inode number ${ino} is outside [1, nextIno ${nextIno})`);
    if (inos.has(ino)) corrupt(`inode number ${ino} appears twice`);
    inos.add(ino);
    const nameLen = r.uint('name length');
    if (nameLen < 1 || nameLen > MAX_NAME_BYTES) corrupt(`inode ${ino}: name length ${nameLen} is outside 1..${MAX_NAME_BYTES}`);
    let name: string;
    try {
      name = utf8Strict.decode(r.bytes('name', nameLen));
    } catch (e) {
      if ((e as { code?: string }).code === 'EIO') throw e;
      corrupt(`inode ${ino}: name is not valid UTF-8`);
    }
    if (name.includes('/') || name.includes('\0') || name === '.' || name === '..') {
      corrupt(`inode ${ino}: name ${JSON.stringify(name)} is not a valid file name`);
    }
    if (names.has(name)) corrupt(`name ${JSON.stringify(name)} appears twice`);
    names.add(name);
    const size = r.uint(`size of ${name}`);
    const flags = r.uint(`flags of ${name}`);
    if (flags > 0xffffffff) corrupt(`flags of ${name} (${flags}) do not fit in 32 bits`);
    const nExt = r.uint(`extent count of ${name}`);
    // An extent takes at least 3 bytes.
    if (nExt > r.left / 3) corrupt(`extent count ${nExt} of ${name} cannot fit in the ${r.left} bytes left`);
    const extents: ExtentRecord[] = [];
    let prevEnd = 0;
    for (let k = 0; k < nExt; k++) {
      const gap = r.uint('extent gap');
      const devBlock = r.uint('extent devBlock');
      const lenField = r.uint('extent length');
      const blocks = Math.floor(lenField / 2);
      const unwritten = lenField % 2 === 1;
      const fileBlock = prevEnd + gap;
      if (blocks < 1) corrupt(`${name}: extent ${k} is empty`);
      if (fileBlock > maxFileBlocks || blocks > maxFileBlocks - fileBlock) {
        corrupt(`${name}: extent ${k} at file block ${fileBlock} reaches past the largest file offset`);
      }
      if (devBlock < dataStart || devBlock > deviceBlocks || blocks > deviceBlocks - devBlock) {
        corrupt(`${name}: extent ${k} (device blocks ${devBlock}+${blocks}) is outside the data area [${dataStart}, ${deviceBlocks})`);
      }
      extents.push({ fileBlock, devBlock, blocks, unwritten });
      owned.push([devBlock, blocks, name]);
      prevEnd = fileBlock + blocks;
    }
    inodes.push({ ino, name, size, flags, extents });
  }
  if (r.left !== 0) corrupt(`${r.left} stray bytes after the last inode`);
  // Two extents sharing a device block would let one file's writes show up
  // in another: refuse, whichever files they belong to.
  owned.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < owned.length; i++) {
    const [pStart, pLen, pName] = owned[i - 1]!;
    const [start, , name] = owned[i]!;
    if (start < pStart + pLen) corrupt(`device block ${start} belongs to both ${JSON.stringify(pName)} and ${JSON.stringify(name)}`);
  }
  return { blockSize, deviceBlocks, dataStart, nextIno, inodes };
}

// ---------------------------------------------------------------------------
// Superblocks.

const EMPTY_SLOT = 'empty slot';

interface Superblock {
  slot: number;
  generation: number;
  layout: Layout;
  blobBlock: number;
  blobLength: number;
  blobCrc: number;
}

function putU64(dv: DataView, at: number, v: number): void {
  dv.setUint32(at, v % 2 ** 32, true);
  dv.setUint32(at + 4, Math.floor(v / 2 ** 32), true);
}

function getU64(dv: DataView, at: number): number {
  const hi = dv.getUint32(at + 4, true);
  // Values above 2^53-1 are reported as Infinity so range checks refuse them.
  if (hi >= 2 ** 21) return Infinity;
  return hi * 2 ** 32 + dv.getUint32(at, true);
}

function encodeSuperblock(sb: Superblock): Uint8Array {
  const out = new Uint8Array(sb.layout.blockSize);
  const dv = new DataView(out.buffer);
  out.set(SB_MAGIC, 0);
  dv.setUint32(8, FORMAT_VERSION, true);
  dv.setUint32(12, sb.layout.blockSize, true);
  putU64(dv, 16, sb.layout.deviceBlocks);
  putU64(dv, 24, sb.generation);
  putU64(dv, 32, sb.layout.dataStart);
  putU64(dv, 40, sb.layout.areaLength);
  putU64(dv, 48, sb.blobBlock);
  putU64(dv, 56, sb.blobLength);
  dv.setUint32(64, sb.blobCrc, true);
  dv.setUint32(68, sb.slot, true);
  dv.setUint32(SB_CRC_AT, crc32c(out.subarray(0, SB_CRC_AT)), true);
  return out;
}

/**
 * The single door for a superblock read from slot `slot`: magic, version,
 * checksum, and every field against the layout it implies and the device.
 * Returns the superblock or a reason it is not valid.
 */
function parseSuperblock(raw: Uint8Array, slot: number, device: BlockDevice): Superblock | string {
  if (raw.length < SB_BYTES) return 'slot is past the end of the device';
  // All zeros is a slot never written or wiped by a format: not damage.
  if (raw.subarray(0, SB_BYTES).every((b) => b === 0)) return EMPTY_SLOT;
  for (let i = 0; i < 8; i++) if (raw[i] !== SB_MAGIC[i]) return 'no superblock magic';
  const dv = new DataView(raw.buffer, raw.byteOffset, SB_BYTES);
  if (dv.getUint32(SB_CRC_AT, true) !== crc32c(raw.subarray(0, SB_CRC_AT))) return 'superblock checksum mismatch';
  const version = dv.getUint32(8, true);
  if (version !== FORMAT_VERSION) return `format version ${version} is not supported (this code reads version ${FORMAT_VERSION})`;
  const blockSize = dv.getUint32(12, true);
  if (!isPow2In(blockSize, 512, 65536) || blockSize < device.blockSize) return `block size ${blockSize} is invalid for this device`;
  const deviceBlocks = getU64(dv, 16);
  const generation = getU64(dv, 24);
  const dataStart = getU64(dv, 32);
  const areaLength = getU64(dv, 40);
  const blobBlock = getU64(dv, 48);
  const blobLength = getU64(dv, 56);
  const blobCrc = dv.getUint32(64, true);
  const slotField = dv.getUint32(68, true);
  for (let i = 72; i < SB_CRC_AT; i++) if (raw[i] !== 0) return 'reserved superblock bytes are not zero';
  if (slotField !== slot) return `superblock belongs in slot ${slotField}, found in slot ${slot}`;
  if (!(generation >= 1 && generation <= MAX_OFFSET) || generation % 2 !== slot) return `generation ${generation} does not belong in slot ${slot}`;
  if (!(deviceBlocks >= 1) || deviceBlocks > Math.floor(device.size / blockSize)) {
    return `volume of ${deviceBlocks} blocks of ${blockSize} bytes does not fit the ${device.size}-byte device`;
  }
  if (!(areaLength >= 1) || areaLength * blockSize > MAX_META_AREA_BYTES) return `metadata area of ${areaLength} blocks is out of range`;
  const layout = layoutFrom(blockSize, deviceBlocks, areaLength);
  if (dataStart !== layout.dataStart || dataStart >= deviceBlocks) return `data start ${dataStart} does not match the layout (${layout.dataStart})`;
  if (blobBlock !== layout.areaBlocks[generation % 2]) return `blob at block ${blobBlock} is not in metadata area ${generation % 2}`;
  if (!(blobLength >= 1) || blobLength > areaLength * blockSize) return `blob length ${blobLength} does not fit its metadata area`;
  return { slot, generation, layout, blobBlock, blobLength, blobCrc };
}

// ---------------------------------------------------------------------------
// Commit and load.

/** What a commit needs to know about the newest commit on the device. */
export interface CommitState {
  layout: Layout;
  /** Generation of the newest commit (0 before the first). */
  generation: number;
}

/** What loading the on-device format found: the newest valid commit and how the slots look. */
export interface LoadResult {
  meta: VolumeMeta;
  state: CommitState;
  /** Slot the loaded commit came from. */
  slot: number;
  /**
   * Set when the other slot is not valid, with the reason, so a tool can
   * warn: either a commit was interrupted there (normal after a crash) or
   * the newest commit was damaged and `meta` is the one before it.
   */
  otherSlotInvalid?: { slot: number; reason: string };
  /** The other slot's commit when it is valid too: what a load falls back to if the newest is damaged later. */
  previous?: VolumeMeta;
}

async function writeBlocks(device: BlockDevice, offset: number, data: Uint8Array, blockSize: number): Promise<void> {
  const padded = new Uint8Array(Math.ceil(data.length / blockSize) * blockSize);
  padded.set(data);
  await device.write(offset, padded);
}

/**
 * Commits `meta` as the next generation after `state`, copy-on-write: the
 * blob goes to the metadata area the newest commit does not use, is
 * flushed, then the superblock slot of the new generation is written and
 * flushed. Returns the new state. EINVAL when `meta` is invalid or does
 * not match the layout; ENOSPC when its encoding does not fit a metadata
 * area; a device error as the device reported it (the previous commit then
 * stays the one `load` finds).
 */
export async function commit(device: BlockDevice, meta: VolumeMeta, state: CommitState): Promise<CommitState> {
  const { layout } = state;
  if (meta.blockSize !== layout.blockSize || meta.deviceBlocks !== layout.deviceBlocks || meta.dataStart !== layout.dataStart) {
    throw fail(
      'EINVAL',
      `metadata geometry (block size ${meta.blockSize}, ${meta.deviceBlocks} blocks, data from ${meta.dataStart}) does not match the volume's (${layout.blockSize}, ${layout.deviceBlocks}, ${layout.dataStart})`,
    );
  }
  const generation = state.generation + 1;
  if (generation > MAX_OFFSET) throw fail('EINVAL', 'commit generation would exceed 2^53-1');
  const blob = encodeBlob(meta, generation);
  const areaBytes = layout.areaLength * layout.blockSize;
  if (blob.length > areaBytes) {
    throw fail(
      'ENOSPC',
      `metadata of ${meta.inodes.length} files needs ${blob.length} bytes but a metadata area holds ${areaBytes}; format the volume with a larger metaAreaBytes or use fewer, less fragmented files`,
    );
  }
  const area = generation % 2;
  const blobBlock = layout.areaBlocks[area];
  await writeBlocks(device, blobBlock * layout.blockSize, blob, layout.blockSize);
  await device.flush();
  const sb = encodeSuperblock({ slot: area, generation, layout, blobBlock, blobLength: blob.length, blobCrc: crc32c(blob) });
  await device.write(layout.superblockBlocks[area] * layout.blockSize, sb);
  await device.flush();
  return { layout, generation };
}

/** Zeroes both superblock slots and flushes, so no earlier volume's commit survives a format. */
async function wipeSuperblocks(device: BlockDevice, layout: Layout): Promise<void> {
  const zero = new Uint8Array(layout.blockSize);
  for (const b of layout.superblockBlocks) await device.write(b * layout.blockSize, zero);
  await device.flush();
}

/**
 * Formats `device`: wipes both superblock slots (so no older volume's
 * commit can win), then commits an empty volume as generation 1. Returns
 * what `load` would now return.
 */
export async function formatDevice(device: BlockDevice, opts: FormatOptions = {}): Promise<LoadResult> {
  const layout = computeLayout(device, opts);
  await wipeSuperblocks(device, layout);
  const meta: VolumeMeta = { blockSize: layout.blockSize, deviceBlocks: layout.deviceBlocks, dataStart: layout.dataStart, nextIno: 1, inodes: [] };
  const state = await commit(device, meta, { layout, generation: 0 });
  return { meta, state, slot: state.generation % 2 };
}

/** Reads and validates one slot and its blob; a reason string when it is not valid. */
async function readSlot(device: BlockDevice, slot: number): Promise<{ meta: VolumeMeta; sb: Superblock } | string> {
  const offset = SUPERBLOCK_OFFSETS[slot]!;
  const len = Math.max(device.blockSize, 512);
  if (offset + len > device.size) return 'slot is past the end of the device';
  const raw = new Uint8Array(len);
  await device.read(offset, raw);
  const sb = parseSuperblock(raw, slot, device);
  if (typeof sb === 'string') return sb;
  const { layout } = sb;
  // Read whole device blocks covering the blob; bounded by MAX_META_AREA_BYTES.
  const dbs = device.blockSize;
  const readLen = Math.ceil(sb.blobLength / dbs) * dbs;
  const buf = new Uint8Array(readLen);
  await device.read(sb.blobBlock * layout.blockSize, buf);
  const blob = buf.subarray(0, sb.blobLength);
  if (crc32c(blob) !== sb.blobCrc) return `metadata blob of generation ${sb.generation} fails its checksum`;
  try {
    const meta = decodeBlob(blob, { blockSize: layout.blockSize, deviceBlocks: layout.deviceBlocks, dataStart: layout.dataStart, generation: sb.generation });
    return { meta, sb };
  } catch (e) {
    if ((e as { code?: string }).code === 'EIO') return (e as Error).message;
    throw e;
  }
}

/**
 * Loads the newest valid commit: both slots are read, and a slot counts only
 * if its superblock checksum, every superblock field, its blob's checksum
 * and the blob's full decoding are valid. The newest valid one wins; if the
 * newer slot is damaged the older valid one is returned, with
 * `otherSlotInvalid` saying why. Neither valid: EINVAL when neither slot even
 * has the magic ("not a volume"), EIO otherwise, naming what failed in each
 * slot. A device read error propagates as the device reported it.
 */
export async function load(device: BlockDevice): Promise<LoadResult> {
  const results = [await readSlot(device, 0), await readSlot(device, 1)];
  const valid = results.flatMap((r) => (typeof r === 'string' ? [] : [r]));
  valid.sort((a, b) => b.sb.generation - a.sb.generation);
  const best = valid[0];
  if (best === undefined) {
    const reasons = results as string[];
    const blank = (r: string) => r === EMPTY_SLOT || r === 'slot is past the end of the device';
    if (reasons.every(blank)) {
      throw fail('EINVAL', 'no iomap-verity volume on this device (no superblock in either slot): format it first');
    }
    if (reasons.every((r) => blank(r) || r === 'no superblock magic')) {
      // Something is there, but not ours: never suggest formatting over it.
      throw fail(
        'EINVAL',
        `no iomap-verity volume on this device (slot 0: ${reasons[0]}; slot 1: ${reasons[1]}): if it held one, both superblocks are damaged`,
      );
    }
    throw fail('EIO', `no valid commit on this device: slot 0: ${reasons[0]}; slot 1: ${reasons[1]}`);
  }
  const result: LoadResult = {
    meta: best.meta,
    state: { layout: best.sb.layout, generation: best.sb.generation },
    slot: best.sb.slot,
  };
  if (valid[1] !== undefined) result.previous = valid[1].meta;
  const other = results[1 - best.sb.slot]!;
  if (typeof other === 'string' && other !== EMPTY_SLOT) {
    result.otherSlotInvalid = { slot: 1 - best.sb.slot, reason: other };
  }
  return result;
}

// ---------------------------------------------------------------------------
// The MetaStore face the filesystem uses.

/**
 * Persists a volume's metadata on its own device, in this format. It has the
 * shape of src/fs/meta-store.ts's `MetaStore` (`load`, `commit`,
 * `dataStart`). Construct it with `FormatOptions` to format: `dataStart` is
 * known at once and the first `commit` formats the device (wiping both
 * superblock slots) before committing. Construct it without them to open:
 * `load()` reads the device; `dataStart` and `commit` need that first
 * (EINVAL otherwise).
 */
export class DeviceMetaStore {
  private state: CommitState | undefined;
  private readonly formatLayout: Layout | undefined;
  /** What the last `load` found wrong with the other slot, if anything. */
  otherSlotInvalid: { slot: number; reason: string } | undefined;
  /** The other slot's valid commit at the last `load` (see MetaStore.fallbackMeta). */
  fallbackMeta: VolumeMeta | undefined;

  constructor(
    private readonly device: BlockDevice,
    formatOpts?: FormatOptions,
  ) {
    this.formatLayout = formatOpts === undefined ? undefined : computeLayout(device, formatOpts);
  }

  /** Blocks [0, dataStart) belong to the format. */
  get dataStart(): number {
    const layout = this.state?.layout ?? this.formatLayout;
    if (layout === undefined) throw fail('EINVAL', 'DeviceMetaStore: load() the volume (or construct with format options) before asking for dataStart');
    return layout.dataStart;
  }

  /** Generation of the newest commit this store knows (0 before any). */
  get generation(): number {
    return this.state?.generation ?? 0;
  }

  async load(): Promise<VolumeMeta> {
    const r = await load(this.device);
    this.state = r.state;
    this.otherSlotInvalid = r.otherSlotInvalid;
    this.fallbackMeta = r.previous;
    return r.meta;
  }

  async commit(meta: VolumeMeta): Promise<void> {
    if (this.state === undefined) {
      if (this.formatLayout === undefined) throw fail('EINVAL', 'DeviceMetaStore: load() the volume before committing to it');
      await wipeSuperblocks(this.device, this.formatLayout);
      this.state = await commit(this.device, meta, { layout: this.formatLayout, generation: 0 });
      return;
    }
    this.state = await commit(this.device, meta, this.state);
  }
}
