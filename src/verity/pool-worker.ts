/**
 * The programs the worker threads of the leaf-hashing pool run (see
 * pool.ts), kept as source text so that they need no file of their own at
 * run time: the same strings work from the TypeScript sources (tests), from
 * dist/, and from a bundle. They can import nothing, so they carry the WASM
 * glue of src/wasm as text (WASM_GLUE_SOURCE, bundled from the same sources
 * at build time) and use it through the global it defines; they never call
 * the module's exports themselves.
 *
 * Both share one core: the worker's own instance of the module, memory
 * allocated once at start, and the zero-aware SIMD kernel of the job's
 * algorithm (SHA-256 4-lane, SHA-512 2-lane) over a range of whole
 * blocks, answered with the digests (transferred, not copied) or, when
 * every block was zero, with no digests at all.
 *
 * - Node (worker_threads): a job names a range of an open file descriptor
 *   (`fd`, `pos`), read with positional reads straight into the worker's
 *   WASM memory (descriptors are process-wide, so no bytes cross threads on
 *   the way in), or carries the bytes (`data`, transferred).
 * - Web Workers (browsers): started from a Blob URL, given the compiled
 *   module in a first `init` message; jobs carry their bytes.
 *
 * Messages in:  Node: { id, fd, pos, blocks, blockSize, salt, algorithm, dmFormat? } or { id, data, blocks, blockSize, salt, algorithm, dmFormat? }
 *               Web:  { init: { module, chunkBytes, minBlockSize } } once, then { id, data, blocks, blockSize, salt, algorithm, dmFormat? }
 * Messages out: { id: 0, ready: true } once, at start; then per job
 * { id, zeros, digests? } or { id, error: { code, message, endedAt? } }
 * (`endedAt` with code ESHORT: where the file ended, as a number)
 */
import { WASM_GLUE_SOURCE } from '../wasm/glue.generated.js';

const CORE = WASM_GLUE_SOURCE + String.raw`
function createLeafHasher(module, chunkBytes, minBlock) {
  const wasm = IomapVerityWasm.instantiateWasmSync(module);
  const buf = wasm.alloc(chunkBytes);
  // Room for the larger digests (SHA-512's 64 bytes) of the smallest blocks.
  const dig = wasm.alloc((chunkBytes / minBlock) * 64);
  let hasher;
  let ctxKey = '';

  // dmFormat (0 or 1) selects dm-verity's framing (the salt unpadded,
  // after or before each block, SHA-256 only); absent, fs-verity's.
  function setContext(algorithm, blockSize, salt, dmFormat) {
    const key = algorithm + ':' + blockSize + ':' + dmFormat + ':' + Array.prototype.join.call(salt, ',');
    if (key === ctxKey) return;
    if (hasher) hasher.dispose();
    hasher = undefined;
    ctxKey = '';
    if (dmFormat !== undefined && algorithm === 'sha256') hasher = IomapVerityWasm.DmverityBlockHasher.create(wasm, salt, dmFormat, blockSize);
    else if (dmFormat !== undefined) throw Object.assign(new Error('no dm-verity kernel for hash algorithm ' + String(algorithm)), { code: 'EINVAL' });
    else if (algorithm === 'sha512') hasher = IomapVerityWasm.Sha512BlockHasher.create(wasm, salt, blockSize);
    else if (algorithm === 'sha256') hasher = IomapVerityWasm.Sha256BlockHasher.create(wasm, salt, blockSize);
    else throw Object.assign(new Error('no kernel for hash algorithm ' + String(algorithm)), { code: 'EINVAL' });
    ctxKey = key;
  }

  // fill(view) puts the job's bytes into view (the worker's WASM memory).
  return function hash(job, fill) {
    const { blocks, blockSize, salt, algorithm } = job;
    const len = blocks * blockSize;
    if (len > chunkBytes || blockSize < minBlock) {
      throw Object.assign(new Error('job of ' + blocks + ' blocks of ' + blockSize + ' bytes does not fit the worker'), { code: 'EINVAL' });
    }
    setContext(algorithm, blockSize, salt, job.dmFormat);
    fill(wasm.bytes(buf, len));
    const zeros = hasher.hashBlocksAtSkipZero(buf, blocks, dig);
    if (zeros === blocks) return { id: job.id, zeros };
    const ds = algorithm === 'sha512' ? 64 : 32;
    return { id: job.id, zeros, digests: wasm.bytes(dig, blocks * ds).slice() };
  };
}

function fromBytes(job) {
  return (view) => {
    const data = new Uint8Array(job.data);
    if (data.length !== view.length) {
      throw Object.assign(new Error('job carries ' + data.length + ' bytes for ' + view.length), { code: 'EINVAL' });
    }
    view.set(data);
  };
}

function failure(job, e) {
  const error = { code: (e && e.code) || 'EIO', message: String((e && e.message) || e) };
  if (e && typeof e.endedAt === 'number') error.endedAt = e.endedAt;
  return { id: job.id, error };
}
`;

export const POOL_WORKER_SOURCE = String.raw`
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const { readSync } = require('node:fs');
${CORE}
const hash = createLeafHasher(workerData.module, workerData.chunkBytes, workerData.minBlockSize);

function fromFile(job) {
  return (view) => {
    let got = 0;
    while (got < view.length) {
      const n = readSync(job.fd, view, got, view.length - got, job.pos + got);
      if (n === 0) {
        throw Object.assign(new Error('the file ended at ' + (job.pos + got) + ' bytes while being read'), { code: 'ESHORT', endedAt: job.pos + got });
      }
      got += n;
    }
  };
}

// Booting a worker takes tens of milliseconds: say when this one can take work.
parentPort.postMessage({ id: 0, ready: true });

parentPort.on('message', (job) => {
  let reply;
  try {
    reply = hash(job, job.data ? fromBytes(job) : fromFile(job));
  } catch (e) {
    parentPort.postMessage(failure(job, e));
    return;
  }
  if (reply.digests) parentPort.postMessage(reply, [reply.digests.buffer]);
  else parentPort.postMessage(reply);
});
`;

export const WEB_POOL_WORKER_SOURCE = String.raw`
'use strict';
${CORE}
let hash;
self.onmessage = (ev) => {
  const m = ev.data;
  if (m.init) {
    try {
      hash = createLeafHasher(m.init.module, m.init.chunkBytes, m.init.minBlockSize);
    } catch (e) {
      self.postMessage(failure({ id: 0 }, e));
      return;
    }
    self.postMessage({ id: 0, ready: true });
    return;
  }
  let reply;
  try {
    reply = hash(m, fromBytes(m));
  } catch (e) {
    self.postMessage(failure(m, e));
    return;
  }
  if (reply.digests) self.postMessage(reply, [reply.digests.buffer]);
  else self.postMessage(reply);
};
`;
