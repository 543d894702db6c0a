/**
 * `openVerified`: a file read from anywhere (memory, a Blob, a local path,
 * an http(s) URL, a caller's reader) and verified against the fs-verity
 * digest a caller trusts, with the tree and descriptor that `fsverity
 * digest --out-merkle-tree --out-descriptor` writes.
 *
 * Trust flows one way: the digest vouches for the descriptor (its hash),
 * the descriptor (through `validateDescriptor`) for the root hash, the
 * root hash for the top tree block, each tree block for the level below,
 * and level 0 for the data blocks. The checks are the engine's own
 * `MerkleVerifier`; verified tree blocks are kept in its bounded cache as
 * private copies, so a source that changes later cannot slip under them.
 * A byte is handed out only after the whole block it sits in verified.
 */
import { fail, isUint8Array, MAX_OFFSET } from '../errors.js';
import { openSource, type ByteSource, type SourceOptions, type Src } from '../source/index.js';
import { computeFileDigest, DESCRIPTOR_SIZE, encodeDescriptor, formatDigest, toHex, validateDescriptor, type VerityDescriptor } from './descriptor.js';
import { hashAlgorithmById, hashAlgorithmByName, type HashAlgorithm, type HashAlgorithmName } from './hash-algs.js';
import { computeMerkleTreeParams, validateDigestParams } from './params.js';
import { leafHashPool, poolTakes, type LeafHashPool } from './pool.js';
import { fsverityGeometry, type TreeGeometry } from './geometry.js';
import { MerkleVerifier, type MerkleTreeSource } from './verify.js';

/** Where the three parts of a verified file come from. */
export interface VerifiedSources {
  data: Src;
  /** The Merkle tree as `fsverity digest --out-merkle-tree` writes it (may be empty for files of one block). */
  tree: Src;
  /** The descriptor as `fsverity digest --out-descriptor` writes it; not needed with a trusted root hash. */
  descriptor?: Src;
}

/**
 * What the caller trusts: the file digest as `fsverity digest` prints it
 * (`sha256:<hex>`), or the parts of a descriptor it trusts already (root
 * hash, size, and the parameters when they are not the defaults).
 * Signatures checked against certificates will be a third form.
 */
export type VerifiedTrust =
  | { digest: string }
  | { rootHash: Uint8Array | string; size: number; hashAlgorithm?: HashAlgorithmName; blockSize?: number; salt?: Uint8Array }
  | {
      /** A built-in signature (PKCS#7, as `fsverity sign` writes it) over the file's digest, from any source. */
      signature: Src;
      /** The certificates trusted to sign, in PEM; the signature must verify against one of them. */
      trusted: readonly (string | Uint8Array)[];
      /** When the signing certificate must be valid (default now); `false` skips the check, as the kernel does. */
      time?: Date | false;
    };

/** Options of `openVerified`. */
export interface OpenVerifiedOptions extends SourceOptions {
  /** Bytes of verified tree blocks kept; default 16 MiB (all the tree of a 2 GiB file with 4 KiB blocks). */
  treeCacheBytes?: number;
  /**
   * Hash runs of 256 KiB and more on the shared worker pool (SHA-256 or
   * SHA-512, blocks of 1..64 KiB), so fetching and hashing use more than one core.
   * Default false: the pool's workers cost about 60 MiB of RSS.
   */
  parallel?: boolean;
  /** Cancels opening. */
  signal?: AbortSignal;
}

/** Options of a read. */
export interface VerifiedReadOptions {
  signal?: AbortSignal;
}

/** Options of `VerifiedFile.stream`. */
export interface VerifiedStreamOptions {
  /** First byte; default 0. */
  start?: number;
  /** One past the last byte (as `Blob.slice`); default the size. */
  end?: number;
  /** Bytes read and verified per step, rounded to whole blocks; default 4 MiB. */
  chunkSize?: number;
  /** Steps read ahead of the consumer; default 4 (memory: chunkSize times this). */
  readahead?: number;
  signal?: AbortSignal;
}

