import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ExtentMap, type Extent, type ExtentState } from '../../src/fs/extent-map.js';
import { Allocator } from '../../src/fs/allocator.js';
import { isErrno } from '../../src/errors.js';

/** Model: one entry per file block, or undefined for a hole. */
type Cell = { dev: number; state: ExtentState } | undefined;

function expand(m: ExtentMap, n: number): Cell[] {
  const out: Cell[] = new Array(n).fill(undefined);
  for (const e of m.extents()) {
    for (let i = 0; i < e.blocks && e.fileBlock + i < n; i++) {
      out[e.fileBlock + i] = { dev: e.state === 'delalloc' ? -1 : e.devBlock + i, state: e.state };
    }
  }
  return out;
}

function checkInvariants(m: ExtentMap): void {
  const ex = m.extents();
  for (let i = 1; i < ex.length; i++) {
    const a = ex[i - 1];
    const b = ex[i];
    expect(a.fileBlock + a.blocks).toBeLessThanOrEqual(b.fileBlock);
    // Merged: no two touching neighbours that could be one extent.
    const touching = a.fileBlock + a.blocks === b.fileBlock && a.state === b.state;
    if (touching && a.state !== 'delalloc') expect(a.devBlock + a.blocks).not.toBe(b.devBlock);
    if (touching) expect(a.state).not.toBe('delalloc');
  }
}

