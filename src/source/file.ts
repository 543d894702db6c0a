/**
 * A local file as a `ByteSource` (Node): positional reads on one handle,
 * the size taken when it is opened. Loaded only when a path is opened.
 */
import type { FileHandle } from 'node:fs/promises';
import { fail, type ErrnoCode } from '../errors.js';
import { checkRead, throwIfAborted, type ByteSource } from './source.js';
import { nodeFsPromises } from '#platform';

function nodeError(e: unknown, what: string): Error {
  const code = (e as NodeJS.ErrnoException)?.code;
  const known: ErrnoCode[] = ['ENOENT', 'EISDIR', 'EPERM', 'ENOTDIR', 'ENAMETOOLONG'];
  const c: ErrnoCode = known.includes(code as ErrnoCode) ? (code as ErrnoCode) : code === 'EACCES' ? 'EPERM' : 'EIO';
  return fail(c, `${what}: ${(e as Error)?.message ?? String(e)}`, e);
}

class FileSource implements ByteSource {
  private handle: FileHandle | undefined;
  constructor(
    readonly name: string,
    handle: FileHandle,
    readonly size: number,
  ) {
    this.handle = handle;
  }

  async read(offset: number, length: number, signal?: AbortSignal): Promise<Uint8Array> {
    checkRead(offset, length);
    throwIfAborted(signal);
    const h = this.handle;
    if (!h) throw fail('EBADF', `${this.name} is closed`);
    const out = new Uint8Array(Math.max(0, Math.min(length, this.size - offset)));
    let done = 0;
    try {
      while (done < out.length) {
        const { bytesRead } = await h.read(out, done, out.length - done, offset + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
    } catch (e) {
      throw nodeError(e, `reading ${length} bytes at ${offset} of ${this.name}`);
    }
    throwIfAborted(signal);
    return done === out.length ? out : out.subarray(0, done);
  }

  async close(): Promise<void> {
    const h = this.handle;
    this.handle = undefined;
    await h?.close();
  }
}

/** Open the file at `path` for positional reads. ENOENT, EISDIR, EPERM as the system says. */
export async function openFileSource(path: string): Promise<ByteSource> {
  let fsp: typeof import('node:fs/promises');
  try {
    fsp = await nodeFsPromises();
  } catch (e) {
    throw fail('EOPNOTSUPP', `local paths need Node (no file system here): ${path}`, e);
  }
  let h: FileHandle;
  try {
    h = await fsp.open(path, 'r');
  } catch (e) {
    throw nodeError(e, `cannot open ${path}`);
  }
  try {
    const st = await h.stat();
    if (st.isDirectory()) throw fail('EISDIR', `${path} is a directory`);
    return new FileSource(path, h, st.size);
  } catch (e) {
    await h.close();
    throw e;
  }
}