/** Largest data request a read makes: on loopback nginx, 4 MiB ranges stream as fast as one plain GET, 1 MiB ones at about half that (measured); memory stays bounded. */
const READ_CHUNK = 4 << 20;
/**
 * Runs of data at least this long are hashed on the worker pool, while the
 * main thread goes on fetching; shorter ones (random small reads) are
 * hashed here, where a round trip to a worker would cost more than the hash.
 */
const POOL_FROM_BYTES = 256 << 10;
/** Tree bytes fetched per request: neighbours of a needed tree block come along, unverified until used. */
const TREE_CHUNK = 64 << 10;
/** Raw tree chunks kept for their neighbours. */
const TREE_CHUNKS_KEPT = 8;
const DEFAULT_TREE_CACHE = 16 << 20;
/** More than a descriptor with any signature a kernel accepts. */
const MAX_DESCRIPTOR_BYTES = DESCRIPTOR_SIZE + 65536;

function parseHex(s: string, what: string): Uint8Array {
  if (s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s)) throw fail('EINVAL', `${what} is not a hex string: ${JSON.stringify(s)}`);
  return Uint8Array.from(s.match(/../g) ?? [], (h) => parseInt(h, 16));
}

/** `sha256:<hex>` as `fsverity digest` prints it; EINVAL naming what is wrong. */
export function parseFsverityDigest(digest: unknown): { algorithm: HashAlgorithm; digest: Uint8Array } {
  if (typeof digest !== 'string') throw fail('EINVAL', `the digest must be a string like sha256:<hex>, got ${typeof digest}`);
  const m = /^([a-z0-9]+):([0-9a-fA-F]*)$/.exec(digest.trim());
  if (!m) throw fail('EINVAL', `bad digest ${JSON.stringify(digest)}: expected ALGORITHM:HEX as fsverity digest prints it, e.g. sha256:<64 hex digits>`);
  const algorithm = hashAlgorithmByName(m[1]!);
  if (!algorithm) throw fail('EINVAL', `bad digest ${JSON.stringify(digest)}: unknown algorithm ${m[1]} (fs-verity has sha256 and sha512)`);
  const bytes = parseHex(m[2]!, 'the digest');
  if (bytes.length !== algorithm.digestSize) {
    throw fail('EINVAL', `bad digest ${JSON.stringify(digest)}: ${algorithm.name} digests have ${algorithm.digestSize * 2} hex digits, this has ${m[2]!.length}`);
  }
  return { algorithm, digest: bytes };
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Reads of the stored tree for the verifier, a chunk at a time, with requests for one chunk shared. */
class TreeReader implements MerkleTreeSource {
  private readonly chunks = new Map<number, Promise<Uint8Array>>();
  constructor(
    private readonly src: ByteSource,
    private readonly treeSize: number,
  ) {}

  private chunk(i: number): Promise<Uint8Array> {
    let p = this.chunks.get(i);
    if (p) {
      this.chunks.delete(i);
      this.chunks.set(i, p);
      return p;
    }
    const off = i * TREE_CHUNK;
    const len = Math.min(TREE_CHUNK, this.treeSize - off);
    p = this.src.read(off, len).then((b) => {
      if (b.length !== len) throw fail('EIO', `the Merkle tree ${this.src.name} is shorter than the descriptor says: ${off + b.length} of ${this.treeSize} bytes`);
      return b;
    });
    p.catch(() => this.chunks.get(i) === p && this.chunks.delete(i));
    this.chunks.set(i, p);
    if (this.chunks.size > TREE_CHUNKS_KEPT) this.chunks.delete(this.chunks.keys().next().value!);
    return p;
  }

  async readMetadata(offset: number, length: number): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    for (let at = offset; at < offset + length; ) {
      const i = Math.floor(at / TREE_CHUNK);
      const c = await this.chunk(i);
      const a = at - i * TREE_CHUNK;
      const n = Math.min(c.length - a, offset + length - at);
      out.set(c.subarray(a, a + n), at - offset);
      at += n;
    }
    return out;
  }

  forget(): void {
    this.chunks.clear();
  }
}

/**
 * @internal What a verified reader is made of: made by `openVerified` and
 * by `openVerifiedTree` (for tree formats built on this one).
 */
