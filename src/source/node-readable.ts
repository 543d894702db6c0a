/**
 * A web `ReadableStream` as a Node `Readable` (for `pipe`, `pipeline`, or
 * `res` of an HTTP server). Node only; loaded when called.
 */
import type { Readable } from 'node:stream';
import { fail } from '../errors.js';
import { nodeStream } from '#platform';

/**
 * Wrap `stream` in a Node `Readable` that ends when it ends and errors
 * when it errors; destroying the Readable cancels the stream.
 * EOPNOTSUPP where there is no `node:stream`.
 */
export async function toNodeReadable(stream: ReadableStream<Uint8Array>): Promise<Readable> {
  let Node: typeof Readable;
  try {
    Node = (await nodeStream()).Readable;
  } catch (e) {
    throw fail('EOPNOTSUPP', 'Node streams need Node: use the web ReadableStream here', e);
  }
  return Node.fromWeb(stream as import('node:stream/web').ReadableStream<Uint8Array>);
}
