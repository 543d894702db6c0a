/**
 * The part of the glue a worker thread runs: instantiate the module it was
 * handed and hash blocks in its own memory. scripts/embed-wasm.mjs bundles
 * this file (and what it imports: the same src/wasm sources the main thread
 * uses) into src/wasm/glue.generated.ts, a script that defines the global
 * `IomapVerityWasm` with these exports, for worker programs that are
 * started from source text and so can import nothing.
 */
export { instantiateWasmSync, Wasm } from './index.js';
export { Sha256BlockHasher } from './sha256.js';
export { Sha512BlockHasher } from './sha512.js';
export { DmverityBlockHasher } from './dmverity.js';
export { createLeafHasher, failure, fromBytes, serveWebWorker } from './leaf-worker.js';
