/**
 * The native FUSE binding (`fuse-native`, over Debian's libfuse2), loaded
 * only when something mounts: it is an optional dependency, so the library
 * installs and runs without it, and nothing here is touched by a browser
 * bundle (`node:module` stays external and the binding is required by a
 * name the bundler never sees).
 */
import { IomapVerityError } from '../index.js';
import { nodeModule } from '#platform';

/** A FUSE reply callback: an errno (0 or negative) or a count, then values. */
export type Reply = (code: number, ...values: unknown[]) => void;

/** The part of fuse-native's `Fuse` class that mounting uses. */
export interface FuseInstance {
  mount(cb: (err: Error | null) => void): void;
  unmount(cb: (err: Error | null) => void): void;
}

export interface FuseClass {
  new (dir: string, ops: Record<string, (...args: never[]) => void>, opts: Record<string, unknown>): FuseInstance;
  readonly [errno: string]: unknown;
}

const BINDING = 'fuse-native';
let loaded: Promise<FuseClass> | undefined;

/**
 * The binding's `Fuse` class. EOPNOTSUPP with what to install when the
 * package or libfuse2 is missing, or on a platform without FUSE.
 */
export function loadFuse(): Promise<FuseClass> {
  loaded ??= (async () => {
    if (typeof process === 'undefined' || process.platform !== 'linux') {
      throw new IomapVerityError('EOPNOTSUPP', 'mounting needs FUSE on Linux (libfuse2 and the fuse-native package)');
    }
    const { createRequire } = await nodeModule();
    const require = createRequire(import.meta.url);
    try {
      return require(BINDING) as FuseClass;
    } catch (e) {
      throw new IomapVerityError(
        'EOPNOTSUPP',
        `the FUSE binding could not be loaded (${(e as Error).message.split('\n')[0]}): install libfuse2 and fuse (apt-get install libfuse2 fuse) and the optional dependency (npm install fuse-native)`,
        { cause: e },
      );
    }
  })();
  loaded.catch(() => {
    loaded = undefined;
  });
  return loaded;
}
