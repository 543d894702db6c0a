/**
 * An http(s) resource as a `ByteSource`, through `fetch` (Node and
 * browsers): one ranged GET per read, a limit on requests in flight,
 * bounded retries with backoff on 5xx answers and dropped connections, and
 * checks that every answer is of the resource that was opened.
 *
 * Opening asks for the first byte (`Range: bytes=0-0`) and keeps the size
 * (from `Content-Range`) and the validators (`ETag`, `Last-Modified`).
 * Every read then sends `If-Range` with them: a server whose file changed
 * answers 200 with the new file, whose validator differs, and the read
 * fails with EIO saying so, rather than mixing two versions. A `206` whose
 * `Content-Range` or `ETag` disagrees is refused the same way. A server
 * that ignores `Range` (200 with the whole body) still serves correct
 * bytes: the body is read up to the range and cancelled, without keeping
 * what lies before it.
 *
 * In a browser the server must let a page send `Range` and see
 * `Content-Range` and `ETag` (CORS: `Access-Control-Allow-Headers: Range,
 * If-Range`, `Access-Control-Expose-Headers: Content-Range, ETag,
 * Content-Length`); without the exposed headers the checks that need them
 * are skipped (what the bytes are is still checked by whoever reads them).
 */
import { fail, IomapVerityError } from '../errors.js';
import { checkRead, throwIfAborted, type ByteSource } from './source.js';

/** Options of HTTP sources. */
export interface HttpSourceOptions {
  /** The `fetch` to use; default `globalThis.fetch`. */
  fetch?: typeof globalThis.fetch;
  /** Extra request headers (authorization, say). */
  headers?: Record<string, string>;
  /** Retries of a request after a 5xx, 408 or 429 answer, a dropped connection or a cut-short body; default 4. */
  retries?: number;
  /** Delay before the first retry in ms, doubled for each next one; default 100. */
  retryDelay?: number;
  /** Requests in flight at most, per source; default 6 (what browsers allow per host). */
  concurrency?: number;
}

/** A failure worth another try: the server or the network, not the answer's content. */
class Transient extends Error {}

const DEFAULT_RETRIES = 4;
const DEFAULT_RETRY_DELAY = 100;
const DEFAULT_CONCURRENCY = 6;

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** A counting semaphore: requests wait their turn in order. */
class Slots {
  private free: number;
  private readonly waiting: (() => void)[] = [];
  constructor(n: number) {
    this.free = n;
  }
  async take(): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return;
    }
    await new Promise<void>((ok) => this.waiting.push(ok));
  }
  give(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.free++;
  }
}

function cancelBody(res: Response): void {
  res.body?.cancel().catch(() => {});
}

/** `bytes a-b/total`, or a star for the range or the total; undefined fields for stars. */
function parseContentRange(h: string | null): { start?: number; end?: number; total?: number } | undefined {
  if (h === null) return undefined;
  const m = /^\s*bytes\s+(?:(\d+)-(\d+)|\*)\/(\d+|\*)\s*$/i.exec(h);
  if (!m) return {};
  return {
    start: m[1] === undefined ? undefined : Number(m[1]),
    end: m[2] === undefined ? undefined : Number(m[2]),
    total: m[3] === '*' ? undefined : Number(m[3]),
  };
}

class HttpSource implements ByteSource {
  readonly name: string;
  /** Requests sent so far (retries included). */
  requests = 0;
  private readonly slots: Slots;
  private readonly fetch: typeof globalThis.fetch;
  private closed = false;
  /** Aborted by close(), so nothing in flight outlives the source. */
  private readonly closing = new AbortController();

  constructor(
    private readonly url: URL,
    private readonly opts: HttpSourceOptions,
    public size: number | undefined,
    private etag: string | null,
    private lastModified: string | null,
  ) {
    this.name = url.href;
    this.fetch = opts.fetch ?? globalThis.fetch.bind(globalThis);
    const c = opts.concurrency ?? DEFAULT_CONCURRENCY;
    if (!Number.isInteger(c) || c < 1) throw fail('EINVAL', `concurrency must be a positive integer, got ${String(c)}`);
    this.slots = new Slots(c);
  }

