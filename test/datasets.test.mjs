// vg.io.readNrrd and the public-dataset loaders (vg.data.ACDCDataset, CAMUSDataset, LADataset), on tiny files the
// tests write in exactly the published layouts (NIfTI through vg.io.writeNifti, NRRD through the writer below).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { setup, size, vg } from './helpers.mjs';

test.before(setup);
let tmp;
test.before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-'));
});
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));

// ---- a tiny NRRD writer (the format: teem's NRRD0004/5 spec) --------------------------------------------------------

const SETTERS = {
  'unsigned char': [1, 'setUint8'], uchar: [1, 'setUint8'], 'signed char': [1, 'setInt8'],
  short: [2, 'setInt16'], ushort: [2, 'setUint16'], 'unsigned short': [2, 'setUint16'],
  int: [4, 'setInt32'], uint: [4, 'setUint32'], float: [4, 'setFloat32'], double: [8, 'setFloat64'],
  int64: [8, 'setBigInt64'],
};

/** NRRD bytes: `fields` in header order ('key' → 'value' strings), `values` in file order (first axis fastest). */
function nrrd(fields, values, { magic = 'NRRD0004', data } = {}) {
  const type = fields.type;
  const little = (fields.endian ?? 'little') === 'little';
  let payload = data;
  if (!payload) {
    if (fields.encoding === 'ascii') payload = Buffer.from(values.join(' ') + '\n');
    else {
      const [bytes, setter] = SETTERS[type];
      const dv = new DataView(new ArrayBuffer(values.length * bytes));
      values.forEach((v, i) => (setter === 'setBigInt64' ? dv[setter](i * bytes, BigInt(v), little) : bytes === 1 ? dv[setter](i, v) : dv[setter](i * bytes, v, little)));
      payload = new Uint8Array(dv.buffer);
      if (fields.encoding === 'gzip') payload = zlib.gzipSync(payload);
    }
  }
  const head = [magic, '# written by the voxgrad tests', ...Object.entries(fields).map(([k, v]) => `${k}: ${v}`), ''].join('\n') + '\n';
  return Buffer.concat([Buffer.from(head, 'latin1'), Buffer.from(payload)]);
}

/** file order (first axis fastest) → row-major over the same axes, as the reader must return. */
function fileToRowMajor(values, sizes) {
  const n = sizes.length;
  const out = new Array(values.length);
  for (let f = 0; f < values.length; f++) {
    let rem = f;
    const c = sizes.map((s) => {
      const v = rem % s;
      rem = Math.floor(rem / s);
      return v;
    });
    let o = 0;
    for (let a = 0; a < n; a++) o = o * sizes[a] + c[a];
    out[o] = values[f];
  }
  return out;
}

const close = (a, b, tol = 1e-12) => a.length === b.length && a.every((v, i) => Math.abs(v - b[i]) <= tol * Math.max(1, Math.abs(b[i])));

