/**
 * NIfTI-1/2 read and NIfTI-1 write. Header fields come from nifti-reader-js; voxel decoding, the affine (nibabel's
 * rules) and the writer are ours. Tensors are indexed like nibabel's get_fdata(): shape [X, Y, Z(, T, ...)], row-major,
 * so voxel (i, j, k) is at (i*Y + j)*Z + k. The file stores x fastest, so reading and writing transpose the axis order.
 */
import { NIFTI1, NIFTI2 } from 'nifti-reader-js';
import { fail, fmtShape } from '../engine/errors.js';
import { Tensor, shapeSize } from '../engine/tensor.js';
import { tensor } from '../kernels/creation.js';
import { describe } from '../kernels/common.js';
import { checkTensorFits, decodeElements, PLATFORM_LE, swapBytes } from './binary.js';
import { files, GunzipReader, gzip, isGzip, readBytes, sourceName, type ByteSource } from './files.js';
import { checkAffine, isVolume, orthonormalize, spacingFromAffine, type Affine, type Volume } from './volume.js';

/** The NIfTI datatypes voxgrad reads; `ctor` views little- or native-endian bytes once they are aligned and swapped. */
const DATATYPES = {
  2: { name: 'uint8', bytes: 1, ctor: Uint8Array },
  4: { name: 'int16', bytes: 2, ctor: Int16Array },
  8: { name: 'int32', bytes: 4, ctor: Int32Array },
  16: { name: 'float32', bytes: 4, ctor: Float32Array },
  64: { name: 'float64', bytes: 8, ctor: Float64Array },
  256: { name: 'int8', bytes: 1, ctor: Int8Array },
  512: { name: 'uint16', bytes: 2, ctor: Uint16Array },
  768: { name: 'uint32', bytes: 4, ctor: Uint32Array },
  1024: { name: 'int64', bytes: 8, ctor: BigInt64Array },
  1280: { name: 'uint64', bytes: 8, ctor: BigUint64Array },
} as const;
const UNSUPPORTED: Record<number, string> = {
  1: 'binary (1 bit)',
  32: 'complex64',
  128: 'RGB24',
  1536: 'float128',
  1792: 'complex128',
  2048: 'complex256',
  2304: 'RGBA32',
};
type DatatypeCode = keyof typeof DATATYPES;

export type NiftiDatatype = 'uint8' | 'int8' | 'int16' | 'uint16' | 'int32' | 'uint32' | 'float32' | 'float64';
const WRITE_CODES: Record<NiftiDatatype, DatatypeCode> = {
  uint8: 2, int8: 256, int16: 4, uint16: 512, int32: 8, uint32: 768, float32: 16, float64: 64,
};
const INT_RANGE: Partial<Record<NiftiDatatype, [number, number]>> = {
  uint8: [0, 255], int8: [-128, 127], int16: [-32768, 32767], uint16: [0, 65535],
  int32: [-2147483648, 2147483647], uint32: [0, 4294967295],
};

/** Header fields as stored (camelCase), plus the two transforms decoded as 4×4 row lists. */
export interface NiftiHeader {
  /** 1 for NIfTI-1, 2 for NIfTI-2. */
  version: 1 | 2;
  littleEndian: boolean;
  datatype: string;
  datatypeCode: number;
  bitpix: number;
  /** The raw dim[0..7] array: dim[0] is the number of dimensions. */
  dims: number[];
  /** pixdim[0..7] as nibabel reads it: pixdim[0] is qfac (±1; other values read as 1), voxel sizes 1–3 positive (0 read as 1, negatives as their magnitude). */
  pixdim: number[];
  voxOffset: number;
  sclSlope: number;
  sclInter: number;
  /** 0 ... 5 as stored; any other value is read as 0 (unknown), as nibabel does. */
  qformCode: number;
  /** 0 ... 5 as stored; any other value is read as 0 (unknown), as nibabel does. */
  sformCode: number;
  /** The quaternion transform (nibabel's get_qform), whatever qformCode says. */
  qform: Affine;
  /** The srow_x/y/z transform (nibabel's get_sform), whatever sformCode says. */
  sform: Affine;
  xyztUnits: number;
  /** 'mm', 'meter', 'micron' or 'unknown', from the low 3 bits of xyzt_units. */
  spatialUnits: string;
  intentCode: number;
  intentName: string;
  calMin: number;
  calMax: number;
  descrip: string;
}

