/**
 * The program each worker thread of the leaf-hashing pool runs (see
 * pool.ts), kept as source text so that it needs no file of its own at run
 * time: the same string works from the TypeScript sources (tests), from
 * dist/, and from a bundle. It imports nothing of ours; it talks to the
 * WebAssembly module's exports directly and so must follow
 * src/wasm/sha256.ts's layout of a hashing context (context, then the salt
 * staged at +2048, in one 4 KiB page).
 *
 * A job names a range of whole blocks of an open file descriptor. The worker
 * reads it with positional reads straight into its own WASM memory (file
 * descriptors are process-wide, so no bytes cross threads on the way in),
 * hashes it with the zero-aware 4-lane kernel, and answers with the digests
 * (transferred, not copied) or, when every block was zero, with no digests
 * at all. All memory is allocated once, at start: nothing per job but the
 * digest array handed back.
 *
 * Messages in:  { id, fd, pos, blocks, blockSize, salt }
 * Messages out: { id: 0, ready: true } once, at start; then per job
 * { id, zeros, digests? } or { id, error: { code, message } }
 */
export const POOL_WORKER_SOURCE = String.raw`
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const { readSync } = require('node:fs');

const CHUNK = workerData.chunkBytes;
const MIN_BLOCK = workerData.minBlockSize;
const CTX_PAGE = 4096;
const OFF_SALT = 2048;

const instance = new WebAssembly.Instance(workerData.module, {
  env: {
    abort(_m, _f, line, col) {
      throw new Error('WebAssembly abort at ' + line + ':' + col);
    },
  },
});
const x = instance.exports;
const ctx = x.arena_alloc(CTX_PAGE) >>> 0;
const buf = x.arena_alloc(CHUNK) >>> 0;
const dig = x.arena_alloc((CHUNK / MIN_BLOCK) * 32) >>> 0;
if (ctx === 0 || buf === 0 || dig === 0) throw new Error('leaf-hashing worker: WebAssembly memory exhausted at start');

let ctxKey = '';

function setContext(blockSize, salt) {
  const key = blockSize + ':' + Buffer.from(salt).toString('hex');
  if (key === ctxKey) return;
  new Uint8Array(x.memory.buffer).set(salt, ctx + OFF_SALT);
  if (x.sha256_ctx_init(ctx, ctx + OFF_SALT, salt.length, blockSize) !== 0) {
    throw Object.assign(new Error('the SHA-256 kernel refused block size ' + blockSize), { code: 'EINVAL' });
  }
  ctxKey = key;
}

function run(job) {
  const { fd, pos, blocks, blockSize, salt } = job;
  const len = blocks * blockSize;
  if (len > CHUNK || blockSize < MIN_BLOCK) {
    throw Object.assign(new Error('job of ' + blocks + ' blocks of ' + blockSize + ' bytes does not fit the worker'), { code: 'EINVAL' });
  }
  setContext(blockSize, salt);
  const view = new Uint8Array(x.memory.buffer, buf, len);
  let got = 0;
  while (got < len) {
    const n = readSync(fd, view, got, len - got, pos + got);
    if (n === 0) {
      throw Object.assign(new Error('the file ended at ' + (pos + got) + ' bytes while being read'), { code: 'ESHORT' });
    }
    got += n;
  }
  const zeros = x.sha256_blocks_skip_zero(ctx, buf, blocks, dig, 4) >>> 0;
  if (zeros === blocks) return { id: job.id, zeros };
  const digests = new Uint8Array(blocks * 32);
  digests.set(new Uint8Array(x.memory.buffer, dig, blocks * 32));
  return { id: job.id, zeros, digests };
}

// Booting a worker takes tens of milliseconds: say when this one can take work.
parentPort.postMessage({ id: 0, ready: true });

parentPort.on('message', (job) => {
  let reply;
  try {
    reply = run(job);
  } catch (e) {
    parentPort.postMessage({ id: job.id, error: { code: (e && e.code) || 'EIO', message: String((e && e.message) || e) } });
    return;
  }
  if (reply.digests) parentPort.postMessage(reply, [reply.digests.buffer]);
  else parentPort.postMessage(reply);
});
`;
