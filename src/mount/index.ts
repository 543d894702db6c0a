/**
 * The FUSE front of a `Volume`: `mountVolume` serves it to every program
 * on the machine. Needs Linux, /dev/fuse, libfuse2 and the optional
 * `fuse-native` package, all loaded only when mounting.
 */
export { mountVolume, DIGEST_XATTR } from './mount.js';
export type { Mount, MountOptions } from './mount.js';
