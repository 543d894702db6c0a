/**
 * The programs the worker threads of the leaf-hashing pool run (see
 * pool.ts), kept as source text so that they need no file of their own at
 * run time: the same strings work from the TypeScript sources (tests), from
 * dist/, and from a bundle. They can import nothing, so they carry the WASM
 * glue of src/wasm as text (WASM_GLUE_SOURCE, bundled from the same sources
 * at build time) and use it through the global it defines; they never call
 * the module's exports themselves.
 *
 * Both run one core, src/wasm/leaf-worker.ts (which also serves
 * pool.worker.ts, the module file bundlers recognise): the worker's own
 * instance of the module, memory allocated once at start, and the
 * zero-aware SIMD kernel of the job's algorithm over a range of whole
 * blocks.
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

// The program is src/wasm/leaf-worker.ts, reached through the glue's global.
const CORE = WASM_GLUE_SOURCE + String.raw`
const { createLeafHasher, fromBytes, failure } = IomapVerityWasm;
`;

/** The Node worker_thread's program (run with `eval`; its module and sizes come in `workerData`). */
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

/** The browser worker's program, for a Blob URL: the same as pool.worker.ts, with the glue inlined. */
export const WEB_POOL_WORKER_SOURCE = String.raw`
'use strict';
${WASM_GLUE_SOURCE}
IomapVerityWasm.serveWebWorker(self);
`;
