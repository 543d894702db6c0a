/**
 * Block devices: the `BlockDevice` contract (one validating front, backends
 * behind it) and its implementations. `FileDevice` needs Node; the rest run
 * anywhere.
 */
export { BlockDevice, MIN_BLOCK_SIZE, MAX_BLOCK_SIZE, isValidBlockSize, checkGeometry } from './block-device.js';
export type { DeviceOp, DeviceStats } from './block-device.js';
export { MemoryDevice } from './memory-device.js';
export type { MemoryDeviceOptions } from './memory-device.js';
export { FileDevice } from './file-device.js';
export type { FileDeviceOptions } from './file-device.js';
export { FaultyDevice } from './faulty-device.js';
export type { CrashKeep, FaultHandle, FaultRule, FaultyDeviceOptions, OpRecord, PendingWrite } from './faulty-device.js';
