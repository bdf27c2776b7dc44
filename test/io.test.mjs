// vg.io NIfTI, PNG and volume geometry: readNifti against nibabel (files + readings from test/fixtures/gen_io.py),
// files built byte by byte from the NIfTI-1/2 spec (big-endian, scaling, NIfTI-2), round trips through writeNifti,
// the real brain (Debian mricron-data ch2 + AAL), PNG decoded with node:zlib, crop/pad/resample keeping world
// coordinates, and every error path.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { assertThrowsWith, markReferenceComparison, rng, setup, vg } from './helpers.mjs';
import { decodePng } from './png.mjs';
import { rejectsWith } from './io-helpers.mjs';

test.before(setup);

const here = path.dirname(fileURLToPath(import.meta.url));
const fixtures = JSON.parse(fs.readFileSync(path.join(here, 'fixtures', 'io.json'), 'utf8'));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-'));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const tmpFile = (name) => path.join(tmp, name);

function assertMatrix(got, want, tol, msg) {
  assert.is(got.length, want.length, `${msg}: rows`);
  for (let r = 0; r < want.length; r++)
    for (let c = 0; c < want[r].length; c++)
      assert.ok(Math.abs(got[r][c] - want[r][c]) <= tol, `${msg}: [${r}][${c}] = ${got[r][c]}, expected ${want[r][c]} (tol ${tol})`);
}

function assertArray(got, want, tol, msg) {
  assert.is(got.length, want.length, `${msg}: length`);
  for (let i = 0; i < want.length; i++)
    assert.ok(Math.abs(got[i] - want[i]) <= tol, `${msg}: [${i}] = ${got[i]}, expected ${want[i]} (tol ${tol})`);
}

const f32 = Math.fround;
const world = (A, p) => [0, 1, 2].map((r) => A[r][0] * p[0] + A[r][1] * (p[1] ?? 0) + A[r][2] * (p[2] ?? 0) + A[r][3]);
const prod = (s) => s.reduce((a, b) => a * b, 1);

// ---- nibabel cross-check ---------------------------------------------------------------------------------------------

for (const c of fixtures.cases) {
  test(`readNifti matches nibabel ${fixtures.nibabel} on ${c.file}`, async () => {
    const img = await vg.io.readNifti(path.join(here, 'fixtures', c.file));
    assert.equal([...img.tensor.shape], c.shape);
    assert.is(img.tensor.dtype, 'f32');
    // get_fdata() is float64; the f32 tensor holds exactly its f32 rounding.
    assertArray(await img.tensor.data(), c.data.map(f32), 0, 'voxels');
    // sform values are stored as f32 and read exactly; qform/base affines are computed in float64 on both sides.
    assertMatrix(img.affine, c.affine, 1e-10, 'affine');
    assertArray(img.spacing, c.zooms.slice(0, Math.min(3, c.shape.length)), 0, 'spacing');
    assert.is(vg.io.orientation(img.affine), c.axcodes);
    assert.is(img.header.datatypeCode, c.datatype);
    assert.is(img.header.sformCode, c.sform_code);
    assert.is(img.header.qformCode, c.qform_code);
    if (c.scl_slope !== null) {
      assert.is(img.header.sclSlope, c.scl_slope);
      assert.is(img.header.sclInter, c.scl_inter);
    }
    assert.is(img.channelsLast, c.shape.length > 3 ? true : undefined);
    img.tensor.dispose();
  });
}

test('readNifti dtype i32 gives label maps exactly, and refuses values int32 cannot hold', async () => {
  const c = fixtures.cases.find((x) => x.file.includes('int16'));
  const img = await vg.io.readNifti(path.join(here, 'fixtures', c.file), { dtype: 'i32' });
  assert.is(img.tensor.dtype, 'i32');
  assert.equal(Array.from(await img.tensor.data()), c.data);
  img.tensor.dispose();
  // uint32 values above 2^31 - 1 do not fit.
  await rejectsWith(vg.io.readNifti(path.join(here, 'fixtures', 'nifti/dtype_uint32.nii'), { dtype: 'i32' }), ['readNifti', "dtype 'i32'", 'int32']);
  // Non-integer floats are not labels.
  await rejectsWith(vg.io.readNifti(path.join(here, 'fixtures', 'nifti/dtype_float32.nii.gz'), { dtype: 'i32' }), ['integer voxel values', "dtype 'f32'"]);
  await rejectsWith(vg.io.readNifti(path.join(here, 'fixtures', 'nifti/dtype_uint8.nii.gz'), { dtype: 'f64' }), ["dtype must be 'f32' or 'i32'"]);
});

test('readNifti channelsFirst moves the 4th dim of a 4-D file first', async () => {
  const c = fixtures.cases.find((x) => x.file.includes('4d'));
  const img = await vg.io.readNifti(path.join(here, 'fixtures', c.file), { channelsFirst: true });
  const [X, Y, Z, T] = c.shape;
  assert.equal([...img.tensor.shape], [T, X, Y, Z]);
  assert.is(img.channelsLast, undefined);
  const d = await img.tensor.data();
  for (let t = 0; t < T; t++)
    for (let i = 0; i < X; i++)
      for (let j = 0; j < Y; j++)
        for (let k = 0; k < Z; k++) assert.is(d[((t * X + i) * Y + j) * Z + k], f32(c.data[((i * Y + j) * Z + k) * T + t]));
  img.tensor.dispose();
});

