/**
 * Loading the iomap-verity WebAssembly module, and its typed face.
 *
 * The module is embedded as base64 (src/wasm/module.generated.ts), decoded and
 * compiled lazily on first use, once per realm; importing this file does
 * nothing. It needs neither `fs` nor a bundler, so it loads in Node and in
 * browsers alike. Worker threads get the compiled `WebAssembly.Module` and
 * instantiate their own copy: the pool's workers run this same glue, bundled
 * into src/wasm/glue.generated.ts at build time.
 *
 * Every export takes and returns numbers only; src/wasm/exports.ts lists
 * them. Views over memory are rebuilt after `memory.grow` detaches the old
 * buffer: call `wasm.u8()` again after any call that may allocate, never
 * keep a view across one.
 */
import { fail } from '../errors.js';
import { checkWasmExports, type WasmExports } from './exports.js';
import { WASM_BASE64 } from './module.generated.js';
import { webAssembly, type WasmImports, type WasmInstance, type WasmModule } from './webassembly.js';

export type { WasmExports, WasmFunctions } from './exports.js';
export type { WasmGlobal, WasmImports, WasmInstance, WasmMemory, WasmModule } from './webassembly.js';

let modulePromise: Promise<WasmModule> | undefined;
let instancePromise: Promise<Wasm> | undefined;

function decodeBase64(b64: string): Uint8Array {
  if (typeof atob === 'function') {
    const bin = atob(b64);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  throw fail('EIO', 'no base64 decoder (atob) in this JavaScript environment');
}

/** The compiled module, compiled once per realm. */
export function wasmModule(): Promise<WasmModule> {
  modulePromise ??= webAssembly().compile(decodeBase64(WASM_BASE64));
  return modulePromise;
}

/**
 * A live instance: its typed exports (`x`, checked against
 * src/wasm/exports.ts when the instance is wrapped) and views over its
 * memory. Only src/wasm and src/pagecache call `x` directly; the layers
 * above go through their methods.
 */
export class Wasm {
  /** The module's exports, typed. */
  readonly x: WasmExports;
  private buf: ArrayBuffer | undefined;
  private view8: Uint8Array = new Uint8Array(0);
  private viewDv: DataView = new DataView(new ArrayBuffer(0));

  /** Wrap `instance`; EIO when its exports are not the ones this glue describes. */
  constructor(instance: WasmInstance) {
    this.x = checkWasmExports(instance.exports);
  }

  private refresh(): void {
    const b = this.x.memory.buffer;
    if (b !== this.buf) {
      this.buf = b as ArrayBuffer;
      this.view8 = new Uint8Array(b);
      this.viewDv = new DataView(b);
    }
  }

  /** A byte view of all of memory, current as of now. */
  u8(): Uint8Array {
    this.refresh();
    return this.view8;
  }

  /** A DataView of all of memory, current as of now. */
  dv(): DataView {
    this.refresh();
    return this.viewDv;
  }

  /** A view of `len` bytes at `ptr`, valid until the next allocation. */
  bytes(ptr: number, len: number): Uint8Array {
    this.refresh();
    return this.view8.subarray(ptr, ptr + len);
  }

  /** Allocate a power-of-two run of pages holding `bytes` (not zeroed); ENOSPC when memory is exhausted. */
  alloc(bytes: number): number {
    const p = this.x.arena_alloc(bytes) >>> 0;
    if (p === 0) throw fail('ENOSPC', `WebAssembly memory exhausted allocating ${bytes} bytes`);
    return p;
  }

  /** Give back a run from `alloc`; EINVAL (and nothing changes) for a pointer that is not one. */
  free(ptr: number): void {
    if (this.x.arena_free(ptr) !== 0) throw fail('EINVAL', `arena_free of a pointer that is not allocated: ${ptr}`);
  }
}

/** What the module imports: only AssemblyScript's abort, which becomes an EIO. */
function wasmImports(): WasmImports {
  return {
    env: {
      abort(_msg: number, _file: number, line: number, col: number) {
        throw fail('EIO', `WebAssembly abort at ${line}:${col}`);
      },
    },
  };
}

/** Instantiate a fresh instance of the module (for a worker, or a test). */
export async function instantiateWasm(mod?: WasmModule): Promise<Wasm> {
  const m = mod ?? (await wasmModule());
  return new Wasm(await webAssembly().instantiate(m, wasmImports()));
}

/**
 * Instantiate a compiled module synchronously: for worker threads, which
 * receive the module and must answer at once. Browsers refuse this on their
 * main thread for all but tiny modules; use `instantiateWasm` there.
 */
export function instantiateWasmSync(mod: WasmModule): Wasm {
  const { Instance } = webAssembly();
  return new Wasm(new Instance(mod, wasmImports()));
}

/** The shared instance of this realm, created on first use. */
export function loadWasm(): Promise<Wasm> {
  instancePromise ??= instantiateWasm();
  return instancePromise;
}