export interface VerifiedParts {
  /** Bytes of data handed out. */
  readonly size: number;
  readonly verifier: MerkleVerifier;
  /** Every source opened for the reader; closed by `close()`. */
  readonly sources: ByteSource[];
  readonly data: ByteSource;
  readonly treeReader: TreeReader;
  /** Set when the worker pool may hash data blocks (fs-verity hashing, `parallel` asked for). */
  readonly pool?: { readonly algorithm: HashAlgorithmName; readonly salt: Uint8Array };
}

/**
 * Verified reads from a data source under a hash tree: every byte handed
 * out was verified first, with the whole data block it sits in, against a
 * trusted root hash. `VerifiedFile` (fs-verity, from `openVerified`) and
 * `DmverityFile` (dm-verity, from `openDmverity`) are its two kinds.
 */
export class VerifiedReader {
  private closed = false;
  /** Bytes of data. */
  readonly size: number;
  /** Bytes of a data block: the unit every read is verified in. */
  readonly blockSize: number;
  private readonly verifier: MerkleVerifier;
  private readonly sources: ByteSource[];
  private readonly data: ByteSource;
  private readonly treeReader: TreeReader;
  private readonly poolParams: VerifiedParts['pool'];

  /** @internal */
  constructor(parts: VerifiedParts) {
    this.size = parts.size;
    this.blockSize = parts.verifier.geometry.dataBlockSize;
    this.verifier = parts.verifier;
    this.sources = parts.sources;
    this.data = parts.data;
    this.treeReader = parts.treeReader;
    this.poolParams = parts.pool;
  }

  private alive(): void {
    if (this.closed) throw fail('EBADF', 'this verified file is closed');
  }

  /** Verified data blocks [first, first + count), the last zero-padded to a whole block. */
  private async blocks(first: number, count: number, signal: AbortSignal | undefined): Promise<Uint8Array> {
    const bs = this.blockSize;
    const off = first * bs;
    const avail = Math.min(count * bs, this.size - off);
    const raw = await this.data.read(off, avail, signal);
    if (raw.length !== avail) {
      throw fail('EIO', `data block ${first + Math.floor(raw.length / bs)} of ${this.data.name} is missing: the data ends at ${off + raw.length} bytes, the tree covers ${this.size}`);
    }
    let buf = raw;
    if (avail < count * bs) {
      buf = new Uint8Array(count * bs);
      buf.set(raw);
    }
    const pool = buf.length >= POOL_FROM_BYTES ? await this.pool() : undefined;
    // Our own workers hash a copy; the bytes handed out are `buf`, which nobody else holds.
    // A pool that fails is a fault of this process, not of the data: hash here instead.
    const pp = this.poolParams;
    const run = pool && pp ? await pool.hashBytes(buf.slice(), bs, pp.salt, pp.algorithm).catch(() => undefined) : undefined;
    if (run) {
      let digests = run.digests;
      if (!digests) {
        const z = this.verifier.zeroBlockDigest;
        digests = new Uint8Array(count * z.length);
        for (let i = 0; i < count; i++) digests.set(z, i * z.length);
      }
      await this.verifier.verifyDataDigests(first, count, digests);
    } else {
      await this.verifier.verifyData(first, buf, count);
    }
    if (signal?.aborted) throw signal.reason;
    return buf;
  }

  private poolPromise: Promise<LeafHashPool | undefined> | undefined;
  /** The shared worker pool when it can hash this file's blocks (`poolTakes`) and there is one. */
  private pool(): Promise<LeafHashPool | undefined> {
    const p = this.poolParams;
    if (!p || !poolTakes(p.algorithm, this.blockSize)) return Promise.resolve(undefined);
    this.poolPromise ??= leafHashPool().catch(() => undefined);
    return this.poolPromise.then((pool) => (pool?.usable ? pool : undefined));
  }

