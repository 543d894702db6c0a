/**
 * The heavy command-line safety cases: a put killed with SIGKILL at
 * several moments, 20 writers at once, and `get` through a slow pipe with
 * its memory measured.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { BIN, cliDir, pattern } from '../helpers/image-cli.js';

const { at, cli, image, contents, names, cleanup } = cliDir('iomap-verity-cli-safety-slow-');
afterAll(cleanup);

describe('put is all or nothing', () => {
  it('a put killed with SIGKILL mid-way leaves the old contents; the next writer cleans up and succeeds', async () => {
    const old = pattern(100000, 5);
    const img = await image('kill.img', '256M', { f: old });
    const big = at('kill.src');
    fs.writeFileSync(big, pattern(100 << 20, 6));
    let killed = 0;
    for (const delay of [150, 400, 800, 1600]) {
      const run = cli(['put', img, 'f', big]);
      await new Promise((r) => setTimeout(r, delay));
      run.kill();
      const r = await run;
      if (r.status === 0) continue; // it finished first: nothing to check for this delay
      killed++;
      expect(await names(img)).toEqual(['f']);
      expect((await contents(img, 'f')).equals(old)).toBe(true);
    }
    expect(killed).toBeGreaterThan(0);
    // The lock died with the killed process; a new put frees the leftover and still fits.
    const r = await cli(['put', img, 'f', big]);
    expect(r.err).toBe('');
    expect((await cli(['ls', img])).stdout.toString()).toBe(`${100 << 20}\t-\tf\n`);
    // Replacing it needs room for both copies: there is, so nothing of the killed puts is left.
    expect((await cli(['put', img, 'f', big])).err).toBe('');
  });

});

describe('one writer at a time', () => {
  it('20 concurrent writers: each lands or fails with EBUSY naming the holder, and ls agrees', async () => {
    await concurrentWriters(20);
  });
});

/** `n` puts at once into one image: each exits 0 or fails with EBUSY; ls lists exactly those that landed, with their bytes. */
async function concurrentWriters(n: number): Promise<void> {
  const img = await image(`many-${n}.img`, '32M');
  const srcs = Array.from({ length: n }, (_, i) => {
    const p = at(`many-${n}-${i}.src`);
    fs.writeFileSync(p, pattern(200000 + i, 10 + i));
    return p;
  });
  const runs = await Promise.all(srcs.map((src, i) => cli(['put', img, `f${i}`, src])));
  const landed: string[] = [];
  runs.forEach((r, i) => {
    if (r.status === 0) landed.push(`f${i}`);
    else expect(r.err, `put ${i}`).toMatch(/open (for writing|read-only) by (process \d+|another process).*\(EBUSY\)/);
  });
  expect(landed.length).toBeGreaterThan(0);
  expect(await names(img)).toEqual(landed.sort());
  for (const name of landed) {
    const i = Number(name.slice(1));
    expect((await contents(img, name)).equals(pattern(200000 + i, 10 + i)), name).toBe(true);
  }
}

describe('get', () => {
  it('to stdout waits for a slow pipe: peak RSS stays under 160 MiB for a file larger than that', async () => {
    const size = 192 << 20;
    const src = at('pipe.src');
    const fd = fs.openSync(src, 'w');
    const chunk = pattern(1 << 20, 20);
    for (let i = 0; i < size >> 20; i++) fs.writeSync(fd, chunk);
    fs.closeSync(fd);
    const img = at('pipe.img');
    expect((await cli(['mkfs', img, '--size=256M'])).status).toBe(0);
    expect((await cli(['put', img, 'f', src])).err).toBe('');
    fs.rmSync(src);
    const child = spawn(process.execPath, [BIN, 'get', img, 'f'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let peak = 0;
    let got = 0;
    let firstBad = -1;
    const sample = () => {
      try {
        const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${child.pid}/status`, 'utf8'));
        if (m) peak = Math.max(peak, Number(m[1]) * 1024);
      } catch {
        // exited
      }
    };
    const timer = setInterval(sample, 50);
    // About 60 MB/s: read a little, pause, so the pipe stays full.
    child.stdout.on('data', (d: Buffer) => {
      for (let i = 0; i < d.length && firstBad < 0; i += 65536) {
        const off = (got + i) % (1 << 20);
        if (d[i] !== chunk[off]) firstBad = got + i;
      }
      got += d.length;
      child.stdout.pause();
      setTimeout(() => child.stdout.resume(), Math.ceil(d.length / 60000));
    });
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const status = await new Promise<number | null>((r) => child.on('close', r));
    clearInterval(timer);
    expect(err).toBe('');
    expect(status).toBe(0);
    expect(got).toBe(size);
    expect(firstBad).toBe(-1);
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThan(160 << 20);
  }, 120_000);

});
