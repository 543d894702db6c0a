/**
 * Where dm-verity's bytes come from: a path (Node, positional reads) or a
 * Uint8Array. Reads are synchronous for paths so that a read into
 * WebAssembly memory cannot race a `memory.grow` that detaches its view.
 */
import { fail, isErrno, isUint8Array, type ErrnoCode } from '../errors.js';
import { nodeFs } from '#platform';

/** Data or hash device: a local path (Node) or the bytes themselves. */
export type DmverityInput = string | Uint8Array;

/** An open input. */
export interface DmSource {
  readonly size: number;
  /** The open file descriptor of a path (Node), for the worker pool to read itself. */
  readonly fd?: number;
  /** Fill `into` from byte `pos`; EIO when the input ends first. */
  readInto(pos: number, into: Uint8Array): void;
  close(): void;
}

const PASS: readonly string[] = ['ENOENT', 'EISDIR', 'ENOTDIR', 'ENAMETOOLONG', 'EPERM'];

/** An IomapVerityError for a Node I/O error, keeping the errno name where we have one. */
export function ioFailure(e: unknown, what: string): Error {
  const code = (e as NodeJS.ErrnoException)?.code ?? '';
  const errno: ErrnoCode = code === 'EACCES' ? 'EPERM' : PASS.includes(code) ? (code as ErrnoCode) : 'EIO';
  return fail(errno, `${what}: ${(e as Error)?.message ?? String(e)}`, e);
}

/** Open `input` for reading; `what` names it in errors ("data device"). */
export async function openSource(input: DmverityInput, what: string): Promise<DmSource> {
  if (isUint8Array(input)) {
    return {
      size: input.length,
      readInto(pos, into) {
        if (pos + into.length > input.length) throw fail('EIO', `${what} ends at ${input.length} bytes, reading ${into.length} at ${pos}`);
        into.set(input.subarray(pos, pos + into.length));
      },
      close() {},
    };
  }
  if (typeof input !== 'string') throw fail('EINVAL', `${what}: a path or a Uint8Array`);
  const fs = await nodeFs();
  let fd: number;
  try {
    fd = fs.openSync(input, 'r');
  } catch (e) {
    throw ioFailure(e, `cannot open ${what} '${input}'`);
  }
  let size: number;
  try {
    const st = fs.fstatSync(fd);
    if (st.isDirectory()) throw fail('EISDIR', `${what} '${input}' is a directory`);
    size = st.size;
  } catch (e) {
    fs.closeSync(fd);
    throw isErrno(e) ? e : ioFailure(e, `cannot stat ${what} '${input}'`);
  }
  return {
    size,
    fd,
    readInto(pos, into) {
      for (let got = 0; got < into.length; ) {
        let n: number;
        try {
          n = fs.readSync(fd, into, got, into.length - got, pos + got);
        } catch (e) {
          throw ioFailure(e, `reading ${what} '${input}'`);
        }
        if (n === 0) throw fail('EIO', `${what} '${input}' ends at ${pos + got} bytes, reading ${into.length} at ${pos}`);
        got += n;
      }
    },
    close() {
      fs.closeSync(fd);
    },
  };
}
