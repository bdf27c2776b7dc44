// vg.io readers on hostile files (issue 12): decompression with a budget (gzip bombs measured in a child process),
// vox_offset checks as nibabel's, invalid qform/sform codes, safetensors names such as '__proto__', no tensors left
// behind by a failed read, NRRD field names and ascii ranges, BOOL bytes, rank limits named with file and tensor.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { setup, vg } from './helpers.mjs';
import { rejectsWith } from './io-helpers.mjs';
import { gzipBomb, nrrdBytes, safetensorsBytes } from '../scripts/fuzz/bytes.mjs';

test.before(setup);

const here = path.dirname(fileURLToPath(import.meta.url));
const dist = pathToFileURL(path.join(here, '..', 'dist', 'node.js')).href;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-io-rel-'));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A 2×3×4 float32 NIfTI-1 (voxel i at index i) as voxgrad writes it: sform_code 2, qform_code 0, vox_offset 352. */
async function nifti1() {
  const t = vg.tensor(Array.from({ length: 24 }, (_, i) => i), [2, 3, 4]);
  const bytes = await vg.io.encodeNifti(t, { affine: [[2, 0, 0, -3], [0, 3, 0, 5], [0, 0, 4, 7], [0, 0, 0, 1]] });
  t.dispose();
  return bytes;
}

/** The same volume as NIfTI-2 (540-byte header, vox_offset 544), built from the spec's field offsets. */
function nifti2(voxels) {
  const out = new Uint8Array(544 + voxels.byteLength);
  const v = new DataView(out.buffer);
  v.setInt32(0, 540, true);
  out.set([0x6e, 0x2b, 0x32, 0, 0x0d, 0x0a, 0x1a, 0x0a], 4); // "n+2\0\r\n\032\n"
  v.setInt16(12, 16, true); // float32
  v.setInt16(14, 32, true);
  [3, 2, 3, 4, 1, 1, 1, 1].forEach((d, i) => v.setBigInt64(16 + 8 * i, BigInt(d), true));
  [1, 1, 1, 1, 1, 1, 1, 1].forEach((d, i) => v.setFloat64(104 + 8 * i, d, true));
  v.setBigInt64(168, 544n, true);
  v.setFloat64(176, 1, true); // scl_slope
  out.set(new Uint8Array(voxels.buffer, voxels.byteOffset, voxels.byteLength), 544);
  return out;
}

/**
 * Reads `file` with vg.io[reader] in a fresh Node process and returns the growth of its peak RSS during the read
 * (VmHWM reset through /proc/self/clear_refs just before it) and the error message, if any.
 */
function readInChild(reader, file) {
  const code = `
    import fs from 'node:fs';
    const vg = await import(${JSON.stringify(dist)});
    await vg.init();
    const bytes = new Uint8Array(fs.readFileSync(${JSON.stringify(file)}));
    const status = (k) => Number(new RegExp(k + ':\\\\s+(\\\\d+)').exec(fs.readFileSync('/proc/self/status', 'utf8'))[1]) * 1024;
    fs.writeFileSync('/proc/self/clear_refs', '5');
    const before = status('VmRSS');
    let message = null;
    try {
      const img = await vg.io.${reader}(bytes);
      img.tensor.dispose();
    } catch (e) {
      message = e.name + ': ' + e.message;
    }
    console.log(JSON.stringify({ growth: status('VmHWM') - before, message }));
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8', timeout: 120_000 });
  assert.is(r.status, 0, `child failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1));
}

const MB = 1 << 20;

// ---- defect 2: decompression with a budget ---------------------------------------------------------------------------

test('a .nii.gz gzip bomb (header: 2×3×4 float32; inflates to 1 GiB) is rejected naming the file and sizes, RSS growth < 100 MB', async () => {
  const file = path.join(tmp, 'bomb.nii.gz');
  fs.writeFileSync(file, await gzipBomb(await nifti1(), 1 << 30));
  const { growth, message } = readInChild('readNifti', file);
  assert.ok(growth < 100 * MB, `peak RSS grew by ${(growth / MB).toFixed(0)} MB`);
  assert.ok(message?.startsWith('VoxgradError: readNifti: the given buffer decompresses to more than'), message);
  assert.ok(message.includes('the header implies 448 bytes (vox_offset 352 + 96 voxel bytes)'), message);
  // the same file through a path names it
  await rejectsWith(vg.io.readNifti(file), ['readNifti', 'bomb.nii.gz', 'decompresses to more than', 'gzip bomb']);
});

