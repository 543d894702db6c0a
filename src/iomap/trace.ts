/**
 * Trace events (the kernel's fs/iomap/trace.h): every mapping iomap gets
 * from a filesystem, every folio it reads or writes back, every ioend it
 * submits. Subscribers get structured events; `formatIomapFlags` renders
 * flag bits to names, `FSVERITY` among them. With no subscriber nothing is
 * built, so tracing costs one branch.
 */
import { IOMAP_F_FLAG_NAMES, IOMAP_TYPE_NAMES, type Iomap } from './types.js';

/** One trace event, delivered to subscribers as it happens. */
export interface IomapTraceEvent {
  /** Event name, as in the kernel: iomap_iter_dstmap, iomap_writeback_folio, ... */
  name: string;
  /** Inode number the event is about. */
  ino: number;
  /** File byte offset the event is about. */
  pos: number;
  /** Bytes. */
  length: number;
  /** Present on mapping and ioend events. */
  type?: number;
  /** IOMAP_F_* bits, present on mapping and ioend events. */
  flags?: number;
  /** Device byte address, present on mapping and ioend events. */
  addr?: number;
  /** Operation flags (IOMAP_WRITE, ...), present on iterator events. */
  opFlags?: number;
  /** Extra words for warnings and errors. */
  message?: string;
}

/** Called synchronously for every event while subscribed; it must not throw or do I/O. */
export type IomapTraceSubscriber = (event: IomapTraceEvent) => void;

const subscribers = new Set<IomapTraceSubscriber>();

/** Subscribe to trace events; returns the unsubscribe function. */
export function iomapTraceSubscribe(fn: IomapTraceSubscriber): () => void {
  subscribers.add(fn);
  return () => {
    subscribers.delete(fn);
  };
}

/**
 * Record the last `capacity` events in a ring buffer (for tests and
 * debugging). `events()` returns them oldest first; `stop()` unsubscribes.
 */
export function iomapTraceRing(capacity = 1024): { events(): IomapTraceEvent[]; stop(): void } {
  const ring: IomapTraceEvent[] = [];
  let next = 0;
  const stop = iomapTraceSubscribe((e) => {
    if (ring.length < capacity) ring.push(e);
    else ring[next] = e;
    next = (next + 1) % capacity;
  });
  return {
    events: () => (ring.length < capacity ? ring.slice() : ring.slice(next).concat(ring.slice(0, next))),
    stop,
  };
}

/** True when someone listens: callers skip building events otherwise. */
export function tracing(): boolean {
  return subscribers.size > 0;
}

/** Deliver an event to every subscriber. */
export function emitTrace(event: IomapTraceEvent): void {
  for (const fn of subscribers) fn(event);
}

/** Emit a mapping event (iomap_iter_dstmap, iomap_iter_srcmap, iomap_writeback_map). */
export function traceIomap(name: string, ino: number, map: Iomap, opFlags?: number): void {
  if (subscribers.size === 0) return;
  emitTrace({ name, ino, pos: map.offset, length: map.length, type: map.type, flags: map.flags, addr: map.addr, opFlags });
}

/** Emit a range event (iomap_readpage, iomap_writeback_folio, ...). */
export function traceRange(name: string, ino: number, pos: number, length: number, message?: string): void {
  if (subscribers.size === 0) return;
  emitTrace({ name, ino, pos, length, message });
}

/** Render IOMAP_F_* bits as names joined by '|' (unknown bits in hex), like IOMAP_F_FLAGS_STRINGS. */
export function formatIomapFlags(flags: number): string {
  const names: string[] = [];
  let rest = flags >>> 0;
  for (const [bit, name] of IOMAP_F_FLAG_NAMES) {
    if (rest & bit) {
      names.push(name);
      rest &= ~bit;
    }
  }
  if (rest) names.push('0x' + rest.toString(16));
  return names.join('|');
}

/** Render a mapping type by name. */
export function formatIomapType(type: number): string {
  return IOMAP_TYPE_NAMES[type] ?? `UNKNOWN(${type})`;
}

/** One line per event, in the shape of the kernel's trace output. */
export function formatTraceEvent(e: IomapTraceEvent): string {
  let s = `${e.name}: ino 0x${e.ino.toString(16)} pos 0x${e.pos.toString(16)} length 0x${e.length.toString(16)}`;
  if (e.addr !== undefined) s += ` addr ${e.addr < 0 ? '-1' : '0x' + e.addr.toString(16)}`;
  if (e.type !== undefined) s += ` type ${formatIomapType(e.type)}`;
  if (e.flags !== undefined) s += ` flags ${formatIomapFlags(e.flags)}`;
  if (e.message) s += ` ${e.message}`;
  return s;
}
