/**
 * The leaf-hashing pool's browser worker as a module file of its own, for
 * bundlers: pool.ts starts it as
 * `new Worker(new URL('./pool.worker.js', import.meta.url), { type: 'module' })`,
 * the form Vite and webpack recognise and emit as a worker chunk, so a page
 * whose Content-Security-Policy allows workers from its own origin only
 * (`worker-src 'self'`, no blob:) still hashes in parallel. Where the file
 * cannot be loaded the pool falls back to a Blob URL (see pool.ts). The
 * program itself is src/wasm/leaf-worker.ts, shared with those workers.
 */
import { serveWebWorker, type WorkerScope } from '../wasm/leaf-worker.js';

serveWebWorker(globalThis as unknown as WorkerScope);
