// vg.io.readIdx: IDX files the test writes byte by byte from the format's definition (big-endian dims and elements,
// every type code), plain and gzip-compressed (by path and as bytes), and every error path: bad magic, unknown type
// code, zero dims, short header, truncated data, trailing bytes, a gzip stream longer than its header implies.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { setup, vg } from './helpers.mjs';
import { rejectsWith } from './io-helpers.mjs';

test.before(setup);

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-idx-'));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));

// type code → [bytes per element, DataView setter]
const TYPES = {
  uint8: [0x08, 1, 'setUint8'],
  int8: [0x09, 1, 'setInt8'],
  int16: [0x0b, 2, 'setInt16'],
  int32: [0x0c, 4, 'setInt32'],
  float32: [0x0d, 4, 'setFloat32'],
  float64: [0x0e, 8, 'setFloat64'],
};

/** An IDX file: magic, big-endian u32 dims, big-endian elements (written independently of the reader). */
function idxBytes(dtype, shape, values) {
  const [code, size, setter] = TYPES[dtype];
  const buf = new ArrayBuffer(4 + 4 * shape.length + values.length * size);
  const v = new DataView(buf);
  v.setUint8(2, code);
  v.setUint8(3, shape.length);
  shape.forEach((d, i) => v.setUint32(4 + 4 * i, d, false));
  const at = 4 + 4 * shape.length;
  values.forEach((x, i) => v[setter](at + i * size, x, false));
  return new Uint8Array(buf);
}

const samples = {
  uint8: [0, 1, 127, 128, 200, 255],
  int8: [-128, -1, 0, 1, 100, 127],
  int16: [-32768, -300, 0, 258, 1000, 32767],
  int32: [-2147483648, -70000, 0, 65536 + 3, 123456789, 2147483647],
  float32: [-1.5, 0, 0.1, 3.25e10, -7e-20, 1],
  float64: [Math.PI, -0.1, 0, 1e300, -5e-310, 2],
};

for (const [dtype, values] of Object.entries(samples)) {
  test(`readIdx reads ${dtype} elements in big-endian order, plain and gzip`, async () => {
    const bytes = idxBytes(dtype, [2, 3], values);
    const want = dtype === 'float32' ? values.map(Math.fround) : values;
    for (const [label, src] of [
      ['bytes', bytes],
      ['gzip bytes', new Uint8Array(zlib.gzipSync(bytes))],
      ['ArrayBuffer', bytes.slice().buffer],
    ]) {
      const r = await vg.io.readIdx(src);
      assert.is(r.dtype, dtype, label);
      assert.equal(r.shape, [2, 3], label);
      assert.equal(Array.from(r.data), want, `${label} values`);
    }
  });
}

test('readIdx reads MNIST-layout image and label files from paths (.gz and plain)', async () => {
  // 3 images of 4 × 5: pixel (n, r, c) = (37 n + 5 r + c) mod 256, so a swapped axis shows
  const images = Array.from({ length: 3 * 4 * 5 }, (_, i) => {
    const n = Math.floor(i / 20);
    const r = Math.floor((i % 20) / 5);
    const c = i % 5;
    return (37 * n + 5 * r + c) % 256;
  });
  const imgPath = path.join(tmp, 'images-idx3-ubyte.gz');
  const lblPath = path.join(tmp, 'labels-idx1-ubyte');
  fs.writeFileSync(imgPath, zlib.gzipSync(idxBytes('uint8', [3, 4, 5], images)));
  fs.writeFileSync(lblPath, idxBytes('uint8', [3], [9, 0, 4]));
  const img = await vg.io.readIdx(imgPath);
  assert.equal(img.shape, [3, 4, 5]);
  assert.instance(img.data, Uint8Array);
  assert.is(img.data[2 * 20 + 3 * 5 + 4], (74 + 15 + 4) % 256);
  assert.equal(Array.from(img.data), images);
  const lbl = await vg.io.readIdx(lblPath);
  assert.equal([lbl.shape, Array.from(lbl.data)], [[3], [9, 0, 4]]);
});

test('readIdx: a dim of size 0 gives an empty array', async () => {
  const r = await vg.io.readIdx(idxBytes('float32', [0, 7], []));
  assert.equal([r.shape, r.data.length], [[0, 7], 0]);
});

test('readIdx rejects malformed files with errors naming the file and the problem', async () => {
  const good = idxBytes('uint8', [2, 2], [1, 2, 3, 4]);
  const bad = (edit) => {
    const b = good.slice();
    edit(b);
    return b;
  };
  await rejectsWith(vg.io.readIdx(good.subarray(0, 3)), ['readIdx', 'shorter than the 4-byte IDX magic']);
  await rejectsWith(vg.io.readIdx(bad((b) => (b[0] = 1))), ['readIdx', 'not an IDX file', '0x01 0x00']);
  await rejectsWith(vg.io.readIdx(bad((b) => (b[2] = 0x0a))), ['readIdx', 'type code 0x0a', '0x08']);
  await rejectsWith(vg.io.readIdx(bad((b) => (b[3] = 0))), ['readIdx', '0 dims']);
  await rejectsWith(vg.io.readIdx(good.subarray(0, 9)), ['readIdx', '12-byte header', 'only 9 bytes']);
  await rejectsWith(vg.io.readIdx(good.subarray(0, 14)), ['readIdx', 'truncated', 'need 4 data bytes', 'found 2']);
  const long = new Uint8Array([...good, 5, 6]);
  await rejectsWith(vg.io.readIdx(long), ['readIdx', '2 bytes after the 4 data bytes']);
  await rejectsWith(vg.io.readIdx(new Uint8Array(zlib.gzipSync(good.subarray(0, 14)))), ['readIdx', 'truncated', 'found 2']);
  // a gzip stream that inflates far beyond its header (a small header in front of 3 MiB of zeros)
  const bomb = new Uint8Array(zlib.gzipSync(new Uint8Array([...good, ...new Uint8Array(3 << 20)])));
  await rejectsWith(vg.io.readIdx(bomb), ['readIdx', 'decompresses to more than', 'gzip bomb']);
  await rejectsWith(vg.io.readIdx(new Uint8Array([0x1f, 0x8b, 8, 0, 1, 2, 3])), ['readIdx', 'does not decompress']);
  await rejectsWith(vg.io.readIdx(path.join(tmp, 'missing-idx1-ubyte')), ['readIdx', 'cannot read', 'missing-idx1-ubyte']);
  await rejectsWith(vg.io.readIdx(42), ['readIdx', 'source must be a path']);
});

test('readIdx reads Debian dataset-fashion-mnist (installed by scripts/setup.sh)', async () => {
  const dir = '/usr/share/datasets/fashion-mnist';
  const labels = await vg.io.readIdx(path.join(dir, 't10k-labels-idx1-ubyte.gz'));
  assert.equal([labels.shape, labels.dtype], [[10000], 'uint8']);
  const counts = new Array(10).fill(0);
  for (const y of labels.data) counts[y]++;
  // the test split is balanced: 1000 of each class
  assert.equal(counts, new Array(10).fill(1000));
  const images = await vg.io.readIdx(path.join(dir, 't10k-images-idx3-ubyte.gz'));
  assert.equal(images.shape, [10000, 28, 28]);
  // images are dark backgrounds: the corner pixel is 0 in nearly all of them
  let corner = 0;
  for (let i = 0; i < 10000; i++) corner += images.data[i * 784] === 0 ? 1 : 0;
  assert.ok(corner > 9900, `corner pixel 0 in ${corner} of 10000`);
});

test.run();
