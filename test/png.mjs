// PNG decoding for the Node tests (node:zlib, so not in helpers.mjs, which the browser suite bundles too).
import zlib from 'node:zlib';
import * as assert from 'uvu/assert';

/** Splits a PNG into chunks, checking the signature and every CRC with node:zlib. */
export function decodePng(bytes) {
  const b = Buffer.from(bytes);
  assert.equal([...b.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const chunks = [];
  for (let at = 8; at < b.length; ) {
    const len = b.readUInt32BE(at);
    const type = b.toString('latin1', at + 4, at + 8);
    const data = b.subarray(at + 8, at + 8 + len);
    assert.is(b.readUInt32BE(at + 8 + len), zlib.crc32(b.subarray(at + 4, at + 8 + len)), `CRC of ${type}`);
    chunks.push({ type, data });
    at += 12 + len;
  }
  assert.equal(chunks.map((c) => c.type), ['IHDR', 'IDAT', 'IEND']);
  const ih = chunks[0].data;
  const W = ih.readUInt32BE(0);
  const H = ih.readUInt32BE(4);
  const channels = ih[9] === 2 ? 3 : ih[9] === 0 ? 1 : NaN;
  assert.is(ih[8], 8, 'bit depth');
  const raw = zlib.inflateSync(chunks[1].data);
  assert.is(raw.length, H * (1 + W * channels));
  const pixels = [];
  for (let y = 0; y < H; y++) {
    assert.is(raw[y * (1 + W * channels)], 0, 'filter type None');
    pixels.push([...raw.subarray(y * (1 + W * channels) + 1, (y + 1) * (1 + W * channels))]);
  }
  return { W, H, channels, pixels };
}