  /** [pos, pos + dst.length) clipped to the size, verified, into `dst`; the bytes copied. */
  private async readRange(pos: number, dst: Uint8Array, signal: AbortSignal | undefined): Promise<number> {
    const end = Math.min(this.size, pos + dst.length);
    if (pos >= end) return 0;
    const bs = this.blockSize;
    const per = Math.max(1, Math.floor(READ_CHUNK / bs));
    const first = Math.floor(pos / bs);
    const last = Math.ceil(end / bs);
    // Chunks in flight at once: enough to keep a connection busy while one is hashed.
    const inFlight = 4;
    const work: Promise<void>[] = [];
    let next = first;
    const one = async (b: number, n: number): Promise<void> => {
      const buf = await this.blocks(b, n, signal);
      const a = Math.max(pos, b * bs);
      const z = Math.min(end, (b + n) * bs);
      dst.set(buf.subarray(a - b * bs, z - b * bs), a - pos);
    };
    const errors: unknown[] = [];
    const runner = async (): Promise<void> => {
      while (next < last && errors.length === 0) {
        const b = next;
        const n = Math.min(per, last - b);
        next += n;
        try {
          await one(b, n);
        } catch (e) {
          errors.push(e);
        }
      }
    };
    for (let i = 0; i < inFlight && i * per < last - first; i++) work.push(runner());
    await Promise.all(work);
    if (errors.length) throw errors[0];
    return end - pos;
  }

  /**
   * Up to `len` verified bytes from `pos` (short at the end, empty past it).
   * EIO naming the block and the level when anything fails to verify or
   * the data source is shorter than the tree covers; nothing of a failed
   * read is handed out.
   */
  async read(pos: number, len: number, opts: VerifiedReadOptions = {}): Promise<Uint8Array> {
    this.alive();
    checkPosLen(pos, len);
    const out = new Uint8Array(Math.max(0, Math.min(len, this.size - pos)));
    await this.readRange(pos, out, opts.signal);
    return out;
  }

  /**
   * pread: verified bytes from `pos` into `dst`; the count (short at the
   * end). On failure `dst` may hold some verified bytes, never unverified ones.
   */
  async readInto(pos: number, dst: Uint8Array, opts: VerifiedReadOptions = {}): Promise<number> {
    this.alive();
    if (!isUint8Array(dst)) throw fail('EINVAL', 'readInto needs a Uint8Array');
    checkPosLen(pos, dst.length);
    return this.readRange(pos, dst, opts.signal);
  }

  /**
   * A web `ReadableStream` of the verified bytes [start, end), read ahead
   * in whole-block steps (sequential reads keep `readahead` requests in
   * flight). The stream errors with the EIO of the first block that fails;
   * nothing after it is enqueued. Cancel it, or abort `signal`, to stop.
   * For a Node `Readable`, pass it to `toNodeReadable`.
   */
  stream(opts: VerifiedStreamOptions = {}): ReadableStream<Uint8Array> {
    this.alive();
    const start = opts.start ?? 0;
    const end = Math.min(opts.end ?? this.size, this.size);
    checkPosLen(start, Math.max(0, end - start));
    const bs = this.blockSize;
    const step = Math.max(bs, Math.floor((opts.chunkSize ?? READ_CHUNK) / bs) * bs);
    const ahead = Math.max(1, opts.readahead ?? 4);
    const stop = new AbortController();
    const signal = opts.signal ? AbortSignal.any([opts.signal, stop.signal]) : stop.signal;
    const queue: Promise<Uint8Array>[] = [];
    let next = start;
    const fill = (): void => {
      while (queue.length < ahead && next < end) {
        // Steps end on multiples of `step`, so each is whole blocks but at the ends.
        const a = next;
        const z = Math.min(end, (Math.floor(a / step) + 1) * step);
        next = z;
        const p = this.read(a, z - a, { signal });
        p.catch(() => {});
        queue.push(p);
      }
    };
    return new ReadableStream<Uint8Array>(
      {
        pull: async (ctl) => {
          fill();
          const p = queue.shift();
          if (!p) {
            ctl.close();
            return;
          }
          try {
            const chunk = await p;
            if (chunk.length) ctl.enqueue(chunk);
          } catch (e) {
            stop.abort(e);
            queue.length = 0;
            throw e;
          }
          fill();
          if (queue.length === 0) ctl.close();
        },
        cancel: (reason) => {
          stop.abort(reason ?? fail('EIO', 'stream cancelled'));
          queue.length = 0;
        },
      },
      { highWaterMark: 0 },
    );
  }

