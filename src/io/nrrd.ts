/**
 * NRRD read (attached header, NRRD0001-0005): encodings raw, gzip and ascii; scalar types int8 ... float64 (all the
 * spellings the format allows); either byte order; geometry from 'space directions' + 'space origin' (+ 'space'),
 * or from 'spacings' in files without a world space.
 *
 * The result has readNifti's shape: the tensor is indexed like nibabel's get_fdata() on the equivalent NIfTI — axis 0
 * is the file's first (fastest) axis, row-major, so voxel (i, j, k) is at (i*Y + j)*Z + k — and `affine` maps voxel
 * indices to RAS+ world millimetres, as NIfTI affines do. NRRD's world frame is named by 'space'; a left-posterior-
 * superior (LPS, ITK/DICOM) file gets its x and y rows negated (affine_RAS = diag(-1, -1, 1, 1) · affine_LPS), the
 * same conversion ITK/SimpleITK apply when they write such an image to NIfTI; LAS negates x only; RAS is kept; other
 * spaces (scanner-xyz, 3D-right-handed, ...) are kept as they are. A file with 'spacings' but no space is treated as
 * ITK does (an LPS frame with identity directions), so its affine is diag(-s0, -s1, s2) with origin 0.
 */
import { fail, fmtShape } from '../engine/errors.js';
import { Tensor, shapeSize } from '../engine/tensor.js';
import { describe } from '../kernels/common.js';
import { tensor } from '../kernels/creation.js';
import { permute } from '../kernels/shape.js';
import { checkTensorFits, decodeElements, type ElementArrayType } from './binary.js';
import { MAX_RANK } from '../engine/shape.js';
import { GunzipReader, isGzip, readBytes, sourceName, type ByteSource } from './files.js';
import { ownProperty } from './records.js';
import type { Affine, Volume } from './volume.js';

const op = 'readNrrd';

/** The fields of the NRRD format (NRRD0005, with the older one-word spellings); any other 'field: value' is an error, as in teem. */
const FIELDS = new Set([
  'content', 'number', 'type', 'block size', 'blocksize', 'dimension', 'space', 'space dimension', 'sizes', 'spacings',
  'thicknesses', 'axis mins', 'axismins', 'axis maxs', 'axismaxs', 'centers', 'centerings', 'labels', 'units', 'kinds',
  'min', 'max', 'old min', 'oldmin', 'old max', 'oldmax', 'endian', 'encoding', 'line skip', 'lineskip', 'byte skip',
  'byteskip', 'data file', 'datafile', 'space units', 'space origin', 'space directions', 'measurement frame',
  'sample units', 'sampleunits',
]);

/** Value ranges of the integer types, for ascii data. */
const INT_RANGES: Record<string, [number, number]> = {
  int8: [-128, 127], uint8: [0, 255], int16: [-32768, 32767], uint16: [0, 65535], int32: [-2147483648, 2147483647],
  uint32: [0, 4294967295], int64: [-(2 ** 63), 2 ** 63], uint64: [0, 2 ** 64],
};

/** NRRD type spellings → [canonical name, bytes, typed-array constructor]. */
const TYPES: Record<string, [string, number, ElementArrayType]> = {};
const defineType = (name: string, bytes: number, ctor: (typeof TYPES)[string][2], spellings: string[]) => {
  for (const s of [name, ...spellings]) TYPES[s] = [name, bytes, ctor];
};
defineType('int8', 1, Int8Array, ['signed char', 'int8_t']);
defineType('uint8', 1, Uint8Array, ['uchar', 'unsigned char', 'uint8_t']);
defineType('int16', 2, Int16Array, ['short', 'short int', 'signed short', 'signed short int', 'int16_t']);
defineType('uint16', 2, Uint16Array, ['ushort', 'unsigned short', 'unsigned short int', 'uint16_t']);
defineType('int32', 4, Int32Array, ['int', 'signed int', 'int32_t']);
defineType('uint32', 4, Uint32Array, ['uint', 'unsigned int', 'uint32_t']);
defineType('int64', 8, BigInt64Array, ['longlong', 'long long', 'long long int', 'signed long long', 'signed long long int', 'int64_t']);
defineType('uint64', 8, BigUint64Array, ['ulonglong', 'unsigned long long', 'unsigned long long int', 'uint64_t']);
defineType('float32', 4, Float32Array, ['float']);
defineType('float64', 8, Float64Array, ['double']);

