/**
 * A sparse file of over 4 GiB (16 GiB with IOMAP_VERITY_SOAK=1) made with
 * ftruncate: the digest must equal `fsverity digest`'s while memory stays
 * bounded (one I/O buffer plus one block per level), and the tree streams
 * out through `treeSink` without being held.
 */
import { closeSync, ftruncateSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fsverityDigestFile } from '../../src/verity/digest-file.js';
import { computeMerkleTreeParams, validateDigestParams } from '../../src/verity/params.js';
import { fillRandom } from '../fixtures/generate.mjs';
import { fsverity, HAVE_FSVERITY, requireOracleInCi } from '../helpers/fsverity.js';

const SOAK = process.env.IOMAP_VERITY_SOAK === '1';
const SIZE = (SOAK ? 16 : 4) * 2 ** 30 + 12345;
const MiB = 2 ** 20;

describe(`sparse file of ${(SIZE / 2 ** 30).toFixed(1)} GiB`, () => {
  const dir = mkdtempSync(join(tmpdir(), 'iomap-verity-sparse-'));
  const path = join(dir, 'sparse');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('digests like fsverity digest in bounded memory', async () => {
    requireOracleInCi();
    const fd = openSync(path, 'w');
    try {
      ftruncateSync(fd, SIZE);
      // Data at the start, at an unaligned spot in the middle, across the
      // 4 GiB mark, and in the last partial block.
      for (const [at, len] of [[0, 100_000], [1_234_567_891, 70_000], [2 ** 32 - 5000, 10_000], [SIZE - 3000, 3000]] as const) {
        writeSync(fd, fillRandom(new Uint8Array(len), at + 1), 0, len, at);
      }
    } finally {
      closeSync(fd);
    }
    globalThis.gc?.();
    const base = process.memoryUsage().rss;
    let peak = base;
    let treeBytes = 0;
    let treeEnd = 0;
    const t0 = Date.now();
    const r = await fsverityDigestFile(path, {
      onProgress: () => {
        peak = Math.max(peak, process.memoryUsage().rss);
      },
      treeSink: (offset, block) => {
        treeBytes += block.length;
        treeEnd = Math.max(treeEnd, offset + block.length);
      },
    });
    const ms = Date.now() - t0;
    const grown = (peak - base) / MiB;
    console.log(`fsverityDigestFile: ${(SIZE / 2 ** 30).toFixed(1)} GiB sparse in ${ms} ms, rss ${(base / MiB).toFixed(0)} -> peak ${(peak / MiB).toFixed(0)} MiB`);
    expect(r.dataSize).toBe(SIZE);
    const shape = computeMerkleTreeParams(validateDigestParams(), SIZE);
    expect(treeBytes).toBe(shape.treeSize);
    expect(treeEnd).toBe(shape.treeSize);
    // The worker starts with vitest loaded; the digest itself may add a
    // few MiB of I/O buffer and tree blocks, far from 128 MiB.
    expect(grown).toBeLessThan(48);
    if (HAVE_FSVERITY) {
      const theirs = fsverity(['digest', path]);
      expect(theirs.status).toBe(0);
      expect(theirs.stdout).toBe(`${r.formatted} ${path}\n`);
    }
  });
});
