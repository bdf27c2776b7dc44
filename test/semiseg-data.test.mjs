// The semi-supervised splits of the ACDC and LA releases (vg.data.acdcSemiSegSplit, laSemiSegSplit) on tiny files
// written in their layouts: the papers' labelled patients, patient-level test/unlabelled parts, resizing.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setup, vg } from './helpers.mjs';
import { rejectsWith } from './io-helpers.mjs';

test.before(setup);
let tmp;
test.before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-semiseg-'));
});
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const [X, Y, Z] = [8, 6, 2];
/** Patient n's volume: intensity n + voxel index; label by quadrant (0..3). */
const image = (n) => Float32Array.from({ length: X * Y * Z }, (_, i) => n + i);
const label = () => Int32Array.from({ length: X * Y * Z }, (_, i) => (Math.floor(i / (Y * Z)) < X / 2 ? 0 : 1) + (Math.floor(i / Z) % Y < Y / 2 ? 0 : 2));

async function writeAcdcPatient(root, n) {
  const name = `patient${String(n).padStart(3, '0')}`;
  const dir = path.join(root, 'training', name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'Info.cfg'), 'ED: 1\nES: 5\nNbFrame: 10\n');
  for (const f of ['01', '05']) {
    const img = vg.tensor(image(n), [X, Y, Z]);
    const lab = vg.tensor(label(), [X, Y, Z], { dtype: 'i32' });
    await vg.io.writeNifti(path.join(dir, `${name}_frame${f}.nii.gz`), img);
    await vg.io.writeNifti(path.join(dir, `${name}_frame${f}_gt.nii.gz`), lab);
    img.dispose();
    lab.dispose();
  }
}

test('acdcSemiSegSplit: the papers\' labelled patients, the last 20 % of the others tested, 10 % held out, slices resized', async () => {
  const root = path.join(tmp, 'acdc');
  const ids = [1, 2, 3, 21, 38, 49, 50, 58, 99, 100];
  for (const n of ids) await writeAcdcPatient(root, n);
  const s = await vg.data.acdcSemiSegSplit(root, { labeled: 3, size: 16 });
  // 099, 038, 050 labelled; of 001, 002, 003, 021, 049, 058, 100: test 058, 100; held out 049; unlabelled the rest
  assert.equal(s.labeled.image.shape, [3 * 2 * Z, 1, 16, 16]);
  assert.equal(s.unlabeled.image.shape, [4 * 2 * Z, 1, 16, 16]);
  assert.equal(s.test.label.shape, [2 * 2 * Z, 16, 16]);
  const im = await s.labeled.image.data();
  assert.ok(Math.min(...im) >= 0 && Math.max(...im) <= 1 + 1e-6, 'min-max normalised');
  assert.equal([...new Set(await s.test.label.data())].sort(), [0, 1, 2, 3]);
  for (const p of Object.values(s)) (p.image.dispose(), p.label.dispose());
  await rejectsWith(() => vg.data.acdcSemiSegSplit(root, { labeled: 8, size: 16 }), ['acdcSemiSegSplit', 'labeled must be 1 to 7', 'got 8']);
  fs.rmSync(path.join(root, 'training', 'patient050'), { recursive: true });
  await rejectsWith(() => vg.data.acdcSemiSegSplit(root, { labeled: 3, size: 16 }), ['acdcSemiSegSplit', 'lacks the labelled patient(s) patient050']);
});

test('laSemiSegSplit: cases in name order, the first N labelled, the last 20 % tested, volumes resized', async () => {
  const root = path.join(tmp, 'la');
  const names = ['A1', 'B2', 'C3', 'D4', 'E5'];
  names.forEach((c, k) => {
    fs.mkdirSync(path.join(root, c), { recursive: true });
    const raw = (vals) => Buffer.concat([Buffer.from(`NRRD0004\ntype: unsigned char\ndimension: 3\nsizes: ${X} ${Y} ${Z}\nencoding: raw\n\n`), Buffer.from(vals)]);
    fs.writeFileSync(path.join(root, c, 'lgemri.nrrd'), raw(Array.from({ length: X * Y * Z }, (_, i) => (i * 3 + k) % 200)));
    fs.writeFileSync(path.join(root, c, 'laendo.nrrd'), raw(Array.from({ length: X * Y * Z }, (_, i) => (i % 4 === 0 ? 255 : 0))));
  });
  const s = await vg.data.laSemiSegSplit(root, { labeled: 2, size: 16 });
  assert.equal(s.labeled.image.shape, [2, 1, 16, 16, 16]);
  assert.equal(s.unlabeled.image.shape, [2, 1, 16, 16, 16]);
  assert.equal(s.test.label.shape, [1, 16, 16, 16]);
  assert.equal([...new Set(await s.test.label.data())].sort(), [0, 1]);
  for (const p of Object.values(s)) (p.image.dispose(), p.label.dispose());
  await rejectsWith(() => vg.data.laSemiSegSplit(root, { labeled: 4, size: 16 }), ['laSemiSegSplit', 'labeled must be an integer in [1, 3]', 'got 4']);
});

test('seg recipe: --data acdc or la without --root is named', async () => {
  await rejectsWith(() => vg.methods.seg.train({ config: { data: 'acdc' } }), ['seg', '--data acdc needs --root DIR']);
});

test.run();
