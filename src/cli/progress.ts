/**
 * A progress bar for long work, on stderr and only when stderr is a
 * terminal: pipes and files never see it.
 */
import type { CliIo } from './command.js';

/** Work smaller than this finishes too fast for a bar to help. */
export const PROGRESS_MIN_BYTES = 256 * 1024 * 1024;
const REDRAW_MS = 100;

/** A progress bar on a terminal's stderr (nothing in a pipe). */
export interface Progress {
  update(done: number, total: number): void;
  /** Erase the bar (call before printing anything else). */
  done(): void;
}

function gib(n: number): string {
  return (n / 2 ** 30).toFixed(2);
}

/** A bar labelled `label` for `total` bytes, or undefined when none should show. */
export function createProgress(io: CliIo, label: string, total: number): Progress | undefined {
  const err = io.stderr;
  if (!err.isTTY || total <= PROGRESS_MIN_BYTES) return undefined;
  let last = 0;
  let drawn = false;
  return {
    update(done, all) {
      const now = Date.now();
      if (now - last < REDRAW_MS && done < all) return;
      last = now;
      const width = Math.max(10, Math.min(40, (err.columns ?? 80) - 40));
      const filled = Math.round((done / all) * width);
      const pct = Math.floor((done / all) * 100);
      err.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(pct).padStart(3)}% ${gib(done)}/${gib(all)} GiB ${label}\x1b[K`);
      drawn = true;
    },
    done() {
      if (drawn) err.write('\r\x1b[K');
      drawn = false;
    },
  };
}
