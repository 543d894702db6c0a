/**
 * A pool of worker threads that hash level 0 of a Merkle tree: each worker
 * has its own instance of the shared compiled WebAssembly module, takes a
 * range of whole blocks into that instance's memory, and returns the
 * blocks' digests, recognising all-zero blocks without hashing them. The
 * caller keeps the order and builds the levels above (1/128 of the work at
 * 4 KiB blocks).
 *
 * In Node the workers are worker_threads, and a job either names a range of
 * an open file descriptor, read by the worker with positional reads
 * (`hashFileBlocks`: digest-file.ts, sealing on a FileDevice), or carries
 * its bytes (`hashBytes`: fsverityDigest of data in memory). In a browser
 * they are Web Workers and jobs carry their bytes: first the module file
 * pool.worker.js, started as `new Worker(new URL('./pool.worker.js',
 * import.meta.url), { type: 'module' })` so that bundlers (Vite, webpack)
 * emit it as a worker chunk and a CSP of `worker-src 'self'` admits it; where
 * that file does not load (a bundler that leaves the URL alone, esbuild
 * among them; an IIFE build), a Blob URL of the same program.
 * node:worker_threads and node:os are imported dynamically when a Node pool
 * starts, so a browser bundle is not affected by them. Where there are no
 * workers, or the machine has a single core, `leafHashPool()` answers
 * undefined and callers take their one-thread path.
 *
 * One pool serves the whole process. In Node its workers hold the process
 * open only while jobs are outstanding (they are unref'd when idle), so a
 * CLI exits as soon as its work is done.
 */
import { fail, IomapVerityError, type ErrnoCode } from '../errors.js';
import { wasmModule, type WasmModule } from '../wasm/index.js';
import { nodeOs, nodeWorkerThreads } from '#platform';
import type { HashAlgorithmName } from './hash-algs.js';
import { POOL_WORKER_SOURCE, WEB_POOL_WORKER_SOURCE } from './pool-worker.js';

/** Bytes of one job: the arena's largest run (4 MiB), a whole number of blocks of any pooled size. */
export const POOL_CHUNK_BYTES = 4 << 20;
/** Block sizes the pool hashes: the kernels' sealable range. */
export const POOL_MIN_BLOCK_SIZE = 1024;
/** Largest block size the pool hashes. */
export const POOL_MAX_BLOCK_SIZE = 65536;

/**
 * Whether the pool takes blocks of `blockSize` bytes hashed with
 * `algorithm` (a HashAlgorithm's name): the one rule every caller asks
 * before handing work to the pool, and the pool itself checks.
 */
export function poolTakes(algorithm: string, blockSize: number): boolean {
  return (
    (algorithm === 'sha256' || algorithm === 'sha512') &&
    blockSize >= POOL_MIN_BLOCK_SIZE &&
    blockSize <= POOL_MAX_BLOCK_SIZE &&
    (blockSize & (blockSize - 1)) === 0
  );
}
/** Jobs posted to one worker ahead of its answers, so it never waits for the main thread. */
const DEPTH = 2;
/** A cap on workers: each is a V8 isolate of about 15 MiB (measured RSS), and one file's reads are sequential. */
const MAX_THREADS = 8;

/** What a worker returns for a range of blocks. */
export interface LeafRun {
  /** Blocks hashed. */
  readonly blocks: number;
  /** How many of them were all zero. */
  readonly zeros: number;
  /** `blocks` digests of the job's algorithm's size; absent when every block was zero. */
  readonly digests?: Uint8Array;
}

interface Job {
  id: number;
  blocks: number;
  blockSize: number;
  salt: Uint8Array;
  algorithm: HashAlgorithmName;
  /** dm-verity's framing (format 0 or 1) instead of fs-verity's (SHA-256 only). */
  dmFormat?: 0 | 1;
  /** Either a range of an open file (Node only)... */
  fd?: number;
  pos?: number;
  /** ...or the bytes themselves, transferred to the worker. */
  data?: ArrayBuffer;
}

