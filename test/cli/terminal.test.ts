/**
 * The command line on real terminals and pipes: the progress bar always
 * fits its line, is off for `TERM=dumb` and `--quiet`/`--no-progress`, is
 * erased on Ctrl-C; a reader that goes away ends us with SIGPIPE's status.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { createProgress, PROGRESS_MIN_BYTES, renderProgressLine } from '../../src/cli/progress.js';
import type { CliIo } from '../../src/cli/command.js';

const BIN = new URL('../../dist/src/cli/main.js', import.meta.url).pathname;
const PROGRESS = new URL('../../dist/src/cli/progress.js', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'iomap-verity-terminal-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function tty(columns: number, env: Record<string, string> = { TERM: 'xterm' }): { io: CliIo; out: string[] } {
  const out: string[] = [];
  const stream = { write: (s: string) => out.push(s), isTTY: true, columns };
  return { io: { stdout: { write: () => undefined }, stderr: stream, env }, out };
}

describe('progress bar', () => {
  it('never fills a terminal line, whatever the width, label and counts', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 300 }),
        fc.string({ maxLength: 400 }),
        fc.integer({ min: 1, max: 2 ** 44 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.integer({ min: 0, max: 10 ** 7 }),
        fc.option(fc.constantFrom('syncing', 'sealing: writing the tree and committing')),
        (columns, label, total, frac, elapsed, phase) => {
          const line = renderProgressLine(columns, label, Math.floor(total * frac), total, elapsed, phase ?? undefined);
          expect(line.length).toBeLessThanOrEqual(Math.max(0, columns - 1));
          expect(line).not.toContain('\n');
        },
      ),
    );
  });

  it('keeps the end of a long label in a 60-column terminal, with rate and time left', () => {
    const label = `/very/long/path/${'x'.repeat(200)}/release.tar`;
    const line = renderProgressLine(60, label, 2 ** 30, 4 * 2 ** 30, 2000);
    expect(line.length).toBeLessThanOrEqual(59);
    expect(line).toMatch(/ 25% 1\.00\/4\.00 GiB 512 MiB\/s 0:06 …/);
    expect(line.endsWith('release.tar')).toBe(true);
  });

  it('names the phase after the last byte instead of a time left', () => {
    const line = renderProgressLine(100, 'disk.img', 2 ** 30, 2 ** 30, 1000, 'syncing');
    expect(line).toContain('100%');
    expect(line).toContain('syncing');
  });

  it('is not drawn on pipes, dumb terminals, with --quiet or for small work', () => {
    const big = PROGRESS_MIN_BYTES + 1;
    expect(createProgress(tty(80).io, 'x', big)).toBeDefined();
    expect(createProgress(tty(80, { TERM: 'dumb' }).io, 'x', big)).toBeUndefined();
    expect(createProgress({ ...tty(80).io, progress: false }, 'x', big)).toBeUndefined();
    const pipe = { stdout: { write: () => undefined }, stderr: { write: () => undefined } };
    expect(createProgress(pipe, 'x', big)).toBeUndefined();
    expect(createProgress(tty(80).io, 'x', PROGRESS_MIN_BYTES)).toBeUndefined();
  });

  it('erases itself when done and does nothing after', () => {
    const { io, out } = tty(80);
    const bar = createProgress(io, 'x', PROGRESS_MIN_BYTES + 1)!;
    bar.update(1, 2);
    bar.phase('syncing');
    bar.done();
    expect(out.at(-1)).toBe('\r\x1b[K');
    const n = out.length;
    bar.update(2, 2);
    bar.phase('again');
    bar.done();
    expect(out.length).toBe(n);
  });

  it('is erased on Ctrl-C, and the process ends with status 130', () => {
    const script = `
      const { createProgress } = await import(${JSON.stringify(PROGRESS)});
      const stderr = { isTTY: true, columns: 80, write: (s) => process.stdout.write(JSON.stringify(s) + '\\n') };
      const bar = createProgress({ stdout: stderr, stderr, env: { TERM: 'xterm' } }, 'big', 2 ** 30);
      bar.update(2 ** 29, 2 ** 30);
      process.kill(process.pid, 'SIGINT');
      setTimeout(() => process.exit(0), 5000);
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(r.status).toBe(130);
    const writes = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as string);
    expect(writes[0]).toMatch(/^\r\[#+\.+\] +50%/);
    expect(writes.at(-1)).toBe('\r\x1b[K');
  });

  it('accepts --quiet and --no-progress on any command, but not after --', () => {
    writeFileSync(join(dir, 'small'), 'hello');
    const run = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { cwd: dir, encoding: 'utf8' });
    const plain = run('digest', 'small');
    expect(plain.status).toBe(0);
    expect(run('digest', '--quiet', 'small').stdout).toBe(plain.stdout);
    expect(run('digest', 'small', '--no-progress').stdout).toBe(plain.stdout);
    const r = run('digest', '--', '--quiet');
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('--quiet');
  });
});

describe('a reader that goes away', () => {
  it('ends the command with status 141, as SIGPIPE ends fsverity', () => {
    writeFileSync(join(dir, 's'), 'hello');
    // 20,000 lines of digests are more than a pipe holds: the reader leaves first.
    const files = Array.from({ length: 20_000 }, () => 's');
    const r = spawnSync('bash', ['-c', `"${process.execPath}" "${BIN}" digest "$@" | head -c 1 >/dev/null; echo "\${PIPESTATUS[0]}"`, 'sh', ...files], {
      cwd: dir,
      encoding: 'utf8',
    });
    expect(r.stdout.trim()).toBe('141');
  });
});