export interface ReadNiftiOptions {
  /** 'f32' (default, like get_fdata) or 'i32' for label maps: values must be integers within int32 after scaling. */
  dtype?: 'f32' | 'i32';
  /**
   * For files with more than 3 dims (or 2-D files with more than 2): move the non-spatial dims first, [X, Y, Z, T] →
   * [T, X, Y, Z], so that the result is a channels-first Volume for cropVolume/resampleVolume. Default false (nibabel's
   * shape).
   */
  channelsFirst?: boolean;
}

export interface NiftiImage extends Volume {
  header: NiftiHeader;
}

const op = 'readNifti';

/** Reads a .nii or .nii.gz (NIfTI-1 or NIfTI-2, either byte order) from a path, URL or bytes. */
export async function readNifti(source: ByteSource, opts: ReadNiftiOptions = {}): Promise<NiftiImage> {
  if (opts === null || typeof opts !== 'object') fail(op, `options must be an object like { dtype: 'i32' }, got ${describe(opts)}`);
  const dtype = opts.dtype ?? 'f32';
  if (dtype !== 'f32' && dtype !== 'i32') fail(op, `dtype must be 'f32' or 'i32', got ${describe(dtype)}`);
  const name = sourceName(source);
  const bytes = await readBytes(op, source);
  const { header, voxels } = isGzip(bytes) ? await readCompressed(name, bytes) : readPlain(name, bytes);
  const dt = DATATYPES[header.datatypeCode as DatatypeCode];
  const ndim = header.dims[0];
  const shape = header.dims.slice(1, ndim + 1);
  const count = shapeSize(shape);
  const values = decodeElements(voxels, 0, count, dt.bytes, dt.ctor, header.littleEndian);

  // nibabel: slope 0 or non-finite means unscaled data.
  const scaled = header.sclSlope !== 0 && Number.isFinite(header.sclSlope);
  if (scaled && !Number.isFinite(header.sclInter))
    fail(op, `${name} has scl_slope ${header.sclSlope} but a non-finite scl_inter ${header.sclInter}`);
  const slope = scaled ? header.sclSlope : 1;
  const inter = scaled ? header.sclInter : 0;

  const spatial = Math.min(ndim, 3);
  const axes = [...shape.keys()];
  const perm = opts.channelsFirst && ndim > spatial ? [...axes.slice(spatial), ...axes.slice(0, spatial)] : axes;
  const outShape = perm.map((a) => shape[a]);
  const out = dtype === 'f32' ? new Float32Array(count) : new Int32Array(count);
  transposeFromFile(values, shape, perm, out, slope, inter, dtype === 'i32' ? name : null);

  const affine = bestAffine(header, shape);
  const result: NiftiImage = {
    tensor: tensor(out, outShape, { dtype }),
    affine,
    spacing: header.pixdim.slice(1, spatial + 1).map(Math.abs),
    header,
  };
  if (ndim > spatial && !opts.channelsFirst) result.channelsLast = true;
  return result;
}

/** Voxel bytes needed after vox_offset, as the header's dims and datatype imply. */
function voxelBytes(h: NiftiHeader): number {
  return shapeSize(h.dims.slice(1, h.dims[0] + 1)) * DATATYPES[h.datatypeCode as DatatypeCode].bytes;
}

function truncated(name: string, h: NiftiHeader, found: number, total: string): never {
  return fail(
    op,
    `${name} is truncated: dims ${fmtShape(h.dims.slice(1, h.dims[0] + 1))} of ${h.datatype} need ${voxelBytes(h)} bytes of voxel ` +
      `data after vox_offset ${h.voxOffset}, found ${Math.max(0, found)} (${total})`,
  );
}

function readPlain(name: string, bytes: Uint8Array): { header: NiftiHeader; voxels: Uint8Array } {
  const header = parseHeader(name, bytes);
  const need = voxelBytes(header);
  if (bytes.length - header.voxOffset < need) truncated(name, header, bytes.length - header.voxOffset, `${bytes.length} bytes in all`);
  return { header, voxels: bytes.subarray(header.voxOffset, header.voxOffset + need) };
}