/**
 * Which workers a pool runs: `node` worker_threads, or in a browser the
 * `module` file pool.worker.js (see the module comment) or a `blob` URL of
 * the same program.
 */
export type PoolWorkerKind = 'node' | 'module' | 'blob';

/** What the pool needs of a worker: a Node worker_thread or a Web Worker. */
interface PoolWorker {
  post(message: unknown, transfer: ArrayBuffer[]): void;
  /** Hold the process open (Node; a no-op for Web Workers). */
  ref(): void;
  unref(): void;
  terminate(): unknown;
}

interface Waiter {
  resolve(run: LeafRun): void;
  reject(e: Error): void;
  slot: Slot;
  blocks: number;
}

interface Slot {
  worker: PoolWorker;
  inFlight: number;
}

/** What a worker answers (see pool-worker.ts): one shape, no text to parse. */
interface Reply {
  id: number;
  ready?: boolean;
  zeros?: number;
  digests?: Uint8Array;
  /** `endedAt`: for code ESHORT, the byte of the file where it ended. */
  error?: { code: string; message: string; endedAt?: number };
}

/**
 * A `hashFileBlocks` job found the file shorter than its range (it shrank
 * while being read): EIO, with the byte where it ended, so the caller can
 * say so in its own words.
 */
export class PoolShortReadError extends IomapVerityError {
  constructor(
    /** Byte offset of the file where it ended. */
    readonly endedAt: number,
    message: string,
  ) {
    super('EIO', message);
  }
}

const KNOWN_CODES: readonly string[] = ['EINVAL', 'EIO', 'EBADF', 'EISDIR', 'EACCES'];

/**
 * How many worker threads the pool uses: `IOMAP_VERITY_THREADS` when set
 * (0 or 1 turns the pool off), else the number of cores, at most 8.
 */
export async function poolThreads(): Promise<number> {
  const env = typeof process !== 'undefined' ? process.env?.IOMAP_VERITY_THREADS : undefined;
  if (env !== undefined && env !== '') {
    const n = Number(env);
    if (!Number.isInteger(n) || n < 0) throw fail('EINVAL', `IOMAP_VERITY_THREADS must be a whole number, not ${JSON.stringify(env)}`);
    return Math.min(n, MAX_THREADS);
  }
  let cores: number;
  if (isNode()) {
    const os = await nodeOs();
    cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  } else {
    cores = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency ?? 1;
  }
  return Math.min(Math.max(cores, 1), MAX_THREADS);
}

/** The leaf-hashing pool; see the module comment. */
export class LeafHashPool {
  private readonly slots: Slot[] = [];
  private readonly waiters = new Map<number, Waiter>();
  private readonly queue: Job[] = [];
  /** Buffers to transfer with a queued job. */
  private readonly transfers = new Map<number, ArrayBuffer[]>();
  private nextId = 1;
  private broken: Error | undefined;
  /** @internal */ closed = false;
  private referenced = false;
  private done = 0;
  private booted = 0;
  private readonly whenReady: Promise<void>;
  private markReady!: () => void;
  private markFailed!: (e: Error) => void;
  private workerKind: PoolWorkerKind = 'node';

  private constructor(readonly threads: number) {
    this.whenReady = new Promise<void>((resolve, reject) => {
      this.markReady = resolve;
      this.markFailed = reject;
    });
    // A pool nobody waits on may still fail to start: that is not an unhandled rejection.
    this.whenReady.catch(() => undefined);
  }

  /** Start `threads` workers (at least 1). */
  static async start(threads: number): Promise<LeafHashPool> {
    if (!Number.isInteger(threads) || threads < 1) throw fail('EINVAL', `a leaf-hashing pool needs at least one thread, not ${threads}`);
    const module = await wasmModule();
    const pool = new LeafHashPool(threads);
    const { spawn, kind } = isNode() ? { spawn: await nodeWorkers(pool, module), kind: 'node' as const } : await webWorkers(pool, module);
    pool.workerKind = kind;
    for (let i = 0; i < threads; i++) {
      // Messages arrive as events, after the slot below exists.
      const worker = spawn((m) => pool.onReply(slot, m));
      const slot: Slot = { worker, inFlight: 0 };
      worker.unref();
      pool.slots.push(slot);
    }
    return pool;
  }