test('readNrrd: types, encodings, byte orders, [X, Y, Z] layout and the LPS → RAS affine', async () => {
  const sizes = [4, 3, 2];
  const cases = [
    ['uchar', 'raw', 'little', (i) => (i * 7) % 256],
    ['unsigned char', 'gzip', 'little', (i) => (i * 11) % 256],
    ['short', 'raw', 'big', (i) => i * 300 - 3000],
    ['ushort', 'gzip', 'big', (i) => i * 2000],
    ['int', 'gzip', 'little', (i) => i * 100000 - 1000000],
    ['float', 'raw', 'big', (i) => i * 0.25 - 2],
    ['double', 'gzip', 'little', (i) => Math.fround(i * 0.1 - 1)],
    ['signed char', 'raw', 'little', (i) => i - 12],
    ['int64', 'raw', 'big', (i) => i * 3 - 30],
    ['short', 'ascii', 'little', (i) => i * 3 - 30],
  ];
  for (const [type, encoding, endian, f] of cases) {
    const values = Array.from({ length: size(sizes) }, (_, i) => f(i));
    const bytes = nrrd(
      {
        type, dimension: 3, space: 'left-posterior-superior', sizes: sizes.join(' '),
        'space directions': '(0,1.5,0) (-0.75,0,0) (0,0.5,2.5)', kinds: 'domain domain domain', endian, encoding,
        'space origin': '(10,-20,30)',
      },
      values,
      { magic: type === 'int64' ? 'NRRD0005' : 'NRRD0004' },
    );
    const p = path.join(tmp, `v_${type.replace(' ', '_')}_${encoding}.nrrd`);
    fs.writeFileSync(p, bytes);
    const img = await vg.io.readNrrd(p);
    assert.equal(img.tensor.shape, [4, 3, 2], type);
    assert.ok(close(Array.from(await img.tensor.data()), fileToRowMajor(values, sizes)), `${type} ${encoding} ${endian} values`);
    // columns are the direction vectors; LPS x and y rows are negated for RAS
    assert.equal(img.affine, [[0, 0.75, 0, -10], [-1.5, 0, -0.5, 20], [0, 0, 2.5, 30], [0, 0, 0, 1]], type);
    assert.ok(close(img.spacing, [1.5, 0.75, Math.hypot(0.5, 2.5)]));
    assert.is(img.header.encoding, encoding);
    assert.is(img.header.space, 'left-posterior-superior');
    img.tensor.dispose();
  }
});

test('readNrrd: RAS and spacings-only geometry, a vector axis, labels as i32, key-value pairs', async () => {
  const ras = nrrd({ type: 'float', dimension: 3, space: 'RAS', sizes: '2 2 2', 'space directions': '(2,0,0) (0,3,0) (0,0,4)', 'space origin': '(1,2,3)', endian: 'little', encoding: 'raw' }, [0, 1, 2, 3, 4, 5, 6, 7]);
  let img = await vg.io.readNrrd(new Uint8Array(ras));
  assert.equal(img.affine, [[2, 0, 0, 1], [0, 3, 0, 2], [0, 0, 4, 3], [0, 0, 0, 1]]);
  img.tensor.dispose();

  // no space: ITK's reading (LPS frame, identity directions) → diag(-s0, -s1, s2) in RAS
  const plain = nrrd({ type: 'uchar', dimension: 3, sizes: '2 1 3', spacings: '0.5 0.5 1.25', encoding: 'raw' }, [1, 2, 3, 4, 5, 6]);
  img = await vg.io.readNrrd(new Uint8Array(plain), { dtype: 'i32' });
  assert.is(img.tensor.dtype, 'i32');
  assert.equal(Array.from(await img.tensor.data()), fileToRowMajor([1, 2, 3, 4, 5, 6], [2, 1, 3]));
  assert.equal(img.affine, [[-0.5, 0, 0, 0], [0, -0.5, 0, 0], [0, 0, 1.25, 0], [0, 0, 0, 1]]);
  img.tensor.dispose();

  // a leading vector axis ('none' direction) stays first: [3, X, Y, Z], the spatial geometry from the other three
  const vals = Array.from({ length: 3 * 2 * 2 * 2 }, (_, i) => i);
  const vec = nrrd({ type: 'short', dimension: 4, space: 'left-posterior-superior', sizes: '3 2 2 2', 'space directions': 'none (1,0,0) (0,1,0) (0,0,1)', kinds: 'vector domain domain domain', endian: 'little', encoding: 'gzip', 'space origin': '(0,0,0)', 'study:=note': 'x' }, vals);
  img = await vg.io.readNrrd(new Uint8Array(vec));
  assert.equal(img.tensor.shape, [3, 2, 2, 2]);
  assert.equal(Array.from(await img.tensor.data()), fileToRowMajor(vals, [3, 2, 2, 2]));
  assert.equal(img.spacing, [1, 1, 1]);
  assert.equal(img.header.kinds, ['vector', 'domain', 'domain', 'domain']);
  assert.is(img.channelsLast, undefined);
  // the writer's 'study:=note: x' line is a key-value pair, not a field
  assert.equal(img.header.keyValues, { study: 'note: x' });
  img.tensor.dispose();
});

