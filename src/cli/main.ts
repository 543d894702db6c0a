#!/usr/bin/env node
/**
 * The `iomap-verity` command: `iomap-verity COMMAND [ARGS...]`. Exit
 * status 0 on success, 1 when the work failed, 2 for a bad command line.
 */
import { readFileSync } from 'node:fs';
import { EXIT_FAILURE, EXIT_USAGE, UsageError, type CliIo, type Command } from './command.js';
import { COMMANDS } from './commands/index.js';

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

async function listCommands(): Promise<string> {
  const lines: string[] = [];
  for (const load of Object.values(COMMANDS)) {
    const c = await load();
    lines.push(`    ${c.name.padEnd(10)} ${c.summary}`);
  }
  return `Usage: iomap-verity COMMAND [ARGS...]\n\nCommands:\n${lines.join('\n')}\n\nRun \`iomap-verity COMMAND --help\` for a command's options.\n`;
}

/** Run the command line `argv` (without node and script); resolves to the exit status. */
export async function main(argv: string[], io: CliIo): Promise<number> {
  const [name, ...rest] = argv;
  let args = rest;
  if (name === undefined || name === '--help' || name === '-h') {
    (name === undefined ? io.stderr : io.stdout).write(await listCommands());
    return name === undefined ? EXIT_USAGE : 0;
  }
  if (name === '--version') {
    io.stdout.write(`iomap-verity v${version()}\n`);
    return 0;
  }
  const load = COMMANDS[name];
  if (!load) {
    io.stderr.write(`iomap-verity: unrecognized command: '${name}'\n${await listCommands()}`);
    return EXIT_USAGE;
  }
  const cmd: Command = await load();
  // --quiet and --no-progress are global: every command takes them, before "--".
  const end = args.indexOf('--');
  const own = (a: string, i: number) => (end < 0 || i < end) && (a === '--quiet' || a === '--no-progress');
  if (args.some(own)) {
    io = { ...io, progress: false };
    args = args.filter((a, i) => !own(a, i));
  }
  // As fsverity-utils: --help and --version anywhere before "--" win.
  for (const a of args) {
    if (a === '--') break;
    if (a === '--help') {
      io.stdout.write(cmd.usage);
      return 0;
    }
    if (a === '--version') {
      io.stdout.write(`iomap-verity v${version()}\n`);
      return 0;
    }
  }
  try {
    return await cmd.run(args, io);
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr.write(`${e.message ? `${e.message}\n` : ''}${cmd.usage}`);
      return EXIT_USAGE;
    }
    io.stderr.write(`ERROR: ${(e as Error)?.message ?? String(e)}\n`);
    return EXIT_FAILURE;
  }
}

/** What a shell reports for a C tool killed by SIGPIPE (128 + 13), as `fsverity` is. */
const EXIT_SIGPIPE = 141;

// A reader that goes away (`| head`) ends us quietly with SIGPIPE's status,
// as it ends C tools (Node ignores the signal itself); any other failure to
// write the output is an error of its own.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(EXIT_SIGPIPE);
  process.stderr.write(`ERROR: writing output: ${e.message}\n`);
  process.exit(EXIT_FAILURE);
});
const io: CliIo = { stdout: process.stdout, stderr: process.stderr };
process.exitCode = await main(process.argv.slice(2), io);