test("writeNifti's header matches what nibabel's Nifti1Image(data, affine) writes for an oblique, flipped affine", async () => {
  const w = fixtures.writer;
  const t = vg.zeros([2, 2, 2]);
  const bytes = await vg.io.encodeNifti(t, { affine: w.affine });
  t.dispose();
  const v = new DataView(bytes.buffer, bytes.byteOffset);
  assert.is(v.getInt32(0, true), 348);
  assert.is(v.getInt16(254, true), w.sform_code);
  assert.is(v.getInt16(252, true), w.qform_code);
  // nibabel and voxgrad both compute in float64 and store f32: equal to 1 f32 ulp.
  for (let i = 0; i < 8; i++) assert.ok(Math.abs(v.getFloat32(76 + 4 * i, true) - w.pixdim[i]) <= 2e-7 * Math.abs(w.pixdim[i]), `pixdim[${i}]`);
  for (let i = 0; i < 3; i++) {
    assert.ok(Math.abs(v.getFloat32(256 + 4 * i, true) - w.quatern[i]) <= 1e-7, `quatern ${i}: ${v.getFloat32(256 + 4 * i, true)} vs ${w.quatern[i]}`);
    assert.is(v.getFloat32(268 + 4 * i, true), f32(w.qoffset[i]));
  }
  for (let r = 0; r < 3; r++) for (let c = 0; c < 4; c++) assert.is(v.getFloat32(280 + (r * 4 + c) * 4, true), f32(w.affine[r][c]));
  assert.is(String.fromCharCode(bytes[344], bytes[345], bytes[346], bytes[347]), 'n+1\0');
  assert.is(v.getFloat32(108, true), 352);
  // The qform decoded back equals nibabel's get_qform() (the orthonormalised rotation).
  const back = await vg.io.readNifti(bytes);
  assertMatrix(back.header.qform, w.qform, 1e-6, 'qform');
  back.tensor.dispose();
});

test('orientation(affine) agrees with nibabel.aff2axcodes', () => {
  for (const o of fixtures.orientations) assert.is(vg.io.orientation(o.affine), o.axcodes);
  assertThrowsWith(() => vg.io.orientation([[1, 0, 0], [0, 1, 0], [0, 0, 1]]), ['orientation', 'affine must be a 4×4']);
});

// ---- files built from the spec, byte by byte -----------------------------------------------------------------------

/** A NIfTI-1 single file (vox_offset 352) in either byte order; `data` values in file order, written with `put`. */
function niftiFile({ le = true, dims, datatype, bitpix, pixdim = [1, 1, 1, 1], slope = 0, inter = 0, sform = null, qform = null, magic = 'n+1', data, put }) {
  const n = prod(dims);
  const buf = new ArrayBuffer(352 + n * (bitpix / 8));
  const v = new DataView(buf);
  v.setInt32(0, 348, le);
  v.setInt16(40, dims.length, le);
  for (let i = 0; i < 7; i++) v.setInt16(42 + 2 * i, dims[i] ?? 1, le);
  v.setInt16(70, datatype, le);
  v.setInt16(72, bitpix, le);
  for (let i = 0; i < 8; i++) v.setFloat32(76 + 4 * i, pixdim[i] ?? 1, le);
  v.setFloat32(108, 352, le);
  v.setFloat32(112, slope, le);
  v.setFloat32(116, inter, le);
  if (qform) {
    v.setInt16(252, 1, le);
    qform.quatern.forEach((q, i) => v.setFloat32(256 + 4 * i, q, le));
    qform.offset.forEach((q, i) => v.setFloat32(268 + 4 * i, q, le));
  }
  if (sform) {
    v.setInt16(254, 2, le);
    for (let r = 0; r < 3; r++) for (let c = 0; c < 4; c++) v.setFloat32(280 + (r * 4 + c) * 4, sform[r][c], le);
  }
  for (let i = 0; i < 4; i++) v.setUint8(344 + i, (magic + '\0').charCodeAt(i));
  data.forEach((x, i) => put(v, 352 + i * (bitpix / 8), x, le));
  return new Uint8Array(buf);
}

test('big-endian int16 with scl_slope/scl_inter and a qform (rotation 90° about z, qfac -1), from the NIfTI-1 spec', async () => {
  const dims = [3, 2, 4];
  const raw = Array.from({ length: 24 }, (_, i) => (i * 37) % 101 - 50);
  // quaternion (a, b, c, d) = (cos 45°, 0, 0, sin 45°): R = [[0, -1, 0], [1, 0, 0], [0, 0, 1]].
  const s = Math.SQRT1_2;
  const bytes = niftiFile({
    le: false, dims, datatype: 4, bitpix: 16, pixdim: [-1, 2, 3, 0.5], slope: 1.5, inter: -4,
    qform: { quatern: [0, 0, s], offset: [10, -20, 30] }, data: raw, put: (v, at, x, le) => v.setInt16(at, x, le),
  });
  const img = await vg.io.readNifti(bytes);
  assert.is(img.header.littleEndian, false);
  assert.equal([...img.tensor.shape], dims);
  const d = await img.tensor.data();
  const [X, Y, Z] = dims;
  for (let i = 0; i < X; i++)
    for (let j = 0; j < Y; j++)
      for (let k = 0; k < Z; k++) assert.is(d[(i * Y + j) * Z + k], raw[i + X * (j + Y * k)] * 1.5 - 4, `voxel ${i},${j},${k}`);
  // Method 2: world = R · diag(pixdim1, pixdim2, qfac·pixdim3) · ijk + qoffset. The quaternion passes through f32.
  // a is recomputed from the f32 d as sqrt(1 - d²), so R is only nearly [[0, -1, 0], [1, 0, 0], [0, 0, 1]].
  const d32 = f32(s);
  const a = Math.sqrt(1 - d32 ** 2);
  const [cs, sn] = [a * a - d32 * d32, 2 * a * d32];
  assertMatrix(img.affine, [[cs * 2, -sn * 3, 0, 10], [sn * 2, cs * 3, 0, -20], [0, 0, -0.5, 30], [0, 0, 0, 1]], 1e-12, 'affine');
  assert.equal(img.spacing, [2, 3, 0.5]);
  assert.is(vg.io.orientation(img.affine), 'ALI'); // nibabel 5.0.0 aff2axcodes of this affine
  img.tensor.dispose();
});

