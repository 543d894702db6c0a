/**
 * External programs the tests use as oracles or peers (fsverity-utils,
 * Chromium, veritysetup, nginx, openssl, fusermount, ...), behind one switch:
 * a test that needs a missing tool SKIPS outside CI, with a note naming what
 * to install (the summary reporter prints one line per note), and FAILS when
 * `CI` is set, so that live checks cannot silently vanish from CI.
 *
 * API, for the tool helpers of this folder (fsverity.ts, ...) and the tests:
 * - `tool(name)`: absolute path of the program, or `undefined` when it is
 *   missing or hidden. Never spawn a tool by bare name: take this path.
 * - `haveTool(name)`: `tool(name) !== undefined`.
 * - `requireTool(name)`: the path; throws (with what to install) if missing.
 * - `requireToolInCi(name)`: throws only when `CI` is set and the tool is
 *   missing (for an "oracle present under CI" test).
 * - `skipWithoutTool(ctx, name)`: inside a test body: the path, or skips the
 *   test with the note outside CI, or throws under CI.
 * - `itWithTool(name, title, fn, timeout?)`: an `it` whose body gets
 *   `(ctx, path)`, with the switch above.
 * - `describeWithTool(name, title, fn)`: a `describe` collected only when the
 *   tool is there; otherwise one test in its place that skips with the note
 *   (or fails under CI). Its hooks never run without the tool.
 * - `toolNote(name)`: the skip note, `needs <name>: install <package>`.
 *
 * Lookup order: `IOMAP_VERITY_TOOL_<NAME>` (an explicit path; NAME upper-cased,
 * `-` as `_`), then the known locations below, then `PATH`. Setting
 * `IOMAP_VERITY_HIDE_TOOLS` to a comma-separated list of names (or `all`)
 * hides those tools, so that the skip paths of a fresh machine can be run
 * on a machine that has them (`.ci/run` does).
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { describe, it, type TestContext } from 'vitest';

/** True when `CI` is set to something other than '', '0' or 'false': missing tools are failures. */
export const IN_CI = !['', '0', 'false'].includes((process.env.CI ?? '').toLowerCase());

interface Known {
  /** Where Debian and a manual install put it, tried before `PATH`. */
  paths: string[];
  /** What a person installs to get it. */
  install: string;
}

const KNOWN: Record<string, Known> = {
  fsverity: { paths: ['/usr/bin/fsverity', '/usr/local/bin/fsverity'], install: 'fsverity-utils (Debian: apt-get install fsverity)' },
  chromium: { paths: ['/usr/bin/chromium', '/usr/bin/chromium-browser'], install: 'Chromium (Debian: apt-get install chromium)' },
  veritysetup: { paths: ['/usr/sbin/veritysetup', '/sbin/veritysetup', '/usr/bin/veritysetup'], install: 'cryptsetup (Debian: apt-get install cryptsetup-bin)' },
  nginx: { paths: ['/usr/sbin/nginx', '/usr/bin/nginx'], install: 'nginx (Debian: apt-get install nginx-light)' },
  openssl: { paths: ['/usr/bin/openssl'], install: 'OpenSSL (Debian: apt-get install openssl)' },
  fusermount: { paths: ['/usr/bin/fusermount', '/bin/fusermount'], install: 'FUSE 2 (Debian: apt-get install fuse libfuse2)' },
  fio: { paths: ['/usr/bin/fio'], install: 'fio (Debian: apt-get install fio)' },
  script: { paths: ['/usr/bin/script'], install: 'util-linux script (Debian: apt-get install bsdutils)' },
  mkfifo: { paths: ['/usr/bin/mkfifo', '/bin/mkfifo'], install: 'coreutils (Debian: apt-get install coreutils)' },
  mknod: { paths: ['/usr/bin/mknod', '/bin/mknod'], install: 'coreutils (Debian: apt-get install coreutils)' },
  setpriv: { paths: ['/usr/bin/setpriv', '/bin/setpriv'], install: 'util-linux (Debian: apt-get install util-linux)' },
};

function executable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function hidden(name: string): boolean {
  const list = (process.env.IOMAP_VERITY_HIDE_TOOLS ?? '').split(',').map((s) => s.trim());
  return list.includes('all') || list.includes(name);
}

const found = new Map<string, string | undefined>();

/** Absolute path of `name`, or undefined when it is missing or hidden by `IOMAP_VERITY_HIDE_TOOLS`. */
export function tool(name: string): string | undefined {
  if (hidden(name)) return undefined;
  if (found.has(name)) return found.get(name);
  const explicit = process.env[`IOMAP_VERITY_TOOL_${name.toUpperCase().replace(/-/g, '_')}`];
  const path = [
    ...(explicit ? [explicit] : []),
    ...(KNOWN[name]?.paths ?? []),
    ...(process.env.PATH ?? '').split(delimiter).filter(Boolean).map((d) => join(d, name)),
  ].find(executable);
  found.set(name, path);
  return path;
}

/** Whether `name` can be run. */
export function haveTool(name: string): boolean {
  return tool(name) !== undefined;
}

/** The skip note for a missing `name`; the summary reporter prints each once. */
export function toolNote(name: string): string {
  return `needs ${name}: install ${KNOWN[name]?.install ?? name}`;
}

/** The path of `name`; throws, saying what to install, when it is missing. */
export function requireTool(name: string): string {
  const path = tool(name);
  if (path === undefined) throw new Error(`${name} is not installed (${toolNote(name)})${IN_CI ? '; CI is set, so .ci/run must install it' : ''}`);
  return path;
}

/** Throws when CI is set and `name` is missing, so live tests cannot silently vanish from CI. */
export function requireToolInCi(name: string): void {
  if (IN_CI) requireTool(name);
}

/** Inside a test: the path of `name`; without it, skip the test with the note (outside CI) or fail (under CI). */
export function skipWithoutTool(ctx: TestContext, name: string): string {
  const path = tool(name);
  if (path !== undefined) return path;
  if (IN_CI) return requireTool(name);
  return ctx.skip(toolNote(name));
}

/** An `it` that needs `name`: its body gets the tool's path; the switch of `skipWithoutTool`. */
export function itWithTool(
  name: string,
  title: string,
  fn: (ctx: TestContext, path: string) => unknown,
  timeout?: number,
): void {
  it(title, (ctx) => fn(ctx, skipWithoutTool(ctx, name)), timeout);
}

/**
 * A `describe` that needs `name`. Without the tool its body (tests and
 * hooks) is not collected; one test named after it skips with the note
 * instead, or fails under CI.
 */
export function describeWithTool(name: string, title: string, fn: () => void): void {
  if (haveTool(name)) describe(title, fn);
  else describe(title, () => it(`needs ${name}`, (ctx) => void skipWithoutTool(ctx, name)));
}