/** Extension bytes between the header and vox_offset that a .nii.gz may hold (skipped while decompressing, never kept). */
const MAX_GZIP_EXTENSIONS = 64 << 20;

/**
 * A .nii.gz decompressed as far as its header says and no further: the header first, the extensions skipped, the
 * voxel bytes taken, then at most max(1 MiB, volume bytes) of trailing data before the file is rejected as a bomb.
 */
async function readCompressed(name: string, compressed: Uint8Array): Promise<{ header: NiftiHeader; voxels: Uint8Array }> {
  const stream = new GunzipReader(op, name, compressed);
  try {
    let head = await stream.take(348);
    const sizeofHdr = (le: boolean) => new DataView(head.buffer, head.byteOffset, head.length).getInt32(0, le);
    if (head.length === 348 && sizeofHdr(true) !== 348 && sizeofHdr(false) !== 348) {
      // not NIfTI-1: the 540-byte NIfTI-2 header, or a foreign file that parseHeader names
      const rest = await stream.take(540 - 348);
      const both = new Uint8Array(head.length + rest.length);
      both.set(head);
      both.set(rest, head.length);
      head = both;
    }
    const header = parseHeader(name, head);
    const extensions = header.voxOffset - head.length;
    if (extensions > MAX_GZIP_EXTENSIONS)
      fail(op, `${name} has vox_offset ${header.voxOffset}: ${extensions} bytes of extensions before the voxels, more than the ${MAX_GZIP_EXTENSIONS} a compressed file may hold (corrupt header or a gzip bomb?)`);
    const need = voxelBytes(header);
    if ((await stream.skip(extensions)) < extensions) truncated(name, header, 0, `the data decompress to ${stream.position} bytes`);
    const voxels = await stream.take(need);
    if (voxels.length < need) truncated(name, header, voxels.length, `the data decompress to ${stream.position} bytes`);
    await stream.finish(need, `the header implies ${header.voxOffset + need} bytes (vox_offset ${header.voxOffset} + ${need} voxel bytes)`);
    return { header, voxels };
  } catch (e) {
    stream.cancel();
    throw e;
  }
}