test('a hand-built NIfTI-2 file reads (sform in float64)', async () => {
  const dims = [2, 3, 2];
  const buf = new ArrayBuffer(544 + 12 * 8);
  const v = new DataView(buf);
  v.setInt32(0, 540, true);
  'n+2\0\r\n\x1a\n'.split('').forEach((ch, i) => v.setUint8(4 + i, ch.charCodeAt(0)));
  v.setInt16(12, 64, true); // float64
  v.setInt16(14, 64, true);
  v.setBigInt64(16, 3n, true);
  dims.forEach((d, i) => v.setBigInt64(24 + 8 * i, BigInt(d), true));
  for (let i = 0; i < 8; i++) v.setFloat64(104 + 8 * i, i === 0 ? 1 : [0, 0.3, 0.4, 0.5][i] ?? 1, true);
  v.setBigInt64(168, 544n, true);
  v.setInt32(348, 4, true); // sform_code
  const sform = [[0.3, 0, 0, -1.25], [0, 0.4, 0, 2.5], [0, 0, 0.5, 3.125]];
  for (let r = 0; r < 3; r++) for (let c = 0; c < 4; c++) v.setFloat64(400 + (r * 4 + c) * 8, sform[r][c], true);
  const values = Array.from({ length: 12 }, (_, i) => i / 7);
  values.forEach((x, i) => v.setFloat64(544 + 8 * i, x, true));
  const img = await vg.io.readNifti(new Uint8Array(buf));
  assert.is(img.header.version, 2);
  assertMatrix(img.affine, [...sform, [0, 0, 0, 1]], 0, 'affine');
  const d = await img.tensor.data();
  for (let i = 0; i < 2; i++)
    for (let j = 0; j < 3; j++)
      for (let k = 0; k < 2; k++) assert.is(d[(i * 3 + j) * 2 + k], f32(values[i + 2 * (j + 3 * k)]));
  img.tensor.dispose();
});

// ---- round trips -----------------------------------------------------------------------------------------------------

// Oblique (rotation about two axes), anisotropic, det < 0 so the qform needs qfac = -1.
const OBLIQUE = fixtures.writer.affine;
const ROUND_TRIP = [
  ['float32', 'f32', (r) => r.uniform(-1000, 1000)],
  ['float64', 'f32', (r) => r.uniform(-1000, 1000)],
  ['uint8', 'i32', (r) => r.int(0, 256)],
  ['int8', 'i32', (r) => r.int(-128, 128)],
  ['int16', 'i32', (r) => r.int(-32768, 32768)],
  ['uint16', 'i32', (r) => r.int(0, 65536)],
  ['int32', 'i32', (r) => r.int(-2147483648, 2147483647)],
  ['uint32', 'u32', (r) => r.int(0, 4294967295)],
];
for (const [datatype, dtype, gen] of ROUND_TRIP) {
  for (const ext of ['.nii', '.nii.gz']) {
    test(`writeNifti/readNifti round trip: ${datatype} ${ext}, oblique affine with negative qfac`, async () => {
      const r = rng(datatype.length * 7 + ext.length);
      const shape = [5, 3, 4];
      const values = Array.from({ length: prod(shape) }, () => gen(r));
      const t = vg.tensor(values, shape, { dtype });
      const file = tmpFile(`rt_${datatype}${ext}`);
      await vg.io.writeNifti(file, t, { affine: OBLIQUE, datatype, description: 'voxgrad test' });
      const head = fs.readFileSync(file);
      assert.is(ext === '.nii.gz', head[0] === 0x1f && head[1] === 0x8b, 'gzip by extension');
      const img = await vg.io.readNifti(file);
      assert.equal([...img.tensor.shape], shape);
      assert.is(img.header.datatype, datatype);
      assert.is(img.header.descrip, 'voxgrad test');
      assertArray(await img.tensor.data(), values.map(f32), 0, 'values (f32 tensor)');
      assertMatrix(img.affine, OBLIQUE.map((row) => row.map(f32)), 0, 'affine (stored as f32)');
      assertArray(img.spacing, [0, 1, 2].map((c) => Math.hypot(OBLIQUE[0][c], OBLIQUE[1][c], OBLIQUE[2][c])), 1e-6, 'spacing');
      assert.is(img.header.pixdim[0], -1, 'qfac');
      if (dtype === 'i32') {
        const lab = await vg.io.readNifti(file, { dtype: 'i32' });
        assert.equal(Array.from(await lab.tensor.data()), values);
        lab.tensor.dispose();
      }
      t.dispose();
      img.tensor.dispose();
    });
  }
}