  private changed(why: string): IomapVerityError {
    return fail('EIO', `${this.name} changed on the server while it was being read (${why}): open it again to read the new version`);
  }

  /** One GET with `headers`, counted; network failures are transient. */
  async request(headers: Record<string, string>, signal: AbortSignal | undefined): Promise<Response> {
    const signals = [this.closing.signal, ...(signal ? [signal] : [])];
    const s = signals.length === 1 ? signals[0]! : AbortSignal.any(signals);
    this.requests++;
    try {
      return await this.fetch(this.url, {
        headers: { ...this.opts.headers, ...headers, 'Accept-Encoding': 'identity' },
        signal: s,
        cache: 'no-store',
      });
    } catch (e) {
      throwIfAborted(signal);
      if (this.closed) throw fail('EBADF', `${this.name} was closed`);
      throw new Transient(`fetch failed: ${(e as Error)?.message ?? String(e)}`, { cause: e });
    }
  }

  /** Run `attempt` with retries and backoff; EIO once they are used up. */
  async retrying<T>(what: string, signal: AbortSignal | undefined, attempt: () => Promise<T>): Promise<T> {
    const retries = this.opts.retries ?? DEFAULT_RETRIES;
    const delay = this.opts.retryDelay ?? DEFAULT_RETRY_DELAY;
    for (let n = 0; ; n++) {
      throwIfAborted(signal);
      try {
        return await attempt();
      } catch (e) {
        if (!(e instanceof Transient)) throw e;
        if (n >= retries) throw fail('EIO', `${what} of ${this.name} failed after ${n + 1} tries: ${e.message}`, e);
        // Jitter keeps many readers from retrying in lockstep.
        await sleep(delay * 2 ** n * (0.75 + Math.random() / 2), signal);
      }
    }
  }

  /** Answer status that is worth a retry, or an error for one that is not; undefined when usable. */
  private checkStatus(res: Response): void {
    if (res.status >= 500 || res.status === 408 || res.status === 429) {
      cancelBody(res);
      throw new Transient(`HTTP ${res.status} ${res.statusText}`.trim());
    }
  }

  /** The answer is of the opened resource, or EIO: validators, and the size where the answer says it. */
  private checkSame(res: Response, total: number | undefined): void {
    const etag = res.headers.get('etag');
    if (this.etag !== null && etag !== null && etag !== this.etag) throw this.changed(`ETag ${this.etag} became ${etag}`);
    const lm = res.headers.get('last-modified');
    if (this.etag === null && this.lastModified !== null && lm !== null && lm !== this.lastModified) {
      throw this.changed(`Last-Modified ${this.lastModified} became ${lm}`);
    }
    if (total !== undefined && this.size !== undefined && total !== this.size) throw this.changed(`its size ${this.size} became ${total}`);
  }

  async read(offset: number, length: number, signal?: AbortSignal): Promise<Uint8Array> {
    checkRead(offset, length);
    throwIfAborted(signal);
    if (this.closed) throw fail('EBADF', `${this.name} was closed`);
    const end = this.size === undefined ? offset + length : Math.min(offset + length, this.size);
    if (end <= offset) return new Uint8Array(0);
    await this.slots.take();
    try {
      return await this.retrying(`reading bytes ${offset}-${end - 1}`, signal, () => this.readOnce(offset, end - offset, signal));
    } finally {
      this.slots.give();
    }
  }