test('an NRRD gzip bomb (sizes 2×3, inflates to 1 GiB) is rejected, RSS growth < 100 MB', async () => {
  const head = nrrdBytes({ type: 'float', dimension: 2, sizes: '2 3', endian: 'little', encoding: 'raw' }, [0, 1, 2, 3, 4, 5]);
  const cut = Buffer.from(head).indexOf('\n\n') + 2;
  const file = path.join(tmp, 'bomb.nrrd');
  const header = Buffer.from(head.subarray(0, cut)).toString('latin1').replace('encoding: raw', 'encoding: gzip');
  fs.writeFileSync(file, Buffer.concat([Buffer.from(header, 'latin1'), await gzipBomb(head.subarray(cut), 1 << 30)]));
  const { growth, message } = readInChild('readNrrd', file);
  assert.ok(growth < 100 * MB, `peak RSS grew by ${(growth / MB).toFixed(0)} MB`);
  assert.ok(message?.startsWith('VoxgradError: readNrrd: the given buffer decompresses to more than'), message);
  assert.ok(message.includes('imply 24 bytes'), message);
});

test('.nii.gz: a header claiming more voxels than the stream holds is truncated (no allocation of the claim); small trailers are fine', async () => {
  const base = await nifti1();
  const big = base.slice();
  new DataView(big.buffer).setInt16(42, 2000, true); // dims 2000×3×4 float32 = 96 kB claimed, 96 B present
  await rejectsWith(vg.io.readNifti(await gzipBomb(big, 0)), [
    'is truncated', 'dims [2000, 3, 4]', 'need 96000 bytes', 'found 96',
  ]);
  // 4 kB of trailing bytes after the voxels (under the 1 MiB allowance) read as nibabel reads them
  const img = await vg.io.readNifti(await gzipBomb(base, 4096));
  assert.equal([...(await img.tensor.data())], [...Array(24).keys()]);
  img.tensor.dispose();
});

// ---- defect 3: vox_offset ------------------------------------------------------------------------------------------

test('readNifti rejects NaN, 348–351 and past-the-end vox_offset (NIfTI-1), 541 (NIfTI-2), naming file and field', async () => {
  const base = await nifti1();
  const file = path.join(tmp, 'offset.nii');
  for (const [value, fragment] of [[NaN, 'vox_offset NaN, not a finite'], [348, 'vox_offset 348 too low'], [351, 'vox_offset 351 too low'], [Infinity, 'vox_offset Infinity']]) {
    const b = base.slice();
    new DataView(b.buffer).setFloat32(108, value, true);
    fs.writeFileSync(file, b);
    await rejectsWith(vg.io.readNifti(file), ['readNifti', 'offset.nii', fragment], `vox_offset ${value}`);
  }
  const past = base.slice();
  new DataView(past.buffer).setFloat32(108, 4096, true);
  await rejectsWith(vg.io.readNifti(past), ['is truncated', 'after vox_offset 4096', 'found 0']);
  // 352.5 is read from 352, as nibabel's int() does
  const frac = base.slice();
  new DataView(frac.buffer).setFloat32(108, 352.5, true);
  const ok = await vg.io.readNifti(frac);
  assert.equal([...(await ok.tensor.data())], [...Array(24).keys()]);
  ok.tensor.dispose();

  const voxels = new Float32Array(24).map((_, i) => i);
  const n2 = nifti2(voxels);
  const good = await vg.io.readNifti(n2);
  assert.is(good.header.version, 2);
  good.tensor.dispose();
  new DataView(n2.buffer).setBigInt64(168, 541n, true);
  await rejectsWith(vg.io.readNifti(n2), ['vox_offset 541 too low', 'NIfTI-2', '544']);
});

// ---- defect 11: xform codes ----------------------------------------------------------------------------------------

test('invalid qform/sform codes are read as 0 (nibabel): the affine falls back to the qform, then the base affine', async () => {
  const base = await nifti1();
  const b = base.slice();
  const v = new DataView(b.buffer);
  v.setInt16(254, 200, true); // sform_code 200
  v.setInt16(252, 1, true); // qform_code 1: the quaternion fields hold the same diagonal affine
  let img = await vg.io.readNifti(b);
  assert.is(img.header.sformCode, 0);
  assert.equal(img.affine, [[2, 0, 0, -3], [0, 3, 0, 5], [0, 0, 4, 7], [0, 0, 0, 1]]);
  img.tensor.dispose();
  v.setInt16(252, -1, true); // qform_code -1 as well: nibabel's base affine, centred and x-flipped, from pixdim
  img = await vg.io.readNifti(b);
  assert.equal([img.header.qformCode, img.header.sformCode], [0, 0]);
  assert.equal(img.affine, [[-2, 0, 0, 1], [0, 3, 0, -3], [0, 0, 4, -6], [0, 0, 0, 1]]);
  img.tensor.dispose();
  v.setInt16(254, 5, true); // 5 (template_other) is valid
  img = await vg.io.readNifti(b);
  assert.is(img.header.sformCode, 5);
  img.tensor.dispose();
});