test('writeNifti: 2-D, spacing-only, 4-D channelsLast and channels-first volumes keep their layout', async () => {
  const r = rng(3);
  // 2-D [X, Y] with a spacing: diagonal affine.
  const t2 = vg.tensor(r.array(12), [4, 3]);
  const b2 = await vg.io.encodeNifti(t2, { spacing: [0.5, 2] });
  const i2 = await vg.io.readNifti(b2);
  assert.equal([...i2.tensor.shape], [4, 3]);
  assert.equal(i2.spacing, [0.5, 2]);
  assertMatrix(i2.affine, [[0.5, 0, 0, 0], [0, 2, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], 0, '2-D affine');
  assertArray(await i2.tensor.data(), await t2.data(), 0, '2-D values');
  // A 4-D nibabel-layout read writes back unchanged.
  const four = await vg.io.readNifti(path.join(here, 'fixtures', 'nifti/bigendian_qform_4d.nii'));
  const again = await vg.io.readNifti(await vg.io.encodeNifti(four, { gzip: true }));
  assert.equal([...again.tensor.shape], [...four.tensor.shape]);
  assertArray(await again.tensor.data(), await four.tensor.data(), 0, '4-D values');
  assertMatrix(again.affine, four.affine.map((row) => row.map(f32)), 0, '4-D affine');
  // A channels-first volume [C, X, Y, Z] is stored as [X, Y, Z, C].
  const vals = r.array(2 * 3 * 4 * 5);
  const vol = { tensor: vg.tensor(vals, [2, 3, 4, 5]), affine: OBLIQUE, spacing: [1, 1, 1] };
  const file = tmpFile('cf.nii.gz');
  await vg.io.writeNifti(file, vol);
  const nib = await vg.io.readNifti(file);
  assert.equal([...nib.tensor.shape], [3, 4, 5, 2]);
  const cf = await vg.io.readNifti(file, { channelsFirst: true });
  assert.equal([...cf.tensor.shape], [2, 3, 4, 5]);
  assertArray(await cf.tensor.data(), Array.from(vals, f32), 0, 'channels-first values');
  // A 2-D channels-first volume [C, X, Y] becomes [X, Y, 1, C].
  const v2 = { tensor: vg.tensor(r.array(2 * 4 * 3), [2, 4, 3]), affine: OBLIQUE, spacing: [1, 1] };
  const r2 = await vg.io.readNifti(await vg.io.encodeNifti(v2));
  assert.equal([...r2.tensor.shape], [4, 3, 1, 2]);
  for (const x of [t2, i2.tensor, four.tensor, again.tensor, vol.tensor, nib.tensor, cf.tensor, v2.tensor, r2.tensor]) x.dispose();
});

// ---- the real brain ----------------------------------------------------------------------------------------------

const CH2 = '/usr/share/mricron/templates/ch2.nii.gz';
const AAL = '/usr/share/mricron/templates/aal.nii.gz';
// From nibabel 5.0.0: nib.load(CH2).affine, .shape, .header.get_zooms(), aff2axcodes, get_fdata().sum() and voxels.
const CH2_AFFINE = [[1, 0, 0, -90], [0, 1, 0, -125], [0, 0, 1, -71], [0, 0, 0, 1]];

test('ch2.nii.gz (Colin27 T1, Debian mricron-data) loads with nibabel 5.0.0’s shape, spacing, affine, orientation and data', async () => {
  const t0 = performance.now();
  const img = await vg.io.readNifti(CH2);
  const ms = performance.now() - t0;
  console.log(`  ch2.nii.gz (181×217×181, 2.2 MB gzip) loaded in ${ms.toFixed(0)} ms`);
  assert.ok(ms < 5000, `loading ch2 took ${ms} ms`);
  assert.equal([...img.tensor.shape], [181, 217, 181]);
  assert.equal(img.spacing, [1, 1, 1]);
  assertMatrix(img.affine, CH2_AFFINE, 0, 'affine');
  assert.is(vg.io.orientation(img.affine), 'RAS');
  assert.is(img.header.datatype, 'uint8');
  assert.is(img.header.sformCode, 4);
  assert.is(img.header.descrip, 'spm - algebra');
  const d = await img.tensor.data();
  let sum = 0;
  let max = 0;
  for (const x of d) {
    sum += x;
    if (x > max) max = x;
  }
  assert.is(sum, 317151210);
  assert.is(max, 254);
  assert.is(d[(90 * 217 + 108) * 181 + 90], 33);
  img.tensor.dispose();
});

test('aal.nii.gz loads as an i32 label map on the same grid with 116 labels plus background', async () => {
  const lab = await vg.io.readNifti(AAL, { dtype: 'i32' });
  assert.equal([...lab.tensor.shape], [181, 217, 181]);
  assertMatrix(lab.affine, CH2_AFFINE, 0, 'affine');
  const d = await lab.tensor.data();
  const labels = new Set(d);
  assert.is(labels.size, 117);
  for (let l = 0; l <= 116; l++) assert.ok(labels.has(l), `label ${l}`);
  let fg = 0;
  for (const x of d) if (x > 0) fg++;
  assert.is(fg, 1479969); // nibabel 5.0.0: (dataobj > 0).sum()
  lab.tensor.dispose();
});

// ---- errors ------------------------------------------------------------------------------------------------------

const tinyFile = () =>
  niftiFile({ dims: [2, 2, 2], datatype: 16, bitpix: 32, data: [1, 2, 3, 4, 5, 6, 7, 8], put: (v, at, x, le) => v.setFloat32(at, x, le) });

test('readNifti errors: truncated, not NIfTI, corrupt gzip, unsupported datatype, hdr/img pair, bad dims', async () => {
  const good = tinyFile();
  await rejectsWith(vg.io.readNifti(good.slice(0, good.length - 5)), ['readNifti', 'truncated', 'need 32 bytes', 'found 27']);
  const gz = new Uint8Array(zlib.gzipSync(good.slice(0, 360)));
  await rejectsWith(vg.io.readNifti(gz), ['truncated', 'need 32 bytes', 'found 8']);
  await rejectsWith(vg.io.readNifti(good.slice(0, 200)), ['not a NIfTI file', '200 bytes']);
  const png = await vg.io.encodePng(vg.zeros([20, 20]));
  const notNifti = new Uint8Array(400);
  notNifti.set(png.slice(0, 400));
  await rejectsWith(vg.io.readNifti(notNifti), ['not a NIfTI file', 'sizeof_hdr', '348']);
  const badMagic = good.slice();
  badMagic[345] = 'x'.charCodeAt(0);
  await rejectsWith(vg.io.readNifti(badMagic), ['magic at byte 344 is', "expected 'n+1\\0'"]);
  const pair = good.slice();
  pair[345] = 'i'.charCodeAt(0);
  await rejectsWith(vg.io.readNifti(pair), ['.hdr/.img pair']);
  const corrupt = new Uint8Array(zlib.gzipSync(good));
  corrupt.fill(0xab, 12, 60);
  await rejectsWith(vg.io.readNifti(corrupt), ['gzip', 'does not decompress']);
  const rgb = good.slice();
  new DataView(rgb.buffer).setInt16(70, 128, true);
  await rejectsWith(vg.io.readNifti(rgb), ['datatype RGB24', 'code 128']);
  const complex = good.slice();
  new DataView(complex.buffer).setInt16(70, 32, true);
  await rejectsWith(vg.io.readNifti(complex), ['complex64']);
  const unknown = good.slice();
  new DataView(unknown.buffer).setInt16(70, 99, true);
  await rejectsWith(vg.io.readNifti(unknown), ['unknown datatype code 99']);
  const badDims = good.slice();
  new DataView(badDims.buffer).setInt16(40, 9, true);
  await rejectsWith(vg.io.readNifti(badDims), ['dim[0] = 9']);
  const zeroDim = good.slice();
  new DataView(zeroDim.buffer).setInt16(44, 0, true);
  await rejectsWith(vg.io.readNifti(zeroDim), ['invalid dims [2, 0, 2]']);
  const badOffset = good.slice();
  new DataView(badOffset.buffer).setFloat32(108, 100, true);
  await rejectsWith(vg.io.readNifti(badOffset), ['vox_offset 100 too low', 'after the 348-byte header']);
  await rejectsWith(vg.io.readNifti(tmpFile('missing.nii')), ['cannot read', 'missing.nii']);
  await rejectsWith(vg.io.readNifti(42), ['readNifti', 'source must be']);
});

test('writeNifti errors: extension, rank, affine shape, datatype range, affine and spacing together, a Volume without spacing', async () => {
  const t = vg.tensor([0.5, 1, 2, 3], [2, 2]);
  await rejectsWith(vg.io.writeNifti(tmpFile('x.png'), t), ['writeNifti', '.nii or .nii.gz', 'x.png']);
  await rejectsWith(vg.io.writeNifti(tmpFile('x.nii'), t, { affine: [[1, 0, 0], [0, 1, 0], [0, 0, 1]] }), ['affine must be a 4×4']);
  await rejectsWith(vg.io.writeNifti(tmpFile('x.nii'), t, { affine: [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 1, 1]] }), ['last row must be [0, 0, 0, 1]']);
  await rejectsWith(vg.io.writeNifti(tmpFile('x.nii'), t, { datatype: 'uint8' }), ['datatype uint8', '0.5', 'round']);
  await rejectsWith(vg.io.writeNifti(tmpFile('x.nii'), vg.tensor([300, 1, 2, 3], [2, 2]), { datatype: 'uint8' }), ['[0, 255]', '300']);
  await rejectsWith(vg.io.writeNifti(tmpFile('x.nii'), t, { datatype: 'complex64' }), ['datatype must be one of']);
  await rejectsWith(vg.io.writeNifti(tmpFile('x.nii'), t, { affine: OBLIQUE, spacing: [1, 1] }), ['either affine or spacing']);
  await rejectsWith(vg.io.writeNifti(tmpFile('x.nii'), vg.zeros([1, 1, 1, 1, 1, 1, 1, 1])), ['1 to 7 dims', '[1, 1, 1, 1, 1, 1, 1, 1]']);
  await rejectsWith(vg.io.writeNifti(tmpFile('x.nii'), [1, 2, 3]), ['must be a Tensor or a Volume']);
  await rejectsWith(vg.io.encodeNifti(t, { description: 'x'.repeat(81) }), ['encodeNifti', 'description', '80']);
  const identity = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]];
  await rejectsWith(vg.io.writeNifti(tmpFile('x.nii'), { tensor: t, affine: identity }), ['writeNifti', "Volume's spacing", 'undefined']);
  await rejectsWith(vg.io.encodeNifti({ tensor: t, affine: identity, spacing: [1, 1, 1] }), ['encodeNifti', "Volume's spacing", "tensor's 2 dims"]);
  assert.not.ok(fs.existsSync(tmpFile('x.nii')), 'failed writes leave no file');
  t.dispose();
});