test('readNrrd: errors name the file and what is wrong', async () => {
  const good = { type: 'short', dimension: 3, sizes: '2 2 2', endian: 'little', encoding: 'raw' };
  const vals = [1, 2, 3, 4, 5, 6, 7, 8];
  const write = (name, bytes) => {
    const p = path.join(tmp, name);
    fs.writeFileSync(p, bytes);
    return p;
  };
  const expectErr = async (p, fragments) => {
    try {
      const r = await vg.io.readNrrd(p);
      r.tensor.dispose();
    } catch (e) {
      for (const f of fragments) assert.ok(String(e.message).includes(f), `"${e.message}" lacks "${f}"`);
      return;
    }
    assert.unreachable(`expected an error for ${p}`);
  };
  const full = nrrd(good, vals);
  await expectErr(write('trunc.nrrd', full.subarray(0, full.length - 3)), ['readNrrd', 'trunc.nrrd', 'truncated', 'need 16 bytes', 'found 13']);
  const gz = nrrd({ ...good, encoding: 'gzip' }, vals);
  await expectErr(write('truncgz.nrrd', gz.subarray(0, gz.length - 10)), ['truncgz.nrrd', 'gzip']);
  await expectErr(write('notnrrd.nrrd', Buffer.from('P5\n2 2\n255\n')), ['not an NRRD file', "'NRRD0001' ... 'NRRD0005'"]);
  await expectErr(write('block.nrrd', nrrd({ ...good, type: 'block' }, [], { data: new Uint8Array(8) })), ["type 'block'", 'does not read']);
  await expectErr(write('bz.nrrd', nrrd({ ...good, encoding: 'bzip2' }, [], { data: new Uint8Array(16) })), ["encoding 'bzip2'", 'raw, gzip and ascii']);
  await expectErr(write('detached.nhdr', nrrd({ ...good, 'data file': 'x.raw' }, [], { data: new Uint8Array(0) })), ['detached header', 'x.raw']);
  await expectErr(write('nosizes.nrrd', nrrd({ type: 'short', dimension: 3, endian: 'little', encoding: 'raw' }, [], { data: new Uint8Array(16) })), ["required field 'sizes:'"]);
  await expectErr(write('badsizes.nrrd', nrrd({ ...good, sizes: '2 2' }, [], { data: new Uint8Array(16) })), ["sizes '2 2'", '3 positive integers']);
  await expectErr(write('noend.nrrd', nrrd({ type: 'short', dimension: 3, sizes: '2 2 2', encoding: 'raw' }, [], { data: new Uint8Array(16) })), ["no 'endian:' field"]);
  await expectErr(write('nohdrend.nrrd', Buffer.from('NRRD0004\ntype: short\n')), ['no terminating empty line']);
  const labels = write('frac.nrrd', nrrd({ ...good, type: 'float' }, [0, 0.5, 1, 1, 1, 1, 1, 1]));
  try {
    await vg.io.readNrrd(labels, { dtype: 'i32' });
    assert.unreachable('fractional labels');
  } catch (e) {
    assert.ok(e.message.includes("dtype 'i32' needs integer") && e.message.includes('0.5'), e.message);
  }
});

// ---- dataset layouts ------------------------------------------------------------------------------------------------

const AFFINE = [[0, -1.5, 0, 10], [1.25, 0, 0, -5], [0, 0, 8, 2], [0, 0, 0, 1]];
const SPACING = [1.25, 1.5, 8];
// image value at voxel (i, j, k) of frame f of patient p: distinct per patient, frame and voxel, exact in f32
const imgValue = (p, f, i, j, k) => p * 1000 + f * 100 + i * 16 + j * 4 + k;
const labValue = (p, f, i, j, k) => (p + f + i + 2 * j + 3 * k) % 4;
const X = 5, Y = 4, Z = 3;

function volume(fn, p, f) {
  return Float32Array.from({ length: X * Y * Z }, (_, n) => fn(p, f, Math.floor(n / (Y * Z)), Math.floor(n / Z) % Y, n % Z));
}

async function writeVolume(file, data, shape, dtype = 'f32') {
  const t = vg.tensor(data, shape, { dtype });
  await vg.io.writeNifti(file, t, { affine: AFFINE });
  t.dispose();
}