/** Named spaces → the sign flips that take their x, y, z to RAS. */
const SPACES: Record<string, [number, number, number] | null> = {
  'right-anterior-superior': [1, 1, 1],
  ras: [1, 1, 1],
  'left-anterior-superior': [-1, 1, 1],
  las: [-1, 1, 1],
  'left-posterior-superior': [-1, -1, 1],
  lps: [-1, -1, 1],
  'scanner-xyz': null,
  '3d-right-handed': null,
  '3d-left-handed': null,
};

export interface NrrdHeader {
  /** 1 ... 5 from the magic line NRRD000n. */
  version: number;
  /** Canonical type name: 'uint8', 'int16', 'float32', ... */
  type: string;
  dimension: number;
  /** Sizes in file order (first axis fastest). */
  sizes: number[];
  encoding: 'raw' | 'gzip' | 'ascii';
  littleEndian: boolean;
  /** The 'space' field as written (lower case), or null. */
  space: string | null;
  /** Per axis: its direction vector in the file's space, or null for 'none' (a non-spatial axis). */
  spaceDirections: (number[] | null)[] | null;
  spaceOrigin: number[] | null;
  kinds: string[] | null;
  /** Every field as written ('key: value'), keys in lower case. */
  fields: Record<string, string>;
  /** 'key:=value' pairs (free-form metadata). */
  keyValues: Record<string, string>;
}

export interface NrrdImage extends Volume {
  header: NrrdHeader;
}

export interface ReadNrrdOptions {
  /** 'f32' (default) or 'i32' for label maps (values must be integers within int32). */
  dtype?: 'f32' | 'i32';
}

/** Reads an NRRD file (attached header) from a path, URL or bytes. See the file comment for the conventions. */
export async function readNrrd(source: ByteSource, opts: ReadNrrdOptions = {}): Promise<NrrdImage> {
  if (opts === null || typeof opts !== 'object') fail(op, `options must be an object like { dtype: 'i32' }, got ${describe(opts)}`);
  const dtype = opts.dtype ?? 'f32';
  if (dtype !== 'f32' && dtype !== 'i32') fail(op, `dtype must be 'f32' or 'i32', got ${describe(dtype)}`);
  const name = sourceName(source);
  const bytes = await readBytes(op, source);
  const { header, dataStart, byteSkip } = parseHeader(name, bytes);
  const [, elemBytes, Ctor] = TYPES[header.type];
  const count = shapeSize(header.sizes);
  // geometry first: a header error must not leave a tensor behind
  const { affine, spacing } = geometry(name, header);

  let values: ArrayLike<number>;
  if (header.encoding === 'ascii') values = parseAscii(name, header.type, bytes.subarray(dataStart), count);
  else {
    const need = count * elemBytes;
    const payload = bytes.subarray(dataStart);
    const voxels = header.encoding === 'gzip' ? await decompress(name, header, payload, byteSkip, need) : payload;
    // byte skip -1: the data are the last `need` bytes (raw only); gzip's skip was applied while decompressing
    const start = header.encoding === 'gzip' ? 0 : byteSkip === -1 ? payload.length - need : byteSkip;
    if (start < 0 || voxels.length - start < need)
      fail(
        op,
        `${name} is truncated: sizes ${fmtShape(header.sizes)} of ${header.type} need ${need} bytes of ` +
          `${header.encoding === 'gzip' ? 'decompressed ' : ''}data, found ${Math.max(0, voxels.length - Math.max(start, 0))}`,
      );
    values = decodeElements(voxels, start, count, elemBytes, Ctor, header.littleEndian);
  }

  let data: Float32Array | Int32Array;
  if (dtype === 'f32') data = Float32Array.from(values);
  else {
    data = new Int32Array(count);
    for (let i = 0; i < count; i++) {
      const v = values[i];
      if (!(Number.isInteger(v) && v >= -2147483648 && v <= 2147483647))
        fail(op, `${name}: dtype 'i32' needs integer voxel values within int32, found ${v}; read it with dtype 'f32' (the default)`);
      data[i] = v;
    }
  }
  // the file is row-major over the reversed axes (first axis fastest); a GPU permute puts the first axis first
  const rev = [...header.sizes].reverse();
  const raw = tensor(data, rev, { dtype });
  let t: Tensor;
  if (rev.length === 1) t = raw;
  else {
    t = permute(raw, rev.map((_, i) => rev.length - 1 - i));
    raw.dispose();
  }
  const result: NrrdImage = { tensor: t, affine, spacing, header };
  // a non-spatial axis ('none' direction) after a spatial one: the extra dim trails, as in readNifti's [X, Y, Z, T]
  const dirs = header.spaceDirections;
  if (dirs && dirs.some((d, i) => d === null && dirs.slice(0, i).some((e) => e !== null))) result.channelsLast = true;
  return result;
}

