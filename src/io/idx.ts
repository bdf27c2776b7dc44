/**
 * vg.io.readIdx: the IDX format of MNIST and Fashion-MNIST (plain or gzip-compressed). A file is a 4-byte magic
 * (two zero bytes, a type code, the number of dims), one big-endian u32 per dim, then the elements in big-endian
 * row-major order. The result stays on the host: a 60 000 × 28 × 28 u8 image file is 47 MB as bytes and four times
 * that as an f32 tensor, so callers pick and convert the part they need.
 */
import { fail } from '../engine/errors.js';
import { decodeElements, type ElementArrayType } from './binary.js';
import { GunzipReader, isGzip, readBytes } from './files.js';

export type IdxDtype = 'uint8' | 'int8' | 'int16' | 'int32' | 'float32' | 'float64';

export interface IdxArray {
  /** The dims as the file lists them (images: [count, rows, cols]; labels: [count]). */
  shape: number[];
  dtype: IdxDtype;
  /** The elements in the platform's byte order, row-major. */
  data: Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;
}

const TYPES: Record<number, { dtype: IdxDtype; bytes: number; ctor: ElementArrayType }> = {
  0x08: { dtype: 'uint8', bytes: 1, ctor: Uint8Array },
  0x09: { dtype: 'int8', bytes: 1, ctor: Int8Array },
  0x0b: { dtype: 'int16', bytes: 2, ctor: Int16Array },
  0x0c: { dtype: 'int32', bytes: 4, ctor: Int32Array },
  0x0d: { dtype: 'float32', bytes: 4, ctor: Float32Array },
  0x0e: { dtype: 'float64', bytes: 8, ctor: Float64Array },
};

interface IdxHeader {
  type: (typeof TYPES)[number];
  shape: number[];
  headerBytes: number;
  dataBytes: number;
}

const OP = 'readIdx';

/** Parses the magic and dims from the first bytes (`bytes` holds at least the 4-byte magic). */
function parseMagic(name: string, bytes: Uint8Array): { code: number; ndim: number } {
  if (bytes.length < 4) fail(OP, `${name} is ${bytes.length} bytes long, shorter than the 4-byte IDX magic number`);
  if (bytes[0] !== 0 || bytes[1] !== 0)
    fail(OP, `${name} is not an IDX file: its magic number must start with two zero bytes, got 0x${hex(bytes[0])} 0x${hex(bytes[1])}`);
  const code = bytes[2];
  if (!(code in TYPES))
    fail(OP, `${name} has IDX type code 0x${hex(code)}; expected one of ${Object.keys(TYPES).map((c) => `0x${hex(Number(c))}`).join(', ')} (u8, i8, i16, i32, f32, f64)`);
  const ndim = bytes[3];
  if (ndim === 0) fail(OP, `${name} declares 0 dims; an IDX file needs at least one`);
  return { code, ndim };
}

const hex = (b: number) => b.toString(16).padStart(2, '0');

function parseHeader(name: string, bytes: Uint8Array): IdxHeader {
  const { code, ndim } = parseMagic(name, bytes);
  const headerBytes = 4 + 4 * ndim;
  if (bytes.length < headerBytes) fail(OP, `${name} declares ${ndim} dims, which needs a ${headerBytes}-byte header, but has only ${bytes.length} bytes`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, headerBytes);
  const shape = Array.from({ length: ndim }, (_, i) => view.getUint32(4 + 4 * i, false));
  const type = TYPES[code];
  const count = shape.reduce((a, b) => a * b, 1);
  const dataBytes = count * type.bytes;
  if (!Number.isSafeInteger(dataBytes) || dataBytes > 2 ** 31)
    fail(OP, `${name} declares dims [${shape.join(', ')}] of ${type.dtype}: ${dataBytes} bytes, more than the 2 GiB this reader holds in one array`);
  return { type, shape, headerBytes, dataBytes };
}

/**
 * Reads an IDX file (a path in Node, a URL, or its bytes; gzip-compressed when the bytes say so, whatever the name).
 * The data must be exactly what the dims imply: a short file or trailing bytes are errors naming both sizes.
 */
export async function readIdx(source: string | URL | Uint8Array | ArrayBuffer): Promise<IdxArray> {
  const name = typeof source === 'string' ? source : source instanceof URL ? source.href : 'the IDX bytes';
  const raw = await readBytes(OP, source);
  let header: IdxHeader;
  let payload: Uint8Array;
  if (isGzip(raw)) {
    const stream = new GunzipReader(OP, name, raw);
    try {
      const magic = await stream.take(4);
      const { ndim } = parseMagic(name, magic);
      const dims = await stream.take(4 * ndim);
      const head = new Uint8Array(4 + dims.length);
      head.set(magic);
      head.set(dims, 4);
      header = parseHeader(name, head);
      payload = await stream.take(header.dataBytes);
      if (payload.length < header.dataBytes) truncated(name, header, payload.length);
      await stream.finish(header.dataBytes, `the dims [${header.shape.join(', ')}] imply ${header.headerBytes + header.dataBytes} bytes`);
    } catch (e) {
      stream.cancel();
      throw e;
    }
  } else {
    header = parseHeader(name, raw);
    const have = raw.length - header.headerBytes;
    if (have < header.dataBytes) truncated(name, header, have);
    if (have > header.dataBytes)
      fail(OP, `${name} has ${have - header.dataBytes} bytes after the ${header.dataBytes} data bytes its dims [${header.shape.join(', ')}] imply (not an IDX file, or a wrong header)`);
    payload = raw.subarray(header.headerBytes);
  }
  const count = header.shape.reduce((a, b) => a * b, 1);
  const data = decodeElements(payload, 0, count, header.type.bytes, header.type.ctor, false) as IdxArray['data'];
  return { shape: header.shape, dtype: header.type.dtype, data };
}

function truncated(name: string, h: IdxHeader, have: number): never {
  return fail(OP, `${name} is truncated: its dims [${h.shape.join(', ')}] of ${h.type.dtype} need ${h.dataBytes} data bytes after the ${h.headerBytes}-byte header, found ${have}`);
}
