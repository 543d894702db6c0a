/**
 * The public face of the fs-verity library: what src/index.ts exports, and
 * that importing it does no work.
 */
import { describe, expect, it } from 'vitest';
import * as api from '../../src/index.js';

describe('public fs-verity API', () => {
  it('exports the names docs/DESIGN-NOTES.md binds and the pieces a filesystem builds on', () => {
    for (const name of [
      'fsverityDigest',
      'fsverityDigestFile',
      'validateDigestParams',
      'validateSealParams',
      'computeMerkleTreeParams',
      'encodeDescriptor',
      'validateDescriptor',
      'computeFileDigest',
      'formatDigest',
      'MerkleTreeBuilder',
      'createBlockHasher',
      'HASH_ALGORITHMS',
      'IomapVerityError',
      'isErrno',
    ]) {
      expect(api, name).toHaveProperty(name);
    }
  });

  it('digests through the index like fsverity digest does', async () => {
    // `printf abc > f; fsverity digest f` with fsverity-utils 1.5.
    const r = await api.fsverityDigest(new TextEncoder().encode('abc'));
    expect(r.formatted).toBe('sha256:700b6bd8510f0b4f9bac8b9cf0459151a1c4a99f467892bb4bd289a67df8e19c');
    expect((await api.fsverityDigest([new Uint8Array([97, 98]), new Uint8Array([99])])).formatted).toBe(r.formatted);
    expect(r.descriptor.length).toBe(256);
  });
});
