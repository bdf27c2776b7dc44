/**
 * safetensors (https://github.com/huggingface/safetensors): the weight format PyTorch users exchange.
 * Layout: u64 little-endian N; N bytes of UTF-8 JSON { name: { dtype, shape, data_offsets: [begin, end] }, ...,
 * "__metadata__": { string: string } }, padded with spaces so the data starts 8-byte aligned; then the data bytes,
 * little-endian and row-major, offsets relative to the start of the data, covering it without holes or overlaps.
 * voxgrad tensors are f32/i32/u32: other dtypes are converted on read (exactly where possible, with an error naming
 * the tensor where a value cannot be represented).
 */
import { fail, fmtShape } from '../engine/errors.js';
import { Tensor, shapeSize, type DType, type TypedArray } from '../engine/tensor.js';
import { MAX_RANK } from '../engine/shape.js';
import { tensor as makeTensor } from '../kernels/creation.js';
import { describe } from '../kernels/common.js';
import { files, readBytes, sourceName, type ByteSource } from './files.js';
import { ownProperty } from './records.js';

/** Bytes per element of each safetensors dtype (the F8 and U64 kinds are recognised so the error can name them). */
const DTYPE_BYTES: Record<string, number> = {
  BOOL: 1, U8: 1, I8: 1, F8_E5M2: 1, F8_E4M3: 1, I16: 2, U16: 2, F16: 2, BF16: 2, I32: 4, U32: 4, F32: 4, F64: 8, I64: 8, U64: 8,
};
/** The Rust writer's dtype order (its enum order): tensors are laid out by descending dtype, then by name. */
const DTYPE_ORDER = ['BOOL', 'U8', 'I8', 'F8_E5M2', 'F8_E4M3', 'I16', 'U16', 'F16', 'BF16', 'I32', 'U32', 'F32', 'F64', 'I64', 'U64'];
const WRITE_DTYPE: Record<DType, string> = { f32: 'F32', i32: 'I32', u32: 'U32' };
/** The reference implementation refuses headers above 100 MB; a larger length means a corrupt or foreign file. */
const MAX_HEADER = 100_000_000;

export type SafetensorsSource = ByteSource;

export interface SafetensorsContents {
  tensors: Record<string, Tensor>;
  /** The `__metadata__` map (string → string); {} when absent. */
  metadata: Record<string, string>;
}

interface Entry {
  name: string;
  dtype: string;
  shape: number[];
  begin: number;
  end: number;
}