describe('ExtentMap', () => {
  it('looks up extents and holes up to the next extent', () => {
    const m = new ExtentMap();
    m.insert({ fileBlock: 10, blocks: 5, devBlock: 100, state: 'written' });
    expect(m.lookup(3)).toEqual({ kind: 'hole', fileBlock: 3, blocks: 7 });
    expect(m.lookup(12)).toEqual({ kind: 'extent', extent: { fileBlock: 10, blocks: 5, devBlock: 100, state: 'written' } });
    expect(m.lookup(15)).toEqual({ kind: 'hole', fileBlock: 15, blocks: Infinity });
  });

  it('merges neighbours contiguous on the device and splits on punch', () => {
    const m = new ExtentMap();
    m.insert({ fileBlock: 0, blocks: 4, devBlock: 50, state: 'written' });
    m.insert({ fileBlock: 4, blocks: 4, devBlock: 54, state: 'written' });
    expect(m.count).toBe(1);
    m.insert({ fileBlock: 8, blocks: 2, devBlock: 70, state: 'written' });
    expect(m.count).toBe(2);
    const removed = m.punch(2, 9);
    expect(removed).toEqual([
      { fileBlock: 2, blocks: 6, devBlock: 52, state: 'written' },
      { fileBlock: 8, blocks: 1, devBlock: 70, state: 'written' },
    ]);
    expect(m.extents()).toEqual([
      { fileBlock: 0, blocks: 2, devBlock: 50, state: 'written' },
      { fileBlock: 9, blocks: 1, devBlock: 71, state: 'written' },
    ]);
  });

  it('converts unwritten to written and merges the result', () => {
    const m = new ExtentMap();
    m.insert({ fileBlock: 0, blocks: 8, devBlock: 20, state: 'unwritten' });
    expect(m.convertUnwritten(2, 4)).toBe(2);
    expect(m.count).toBe(3);
    expect(m.convertUnwritten(0, 8)).toBe(6);
    expect(m.extents()).toEqual([{ fileBlock: 0, blocks: 8, devBlock: 20, state: 'written' }]);
  });

  it('round-trips committed records without delalloc', () => {
    const m = new ExtentMap();
    m.insert({ fileBlock: 0, blocks: 2, devBlock: 9, state: 'written' });
    m.insert({ fileBlock: 2, blocks: 2, devBlock: -1, state: 'delalloc' });
    m.insert({ fileBlock: 4, blocks: 1, devBlock: 30, state: 'unwritten' });
    const recs = m.toRecords();
    expect(recs).toEqual([
      { fileBlock: 0, devBlock: 9, blocks: 2, unwritten: false },
      { fileBlock: 4, devBlock: 30, blocks: 1, unwritten: true },
    ]);
    expect(ExtentMap.fromRecords(recs).toRecords()).toEqual(recs);
  });

  it('refuses malformed extents', () => {
    const m = new ExtentMap();
    expect(() => m.insert({ fileBlock: -1, blocks: 1, devBlock: 0, state: 'written' })).toThrow(/invalid extent/);
    expect(() => m.insert({ fileBlock: 0, blocks: 0, devBlock: 0, state: 'written' })).toThrow(/invalid extent/);
    expect(() => m.insert({ fileBlock: 0, blocks: 1, devBlock: 3, state: 'delalloc' })).toThrow(/invalid extent/);
  });

  it('agrees with a per-block model under random insert/punch/convert', () => {
    const N = 64;
    const op = fc.oneof(
      fc.record({
        t: fc.constant('insert' as const),
        s: fc.nat(N - 1),
        n: fc.integer({ min: 1, max: 16 }),
        dev: fc.nat(200),
        st: fc.constantFrom<ExtentState>('written', 'unwritten', 'delalloc'),
      }),
      fc.record({ t: fc.constant('punch' as const), s: fc.nat(N - 1), n: fc.integer({ min: 0, max: 20 }) }),
      fc.record({ t: fc.constant('convert' as const), s: fc.nat(N - 1), n: fc.integer({ min: 0, max: 20 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
        const m = new ExtentMap();
        const model: Cell[] = new Array(N + 40).fill(undefined);
        for (const o of ops) {
          if (o.t === 'insert') {
            const e: Extent = { fileBlock: o.s, blocks: o.n, devBlock: o.st === 'delalloc' ? -1 : o.dev, state: o.st };
            m.insert(e);
            for (let i = 0; i < o.n; i++) model[o.s + i] = { dev: o.st === 'delalloc' ? -1 : o.dev + i, state: o.st };
          } else if (o.t === 'punch') {
            const removed = m.punch(o.s, o.s + o.n);
            const before = model.slice(o.s, o.s + o.n).filter((c) => c !== undefined).length;
            expect(removed.reduce((s, e) => s + e.blocks, 0)).toBe(before);
            for (let i = 0; i < o.n; i++) model[o.s + i] = undefined;
          } else {
            m.convertUnwritten(o.s, o.s + o.n);
            for (let i = 0; i < o.n; i++) {
              const c = model[o.s + i];
              if (c?.state === 'unwritten') model[o.s + i] = { dev: c.dev, state: 'written' };
            }
          }
          checkInvariants(m);
          expect(expand(m, model.length)).toEqual(model);
          for (let b = 0; b < model.length; b += 7) {
            const l = m.lookup(b);
            if (model[b] === undefined) expect(l.kind).toBe('hole');
            else expect(l.kind === 'extent' && l.extent.state).toBe(model[b]!.state);
          }
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('Allocator', () => {
  it('allocates contiguously near the hint and reports ENOSPC with numbers', () => {
    const a = new Allocator(4, 100);
    expect(a.freeBlocks).toBe(96);
    expect(a.allocate(10, 0)).toEqual({ start: 4, blocks: 10 });
    expect(a.allocate(10, 14)).toEqual({ start: 14, blocks: 10 });
    expect(a.allocate(5, 50)).toEqual({ start: 50, blocks: 5 });
    expect(a.allocate(100, 0)).toEqual({ start: 55, blocks: 45 }); // the largest run, partial
    expect(a.freeBlocks).toBe(26);
    let err: unknown;
    try {
      a.reserve(1000);
    } catch (e) {
      err = e;
    }
    expect(isErrno(err, 'ENOSPC')).toBe(true);
    expect(String((err as Error).message)).toMatch(/1000 blocks needed, 26 available/);
  });

  it('keeps reservations: unreserved allocations cannot eat reserved space', () => {
    const a = new Allocator(0, 10);
    a.reserve(8);
    expect(a.availableBlocks).toBe(2);
    expect(a.allocate(5, 0).blocks).toBe(2);
    expect(() => a.allocate(1, 0)).toThrow(/no space left/);
    expect(a.allocate(8, 0, true).blocks).toBe(8);
    expect(a.reservedBlocks).toBe(0);
  });

  it('holds freed blocks back for two commits (the one before the next is what open falls back to)', () => {
    const a = new Allocator(0, 8);
    const r = a.allocate(8, 0);
    a.release(r.start, 4);
    expect(a.freeBlocks).toBe(0);
    expect(a.pendingBlocks).toBe(4);
    expect(() => a.reserve(1)).toThrow(/4 more become free over the next two syncs/);
    a.committed();
    expect(a.freeBlocks).toBe(0);
    expect(a.pendingBlocks).toBe(4);
    a.committed();
    expect(a.freeBlocks).toBe(4);
    a.release(4, 4);
    a.committed();
    a.committed();
    expect(a.freeRuns()).toEqual([{ start: 0, blocks: 8 }]);
    a.release(0, 1);
    a.committed();
    expect(() => a.committed()).toThrow(/double free/);
  });

  it('keeps the blocks of the fallback commit out of use until the second commit', () => {
    const a = new Allocator(0, 10, [{ start: 0, blocks: 2 }], [{ start: 1, blocks: 4 }]);
    expect(a.freeRuns()).toEqual([{ start: 5, blocks: 5 }]);
    expect(a.pendingBlocks).toBe(3);
    a.committed();
    expect(a.freeRuns()).toEqual([{ start: 2, blocks: 8 }]);
  });

  it('starts from the runs of committed extents', () => {
    const a = new Allocator(2, 20, [
      { start: 5, blocks: 3 },
      { start: 2, blocks: 1 },
    ]);
    expect(a.freeRuns()).toEqual([
      { start: 3, blocks: 2 },
      { start: 8, blocks: 12 },
    ]);
    expect(() => new Allocator(2, 20, [{ start: 1, blocks: 2 }])).toThrow(/outside/);
  });

  it('never hands out a block twice under random use', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 1, max: 9 }), fc.nat(64)), { maxLength: 60 }), (ops) => {
        const a = new Allocator(3, 64);
        const owned = new Set<number>();
        const runs: { start: number; blocks: number }[] = [];
        for (const [alloc, n, hint] of ops) {
          if (alloc || runs.length === 0) {
            if (a.availableBlocks === 0) continue;
            const r = a.allocate(n, hint);
            for (let b = r.start; b < r.start + r.blocks; b++) {
              expect(owned.has(b)).toBe(false);
              expect(b >= 3 && b < 64).toBe(true);
              owned.add(b);
            }
            runs.push(r);
          } else {
            const r = runs.splice(hint % runs.length, 1)[0];
            a.release(r.start, r.blocks);
            for (let b = r.start; b < r.start + r.blocks; b++) owned.delete(b);
            if (n > 5) a.committed();
          }
          expect(a.freeBlocks + a.pendingBlocks + owned.size).toBe(61);
        }
      }),
      { numRuns: 300 },
    );
  });
});