function parseHeader(name: string, bytes: Uint8Array): NiftiHeader {
  if (bytes.length < 348)
    fail(op, `${name} is not a NIfTI file: it has ${bytes.length} bytes, less than the 348-byte NIfTI-1 header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const sizeLE = view.getInt32(0, true);
  const sizeBE = view.getInt32(0, false);
  const version = sizeLE === 348 || sizeBE === 348 ? 1 : sizeLE === 540 || sizeBE === 540 ? 2 : 0;
  if (version === 0)
    fail(op, `${name} is not a NIfTI file: sizeof_hdr is ${sizeLE} (little-endian) / ${sizeBE} (big-endian), expected 348 (NIfTI-1) or 540 (NIfTI-2)`);
  const headerBytes = version === 1 ? 348 : 540;
  if (bytes.length < headerBytes)
    fail(op, `${name} is truncated: it has ${bytes.length} bytes, less than the ${headerBytes}-byte NIfTI-${version} header`);
  // the magic: 'n+1\0' (NIfTI-1), or 'n+2\0' and the EOL-check bytes '\r\n\032\n' (NIfTI-2), all checked, as nibabel does
  const magicAt = version === 1 ? 344 : 4;
  const magicBytes = version === 1 ? 4 : 8;
  const magic = String.fromCharCode(...bytes.subarray(magicAt, magicAt + magicBytes));
  const tail = version === 1 ? '\0' : '\0\r\n\x1a\n';
  if (magic === `ni${version}${tail}`)
    fail(op, `${name} is the header of a two-file .hdr/.img pair (magic 'ni${version}'); only single-file .nii/.nii.gz is supported — convert it (e.g. nibabel: nib.save(nib.load(p), 'out.nii.gz'))`);
  if (magic !== `n+${version}${tail}`)
    fail(op, `${name} is not a NIfTI-${version} file: magic at byte ${magicAt} is ${showBytes(magic)}, expected ${showBytes(`n+${version}${tail}`)}`);

  // Only the fixed header goes to nifti-reader-js: extensions are skipped through vox_offset.
  const h = version === 1 ? new NIFTI1() : new NIFTI2();
  try {
    h.readHeader(bytes.slice(0, headerBytes).buffer);
  } catch (e) {
    fail(op, `${name}: the NIfTI-${version} header does not parse (${(e as Error).message})`);
  }
  const le = h.littleEndian;
  const dims = [...h.dims];
  if (!(dims[0] >= 1 && dims[0] <= 7))
    fail(op, `${name} has dim[0] = ${dims[0]}; NIfTI needs 1 to 7 dimensions (corrupt header?)`);
  const shape = dims.slice(1, dims[0] + 1);
  if (shape.some((d) => !(d >= 1) || !Number.isSafeInteger(d)))
    fail(op, `${name} has invalid dims ${fmtShape(shape)}: every size must be a positive integer (corrupt header?)`);
  const code = h.datatypeCode;
  if (UNSUPPORTED[code] !== undefined)
    fail(op, `${name} has datatype ${UNSUPPORTED[code]} (code ${code}), which voxgrad does not read; convert it to a scalar type (uint8 ... float64) first`);
  if (!(code in DATATYPES)) fail(op, `${name} has an unknown datatype code ${code} (corrupt header?)`);
  checkTensorFits(op, name, `dims ${fmtShape(shape)}`, shapeSize(shape));
  // nibabel's checks: voxels of a single file start after the header and the 4-byte extension flag; a fractional
  // offset is truncated. Offset 0 nibabel accepts (and reads the header as voxels); it is rejected here too.
  if (!Number.isFinite(h.vox_offset)) fail(op, `${name} has vox_offset ${h.vox_offset}, not a finite byte offset (corrupt header)`);
  const voxOffset = Math.floor(h.vox_offset);
  if (voxOffset < headerBytes + 4)
    fail(op, `${name}: vox_offset ${voxOffset} too low: a single-file NIfTI-${version} stores its voxels after the ${headerBytes}-byte header and the 4-byte extension flag, at ${headerBytes + 4} or later (corrupt header)`);

  // srow_* is read directly: nifti-reader-js fills its affine from the qform when qform_code ≥ sform_code (nibabel prefers the sform).
  const sform: Affine = [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1]];
  for (let r = 0; r < 3; r++)
    for (let c = 0; c < 4; c++)
      sform[r][c] = version === 1 ? view.getFloat32(280 + (r * 4 + c) * 4, le) : view.getFloat64(400 + (r * 4 + c) * 8, le);
  // nibabel's repairs on load: qfac (pixdim[0]) other than ±1 is 1; a zero voxel size is 1, a negative one its magnitude
  const pixdim = [...h.pixDims];
  if (pixdim[0] !== -1) pixdim[0] = 1;
  for (let i = 1; i <= 3; i++) pixdim[i] = pixdim[i] === 0 ? 1 : Math.abs(pixdim[i]);
  const qformCode = validXformCode(h.qform_code);
  const sformCode = validXformCode(h.sform_code);
  // the quaternion's b² + c² + d² may exceed 1 by rounding only (nibabel's threshold: 3 eps of the stored float type);
  // NaN is refused too (nibabel returns an all-NaN rotation)
  const excess = h.quatern_b ** 2 + h.quatern_c ** 2 + h.quatern_d ** 2 - 1;
  if (sformCode === 0 && qformCode > 0 && !(excess <= 3 * (version === 1 ? 2 ** -23 : 2 ** -52)))
    fail(op, `${name} has qform_code ${qformCode} but quatern_b/c/d (${h.quatern_b}, ${h.quatern_c}, ${h.quatern_d}) are not a rotation (b² + c² + d² = ${excess + 1}): corrupt header`);
  const header: NiftiHeader = {
    version,
    littleEndian: le,
    datatype: DATATYPES[code as DatatypeCode].name,
    datatypeCode: code,
    bitpix: h.numBitsPerVoxel,
    dims,
    pixdim,
    voxOffset,
    sclSlope: h.scl_slope,
    sclInter: h.scl_inter,
    qformCode,
    sformCode,
    qform: qformAffine(h.quatern_b, h.quatern_c, h.quatern_d, [h.qoffset_x, h.qoffset_y, h.qoffset_z], pixdim),
    sform,
    xyztUnits: h.xyzt_units,
    spatialUnits: ['unknown', 'meter', 'mm', 'micron'][h.xyzt_units & 7] ?? 'unknown',
    intentCode: h.intent_code,
    intentName: h.intent_name.replace(/\0.*$/s, ''),
    calMin: h.cal_min,
    calMax: h.cal_max,
    descrip: h.description.replace(/\0.*$/s, ''),
  };
  return header;
}

/** A byte string in quotes, control bytes escaped: 'n+2\0\r\n\x1a\n'. */
const showBytes = (s: string) =>
  `'${s.replace(/[^\x20-\x7e]/g, (c) => ({ '\0': '\\0', '\r': '\\r', '\n': '\\n' })[c] ?? `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)}'`;

/** nibabel resets a qform/sform code outside 0 ... 5 (unknown ... template_other) to 0, so the transform is unused. */
const validXformCode = (code: number) => (Number.isInteger(code) && code >= 0 && code <= 5 ? code : 0);

/** nibabel's get_qform: rotation from the quaternion (a ≥ 0 filled in), times pixdim with qfac on the third column. */
function qformAffine(b: number, c: number, d: number, offset: number[], pixdim: number[]): Affine {
  const a = Math.sqrt(Math.max(0, 1 - (b * b + c * c + d * d)));
  const n = a * a + b * b + c * c + d * d;
  const s = n < 1e-12 ? 0 : 2 / n;
  const R =
    s === 0
      ? [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
      : [
          [1 - s * (c * c + d * d), s * (b * c - a * d), s * (b * d + a * c)],
          [s * (b * c + a * d), 1 - s * (b * b + d * d), s * (c * d - a * b)],
          [s * (b * d - a * c), s * (c * d + a * b), 1 - s * (b * b + c * c)],
        ];
  // qfac = pixdim[0], ±1 once the header is read
  const zooms = [pixdim[1], pixdim[2], pixdim[0] * pixdim[3]];
  return [
    [R[0][0] * zooms[0], R[0][1] * zooms[1], R[0][2] * zooms[2], offset[0]],
    [R[1][0] * zooms[0], R[1][1] * zooms[1], R[1][2] * zooms[2], offset[1]],
    [R[2][0] * zooms[0], R[2][1] * zooms[1], R[2][2] * zooms[2], offset[2]],
    [0, 0, 0, 1],
  ];
}

/** nibabel's get_best_affine: sform if sform_code > 0, else qform if qform_code > 0, else the centred, x-flipped base affine. */
function bestAffine(h: NiftiHeader, shape: number[]): Affine {
  if (h.sformCode > 0) return h.sform.map((r) => [...r]);
  if (h.qformCode > 0) return h.qform.map((r) => [...r]);
  const zooms = [1, 2, 3].map((i) => (i <= shape.length ? h.pixdim[i] : 1));
  const sizes = [0, 1, 2].map((i) => (i < shape.length ? shape[i] : 1));
  zooms[0] = -zooms[0];
  const A: Affine = [[zooms[0], 0, 0, 0], [0, zooms[1], 0, 0], [0, 0, zooms[2], 0], [0, 0, 0, 1]];
  for (let i = 0; i < 3; i++) A[i][3] = (-(sizes[i] - 1) / 2) * zooms[i];
  return A;
}

/** The voxel data in file order as a numeric typed array (a copy, aligned, byte-swapped to the platform's order). */
/**
 * out (row-major over file axes `perm`) ← src (x fastest), times slope plus inter. For i32 output (`intCheck` names
 * the file), every value must be an integer in int32 range.
 */
function transposeFromFile(
  src: ArrayLike<number>, shape: number[], perm: number[], out: Float32Array | Int32Array,
  slope: number, inter: number, intCheck: string | null,
): void {
  const n = perm.length;
  const fstride: number[] = [];
  let acc = 1;
  for (const d of shape) {
    fstride.push(acc);
    acc *= d;
  }
  const dims = perm.map((a) => shape[a]);
  const st = perm.map((a) => fstride[a]);
  const inner = dims[n - 1];
  const innerStride = st[n - 1];
  const idx = new Array(n).fill(0);
  const scaled = slope !== 1 || inter !== 0;
  let base = 0;
  for (let o = 0; o < out.length; o += inner) {
    if (intCheck === null && !scaled) for (let k = 0, f = base; k < inner; k++, f += innerStride) out[o + k] = src[f];
    else
      for (let k = 0, f = base; k < inner; k++, f += innerStride) {
        const v = src[f] * slope + inter;
        if (intCheck !== null && !(Number.isInteger(v) && v >= -2147483648 && v <= 2147483647))
          fail(op, `${intCheck}: dtype 'i32' needs integer voxel values within int32, found ${v}; read it with dtype 'f32' (the default)`);
        out[o + k] = v;
      }
    // Advance the outer index counters (all axes but the last).
    for (let a = n - 2; a >= 0; a--) {
      base += st[a];
      if (++idx[a] < dims[a]) break;
      base -= st[a] * dims[a];
      idx[a] = 0;
    }
  }
}

// ---- writing --------------------------------------------------------------------------------------------------------

export interface WriteNiftiOptions {
  /** The 4×4 voxel-to-world matrix (rows). Default: the volume's affine, else diag(spacing, 1). */
  affine?: Affine;
  /** Voxel size, used only to build a diagonal affine when no affine is given. */
  spacing?: readonly number[];
  /** Stored type. Default: float32 for f32 tensors, int32 for i32, uint32 for u32. Integer types need integer values in range. */
  datatype?: NiftiDatatype;
  /** Up to 80 ASCII characters in the header's descrip field. */
  description?: string;
}

/**
 * The bytes of a single-file NIfTI-1 image (uncompressed; pass `{ gzip: true }` for .nii.gz bytes). Takes a tensor in
 * nibabel's layout [X, Y(, Z, T, ...)], or a Volume whose leading (channel) dims are written as trailing NIfTI dims.
 * Like nibabel's Nifti1Image: sform = the affine with sform_code 2 (aligned), the qform fields hold its nearest
 * rigid-plus-zoom decomposition with qform_code 0, pixdim = the affine's column norms.
 */
export async function encodeNifti(data: Tensor | Volume, opts: WriteNiftiOptions & { gzip?: boolean } = {}): Promise<Uint8Array> {
  return encode('encodeNifti', data, opts);
}

/** Writes `.nii` or `.nii.gz` (by extension), atomically. */
export async function writeNifti(path: string, data: Tensor | Volume, opts: WriteNiftiOptions = {}): Promise<void> {
  const wop = 'writeNifti';
  if (typeof path !== 'string') fail(wop, `path must be a string ending in .nii or .nii.gz, got ${describe(path)}`);
  const gz = /\.nii\.gz$/i.test(path);
  if (!gz && !/\.nii$/i.test(path)) fail(wop, `path must end in .nii or .nii.gz, got '${path}'`);
  const bytes = await encode(wop, data, { ...opts, gzip: gz });
  await files(wop, 'vg.io.encodeNifti').writeFileAtomic(path, bytes);
}

async function encode(wop: string, data: Tensor | Volume, opts: WriteNiftiOptions & { gzip?: boolean }): Promise<Uint8Array> {
  if (opts === null || typeof opts !== 'object') fail(wop, `options must be an object like { affine }, got ${describe(opts)}`);
  const vol = isVolume(data) ? data : null;
  const t = vol ? vol.tensor : (data as Tensor);
  if (!(t instanceof Tensor))
    fail(wop, `data must be a Tensor or a Volume { tensor, affine, spacing }, got ${describe(data)}`);
  if (t.ndim < 1 || t.ndim > 7) fail(wop, `tensor must have 1 to 7 dims (NIfTI's limit), got shape ${fmtShape(t.shape)}`);
  // the spacing's length says which trailing dims are spatial, so a hand-built Volume must carry it
  if (vol && !(Array.isArray(vol.spacing) && (vol.spacing.length === 2 || vol.spacing.length === 3) && vol.spacing.length <= t.ndim))
    fail(wop, `a Volume's spacing must list the voxel size of its 2 or 3 trailing spatial dims (at most the tensor's ${t.ndim} dims), got ${describe(vol.spacing)}`);

  // A channels-first volume [C, X, Y, Z] is stored as [X, Y, Z, C] (2-D: [C, X, Y] as [X, Y, 1, C]).
  let fileShape = [...t.shape];
  let perm = [...t.shape.keys()];
  if (vol && !vol.channelsLast && t.ndim > vol.spacing.length) {
    const s = vol.spacing.length;
    const lead = t.ndim - s;
    perm = [...perm.slice(lead), ...perm.slice(0, lead)];
    fileShape = perm.map((a) => t.shape[a]);
    if (s === 2) {
      fileShape.splice(2, 0, 1);
      perm.splice(2, 0, -1);
    }
    if (fileShape.length > 7) fail(wop, `volume shape ${fmtShape(t.shape)} needs ${fileShape.length} NIfTI dims, more than 7`);
  }
  if (fileShape.some((d) => d > 32767)) fail(wop, `shape ${fmtShape(fileShape)} has a dim above 32767, NIfTI-1's limit (dims are int16)`);

  if (opts.affine !== undefined && opts.spacing !== undefined)
    fail(wop, 'give either affine or spacing, not both: the voxel size is the affine column norms');
  let affine: Affine;
  if (opts.affine !== undefined) affine = checkAffine(wop, opts.affine);
  else if (opts.spacing !== undefined) {
    const sp = opts.spacing;
    if (!Array.isArray(sp) || sp.length < 1 || sp.length > 3 || !sp.every((v) => Number.isFinite(v) && v > 0))
      fail(wop, `spacing must list 1 to 3 positive numbers, got ${describe(sp)}`);
    affine = [[sp[0], 0, 0, 0], [0, sp[1] ?? 1, 0, 0], [0, 0, sp[2] ?? 1, 0], [0, 0, 0, 1]];
  } else if (vol) affine = checkAffine(wop, vol.affine);
  else affine = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]];

  const datatype: NiftiDatatype = opts.datatype ?? (t.dtype === 'i32' ? 'int32' : t.dtype === 'u32' ? 'uint32' : 'float32');
  if (!Object.hasOwn(WRITE_CODES, datatype))
    fail(wop, `datatype must be one of ${Object.keys(WRITE_CODES).join(', ')}, got ${describe(datatype)}`);
  const code = WRITE_CODES[datatype];
  const dt = DATATYPES[code];
  if (opts.description !== undefined && (typeof opts.description !== 'string' || !/^[\x20-\x7e]{0,80}$/.test(opts.description)))
    fail(wop, `description must be at most 80 printable ASCII characters, got ${describe(opts.description)}`);

  const values = await t.data();
  const range = INT_RANGE[datatype];
  if (range)
    for (const v of values)
      if (!(Number.isInteger(v) && v >= range[0] && v <= range[1]))
        fail(wop, `datatype ${datatype} holds integers in [${range[0]}, ${range[1]}], but the tensor has ${v}; round/clamp it first or write float32`);

  // Transpose to file order (x fastest), walking the file sequentially with axis 0 innermost.
  const count = values.length;
  const fileData = new (dt.ctor as Float64ArrayConstructor)(count);
  const srcStride: number[] = new Array(t.ndim);
  for (let a = t.ndim - 1, acc = 1; a >= 0; a--) {
    srcStride[a] = acc;
    acc *= t.shape[a];
  }
  const st = perm.map((a) => (a < 0 ? 0 : srcStride[a]));
  const idx = new Array(fileShape.length).fill(0);
  const inner = fileShape[0];
  let src = 0;
  for (let f = 0; f < count; f += inner) {
    for (let k = 0, q = src; k < inner; k++, q += st[0]) fileData[f + k] = values[q];
    for (let a = 1; a < fileShape.length; a++) {
      src += st[a];
      if (++idx[a] < fileShape[a]) break;
      src -= st[a] * fileShape[a];
      idx[a] = 0;
    }
  }
  const body = new Uint8Array(fileData.buffer);
  if (!PLATFORM_LE) swapBytes(body, dt.bytes);
  const out = new Uint8Array(352 + body.length);
  writeHeader(new DataView(out.buffer, 0, 352), fileShape, code, dt.bytes * 8, affine, opts.description ?? '');
  out.set(body, 352);
  return opts.gzip ? gzip(out) : out;
}

