/**
 * `iomap-verity demo` (`npm start`): the main job on an embedded default.
 * In a temporary directory it formats a volume image, writes a generated
 * file of a few tens of MiB (with a hole), seals it with fs-verity, prints
 * its digest beside the standalone `fsverityDigest` of the same bytes (and
 * fsverity-utils' when installed), reads it back verified, flips one byte
 * of the file's data inside the image, shows the read refused with EIO, and
 * cleans up. Each step says what happened in plain words.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileDevice, fsverityDigest, isErrno, Volume } from '../../index.js';
import { EXIT_FAILURE, type CliIo, type Command } from '../command.js';

const MiB = 1 << 20;
const SAMPLE_SIZE = 24 * MiB + 12345;
/** [HOLE_AT, HOLE_AT + HOLE_LEN) is never written: a hole in the extent map, zeros to a reader. */
const HOLE_AT = 8 * MiB;
const HOLE_LEN = 4 * MiB;
/** Where the demo damages the file. */
const FLIP_AT = 17 * MiB + 4242;

function makeSample(): Uint8Array {
  const data = new Uint8Array(SAMPLE_SIZE);
  let x = 0x9e3779b9;
  for (let i = 0; i < data.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    data[i] = x & 0xff;
  }
  data.fill(0, HOLE_AT, HOLE_AT + HOLE_LEN);
  return data;
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.from(a).equals(Buffer.from(b));
}

async function run(_args: string[], io: CliIo): Promise<number> {
  const out = (s = '') => io.stdout.write(`${s}\n`);
  const dir = mkdtempSync(join(tmpdir(), 'iomap-verity-demo-'));
  const img = join(dir, 'volume.img');
  try {
    out('iomap-verity demo: a file on a block device, sealed with fs-verity, read back verified');
    out();
    const data = makeSample();
    let dev = await FileDevice.open(img, { blockSize: 512, size: 128 * MiB, create: true });
    let vol = await Volume.format(dev, { blockSize: 4096, maxFolioSize: 2 * MiB, cacheBytes: 32 * MiB });
    out(`1. Formatted a 128 MiB volume image at ${img}`);
    out('   (4 KiB blocks; the page cache holds up to 2 MiB folios in WebAssembly memory, 32 MiB of them at most).');

    let f = await vol.create('sample.bin');
    await f.write(0, data.subarray(0, HOLE_AT));
    await f.write(HOLE_AT + HOLE_LEN, data.subarray(HOLE_AT + HOLE_LEN));
    await f.fsync();
    out(`2. Wrote sample.bin: ${data.length} bytes of generated data, leaving 4 MiB at 8 MiB unwritten (a hole),`);
    out('   and fsync()ed it: data written back through iomap mappings, metadata committed.');

    let t = performance.now();
    await f.enableVerity();
    const sealMs = performance.now() - t;
    const measured = await f.measureVerity();
    out(`3. Sealed it with fs-verity in ${sealMs.toFixed(0)} ms: a Merkle tree of SHA-256 hashes over 4 KiB blocks, stored`);
    out('   past end-of-file (tree blocks covering only the hole are left unstored), then a descriptor; the file is now read-only.');
    out(`   file digest (measureVerity)    ${measured.formatted}`);
    const standalone = await fsverityDigest(data);
    out(`   fsverityDigest of the bytes    ${standalone.formatted}`);
    if (standalone.formatted !== measured.formatted) {
      out('   THE DIGESTS DIFFER: this is a bug.');
      return EXIT_FAILURE;
    }
    const probe = join(dir, 'sample.copy');
    writeFileSync(probe, data);
    const fsverity = spawnSync('fsverity', ['digest', probe], { encoding: 'utf8' });
    if (fsverity.status === 0) {
      const theirs = fsverity.stdout.split(' ')[0]!;
      out(`   fsverity digest (Linux tools)  ${theirs}`);
      if (theirs !== measured.formatted) return EXIT_FAILURE;
      out('   All three agree: the engine, the standalone library and fsverity-utils compute the same digest.');
    } else {
      out('   The two agree. (Install fsverity-utils to see `fsverity digest` print the same string.)');
    }

    await vol.close();
    await dev.close();
    dev = await FileDevice.open(img, { blockSize: 512 });
    vol = await Volume.open(dev);
    f = await vol.open('sample.bin');
    t = performance.now();
    const back = await f.read(0, f.size);
    const readMs = performance.now() - t;
    if (!equal(back, data)) {
      out('   THE DATA READ BACK DIFFERS: this is a bug.');
      return EXIT_FAILURE;
    }
    out(`4. Reopened the volume and read the file back with a cold cache: every 4 KiB block was checked against`);
    out(`   the tree up to the root hash before it was cached. ${back.length} bytes, identical, ` +
      `${((back.length / MiB) / (readMs / 1000)).toFixed(0)} MiB/s.`);
    await vol.close();
    await dev.close();

    const image = readFileSync(img);
    const at = image.indexOf(Buffer.from(data.subarray(FLIP_AT, FLIP_AT + 64)));
    if (at < 0) {
      out('   could not find the sample in the image: this is a bug.');
      return EXIT_FAILURE;
    }
    image[at] ^= 0x01;
    writeFileSync(img, image);
    out(`5. Flipped one bit of the image at byte ${at}, inside the file's data at offset ${FLIP_AT}`);
    out('   (as a failing disk or someone with access to the raw device might).');

    dev = await FileDevice.open(img, { blockSize: 512 });
    vol = await Volume.open(dev);
    f = await vol.open('sample.bin');
    try {
      await f.read(FLIP_AT - 100, 200);
      out('   THE DAMAGED READ SUCCEEDED: this is a bug.');
      return EXIT_FAILURE;
    } catch (e) {
      if (!isErrno(e, 'EIO')) throw e;
      out(`6. Reading that range is refused with ${e.code}:`);
      out(`   ${e.message}`);
    }
    const good = await f.read(0, MiB);
    out(`   Reads elsewhere still work (${good.length} bytes at offset 0 verified and returned), and nothing`);
    out('   unverified was ever handed out or cached.');
    await vol.close();
    await dev.close();
    out();
    out(`Cleaned up ${dir}.`);
    return 0;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `iomap-verity demo`: the main job (`npm start`) on a built-in example. */
export const demoCommand: Command = {
  name: 'demo',
  summary: 'seal a file on a volume image, read it back verified, then show a damaged read refused',
  usage: 'Usage:\n    iomap-verity demo\n',
  run,
};
