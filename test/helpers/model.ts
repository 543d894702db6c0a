/**
 * The model of a file's bytes: a plain byte array with a length, which the
 * model-based tests run every operation on beside the real file.
 * - `write(pos, src)`: an empty write changes nothing; otherwise extends the
 *   size to `pos + src.length` when needed, zeros in between.
 * - `truncate(n)`: cuts or extends with zeros.
 * - `zero(pos, len)`: zeros inside the size only.
 * - `read(pos, len)`: a copy of what lies below the size.
 * - `bytes`: the content, exactly `size` long (a view, not a copy).
 */
export class ByteModel {
  private data = new Uint8Array(0);
  size = 0;

  get bytes(): Uint8Array {
    return this.data.subarray(0, this.size);
  }

  write(pos: number, src: Uint8Array): void {
    if (src.length === 0) return;
    this.grow(pos + src.length);
    this.data.set(src, pos);
    this.size = Math.max(this.size, pos + src.length);
  }

  truncate(n: number): void {
    this.grow(n);
    this.data.fill(0, Math.min(n, this.size), Math.max(n, this.size));
    this.size = n;
  }

  zero(pos: number, len: number): void {
    const e = Math.min(pos + len, this.size);
    if (e > pos) this.data.fill(0, pos, e);
  }

  read(pos: number, len: number): Uint8Array {
    const e = Math.min(pos + len, this.size);
    return e > pos ? this.data.slice(pos, e) : new Uint8Array(0);
  }

  private grow(n: number): void {
    if (n > this.data.length) {
      const d = new Uint8Array(Math.max(n, this.data.length * 2));
      d.set(this.data);
      this.data = d;
    }
  }
}
