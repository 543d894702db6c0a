/**
 * Long-option parsing as GNU `getopt_long` does it, so our commands take
 * exactly the command lines fsverity-utils takes: `--opt=value` or
 * `--opt value`, unambiguous prefixes (`--comp`), options and operands in
 * any order, `--` ending the options. Errors use getopt's own words.
 */
import { UsageError } from './command.js';

/** A long option `--name` (`hasArg`: it takes `=VALUE` or the next argument). */
export interface LongOption {
  readonly name: string;
  readonly hasArg: boolean;
}

/** A parsed command line: options, then operands, as getopt_long leaves them. */
export interface ParsedArgs {
  /** Options in command-line order (full names). */
  readonly options: { name: string; value: string | undefined }[];
  readonly operands: string[];
}

/** Parse `args` for command `cmd` (named in error messages). Throws UsageError. */
export function getoptLong(cmd: string, args: readonly string[], longopts: readonly LongOption[]): ParsedArgs {
  const options: ParsedArgs['options'] = [];
  const operands: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') {
      operands.push(...args.slice(i + 1));
      break;
    }
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
      const exact = longopts.find((o) => o.name === name);
      const matches = exact ? [exact] : longopts.filter((o) => o.name.startsWith(name));
      if (matches.length === 0) throw new UsageError(`${cmd}: unrecognized option '${eq < 0 ? arg : arg.slice(0, eq)}'`);
      if (matches.length > 1) {
        throw new UsageError(`${cmd}: option '${arg}' is ambiguous; possibilities: ${matches.map((o) => `'--${o.name}'`).join(' ')}`);
      }
      const opt = matches[0]!;
      if (opt.hasArg) {
        let value: string;
        if (eq >= 0) value = arg.slice(eq + 1);
        else if (i + 1 < args.length) value = args[++i]!;
        else throw new UsageError(`${cmd}: option '--${opt.name}' requires an argument`);
        options.push({ name: opt.name, value });
      } else {
        if (eq >= 0) throw new UsageError(`${cmd}: option '--${opt.name}' doesn't allow an argument`);
        options.push({ name: opt.name, value: undefined });
      }
      continue;
    }
    if (arg.startsWith('-') && arg.length > 1) throw new UsageError(`${cmd}: invalid option -- '${arg[1]}'`);
    operands.push(arg);
  }
  return { options, operands };
}

/**
 * C's strtoul in base 10 followed by a check that nothing is left: leading
 * white space and a sign are allowed, and a minus wraps around (so it is
 * refused by any upper bound). NaN when the text is not such a number.
 */
export function parseUnsignedLong(text: string): number {
  const m = /^[ \t\n\v\f\r]*([+-]?)(\d+)$/.exec(text);
  if (!m) return text.trim() === '' ? 0 : Number.NaN;
  const n = Number(m[2]);
  return m[1] === '-' && n !== 0 ? Number.POSITIVE_INFINITY : n;
}
