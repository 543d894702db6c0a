/**
 * MemoryDevice: a sparse block device in JavaScript memory, the reference
 * backend every other device is compared with.
 */
import { BlockDevice } from './block-device.js';

/**
 * Storage granule. 64 KiB is the largest block size, so a block never spans
 * two chunks, and it keeps the Map small for big devices while costing at
 * most 64 KiB per scattered small write.
 */
const CHUNK = 65536;

/** Options of `new MemoryDevice(opts)`. */
export interface MemoryDeviceOptions {
  /** Block size in bytes, a power of two from 512 to 65536. Default 4096. */
  blockSize?: number;
  /** Size in bytes, a multiple of `blockSize`, up to 2^53-1. */
  size: number;
}

/**
 * A sparse in-memory device: space is allocated in 64 KiB chunks on first
 * write, never-written space reads as zeros and costs nothing, and a discard
 * of whole chunks frees them. Writes are durable as soon as they resolve
 * (there is no volatile cache to lose; crash behaviour is FaultyDevice's
 * job), so `flush` does nothing but count.
 */
export class MemoryDevice extends BlockDevice {
  private readonly chunks = new Map<number, Uint8Array>();

  constructor(opts: MemoryDeviceOptions) {
    super(opts?.blockSize ?? 4096, opts?.size);
  }

  /** Bytes of chunk storage currently allocated (for tests and budgets). */
  get bytesAllocated(): number {
    return this.chunks.size * CHUNK;
  }

  /** Call `fn` for each piece of [offset, offset + length) inside one chunk: its chunk index, offset in it, offset in the range, length. */
  private pieces(offset: number, length: number, fn: (idx: number, at: number, done: number, n: number) => void): void {
    for (let done = 0; done < length; ) {
      const pos = offset + done;
      const idx = Math.floor(pos / CHUNK);
      const at = pos - idx * CHUNK;
      const n = Math.min(CHUNK - at, length - done);
      fn(idx, at, done, n);
      done += n;
    }
  }

  protected async _read(offset: number, dst: Uint8Array): Promise<void> {
    this.pieces(offset, dst.byteLength, (idx, at, done, n) => {
      const chunk = this.chunks.get(idx);
      if (chunk === undefined) dst.fill(0, done, done + n);
      else dst.set(chunk.subarray(at, at + n), done);
    });
  }

  protected async _write(offset: number, src: Uint8Array): Promise<void> {
    this.pieces(offset, src.byteLength, (idx, at, done, n) => {
      let chunk = this.chunks.get(idx);
      if (chunk === undefined) {
        chunk = new Uint8Array(CHUNK);
        this.chunks.set(idx, chunk);
      }
      chunk.set(src.subarray(done, done + n), at);
    });
  }

  protected async _flush(): Promise<void> {}

  protected async _discard(offset: number, length: number): Promise<void> {
    this.pieces(offset, length, (idx, at, _done, n) => {
      const chunk = this.chunks.get(idx);
      if (chunk === undefined) return;
      if (n === CHUNK) this.chunks.delete(idx);
      else {
        chunk.fill(0, at, at + n);
        // A chunk zeroed piece by piece is freed once nothing is left in it,
        // so discarding a file block by block gives the memory back.
        if (isAllZero(chunk)) this.chunks.delete(idx);
      }
    });
  }

  protected async _close(): Promise<void> {
    this.chunks.clear();
  }
}

function isAllZero(b: Uint8Array): boolean {
  // Word-at-a-time scan; chunks are 64 KiB buffers of their own, so aligned.
  const w = new Uint32Array(b.buffer, b.byteOffset, b.byteLength >>> 2);
  for (let i = 0; i < w.length; i++) if (w[i] !== 0) return false;
  return true;
}