// ---- PNG ---------------------------------------------------------------------------------------------------------

test('parseCsv reads back what toCsv writes (quotes, commas, line breaks, inf/nan, missing keys) and RFC 4180 text', async () => {
  const rows = [
    { case: 'p01', dice: 0.91, hd: Infinity, note: 'a, "quoted"\r\nline' },
    { case: 'p02', dice: -0.5e-7, hd: NaN },
    { case: '003', dice: 1, hd: -Infinity, note: '' },
  ];
  const back = vg.io.parseCsv(vg.io.toCsv(rows));
  assert.is(back.length, 3);
  assert.equal(back[0], rows[0]);
  assert.is(back[1].dice, -0.5e-7);
  assert.ok(Number.isNaN(back[1].hd) && !('note' in back[1]), 'nan back as NaN; a missing key stays missing');
  // as pandas: an unquoted '003' reads as a number, and an empty field as missing (toCsv writes '' and a missing key alike)
  assert.equal(back[2], { case: 3, dice: 1, hd: -Infinity });
  // a quoted field stays text even when it reads as a number; an empty quoted field is an empty string; blank lines skip
  assert.equal(vg.io.parseCsv('a,b\n"1",""\n\n3,"x""y"'), [{ a: '1', b: '' }, { a: 3, b: 'x"y' }]);
  const file = path.join(tmp, 'rows.csv');
  await vg.io.writeCsv(file, rows);
  assert.equal((await vg.io.readCsv(file))[0], rows[0]);
  assertThrowsWith(() => vg.io.parseCsv('a,b\n1'), ['parseCsv', 'record 2 has 1 fields, the header 2']);
  assertThrowsWith(() => vg.io.parseCsv('a\n"open'), ['parseCsv', 'unterminated quoted field']);
  assertThrowsWith(() => vg.io.parseCsv(''), ['parseCsv', 'no header']);
});