/** The 348-byte NIfTI-1 header (little-endian) plus a zero extension flag. */
function writeHeader(v: DataView, shape: number[], code: number, bitpix: number, affine: Affine, descrip: string): void {
  const LE = true;
  v.setInt32(0, 348, LE);
  v.setInt16(40, shape.length, LE);
  for (let i = 0; i < 7; i++) v.setInt16(42 + 2 * i, i < shape.length ? shape[i] : 1, LE);
  v.setInt16(70, code, LE);
  v.setInt16(72, bitpix, LE);
  const { zooms, qfac, quat, offset } = qformFromAffine(affine);
  v.setFloat32(76, qfac, LE);
  for (let i = 1; i < 8; i++) v.setFloat32(76 + 4 * i, i <= 3 ? zooms[i - 1] : 1, LE);
  v.setFloat32(108, 352, LE);
  v.setFloat32(112, 1, LE); // scl_slope 1, scl_inter 0: values stored as given
  v.setUint8(123, 2); // xyzt_units: mm
  for (let i = 0; i < descrip.length; i++) v.setUint8(148 + i, descrip.charCodeAt(i));
  v.setInt16(252, 0, LE); // qform_code 0 and sform_code 2, as nibabel's Nifti1Image(data, affine)
  v.setInt16(254, 2, LE);
  v.setFloat32(256, quat[1], LE);
  v.setFloat32(260, quat[2], LE);
  v.setFloat32(264, quat[3], LE);
  for (let i = 0; i < 3; i++) v.setFloat32(268 + 4 * i, offset[i], LE);
  for (let r = 0; r < 3; r++) for (let c = 0; c < 4; c++) v.setFloat32(280 + (r * 4 + c) * 4, affine[r][c], LE);
  v.setUint8(344, 0x6e); // "n+1\0"
  v.setUint8(345, 0x2b);
  v.setUint8(346, 0x31);
}