/** ACDC release layout for the given patients: {number, ed, es, nbFrame, group}. */
async function writeAcdc(root, split, patients, { skipGt } = {}) {
  for (const { n, ed, es, nb, group } of patients) {
    const name = `patient${String(n).padStart(3, '0')}`;
    const dir = path.join(root, split, name);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'Info.cfg'), `ED: ${ed}\nES: ${es}\nGroup: ${group}\nHeight: 180.0\nNbFrame: ${nb}\nWeight: 75.5\n`);
    for (const f of [ed, es]) {
      const ff = String(f).padStart(2, '0');
      await writeVolume(path.join(dir, `${name}_frame${ff}.nii.gz`), volume(imgValue, n, f), [X, Y, Z]);
      if (!(skipGt && f === es)) await writeVolume(path.join(dir, `${name}_frame${ff}_gt.nii.gz`), Int32Array.from(volume(labValue, n, f)), [X, Y, Z], 'i32');
    }
    // 4-D sequence [X, Y, Z, T] in nibabel's layout
    const seq = new Float32Array(X * Y * Z * nb);
    for (let f = 1; f <= nb; f++) volume(imgValue, n, f).forEach((v, idx) => (seq[idx * nb + (f - 1)] = v));
    await writeVolume(path.join(dir, `${name}_4d.nii.gz`), seq, [X, Y, Z, nb]);
  }
}

const sliceOf = (vol, k) => Array.from({ length: X * Y }, (_, n) => vol[n * Z + k]);

test('ACDCDataset: ED/ES volumes with labels, Info.cfg fields and geometry', async () => {
  const root = path.join(tmp, 'acdc');
  await writeAcdc(root, 'training', [{ n: 1, ed: 1, es: 3, nb: 4, group: 'DCM' }, { n: 2, ed: 2, es: 4, nb: 4, group: 'NOR' }]);
  await writeAcdc(root, 'testing', [{ n: 101, ed: 1, es: 2, nb: 3, group: 'HCM' }]);
  const ds = await vg.data.ACDCDataset.open(root);
  assert.is(ds.length, 4);
  assert.equal(ds.patients, ['patient001', 'patient002']);
  const expected = [[1, 1, 'ED'], [1, 3, 'ES'], [2, 2, 'ED'], [2, 4, 'ES']];
  for (let i = 0; i < ds.length; i++) {
    const it = await ds.get(i);
    const [p, f, phase] = expected[i];
    assert.is(it.patient, `patient00${p}`);
    assert.is(it.frame, f);
    assert.is(it.phase, phase);
    assert.is(it.slice, null);
    assert.is(it.group, p === 1 ? 'DCM' : 'NOR');
    assert.equal(it.info, { ed: p === 1 ? 1 : 2, es: p === 1 ? 3 : 4, nbFrame: 4, group: it.group, height: 180, weight: 75.5, fields: { ED: String(p === 1 ? 1 : 2), ES: String(p === 1 ? 3 : 4), Group: it.group, Height: '180.0', NbFrame: '4', Weight: '75.5' } });
    assert.equal(it.image.shape, [X, Y, Z]);
    assert.is(it.image.dtype, 'f32');
    assert.equal(Array.from(await it.image.data()), Array.from(volume(imgValue, p, f)));
    assert.is(it.label.dtype, 'i32');
    assert.equal(Array.from(await it.label.data()), Array.from(volume(labValue, p, f)));
    assert.equal(it.affine, AFFINE);
    assert.equal(it.spacing, SPACING);
    it.image.dispose();
    it.label.dispose();
  }
  const test1 = await vg.data.ACDCDataset.open(root, { split: 'testing' });
  assert.equal(test1.patients, ['patient101']);
  const it = await test1.get(1);
  assert.equal([it.frame, it.phase, it.group], [2, 'ES', 'HCM']);
  it.image.dispose();
  it.label.dispose();
});

