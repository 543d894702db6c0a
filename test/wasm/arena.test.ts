import { describe, expect, it } from 'vitest';
import { instantiateWasm } from '../../src/wasm/index.js';

describe('WASM arena (buddy allocator)', () => {
  it('aligns each run to its size, coalesces buddies and refuses stray frees', async () => {
    const w = await instantiateWasm();
    const x = w.x;
    const a = w.alloc(4096);
    const b = w.alloc(4096 * 512);
    expect(b % (4096 * 512)).toBe(0);
    expect(x.arena_size_of(a)).toBe(4096);
    expect(x.arena_size_of(b)).toBe(2 << 20);
    expect(x.arena_free(a + 4096)).toBe(-1);
    w.free(a);
    expect(x.arena_free(a)).toBe(-1); // double free refused
    w.free(b);
    expect(x.arena_bytes_used()).toBe(0);
    // After everything is freed, a whole 4 MiB run is available again without growing.
    const reserved = x.arena_bytes_reserved();
    const c = x.arena_alloc_order(10) >>> 0;
    expect(c).not.toBe(0);
    expect(x.arena_bytes_reserved()).toBe(reserved);
    w.free(c);
  });

  it('survives random alloc/free sequences without overlap', async () => {
    const w = await instantiateWasm();
    const live = new Map<number, number>();
    let seed = 12345;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    for (let i = 0; i < 5000; i++) {
      if (live.size > 0 && rnd() < 0.45) {
        const keys = [...live.keys()];
        const k = keys[Math.floor(rnd() * keys.length)];
        w.free(k);
        live.delete(k);
      } else {
        const size = 4096 << Math.floor(rnd() * 8);
        const p = w.alloc(size);
        expect(p % size).toBe(0);
        let overlaps = 0;
        for (const [q, s] of live) if (!(p + size <= q || q + s <= p)) overlaps++;
        expect(overlaps).toBe(0);
        live.set(p, size);
      }
    }
    for (const k of live.keys()) w.free(k);
    expect(w.x.arena_bytes_used()).toBe(0);
  });
});