  /**
   * Resolves once every worker has booted (tens of milliseconds after
   * `start`), rejects if the pool breaks first. Jobs submitted earlier are
   * queued, so waiting is only for callers with other work to do meanwhile.
   */
  ready(): Promise<void> {
    return this.whenReady;
  }

  /** Which workers this pool runs (PoolWorkerKind). */
  get kind(): PoolWorkerKind {
    return this.workerKind;
  }

  /** Jobs answered so far (successfully or not). */
  get jobsDone(): number {
    return this.done;
  }

  /** True when the pool broke before all its workers had booted: workers cannot start here (a CSP, a sandbox). */
  get neverStarted(): boolean {
    return this.broken !== undefined && this.booted < this.threads;
  }

  /** True once a worker died; such a pool refuses work and is replaced by `leafHashPool()`. */
  get usable(): boolean {
    return !this.broken && !this.closed;
  }

  /**
   * Read `blocks` whole blocks of `blockSize` bytes at byte `pos` of the
   * open file `fd` and hash them under `salt` with `algorithm`, fs-verity
   * style, or dm-verity's with `dmFormat` 0 or 1 (SHA-256 only). At most
   * `POOL_CHUNK_BYTES` per job; `poolTakes` must accept the algorithm and
   * block size (EINVAL otherwise). EIO when the file ends early (it shrank)
   * or a worker fails.
   */
  hashFileBlocks(
    fd: number,
    pos: number,
    blocks: number,
    blockSize: number,
    salt: Uint8Array,
    algorithm: HashAlgorithmName = 'sha256',
    dmFormat?: 0 | 1,
  ): Promise<LeafRun> {
    if (dmFormat !== undefined && algorithm !== 'sha256') {
      return Promise.reject(fail('EINVAL', `the leaf-hashing pool hashes dm-verity blocks with sha256 only, not ${String(algorithm)}`));
    }
    return this.submit({ fd, pos, dmFormat }, [], blocks, blockSize, salt, algorithm);
  }

  /**
   * Hash `data`, whole blocks of `blockSize` bytes, under `salt`. The bytes
   * are transferred to a worker: `data` must be the whole of an ArrayBuffer
   * nobody else uses (a fresh copy), which is detached afterwards. Limits
   * as for `hashFileBlocks`.
   */
  hashBytes(data: Uint8Array, blockSize: number, salt: Uint8Array, algorithm: HashAlgorithmName = 'sha256'): Promise<LeafRun> {
    if (!(data.buffer instanceof ArrayBuffer) || data.byteOffset !== 0 || data.byteLength !== data.buffer.byteLength) {
      return Promise.reject(fail('EINVAL', 'hashBytes takes a Uint8Array that is the whole of its own ArrayBuffer'));
    }
    return this.submit({ data: data.buffer }, [data.buffer], data.length / blockSize, blockSize, salt, algorithm);
  }

  private submit(
    source: Pick<Job, 'fd' | 'pos' | 'data' | 'dmFormat'>,
    transfer: ArrayBuffer[],
    blocks: number,
    blockSize: number,
    salt: Uint8Array,
    algorithm: HashAlgorithmName,
  ): Promise<LeafRun> {
    if (this.broken) return Promise.reject(this.broken);
    if (this.closed) return Promise.reject(fail('EBADF', 'the leaf-hashing pool is closed'));
    if (!poolTakes(algorithm, blockSize)) {
      return Promise.reject(
        fail('EINVAL', `the leaf-hashing pool takes sha256 or sha512 at block sizes ${POOL_MIN_BLOCK_SIZE} to ${POOL_MAX_BLOCK_SIZE}, not ${String(algorithm)} at ${blockSize}`),
      );
    }
    if (!Number.isInteger(blocks) || blocks < 1 || blocks * blockSize > POOL_CHUNK_BYTES) {
      return Promise.reject(fail('EINVAL', `a pool job holds 1 to ${POOL_CHUNK_BYTES / blockSize} blocks, not ${blocks}`));
    }
    const id = this.nextId++;
    return new Promise<LeafRun>((resolve, reject) => {
      this.queue.push({ id, blocks, blockSize, salt, algorithm, ...source });
      this.transfers.set(id, transfer);
      this.waiters.set(id, { resolve, reject, slot: this.slots[0]!, blocks });
      this.pump();
    });
  }