test('encodePng: grayscale windowed to the data range; explicit min/max clamp', async () => {
  const H = 3;
  const W = 5;
  const vals = Array.from({ length: H * W }, (_, i) => i * 2 - 7); // -7 .. 21
  const t = vg.tensor(vals, [H, W]);
  const png = decodePng(await vg.io.encodePng(t));
  assert.is(png.W, W);
  assert.is(png.H, H);
  assert.is(png.channels, 1);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) assert.is(png.pixels[y][x], Math.round(((vals[y * W + x] + 7) / 28) * 255));
  const win = decodePng(await vg.io.encodePng(t, { min: 0, max: 10 }));
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) assert.is(win.pixels[y][x], Math.round(Math.min(1, Math.max(0, vals[y * W + x] / 10)) * 255));
  const flat = decodePng(await vg.io.encodePng(vg.full([2, 2], 3)));
  assert.equal(flat.pixels, [[0, 0], [0, 0]]);
  t.dispose();
});

test('writePng: label overlay alpha-blended over grayscale → RGB; [H, W, 3] input', async () => {
  const img = vg.tensor([0, 1, 2, 3, 4, 5], [2, 3]);
  const labels = vg.tensor([0, 1, 2, 0, 13, 0], [2, 3], { dtype: 'i32' });
  const file = tmpFile('overlay.png');
  await vg.io.writePng(file, img, { overlay: labels, alpha: 0.25 });
  const png = decodePng(fs.readFileSync(file));
  assert.is(png.channels, 3);
  const lab = [0, 1, 2, 0, 13, 0];
  for (let p = 0; p < 6; p++) {
    const g = Math.round((p / 5) * 255);
    const c = lab[p] === 0 ? [g, g, g] : vg.io.PNG_PALETTE[(lab[p] - 1) % 12];
    const want = lab[p] === 0 ? c : c.map((ci) => Math.round(0.75 * g + 0.25 * ci));
    assert.equal(png.pixels[Math.floor(p / 3)].slice((p % 3) * 3, (p % 3) * 3 + 3), want, `pixel ${p}`);
  }
  // Labels 13 and 1 share a colour (palette of 12); 1 and 2 differ.
  assert.equal(png.pixels[1].slice(3, 6), [Math.round(0.75 * 204 + 0.25 * 230), Math.round(0.75 * 204 + 0.25 * 25), Math.round(0.75 * 204 + 0.25 * 75)]);
  const rgb = vg.tensor([0, 128, 255, 255, 0, 128], [1, 2, 3]);
  const p2 = decodePng(await vg.io.encodePng(rgb, { min: 0, max: 255 }));
  assert.equal(p2.pixels, [[0, 128, 255, 255, 0, 128]]);
  for (const x of [img, labels, rgb]) x.dispose();
});

test('PNG errors: rank, overlay shape and labels, alpha, window', async () => {
  const t = vg.zeros([2, 3]);
  await rejectsWith(vg.io.encodePng(vg.zeros([2, 3, 4])), ['encodePng', '[H, W]', '[2, 3, 4]']);
  await rejectsWith(vg.io.writePng(tmpFile('e.png'), t, { overlay: vg.zeros([3, 2]) }), ['writePng', 'overlay must have the image', '[3, 2]']);
  await rejectsWith(vg.io.encodePng(t, { overlay: vg.full([2, 3], 0.5) }), ['integers ≥ 0', '0.5']);
  await rejectsWith(vg.io.encodePng(t, { alpha: 2 }), ['alpha', '[0, 1]']);
  await rejectsWith(vg.io.encodePng(t, { min: 3, max: 1 }), ['min 3 is above its max 1']);
  await rejectsWith(vg.io.encodePng([[1]]), ['image must be a Tensor']);
  t.dispose();
});

// ---- volumes keep their geometry ----------------------------------------------------------------------------------

/** A volume whose values are a linear function of world position (trilinear interpolation reproduces it exactly). */
const GRAD = [0.3, -0.2, 0.1];
const field = (w) => GRAD[0] * w[0] + GRAD[1] * w[1] + GRAD[2] * w[2] + 5;
function linearVolume(shape, affine, channels = 0) {
  const [X, Y, Z] = shape;
  const vals = [];
  for (let c = 0; c < Math.max(1, channels); c++)
    for (let i = 0; i < X; i++) for (let j = 0; j < Y; j++) for (let k = 0; k < Z; k++) vals.push(field(world(affine, [i, j, k])) + 10 * c);
  const spacing = [0, 1, 2].map((c) => Math.hypot(affine[0][c], affine[1][c], affine[2][c]));
  return { tensor: vg.tensor(vals, channels ? [channels, ...shape] : shape), affine, spacing };
}

test('cropVolume and padVolume: voxels keep their world positions; writeNifti of a crop re-reads with the moved origin', async () => {
  const shape = [7, 6, 5];
  const vol = linearVolume(shape, OBLIQUE, 2);
  const d0 = await vol.tensor.data();
  const crop = vg.io.cropVolume(vol, [2, 1, 3], [4, 5, 2]);
  assert.equal([...crop.tensor.shape], [2, 4, 5, 2]);
  const d = await crop.tensor.data();
  for (let c = 0; c < 2; c++)
    for (let i = 0; i < 4; i++)
      for (let j = 0; j < 5; j++)
        for (let k = 0; k < 2; k++) {
          const src = [i + 2, j + 1, k + 3];
          assert.is(d[((c * 4 + i) * 5 + j) * 2 + k], d0[((c * 7 + src[0]) * 6 + src[1]) * 5 + src[2]]);
          assertArray(world(crop.affine, [i, j, k]), world(OBLIQUE, src), 1e-12, 'crop world');
        }
  assert.equal(crop.spacing, vol.spacing);
  const file = tmpFile('crop.nii.gz');
  await vg.io.writeNifti(file, crop);
  const back = await vg.io.readNifti(file, { channelsFirst: true });
  assertMatrix(back.affine, crop.affine.map((r) => r.map(f32)), 0, 're-read affine');
  assertArray(world(back.affine, [0, 0, 0]), world(OBLIQUE, [2, 1, 3]), 1e-4, 'voxel 0 of the crop (f32 affine)');
  assertArray(await back.tensor.data(), d, 0, 're-read values');

  const padded = vg.io.padVolume(vol, [1, 0, 2], [0, 3, 1], { value: -9 });
  assert.equal([...padded.tensor.shape], [2, 8, 9, 8]);
  const p = await padded.tensor.data();
  for (let i = 0; i < 8; i++)
    for (let j = 0; j < 9; j++)
      for (let k = 0; k < 8; k++) {
        const src = [i - 1, j, k - 2];
        const inside = src.every((s, a) => s >= 0 && s < shape[a]);
        const got = p[((1 * 8 + i) * 9 + j) * 8 + k];
        if (inside) {
          assert.is(got, d0[((1 * 7 + src[0]) * 6 + src[1]) * 5 + src[2]]);
          assertArray(world(padded.affine, [i, j, k]), world(OBLIQUE, src), 1e-12, 'pad world');
        } else assert.is(got, -9);
      }
  for (const x of [vol.tensor, crop.tensor, back.tensor, padded.tensor]) x.dispose();
});

