/**
 * SIGKILL of an `iomap-verity mount` process while programs write through
 * it, then the image reopened and checked: every file whose `dd
 * conv=fsync` had succeeded holds exactly its bytes; any other file holds,
 * at each offset, its intended byte or a zero (the durability contract).
 * Shared by the quick round in the default run and the slow rounds.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { FileDevice, Volume } from '../../src/index.js';
import { pattern } from './device-suite.js';
import { forceUnmount, mountWithCli, toolPath } from './fuse.js';

/** The content of file `i` of a round (deterministic, sizes from 4 KiB - 1 to about 1.5 MiB). */
export function crashContent(round: number, i: number): Buffer {
  const p = pattern(((i * 7919 + round * 104729) % (1536 << 10)) + 4095, round * 1000 + i + 1);
  return Buffer.from(p.buffer, p.byteOffset, p.length);
}

/**
 * One round on `img` (already made): mount it with the command line, run a
 * shell loop of `dd conv=fsync` writes into it, SIGKILL the mount after
 * `killAfterSynced` acknowledged files plus `delayMs`, then check the
 * image. Returns how many files had been acknowledged.
 */
export async function crashRound(dir: string, img: string, round: number, killAfterSynced: number, delayMs: number): Promise<number> {
  const mnt = join(dir, `mnt${round}`);
  const src = join(dir, `src${round}`);
  mkdirSync(mnt);
  mkdirSync(src);
  const FILES = 40;
  for (let i = 0; i < FILES; i++) writeFileSync(join(src, `f${i}`), crashContent(round, i));
  const mount = await mountWithCli(img, mnt);
  const DD = toolPath('dd');
  const script = `i=0; while [ $i -lt ${FILES} ]; do ${DD} if="${src}/f$i" of="${mnt}/r${round}f$i" bs=65536 conv=fsync status=none || exit 1; echo "synced $i"; i=$((i+1)); done`;
  const writer = spawn(toolPath('sh'), ['-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let killed = false;
  const writerDone = new Promise<void>((resolve) => writer.on('close', () => resolve()));
  try {
    await new Promise<void>((resolve) => {
      const guard = setTimeout(() => {
        mount.child.kill('SIGKILL');
        resolve();
      }, 30_000);
      writer.stdout!.setEncoding('utf8').on('data', (d: string) => {
        out += d;
        if (!killed && out.split('\n').filter((l) => l.startsWith('synced ')).length >= killAfterSynced) {
          killed = true;
          setTimeout(() => {
            mount.child.kill('SIGKILL');
            clearTimeout(guard);
            resolve();
          }, delayMs);
        }
      });
      void writerDone.then(() => {
        if (!killed) {
          clearTimeout(guard);
          mount.child.kill('SIGKILL');
          resolve();
        }
      });
    });
    const exit = await mount.exited;
    expect(exit.signal).toBe('SIGKILL');
  } finally {
    if (mount.child.exitCode === null && mount.child.signalCode === null) mount.child.kill('SIGKILL');
    await forceUnmount(mnt);
    writer.kill('SIGKILL');
    await writerDone;
  }
  const synced = out
    .split('\n')
    .filter((l) => l.startsWith('synced '))
    .map((l) => Number(l.slice(7)));
  const dev = await FileDevice.open(img, { blockSize: 512 });
  try {
    const vol = await Volume.open(dev);
    const names = new Set(await vol.list());
    for (const i of synced) {
      const name = `r${round}f${i}`;
      expect(names.has(name), `${name} was fsynced`).toBe(true);
      const f = await vol.open(name);
      const want = crashContent(round, i);
      expect(f.size, name).toBe(want.length);
      expect(Buffer.compare(Buffer.from(await f.read(0, f.size)), want), name).toBe(0);
    }
    for (let i = 0; i < FILES; i++) {
      const name = `r${round}f${i}`;
      if (synced.includes(i) || !names.has(name)) continue;
      const f = await vol.open(name);
      const want = crashContent(round, i);
      expect(f.size).toBeLessThanOrEqual(want.length);
      const got = await f.read(0, f.size);
      for (let k = 0; k < got.length; k++) {
        if (got[k] !== want[k] && got[k] !== 0) expect.fail(`${name} byte ${k} is ${got[k]}, neither its own byte ${want[k]} nor zero`);
      }
    }
    await vol.close();
  } finally {
    await dev.close();
  }
  return synced.length;
}
