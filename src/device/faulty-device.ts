/**
 * FaultyDevice: wraps any BlockDevice to inject I/O errors and simulate
 * crashes, for tests.
 *
 * Crash model: a volatile write cache in front of the inner device. A write
 * (or discard) resolves once it is in the cache; reads see it; `flush`
 * applies the cached writes to the inner device in order and then flushes
 * the inner device. `crash()` is the power cut: every cached write is lost,
 * or only a chosen subset reaches the inner device, each whole or torn at
 * block granularity. Afterwards the device behaves like one freshly
 * reopened after the power came back.
 *
 * The cache holds copies (the caller's buffer is a view over WebAssembly
 * memory that will change), so a workload that writes a lot between flushes
 * costs that much JS memory: this device is for tests.
 */
import { fail } from '../errors.js';
import { BlockDevice, type DeviceOp } from './block-device.js';

/** One operation as the device saw it, in order. `seq` counts every attempt from 0. */
export interface OpRecord {
  op: DeviceOp;
  offset: number;
  length: number;
  seq: number;
  /** Set when the operation failed (an injected fault or a power cut). */
  failed?: boolean;
}

/**
 * When to fail an operation with EIO. All given conditions must hold.
 * Without `sticky`, the rule fires once and disarms itself.
 */
export interface FaultRule {
  /** Operation kinds the rule applies to; default all. */
  op?: DeviceOp | readonly DeviceOp[];
  /** Only operations touching this byte range (flush never touches one). */
  range?: { offset: number; length: number };
  /** Fire on the nth operation (1-based) that passes the other conditions, counted from when the rule was added. */
  nth?: number;
  /** Arbitrary predicate on the operation. */
  when?: (op: OpRecord) => boolean;
  /** Keep firing on every later match instead of once. */
  sticky?: boolean;
}

/** Returned by `injectFault`: how often the rule fired, and a way to remove it. */
export interface FaultHandle {
  readonly fired: number;
  remove(): void;
}

/** A write or discard in the volatile cache, not yet on the inner device. */
export interface PendingWrite {
  /** Position among the writes since the last flush (0-based): what `crash({ keep })` selects by. */
  index: number;
  seq: number;
  kind: 'write' | 'discard';
  offset: number;
  length: number;
}

/**
 * Which cached writes survive a crash: 'none' (the default), 'all', the
 * indices of the survivors, or a function deciding per write — true keeps it
 * whole, false drops it, an array of block numbers (0-based within that
 * write) keeps only those blocks (a torn write).
 */
export type CrashKeep =
  | 'none'
  | 'all'
  | readonly number[]
  | ((index: number, write: PendingWrite) => boolean | readonly number[]);

/** Options of `new FaultyDevice(inner, opts)`. */
export interface FaultyDeviceOptions {
  /**
   * Keep unflushed writes in a volatile cache (default true). With false,
   * writes go straight to the inner device and `crash()` loses nothing.
   */
  writeCache?: boolean;
  /** Fault rules active from the start. */
  faults?: readonly FaultRule[];
}

interface ArmedRule {
  rule: FaultRule;
  matches: number;
  fired: number;
  removed: boolean;
}

interface CacheEntry extends PendingWrite {
  /** The bytes written; null for a discard (zeros). */
  data: Uint8Array | null;
}

/** Fault injection and crash simulation around any device. */
export class FaultyDevice extends BlockDevice {
  readonly inner: BlockDevice;
  /** Every operation attempted, in order (reads included). */
  readonly ops: OpRecord[] = [];
  private seq = 0;
  private readonly rules: ArmedRule[] = [];
  private readonly writeCache: boolean;
  private cache: CacheEntry[] = [];
  /** Newest cached contents per block number: the entry and the block's byte offset in it. */
  private blocks = new Map<number, { entry: CacheEntry; at: number }>();
  private powerCutAt = Infinity;

