/**
 * The parts of the WebAssembly JavaScript API the glue uses, typed here so
 * that the package's declarations need neither the DOM lib nor a Node
 * version whose types carry `WebAssembly` (a consumer compiling with
 * `--lib es2022 --types node` must not see `Cannot find namespace
 * 'WebAssembly'`). Each engine's real objects satisfy these shapes.
 */

/** A module's linear memory: grows, never shrinks; views detach when it grows. */
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(deltaPages: number): number;
}

/** An exported global (read through `value`). */
export interface WasmGlobal {
  value: unknown;
}

/** A compiled module: opaque here, structured-cloneable to workers. */
export interface WasmModule {
  readonly [Symbol.toStringTag]?: string;
}

/** What a module imports, by module and field name. */
export type WasmImports = Record<string, Record<string, unknown>>;

/** A live instance; its exports are checked before use (exports.ts). */
export interface WasmInstance {
  readonly exports: Record<string, unknown>;
}

interface WebAssemblyApi {
  compile(bytes: Uint8Array): Promise<WasmModule>;
  instantiate(module: WasmModule, imports: WasmImports): Promise<WasmInstance>;
  Instance: new (module: WasmModule, imports: WasmImports) => WasmInstance;
  Memory: abstract new (...args: never[]) => WasmMemory;
  Global: abstract new (...args: never[]) => WasmGlobal;
}

/** This realm's `WebAssembly` namespace; EIO-worthy absence is the caller's to report. */
export function webAssembly(): WebAssemblyApi {
  return (globalThis as unknown as { WebAssembly: WebAssemblyApi }).WebAssembly;
}