/** Parses and validates the header: every error names the file (`file`) and the part of it that is wrong. */
function parseHeader(op: string, file: string, bytes: Uint8Array): { entries: Entry[]; metadata: Record<string, string>; dataStart: number } {
  if (bytes.length < 8)
    fail(op, `${file} is truncated: ${bytes.length} bytes, but a safetensors file starts with an 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(view.getBigUint64(0, true));
  if (n > MAX_HEADER) fail(op, `${file}: header length ${n} is implausible (over ${MAX_HEADER} bytes): not a safetensors file, or corrupt`);
  if (8 + n > bytes.length)
    fail(op, `${file} is truncated: the header claims ${n} bytes but only ${bytes.length - 8} follow the length field`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    fail(op, `${file}: header is not valid UTF-8 JSON (${(e as Error).message}): the file is corrupt or not safetensors`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header))
    fail(op, `${file}: header must be a JSON object of tensors, got ${describe(header)}`);
  const dataLength = bytes.length - 8 - n;
  // metadata keys and tensor names are any strings ('__proto__' included): set as own properties, never as prototypes
  const metadata: Record<string, string> = {};
  const entries: Entry[] = [];
  for (const [name, info] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (info === null) continue; // null is no metadata, as the reference reader (an Option) reads it
      if (typeof info !== 'object' || Array.isArray(info)) fail(op, `${file}: __metadata__ must be an object of strings, got ${describe(info)}`);
      for (const [k, v] of Object.entries(info as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(op, `${file}: __metadata__['${k}'] must be a string, got ${describe(v)}`);
        ownProperty(metadata, k, v);
      }
      continue;
    }
    const { dtype, shape, data_offsets: offsets } = (info ?? {}) as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const where = `tensor '${name}'`;
    if (typeof dtype !== 'string' || !Object.hasOwn(DTYPE_BYTES, dtype))
      fail(op, `${file}: ${where} has dtype ${JSON.stringify(dtype) ?? 'undefined'}; expected one of ${Object.keys(DTYPE_BYTES).join(', ')}`);
    if (!Array.isArray(shape) || shape.some((d) => !Number.isSafeInteger(d) || d < 0))
      fail(op, `${file}: ${where} has shape ${JSON.stringify(shape)}; expected a list of non-negative integers`);
    if (shape.length > MAX_RANK) fail(op, `${file}: ${where} has rank ${shape.length} (shape ${fmtShape(shape)}); voxgrad tensors have at most ${MAX_RANK} dims`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || offsets.some((o) => !Number.isSafeInteger(o) || o < 0) || offsets[0] > offsets[1])
      fail(op, `${file}: ${where} has data_offsets ${JSON.stringify(offsets)}; expected [begin, end] with 0 <= begin <= end`);
    const [begin, end] = offsets as number[];
    const expected = shapeSize(shape) * DTYPE_BYTES[dtype];
    if (end - begin !== expected)
      fail(op, `${file}: ${where} (${dtype} ${fmtShape(shape)}) needs ${expected} bytes but data_offsets [${begin}, ${end}] span ${end - begin}`);
    if (end > dataLength)
      fail(op, `${file}: ${where} has data_offsets [${begin}, ${end}] outside the ${dataLength} data bytes: the file is truncated or corrupt`);
    entries.push({ name, dtype, shape, begin, end });
  }
  // the format requires the tensors to tile the data exactly (no holes, no overlaps), as the reference reader checks
  let cursor = 0;
  for (const e of [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end)) {
    if (e.begin !== cursor)
      fail(op, `${file}: tensor '${e.name}' starts at data offset ${e.begin} but the previous tensor ends at ${cursor}: overlapping or missing data (corrupt file)`);
    cursor = e.end;
  }
  if (cursor !== dataLength)
    fail(op, `${file}: the tensors cover ${cursor} data bytes but the file holds ${dataLength}: trailing bytes (corrupt file or a different format)`);
  return { entries, metadata, dataStart: 8 + n };
}

/** f16/bf16 bit patterns → f32 values (exact). */
function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** The values of one entry as a voxgrad typed array (f32 for floating dtypes, i32/u32 for integers). */
function convert(op: string, file: string, e: Entry, raw: Uint8Array): { data: TypedArray; dtype: DType } {
  const n = shapeSize(e.shape);
  const v = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const where = `${file}: tensor '${e.name}' (${e.dtype} ${fmtShape(e.shape)})`;
  const ints = (get: (i: number) => number) => {
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) out[i] = get(i);
    return { data: out, dtype: 'i32' as DType };
  };
  switch (e.dtype) {
    case 'F32': {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = v.getFloat32(4 * i, true);
      return { data: out, dtype: 'f32' };
    }
    case 'I32':
      return ints((i) => v.getInt32(4 * i, true));
    case 'U32': {
      const out = new Uint32Array(n);
      for (let i = 0; i < n; i++) out[i] = v.getUint32(4 * i, true);
      return { data: out, dtype: 'u32' };
    }
    case 'F64': {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        const x = v.getFloat64(8 * i, true);
        out[i] = x;
        if (Number.isFinite(x) && !Number.isFinite(out[i]))
          fail(op, `${where}: element ${i} = ${x} overflows f32 (voxgrad tensors are f32); rescale it before saving`);
      }
      return { data: out, dtype: 'f32' };
    }
    case 'F16':
    case 'BF16': {
      const out = new Float32Array(n);
      const bf = e.dtype === 'BF16';
      for (let i = 0; i < n; i++) {
        const h = v.getUint16(2 * i, true);
        out[i] = bf ? new Float32Array(new Uint32Array([h << 16]).buffer)[0] : halfToFloat(h);
      }
      return { data: out, dtype: 'f32' };
    }
    case 'I64':
    case 'U64':
      return ints((i) => {
        const x = e.dtype === 'I64' ? v.getBigInt64(8 * i, true) : v.getBigUint64(8 * i, true);
        if (x < -(2n ** 31n) || x >= 2n ** 31n)
          fail(op, `${where}: element ${i} = ${x} does not fit in i32 (voxgrad's integer dtype)`);
        return Number(x);
      });
    case 'I16':
      return ints((i) => v.getInt16(2 * i, true));
    case 'U16':
      return ints((i) => v.getUint16(2 * i, true));
    case 'I8':
      return ints((i) => v.getInt8(i));
    case 'U8':
      return ints((i) => v.getUint8(i));
    case 'BOOL':
      // any nonzero byte is true, as PyTorch and NumPy read it
      return ints((i) => (v.getUint8(i) === 0 ? 0 : 1));
    default:
      return fail(op, `${where}: dtype ${e.dtype} is not supported (8-bit floats); convert it to F16/F32 first`);
  }
}

