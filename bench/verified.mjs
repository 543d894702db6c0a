// B7 worker: verified reads over HTTP from nginx on loopback against plain
// fetches of the same bytes from the same server, in one process.
//
//   node bench/verified.mjs '{"dir":..., "file":..., "digest":..., "randomReads":N}'
//
// Starts nginx (Debian's, one process, config and prefix in a temp dir)
// serving `dir`, runs the cases, prints one JSON line, stops nginx.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { openVerified } from '../dist/src/index.js';

const args = JSON.parse(process.argv[2]);
const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => existsSync(p));
if (!NGINX) throw new Error('nginx is not installed');

function freePort() {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}
const accepts = (port) =>
  new Promise((r) => {
    const c = connect(port, '127.0.0.1');
    c.once('connect', () => (c.destroy(), r(true)));
    c.once('error', () => r(false));
  });

const prefix = mkdtempSync(join(tmpdir(), 'iomap-verity-b7-'));
const port = await freePort();
writeFileSync(
  join(prefix, 'nginx.conf'),
  `daemon off; master_process off; worker_processes 1; pid ${prefix}/nginx.pid; error_log ${prefix}/error.log warn;
events { worker_connections 512; }
http { access_log off; sendfile on; tcp_nopush on; default_type application/octet-stream;
  client_body_temp_path ${prefix}/b; proxy_temp_path ${prefix}/p; fastcgi_temp_path ${prefix}/f; uwsgi_temp_path ${prefix}/u; scgi_temp_path ${prefix}/s;
  server { listen 127.0.0.1:${port}; root ${args.dir}; } }
`,
);
const nginx = spawn(NGINX, ['-p', prefix, '-e', join(prefix, 'error.log'), '-c', join(prefix, 'nginx.conf')], { stdio: 'ignore' });
for (let i = 0; i < 400 && !(await accepts(port)); i++) await new Promise((r) => setTimeout(r, 25));
const origin = `http://127.0.0.1:${port}`;
const name = basename(args.file);

let requests = 0;
const counting = (input, init) => {
  requests++;
  return fetch(input, init);
};
const urls = { data: `${origin}/${name}`, tree: `${origin}/${name}.tree`, descriptor: `${origin}/${name}.desc` };

/** xorshift32: the same offsets for both contenders. */
function offsets(n, blocks, seed) {
  let x = seed | 0;
  const out = [];
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out.push(((x >>> 0) % blocks) * 4096);
  }
  return out;
}

async function plainSeq() {
  const t = performance.now();
  const res = await fetch(urls.data);
  let n = 0;
  for await (const c of res.body) n += c.length;
  return { seconds: (performance.now() - t) / 1000, bytes: n };
}

async function verifiedSeq(parallel = false) {
  const f = await openVerified(urls, { digest: args.digest }, { parallel });
  const t = performance.now();
  let n = 0;
  const reader = f.stream({ chunkSize: 4 << 20, readahead: 4 }).getReader();
  for (let r = await reader.read(); !r.done; r = await reader.read()) n += r.value.length;
  const seconds = (performance.now() - t) / 1000;
  await f.close();
  return { seconds, bytes: n };
}

const out = { size: args.size };
try {
  // Check before timing: a verified pass over the whole file must succeed and give every byte.
  const check = await verifiedSeq();
  if (check.bytes !== args.size) throw new Error(`verified read gave ${check.bytes} bytes of ${args.size}`);
  const plain = [];
  const verified = [];
  const parallel = [];
  for (let i = 0; i < args.runs; i++) {
    plain.push(await plainSeq());
    verified.push(await verifiedSeq());
    if (args.parallel) parallel.push(await verifiedSeq(true));
  }
  out.plainSeqSeconds = Math.min(...plain.map((r) => r.seconds));
  out.verifiedSeqSeconds = Math.min(...verified.map((r) => r.seconds));
  if (args.parallel) out.parallelSeqSeconds = Math.min(...parallel.map((r) => r.seconds));

  const blocks = Math.floor(args.size / 4096);
  const f = await openVerified(urls, { digest: args.digest }, { fetch: counting });
  const buf = new Uint8Array(4096);
  // Warm-up: enough random reads to bring every tree block into the cache.
  for (const o of offsets(args.warmup, blocks, 7)) await f.readInto(o, buf);
  const measured = offsets(args.randomReads, blocks, 99);
  const before = requests;
  let t = performance.now();
  for (const o of measured) await f.readInto(o, buf);
  out.verifiedRandomSeconds = (performance.now() - t) / 1000;
  out.requestsPerRead = (requests - before) / measured.length;
  await f.close();
  t = performance.now();
  for (const o of measured) {
    const r = await fetch(urls.data, { headers: { Range: `bytes=${o}-${o + 4095}` } });
    const b = new Uint8Array(await r.arrayBuffer());
    if (b.length !== 4096) throw new Error(`plain ranged fetch gave ${b.length} bytes`);
  }
  out.plainRandomSeconds = (performance.now() - t) / 1000;
  out.randomReads = measured.length;
  out.maxRssKiB = process.resourceUsage().maxRSS;
} finally {
  nginx.kill('SIGTERM');
  rmSync(prefix, { recursive: true, force: true });
}
console.log(JSON.stringify(out));
process.exit(0);
