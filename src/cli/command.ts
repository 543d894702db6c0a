/**
 * What every subcommand of `iomap-verity` is, and the small pieces they
 * share. A subcommand is one file in commands/ plus one entry in the table
 * of commands/index.ts.
 */

/** Where a command writes; tests pass their own. */
export interface CliIo {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown; isTTY?: boolean; columns?: number };
  /** False after `--quiet` or `--no-progress`: never draw a progress bar. */
  progress?: boolean;
  /** The environment to consult (`TERM`); the process's own when absent. */
  env?: Readonly<Record<string, string | undefined>>;
}

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

/** strerror-style words for the errno codes Node reports. */
export function strerror(e: unknown): string {
  const code = (e as NodeJS.ErrnoException)?.code;
  const words: Record<string, string> = {
    ENOENT: 'No such file or directory',
    EACCES: 'Permission denied',
    EPERM: 'Operation not permitted',
    EISDIR: 'Is a directory',
    ENOTDIR: 'Not a directory',
    ENOSPC: 'No space left on device',
    EROFS: 'Read-only file system',
    ENAMETOOLONG: 'File name too long',
  };
  return (code && words[code]) || (e as Error)?.message || String(e);
}
