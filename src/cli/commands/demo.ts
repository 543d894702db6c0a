/**
 * `iomap-verity demo`: digest a generated sample file and explain every
 * line it prints. When fsverity-utils is installed, it runs it on the same
 * file and shows that both agree.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { computeMerkleTreeParams, fsverityDigestFile, toHex, validateDigestParams } from '../../index.js';
import { EXIT_FAILURE, type CliIo, type Command } from '../command.js';

const SAMPLE_SIZE = 3 * 1024 * 1024 + 12345;

/** A sample with some structure: pseudo-random data, a run of zeros (a hole), more data. */
function makeSample(): Uint8Array {
  const data = new Uint8Array(SAMPLE_SIZE);
  let x = 0x9e3779b9;
  for (let i = 0; i < data.length; i++) {
    if (i >= 1 << 20 && i < 2 << 20) continue;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    data[i] = x & 0xff;
  }
  return data;
}

async function run(_args: string[], io: CliIo): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'iomap-verity-demo-'));
  const path = join(dir, 'sample.bin');
  try {
    writeFileSync(path, makeSample());
    const r = await fsverityDigestFile(path, { merkleTree: true });
    const shape = computeMerkleTreeParams(validateDigestParams(), r.dataSize);
    const out = (s: string) => io.stdout.write(`${s}\n`);
    out(`iomap-verity demo: the fs-verity digest of a generated file`);
    out('');
    out(`file         ${path} (${r.dataSize} bytes: 1 MiB of data, 1 MiB of zeros, then data)`);
    out(`parameters   ${r.algorithm}, 4096-byte Merkle blocks, no salt (fsverity's defaults)`);
    out(`tree         ${shape.numLevels} levels, ${shape.treeBlocks} blocks (${r.merkleTree!.length} bytes): ` +
      `${shape.dataBlocks} data blocks, ${shape.hashesPerBlock} hashes per block; levels stored root first: ` +
      shape.levelBlocks.map((n, l) => `level ${l} has ${n}`).reverse().join(', '));
    out(`root hash    ${toHex(r.rootHash)}`);
    out(`             the hash of the single top tree block; every data block is reachable from it`);
    out(`descriptor   ${toHex(r.descriptor.subarray(0, 16))}... (256 bytes: version, algorithm, block size, size, root hash, salt)`);
    out(`digest       ${r.formatted}`);
    out(`             the hash of the descriptor: what Linux reports for this file once fs-verity is enabled on it`);
    const fsverity = spawnSync('fsverity', ['digest', path], { encoding: 'utf8' });
    if (fsverity.status === 0) {
      const theirs = fsverity.stdout.split(' ')[0];
      out('');
      out(`fsverity-utils says ${theirs}: ${theirs === r.formatted ? 'the same digest' : 'A DIFFERENT DIGEST'}`);
      if (theirs !== r.formatted) return EXIT_FAILURE;
    } else {
      out('');
      out(`(install fsverity-utils and run \`fsverity digest FILE\` to compare; \`iomap-verity digest FILE\` prints the same line)`);
    }
    return 0;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export const demoCommand: Command = {
  name: 'demo',
  summary: 'digest a generated sample file and explain what is printed',
  usage: 'Usage:\n    iomap-verity demo\n',
  run,
};
