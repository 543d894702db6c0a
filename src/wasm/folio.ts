/** Exports of assembly/folio.ts. Pointers are u32: read them with `>>> 0`. Positions are f64. */
export interface FolioExports {
  ifs_bytes(nblocks: number): number;
  ifs_alloc(nblocks: number): number;
  ifs_free(ptr: number, nblocks: number): void;
  ifs_slab_bytes(): number;
  bits_set(map: number, start: number, n: number): void;
  bits_clear(map: number, start: number, n: number): void;
  bits_next_set(map: number, start: number, end: number): number;
  bits_next_clear(map: number, start: number, end: number): number;
  bits_all_set(map: number, start: number, n: number): number;
  bits_any_set(map: number, start: number, n: number): number;
  ifs_next_dirty(map: number, nblocks: number, from: number): number;
  ifs_dirty_run_end(map: number, nblocks: number, start: number): number;
  blocks_to_read(pos: number, blockSize: number, nblocks: number, type: number, flags: number, isize: number): number;
  folio_copy(dst: number, src: number, len: number): void;
  folio_zero(ptr: number, len: number): void;
  folio_fill(ptr: number, value: number, len: number): void;
}
