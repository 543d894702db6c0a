/** Random VolumeMeta generation shared by the format tests. */
import type { Layout } from '../../src/fs/format.js';
import type { ExtentRecord, InodeRecord, VolumeMeta } from '../../src/fs/meta.js';

export { rng } from './bytes.js';

const NAME_PARTS = ['a', 'file', 'Ünïcödé', '日本', '😀', 'x.bin', '-', '_', ' ', 'z'.repeat(40)];

/**
 * A random valid VolumeMeta for `layout`: up to `maxInodes` files with
 * unique names, sizes up to 2^53-1, flags, and extents that are sorted,
 * non-overlapping, inside the data area and disjoint across files.
 */
export function randomMeta(layout: Layout, r: () => number, maxInodes = 12, maxExtents = 8): VolumeMeta {
  const n = Math.floor(r() * (maxInodes + 1));
  const inodes: InodeRecord[] = [];
  const names = new Set<string>();
  // Device blocks handed out in increasing order from a random start, with gaps.
  let dev = layout.dataStart + Math.floor(r() * 4);
  let ino = 1;
  for (let i = 0; i < n; i++) {
    let name = '';
    do {
      name = '';
      const parts = 1 + Math.floor(r() * 3);
      for (let k = 0; k < parts; k++) name += NAME_PARTS[Math.floor(r() * NAME_PARTS.length)]!;
      name += String(Math.floor(r() * 1000));
    } while (names.has(name));
    names.add(name);
    ino += 1 + Math.floor(r() * 3);
    const extents: ExtentRecord[] = [];
    let fb = Math.floor(r() * 3);
    const nExt = Math.floor(r() * (maxExtents + 1));
    for (let k = 0; k < nExt; k++) {
      const blocks = 1 + Math.floor(r() * 5);
      if (dev + blocks > layout.deviceBlocks) break;
      extents.push({ fileBlock: fb, devBlock: dev, blocks, unwritten: r() < 0.3 });
      fb += blocks + (r() < 0.5 ? 0 : Math.floor(r() * 100));
      dev += blocks + (r() < 0.5 ? 0 : Math.floor(r() * 3));
    }
    const sizeKind = r();
    const size = sizeKind < 0.1 ? 0 : sizeKind < 0.2 ? Number.MAX_SAFE_INTEGER : Math.floor(r() * fb * layout.blockSize);
    inodes.push({ ino, name, size, flags: r() < 0.3 ? 1 : 0, extents });
  }
  // Shuffle the device placement order between files is not needed: extents
  // stay disjoint because `dev` only grows.
  return { blockSize: layout.blockSize, deviceBlocks: layout.deviceBlocks, dataStart: layout.dataStart, nextIno: ino + 1 + Math.floor(r() * 5), inodes };
}