/**
 * The `need` voxel bytes after `byteSkip` of a gzip payload, decompressed no further than that plus at most
 * max(1 MiB, need) trailing bytes (GunzipReader.finish); fewer bytes than `need` when the data are short.
 */
async function decompress(name: string, h: NrrdHeader, payload: Uint8Array, byteSkip: number, need: number): Promise<Uint8Array> {
  if (!isGzip(payload)) fail(op, `${name} says 'encoding: gzip' but its data does not start with the gzip magic bytes (corrupt file?)`);
  const stream = new GunzipReader(op, name, payload);
  try {
    await stream.skip(byteSkip);
    const voxels = await stream.take(need);
    if (voxels.length === need)
      await stream.finish(need, `sizes ${fmtShape(h.sizes)} of ${h.type} imply ${byteSkip + need} bytes (byte skip ${byteSkip} + ${need} data bytes)`);
    return voxels;
  } catch (e) {
    stream.cancel();
    throw e;
  }
}

function parseHeader(name: string, bytes: Uint8Array): { header: NrrdHeader; dataStart: number; byteSkip: number } {
  const magic = String.fromCharCode(...bytes.subarray(0, 8));
  if (!/^NRRD000[1-5]$/.test(magic))
    fail(op, `${name} is not an NRRD file: it starts with ${JSON.stringify(magic)}, expected 'NRRD0001' ... 'NRRD0005'`);
  // the header is ASCII and ends at the first empty line
  const lines: string[] = [];
  let pos = 0;
  let dataStart = -1;
  while (pos < bytes.length) {
    let end = bytes.indexOf(10, pos);
    if (end < 0) end = bytes.length;
    let line = '';
    for (let i = pos; i < end; i++) line += String.fromCharCode(bytes[i]);
    pos = end + 1;
    line = line.replace(/\r$/, '');
    if (line === '') {
      dataStart = pos;
      break;
    }
    lines.push(line);
  }
  // own properties: a key such as '__proto__' is data like any other
  const fields: Record<string, string> = {};
  const keyValues: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    if (line.startsWith('#')) continue;
    const kv = line.indexOf(':=');
    const f = line.indexOf(': ');
    if (kv >= 0 && (f < 0 || kv < f)) ownProperty(keyValues, line.slice(0, kv), line.slice(kv + 2));
    else if (f >= 0) {
      const field = line.slice(0, f).trim().toLowerCase();
      if (!FIELDS.has(field))
        fail(op, `${name}: unknown header field '${line.slice(0, f).trim()}' (misspelled? the NRRD fields are ${[...FIELDS].join(', ')}; free-form metadata is written 'key:=value')`);
      if (Object.hasOwn(fields, field)) fail(op, `${name}: header field '${field}' appears twice`);
      fields[field] = line.slice(f + 2).trim();
    } else fail(op, `${name}: header line ${JSON.stringify(line)} is neither 'field: value' nor 'key:=value'`);
  }
  if (fields['data file'] !== undefined || fields.datafile !== undefined)
    fail(op, `${name} is a detached header (data file: ${fields['data file'] ?? fields.datafile}); only NRRD files with the data attached (.nrrd) are supported`);
  if (dataStart < 0)
    fail(op, `${name} is truncated: the header has no terminating empty line, so the file holds no data`);
  const need = (key: string) => {
    if (fields[key] === undefined) fail(op, `${name}: the header lacks the required field '${key}:'`);
    return fields[key];
  };

  const type = need('type').toLowerCase();
  if (!Object.hasOwn(TYPES, type))
    fail(op, `${name} has type '${fields.type}', which voxgrad does not read (supported: ${Object.keys(TYPES).join(', ')})`);
  const dimension = Number(need('dimension'));
  if (!Number.isInteger(dimension) || dimension < 1) fail(op, `${name}: dimension must be a positive integer, got '${fields.dimension}'`);
  if (dimension > MAX_RANK) fail(op, `${name} has dimension ${dimension}; voxgrad tensors have at most ${MAX_RANK} dims`);
  const sizes = need('sizes').split(/\s+/).map(Number);
  if (sizes.length !== dimension || !sizes.every((s) => Number.isSafeInteger(s) && s >= 1))
    fail(op, `${name}: sizes '${fields.sizes}' must list ${dimension} positive integers (dimension: ${dimension})`);
  checkTensorFits(op, name, `sizes ${fmtShape(sizes)}`, shapeSize(sizes));
  const enc = need('encoding').toLowerCase();
  const encoding = enc === 'gz' ? 'gzip' : enc === 'text' || enc === 'txt' ? 'ascii' : enc;
  if (encoding !== 'raw' && encoding !== 'gzip' && encoding !== 'ascii')
    fail(op, `${name} has encoding '${fields.encoding}'; voxgrad reads raw, gzip and ascii (re-save it, e.g. with 3D Slicer or SimpleITK, using gzip)`);
  const endian = (fields.endian ?? 'little').toLowerCase();
  if (TYPES[type][1] > 1 && fields.endian === undefined && encoding !== 'ascii')
    fail(op, `${name}: type ${type} spans several bytes but the header has no 'endian:' field`);
  if (endian !== 'little' && endian !== 'big') fail(op, `${name}: endian must be 'little' or 'big', got '${fields.endian}'`);
  const lineSkip = Number(fields['line skip'] ?? fields.lineskip ?? 0);
  if (lineSkip !== 0) fail(op, `${name} has 'line skip: ${lineSkip}', which only detached headers use; it is not supported`);
  const byteSkip = Number(fields['byte skip'] ?? fields.byteskip ?? 0);
  if (!Number.isInteger(byteSkip) || byteSkip < -1 || (byteSkip === -1 && encoding !== 'raw'))
    fail(op, `${name}: byte skip must be a non-negative integer (or -1 with raw encoding), got '${fields['byte skip'] ?? fields.byteskip}'`);

  const space = fields.space !== undefined ? fields.space.toLowerCase() : null;
  if (space !== null && !Object.hasOwn(SPACES, space))
    fail(op, `${name} has space '${fields.space}'; supported: ${Object.keys(SPACES).join(', ')} (time-varying spaces are not)`);
  const vector = (s: string, what: string) => {
    const m = /^\(([^)]*)\)$/.exec(s.trim());
    const v = m ? m[1].split(',').map(Number) : [];
    if (!m || !v.every(Number.isFinite)) fail(op, `${name}: ${what} has the malformed vector '${s}' (expected '(x,y,z)')`);
    return v;
  };
  const dirText = fields['space directions'];
  const spaceDirections = dirText === undefined ? null : (dirText.match(/\([^)]*\)|none/g) ?? []).map((s) => (s === 'none' ? null : vector(s, 'space directions')));
  if (spaceDirections && spaceDirections.length !== dimension)
    fail(op, `${name}: space directions '${dirText}' must list ${dimension} entries (a vector or 'none' per axis)`);
  const spaceOrigin = fields['space origin'] === undefined ? null : vector(fields['space origin'], 'space origin');

  const header: NrrdHeader = {
    version: Number(magic[7]),
    type: TYPES[type][0],
    dimension,
    sizes,
    encoding,
    littleEndian: endian === 'little',
    space,
    spaceDirections,
    spaceOrigin,
    kinds: fields.kinds?.split(/\s+/) ?? null,
    fields,
    keyValues,
  };
  return { header, dataStart, byteSkip };
}