test('ACDCDataset: slices (2-D items with slice affines), all frames, patient-level labeled split', async () => {
  const root = path.join(tmp, 'acdc');
  const ds = await vg.data.ACDCDataset.open(root, { slices: true, patients: [2, 'patient001'] });
  assert.is(ds.length, 2 * 2 * Z);
  // order: patient, phase, slice
  const it = await ds.get(Z + 2); // patient001, ES (frame 3), slice 2
  assert.equal([it.patient, it.phase, it.frame, it.slice], ['patient001', 'ES', 3, 2]);
  assert.equal(it.image.shape, [X, Y]);
  assert.equal(Array.from(await it.image.data()), sliceOf(volume(imgValue, 1, 3), 2));
  assert.equal(Array.from(await it.label.data()), sliceOf(volume(labValue, 1, 3), 2));
  // voxel (i, j) of slice k sits where voxel (i, j, k) of the volume does
  assert.equal(it.affine, [[0, -1.5, 0, 10], [1.25, 0, 0, -5], [0, 0, 8, 2 + 2 * 8], [0, 0, 0, 1]]);
  assert.equal(it.spacing, [1.25, 1.5]);
  it.image.dispose();
  it.label.dispose();

  const all = await vg.data.ACDCDataset.open(root, { frames: 'all', patients: [1] });
  assert.is(all.length, 4);
  for (let f = 1; f <= 4; f++) {
    const v = await all.get(f - 1);
    assert.equal([v.frame, v.phase], [f, f === 1 ? 'ED' : f === 3 ? 'ES' : null]);
    assert.equal(Array.from(await v.image.data()), Array.from(volume(imgValue, 1, f)), `frame ${f}`);
    if (v.phase) assert.equal(Array.from(await v.label.data()), Array.from(volume(labValue, 1, f)));
    else assert.is(v.label, null);
    v.image.dispose();
    v.label?.dispose();
  }
  const allSlices = await vg.data.ACDCDataset.open(root, { frames: 'all', slices: true, patients: [1], cacheSize: 0 });
  assert.is(allSlices.length, 4 * Z);
  const s = await allSlices.get(1 * Z + 1); // frame 2, slice 1
  assert.equal(Array.from(await s.image.data()), sliceOf(volume(imgValue, 1, 2), 1));
  s.image.dispose();

  // 1 of 2 patients labeled: whole patients on each side; without a seed the first patient (SSL4MIS convention)
  const split = ds.labeledPatients(1);
  assert.equal(split.patients, ['patient001']);
  assert.is(split.labeled.length, 2 * Z);
  assert.is(split.unlabeled.length, 2 * Z);
  assert.ok(split.labeled.indices.every((i) => ds.patientOf(i) === 'patient001'));
  assert.ok(split.unlabeled.indices.every((i) => ds.patientOf(i) === 'patient002'));
  const seeded = [0, 1, 2, 3, 4, 5].map((seed) => ds.labeledPatients(1, { seed }).patients[0]);
  assert.ok(seeded.includes('patient001') && seeded.includes('patient002'), `seeds pick both patients: ${seeded}`);
  assert.equal(ds.labeledPatients(1, { seed: 3 }).patients, ds.labeledPatients(1, { seed: 3 }).patients);
});

test('ACDCDataset: errors name the path, the line and the expected layout', async () => {
  const root = path.join(tmp, 'acdc-bad');
  const expectErr = async (fn, fragments) => {
    try {
      await fn();
    } catch (e) {
      for (const f of fragments) assert.ok(String(e.message).includes(f), `"${e.message}" lacks "${f}"`);
      return;
    }
    assert.unreachable('expected an error');
  };
  await expectErr(() => vg.data.ACDCDataset.open(root), ['ACDCDataset', path.join(root, 'training'), 'does not exist', 'patientNNN_frameFF_gt.nii.gz']);
  fs.mkdirSync(path.join(root, 'training'), { recursive: true });
  await expectErr(() => vg.data.ACDCDataset.open(root), ['holds none of patient001 ... patient100']);
  await writeAcdc(root, 'training', [{ n: 7, ed: 1, es: 2, nb: 2, group: 'RV' }], { skipGt: true });
  await expectErr(() => vg.data.ACDCDataset.open(root), ['patient007_frame02_gt.nii.gz', 'does not exist', 'requireLabels: false']);
  const lenient = await vg.data.ACDCDataset.open(root, { requireLabels: false });
  const es = await lenient.get(1);
  assert.is(es.label, null);
  es.image.dispose();
  const cfg = path.join(root, 'training', 'patient007', 'Info.cfg');
  fs.writeFileSync(cfg, 'ED: 1\nES two\nNbFrame: 2\n');
  await expectErr(() => vg.data.ACDCDataset.open(root, { requireLabels: false }), [cfg, 'line 2', '"ES two"', "'Key: value'"]);
  fs.writeFileSync(cfg, 'ED: 1\nES: 2\nNbFrame: thirty\n');
  await expectErr(() => vg.data.ACDCDataset.open(root, { requireLabels: false }), [cfg, 'line 3', "'NbFrame: thirty'", 'positive integer']);
  fs.writeFileSync(cfg, 'ED: 1\nNbFrame: 2\n');
  await expectErr(() => vg.data.ACDCDataset.open(root, { requireLabels: false }), [cfg, "no 'ES:' line"]);
  await expectErr(() => vg.data.ACDCDataset.open(root, { patients: ['p7'] }), ["'patient001'", 'p7']);
});