/** Checks a resampled linear volume against the field at its voxels' world positions, where they lie inside the input. */
async function checkResampled(out, shape, oldPos, msg) {
  const [X, Y, Z] = out.tensor.shape.slice(-3);
  const d = await out.tensor.data();
  markReferenceComparison();
  let checked = 0;
  for (let i = 0; i < X; i++)
    for (let j = 0; j < Y; j++)
      for (let k = 0; k < Z; k++) {
        const p = oldPos([i, j, k]);
        if (!p.every((v, a) => v >= 0 && v <= shape[a] - 1)) continue;
        const want = field(world(out.affine, [i, j, k]));
        // f32 voxels (|v| ≲ 20) and f32 grid coordinates (~1e-6 voxel × gradient ≲ 0.5 per voxel): 1e-4 absolute.
        assert.ok(Math.abs(d[(i * Y + j) * Z + k] - want) <= 1e-4, `${msg}: voxel ${i},${j},${k} = ${d[(i * Y + j) * Z + k]}, expected ${want}`);
        checked++;
      }
  assert.ok(checked > 0.5 * X * Y * Z, `${msg}: only ${checked} voxels inside`);
}

test("resampleVolume { spacing } (MONAI Spacing's convention): new size, affine, and values at the new voxels' world positions", async () => {
  const shape = [9, 7, 6];
  const vol = linearVolume(shape, OBLIQUE);
  const target = [1.0, 1.7, 3.1];
  const out = vg.io.resampleVolume(vol, { spacing: target });
  const scale = target.map((s, a) => s / vol.spacing[a]);
  // MONAI: round((n - 1) · s / s') + 1; voxel 0's centre fixed.
  const size = shape.map((n, a) => Math.round((n - 1) / scale[a]) + 1);
  assert.equal([...out.tensor.shape], size);
  assertArray(out.spacing, target, 1e-12, 'spacing');
  const expected = OBLIQUE.map((row) => [row[0] * scale[0], row[1] * scale[1], row[2] * scale[2], row[3]]);
  expected[3] = [0, 0, 0, 1];
  assertMatrix(out.affine, expected, 1e-12, 'affine');
  await checkResampled(out, shape, (i) => i.map((v, a) => v * scale[a]), 'spacing');
  vol.tensor.dispose();
  out.tensor.dispose();
});

test('resampleVolume { size } keeps the field of view (edges aligned) on a channels-first volume', async () => {
  const shape = [8, 5, 6];
  const vol = linearVolume(shape, OBLIQUE, 2);
  const size = [5, 9, 4];
  const out = vg.io.resampleVolume(vol, { size }, { mode: 'trilinear' });
  assert.equal([...out.tensor.shape], [2, ...size]);
  const r = shape.map((n, a) => n / size[a]);
  assertArray(out.spacing, vol.spacing.map((s, a) => s * r[a]), 1e-12, 'spacing');
  // Outer edges coincide: world of old position -0.5 equals world of new position -0.5 (and n - 0.5 likewise).
  assertArray(world(out.affine, [-0.5, -0.5, -0.5]), world(OBLIQUE, [-0.5, -0.5, -0.5]), 1e-9, 'low edge');
  assertArray(world(out.affine, size.map((n) => n - 0.5)), world(OBLIQUE, shape.map((n) => n - 0.5)), 1e-9, 'high edge');
  const ch0 = { ...out, tensor: vg.narrow(out.tensor, 0, 0, 1).reshape(size) };
  await checkResampled(ch0, shape, (i) => i.map((v, a) => (v + 0.5) * r[a] - 0.5), 'size');
  const ch1 = vg.sub(vg.narrow(out.tensor, 0, 1, 1), vg.narrow(out.tensor, 0, 0, 1));
  const diff = await ch1.data();
  assert.ok(diff.every((v) => Math.abs(v - 10) < 1e-4), 'channel 1 = channel 0 + 10');
  for (const x of [vol.tensor, out.tensor, ch0.tensor, ch1]) x.dispose();
});