  /** Stop the workers; outstanding jobs fail with EBADF. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.markFailed(fail('EBADF', 'the leaf-hashing pool was closed'));
    this.rejectAll(fail('EBADF', 'the leaf-hashing pool was closed with jobs outstanding'));
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }

  private pump(): void {
    while (this.queue.length > 0) {
      let best: Slot | undefined;
      for (const s of this.slots) if (s.inFlight < DEPTH && (!best || s.inFlight < best.inFlight)) best = s;
      if (!best) break;
      const job = this.queue.shift()!;
      best.inFlight++;
      this.waiters.get(job.id)!.slot = best;
      best.worker.post(job, this.transfers.get(job.id) ?? []);
      this.transfers.delete(job.id);
    }
    this.updateRef();
  }

  // Referenced while anything is outstanding: an unref'd worker would let
  // the process exit under a caller awaiting its answer.
  private updateRef(): void {
    const busy = this.waiters.size > 0;
    if (busy === this.referenced) return;
    this.referenced = busy;
    for (const s of this.slots) {
      if (busy) s.worker.ref();
      else s.worker.unref();
    }
  }

  /** @internal A worker's message; also where backends report a worker's failure or exit. */
  onReply(slot: Slot, m: Reply): void {
    if (m.id === 0 && m.error) {
      this.breakPool(fail('EIO', `a leaf-hashing worker failed to start: ${m.error.message}`));
      return;
    }
    if (m.ready) {
      if (++this.booted === this.slots.length) this.markReady();
      return;
    }
    const w = this.waiters.get(m.id);
    if (!w) return;
    this.waiters.delete(m.id);
    slot.inFlight--;
    this.done++;
    if (m.error?.code === 'ESHORT' && typeof m.error.endedAt === 'number') {
      w.reject(new PoolShortReadError(m.error.endedAt, m.error.message));
    } else if (m.error) {
      const code = KNOWN_CODES.includes(m.error.code) ? m.error.code : 'EIO';
      w.reject(fail((code === 'EACCES' ? 'EPERM' : code) as ErrnoCode, m.error.message));
    } else {
      w.resolve({ blocks: w.blocks, zeros: m.zeros ?? 0, digests: m.digests });
    }
    this.pump();
  }

  /** @internal */
  breakPool(e: Error): void {
    if (this.broken || this.closed) return;
    this.broken = e;
    this.markFailed(e);
    this.rejectAll(e);
    for (const s of this.slots) void s.worker.terminate();
  }

  private rejectAll(e: Error): void {
    this.queue.length = 0;
    this.transfers.clear();
    for (const w of this.waiters.values()) w.reject(e);
    this.waiters.clear();
    this.updateRef();
  }
}

/** Node (worker_threads), as opposed to a browser. */
function isNode(): boolean {
  return typeof process !== 'undefined' && typeof process.versions?.node === 'string';
}

type Spawn = (onMessage: (m: Reply) => void) => PoolWorker;

/** Workers on node:worker_threads, running POOL_WORKER_SOURCE. */
async function nodeWorkers(pool: LeafHashPool, module: WasmModule): Promise<Spawn> {
  const { Worker } = await nodeWorkerThreads();
  return (onMessage) => {
    const worker = new Worker(POOL_WORKER_SOURCE, {
      eval: true,
      workerData: { module, chunkBytes: POOL_CHUNK_BYTES, minBlockSize: POOL_MIN_BLOCK_SIZE },
    });
    worker.on('message', onMessage);
    worker.on('error', (e: Error) => pool.breakPool(fail('EIO', `a leaf-hashing worker failed: ${e.message}`, e)));
    worker.on('exit', (code) => {
      if (!pool.closed) pool.breakPool(fail('EIO', `a leaf-hashing worker exited unexpectedly (exit code ${code})`));
    });
    return {
      post: (m, transfer) => worker.postMessage(m, transfer),
      ref: () => worker.ref(),
      unref: () => worker.unref(),
      terminate: () => worker.terminate(),
    };
  };
}