/**
 * Decodes safetensors bytes into tensors and metadata; `file` names the source in errors. Everything is validated
 * and converted before the first tensor is created, so a bad file leaves nothing behind.
 */
export function decodeSafetensors(bytes: Uint8Array, op = 'decodeSafetensors', file = 'the given buffer'): SafetensorsContents {
  const { entries, metadata, dataStart } = parseHeader(op, file, bytes);
  const converted = entries.map((e) => convert(op, file, e, bytes.subarray(dataStart + e.begin, dataStart + e.end)));
  const tensors: Record<string, Tensor> = {};
  try {
    entries.forEach((e, i) => ownProperty(tensors, e.name, makeTensor(converted[i].data, e.shape, { dtype: converted[i].dtype })));
  } catch (err) {
    for (const t of Object.values(tensors)) t.dispose();
    throw err;
  }
  return { tensors, metadata };
}


/** Reads a .safetensors file (path, URL or bytes) → { name: Tensor }, each in its own storage (dispose when done). */
export async function readSafetensors(source: SafetensorsSource): Promise<Record<string, Tensor>> {
  return decodeSafetensors(await readBytes('readSafetensors', source), 'readSafetensors', sourceName(source)).tensors;
}

/** Like readSafetensors, also returning the `__metadata__` strings. */
export async function readSafetensorsWithMetadata(source: SafetensorsSource): Promise<SafetensorsContents> {
  return decodeSafetensors(await readBytes('readSafetensorsWithMetadata', source), 'readSafetensorsWithMetadata', sourceName(source));
}

export interface SafetensorsWriteOptions {
  /** Stored as `__metadata__` (string values only, as the format requires). */
  metadata?: Record<string, string>;
}

/**
 * Encodes tensors as safetensors bytes, laid out like the reference writer: descending dtype, then name, the header
 * padded with spaces to a multiple of 8 bytes. Waits for the GPU to read the values back.
 */
export async function encodeSafetensors(tensors: Record<string, Tensor>, opts: SafetensorsWriteOptions = {}, op = 'encodeSafetensors'): Promise<Uint8Array> {
  if (tensors === null || typeof tensors !== 'object') fail(op, `tensors must be an object of { name: Tensor }, got ${describe(tensors)}`);
  const metadata = opts.metadata;
  if (metadata !== undefined) {
    if (metadata === null || typeof metadata !== 'object') fail(op, `metadata must be an object of strings, got ${describe(metadata)}`);
    for (const [k, v] of Object.entries(metadata)) if (typeof v !== 'string') fail(op, `metadata['${k}'] must be a string, got ${describe(v)}`);
  }
  const names = Object.keys(tensors);
  for (const name of names) {
    if (name === '__metadata__') fail(op, "'__metadata__' is reserved by the format; pass metadata through { metadata }");
    const t = tensors[name];
    if (!(t instanceof Tensor)) fail(op, `tensors['${name}'] must be a Tensor, got ${describe(t)}`);
    t.storageFor(op);
  }
  const rank = (n: string) => DTYPE_ORDER.indexOf(WRITE_DTYPE[tensors[n].dtype]);
  names.sort((a, b) => rank(b) - rank(a) || (a < b ? -1 : a > b ? 1 : 0));
  // a null prototype: a tensor named '__proto__' is a key like any other (the format allows any string)
  const header: Record<string, unknown> = Object.create(null);
  if (metadata && Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const name of names) {
    const t = tensors[name];
    header[name] = { dtype: WRITE_DTYPE[t.dtype], shape: [...t.shape], data_offsets: [offset, offset + 4 * t.size] };
    offset += 4 * t.size;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let pos = 8 + json.length;
  for (const name of names) {
    const t = tensors[name];
    const d = await t.data();
    // typed arrays are little-endian on every platform WebGPU runs on
    out.set(new Uint8Array(d.buffer, d.byteOffset, 4 * t.size), pos);
    pos += 4 * t.size;
  }
  return out;
}

/** Writes tensors to a .safetensors file atomically (temp file + rename). */
export async function writeSafetensors(path: string, tensors: Record<string, Tensor>, opts: SafetensorsWriteOptions = {}): Promise<void> {
  const op = 'writeSafetensors';
  if (typeof path !== 'string' || !path) fail(op, `path must be a file path string, got ${describe(path)}`);
  const bytes = await encodeSafetensors(tensors, opts, op);
  await files(op, 'vg.io.encodeSafetensors').writeFileAtomic(path, bytes);
}
