/**
 * Parameter validation, the tree's shape and the descriptor's single
 * validating door. Acceptance is checked against the real `fsverity digest`
 * where it is installed.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isErrno } from '../../src/errors.js';
import {
  computeFileDigest,
  DESCRIPTOR_SIZE,
  encodeDescriptor,
  formatDigest,
  validateDescriptor,
} from '../../src/verity/descriptor.js';
import { fsverityDigest } from '../../src/verity/digest.js';
import { HASH_ALGORITHMS, hashAlgorithmById, hashAlgorithmByName } from '../../src/verity/hash-algs.js';
import {
  computeMerkleTreeParams,
  validateDigestParams,
  validateSealParams,
  type VerityParamsOptions,
} from '../../src/verity/params.js';
import { fsverity, requireOracleInCi } from '../helpers/fsverity.js';
import { describeWithTool } from '../helpers/tools.js';

function refusal(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (isErrno(e)) return `${e.code}: ${e.message}`;
    throw e;
  }
  return 'accepted';
}

describe('hash algorithm table', () => {
  it('numbers and sizes as fs-verity defines them', () => {
    expect(HASH_ALGORITHMS.map((a) => [a.name, a.id, a.digestSize, a.inputBlockSize])).toEqual([
      ['sha256', 1, 32, 64],
      ['sha512', 2, 64, 128],
    ]);
    expect(hashAlgorithmByName('sha512')?.id).toBe(2);
    expect(hashAlgorithmByName('SHA256')).toBeUndefined();
    expect(hashAlgorithmById(3)).toBeUndefined();
  });
});

describe('validateDigestParams', () => {
  it('defaults to sha256, 4096-byte blocks, no salt', () => {
    const p = validateDigestParams();
    expect([p.algorithm.name, p.blockSize, p.logBlockSize, p.salt.length]).toEqual(['sha256', 4096, 12, 0]);
  });

  it('takes every power of two from two digests to 2^30', () => {
    for (const alg of ['sha256', 'sha512'] as const) {
      const min = alg === 'sha256' ? 64 : 128;
      for (let bs = min; bs <= 2 ** 30; bs *= 2) expect(validateDigestParams({ hashAlgorithm: alg, blockSize: bs }).blockSize).toBe(bs);
    }
  });

  it.each<[string, VerityParamsOptions, RegExp]>([
    ['3000-byte blocks', { blockSize: 3000 }, /EINVAL: .*3000.*power of two/],
    ['0-byte blocks', { blockSize: 0 }, /EINVAL: .*power of two/],
    ['negative blocks', { blockSize: -4096 }, /EINVAL/],
    ['fractional blocks', { blockSize: 4096.5 }, /EINVAL/],
    ['NaN blocks', { blockSize: Number.NaN }, /EINVAL/],
    ['32-byte blocks for sha256', { blockSize: 32 }, /EINVAL: .*too small for sha256.*two 32-byte digests/],
    ['64-byte blocks for sha512', { hashAlgorithm: 'sha512', blockSize: 64 }, /EINVAL: .*too small for sha512/],
    ['2^31-byte blocks', { blockSize: 2 ** 31 }, /EINVAL: .*too large.*1073741824/],
    ['33-byte salt', { salt: new Uint8Array(33) }, /EINVAL: salt of 33 bytes.*at most 32/],
    ['salt not bytes', { salt: 'ab' as unknown as Uint8Array }, /EINVAL: the salt must be a Uint8Array/],
    ['unknown algorithm', { hashAlgorithm: 'md5' as 'sha256' }, /EINVAL: unknown hash algorithm "md5".*sha256, sha512/],
  ])('refuses %s', (_n, opts, re) => {
    expect(refusal(() => validateDigestParams(opts))).toMatch(re);
  });

  it('keeps its own copy of the salt', () => {
    const salt = new Uint8Array([1, 2, 3]);
    const p = validateDigestParams({ salt });
    salt[0] = 9;
    expect([...p.salt]).toEqual([1, 2, 3]);
  });
});

describe('validateSealParams (the kernel rules)', () => {
  it('takes 1024..65536 and refuses what digest alone would take', () => {
    expect(validateSealParams({ blockSize: 1024 }).blockSize).toBe(1024);
    expect(validateSealParams({ blockSize: 65536, hashAlgorithm: 'sha512' }).blockSize).toBe(65536);
    expect(refusal(() => validateSealParams({ blockSize: 512 }))).toMatch(/EINVAL: .*too small for enabling fs-verity.*1024/);
    expect(refusal(() => validateSealParams({ blockSize: 131072 }))).toMatch(/EINVAL: .*too large for enabling fs-verity.*65536/);
    expect(refusal(() => validateSealParams({ blockSize: 3000 }))).toMatch(/power of two/);
  });
});

describeWithTool('fsverity', 'acceptance agrees with fsverity digest', () => {
  const dir = mkdtempSync(join(tmpdir(), 'iomap-verity-params-'));
  const file = join(dir, 'f');
  writeFileSync(file, 'x');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  // 2^25..2^30 are accepted too (see above) but make fsverity allocate
  // up to 1 GiB per level: the sweep stops at 16 MiB, plus 2^31.
  const sizes = [...Array.from({ length: 25 }, (_, i) => 2 ** i), 2 ** 31, 3000, 96, 4097];
  it.each(['sha256', 'sha512'] as const)('block sizes and salts with %s', (alg) => {
    for (const bs of sizes) {
      const ours = refusal(() => validateDigestParams({ hashAlgorithm: alg, blockSize: bs })) === 'accepted';
      const theirs = fsverity(['digest', file, `--hash-alg=${alg}`, `--block-size=${bs}`]).status === 0;
      expect(ours, `block size ${bs}`).toBe(theirs);
    }
    for (const n of [0, 1, 31, 32, 33, 64]) {
      const ours = refusal(() => validateDigestParams({ hashAlgorithm: alg, salt: new Uint8Array(n) })) === 'accepted';
      const theirs = fsverity(['digest', file, `--hash-alg=${alg}`, `--salt=${'00'.repeat(n)}`]).status === 0;
      expect(ours, `salt of ${n} bytes`).toBe(theirs);
    }
  });
});

describe('the oracle', () => {
  it('is installed when CI is set', () => {
    expect(() => requireOracleInCi()).not.toThrow();
  });
});

describe('computeMerkleTreeParams', () => {
  it('follows the kernel: level 0 holds data hashes, stored root level first', () => {
    const p = computeMerkleTreeParams(validateDigestParams(), 128 * 128 * 4096 + 1);
    expect(p.hashesPerBlock).toBe(128);
    expect(p.logArity).toBe(7);
    expect(p.dataBlocks).toBe(16385);
    expect(p.levelBlocks).toEqual([129, 2, 1]);
    expect(p.levelStart).toEqual([3, 1, 0]);
    expect(p.treeBlocks).toBe(132);
    expect(p.treeSize).toBe(132 * 4096);
  });

  it('has no tree for empty and one-block files', () => {
    const params = validateDigestParams();
    for (const size of [0, 1, 4096]) expect(computeMerkleTreeParams(params, size).treeSize).toBe(0);
    expect(computeMerkleTreeParams(params, 4097).levelBlocks).toEqual([1]);
  });

  it('refuses sizes that are not offsets', () => {
    const params = validateDigestParams();
    expect(refusal(() => computeMerkleTreeParams(params, -1))).toMatch(/^EINVAL/);
    expect(refusal(() => computeMerkleTreeParams(params, 2 ** 60))).toMatch(/^EFBIG/);
  });

  it('matches the tree fsverityDigest builds', async () => {
    for (const [alg, bs, size] of [['sha256', 64, 1000], ['sha512', 128, 5000], ['sha256', 1024, 40000]] as const) {
      const params = validateDigestParams({ hashAlgorithm: alg, blockSize: bs });
      const r = await fsverityDigest(new Uint8Array(size).fill(7), { hashAlgorithm: alg, blockSize: bs, merkleTree: true });
      expect(r.merkleTree!.length).toBe(computeMerkleTreeParams(params, size).treeSize);
    }
  });
});

describe('descriptor', () => {
  const params = validateDigestParams({ salt: new Uint8Array([0xaa, 0xbb]) });
  const root = new Uint8Array(32).fill(0x11);
  const good = encodeDescriptor(params, 123456789012, root);

  it('encodes the fs-verity layout', () => {
    expect(good.length).toBe(DESCRIPTOR_SIZE);
    expect([...good.subarray(0, 8)]).toEqual([1, 1, 12, 2, 0, 0, 0, 0]);
    expect(new DataView(good.buffer).getBigUint64(8, true)).toBe(123456789012n);
    expect([...good.subarray(16, 48)]).toEqual([...root]);
    expect(good.subarray(48, 80).every((b) => b === 0)).toBe(true);
    expect([...good.subarray(80, 83)]).toEqual([0xaa, 0xbb, 0]);
    expect(good.subarray(112).every((b) => b === 0)).toBe(true);
  });

  it('round-trips through validateDescriptor', () => {
    const d = validateDescriptor(good);
    expect(d.params.algorithm.name).toBe('sha256');
    expect(d.params.blockSize).toBe(4096);
    expect([...d.params.salt]).toEqual([0xaa, 0xbb]);
    expect(d.dataSize).toBe(123456789012);
    expect([...d.rootHash]).toEqual([...root]);
    expect(d.signature.length).toBe(0);
  });

  it('hands back a signature that follows it, and the digest ignores it', async () => {
    const withSig = new Uint8Array(DESCRIPTOR_SIZE + 5);
    withSig.set(good);
    withSig.set([1, 2, 3, 4, 5], DESCRIPTOR_SIZE);
    new DataView(withSig.buffer).setUint32(4, 5, true);
    expect([...validateDescriptor(withSig).signature]).toEqual([1, 2, 3, 4, 5]);
    const alg = params.algorithm;
    expect(formatDigest(alg, await computeFileDigest(alg, withSig))).toBe(formatDigest(alg, await computeFileDigest(alg, good)));
  });

  const mutations: [string, (d: Uint8Array, dv: DataView) => void, RegExp][] = [
    ['version 2', (d) => { d[0] = 2; }, /EINVAL: unsupported fs-verity descriptor version 2/],
    ['version 0', (d) => { d[0] = 0; }, /EINVAL: unsupported .* version 0/],
    ['algorithm 3', (d) => { d[1] = 3; }, /EINVAL: .*unknown hash algorithm 3/],
    ['algorithm 0', (d) => { d[1] = 0; }, /EINVAL: .*unknown hash algorithm 0/],
    ['block size 2^9 for sealing', (d) => { d[2] = 9; }, /EINVAL: .*too small for enabling/],
    ['block size 2^17 for sealing', (d) => { d[2] = 17; }, /EINVAL: .*too large for enabling/],
    ['block size 2^40', (d) => { d[2] = 40; }, /EINVAL: .*impossible block size/],
    ['salt size 33', (d) => { d[3] = 33; }, /EINVAL: .*salt size 33/],
    ['a byte after the salt', (d) => { d[80 + 5] = 1; }, /EINVAL: .*after the salt/],
    ['a byte after the root hash', (d) => { d[16 + 40] = 1; }, /EINVAL: .*after the root hash/],
    ['a reserved byte', (d) => { d[255] = 1; }, /EINVAL: .*reserved/],
    ['a signature that is not there', (_d, dv) => { dv.setUint32(4, 1, true); }, /EINVAL: .*1-byte signature/],
    ['a data size past 2^53', (_d, dv) => { dv.setBigUint64(8, 2n ** 60n, true); }, /EFBIG/],
  ];
  it.each(mutations)('refuses %s', (_n, mutate, re) => {
    const d = good.slice();
    mutate(d, new DataView(d.buffer));
    expect(refusal(() => validateDescriptor(d))).toMatch(re);
  });

  it('refuses a short buffer', () => {
    expect(refusal(() => validateDescriptor(good.subarray(0, 255)))).toMatch(/EINVAL: .*too short: 255/);
  });

  it("accepts digest-only block sizes under rules: 'digest'", () => {
    const d = good.slice();
    d[2] = 6;
    expect(validateDescriptor(d, { rules: 'digest' }).params.blockSize).toBe(64);
  });

  it('refuses a root hash of the wrong length when encoding', () => {
    expect(refusal(() => encodeDescriptor(params, 1, new Uint8Array(64)))).toMatch(/EINVAL: root hash has 64 bytes/);
  });
});