test('CAMUSDataset: views, phases, Info_*.cfg fields and labels', async () => {
  const root = path.join(tmp, 'camus');
  const W = 6, H = 5;
  const img2d = (p, v, ph) => Float32Array.from({ length: W * H }, (_, n) => p * 100 + v * 10 + ph + n / 4);
  const lab2d = (p, v, ph) => Int32Array.from({ length: W * H }, (_, n) => (p + v + ph + n) % 4);
  for (const p of [1, 3]) {
    const name = `patient${String(p).padStart(4, '0')}`;
    const dir = path.join(root, name);
    fs.mkdirSync(dir, { recursive: true });
    for (const [vi, view] of ['2CH', '4CH'].entries()) {
      fs.writeFileSync(path.join(dir, `Info_${view}.cfg`), `ED: 1\nES: ${10 + vi}\nNbFrame: ${12 + vi}\nSex: F\nAge: ${60 + p}\nImageQuality: Good\nEF: 55.5\nFrameRate: 30.0\n`);
      for (const [pi, phase] of ['ED', 'ES'].entries()) {
        const t = vg.tensor(img2d(p, vi, pi), [W, H]);
        await vg.io.writeNifti(path.join(dir, `${name}_${view}_${phase}.nii.gz`), t, { affine: [[0.3, 0, 0, 0], [0, 0.15, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]] });
        const l = vg.tensor(lab2d(p, vi, pi), [W, H], { dtype: 'i32' });
        await vg.io.writeNifti(path.join(dir, `${name}_${view}_${phase}_gt.nii.gz`), l, { datatype: 'uint8' });
        t.dispose();
        l.dispose();
      }
    }
  }
  const ds = await vg.data.CAMUSDataset.open(root);
  assert.is(ds.length, 2 * 2 * 2);
  assert.equal(ds.patients, ['patient0001', 'patient0003']);
  const it = await ds.get(4 + 3); // patient0003, 4CH, ES
  assert.equal([it.patient, it.view, it.phase], ['patient0003', '4CH', 'ES']);
  assert.equal(it.info, { ed: 1, es: 11, nbFrame: 13, sex: 'F', age: 63, imageQuality: 'Good', ef: 55.5, frameRate: 30, fields: { ED: '1', ES: '11', NbFrame: '13', Sex: 'F', Age: '63', ImageQuality: 'Good', EF: '55.5', FrameRate: '30.0' } });
  assert.equal(it.image.shape, [W, H]);
  assert.equal(Array.from(await it.image.data()), Array.from(img2d(3, 1, 1)));
  assert.equal(Array.from(await it.label.data()), Array.from(lab2d(3, 1, 1)));
  assert.ok(close(it.spacing, [0.3, 0.15], 1e-7));
  it.image.dispose();
  it.label.dispose();
  assert.equal(vg.data.CAMUS_LABELS, ['background', 'left ventricle', 'myocardium', 'left atrium']);

  const only = await vg.data.CAMUSDataset.open(root, { views: ['2CH'], phases: ['ES'], patients: [1] });
  assert.is(only.length, 1);
  const one = await only.get(0);
  assert.equal([one.view, one.phase, one.info.es], ['2CH', 'ES', 10]);
  one.image.dispose();
  one.label.dispose();
  fs.rmSync(path.join(root, 'patient0003', 'Info_4CH.cfg'));
  try {
    await vg.data.CAMUSDataset.open(root);
    assert.unreachable('missing cfg');
  } catch (e) {
    assert.ok(e.message.includes(path.join(root, 'patient0003', 'Info_4CH.cfg')) && e.message.includes('Info_2CH.cfg, Info_4CH.cfg'), e.message);
  }
});