// ---- found by the fuzzing harness (scripts/fuzz), against nibabel ---------------------------------------------------

test('readNifti checks the whole magic: the 4th byte of NIfTI-1, the EOL bytes of NIfTI-2', async () => {
  const b = await nifti1();
  b[347] = 0x64; // 'n+1d'
  await rejectsWith(vg.io.readNifti(b), ['not a NIfTI-1 file', "magic at byte 344 is 'n+1d'"]);
  const n2 = nifti2(new Float32Array(24));
  n2[9] = 0x0d; // '\r\n\032\n' → '\r\r\032\n', as a text-mode transfer damages it
  await rejectsWith(vg.io.readNifti(n2), ['not a NIfTI-2 file', "'n+2\\0\\r\\r\\x1a\\n'"]);
});

test("readNifti repairs pixdim as nibabel does: qfac other than ±1 is 1, negative sizes their magnitude, 0 is 1", async () => {
  const b = await nifti1();
  const v = new DataView(b.buffer);
  v.setInt16(254, 0, true); // sform_code 0, qform_code 1: the qform gives the affine
  v.setInt16(252, 1, true);
  v.setFloat32(76, -Infinity, true); // qfac
  v.setFloat32(84, -3, true); // pixdim[2]
  let img = await vg.io.readNifti(b);
  assert.equal(img.affine, [[2, 0, 0, -3], [0, 3, 0, 5], [0, 0, 4, 7], [0, 0, 0, 1]]);
  assert.equal(img.spacing, [2, 3, 4]);
  assert.is(img.header.pixdim[0], 1);
  img.tensor.dispose();
  v.setFloat32(76, -1, true); // qfac -1 flips the third column
  img = await vg.io.readNifti(b);
  assert.equal(img.affine[2], [0, 0, -4, 7]);
  img.tensor.dispose();
  v.setInt16(252, 0, true); // no transform: the base affine from pixdim, with pixdim[3] = 0 read as 1
  v.setFloat32(88, 0, true);
  img = await vg.io.readNifti(b);
  assert.equal(img.affine, [[-2, 0, 0, 1], [0, 3, 0, -3], [0, 0, 1, -1.5], [0, 0, 0, 1]]);
  img.tensor.dispose();
});

test('readNifti rejects a qform quaternion with b² + c² + d² > 1 when the qform is the affine (nibabel: "w2 should be positive")', async () => {
  const b = await nifti1();
  const v = new DataView(b.buffer);
  v.setFloat32(256, 0.8, true);
  v.setFloat32(260, 0.8, true);
  const withSform = await vg.io.readNifti(b); // the sform is the affine: the quaternion is not used
  withSform.tensor.dispose();
  v.setInt16(254, 0, true);
  v.setInt16(252, 1, true);
  await rejectsWith(vg.io.readNifti(b), ['qform_code 1', 'not a rotation (b² + c² + d² = 1.28']);
  v.setFloat32(256, NaN, true);
  await rejectsWith(vg.io.readNifti(b), ['qform_code 1', 'not a rotation (b² + c² + d² = NaN)']);
});

// ---- defect 7: prototype keys in safetensors -----------------------------------------------------------------------

