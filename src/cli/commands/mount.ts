/**
 * `iomap-verity mount IMG DIR [--read-only] [--cache=SIZE] [--allow-other]`:
 * serve an image through FUSE in the foreground until `fusermount -u DIR`,
 * SIGINT or SIGTERM, then commit and close the volume.
 *
 * "mounted IMG on DIR" goes to stdout once programs can use the mount, so
 * a script (or a test) can wait for that line.
 */
import { existsSync } from 'node:fs';
import { FileDevice, IomapVerityError, Volume, mountVolume } from '../../index.js';
import { engineFailure, UsageError, type Command } from '../command.js';
import { getoptLong } from '../getopt.js';
import { parseSize } from './image.js';

const USAGE = 'mount IMG DIR [--read-only] [--cache=SIZE] [--allow-other]';

export const mountCommand: Command = {
  name: 'mount',
  summary: 'serve an image as a filesystem through FUSE until unmounted',
  usage: `Usage:\n    iomap-verity ${USAGE}\n`,
  async run(args, io) {
    const parsed = getoptLong('mount', args, [
      { name: 'read-only', hasArg: false },
      { name: 'cache', hasArg: true },
      { name: 'allow-other', hasArg: false },
    ]);
    if (parsed.operands.length !== 2) throw new UsageError(`ERROR: mount takes 2 arguments, got ${parsed.operands.length}`);
    const [img, dir] = parsed.operands as [string, string];
    const has = (n: string) => parsed.options.some((o) => o.name === n);
    const cacheOpt = parsed.options.find((o) => o.name === 'cache');
    const cacheBytes = cacheOpt ? parseSize(cacheOpt.value!, 'cache size') : undefined;
    const readOnly = has('read-only');

    let dev: FileDevice | undefined;
    let vol: Volume | undefined;
    try {
      if (!existsSync(img)) throw new IomapVerityError('ENOENT', `image '${img}' does not exist (make one with 'iomap-verity mkfs')`);
      // Read-only: the image is opened O_RDONLY and shared with other readers (a 0444 image works).
      dev = await FileDevice.open(img, { blockSize: 512, readOnly });
      vol = await Volume.open(dev, cacheBytes === undefined ? { readOnly } : { cacheBytes, readOnly });
      const mount = await mountVolume(vol, dir, { readOnly, allowOther: has('allow-other') });
      const stop = () => {
        mount.unmount().catch(() => undefined);
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
      io.stdout.write(`mounted ${img} on ${mount.dir}${readOnly ? ' (read-only)' : ''}\n`);
      try {
        await mount.closed;
      } finally {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
      }
      await vol.close();
      vol = undefined;
      io.stdout.write(`unmounted ${mount.dir}\n`);
      // After an unmount from outside, the binding's wake-up handle for its
      // (finished) request thread can keep the event loop alive: leave soon
      // in any case, and at once when nothing else is pending.
      setTimeout(() => process.exit(process.exitCode ?? 0), 200).unref();
      return 0;
    } catch (e) {
      return engineFailure(e, io);
    } finally {
      if (vol) await vol.close().catch(() => undefined);
      if (dev) await dev.close().catch(() => undefined);
    }
  },
};
