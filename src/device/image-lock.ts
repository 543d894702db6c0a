/**
 * Who may use an image file at the same time, across processes: one writer,
 * or any number of readers (Node only, loaded lazily by FileDevice).
 *
 * Why abstract Unix sockets and not a lock file: Node has no flock(2), and
 * a lock file outlives a process killed with SIGKILL, so it needs a pid and
 * a liveness check, which a reused pid defeats, and a directory the user
 * may write (a reader of a 0444 image in a read-only directory has none).
 * A name bound in Linux's abstract socket namespace is owned by the
 * kernel: binding it is atomic and exclusive (EADDRINUSE), it needs no
 * file at all, and it disappears the moment the last process holding the
 * socket dies, however it died, so there is never a stale lock for a person
 * to delete and no pid to confuse with another process.
 *
 * The names carry the image's device and inode numbers, so two paths to one
 * file (a symlink, a hard link) meet on one lock:
 * - the writer binds `iomap-verity/<dev>/<ino>/w` (exclusive by the bind)
 *   and then `.../w/<pid>`, only to say who holds it;
 * - each reader binds `.../r/<pid>/<n>` (never in conflict with another).
 * Writer and readers exclude each other by binding first and looking
 * second in /proc/net/unix, the kernel's list of bound names: whoever binds
 * second is sure to see the first, so both may fail (and retry), never
 * both succeed.
 *
 * Limits: the namespace is per network namespace (two containers with
 * their own network sharing one image do not see each other), and it is
 * advisory, like flock: anything that writes the file without taking the
 * lock is not stopped. Where there are no abstract sockets (not Linux),
 * opens take no lock and say so in `ImageLock.kind`.
 */
import type * as NodeNet from 'node:net';
import type * as NodeFs from 'node:fs';
import { fail } from '../errors.js';
import { nodeNet } from '#platform';

/** A held lock on one image; `release` gives it back (idempotent). */
export interface ImageLock {
  readonly kind: 'write' | 'read' | 'none';
  release(): Promise<void>;
}

let counter = 0;

function listen(net: typeof NodeNet, name: string): Promise<NodeNet.Server | 'busy'> {
  return new Promise((resolve, reject) => {
    const server = net.createServer((conn) => conn.destroy());
    const onError = (e: NodeJS.ErrnoException) => {
      if (e.code === 'EADDRINUSE') resolve('busy');
      else reject(e);
    };
    server.once('error', onError);
    server.listen({ path: `\0${name}`, exclusive: true }, () => {
      server.off('error', onError);
      // Holding the lock must not keep the process alive by itself.
      server.unref();
      resolve(server);
    });
  });
}

function closeServer(server: NodeNet.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/** Names bound in the abstract namespace under `prefix` (from /proc/net/unix). */
function boundNames(fs: typeof NodeFs, prefix: string): string[] {
  const text = fs.readFileSync('/proc/net/unix', 'latin1');
  const out: string[] = [];
  const want = `@${prefix}`;
  for (const line of text.split('\n')) {
    const at = line.indexOf(want);
    if (at >= 0) out.push(line.slice(at + 1).trim());
  }
  return out;
}

function pidsOf(names: string[], prefix: string): number[] {
  const pids = new Set<number>();
  for (const n of names) {
    const m = /^(\d+)/.exec(n.slice(prefix.length));
    if (m) pids.add(Number(m[1]));
  }
  return [...pids].sort((a, b) => a - b);
}

function abstractSocketsWork(fs: typeof NodeFs): boolean {
  if (process.platform !== 'linux') return false;
  try {
    fs.accessSync('/proc/net/unix', fs.constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Take the lock of the image whose fstat is `st` (at `path`, for messages):
 * exclusive for `write`, shared for `read`. EBUSY names who holds it and
 * what to do.
 */
export async function lockImage(fs: typeof NodeFs, st: { dev: number; ino: number }, path: string, mode: 'write' | 'read'): Promise<ImageLock> {
  if (!abstractSocketsWork(fs)) return { kind: 'none', release: async () => undefined };
  const net = (await nodeNet()) as typeof NodeNet;
  const base = `iomap-verity/${st.dev}/${st.ino}/`;
  const servers: NodeNet.Server[] = [];
  const release = async () => {
    const all = servers.splice(0);
    await Promise.all(all.map(closeServer));
  };
  try {
    if (mode === 'write') {
      const w = await listen(net, `${base}w`);
      if (w === 'busy') {
        const holders = pidsOf(boundNames(fs, `${base}w/`), `${base}w/`);
        const who = holders.length > 0 ? `process ${holders.join(', ')}` : 'another process';
        throw fail('EBUSY', `${path} is open for writing by ${who}: wait for it to finish (or stop it), then try again; reading needs a read-only open`);
      }
      servers.push(w);
      const info = await listen(net, `${base}w/${process.pid}`);
      if (info !== 'busy') servers.push(info);
      const readers = pidsOf(boundNames(fs, `${base}r/`), `${base}r/`);
      if (readers.length > 0) {
        throw fail('EBUSY', `${path} is open read-only by process ${readers.join(', ')}: wait for it to finish, then try again`);
      }
    } else {
      const r = await listen(net, `${base}r/${process.pid}/${counter++}`);
      if (r === 'busy') throw fail('EBUSY', `${path}: could not take a read lock (name in use)`);
      servers.push(r);
      if (boundNames(fs, `${base}w`).length > 0) {
        const holders = pidsOf(boundNames(fs, `${base}w/`), `${base}w/`);
        const who = holders.length > 0 ? `process ${holders.join(', ')}` : 'another process';
        throw fail('EBUSY', `${path} is open for writing by ${who}: wait for it to finish, then try again`);
      }
    }
  } catch (e) {
    await release();
    throw e;
  }
  return { kind: mode, release };
}
