/**
 * File.stream(): the bytes of a file as a web ReadableStream; on a sealed
 * file a damaged block errors the stream and nothing of its chunk is
 * enqueued, while the chunks before it are the true bytes.
 */
import { describe, expect, it } from 'vitest';
import { MemoryDevice, Volume, isErrno, toNodeReadable } from '../../src/index.js';
import { fillRandom } from '../fixtures/generate.mjs';

async function collect(s: ReadableStream<Uint8Array>): Promise<{ bytes: Buffer; error: unknown }> {
  const parts: Uint8Array[] = [];
  try {
    for await (const c of s as unknown as AsyncIterable<Uint8Array>) parts.push(c);
    return { bytes: Buffer.concat(parts), error: undefined };
  } catch (e) {
    return { bytes: Buffer.concat(parts), error: e };
  }
}

describe('File.stream', () => {
  it('streams ranges of plain and sealed files; a damaged sealed block stops the stream before its chunk', async () => {
    const dev = new MemoryDevice({ blockSize: 4096, size: 16 << 20 });
    const vol = await Volume.format(dev, { maxFolioSize: 4096, cacheBytes: 1 << 20 });
    const f = await vol.create('x');
    const data = fillRandom(new Uint8Array(300_001), 3);
    await f.write(0, data);
    expect((await collect(f.stream({ start: 5, end: 200_000, chunkSize: 8192 }))).bytes.equals(Buffer.from(data.subarray(5, 200_000)))).toBe(true);
    await f.enableVerity();
    const whole = await collect(f.stream());
    expect(whole.error).toBeUndefined();
    expect(whole.bytes.equals(Buffer.from(data))).toBe(true);
    const nodeParts: Buffer[] = [];
    for await (const c of await toNodeReadable(f.stream({ start: 300_000 }))) nodeParts.push(c as Buffer);
    expect(Buffer.concat(nodeParts).equals(Buffer.from(data.subarray(300_000)))).toBe(true);
    await vol.dropCaches();
    const img = new Uint8Array(16 << 20);
    await dev.read(0, img);
    const at = Buffer.from(img).indexOf(Buffer.from(data.subarray(20 * 4096, 20 * 4096 + 64)));
    img[at + 7]! ^= 1;
    await dev.write(at, img.subarray(at, at + 4096));
    const got = await collect(f.stream({ chunkSize: 4096 }));
    expect(isErrno(got.error, 'EIO')).toBe(true);
    expect((got.error as Error).message).toMatch(/data block 20 /);
    expect(got.bytes.length).toBe(20 * 4096);
    expect(got.bytes.equals(Buffer.from(data.subarray(0, 20 * 4096)))).toBe(true);
    await vol.close();
  });
});
