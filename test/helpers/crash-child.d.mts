// Types of the schedule that test/helpers/crash-child.mjs shares with its test.
export interface ChildSealParams {
  hashAlgorithm: 'sha256' | 'sha512';
  blockSize: number;
  salt?: Uint8Array;
}
export function layoutFor(n: number): { size: number; runs: Array<{ pos: number; len: number }> };
export function contentFor(n: number): Uint8Array;
export function sealParams(n: number): ChildSealParams | undefined;
export function removeTarget(n: number): number | undefined;
