// Byte builders shared by the fuzzing harness and the reader tests: NRRD files, hand-made safetensors files, and
// gzip streams that inflate far beyond their size (gzip bombs), written without holding the inflated bytes.
import zlib from 'node:zlib';

const NRRD_SETTERS = {
  uchar: [1, 'setUint8'], 'signed char': [1, 'setInt8'], short: [2, 'setInt16'], ushort: [2, 'setUint16'],
  int: [4, 'setInt32'], uint: [4, 'setUint32'], float: [4, 'setFloat32'], double: [8, 'setFloat64'],
};

/**
 * NRRD bytes: `fields` in header order ({ type, dimension, sizes, encoding, ... } as strings), `values` in file order
 * (first axis fastest); `lines` are extra header lines written as given (key:=value pairs, misspellings).
 */
export function nrrdBytes(fields, values, { magic = 'NRRD0004', lines = [], data } = {}) {
  let payload = data;
  if (!payload) {
    if (fields.encoding === 'ascii') payload = Buffer.from(values.join(' ') + '\n');
    else {
      const [size, setter] = NRRD_SETTERS[fields.type];
      const little = (fields.endian ?? 'little') === 'little';
      const dv = new DataView(new ArrayBuffer(values.length * size));
      values.forEach((v, i) => (size === 1 ? dv[setter](i, v) : dv[setter](i * size, v, little)));
      payload = new Uint8Array(dv.buffer);
      if (fields.encoding === 'gzip') payload = zlib.gzipSync(payload);
    }
  }
  const head = [magic, ...Object.entries(fields).map(([k, v]) => `${k}: ${v}`), ...lines, ''].join('\n') + '\n';
  return new Uint8Array(Buffer.concat([Buffer.from(head, 'latin1'), Buffer.from(payload)]));
}

/** A safetensors file from a header object (JSON as given, padded to 8 bytes) and the data bytes. */
export function safetensorsBytes(header, data = new Uint8Array(0)) {
  let json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  if (json.length % 8) json = Buffer.concat([json, Buffer.alloc(8 - (json.length % 8), 0x20)]);
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

/**
 * gzip of `prefix` followed by `zeroBytes` zero bytes, streamed through zlib so the zeros never exist in memory:
 * level 1 inflates ~230:1, level 9 ~1000:1 (slower to build).
 */
export async function gzipBomb(prefix, zeroBytes, level = 1) {
  const gz = zlib.createGzip({ level });
  const chunks = [];
  gz.on('data', (c) => chunks.push(c));
  const done = new Promise((resolve, reject) => {
    gz.on('end', resolve);
    gz.on('error', reject);
  });
  const write = async (buf) => {
    if (!gz.write(buf)) await new Promise((r) => gz.once('drain', r));
  };
  await write(Buffer.from(prefix));
  const zero = Buffer.alloc(1 << 20);
  for (let left = zeroBytes; left > 0; left -= zero.length) await write(left >= zero.length ? zero : zero.subarray(0, left));
  gz.end();
  await done;
  return new Uint8Array(Buffer.concat(chunks));
}