  private async readOnce(offset: number, len: number, signal: AbortSignal | undefined): Promise<Uint8Array> {
    const headers: Record<string, string> = { Range: `bytes=${offset}-${offset + len - 1}` };
    // If-Range takes a strong ETag or a date; a weak ETag cannot guard a range.
    if (this.etag !== null && !this.etag.startsWith('W/')) headers['If-Range'] = this.etag;
    else if (this.etag === null && this.lastModified !== null) headers['If-Range'] = this.lastModified;
    const res = await this.request(headers, signal);
    this.checkStatus(res);
    try {
      if (res.status === 206) {
        const cr = parseContentRange(res.headers.get('content-range'));
        this.checkSame(res, cr?.total);
        if (cr && (cr.start !== offset || cr.end !== offset + len - 1)) {
          throw fail('EIO', `${this.name} answered Content-Range ${res.headers.get('content-range')} to a request for bytes ${offset}-${offset + len - 1}`);
        }
        return await this.body(res, 0, len, false, signal);
      }
      if (res.status === 200) {
        const cl = res.headers.get('content-length');
        this.checkSame(res, cl === null ? undefined : Number(cl));
        return await this.body(res, offset, len, true, signal);
      }
      if (res.status === 416) throw this.changed(`bytes ${offset}-${offset + len - 1} are no longer there`);
      throw fail(res.status === 404 ? 'ENOENT' : 'EIO', `${this.name} answered HTTP ${res.status} ${res.statusText} to a range request`.trim());
    } finally {
      cancelBody(res);
    }
  }

  /**
   * `len` bytes of the body after skipping `skip`; a body cut short is
   * transient. A `whole` body (the file, Range ignored) is cancelled once
   * the range is in; a ranged one longer than asked for is an error.
   */
  private async body(res: Response, skip: number, len: number, whole: boolean, signal: AbortSignal | undefined): Promise<Uint8Array> {
    const out = new Uint8Array(len);
    if (!res.body) {
      if (len === 0) return out;
      throw new Transient('the answer has no body');
    }
    const reader = res.body.getReader();
    let pos = 0; // bytes of the body seen
    try {
      for (;;) {
        let r: ReadableStreamReadResult<Uint8Array>;
        try {
          r = await reader.read();
        } catch (e) {
          throwIfAborted(signal);
          throw new Transient(`the connection dropped after ${pos} bytes of the body: ${(e as Error)?.message ?? String(e)}`, { cause: e });
        }
        if (r.done) break;
        const c = r.value;
        const a = Math.max(0, skip - pos);
        const z = Math.min(c.length, skip + len - pos);
        if (z > a) out.set(c.subarray(a, z), pos + a - skip);
        pos += c.length;
        if (whole && pos >= skip + len) return out;
        if (!whole && pos > len) throw fail('EIO', `${this.name} sent more than the ${len} bytes asked for`);
      }
    } finally {
      reader.cancel().catch(() => {});
    }
    if (pos < skip + len) throw new Transient(`the body ended after ${pos} of ${skip + len} bytes`);
    return out;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.closing.abort(fail('EBADF', `${this.name} was closed`));
  }

  /** Learn the size and validators: a ranged GET of the first byte. */
  async open(): Promise<void> {
    await this.retrying('opening', undefined, async () => {
      const res = await this.request({ Range: 'bytes=0-0' }, undefined);
      this.checkStatus(res);
      try {
        if (res.status === 206 || res.status === 416) {
          const cr = parseContentRange(res.headers.get('content-range'));
          if (cr?.total === undefined) throw fail('EIO', `${this.name} answered ${res.status} without the size in Content-Range (a browser needs it exposed by CORS)`);
          this.size = cr.total;
        } else if (res.status === 200) {
          const cl = res.headers.get('content-length');
          if (cl === null || !/^\d+$/.test(cl)) throw fail('EIO', `${this.name} ignores Range and sends no Content-Length: its size is unknown`);
          this.size = Number(cl);
        } else if (res.status === 404 || res.status === 410) {
          throw fail('ENOENT', `${this.name}: HTTP ${res.status} ${res.statusText}`.trim());
        } else if (res.status === 401 || res.status === 403) {
          throw fail('EPERM', `${this.name}: HTTP ${res.status} ${res.statusText}`.trim());
        } else {
          throw fail('EIO', `${this.name}: HTTP ${res.status} ${res.statusText}`.trim());
        }
        this.etag = res.headers.get('etag');
        this.lastModified = res.headers.get('last-modified');
      } finally {
        cancelBody(res);
      }
    });
  }
}

/** Open `url`: its size and validators are learnt now (ENOENT for 404, EIO when the server cannot be reached). */
export async function openHttpSource(url: URL, opts: HttpSourceOptions = {}): Promise<ByteSource & { readonly requests: number }> {
  const s = new HttpSource(url, opts, undefined, null, null);
  await s.open();
  return s;
}