  constructor(inner: BlockDevice, opts: FaultyDeviceOptions = {}) {
    if (!(inner instanceof BlockDevice)) throw fail('EINVAL', 'FaultyDevice wraps a BlockDevice');
    super(inner.blockSize, inner.size);
    this.inner = inner;
    this.writeCache = opts.writeCache ?? true;
    for (const r of opts.faults ?? []) this.injectFault(r);
  }

  /** The sequence number the next operation will get. */
  get nextSeq(): number {
    return this.seq;
  }

  /** Writes and discards since the last flush, oldest first. */
  get pendingWrites(): readonly PendingWrite[] {
    return this.cache.map(publicView);
  }

  /** Adds a fault rule; see `FaultRule`. */
  injectFault(rule: FaultRule): FaultHandle {
    const armed: ArmedRule = { rule, matches: 0, fired: 0, removed: false };
    this.rules.push(armed);
    return {
      get fired() {
        return armed.fired;
      },
      remove: () => {
        armed.removed = true;
      },
    };
  }

  /** Removes every fault rule. */
  clearFaults(): void {
    for (const r of this.rules) r.removed = true;
    this.rules.length = 0;
  }

  /**
   * Cuts the power at operation `atSeq` (default: the next one): that
   * operation and every later one fail with EIO and change nothing, until
   * `crash()`. With the op log of a first run, a test can cut a second run
   * at every point in turn.
   */
  cutPower(atSeq: number = this.seq): void {
    this.powerCutAt = atSeq;
  }

  /**
   * The power cut: drops the cached writes except those `keep` selects,
   * which reach the inner device in their original order (kept blocks of a
   * torn write only); the inner device is flushed; the power cut and the
   * cache are cleared and a closed device is open again. Returns the
   * indices of the writes that survived whole or in part.
   */
  async crash(opts: { keep?: CrashKeep } = {}): Promise<number[]> {
    const keep = opts.keep ?? 'none';
    const entries = this.cache;
    this.cache = [];
    this.blocks = new Map();
    const survived: number[] = [];
    const bs = this.blockSize;
    const keepSet = Array.isArray(keep) ? new Set<number>(keep as number[]) : undefined;
    for (const e of entries) {
      let decision: boolean | readonly number[];
      if (keep === 'none') decision = false;
      else if (keep === 'all') decision = true;
      else if (keepSet) decision = keepSet.has(e.index);
      else decision = (keep as (i: number, w: PendingWrite) => boolean | readonly number[])(e.index, publicView(e));
      if (decision === false) continue;
      const nBlocks = e.length / bs;
      const chosen = decision === true ? null : [...new Set(decision)].sort((a, b) => a - b);
      if (chosen) {
        for (const b of chosen) {
          if (!Number.isInteger(b) || b < 0 || b >= nBlocks) {
            throw fail('EINVAL', `crash keep: block ${b} is outside write ${e.index} (${nBlocks} blocks)`);
          }
        }
        if (chosen.length === 0) continue;
      }
      survived.push(e.index);
      if (chosen === null) await this.applyEntry(e, 0, e.length);
      else for (const b of chosen) await this.applyEntry(e, b * bs, bs);
    }
    await this.inner.flush();
    this.powerCutAt = Infinity;
    this.reopenFront();
    return survived;
  }

  /** Closes the inner device too (`close()` alone leaves it open so `crash()` can reopen). */
  async release(): Promise<void> {
    await this.close();
    await this.inner.close();
  }

  protected async _read(offset: number, dst: Uint8Array): Promise<void> {
    this.admit('read', offset, dst.byteLength);
    const bs = this.blockSize;
    const first = offset / bs;
    const count = dst.byteLength / bs;
    // Cached blocks are copied now; the gaps between them are read from the
    // inner device. Each piece lands in its own part of `dst`, and every
    // inner read is started before the first await, so a synchronous inner
    // device is done with `dst` within this call.
    const pending: Promise<void>[] = [];
    let runStart = -1;
    for (let i = 0; i <= count; i++) {
      const hit = i < count ? this.blocks.get(first + i) : undefined;
      if (i < count && hit === undefined) {
        if (runStart < 0) runStart = i;
        continue;
      }
      if (runStart >= 0) {
        pending.push(this.inner.read(offset + runStart * bs, dst.subarray(runStart * bs, i * bs)));
        runStart = -1;
      }
      if (hit !== undefined) {
        if (hit.entry.data === null) dst.fill(0, i * bs, (i + 1) * bs);
        else dst.set(hit.entry.data.subarray(hit.at, hit.at + bs), i * bs);
      }
    }
    await Promise.all(pending);
  }

