/**
 * A progress bar for long work, on stderr and only when stderr is a
 * terminal that can redraw a line: pipes, files, `TERM=dumb` and
 * `--quiet` / `--no-progress` never see it.
 *
 * The bar is one line that always fits the terminal (the label is cut
 * first, then the bar narrows), shows the rate and the time left, names
 * the phase that follows the last byte (syncing, sealing) so a full bar
 * that still waits says why, and is erased when the work ends or the
 * user presses Ctrl-C.
 */
import type { CliIo } from './command.js';

/** Work smaller than this finishes too fast for a bar to help. */
export const PROGRESS_MIN_BYTES = 256 * 1024 * 1024;
const REDRAW_MS = 100;
/** Exit status of a process ended by SIGINT, as shells report it. */
const EXIT_SIGINT = 130;

/** A drawn progress bar; every method is a no-op once `done()` ran. */
export interface Progress {
  /** `done` of `total` bytes are finished; redraws at most every 100 ms (always at the end). */
  update(done: number, total: number): void;
  /** Say what happens after the last byte (e.g. "syncing"); shown at once. */
  phase(text: string): void;
  /** Erase the bar (call before printing anything else). */
  done(): void;
}

function gib(n: number): string {
  return (n / 2 ** 30).toFixed(2);
}

function rate(bytesPerSecond: number): string {
  if (!Number.isFinite(bytesPerSecond) || bytesPerSecond <= 0) return '';
  if (bytesPerSecond >= 2 ** 30) return `${(bytesPerSecond / 2 ** 30).toFixed(1)} GiB/s`;
  return `${(bytesPerSecond / 2 ** 20).toFixed(0)} MiB/s`;
}

function clock(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '';
  const s = Math.ceil(seconds);
  const m = Math.floor(s / 60);
  return m >= 60 ? `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m` : `${m}:${String(s % 60).padStart(2, '0')}`;
}

/** Cut `text` to at most `width` characters, keeping its end (the file name of a path). */
function fit(text: string, width: number): string {
  if (width <= 0) return '';
  if (text.length <= width) return text;
  return width === 1 ? '…' : `…${text.slice(text.length - width + 1)}`;
}

/** Whether a bar may be drawn on this stderr at all. */
function canDraw(io: CliIo): boolean {
  if (io.progress === false || !io.stderr.isTTY) return false;
  const term = io.env?.TERM ?? (typeof process !== 'undefined' ? process.env.TERM : undefined);
  return term !== 'dumb';
}

/**
 * One line of the bar for a terminal `columns` wide: `[###...]  42% 1.20/4.00 GiB 850 MiB/s 0:03 label`,
 * never longer than `columns - 1` (so the cursor never wraps).
 */
export function renderProgressLine(columns: number, label: string, done: number, total: number, elapsedMs: number, phase?: string): string {
  const frac = total > 0 ? Math.min(1, done / total) : 1;
  const pct = `${String(Math.floor(frac * 100)).padStart(3)}%`;
  const speed = elapsedMs > 0 ? (done * 1000) / elapsedMs : 0;
  const left = phase ?? (frac < 1 && speed > 0 ? clock((total - done) / speed) : '');
  const facts = [pct, `${gib(done)}/${gib(total)} GiB`, rate(speed), left].filter((s) => s !== '').join(' ');
  const room = Math.max(0, columns - 1);
  const barWidth = Math.max(0, Math.min(40, room - facts.length - 4 - Math.min(label.length, 20)));
  const bar = barWidth >= 5 ? `[${'#'.repeat(Math.round(frac * barWidth))}${'.'.repeat(barWidth - Math.round(frac * barWidth))}] ` : '';
  const head = `${bar}${facts}`;
  if (head.length >= room) return fit(facts, room);
  return `${head} ${fit(label, room - head.length - 1)}`.slice(0, room);
}

/** A bar labelled `label` for `total` bytes, or undefined when none should show. */
export function createProgress(io: CliIo, label: string, total: number): Progress | undefined {
  if (!canDraw(io) || total <= PROGRESS_MIN_BYTES) return undefined;
  const err = io.stderr;
  const start = Date.now();
  let last = 0;
  let drawn = false;
  let finished = false;
  let shown = { done: 0, total };
  let phaseText: string | undefined;
  const draw = (): void => {
    // A pty nobody sized (script(1), some CI runners) reports 0 columns.
    const columns = err.columns !== undefined && err.columns > 0 ? err.columns : 80;
    err.write(`\r${renderProgressLine(columns, label, shown.done, shown.total, Date.now() - start, phaseText)}\x1b[K`);
    drawn = true;
  };
  const erase = (): void => {
    if (drawn) err.write('\r\x1b[K');
    drawn = false;
  };
  // Ctrl-C while the bar is up: leave a clean line, then end as SIGINT ends a C tool.
  const onSigint = (): void => {
    erase();
    process.exit(EXIT_SIGINT);
  };
  const signals = typeof process !== 'undefined' && typeof process.once === 'function';
  if (signals) process.once('SIGINT', onSigint);
  return {
    update(done, all) {
      if (finished) return;
      shown = { done, total: all };
      const now = Date.now();
      if (now - last < REDRAW_MS && done < all) return;
      last = now;
      draw();
    },
    phase(text) {
      if (finished) return;
      phaseText = text;
      draw();
    },
    done() {
      if (finished) return;
      finished = true;
      erase();
      if (signals) process.removeListener('SIGINT', onSigint);
    },
  };
}