test("safetensors: tensors named '__proto__' and 'constructor' (and such metadata keys) round-trip as own entries", async () => {
  const tensors = {};
  Object.defineProperty(tensors, '__proto__', { value: vg.tensor([1, 2], [2]), enumerable: true });
  tensors.constructor = vg.tensor([3], [1]);
  tensors.bias = vg.tensor([4, 5, 6], [3]);
  const metadata = JSON.parse('{"__proto__": "p", "constructor": "c"}');
  const file = path.join(tmp, 'proto.safetensors');
  await vg.io.writeSafetensors(file, tensors, { metadata });
  const before = vg.memory().liveTensors;
  const back = await vg.io.readSafetensorsWithMetadata(file);
  assert.equal(Object.keys(back.tensors).sort(), ['__proto__', 'bias', 'constructor']);
  assert.is(Object.getPrototypeOf(back.tensors), Object.prototype);
  assert.equal([...(await back.tensors['__proto__'].data())], [1, 2]);
  assert.equal([...(await back.tensors.constructor.data())], [3]);
  assert.equal([...(await back.tensors.bias.data())], [4, 5, 6]);
  assert.equal(Object.entries(back.metadata).sort(), [['__proto__', 'p'], ['constructor', 'c']]);
  assert.is(vg.memory().liveTensors, before + 3);
  for (const t of [...Object.values(back.tensors), ...Object.values(tensors)]) t.dispose();
  // a file written by another tool, '__proto__' first
  const raw = safetensorsBytes(
    '{"__proto__":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}',
    new Uint8Array(new Float32Array([7, 8]).buffer),
  );
  const read = vg.io.decodeSafetensors(raw);
  assert.equal(Object.keys(read.tensors), ['__proto__', 'w']);
  assert.equal([...(await read.tensors['__proto__'].data())], [7]);
  for (const t of Object.values(read.tensors)) t.dispose();
  const ctorType = safetensorsBytes({ w: { dtype: 'constructor', shape: [1], data_offsets: [0, 4] } }, new Uint8Array(4));
  await rejectsWith(() => vg.io.decodeSafetensors(ctorType), ["tensor 'w' has dtype \"constructor\""]);
});

// ---- defect 8: no leaks on failure ---------------------------------------------------------------------------------

test('a safetensors file with a rank-9 tensor after good ones leaves no tensors behind; the error names reader, file, tensor', async () => {
  const header = {};
  for (let i = 0; i < 7; i++) header[`ok${i}`] = { dtype: 'F32', shape: [1], data_offsets: [4 * i, 4 * i + 4] };
  header.deep = { dtype: 'F32', shape: [1, 1, 1, 1, 1, 1, 1, 1, 1], data_offsets: [28, 32] };
  const file = path.join(tmp, 'rank9.safetensors');
  fs.writeFileSync(file, safetensorsBytes(header, new Uint8Array(32)));
  const before = vg.memory().liveTensors;
  await rejectsWith(vg.io.readSafetensors(file), ['readSafetensors', 'rank9.safetensors', "tensor 'deep'", 'rank 9', 'at most 8']);
  assert.is(vg.memory().liveTensors, before);
  const huge = safetensorsBytes({ big: { dtype: 'F32', shape: Array(1001).fill(1), data_offsets: [0, 4] } }, new Uint8Array(4));
  await rejectsWith(() => vg.io.decodeSafetensors(huge), ['decodeSafetensors', 'the given buffer', "tensor 'big'", 'rank 1001']);
  assert.is(vg.memory().liveTensors, before);
});

test('readNrrd geometry errors leave no tensors behind', async () => {
  const before = vg.memory().liveTensors;
  const bad = nrrdBytes(
    { type: 'float', dimension: 2, sizes: '2 2', space: 'left-posterior-superior', 'space directions': '(0,0,0) (0,1,0)', endian: 'little', encoding: 'raw' },
    [1, 2, 3, 4],
  );
  await rejectsWith(vg.io.readNrrd(bad), ['readNrrd', 'zero vector']);
  const mixed = nrrdBytes({ type: 'float', dimension: 2, sizes: '2 2', 'space directions': '(1,0,0) (0,1)', endian: 'little', encoding: 'raw' }, [1, 2, 3, 4]);
  await rejectsWith(vg.io.readNrrd(mixed), ['readNrrd', 'space directions']);
  assert.is(vg.memory().liveTensors, before);
});

// ---- defect 9: NRRD field names and ascii ranges -------------------------------------------------------------------

test('readNrrd rejects a misspelled field (it used to drop the geometry) and keeps key:=value pairs', async () => {
  const fields = { type: 'float', dimension: 3, sizes: '1 1 1', space: 'RAS', endian: 'little', encoding: 'raw' };
  const good = await vg.io.readNrrd(nrrdBytes({ ...fields, 'space directions': '(1,0,0) (0,2,0) (0,0,3)' }, [5], { lines: ['note:=spce directions: free text'] }));
  assert.equal(good.spacing, [1, 2, 3]);
  assert.is(good.header.keyValues.note, 'spce directions: free text');
  good.tensor.dispose();
  await rejectsWith(vg.io.readNrrd(nrrdBytes({ ...fields, 'spce directions': '(1,0,0) (0,2,0) (0,0,3)' }, [5])), [
    'readNrrd', "unknown header field 'spce directions'", 'misspelled', 'key:=value',
  ]);
  await rejectsWith(vg.io.readNrrd(nrrdBytes({ ...fields, __proto__x: '1' }, [5])), ["unknown header field '__proto__x'"]);
  // values that are names of Object.prototype members are unknown types and spaces, not lookups that succeed
  await rejectsWith(vg.io.readNrrd(nrrdBytes({ ...fields, type: 'constructor' }, [5], { data: new Uint8Array(4) })), ["type 'constructor'", 'does not read']);
  await rejectsWith(vg.io.readNrrd(nrrdBytes({ ...fields, space: 'constructor' }, [5])), ["space 'constructor'"]);
  const proto = nrrdBytes(fields, [5], { lines: ['__proto__:=x'] });
  const img = await vg.io.readNrrd(proto);
  assert.is(Object.getOwnPropertyDescriptor(img.header.keyValues, '__proto__')?.value, 'x');
  img.tensor.dispose();
});

