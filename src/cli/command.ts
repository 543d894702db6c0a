/**
 * What every subcommand of `iomap-verity` is, and the small pieces they
 * share. A subcommand is one file in commands/ plus one entry in the table
 * of commands/index.ts.
 */
import { IomapVerityError } from '../errors.js';

/** Where a command writes; tests pass their own. */
export interface CliIo {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown; isTTY?: boolean; columns?: number };
  /** False after `--quiet` or `--no-progress`: never draw a progress bar. */
  progress?: boolean;
  /** The environment to consult (`TERM`); the process's own when absent. */
  env?: Readonly<Record<string, string | undefined>>;
}

/** One subcommand: its name, help texts and what it runs. `run` resolves to the exit status and prints its own errors. */
export interface Command {
  readonly name: string;
  /** One line for the list of commands. */
  readonly summary: string;
  /** The usage block printed after a usage error and for --help. */
  readonly usage: string;
  /** Run with the arguments after the command name; resolves to the exit status. */
  run(args: string[], io: CliIo): Promise<number>;
}

/** Exit status of a bad command line (as fsverity-utils and getopt users do). */
export const EXIT_USAGE = 2;
/** Exit status of a failure while doing the work. */
export const EXIT_FAILURE = 1;

/** A bad command line: the message, then the usage, then exit 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/**
 * The words of strerror(3) for the errno codes Node reports, so that
 * messages read like fsverity-utils' own: the one table of them.
 */
const STRERROR: Record<string, string> = {
  ENOENT: 'No such file or directory',
  EACCES: 'Permission denied',
  EPERM: 'Operation not permitted',
  EISDIR: 'Is a directory',
  ENOTDIR: 'Not a directory',
  ENOSPC: 'No space left on device',
  EROFS: 'Read-only file system',
  ENAMETOOLONG: 'File name too long',
  EIO: 'Input/output error',
};

/** strerror-style words for a Node system error (its `code`); else its message. */
export function strerror(e: unknown): string {
  const code = (e as NodeJS.ErrnoException)?.code;
  return (code && STRERROR[code]) || (e as Error)?.message || String(e);
}

/**
 * A library error's message as the command line prints it: where the
 * library ends its message with `: ` and the system's message of its
 * `cause` (a failed open or read), strerror(3)'s words stand in place of
 * the system's, as fsverity-utils prints them.
 */
export function errorMessage(e: Error): string {
  const cause = e.cause as NodeJS.ErrnoException | undefined;
  const tail = cause instanceof Error ? `: ${cause.message}` : undefined;
  if (tail === undefined || !e.message.endsWith(tail) || !cause?.code || !STRERROR[cause.code]) return e.message;
  return `${e.message.slice(0, -tail.length)}: ${STRERROR[cause.code]}`;
}

/**
 * The exit of a command whose work failed with an engine error: the
 * message and its errno code on stderr, status 1. Anything else (a bug, a
 * usage error) is rethrown for main() to report.
 */
export function engineFailure(e: unknown, io: CliIo): number {
  if (e instanceof IomapVerityError) {
    io.stderr.write(`ERROR: ${e.message} (${e.code})\n`);
    return EXIT_FAILURE;
  }
  throw e;
}
