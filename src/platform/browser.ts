/**
 * The browser side of `#platform` (see `node.ts`): the same names, each
 * refusing with EOPNOTSUPP and saying which feature needs Node, so a
 * browser bundle carries no `node:` import and a Node-only call fails with
 * a code instead of a bundler or loader error.
 */
import { fail } from '../errors.js';
import type * as NodeSide from './node.js';

/** False here: Node built-ins are not available. */
export const HAS_NODE = false;

function unavailable(what: string): Promise<never> {
  return Promise.reject(fail('EOPNOTSUPP', `${what} is only available in Node.js (this build is for browsers)`));
}

/** Refuses: `node:fs` (FileDevice, fsverityDigestFile, local paths) needs Node. */
export function nodeFs(): Promise<never> {
  return unavailable('node:fs (FileDevice, fsverityDigestFile, local paths)');
}

/** Refuses: `node:fs/promises` needs Node. */
export function nodeFsPromises(): Promise<never> {
  return unavailable('node:fs/promises (fsverityDigestFile, local paths)');
}

/** Refuses: `node:net` (the image lock of a FileDevice) needs Node. */
export function nodeNet(): Promise<never> {
  return unavailable('node:net (the image lock of FileDevice)');
}

/** Refuses: `node:os` needs Node (browsers use navigator.hardwareConcurrency). */
export function nodeOs(): Promise<never> {
  return unavailable('node:os');
}

/** Refuses: `node:worker_threads` needs Node (browsers use Web Workers). */
export function nodeWorkerThreads(): Promise<never> {
  return unavailable('node:worker_threads');
}

/** Refuses: `node:stream` needs Node: use the web ReadableStream. */
export function nodeStream(): Promise<never> {
  return unavailable('node:stream (Node Readable helpers)');
}

/** Refuses: `node:module` (native add-ons such as the FUSE binding) needs Node. */
export function nodeModule(): Promise<never> {
  return unavailable('node:module (the FUSE mount)');
}

// Both sides must offer the same names: this fails to compile when they drift.
const sameNames: Record<keyof typeof NodeSide, unknown> = { HAS_NODE, nodeFs, nodeFsPromises, nodeNet, nodeOs, nodeWorkerThreads, nodeStream, nodeModule };
void sameNames;
