/**
 * What a worker of the leaf-hashing pool (src/verity/pool.ts) runs, written
 * once: its own instance of the compiled module, memory allocated once at
 * start, and the zero-aware SIMD kernel of the job's algorithm (SHA-256
 * 4-lane, SHA-512 2-lane) over a range of whole blocks, answered with the
 * digests (transferred, not copied) or, when every block was zero, with no
 * digests at all.
 *
 * The same code reaches a worker three ways: bundled into the glue script
 * (glue.generated.ts, through worker-glue.ts) for workers started from
 * source text (a Node worker_thread, a browser's Blob URL), and imported by
 * src/verity/pool.worker.ts, the module file a bundler recognises.
 *
 * Messages in (browser): { init: { module, chunkBytes, minBlockSize } } once,
 * then { id, data, blocks, blockSize, salt, algorithm, dmFormat? }.
 * Messages out: { id: 0, ready: true } once booted (or { id: 0, error }),
 * then per job { id, zeros, digests? } or { id, error: { code, message,
 * endedAt? } } (`endedAt` with code ESHORT: where the file ended).
 */
import { DmverityBlockHasher } from './dmverity.js';
import { instantiateWasmSync } from './index.js';
import { Sha256BlockHasher } from './sha256.js';
import { Sha512BlockHasher } from './sha512.js';
import type { WasmModule } from './webassembly.js';

/** One job as a worker receives it. */
export interface LeafJob {
  id: number;
  blocks: number;
  blockSize: number;
  salt: Uint8Array;
  algorithm: string;
  dmFormat?: 0 | 1;
  fd?: number;
  pos?: number;
  data?: ArrayBuffer;
}

/** A worker's answer to one job (or to its boot, with id 0). */
export interface LeafReply {
  id: number;
  ready?: boolean;
  zeros?: number;
  digests?: Uint8Array;
  error?: { code: string; message: string; endedAt?: number };
}

type Hasher = Sha256BlockHasher | Sha512BlockHasher | DmverityBlockHasher;

function coded(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

/**
 * A job runner over its own instance of `module`, with room for jobs of up
 * to `chunkBytes` in blocks of at least `minBlock` bytes. It hashes a job
 * once `fill` has put the job's bytes into the view it is given (the
 * worker's WASM memory); throws an Error with a `code` for a bad job.
 */
export function createLeafHasher(
  module: WasmModule,
  chunkBytes: number,
  minBlock: number,
): (job: LeafJob, fill: (view: Uint8Array) => void) => LeafReply {
  const wasm = instantiateWasmSync(module);
  const buf = wasm.alloc(chunkBytes);
  // Room for the larger digests (SHA-512's 64 bytes) of the smallest blocks.
  const dig = wasm.alloc((chunkBytes / minBlock) * 64);
  let hasher: Hasher | undefined;
  let ctxKey = '';

  // dmFormat (0 or 1) selects dm-verity's framing (the salt unpadded,
  // after or before each block, SHA-256 only); absent, fs-verity's.
  function setContext(algorithm: string, blockSize: number, salt: Uint8Array, dmFormat: 0 | 1 | undefined): Hasher {
    const key = `${algorithm}:${blockSize}:${dmFormat}:${Array.prototype.join.call(salt, ',')}`;
    if (key === ctxKey && hasher) return hasher;
    hasher?.dispose();
    hasher = undefined;
    ctxKey = '';
    if (dmFormat !== undefined && algorithm === 'sha256') hasher = DmverityBlockHasher.create(wasm, salt, dmFormat, blockSize);
    else if (dmFormat !== undefined) throw coded(`no dm-verity kernel for hash algorithm ${String(algorithm)}`, 'EINVAL');
    else if (algorithm === 'sha512') hasher = Sha512BlockHasher.create(wasm, salt, blockSize);
    else if (algorithm === 'sha256') hasher = Sha256BlockHasher.create(wasm, salt, blockSize);
    else throw coded(`no kernel for hash algorithm ${String(algorithm)}`, 'EINVAL');
    ctxKey = key;
    return hasher;
  }

  return function hash(job, fill) {
    const { blocks, blockSize, salt, algorithm } = job;
    const len = blocks * blockSize;
    if (len > chunkBytes || blockSize < minBlock) {
      throw coded(`job of ${blocks} blocks of ${blockSize} bytes does not fit the worker`, 'EINVAL');
    }
    const h = setContext(algorithm, blockSize, salt, job.dmFormat);
    fill(wasm.bytes(buf, len));
    const zeros = h.hashBlocksAtSkipZero(buf, blocks, dig);
    if (zeros === blocks) return { id: job.id, zeros };
    const ds = algorithm === 'sha512' ? 64 : 32;
    return { id: job.id, zeros, digests: wasm.bytes(dig, blocks * ds).slice() };
  };
}

/** A `fill` that copies the bytes a job carries; EINVAL when they are not the job's size. */
export function fromBytes(job: LeafJob): (view: Uint8Array) => void {
  return (view) => {
    const data = new Uint8Array(job.data ?? new ArrayBuffer(0));
    if (data.length !== view.length) throw coded(`job carries ${data.length} bytes for ${view.length}`, 'EINVAL');
    view.set(data);
  };
}

/** The answer for a job that failed with `e`. */
export function failure(job: { id: number }, e: unknown): LeafReply {
  const err = e as { code?: unknown; message?: unknown; endedAt?: unknown } | undefined;
  const error: { code: string; message: string; endedAt?: number } = {
    code: typeof err?.code === 'string' && err.code ? err.code : 'EIO',
    message: String(err?.message ?? e),
  };
  if (typeof err?.endedAt === 'number') error.endedAt = err.endedAt;
  return { id: job.id, error };
}

/** What a browser worker's global scope offers the worker (self). */
export interface WorkerScope {
  postMessage(m: unknown, transfer?: ArrayBuffer[]): void;
  onmessage: ((ev: { data: unknown }) => void) | null;
}

/**
 * Serve pool jobs in a browser worker: the first message (`init`) carries
 * the compiled module, every later one a job with its bytes.
 */
export function serveWebWorker(scope: WorkerScope): void {
  let hash: ReturnType<typeof createLeafHasher> | undefined;
  scope.onmessage = (ev) => {
    const m = ev.data as LeafJob & { init?: { module: WasmModule; chunkBytes: number; minBlockSize: number } };
    if (m.init) {
      try {
        hash = createLeafHasher(m.init.module, m.init.chunkBytes, m.init.minBlockSize);
      } catch (e) {
        scope.postMessage(failure({ id: 0 }, e));
        return;
      }
      scope.postMessage({ id: 0, ready: true });
      return;
    }
    let reply: LeafReply;
    try {
      if (!hash) throw coded('a job came before the worker was given its module', 'EINVAL');
      reply = hash(m, fromBytes(m));
    } catch (e) {
      scope.postMessage(failure(m, e));
      return;
    }
    if (reply.digests) scope.postMessage(reply, [reply.digests.buffer as ArrayBuffer]);
    else scope.postMessage(reply);
  };
}