  protected async _write(offset: number, src: Uint8Array): Promise<void> {
    const rec = this.admit('write', offset, src.byteLength);
    if (!this.writeCache) return this.inner.write(offset, src);
    this.addToCache(rec, 'write', src.slice());
  }

  protected async _discard(offset: number, length: number): Promise<void> {
    const rec = this.admit('discard', offset, length);
    if (!this.writeCache) return this.inner.discard(offset, length);
    this.addToCache(rec, 'discard', null);
  }

  protected async _flush(): Promise<void> {
    this.admit('flush', 0, 0);
    // Applied one by one and removed as they land, so a failing inner device
    // leaves exactly the unapplied writes cached.
    while (this.cache.length > 0) {
      const e = this.cache[0]!;
      await this.applyEntry(e, 0, e.length);
      this.cache.shift();
    }
    this.blocks = new Map();
    await this.inner.flush();
  }

  protected async _close(): Promise<void> {}

  private addToCache(rec: OpRecord, kind: 'write' | 'discard', data: Uint8Array | null): void {
    const entry: CacheEntry = { index: this.cache.length, seq: rec.seq, kind, offset: rec.offset, length: rec.length, data };
    this.cache.push(entry);
    const bs = this.blockSize;
    for (let at = 0; at < rec.length; at += bs) this.blocks.set((rec.offset + at) / bs, { entry, at });
  }

  private async applyEntry(e: CacheEntry, at: number, length: number): Promise<void> {
    if (e.data === null) await this.inner.discard(e.offset + at, length);
    else await this.inner.write(e.offset + at, e.data.subarray(at, at + length));
  }

  /** Logs the operation and throws EIO when the power is cut or a rule fires. */
  private admit(op: DeviceOp, offset: number, length: number): OpRecord {
    const rec: OpRecord = { op, offset, length, seq: this.seq++ };
    this.ops.push(rec);
    if (rec.seq >= this.powerCutAt) {
      rec.failed = true;
      throw fail('EIO', `${op} at offset ${offset}: the device has lost power (simulated; op #${rec.seq})`);
    }
    for (const armed of this.rules) {
      if (armed.removed || !ruleMatches(armed.rule, rec)) continue;
      armed.matches++;
      const nth = armed.rule.nth;
      const fire = nth === undefined ? true : armed.rule.sticky ? armed.matches >= nth : armed.matches === nth;
      if (!fire) continue;
      armed.fired++;
      if (!armed.rule.sticky) armed.removed = true;
      rec.failed = true;
      throw fail('EIO', `${op} of ${length} bytes at offset ${offset} failed (injected fault, op #${rec.seq})`);
    }
    return rec;
  }
}

function publicView(e: CacheEntry): PendingWrite {
  return { index: e.index, seq: e.seq, kind: e.kind, offset: e.offset, length: e.length };
}

function ruleMatches(rule: FaultRule, rec: OpRecord): boolean {
  if (rule.op !== undefined) {
    const ops = typeof rule.op === 'string' ? [rule.op] : rule.op;
    if (!ops.includes(rec.op)) return false;
  }
  if (rule.range !== undefined) {
    if (rec.length === 0) return false;
    const { offset, length } = rule.range;
    if (rec.offset >= offset + length || offset >= rec.offset + rec.length) return false;
  }
  if (rule.when !== undefined && !rule.when(rec)) return false;
  return true;
}