test('LADataset: lgemri.nrrd + laendo.nrrd per case, 255 -> 1, cases from a list, a list file or the folder', async () => {
  const root = path.join(tmp, 'la');
  const sizes = [4, 3, 2];
  const ids = ['0RZDK210BSMWAA6467LU', '1D7CUD1955YZPGK8XHJX'];
  const imgVals = (c) => Array.from({ length: size(sizes) }, (_, i) => c * 50 + i);
  const labVals = (c) => Array.from({ length: size(sizes) }, (_, i) => ((i + c) % 3 === 0 ? 255 : 0));
  ids.forEach((id, c) => {
    fs.mkdirSync(path.join(root, id), { recursive: true });
    const geo = { dimension: 3, space: 'left-posterior-superior', sizes: sizes.join(' '), 'space directions': '(0.625,0,0) (0,0.625,0) (0,0,2.5)', 'space origin': '(-100,-120,40)', endian: 'little' };
    fs.writeFileSync(path.join(root, id, 'lgemri.nrrd'), nrrd({ type: 'unsigned char', ...geo, encoding: 'gzip' }, imgVals(c)));
    fs.writeFileSync(path.join(root, id, 'laendo.nrrd'), nrrd({ type: 'unsigned char', ...geo, encoding: 'gzip' }, labVals(c)));
  });
  const check = async (ds) => {
    assert.is(ds.length, 2);
    for (const [c, id] of ids.entries()) {
      const it = await ds.get(c);
      assert.equal([it.case, it.patient], [id, id]);
      assert.equal(Array.from(await it.image.data()), fileToRowMajor(imgVals(c), sizes));
      assert.is(it.label.dtype, 'i32');
      assert.equal(Array.from(await it.label.data()), fileToRowMajor(labVals(c).map((v) => v / 255), sizes));
      assert.equal(it.affine, [[-0.625, -0, -0, 100], [-0, -0.625, -0, 120], [0, 0, 2.5, 40], [0, 0, 0, 1]]);
      assert.equal(it.spacing, [0.625, 0.625, 2.5]);
      it.image.dispose();
      it.label.dispose();
    }
  };
  await check(await vg.data.LADataset.open(root, { cases: ids }));
  fs.writeFileSync(path.join(tmp, 'train.list'), ids.join('\n') + '\n');
  await check(await vg.data.LADataset.open(root, { listFile: path.join(tmp, 'train.list') }));
  try {
    await vg.data.LADataset.open(root, { cases: ['MISSING'] });
    assert.unreachable('missing case');
  } catch (e) {
    assert.ok(e.message.includes(path.join(root, 'MISSING', 'lgemri.nrrd')) && e.message.includes('laendo.nrrd'), e.message);
  }
  // without a list, the cases are root's folders
  await check(await vg.data.LADataset.open(root));
  // a label value other than 0/1/255 is not a left-atrium mask
  fs.writeFileSync(path.join(root, ids[0], 'laendo.nrrd'), nrrd({ type: 'uchar', dimension: 3, sizes: sizes.join(' '), encoding: 'raw' }, labVals(0).map((v, i) => (i === 5 ? 7 : v))));
  const ds = await vg.data.LADataset.open(root, { cases: [ids[0]] });
  try {
    await ds.get(0);
    assert.unreachable('bad label');
  } catch (e) {
    assert.ok(e.message.includes('laendo.nrrd') && e.message.includes('value 7'), e.message);
  }
});

test.run();
