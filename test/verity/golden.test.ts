/**
 * Golden fixtures made by fsverity-utils 1.5 (test/fixtures/make-fixtures.mjs):
 * every block and level boundary, both algorithms, block sizes 64 B to
 * 8 MiB, salts of 0, 1 and 32 bytes, all-zero and sparse inputs. Digest,
 * tree and descriptor must match byte for byte.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fsverityDigest } from '../../src/verity/digest.js';
import { fsverityDigestFile } from '../../src/verity/digest-file.js';
import type { HashAlgorithmName } from '../../src/verity/hash-algs.js';
import { generate, type InputSpec } from '../fixtures/generate.mjs';

interface GoldenCase {
  alg: HashAlgorithmName;
  blockSize: number;
  salt: string;
  input: InputSpec;
  digest: string;
  treeSize: number;
  treeSha256: string;
  descriptorSha256: string;
}

const golden = JSON.parse(readFileSync(new URL('../fixtures/golden.json', import.meta.url), 'utf8')) as {
  oracle: string;
  cases: GoldenCase[];
};
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const name = (c: GoldenCase) =>
  `${c.alg} bs=${c.blockSize} salt=${c.salt.length / 2}B ${c.input.pattern} ${c.input.size}B`;

describe(`golden fixtures from ${golden.oracle}`, () => {
  it('cover block sizes from 64 B to 8 MiB, both algorithms, salts of 0, 1 and 32 bytes, random, zero and sparse inputs', () => {
    const bs = new Set(golden.cases.map((c) => c.blockSize));
    expect(Math.min(...bs)).toBe(64);
    expect(Math.max(...bs)).toBe(8 << 20);
    expect(new Set(golden.cases.map((c) => c.salt.length / 2))).toEqual(new Set([0, 1, 32]));
    expect(new Set(golden.cases.map((c) => c.alg))).toEqual(new Set(['sha256', 'sha512']));
    expect(new Set(golden.cases.map((c) => c.input.pattern))).toEqual(new Set(['random', 'zero', 'sparse']));
  });

  it.each(golden.cases.map((c) => [name(c), c] as const))('fsverityDigest: %s', async (_n, c) => {
    const r = await fsverityDigest(generate(c.input), {
      hashAlgorithm: c.alg,
      blockSize: c.blockSize,
      salt: Buffer.from(c.salt, 'hex'),
      merkleTree: true,
    });
    expect(r.formatted).toBe(c.digest);
    expect(r.merkleTree!.length).toBe(c.treeSize);
    expect(sha(r.merkleTree!)).toBe(c.treeSha256);
    expect(r.descriptor.length).toBe(256);
    expect(sha(r.descriptor)).toBe(c.descriptorSha256);
  });

  // The file path finds zero blocks without hashing them: run it on every
  // case with zeros in it, and on the small random ones.
  const dir = mkdtempSync(join(tmpdir(), 'iomap-verity-golden-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const fileCases = golden.cases.filter((c) => c.input.pattern !== 'random' || c.input.size <= 1 << 20);
  it.each(fileCases.map((c) => [name(c), c] as const))('fsverityDigestFile: %s', async (_n, c) => {
    const path = join(dir, 'input');
    writeFileSync(path, generate(c.input));
    const tree: Uint8Array[] = [];
    let expectOffset = 0;
    const r = await fsverityDigestFile(path, {
      hashAlgorithm: c.alg,
      blockSize: c.blockSize,
      salt: Buffer.from(c.salt, 'hex'),
      treeSink: (offset, block) => {
        tree.push(block.slice());
        expect(offset % c.blockSize).toBe(0);
        expectOffset = Math.max(expectOffset, offset + block.length);
      },
    });
    expect(r.formatted).toBe(c.digest);
    expect(expectOffset).toBe(c.treeSize);
    expect(tree.reduce((n, b) => n + b.length, 0)).toBe(c.treeSize);
    expect(sha(r.descriptor)).toBe(c.descriptorSha256);
  });
});
