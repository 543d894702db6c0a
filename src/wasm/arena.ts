/** Exports of assembly/arena.ts. Pointers are u32; read them with `>>> 0`. */
export interface ArenaExports {
  arena_order_for(bytes: number): number;
  arena_alloc_order(order: number): number;
  arena_alloc(bytes: number): number;
  arena_free(ptr: number): number;
  arena_size_of(ptr: number): number;
  arena_bytes_used(): number;
  arena_bytes_reserved(): number;
}
