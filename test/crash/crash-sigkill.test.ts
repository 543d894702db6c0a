/**
 * A real process killed with SIGKILL in the middle of its work, again and
 * again on the same image file.
 *
 * The child (test/helpers/crash-child.mjs, running the built package from
 * dist/) creates f0, f1, ... with content fixed by n, fsyncs each and prints
 * "synced n", seals some ("sealed n") and removes older ones followed by
 * volume.sync() ("removed n"). The parent kills it 20-300 ms after its first
 * ack, opens the image in this process and checks what every ack promised:
 * synced files are there byte for byte, sealed ones are sealed and measure
 * to fsverityDigest of their content, removed ones are gone; a file never
 * acked is absent or holds only its intended bytes or zeros. Then the child
 * starts again on the image and continues after the largest f<n>.
 *
 * Needs `npm run build` (the test script runs it first).
 * IOMAP_VERITY_SOAK=1 runs 40 rounds instead of 8.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { FileDevice, Volume, fsverityDigest } from '../../src/index.js';
import { contentFor, removeTarget, sealParams } from '../helpers/crash-child.mjs';
import { rng } from '../helpers/format.js';

const SOAK = process.env.IOMAP_VERITY_SOAK === '1';
const ROUNDS = SOAK ? 40 : 8;
const CHILD = fileURLToPath(new URL('../helpers/crash-child.mjs', import.meta.url));
const DIST = fileURLToPath(new URL('../../dist/src/index.js', import.meta.url));
const BLOCK = 4096;
const DEVICE_SIZE = 128 << 20;

const dir = mkdtempSync(join(tmpdir(), 'iomap-verity-sigkill-'));
let child: ChildProcess | undefined;

afterAll(() => {
  // On a failure mid-round the child may still be looping: no orphans.
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

interface RoundOutput {
  lines: string[];
  signal: NodeJS.Signals | null;
  code: number | null;
  stderr: string;
}

/** Runs the child on `image` and kills it `delayMs` after its first ack. */
function runChild(image: string, delayMs: number): Promise<RoundOutput> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [CHILD, image, String(BLOCK), String(DEVICE_SIZE)], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = c;
    let out = '';
    let stderr = '';
    let armed = false;
    // A child that never acks is a failure, not a hang.
    const guard = setTimeout(() => c.kill('SIGKILL'), 20_000);
    c.stdout!.setEncoding('utf8');
    c.stdout!.on('data', (d: string) => {
      out += d;
      if (!armed && /^synced /m.test(out)) {
        armed = true;
        setTimeout(() => c.kill('SIGKILL'), delayMs);
      }
    });
    c.stderr!.setEncoding('utf8');
    c.stderr!.on('data', (d: string) => (stderr += d));
    c.on('error', reject);
    // 'close' comes after stdout is drained: every ack written before the kill is in `out`.
    c.on('close', (code, signal) => {
      clearTimeout(guard);
      const lines = out.split('\n');
      lines.pop(); // an unterminated tail is not an ack
      resolve({ lines, signal, code, stderr });
    });
  });
}

const numberOf = (name: string): number => {
  const m = /^f(\d+)$/.exec(name);
  if (!m) throw new Error(`unexpected file ${JSON.stringify(name)} on the image`);
  return Number(m[1]);
};

describe('SIGKILL of a process writing through the built package', () => {
  it(`${ROUNDS} kills at random moments: every ack holds after reopening, unacked files hold only their own bytes`, async () => {
    expect(existsSync(DIST), `${DIST} is missing: run npm run build`).toBe(true);
    const t0 = Date.now();
    const image = join(dir, 'volume.img');
    const r = rng(0xc0ffee);
    const synced = new Set<number>();
    const sealed = new Set<number>();
    const removed = new Set<number>();
    const digests = new Map<number, string>();
    let nextExpected = 0;
    let partials = 0;
    let sealedChecked = 0;
    const roundsLog: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const delay = 20 + Math.floor(r() * 281);
      const res = await runChild(image, delay);
      const where = `round ${round} (kill ${delay} ms after the first ack)`;
      expect(res.signal, `${where}: the child must die by our SIGKILL, not exit (code ${res.code}): ${res.stderr}`).toBe('SIGKILL');
      expect(res.lines[0], `${where}: first line`).toBe(`ready ${nextExpected}`);
      let acks = 0;
      for (const line of res.lines.slice(1)) {
        const m = /^(synced|sealed|removed) (\d+)$/.exec(line);
        expect(m, `${where}: ack line ${JSON.stringify(line)}`).not.toBeNull();
        const n = Number(m![2]);
        if (m![1] === 'synced') synced.add(n);
        else if (m![1] === 'sealed') sealed.add(n);
        else removed.add(n);
        acks++;
      }
      expect(acks, `${where}: acks before the kill`).toBeGreaterThan(0);

      const dev = await FileDevice.open(image, { blockSize: BLOCK });
      const vol = await Volume.open(dev);
      const names = await vol.list();
      const present = new Set(names.map(numberOf));
      for (const n of synced) {
        const at = `${where}: f${n}`;
        if (!present.has(n)) {
          // Gone: acked removed, or its removal had begun (after f<n+6> was acked synced).
          expect(removed.has(n) || (synced.has(n + 6) && removeTarget(n + 6) === n), `${at} was acked synced and is gone`).toBe(true);
          continue;
        }
        expect(removed.has(n), `${at} was acked removed (after volume.sync) and is still there`).toBe(false);
        const f = await vol.open(`f${n}`);
        const want = contentFor(n);
        expect(f.size, `${at} size`).toBe(want.length);
        const got = await f.read(0, want.length + 1);
        expect(Buffer.compare(got, want), `${at} content`).toBe(0);
        if (sealed.has(n)) expect(f.isVerity, `${at} was acked sealed`).toBe(true);
        if (f.isVerity) {
          const params = sealParams(n);
          expect(params, `${at} is sealed but was never meant to be`).toBeDefined();
          let d = digests.get(n);
          if (d === undefined) digests.set(n, (d = (await fsverityDigest(want, params)).formatted));
          expect((await f.measureVerity()).formatted, `${at} digest`).toBe(d);
          sealedChecked++;
        }
      }
      for (const n of present) {
        if (synced.has(n)) continue;
        // Never acked: killed before its fsync returned (or before the ack).
        const at = `${where}: unacked f${n}`;
        const f = await vol.open(`f${n}`);
        const want = contentFor(n);
        expect(f.isVerity, `${at} is sealed`).toBe(false);
        expect(f.size, `${at} is larger than it was meant to be`).toBeLessThanOrEqual(want.length);
        const got = await f.read(0, f.size + 1);
        expect(got.length).toBe(f.size);
        const bad = got.findIndex((b, i) => b !== 0 && b !== want[i]);
        expect(bad, `${at}: byte ${bad} is neither its own nor zero`).toBe(-1);
        partials++;
      }
      nextExpected = present.size === 0 ? 0 : Math.max(...present) + 1;
      roundsLog.push(`${acks} acks/${names.length} files`);
      await vol.close();
      await dev.close();
    }
    const secs = (Date.now() - t0) / 1000;
    console.log(
      `[crash-sigkill] ${ROUNDS} rounds (${roundsLog.join(', ')}): ${synced.size} files acked synced, ${sealed.size} sealed, ` +
        `${removed.size} removed; ${sealedChecked} sealed-file checks, ${partials} checks of unacked files; ${secs.toFixed(1)} s`,
    );
    expect(sealed.size).toBeGreaterThan(0);
    expect(removed.size).toBeGreaterThan(0);
  });
});
