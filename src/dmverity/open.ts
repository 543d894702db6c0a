/**
 * `openDmverity`: verified reads of a disk image under its dm-verity hash
 * device and a trusted root hash, from any byte source (memory, a Blob, a
 * local path, an http(s) URL, a reader of your own), as `openVerified`
 * reads fs-verity files. It is the same reader: the verity library's
 * generic opener (`openVerifiedTree`) with dm-verity's tree geometry
 * (geometry.ts), so the checks are the one `MerkleVerifier`'s.
 *
 * It lives here, not in src/verity, because the superblock and the layout
 * are dm-verity's and the verity library may not import them (the floors
 * of docs/ARCHITECTURE.md): this floor reads its own header, makes its
 * geometry and hands both down.
 *
 * Trust flows from the root hash to the top hash block, down each level,
 * to the data blocks. The superblock is not trusted for anything but the
 * parameters: a superblock that lies about them makes every hash differ
 * from the root hash, so nothing verifies.
 */
import { fail } from '../errors.js';
import { openVerifiedTree, VerifiedReader, type OpenVerifiedOptions, type VerifiedParts, type VerifiedSources, type VerifiedTreeSpec } from '../verity/verified-file.js';
import { dmverityHex } from './format.js';
import { dmverityGeometry } from './geometry.js';
import {
  computeDmverityLayout,
  parseDmverityRootHash,
  requireHashOffset,
  validateDmverityParams,
  type DmverityParams,
  type DmverityParamsOptions,
} from './params.js';
import { DMVERITY_SUPERBLOCK_SIZE, dmverityParamsFromSuperblock } from './superblock.js';

/** Where a dm-verity image comes from: any source `openVerified` takes (a path, a URL, bytes, a Blob, a reader). */
export interface DmveritySources {
  /** The data device (disk image). */
  data: VerifiedSources['data'];
  /** The hash device as `veritysetup format` wrote it; may be the same file as `data` with a hash offset. */
  hash: VerifiedSources['data'];
}

/**
 * What the caller trusts: the root hash `veritysetup format` printed, and
 * the parameters as veritysetup names them. With a superblock (the
 * default) the parameters come from it and any given here must agree;
 * with `superblock: false` they come from here, with veritysetup's
 * defaults (sha256, 4096-byte blocks, format 1, no salt).
 */
export interface DmverityTrust extends DmverityParamsOptions {
  /** The root hash, as hex (as veritysetup prints it) or bytes. */
  rootHash: string | Uint8Array;
}

/** A disk image whose every byte handed out was verified against a trusted dm-verity root hash (from `openDmverity`). */
export class DmverityFile extends VerifiedReader {
  /** The tree's parameters (from the superblock, or as given). */
  readonly params: DmverityParams;
  /** The trusted root hash, in hex as veritysetup prints it. */
  readonly rootHash: string;

  /** @internal */
  constructor(parts: VerifiedParts, params: DmverityParams, rootHash: string) {
    super(parts);
    this.params = params;
    this.rootHash = rootHash;
  }
}

interface DmSpec extends VerifiedTreeSpec {
  readonly params: DmverityParams;
}

/**
 * Open a dm-verity image for verified reads: the `read`, `readInto`,
 * `stream` and `close` of `VerifiedFile`, over `dataBlocks` ×
 * `dataBlockSize` bytes. Every byte handed out was verified first, with
 * its whole data block, up to the trusted root hash; a mismatch is EIO
 * naming the block and the level.
 *
 * Errors: EINVAL for a bad root hash (not hex, or not one digest long),
 * bad parameters, a hash device without a valid superblock at
 * `hashOffset`, or parameters that disagree with the superblock. EIO when
 * the data source is shorter than the tree covers, or longer (unless
 * `dataBlocks` is given: then only the first blocks are read, as
 * veritysetup's `--data-blocks` protects only those), or when the hash
 * device ends before its tree does. A hash device longer than its tree is
 * fine. Sources are closed on failure and by `close()`. `opts.parallel`
 * has no effect (the worker pool hashes fs-verity blocks only).
 */
export async function openDmverity(sources: DmveritySources, trust: DmverityTrust, opts: OpenVerifiedOptions = {}): Promise<DmverityFile> {
  if (typeof sources !== 'object' || sources === null || sources.data === undefined || sources.hash === undefined) {
    throw fail('EINVAL', 'openDmverity needs { data, hash }');
  }
  if (typeof trust !== 'object' || trust === null) throw fail('EINVAL', 'openDmverity needs { rootHash } as veritysetup format printed it');
  // What can be checked before anything is opened, so a typo costs no request.
  const root = parseDmverityRootHash(trust.rootHash);
  const hashOffset = requireHashOffset(trust.hashOffset);
  const withSuperblock = trust.superblock ?? true;
  const { parts, spec } = await openVerifiedTree({ data: sources.data, tree: sources.hash }, opts, async (hash, data): Promise<DmSpec> => {
    let params: DmverityParams;
    if (withSuperblock) {
      const sb = await hash.read(hashOffset, DMVERITY_SUPERBLOCK_SIZE, opts.signal);
      params = dmverityParamsFromSuperblock(sb, hashOffset, trust);
    } else {
      params = validateDmverityParams({ ...trust, superblock: false }, data.size, false);
      if (trust.dataBlocks === undefined && data.size !== undefined && data.size % params.dataBlockSize !== 0) {
        throw fail('EIO', `the data ${data.name} is ${data.size} bytes, not a whole number of ${params.dataBlockSize}-byte blocks: give dataBlocks to read the whole blocks before its end`);
      }
    }
    const layout = computeDmverityLayout(params);
    return {
      params,
      geometry: dmverityGeometry(layout),
      rootHash: parseDmverityRootHash(root, params.digestSize),
      size: params.dataBlocks * params.dataBlockSize,
      dataMayBeLonger: trust.dataBlocks !== undefined,
      // A single data block has no tree: nothing past the superblock is read.
      treeEnd: layout.levels > 0 ? layout.hashDeviceSize : 0,
      treeMayBeLonger: true,
      says: withSuperblock ? 'the superblock' : 'the parameters',
    };
  });
  return new DmverityFile(parts, spec.params, dmverityHex(root));
}
