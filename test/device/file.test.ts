import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FileDevice } from '../../src/device/index.js';
import { deviceSuite, expectErrno, pattern } from '../helpers/device-suite.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iomap-verity-filedev-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
let n = 0;
const tmp = () => path.join(dir, `dev-${process.pid}-${n++}.img`);

deviceSuite('FileDevice', {
  make: (g) => FileDevice.open(tmp(), { ...g, create: true }),
  cleanup: async () => {
    for (const f of fs.readdirSync(dir)) fs.rmSync(path.join(dir, f), { force: true });
  },
});

describe('FileDevice specifics', () => {
  it('puts the bytes at the right offsets of the file on disk', async () => {
    const p = tmp();
    const d = await FileDevice.open(p, { blockSize: 512, size: 1 << 20, create: true });
    expect(fs.statSync(p).size).toBe(1 << 20);
    await d.write(512 * 7, pattern(1024, 1));
    await d.write((1 << 20) - 512, pattern(512, 2));
    await d.flush();
    const disk = fs.readFileSync(p);
    expect(disk.subarray(0, 512 * 7).every((b) => b === 0)).toBe(true);
    expect(disk.subarray(512 * 7, 512 * 9).equals(Buffer.from(pattern(1024, 1)))).toBe(true);
    expect(disk.subarray(512 * 9, (1 << 20) - 512).every((b) => b === 0)).toBe(true);
    expect(disk.subarray((1 << 20) - 512).equals(Buffer.from(pattern(512, 2)))).toBe(true);
    await d.discard(512 * 8, 512);
    expect(fs.readFileSync(p).subarray(512 * 8, 512 * 9).every((b) => b === 0)).toBe(true);
    expect(fs.readFileSync(p).subarray(512 * 7, 512 * 8).equals(Buffer.from(pattern(1024, 1).subarray(0, 512)))).toBe(true);
    await d.close();
  });

  it('creates a 1 TiB sparse device and writes its last block without using 1 TiB of disk', async () => {
    const p = tmp();
    const size = 2 ** 40;
    const d = await FileDevice.open(p, { blockSize: 4096, size, create: true });
    await d.write(size - 4096, pattern(4096, 9));
    await d.flush();
    const back = new Uint8Array(4096);
    await d.read(size - 4096, back);
    expect(Buffer.from(back).equals(Buffer.from(pattern(4096, 9)))).toBe(true);
    const st = fs.statSync(p);
    expect(st.size).toBe(size);
    expect(st.blocks * 512).toBeLessThan(16 << 20);
    await d.close();
    fs.rmSync(p);
  });

  it('reopens an existing file, taking its size, and keeps what was written', async () => {
    const p = tmp();
    const a = await FileDevice.open(p, { blockSize: 4096, size: 1 << 20, create: true });
    await a.write(8192, pattern(4096, 3));
    await a.flush();
    await a.close();
    const b = await FileDevice.open(p, { blockSize: 4096 });
    expect(b.size).toBe(1 << 20);
    expect(b.path).toBe(p);
    const buf = new Uint8Array(4096);
    await b.read(8192, buf);
    expect(Buffer.from(buf).equals(Buffer.from(pattern(4096, 3)))).toBe(true);
    await b.close();
    // A larger size grows it sparsely, keeping the contents.
    const c = await FileDevice.open(p, { blockSize: 4096, size: 2 << 20 });
    expect(c.size).toBe(2 << 20);
    await c.read(8192, buf);
    expect(Buffer.from(buf).equals(Buffer.from(pattern(4096, 3)))).toBe(true);
    await c.close();
    expect(fs.statSync(p).size).toBe(2 << 20);
  });

  it('refuses missing files, odd sizes and shrinking with clear codes', async () => {
    const missing = path.join(dir, 'no-such.img');
    await expectErrno(FileDevice.open(missing), 'ENOENT');
    await expectErrno(FileDevice.open(missing, { size: 4096, create: false }), 'ENOENT');
    await expectErrno(FileDevice.open(missing, { create: true }), 'EINVAL');
    expect(fs.existsSync(missing)).toBe(false);
    const odd = tmp();
    fs.writeFileSync(odd, new Uint8Array(4096 + 512));
    await expectErrno(FileDevice.open(odd, { blockSize: 4096 }), 'EINVAL');
    const ok = await FileDevice.open(odd, { blockSize: 512 });
    expect(ok.size).toBe(4608);
    await ok.close();
    await expectErrno(FileDevice.open(odd, { blockSize: 512, size: 4096 }), 'EINVAL');
    expect(fs.statSync(odd).size).toBe(4608);
    const empty = tmp();
    fs.writeFileSync(empty, new Uint8Array(0));
    await expectErrno(FileDevice.open(empty), 'EINVAL');
    await expectErrno(FileDevice.open(tmp(), { blockSize: 3000, size: 6000, create: true }), 'EINVAL');
    await expectErrno(FileDevice.open(dir), 'EISDIR');
  });

  it('reports a file cut short behind its back as EIO', async () => {
    const p = tmp();
    const d = await FileDevice.open(p, { blockSize: 4096, size: 65536, create: true });
    fs.truncateSync(p, 8192);
    await expectErrno(d.read(16384, new Uint8Array(4096)), 'EIO');
    await d.close();
  });
});