/** nibabel's set_qform: zooms = column norms, qfac = sign of det, rotation = the nearest orthonormal matrix as a quaternion (a ≥ 0). */
function qformFromAffine(A: Affine): { zooms: number[]; qfac: number; quat: number[]; offset: number[] } {
  const zooms = spacingFromAffine(A, 3);
  const R = [0, 1, 2].map((r) => [0, 1, 2].map((c) => A[r][c] / zooms[c]));
  const det =
    R[0][0] * (R[1][1] * R[2][2] - R[1][2] * R[2][1]) -
    R[0][1] * (R[1][0] * R[2][2] - R[1][2] * R[2][0]) +
    R[0][2] * (R[1][0] * R[2][1] - R[1][1] * R[2][0]);
  const qfac = det < 0 ? -1 : 1;
  if (qfac < 0) for (let r = 0; r < 3; r++) R[r][2] = -R[r][2];
  const Q = orthonormalize(R);
  return { zooms, qfac, quat: mat2quat(Q), offset: [A[0][3], A[1][3], A[2][3]] };
}

/** Rotation matrix → unit quaternion [a, b, c, d] with a ≥ 0 (Shepperd's method: divide by the largest component). */
function mat2quat(R: number[][]): number[] {
  const tr = R[0][0] + R[1][1] + R[2][2];
  let q: number[];
  if (tr > 0) {
    const s = 2 * Math.sqrt(1 + tr);
    q = [s / 4, (R[2][1] - R[1][2]) / s, (R[0][2] - R[2][0]) / s, (R[1][0] - R[0][1]) / s];
  } else if (R[0][0] > R[1][1] && R[0][0] > R[2][2]) {
    const s = 2 * Math.sqrt(1 + R[0][0] - R[1][1] - R[2][2]);
    q = [(R[2][1] - R[1][2]) / s, s / 4, (R[0][1] + R[1][0]) / s, (R[0][2] + R[2][0]) / s];
  } else if (R[1][1] > R[2][2]) {
    const s = 2 * Math.sqrt(1 + R[1][1] - R[0][0] - R[2][2]);
    q = [(R[0][2] - R[2][0]) / s, (R[0][1] + R[1][0]) / s, s / 4, (R[1][2] + R[2][1]) / s];
  } else {
    const s = 2 * Math.sqrt(1 + R[2][2] - R[0][0] - R[1][1]);
    q = [(R[1][0] - R[0][1]) / s, (R[0][2] + R[2][0]) / s, (R[1][2] + R[2][1]) / s, s / 4];
  }
  return q[0] < 0 ? q.map((x) => -x) : q;
}