/** The shape of a Web Worker the pool uses (the DOM's Worker, as far as needed here). */
interface WebWorkerLike {
  postMessage(m: unknown, transfer: ArrayBuffer[]): void;
  terminate(): void;
  onmessage: ((ev: { data: Reply }) => void) | null;
  onerror: ((ev: { message?: string; preventDefault?: () => void }) => void) | null;
}

/** How long a module worker may take to boot before the pool takes the Blob URL instead. */
const MODULE_WORKER_BOOT_MS = 10_000;

/**
 * One module worker of pool.worker.js, booted with `init`; undefined when it
 * cannot be made or does not answer `ready` (the file is missing or
 * refused, or the bundle has no `import.meta.url`).
 */
async function bootModuleWorker(init: unknown): Promise<WebWorkerLike | undefined> {
  let worker: WebWorkerLike;
  try {
    // This exact form is what bundlers look for: keep it on one expression.
    worker = new Worker(new URL('./pool.worker.js', import.meta.url), { type: 'module' }) as unknown as WebWorkerLike;
  } catch {
    return undefined;
  }
  const booted = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), MODULE_WORKER_BOOT_MS);
    worker.onmessage = (ev) => {
      clearTimeout(timer);
      resolve(ev.data?.id === 0 && ev.data.ready === true);
    };
    worker.onerror = (ev) => {
      ev.preventDefault?.();
      clearTimeout(timer);
      resolve(false);
    };
    worker.postMessage({ init }, []);
  });
  if (booted) return worker;
  worker.onmessage = null;
  worker.onerror = null;
  worker.terminate();
  return undefined;
}

/**
 * Web Workers running the program of leaf-worker.ts, from the module file
 * pool.worker.js when one such worker boots, else from a Blob URL of
 * WEB_POOL_WORKER_SOURCE; the module goes to each in its first message.
 */
async function webWorkers(pool: LeafHashPool, module: WasmModule): Promise<{ spawn: Spawn; kind: PoolWorkerKind }> {
  const g = globalThis as unknown as {
    Worker?: new (url: string) => WebWorkerLike;
    Blob?: new (parts: string[], opts: { type: string }) => object;
    URL?: { createObjectURL(b: object): string };
  };
  if (typeof g.Worker !== 'function') throw fail('EINVAL', 'no worker threads here: neither node:worker_threads nor Web Workers');
  const init = { module, chunkBytes: POOL_CHUNK_BYTES, minBlockSize: POOL_MIN_BLOCK_SIZE };
  const wire = (worker: WebWorkerLike, onMessage: (m: Reply) => void): PoolWorker => {
    worker.onmessage = (ev) => onMessage(ev.data);
    worker.onerror = (ev) => pool.breakPool(fail('EIO', `a leaf-hashing worker failed: ${ev.message ?? 'error'}`));
    return {
      post: (m, transfer) => worker.postMessage(m, transfer),
      ref: () => undefined,
      unref: () => undefined,
      terminate: () => worker.terminate(),
    };
  };
  let first = await bootModuleWorker(init);
  if (first) {
    return {
      kind: 'module',
      spawn: (onMessage) => {
        let worker = first;
        first = undefined;
        if (worker) {
          // Booted already: say so once its slot exists (messages are events, after it).
          queueMicrotask(() => onMessage({ id: 0, ready: true }));
        } else {
          worker = new Worker(new URL('./pool.worker.js', import.meta.url), { type: 'module' }) as unknown as WebWorkerLike;
          worker.postMessage({ init }, []);
        }
        return wire(worker, onMessage);
      },
    };
  }
  if (typeof g.Blob !== 'function' || typeof g.URL?.createObjectURL !== 'function') {
    throw fail('EINVAL', 'no worker threads here: the worker file did not load and there are no Blob URLs');
  }
  const url = g.URL.createObjectURL(new g.Blob([WEB_POOL_WORKER_SOURCE], { type: 'text/javascript' }));
  const WebWorker = g.Worker;
  return {
    kind: 'blob',
    spawn: (onMessage) => {
      const worker = new WebWorker(url);
      const w = wire(worker, onMessage);
      worker.postMessage({ init }, []);
      return w;
    },
  };
}