test('resampleVolume nearest on an i32 label map picks the nearest voxel; 2-D volumes work', async () => {
  const shape = [6, 5, 4];
  const labels = Array.from({ length: prod(shape) }, (_, i) => (i * 7) % 11);
  const vol = { tensor: vg.tensor(labels, shape, { dtype: 'i32' }), affine: OBLIQUE, spacing: [1.5, 0.8, 2.5] };
  const target = [0.7, 1.1, 1.2];
  const out = vg.io.resampleVolume(vol, { spacing: target }, { mode: 'nearest' });
  assert.is(out.tensor.dtype, 'i32');
  const [X, Y, Z] = out.tensor.shape;
  const d = await out.tensor.data();
  const scale = target.map((s, a) => s / vol.spacing[a]);
  for (let i = 0; i < X; i++)
    for (let j = 0; j < Y; j++)
      for (let k = 0; k < Z; k++) {
        const p = [i, j, k].map((v, a) => Math.min(shape[a] - 1, v * scale[a]));
        if (p.some((v) => Math.abs((v % 1) - 0.5) < 1e-3)) continue; // ties
        const q = p.map(Math.round);
        assert.is(d[(i * Y + j) * Z + k], labels[(q[0] * shape[1] + q[1]) * shape[2] + q[2]], `voxel ${i},${j},${k}`);
      }
  assertThrowsWith(() => vg.io.resampleVolume(vol, { spacing: target }), ['resampleVolume', "needs mode 'nearest'"]);
  // 2-D: [C, X, Y] with an in-plane affine.
  const A2 = [[0.5, 0, 0, 3], [0, -0.75, 0, 1], [0, 0, 1, 0], [0, 0, 0, 1]];
  const vals = [];
  for (let i = 0; i < 6; i++) for (let j = 0; j < 8; j++) vals.push(field(world(A2, [i, j, 0])));
  const v2 = { tensor: vg.tensor(vals, [1, 6, 8]), affine: A2, spacing: [0.5, 0.75] };
  const o2 = vg.io.resampleVolume(v2, { spacing: [0.3, 1] }, { mode: 'bilinear' });
  const s2 = [Math.round(5 / 0.6) + 1, Math.round(7 / (1 / 0.75)) + 1];
  assert.equal([...o2.tensor.shape], [1, ...s2]);
  const d2 = await o2.tensor.data();
  for (let i = 0; i < s2[0]; i++)
    for (let j = 0; j < s2[1]; j++) {
      if (j * (1 / 0.75) > 7) continue;
      assert.ok(Math.abs(d2[i * s2[1] + j] - field(world(o2.affine, [i, j, 0]))) < 1e-4, `2-D voxel ${i},${j}`);
    }
  for (const x of [vol.tensor, out.tensor, v2.tensor, o2.tensor]) x.dispose();
});

test('withTensor, spacingFromAffine and volume-op errors', async () => {
  const vol = { tensor: vg.zeros([4, 5, 6]), affine: OBLIQUE, spacing: [1.5, 0.8, 2.5] };
  const logits = vg.zeros([3, 4, 5, 6]);
  const out = vg.io.withTensor(vol, logits);
  assert.is(out.tensor, logits);
  assert.equal(out.affine, OBLIQUE);
  assertThrowsWith(() => vg.io.withTensor(vol, vg.zeros([4, 5, 7])), ['withTensor', 'spatial shape [4, 5, 6]', '[4, 5, 7]']);
  assertArray(vg.io.spacingFromAffine(OBLIQUE), [1.5, 0.8, 2.5], 1e-12, 'spacingFromAffine');
  assertThrowsWith(() => vg.io.spacingFromAffine([[0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]), ['column 0 is zero']);
  assertThrowsWith(() => vg.io.cropVolume(vol, [2, 0, 0], [3, 5, 6]), ['cropVolume', 'runs past', 'padVolume']);
  assertThrowsWith(() => vg.io.cropVolume(vol, [0, 0], [1, 1]), ['start must list 3 integers']);
  assertThrowsWith(() => vg.io.padVolume(vol, [-1, 0, 0], [0, 0, 0]), ['padVolume', 'before must list 3 integers ≥ 0']);
  assertThrowsWith(() => vg.io.resampleVolume(vol, { spacing: [1, 1, 1], size: [2, 2, 2] }), ['exactly one']);
  assertThrowsWith(() => vg.io.resampleVolume(vol, { spacing: [1, 0, 1] }), ['spacing must list 3 positive numbers']);
  assertThrowsWith(() => vg.io.cropVolume({ ...vol, channelsLast: true }, [0, 0, 0], [1, 1, 1]), ['channelsFirst: true']);
  assertThrowsWith(() => vg.io.cropVolume(vol.tensor, [0, 0, 0], [1, 1, 1]), ['volume must be { tensor, affine, spacing }']);
  for (const x of [vol.tensor, logits]) x.dispose();
});

test('ch2 resampled to 2 mm and cropped keeps its world coordinates', async () => {
  const img = await vg.io.readNifti(CH2);
  const t0 = performance.now();
  const r = vg.io.resampleVolume(img, { spacing: [2, 2, 2] });
  const d = await r.tensor.data();
  console.log(`  ch2 trilinear resample to 2 mm (91×109×91) in ${(performance.now() - t0).toFixed(0)} ms`);
  assert.equal([...r.tensor.shape], [91, 109, 91]);
  assertMatrix(r.affine, [[2, 0, 0, -90], [0, 2, 0, -125], [0, 0, 2, -71], [0, 0, 0, 1]], 0, '2 mm affine');
  // Every 2 mm voxel centre is a 1 mm centre (weights exactly 1 and 0): the values are copies.
  const src = await img.tensor.data();
  for (let i = 0; i < 91; i += 3)
    for (let j = 0; j < 109; j += 2)
      for (let k = 0; k < 91; k++) assert.is(d[(i * 109 + j) * 91 + k], src[(2 * i * 217 + 2 * j) * 181 + 2 * k], `2 mm voxel ${i},${j},${k}`);
  const crop = vg.io.cropVolume(r, [20, 30, 40], [16, 8, 4]);
  assertArray(world(crop.affine, [0, 0, 0]), [-90 + 40, -125 + 60, -71 + 80], 0, 'crop origin (mm)');
  const c = await crop.tensor.data();
  assert.is(c[(3 * 8 + 5) * 4 + 2], d[(23 * 109 + 35) * 91 + 42]);
  for (const x of [img.tensor, r.tensor, crop.tensor]) x.dispose();
});

test.run();