test('readNrrd checks ascii values against the declared type (uchar 300 and -5 rejected, 255 and 0 read)', async () => {
  const fields = { type: 'uchar', dimension: 1, sizes: '2', encoding: 'ascii' };
  for (const bad of [300, -5, 1.5])
    await rejectsWith(vg.io.readNrrd(nrrdBytes(fields, [0, bad])), ['readNrrd', `ascii value 1 is ${bad}`, 'uint8 cannot hold', '[0, 255]']);
  await rejectsWith(vg.io.readNrrd(nrrdBytes({ ...fields, type: 'short' }, [0, 40000])), ['int16 cannot hold']);
  await rejectsWith(vg.io.readNrrd(nrrdBytes(fields, ['nan', 1])), ["ascii value 0 is 'nan', not a number"]);
  const ok = await vg.io.readNrrd(nrrdBytes(fields, [255, 0]));
  assert.equal([...(await ok.tensor.data())], [255, 0]);
  ok.tensor.dispose();
  const float = await vg.io.readNrrd(nrrdBytes({ ...fields, type: 'float' }, [300.5, 'nan']));
  const d = await float.tensor.data();
  assert.ok(d[0] === 300.5 && Number.isNaN(d[1]));
  float.tensor.dispose();
});

// ---- defect 11: BOOL bytes -----------------------------------------------------------------------------------------

test('safetensors: "__metadata__": null is no metadata, as the reference reader reads it (the fuzzer found the difference)', async () => {
  const raw = safetensorsBytes({ __metadata__: null, w: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, new Uint8Array(new Float32Array([2]).buffer));
  const { tensors, metadata } = vg.io.decodeSafetensors(raw);
  assert.equal(metadata, {});
  assert.equal([...(await tensors.w.data())], [2]);
  tensors.w.dispose();
  await rejectsWith(() => vg.io.decodeSafetensors(safetensorsBytes({ __metadata__: 5 })), ['__metadata__ must be an object of strings, got number 5']);
});

test('safetensors BOOL bytes other than 0/1 read as 1 (nonzero is true)', async () => {
  const raw = safetensorsBytes({ mask: { dtype: 'BOOL', shape: [6], data_offsets: [0, 6] } }, new Uint8Array([0, 1, 2, 127, 128, 255]));
  const { tensors } = vg.io.decodeSafetensors(raw);
  assert.equal([...(await tensors.mask.data())], [0, 1, 1, 1, 1, 1]);
  tensors.mask.dispose();
});

// ---- atomic writes -------------------------------------------------------------------------------------------------

test('writes are atomic: a failed rename leaves the old file and no temporary file; a good write leaves only the file', async () => {
  const folder = fs.mkdtempSync(path.join(tmp, 'atomic-'));
  const file = path.join(folder, 'w.safetensors');
  const t = vg.tensor([1, 2, 3], [3]);
  await vg.io.writeSafetensors(file, { t });
  const first = fs.readFileSync(file);
  assert.equal(fs.readdirSync(folder), ['w.safetensors']);
  // a directory where the file should go: the rename fails after the temporary file was written
  const blocked = path.join(folder, 'blocked.nii');
  fs.mkdirSync(blocked);
  let err = null;
  await vg.io.writeNifti(blocked, t).catch((e) => (err = e));
  assert.ok(err, 'writing over a directory must fail');
  assert.equal(fs.readdirSync(folder).sort(), ['blocked.nii', 'w.safetensors']);
  await vg.io.writeSafetensors(file, { t, u: t });
  assert.ok(!first.equals(fs.readFileSync(file)));
  assert.equal(fs.readdirSync(folder).sort(), ['blocked.nii', 'w.safetensors']);
  t.dispose();
});

test.run();
