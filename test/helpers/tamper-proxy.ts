/**
 * A tampering HTTP proxy (node:http) in front of a real server. A request
 * for `/t/MODE/KEY/PATH` is forwarded as `/PATH` and its answer tampered
 * with as MODE says; any other path passes through untouched. Counters of
 * the stateful modes ("the first N requests") are kept per MODE/KEY, so
 * tests choose a fresh KEY to start from zero.
 *
 * Modes (N a number):
 * - `flip-N`: the byte at file offset N is flipped when the answer holds it
 * - `reorder`: two 16-byte pieces of every body are swapped
 * - `truncate`: every body is cut in half and the connection dropped
 * - `short-N`: the first N bodies are cut in half, then answers are whole
 * - `drop-N`: the first N requests get their connection closed, no answer
 * - `5xx-N`: the first N requests get 503; `5xx` every one
 * - `delay-N`: every answer waits N ms
 * - `norange`: Range and If-Range are stripped (the server sends 200 and the whole file)
 * - `change-N`: after N requests, PATH.v2 is served instead (another file, another ETag)
 * - `stealth-N`: as change-N, but with the first version's ETag and Last-Modified kept
 * - `wrongrange`: Content-Range of a 206 claims the range starts one block later
 */
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';

export interface TamperProxy {
  readonly origin: string;
  /** Requests seen per MODE/KEY. */
  readonly counts: Map<string, number>;
  stop(): Promise<void>;
}

function fetchUpstream(
  port: number,
  path: string,
  method: string,
  headers: IncomingHttpHeaders,
): Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers: { ...headers, host: `127.0.0.1:${port}`, connection: 'close' } }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 502, headers: res.headers, body: Buffer.concat(parts) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** Start the proxy on a loopback port in front of the server at `upstreamPort`. */
export async function startTamperProxy(upstreamPort: number): Promise<TamperProxy> {
  const counts = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    void (async () => {
      const m = /^\/t\/([^/]+)\/([^/]+)(\/.*)$/.exec(req.url ?? '/');
      const mode = m?.[1] ?? '';
      const key = `${mode}/${m?.[2] ?? ''}`;
      const n = (counts.get(key) ?? 0) + 1;
      counts.set(key, n);
      let path = m ? m[3]! : req.url ?? '/';
      const [name, argText] = /^([a-z0-9]+?)(?:-(\d+))?$/.exec(mode)?.slice(1) ?? [mode, undefined];
      const arg = argText === undefined ? undefined : Number(argText);
      const headers = { ...req.headers };
      if (name === 'norange') {
        delete headers.range;
        delete headers['if-range'];
      }
      if (name === 'drop' && n <= arg!) {
        req.socket.destroy();
        return;
      }
      if (name === '5xx' && (arg === undefined || n <= arg)) {
        res.writeHead(503, { 'content-type': 'text/plain' });
        res.end('busy');
        return;
      }
      if (name === 'delay') await new Promise((r) => setTimeout(r, arg));
      const switched = (name === 'change' || name === 'stealth') && n > arg!;
      let up = await fetchUpstream(upstreamPort, switched ? `${path}.v2` : path, req.method ?? 'GET', headers);
      if (name === 'stealth' && switched) {
        // The first version's validators, as a careless server that rewrites files in place might keep them.
        const first = await fetchUpstream(upstreamPort, path, 'HEAD', {});
        up = { ...up, headers: { ...up.headers, etag: first.headers.etag, 'last-modified': first.headers['last-modified'] } };
        // If-Range was for the first version: a range stays a range.
        if (headers.range && up.status === 200) up = await fetchUpstream(upstreamPort, `${path}.v2`, req.method ?? 'GET', { range: headers.range });
        up.headers.etag = first.headers.etag;
        up.headers['last-modified'] = first.headers['last-modified'];
      }
      const body = Buffer.from(up.body);
      const out = { ...up.headers };
      delete out['transfer-encoding'];
      delete out.connection;
      const cr = /bytes (\d+)-(\d+)\/(\d+)/.exec(String(up.headers['content-range'] ?? ''));
      const start = cr ? Number(cr[1]) : 0;
      if (name === 'flip' && arg! >= start && arg! < start + body.length) body[arg! - start]! ^= 0x01;
      if (name === 'reorder' && body.length >= 32) {
        const a = Buffer.from(body.subarray(0, 16));
        body.copy(body, 0, body.length - 16);
        a.copy(body, body.length - 16);
      }
      if (name === 'wrongrange' && cr) out['content-range'] = `bytes ${start + 4096}-${Number(cr[2]) + 4096}/${cr[3]}`;
      if ((name === 'truncate' || (name === 'short' && n <= arg!)) && body.length > 1) {
        res.writeHead(up.status, { ...out, 'content-length': String(body.length) });
        res.write(body.subarray(0, body.length >> 1), () => res.destroy());
        return;
      }
      res.writeHead(up.status, { ...out, 'content-length': String(body.length) });
      res.end(req.method === 'HEAD' ? undefined : body);
    })().catch(() => res.destroy());
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const a = server.address();
  const port = typeof a === 'object' && a ? a.port : 0;
  return {
    origin: `http://127.0.0.1:${port}`,
    counts,
    stop: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}