/** ascii data: `count` numbers, each representable in the declared type (integers in range for integer types). */
function parseAscii(name: string, type: string, text: Uint8Array, count: number): Float64Array {
  const tokens = new TextDecoder('latin1').decode(text).split(/[\s,]+/).filter((s) => s !== '');
  if (tokens.length < count) fail(op, `${name} is truncated: ascii data has ${tokens.length} values, the sizes need ${count}`);
  const out = new Float64Array(count);
  const range = INT_RANGES[type];
  for (let i = 0; i < count; i++) {
    const v = Number(tokens[i]);
    if (Number.isNaN(v) && (range || tokens[i].toLowerCase() !== 'nan')) fail(op, `${name}: ascii value ${i} is '${tokens[i]}', not a number`);
    if (range && !(Number.isInteger(v) && v >= range[0] && v <= range[1]))
      fail(op, `${name}: ascii value ${i} is ${tokens[i]}, which type ${type} cannot hold (integers in [${range[0]}, ${range[1]}])`);
    out[i] = v;
  }
  return out;
}

/** The RAS voxel-to-world affine and the spacing of the spatial axes (see the file comment). */
function geometry(name: string, h: NrrdHeader): { affine: Affine; spacing: number[] } {
  const dirs = h.spaceDirections;
  let columns: number[][];
  let origin: number[];
  let flips: readonly number[];
  if (dirs) {
    columns = dirs.filter((d): d is number[] => d !== null);
    const dim = columns[0]?.length ?? 3;
    if (columns.length < 1 || columns.length > 3 || columns.some((c) => c.length !== dim) || dim > 3 || dim < 2)
      fail(op, `${name}: space directions '${h.fields['space directions']}' must give 1 to 3 spatial axes with 2- or 3-vectors of one length`);
    origin = h.spaceOrigin ?? new Array(dim).fill(0);
    if (origin.length !== dim) fail(op, `${name}: space origin has ${origin.length} components, the directions have ${dim}`);
    flips = (h.space && SPACES[h.space]) || [1, 1, 1];
  } else {
    // no world space: 'spacings' (or unit voxels) along the axes, in ITK's LPS frame
    const sp = h.fields.spacings?.split(/\s+/).map(Number) ?? new Array(h.dimension).fill(1);
    const spatial = Math.min(3, h.dimension);
    columns = sp.slice(0, spatial).map((s, i) => {
      const c = [0, 0, 0];
      c[i] = Number.isFinite(s) && s > 0 ? s : 1;
      return c;
    });
    origin = [0, 0, 0];
    flips = [-1, -1, 1];
  }
  const A: Affine = [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1]];
  columns.forEach((c, j) => c.forEach((v, r) => (A[r][j] = v * flips[r])));
  origin.forEach((v, r) => (A[r][3] = v * flips[r]));
  const spacing = columns.map((c) => Math.hypot(...c));
  if (spacing.some((s) => !(s > 0))) fail(op, `${name}: a space direction is the zero vector ('${h.fields['space directions']}')`);
  // fewer than 3 spatial axes: complete the matrix with the unit normal (2 axes) so it stays invertible
  if (columns.length === 2) {
    const [a, b] = [0, 1].map((j) => [0, 1, 2].map((r) => A[r][j] / spacing[j]));
    const n = [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
    const len = Math.hypot(...n) || 1;
    for (let r = 0; r < 3; r++) A[r][2] = n[r] / len;
  }
  return { affine: A, spacing };
}
