/**
 * `iomap-verity verify` and `cat` on files with the trees and descriptors
 * fsverity-utils wrote, from local paths and from nginx: good files pass,
 * damaged ones name the first bad block (all bad ranges with --all), exit
 * 1, and cat never writes a byte of a bad block. The same for dm-verity
 * images with the hash devices `veritysetup format` wrote. Runs the built
 * CLI (dist/).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fillRandom } from '../fixtures/generate.mjs';
import { fsverityFiles, HAVE_FSVERITY, requireOracleInCi, type FsverityFiles } from '../helpers/fsverity.js';
import { HAVE_NGINX, nginxOrSkip, startNginx, type Nginx } from '../helpers/nginx.js';
import { FIXED_UUID, HAVE_VERITYSETUP, rootHashOf, veritysetupAsync } from '../helpers/veritysetup.js';

const BIN = new URL('../../dist/src/cli/main.js', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'iomap-verity-cli-verify-'));
const SIZE = 2_000_003;
const bytes = fillRandom(new Uint8Array(SIZE), 5);
let fx: FsverityFiles;
let nginx: Nginx | undefined;

interface Out {
  status: number;
  stdout: Buffer;
  stderr: string;
}

function ours(args: string[]): Promise<Out> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [BIN, ...args], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    c.stdout.on('data', (d: Buffer) => out.push(d));
    c.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    c.on('error', reject);
    c.on('close', (code) => resolve({ status: code ?? -1, stdout: Buffer.concat(out), stderr: err }));
  });
}

beforeAll(async () => {
  requireOracleInCi();
  if (!existsSync(BIN)) throw new Error(`${BIN} is missing: run \`npm run build\` first`);
  if (!HAVE_FSVERITY) return;
  writeFileSync(join(dir, 'f'), bytes);
  fx = fsverityFiles(join(dir, 'f'));
  const bad = Uint8Array.from(bytes);
  for (const b of [7, 8, 9, 300]) bad[b * 4096 + 11]! ^= 4;
  writeFileSync(join(dir, 'bad'), bad);
  if (nginxOrSkip()) nginx = await startNginx(dir);
});
afterAll(async () => {
  await nginx?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('iomap-verity verify', () => {
  it('passes a good file, with and without its tree, from a path and a URL', async (ctx) => {
    if (!HAVE_FSVERITY) return ctx.skip();
    const a = await ours(['verify', 'f', `--digest=${fx.digest}`, '--tree=f.tree', '--descriptor=f.desc']);
    expect([a.status, a.stdout.toString()]).toEqual([0, 'f: OK\n']);
    const b = await ours(['verify', 'f', `--digest=${fx.digest}`]);
    expect([b.status, b.stdout.toString()]).toEqual([0, 'f: OK\n']);
    const j = await ours(['verify', 'f', `--digest=${fx.digest}`, '--tree=f.tree', '--descriptor=f.desc', '--json']);
    expect(JSON.parse(j.stdout.toString())).toMatchObject({ file: 'f', ok: true, size: SIZE, digest: fx.digest, bad: [] });
    if (nginx) {
      const u = await ours(['verify', `${nginx.origin}/f`, `--digest=${fx.digest}`, `--tree=${nginx.origin}/f.tree`, `--descriptor=${nginx.origin}/f.desc`]);
      expect(u.status).toBe(0);
    }
  });

  it('names the first bad block, or every bad range with --all, and exits 1', async (ctx) => {
    if (!HAVE_FSVERITY) return ctx.skip();
    const a = await ours(['verify', 'bad', `--digest=${fx.digest}`, '--tree=f.tree', '--descriptor=f.desc']);
    expect(a.status).toBe(1);
    expect(a.stdout.toString()).toMatch(/^bad: FAILED at data block 7 \(bytes 28672-32767\): fs-verity: data block 7 of bad fails verification/);
    const all = await ours(['verify', 'bad', `--digest=${fx.digest}`, '--tree=f.tree', '--descriptor=f.desc', '--all', '--json']);
    expect(all.status).toBe(1);
    const r = JSON.parse(all.stdout.toString());
    expect(r.ok).toBe(false);
    expect(r.bad.map((x: { firstBlock: number; lastBlock: number }) => [x.firstBlock, x.lastBlock])).toEqual([
      [7, 9],
      [300, 300],
    ]);
    const d = await ours(['verify', 'bad', `--digest=${fx.digest}`]);
    expect(d.status).toBe(1);
    expect(d.stdout.toString()).toMatch(/^bad: FAILED: its digest is sha256:[0-9a-f]{64}, expected/);
    const wrong = await ours(['verify', 'f', `--digest=sha256:${'1'.repeat(64)}`, '--tree=f.tree', '--descriptor=f.desc']);
    expect(wrong.status).toBe(1);
    expect(wrong.stdout.toString()).toMatch(/does not match the trusted digest/);
  });

  it('refuses bad command lines with exit 2', async () => {
    for (const args of [['verify', 'f'], ['verify', 'f', '--digest=sha256:zz'], ['verify', 'f', '--digest=x', '--tree=t'], ['verify', '--digest=sha256:00']]) {
      const r = await ours(args);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/Usage:/);
    }
  });
});

describe('iomap-verity cat', () => {
  it('writes verified ranges, from a path and a URL', async (ctx) => {
    if (!HAVE_FSVERITY) return ctx.skip();
    const whole = await ours(['cat', 'f', `--digest=${fx.digest}`, '--tree=f.tree', '--descriptor=f.desc']);
    expect(whole.status).toBe(0);
    expect(whole.stdout.equals(Buffer.from(bytes))).toBe(true);
    const part = await ours(['cat', 'f', `--digest=${fx.digest}`, '--tree=f.tree', '--descriptor=f.desc', '--offset=12345', '--length=777777']);
    expect(part.stdout.equals(Buffer.from(bytes.subarray(12345, 12345 + 777777)))).toBe(true);
    if (nginx) {
      const o = nginx.origin;
      const u = await ours(['cat', `${o}/f`, `--digest=${fx.digest}`, `--tree=${o}/f.tree`, `--descriptor=${o}/f.desc`, '--offset=1000000']);
      expect(u.stdout.equals(Buffer.from(bytes.subarray(1_000_000)))).toBe(true);
    }
  });

  it('stops before a bad block: everything written is true, exit 1 with the message', async (ctx) => {
    if (!HAVE_FSVERITY) return ctx.skip();
    const r = await ours(['cat', 'bad', `--digest=${fx.digest}`, '--tree=f.tree', '--descriptor=f.desc']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/data block 7 .*\(EIO\)/);
    expect(r.stdout.length).toBeLessThan(7 * 4096 + 1);
    expect(r.stdout.equals(Buffer.from(bytes.subarray(0, r.stdout.length)))).toBe(true);
    const t = readFileSync(join(dir, 'f.tree'));
    t[4096 + 5]! ^= 1;
    writeFileSync(join(dir, 'bad.tree'), t);
    const tr = await ours(['cat', 'f', `--digest=${fx.digest}`, '--tree=bad.tree', '--descriptor=f.desc', '--offset=0', '--length=4096']);
    expect(tr.status).toBe(1);
    expect(tr.stdout.length).toBe(0);
    expect(tr.stderr).toMatch(/tree block 0 .* at tree level 0/);
  });
});

describe('iomap-verity verify and cat of dm-verity images', () => {
  const img = fillRandom(new Uint8Array(600 * 1024), 6);
  let root = '';
  beforeAll(async () => {
    if (!HAVE_VERITYSETUP) return;
    writeFileSync(join(dir, 'img'), img);
    const bad = Uint8Array.from(img);
    bad[70 * 1024 + 3]! ^= 2;
    writeFileSync(join(dir, 'img.bad'), bad);
    const f = await veritysetupAsync(['format', 'img', 'img.hash', '--hash=sha512', '--data-block-size=1024', '--hash-block-size=512', '--format=0', '--salt=abcd', `--uuid=${FIXED_UUID}`], dir);
    expect(f.status, f.stderr).toBe(0);
    root = rootHashOf(f.stdout);
    const n = await veritysetupAsync(['format', 'img', 'img.nosb', '--no-superblock', '--hash-offset=4096', '--salt=-', '--data-block-size=4096'], dir);
    expect(n.status, n.stderr).toBe(0);
    writeFileSync(join(dir, 'img.nosb.root'), rootHashOf(n.stdout));
  });

  it.runIf(HAVE_VERITYSETUP)('verify passes a good image and names the bad block of a damaged one', async () => {
    const a = await ours(['verify', 'img', '--hash-device=img.hash', `--root-hash=${root}`]);
    expect([a.status, a.stdout.toString()]).toEqual([0, 'img: OK\n']);
    const j = await ours(['verify', 'img', '--hash-device=img.hash', `--root-hash=${root}`, '--json']);
    expect(JSON.parse(j.stdout.toString())).toMatchObject({ file: 'img', mode: 'dm-verity', ok: true, size: img.length, rootHash: root, bad: [] });
    const nroot = readFileSync(join(dir, 'img.nosb.root'), 'utf8');
    const ns = await ours(['verify', 'img', '--hash-device=img.nosb', `--root-hash=${nroot}`, '--no-superblock', '--hash-offset=4096', '--salt=-']);
    expect(ns.status, ns.stdout.toString()).toBe(0);
    const b = await ours(['verify', 'img.bad', '--hash-device=img.hash', `--root-hash=${root}`]);
    expect(b.status).toBe(1);
    expect(b.stdout.toString()).toMatch(/^img.bad: FAILED at data block 70 \(bytes 71680-72703\): dm-verity: data block 70 of img.bad fails verification against its level-0 hash/);
    const w = await ours(['verify', 'img', '--hash-device=img.hash', `--root-hash=${root}`, '--hash=sha256']);
    expect(w.status).toBe(1);
    expect(w.stdout.toString()).toMatch(/superblock .* says hash algorithm sha512/);
  });

  it.runIf(HAVE_VERITYSETUP)('cat writes verified ranges and stops before a bad block', async () => {
    const part = await ours(['cat', 'img', '--hash-device=img.hash', `--root-hash=${root}`, '--offset=1000', '--length=300000']);
    expect(part.status).toBe(0);
    expect(part.stdout.equals(Buffer.from(img.subarray(1000, 301000)))).toBe(true);
    const r = await ours(['cat', 'img.bad', '--hash-device=img.hash', `--root-hash=${root}`]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/data block 70 .*\(EIO\)/);
    expect(r.stdout.length).toBeLessThanOrEqual(70 * 1024);
    expect(r.stdout.equals(Buffer.from(img.subarray(0, r.stdout.length)))).toBe(true);
  });

  it('refuses mixed or incomplete dm-verity command lines with exit 2', async () => {
    for (const args of [
      ['cat', 'img', '--root-hash=00'],
      ['cat', 'img', '--hash-device=h'],
      ['verify', 'img', '--hash-device=h', '--root-hash=00', '--digest=sha256:00'],
      ['verify', 'img', '--no-superblock'],
      ['cat', 'img', '--hash-device=h', '--root-hash=00', '--salt=xyz'],
    ]) {
      const r = await ours(args);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/Usage:/);
    }
  });
});
