/**
 * One Volume per device at a time, as a mounted block device is busy
 * (the kernel's exclusive open of a block device for its filesystem). The
 * claims live here, in the filesystem, not on the device: the device layer
 * only counts its lives (`BlockDevice.generation`), and a claim made in an
 * earlier life is void, since whoever held the device then died with it
 * (a FaultyDevice after `crash()`).
 */
import { fail } from '../errors.js';
import type { BlockDevice } from '../device/block-device.js';

interface Claim {
  owner: object;
  generation: number;
}

const claims = new WeakMap<BlockDevice, Claim>();

function current(device: BlockDevice): Claim | undefined {
  const c = claims.get(device);
  return c !== undefined && c.generation === device.generation ? c : undefined;
}

/**
 * Claim `device` for a volume being made and return the claim's owner
 * token; EBUSY when another Volume of this process holds it. With `owner`
 * and `token`, hand a claim taken with `token` over to `owner`.
 */
export function claimDevice(device: BlockDevice, owner?: object, token?: object): object {
  const c = current(device);
  if (owner !== undefined) {
    if (c !== undefined && c.owner === token) c.owner = owner;
    return owner;
  }
  if (c !== undefined) throw fail('EBUSY', 'the device is already open in another Volume: close that one first');
  const t = {};
  claims.set(device, { owner: t, generation: device.generation });
  return t;
}

/** Give `device` back if `owner` holds it (after a failed open, or on close). */
export function releaseDevice(device: BlockDevice, owner: object): void {
  if (current(device)?.owner === owner) claims.delete(device);
}
