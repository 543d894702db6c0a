/**
 * Building and writing a file's verity metadata (the library half of the
 * kernel's fs/verity/enable.c): the Merkle tree through a streaming builder,
 * blocks that are an all-zero subtree's digest repeated left unwritten, then
 * the descriptor and its size field (see layout.ts). The filesystem does the
 * rest: exclusion, flushing data first, writeback, and persisting the flag
 * only after all of this is durable.
 */
import { DESCRIPTOR_SIZE, encodeDescriptor } from './descriptor.js';
import { computeMerkleTreeParams, type VerityParams } from './params.js';
import { MerkleTreeBuilder } from './tree.js';
import { verityLayout, type VerityLayout } from './layout.js';
import type { VerityOps } from './verity-ops.js';

/** What `buildVerityMetadata` wrote: the descriptor, the root hash and where things went. */
export interface BuiltVerityMetadata {
  /** The descriptor as hashed for the file digest (256 bytes, `sig_size` zero). */
  readonly descriptor: Uint8Array;
  readonly rootHash: Uint8Array;
  readonly layout: VerityLayout;
  /** Tree blocks written, and left as holes because they held only zero-subtree digests. */
  readonly blocksWritten: number;
  readonly blocksElided: number;
}

/**
 * Build the tree of `dataSize` bytes that `feed` pushes into the builder
 * (data in order; holes as `addZeroBlocks`), writing tree blocks,
 * descriptor (followed by `signature`, its size in `sig_size`, when one
 * is given) and size field through `ops`.
 */
export async function buildVerityMetadata(
  params: VerityParams,
  dataSize: number,
  fsBlockSize: number,
  ops: VerityOps,
  feed: (builder: MerkleTreeBuilder) => Promise<void>,
  signature: Uint8Array = new Uint8Array(0),
): Promise<BuiltVerityMetadata> {
  const layout = verityLayout(computeMerkleTreeParams(params, dataSize).treeSize, fsBlockSize, signature.length);
  const shape = computeMerkleTreeParams(params, dataSize);
  let blocksWritten = 0;
  let blocksElided = 0;
  const builder = await MerkleTreeBuilder.create(params, {
    sink: async (level, index, block, zeroHashes) => {
      if (zeroHashes) {
        blocksElided++;
        return;
      }
      blocksWritten++;
      await ops.writeMetadata((shape.levelStart[level]! + index) * params.blockSize, block.slice());
    },
  });
  let rootHash: Uint8Array;
  try {
    await feed(builder);
    rootHash = (await builder.finish()).rootHash;
  } finally {
    builder.dispose();
  }
  const descriptor = encodeDescriptor(params, dataSize, rootHash);
  const stored = new Uint8Array(DESCRIPTOR_SIZE + signature.length);
  stored.set(descriptor);
  stored.set(signature, DESCRIPTOR_SIZE);
  new DataView(stored.buffer).setUint32(4, signature.length, true); // sig_size
  await ops.writeMetadata(layout.descOffset, stored);
  const size = new Uint8Array(4);
  new DataView(size.buffer).setUint32(0, layout.descSize, false);
  await ops.writeMetadata(layout.sizeOffset, size);
  return { descriptor, rootHash, layout, blocksWritten, blocksElided };
}