  /** Close the sources and drop the cached tree blocks; idempotent. Later reads are EBADF. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.treeReader.forget();
    this.verifier.dispose();
    await Promise.all(this.sources.map((s) => s.close().catch(() => {})));
  }
}

/** A file whose every byte handed out was verified against a trusted fs-verity digest (from `openVerified`). */
export class VerifiedFile extends VerifiedReader {
  /** The descriptor, validated and vouched for by what was trusted. */
  readonly descriptor: VerityDescriptor;
  /** The file digest, as `fsverity digest` prints it. */
  readonly digest: string;

  /** @internal */
  constructor(parts: VerifiedParts, descriptor: VerityDescriptor, digest: string) {
    super(parts);
    this.descriptor = descriptor;
    this.digest = digest;
  }
}

function checkPosLen(pos: number, len: number): void {
  if (!Number.isSafeInteger(pos) || pos < 0 || !Number.isSafeInteger(len) || len < 0 || pos + len > MAX_OFFSET) {
    throw fail('EINVAL', `invalid range of ${String(len)} bytes at ${String(pos)}: both must be integers from 0 to 2^53`);
  }
}

/** Largest built-in signature a kernel accepts (FS_VERITY_MAX_SIGNATURE_SIZE less the descriptor). */
const MAX_SIGNATURE_BYTES = 16128;

/** A signature's bytes from its source, whole; EMSGSIZE past what a kernel accepts. */
async function readSignature(src: ByteSource, signal?: AbortSignal): Promise<Uint8Array> {
  const size = src.size ?? (await src.read(0, MAX_SIGNATURE_BYTES + 1, signal)).length;
  if (size === 0) throw fail('EBADMSG', `the signature ${src.name} is empty`);
  if (size > MAX_SIGNATURE_BYTES) throw fail('EMSGSIZE', `the signature ${src.name} is ${size} bytes: at most ${MAX_SIGNATURE_BYTES}`);
  return src.read(0, size, signal);
}

/** The hash algorithm a descriptor names (byte 1), before it is trusted: only to hash it for the signature check. */
function descriptorAlgorithm(descBytes: Uint8Array, name: string): HashAlgorithm {
  const alg = hashAlgorithmById(descBytes[1]!);
  if (!alg) throw fail('EIO', `the descriptor ${name} names hash algorithm ${String(descBytes[1])}, which this library does not know`);
  return alg;
}

/** The descriptor's bytes from its source, whole (a descriptor and any signature after it). */
async function readDescriptor(src: ByteSource, signal: AbortSignal | undefined): Promise<Uint8Array> {
  const want = src.size === undefined ? MAX_DESCRIPTOR_BYTES : src.size;
  if (want > MAX_DESCRIPTOR_BYTES) throw fail('EIO', `the descriptor ${src.name} is ${want} bytes: a descriptor has ${DESCRIPTOR_SIZE}, with a signature at most ${MAX_DESCRIPTOR_BYTES}`);
  const b = await src.read(0, want, signal);
  if (b.length < DESCRIPTOR_SIZE) throw fail('EIO', `the descriptor ${src.name} is ${b.length} bytes, a descriptor has ${DESCRIPTOR_SIZE}`);
  return b;
}

/**
 * Open a file for verified reads: `data`, `tree` and `descriptor` may each
 * be an http(s) URL, a local path (Node), a `Uint8Array`, a `Blob` or a
 * reader `{ size?, read(offset, length) }`; `trust` is the digest as
 * `fsverity digest` prints it, a built-in signature of that digest and the
 * certificates trusted to sign it (EKEYREJECTED or EBADMSG when it does
 * not verify), or a trusted root hash and size.
 *
 * The descriptor is checked against the digest before anything in it is
 * believed (EIO when it does not hash to it), then validated; EINVAL for a
 * malformed digest string. A data source whose size differs from the
 * descriptor's, or a tree whose size differs from what the descriptor
 * implies, is EIO. Sources opened here are closed on failure and by `close()`.
 */
export async function openVerified(sources: VerifiedSources, trust: VerifiedTrust, opts: OpenVerifiedOptions = {}): Promise<VerifiedFile> {
  if (typeof sources !== 'object' || sources === null) throw fail('EINVAL', 'openVerified needs { data, tree, descriptor }');
  if (typeof trust !== 'object' || trust === null) throw fail('EINVAL', 'openVerified needs what to trust: { digest: "sha256:<hex>" }');
  // Parse what is trusted before opening anything, so a typo costs no request.
  let expected: { algorithm: HashAlgorithm; digest: Uint8Array } | undefined;
  let trustedDescriptor: Uint8Array | undefined;
  if ('digest' in trust) {
    expected = parseFsverityDigest(trust.digest);
  } else if ('rootHash' in trust) {
    const params = validateDigestParams({ hashAlgorithm: trust.hashAlgorithm, blockSize: trust.blockSize, salt: trust.salt });
    const root = typeof trust.rootHash === 'string' ? parseHex(trust.rootHash, 'the root hash') : trust.rootHash;
    trustedDescriptor = encodeDescriptor(params, trust.size, root);
  } else if ('signature' in trust) {
    if (!Array.isArray(trust.trusted) || trust.trusted.length === 0) {
      throw fail('EINVAL', 'openVerified with a signature needs { trusted: [PEM certificates] }');
    }
    if (sources.descriptor === undefined) throw fail('EINVAL', 'openVerified with a signature needs the descriptor source');
  } else {
    throw fail('EINVAL', 'openVerified needs { digest: "sha256:<hex>" }, { signature, trusted } or { rootHash, size }');
  }
  if (expected && sources.descriptor === undefined) throw fail('EINVAL', 'openVerified with a digest needs the descriptor source');
  const opened: ByteSource[] = [];
  const open = async (s: Src): Promise<ByteSource> => {
    const b = await openSource(s, opts);
    opened.push(b);
    return b;
  };
  try {
    let descBytes: Uint8Array;
    if ('signature' in trust) {
      // The signature vouches for the digest the descriptor hashes to; only
      // then is the descriptor believed, exactly as with a trusted digest.
      const ds = await open(sources.descriptor!);
      descBytes = await readDescriptor(ds, opts.signal);
      const sig = await readSignature(await open(trust.signature), opts.signal);
      const algorithm = descriptorAlgorithm(descBytes, ds.name);
      const digest = await computeFileDigest(algorithm, descBytes);
      // Loaded only here: PKI.js is the largest part of a browser bundle.
      const { verifyFsveritySignature } = await import('./signature.js');
      await verifyFsveritySignature(sig, { algorithm: algorithm.name, digest }, { trusted: trust.trusted, time: trust.time });
    } else if (expected) {
      const ds = await open(sources.descriptor!);
      descBytes = await readDescriptor(ds, opts.signal);
      const actual = await computeFileDigest(expected.algorithm, descBytes);
      if (!equal(actual, expected.digest)) {
        throw fail('EIO', `the descriptor ${ds.name} does not match the trusted digest: it hashes to ${expected.algorithm.name}:${toHex(actual)}, expected ${expected.algorithm.name}:${toHex(expected.digest)}`);
      }
    } else {
      descBytes = trustedDescriptor!;
    }
    let descriptor: VerityDescriptor;
    try {
      descriptor = validateDescriptor(descBytes, { rules: 'digest' });
    } catch (e) {
      throw fail('EIO', `the descriptor matches the digest but is not a valid fs-verity descriptor: ${(e as Error).message}`, e);
    }
    if (expected && descriptor.params.algorithm.id !== expected.algorithm.id) {
      throw fail('EIO', `the descriptor names ${descriptor.params.algorithm.name} but the digest is ${expected.algorithm.name}`);
    }
    const digestBytes = await computeFileDigest(descriptor.params.algorithm, descBytes);
    const data = await open(sources.data);
    const tree = await open(sources.tree);
    const tr = computeMerkleTreeParams(descriptor.params, descriptor.dataSize);
    const spec: VerifiedTreeSpec = {
      geometry: fsverityGeometry(tr),
      rootHash: descriptor.rootHash,
      size: descriptor.dataSize,
      dataMayBeLonger: false,
      treeEnd: tr.treeSize,
      treeMayBeLonger: false,
      says: 'the descriptor',
    };
    const pool = opts.parallel === true ? { algorithm: descriptor.params.algorithm.name, salt: descriptor.params.salt } : undefined;
    const parts = await verifiedParts(data, tree, spec, opened, opts, pool);
    return new VerifiedFile(parts, descriptor, formatDigest(descriptor.params.algorithm, digestBytes));
  } catch (e) {
    await Promise.all(opened.map((s) => s.close().catch(() => {})));
    throw e;
  }
}

/**
 * @internal What a tree format says about its tree once it has read its
 * own header (fs-verity: the descriptor; dm-verity: the superblock or the
 * caller's parameters): the geometry, the trusted root hash, and the sizes
 * the two sources must have.
 */
export interface VerifiedTreeSpec {
  readonly geometry: TreeGeometry;
  readonly rootHash: Uint8Array;
  /** Bytes of data the tree covers: the data source holds exactly this many, or more with `dataMayBeLonger`. */
  readonly size: number;
  readonly dataMayBeLonger: boolean;
  /** Byte of the tree source just past the last tree block: it holds exactly this many, or more with `treeMayBeLonger`. */
  readonly treeEnd: number;
  readonly treeMayBeLonger: boolean;
  /** What the sizes come from, in messages ('the descriptor', 'the superblock'). */
  readonly says: string;
}

/** The parts of a reader once both sources are open: their sizes checked against `spec`, the verifier made. */
async function verifiedParts(
  data: ByteSource,
  tree: ByteSource,
  spec: VerifiedTreeSpec,
  opened: ByteSource[],
  opts: OpenVerifiedOptions,
  pool: VerifiedParts['pool'],
): Promise<VerifiedParts> {
  const { size, says } = spec;
  if (data.size !== undefined && (data.size < size || (data.size > size && !spec.dataMayBeLonger))) {
    throw fail('EIO', `the data ${data.name} is ${data.size} bytes but ${says} says ${size}: ${data.size < size ? 'it was cut short' : 'bytes were added'} or it is another file`);
  }
  if (data.size === undefined && !spec.dataMayBeLonger) {
    const past = await data.read(size, 1, opts.signal);
    if (past.length) throw fail('EIO', `the data ${data.name} goes on past the ${size} bytes ${says} says`);
  }
  const treeEnd = spec.treeEnd;
  if (tree.size !== undefined && (tree.size < treeEnd || (tree.size > treeEnd && !spec.treeMayBeLonger))) {
    throw fail('EIO', `the ${spec.geometry.format === 'fs-verity' ? 'Merkle tree' : 'hash device'} ${tree.name} is ${tree.size} bytes but ${says} implies ${spec.treeMayBeLonger ? 'at least ' : ''}${treeEnd}: it is damaged or belongs to another file or parameters`);
  }
  const treeReader = new TreeReader(tree, treeEnd);
  const verifier = await MerkleVerifier.forGeometry(spec.geometry, spec.rootHash, treeReader, { what: data.name, cacheBytes: opts.treeCacheBytes ?? DEFAULT_TREE_CACHE });
  return { size, verifier, sources: opened, data, treeReader, pool };
}

/**
 * @internal For tree formats built on this library (src/dmverity): open
 * `data` and `tree` (any `Src`, with `opts`), let `describe` read what it
 * needs of them (a superblock) and say what the tree is, check both
 * sources' sizes against that (EIO), and make the verifier. The sources
 * are closed when anything fails. The result makes a `VerifiedReader`
 * subclass; `spec` is what `describe` returned.
 */
export async function openVerifiedTree<S extends VerifiedTreeSpec>(
  sources: { data: Src; tree: Src },
  opts: OpenVerifiedOptions,
  describe: (tree: ByteSource, data: ByteSource) => Promise<S>,
): Promise<{ parts: VerifiedParts; spec: S }> {
  const opened: ByteSource[] = [];
  try {
    const data = await openSource(sources.data, opts);
    opened.push(data);
    const tree = await openSource(sources.tree, opts);
    opened.push(tree);
    const spec = await describe(tree, data);
    return { parts: await verifiedParts(data, tree, spec, opened, opts, undefined), spec };
  } catch (e) {
    await Promise.all(opened.map((s) => s.close().catch(() => {})));
    throw e;
  }
}
