/**
 * The Node side of `#platform`: the Node built-ins the library uses, each
 * loaded on first call. The package's `imports` map gives this file to
 * Node (the `node` condition) and `browser.ts` to browsers and bundlers
 * targeting them, so a browser build never reaches a `node:` module, and
 * nothing here is loaded until a Node-only feature (FileDevice,
 * fsverityDigestFile, worker threads, a local path, FUSE) is used.
 *
 * Callers import `#platform`, never `node:*`, outside the command line.
 */

/** True here: the Node built-ins below work. */
export const HAS_NODE = true;

/** `node:fs`. */
export function nodeFs(): Promise<typeof import('node:fs')> {
  return import('node:fs');
}

/** `node:fs/promises`. */
export function nodeFsPromises(): Promise<typeof import('node:fs/promises')> {
  return import('node:fs/promises');
}

/** `node:net` (the image lock's abstract sockets). */
export function nodeNet(): Promise<typeof import('node:net')> {
  return import('node:net');
}

/** `node:os`. */
export function nodeOs(): Promise<typeof import('node:os')> {
  return import('node:os');
}

/** `node:worker_threads`. */
export function nodeWorkerThreads(): Promise<typeof import('node:worker_threads')> {
  return import('node:worker_threads');
}

/** `node:stream` (Node streams over web streams). */
export async function nodeStream(): Promise<{ Readable: typeof import('node:stream').Readable }> {
  const { Readable } = await import('node:stream');
  return { Readable };
}

/** `node:module` (for `createRequire` of optional native add-ons). */
export async function nodeModule(): Promise<{ createRequire: typeof import('node:module').createRequire }> {
  const { createRequire } = await import('node:module');
  return { createRequire };
}
