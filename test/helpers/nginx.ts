/**
 * Debian's nginx as a real HTTP server for tests: started on a loopback
 * port with a config and prefix in a temporary directory of its own,
 * serving one directory, stopped by `stop()`. Skips with a notice outside
 * CI when nginx is missing; under CI (`CI` set) its absence is a failure.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IN_CI, tool, toolNote } from './tools.js';

export const NGINX = tool('nginx');
export const HAVE_NGINX = NGINX !== undefined;

/** Throws under CI without nginx; false (with a notice) when a test should skip. */
export function nginxOrSkip(): boolean {
  if (HAVE_NGINX) return true;
  if (IN_CI) throw new Error('nginx is not installed but CI is set: .ci/run must install it');
  console.warn(`skipping the tests that serve files over HTTP: ${toolNote('nginx')}`);
  return false;
}

export interface Nginx {
  /** `http://127.0.0.1:PORT` */
  readonly origin: string;
  readonly port: number;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect(port, '127.0.0.1');
    c.once('connect', () => (c.destroy(), resolve(true)));
    c.once('error', () => resolve(false));
  });
}

/**
 * Serve `root` with nginx on a free loopback port: Range requests, strong
 * ETags, and the CORS headers a browser page on another origin needs.
 */
export async function startNginx(root: string): Promise<Nginx> {
  if (!NGINX) throw new Error('nginx is not installed');
  const prefix = mkdtempSync(join(tmpdir(), 'iomap-verity-nginx-'));
  mkdirSync(join(prefix, 'logs'));
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const conf = join(prefix, 'nginx.conf');
    // One process, no daemon: the child we spawn is nginx, and killing it stops it.
    writeFileSync(
      conf,
      `daemon off;
master_process off;
worker_processes 1;
pid ${prefix}/nginx.pid;
error_log ${prefix}/logs/error.log warn;
events { worker_connections 512; }
http {
  access_log off;
  client_body_temp_path ${prefix}/body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
  types { text/html html; application/javascript js; }
  default_type application/octet-stream;
  sendfile on;
  server {
    listen 127.0.0.1:${port};
    root ${root};
    location / {
      add_header Access-Control-Allow-Origin * always;
      add_header Access-Control-Allow-Headers "Range, If-Range" always;
      add_header Access-Control-Expose-Headers "Content-Range, ETag, Content-Length" always;
      if ($request_method = OPTIONS) { return 204; }
    }
  }
}
`,
    );
    const child: ChildProcess = spawn(NGINX, ['-p', prefix, '-e', join(prefix, 'logs/error.log'), '-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    let exited = false;
    child.once('exit', () => (exited = true));
    for (let i = 0; i < 200 && !exited; i++) {
      if (await accepts(port)) {
        return {
          origin: `http://127.0.0.1:${port}`,
          port,
          stop: () =>
            new Promise<void>((resolve) => {
              const done = (): void => {
                rmSync(prefix, { recursive: true, force: true });
                resolve();
              };
              if (exited) return done();
              child.once('exit', done);
              child.kill('SIGTERM');
            }),
        };
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    child.kill('SIGKILL');
    let log = '';
    try {
      log = readFileSync(join(prefix, 'logs/error.log'), 'utf8');
    } catch {
      /* no log written */
    }
    // Another process may have taken the port between freePort and listen.
    if (attempt < 3 && /in use/.test(log + stderr)) continue;
    rmSync(prefix, { recursive: true, force: true });
    throw new Error(`nginx did not start: ${stderr}${log}`);
  }
}