/**
 * The pool policy, in one place. A cold pool is started only for inputs of
 * at least POOL_START_BYTES: workers take about 45 ms to boot (measured: a
 * Node worker's start-up), the time to hash ~30 MiB on one core. A running
 * pool takes inputs from POOL_USE_BYTES (two jobs or more); smaller ones
 * stay on the calling thread.
 */
export const POOL_START_BYTES = 64 << 20;
/** A running pool takes inputs from this size (see above). */
export const POOL_USE_BYTES = 8 << 20;

/** A pool chosen for one input, and whether its workers are up yet (at once for a pool that was running). */
export interface PoolChoice {
  readonly pool: LeafHashPool;
  /** True once every worker booted; until then a caller with work of its own may hash on its thread. */
  up(): boolean;
}


/**
 * Whether to hash an input of `bytes` bytes (undefined: a stream of unknown
 * length) on the pool, and which: `parallel` false never, true always
 * (starting the pool), undefined by the sizes above. Undefined when the pool
 * does not take `params`, is off (`IOMAP_VERITY_THREADS`, one core) or
 * cannot start here. Never rejects for lack of workers.
 */
export async function choosePool(
  params: { algorithm: { name: string }; blockSize: number },
  bytes: number | undefined,
  parallel?: boolean,
): Promise<PoolChoice | undefined> {
  if (parallel === false || !poolTakes(params.algorithm.name, params.blockSize)) return undefined;
  const running = startedLeafHashPool();
  let pool: LeafHashPool | undefined;
  if (parallel === true) pool = running ?? (await leafHashPool());
  else if (running) pool = bytes === undefined || bytes >= POOL_USE_BYTES ? running : undefined;
  else pool = bytes !== undefined && bytes >= POOL_START_BYTES ? await leafHashPool() : undefined;
  if (!pool) return undefined;
  if (pool === running) return { pool, up: () => true };
  let up = false;
  pool.ready().then(() => (up = true), () => undefined);
  return { pool, up: () => up };
}

let shared: Promise<LeafHashPool | undefined> | undefined;
let sharedStarted: LeafHashPool | undefined;

/**
 * The process-wide pool as it runs now: its thread count and which workers
 * (PoolWorkerKind); undefined when none is running (not started yet, off,
 * or workers cannot start here). Never starts one.
 */
export function leafHashPoolInfo(): { threads: number; workers: PoolWorkerKind } | undefined {
  const pool = startedLeafHashPool();
  return pool ? { threads: pool.threads, workers: pool.kind } : undefined;
}

/** The process-wide pool if it was already started and still works; never starts one. */
export function startedLeafHashPool(): LeafHashPool | undefined {
  return sharedStarted?.usable ? sharedStarted : undefined;
}

/**
 * The process-wide pool, started on first use with `poolThreads()`
 * workers; undefined when that is fewer than 2 or worker threads are not
 * available here. A pool whose worker died is replaced.
 */
export async function leafHashPool(): Promise<LeafHashPool | undefined> {
  const current = shared ? await shared : undefined;
  // Workers that could not even start here will not start next time either
  // (a Content-Security-Policy, a sandbox): stay on one thread.
  if (current?.neverStarted) return undefined;
  if (current && !current.usable) shared = undefined;
  shared ??= (async () => {
    const threads = await poolThreads();
    if (threads < 2) return undefined;
    try {
      sharedStarted = await LeafHashPool.start(threads);
      return sharedStarted;
    } catch {
      // No worker_threads (an unusual runtime): the one-thread path serves.
      return undefined;
    }
  })();
  return shared;
}
