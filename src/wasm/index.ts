/**
 * Loading the iomap-verity WebAssembly module, and its typed face.
 *
 * The module is embedded as base64 (src/wasm/module.generated.ts), decoded and
 * compiled lazily on first use, once per realm; importing this file does
 * nothing. It needs neither `fs` nor a bundler, so it loads in Node and in
 * browsers alike. Worker threads get the compiled `WebAssembly.Module` and
 * instantiate their own copy.
 *
 * Every export takes and returns numbers only. Views over memory are rebuilt
 * after `memory.grow` detaches the old buffer: call `wasm.u8()` again after
 * any call that may allocate, never keep a view across one.
 */
import { fail } from '../errors.js';
import type { ArenaExports } from './arena.js';
import { WASM_BASE64 } from './module.generated.js';

export type { ArenaExports } from './arena.js';

/** All exports of the module. Each assembly/ file has its own interface here. */
export interface WasmExports extends ArenaExports {
  memory: WebAssembly.Memory;
  // Each assembly/*.ts adds its exports through its own interface file in
  // src/wasm/; they are merged in `Wasm.x` via declaration merging below.
  [name: string]: unknown;
}

let modulePromise: Promise<WebAssembly.Module> | undefined;
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
export function wasmModule(): Promise<WebAssembly.Module> {
  modulePromise ??= WebAssembly.compile(decodeBase64(WASM_BASE64) as BufferSource);
  return modulePromise;
}

/** A live instance: its exports and views over its memory. */
export class Wasm {
  readonly x: WasmExports;
  private buf: ArrayBuffer | undefined;
  private view8: Uint8Array = new Uint8Array(0);
  private viewDv: DataView = new DataView(new ArrayBuffer(0));

  constructor(instance: WebAssembly.Instance) {
    this.x = instance.exports as unknown as WasmExports;
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

  /** Allocate a power-of-two run of pages holding `bytes`; ENOMEM-like EIO when memory is exhausted. */
  alloc(bytes: number): number {
    const p = this.x.arena_alloc(bytes) >>> 0;
    if (p === 0) throw fail('ENOSPC', `WebAssembly memory exhausted allocating ${bytes} bytes`);
    return p;
  }

  free(ptr: number): void {
    if (this.x.arena_free(ptr) !== 0) throw fail('EINVAL', `arena_free of a pointer that is not allocated: ${ptr}`);
  }
}

/** Instantiate a fresh instance of the module (for a worker, or a test). */
export async function instantiateWasm(mod?: WebAssembly.Module): Promise<Wasm> {
  const m = mod ?? (await wasmModule());
  const instance = await WebAssembly.instantiate(m, {
    env: {
      abort(_msg: number, _file: number, line: number, col: number) {
        throw fail('EIO', `WebAssembly abort at ${line}:${col}`);
      },
    },
  });
  return new Wasm(instance);
}

/** The shared instance of this realm, created on first use. */
export function loadWasm(): Promise<Wasm> {
  instancePromise ??= instantiateWasm();
  return instancePromise;
}
