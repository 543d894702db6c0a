import { readFileSync } from 'node:fs';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { WASM_FUNCTION_ARITY, WASM_VALUE_EXPORTS } from '../../src/wasm/exports.js';
import { WASM_GLUE_SOURCE } from '../../src/wasm/glue.generated.js';
import { instantiateWasm, wasmModule } from '../../src/wasm/index.js';
import { Sha256BlockHasher } from '../../src/wasm/sha256.js';
import { bundleWorkerGlue, glueModule } from '../../scripts/bundle-glue.mjs';

describe('the WASM glue', () => {
  it('describes every export of the module, each function with its parameter count', async () => {
    const mod = await wasmModule();
    const actual = WebAssembly.Module.exports(mod)
      .map((e) => `${e.name}:${e.kind}`)
      .sort();
    const described = [
      ...Object.keys(WASM_FUNCTION_ARITY).map((n) => `${n}:function`),
      ...Object.entries(WASM_VALUE_EXPORTS).map(([n, k]) => `${n}:${k === 'Memory' ? 'memory' : 'global'}`),
    ].sort();
    expect(actual).toEqual(described);
    const w = await instantiateWasm(mod);
    for (const [name, arity] of Object.entries(WASM_FUNCTION_ARITY)) {
      expect((w.x as unknown as Record<string, (...a: number[]) => unknown>)[name]!.length, name).toBe(arity);
    }
  });

  it('refuses an instance whose exports are not the described ones, naming the export', async () => {
    const { Wasm } = await import('../../src/wasm/index.js');
    const fake = { exports: { memory: new WebAssembly.Memory({ initial: 1 }) } } as unknown as WebAssembly.Instance;
    expect(() => new Wasm(fake)).toThrow(/does not match its glue: export arena_order_for/);
  });

  it("the workers' copy is the bundle of the current src/wasm sources (run `npm run embed` after changing them)", async () => {
    const fresh = glueModule(await bundleWorkerGlue());
    const committed = readFileSync(new URL('../../src/wasm/glue.generated.ts', import.meta.url), 'utf8');
    expect(committed).toBe(fresh);
  });

  it("the workers' copy hashes exactly as the main glue does, in a realm of its own", async () => {
    const mod = await wasmModule();
    const g: { IomapVerityWasm?: typeof import('../../src/wasm/worker-glue.js') } = {};
    runInNewContext(`${WASM_GLUE_SOURCE}\nthis.IomapVerityWasm = IomapVerityWasm;`, g);
    const glue = g.IomapVerityWasm!;
    const theirs = glue.instantiateWasmSync(mod);
    const ours = await instantiateWasm(mod);
    const salt = Uint8Array.from([1, 2, 3, 4, 5]);
    const data = new Uint8Array(8 * 4096);
    for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 24;
    data.fill(0, 3 * 4096, 4 * 4096);
    const digests = (w: typeof ours, H: typeof Sha256BlockHasher) => {
      const h = H.create(w, salt, 4096);
      const src = w.alloc(data.length);
      const dst = w.alloc(8 * 32);
      w.u8().set(data, src);
      const zeros = h.hashBlocksAtSkipZero(src, 8, dst);
      const out = w.bytes(dst, 8 * 32).slice();
      h.dispose();
      return { zeros, out: Array.from(out) };
    };
    expect(digests(theirs as unknown as typeof ours, glue.Sha256BlockHasher as unknown as typeof Sha256BlockHasher)).toEqual(
      digests(ours, Sha256BlockHasher),
    );
  });
});
