// The per-block baselines of B1 and B2: the fs-verity digest of FILE
// (sha256, 4096-byte blocks, no salt) computed the plain way, every data
// block read and hashed with one library call per block, the tree built
// level by level in one pending block per level. Prints what
// `fsverity digest` prints.
//
//   node bench/baseline-digest.mjs --impl=node|hash-wasm FILE
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { createSHA256 } from 'hash-wasm';

const BS = 4096;
const DS = 32;
const IO = 4 << 20;

const impl = process.argv.find((a) => a.startsWith('--impl='))?.slice(7);
const file = process.argv.slice(2).find((a) => !a.startsWith('--'));
if (!file || (impl !== 'node' && impl !== 'hash-wasm')) {
  console.error('usage: node bench/baseline-digest.mjs --impl=node|hash-wasm FILE');
  process.exit(2);
}

let hash;
if (impl === 'node') {
  hash = (bytes) => createHash('sha256').update(bytes).digest();
} else {
  const h = await createSHA256();
  hash = (bytes) => {
    h.init();
    h.update(bytes);
    return h.digest('binary');
  };
}

const levels = [];
const level = (l) => (levels[l] ??= { buf: Buffer.alloc(BS), filled: 0, emitted: 0 });

function add(l, digest) {
  const lv = level(l);
  lv.buf.set(digest, lv.filled * DS);
  if (++lv.filled === BS / DS) flush(l);
}

function flush(l) {
  const lv = levels[l];
  lv.buf.fill(0, lv.filled * DS);
  const d = hash(lv.buf);
  lv.filled = 0;
  lv.emitted++;
  add(l + 1, d);
}

const fd = openSync(file, 'r');
const size = fstatSync(fd).size;
const buf = Buffer.alloc(IO);
let blocks = 0;
for (let pos = 0; pos < size; ) {
  const want = Math.min(IO, size - pos);
  let got = 0;
  while (got < want) {
    const n = readSync(fd, buf, got, want - got, pos + got);
    if (n === 0) throw new Error(`${file} shrank while being read`);
    got += n;
  }
  if (got % BS !== 0) buf.fill(0, got, got + BS - (got % BS));
  for (let off = 0; off < got; off += BS) {
    add(0, hash(buf.subarray(off, off + BS)));
    blocks++;
  }
  pos += got;
}
closeSync(fd);

let root = Buffer.alloc(DS);
if (blocks === 1) root = Buffer.from(levels[0].buf.subarray(0, DS));
else if (blocks > 1) {
  for (let l = 0; ; l++) {
    if (levels[l].filled > 0) flush(l);
    if (levels[l].emitted === 1) {
      root = Buffer.from(levels[l + 1].buf.subarray(0, DS));
      break;
    }
  }
}
// struct fsverity_descriptor: version, hash_algorithm, log_blocksize,
// salt_size, sig_size (le32), data_size (le64), root_hash[64], salt[32],
// reserved[144].
const desc = Buffer.alloc(256);
desc[0] = 1;
desc[1] = 1;
desc[2] = 12;
desc.writeBigUInt64LE(BigInt(size), 8);
root.copy(desc, 16);
console.log(`sha256:${Buffer.from(hash(desc)).toString('hex')} ${file}`);
