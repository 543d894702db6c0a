// The package must work where there is no Node: bundle the public API for the
// browser with esbuild, then run it in a bare JavaScript context that has only
// what a browser offers (no process, require, Buffer or fs) and check that the
// WASM module loads, a digest matches fsverity-utils and the engine runs on a
// MemoryDevice.
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { browserBundle } from '../helpers/browser-bundle.js';

describe('browser bundle', () => {
  it('bundles without Node built-ins and runs in a context with browser globals only', async () => {
    const code = await browserBundle();
    const context = vm.createContext({
      WebAssembly,
      atob,
      btoa,
      TextEncoder,
      TextDecoder,
      ReadableStream,
      queueMicrotask,
      setTimeout,
      clearTimeout,
      console,
    });
    vm.runInContext(`${code}\nglobalThis.IomapVerity = IomapVerity;`, context);
    const result = await vm.runInContext(
      `(async () => {
        const IV = globalThis.IomapVerity;
        const bytes = new TextEncoder().encode('hello');
        const d = await IV.fsverityDigest(bytes);
        const dev = new IV.MemoryDevice({ blockSize: 4096, size: 64 << 20 });
        const vol = await IV.Volume.format(dev, { maxFolioSize: 65536, cacheBytes: 1 << 20 });
        const f = await vol.create('a');
        const data = new Uint8Array(300000).map((_, i) => (i * 7) & 255);
        await f.write(12345, data);
        await f.fsync();
        await vol.dropCaches();
        const back = await f.read(12345, data.length);
        let same = back.length === data.length;
        for (let i = 0; same && i < data.length; i++) same = back[i] === data[i];
        await vol.close();
        return { digest: d.formatted, same, hasProcess: typeof process !== 'undefined' };
      })()`,
      context,
    );
    // `printf hello | fsverity digest` on Linux prints this.
    expect(result.digest).toBe('sha256:555b589c26ee43b7a2510e6c67ced9fb3190b6da6e9e683984551f5d77a763de');
    expect(result.same).toBe(true);
    expect(result.hasProcess).toBe(false);
  });
});
