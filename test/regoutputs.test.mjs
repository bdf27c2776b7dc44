// Registration outputs: displacement fields as vector NIfTI (header and LPS vectors against nibabel/numpy float64
// references from test/fixtures/gen_regoutputs.py, a known physical displacement, round trips, consistency with
// spatialTransform), the figures (Middlebury wheel, warped grid, Jacobian map, colormaps, overlay, tiling), and the
// CSV/Markdown writers.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fixtureRef, loadFixtures } from './fixtures.mjs';
import { Ref, assertClose, assertThrowsWith, rng, setup, vg } from './helpers.mjs';

test.before(setup);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-reg-'));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const cases = loadFixtures('regoutputs');

async function rejectsWith(fn, fragments) {
  let err;
  try {
    await fn();
  } catch (e) {
    err = e;
  }
  assert.ok(err, 'expected an error');
  assert.instance(err, vg.VoxgradError, `expected a VoxgradError, got ${err}`);
  for (const f of fragments) assert.ok(err.message.includes(f), `error message lacks "${f}": ${err.message}`);
}

/** NIfTI-1 header fields and the float32 voxel data (file order, x fastest) of uncompressed bytes, read by offset. */
function parseNifti(bytes) {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dim = Array.from({ length: 8 }, (_, i) => v.getInt16(40 + 2 * i, true));
  const count = dim.slice(1, dim[0] + 1).reduce((a, b) => a * b, 1);
  const voxOffset = v.getFloat32(108, true);
  return {
    dim,
    pixdim: Array.from({ length: 8 }, (_, i) => v.getFloat32(76 + 4 * i, true)),
    intentCode: v.getInt16(68, true),
    datatype: v.getInt16(70, true),
    bitpix: v.getInt16(72, true),
    qformCode: v.getInt16(252, true),
    sformCode: v.getInt16(254, true),
    xyztUnits: bytes[123],
    intentName: String.fromCharCode(...bytes.subarray(328, 344)).replace(/\0.*$/s, ''),
    sform: [0, 1, 2].map((r) => [0, 1, 2, 3].map((c) => v.getFloat32(280 + (r * 4 + c) * 4, true))).concat([[0, 0, 0, 1]]),
    data: new Float32Array(Uint8Array.prototype.slice.call(bytes, voxOffset, voxOffset + 4 * count).buffer), // a copy, also for Buffers
  };
}

/** Value of a C-order [X, Y, Z(, ...)] array at file offset f (x fastest): converts file order to C order. */
function fileToC(fileData, shape) {
  const out = new Float64Array(fileData.length);
  const n = shape.length;
  const idx = new Array(n).fill(0);
  for (let f = 0; f < fileData.length; f++) {
    let c = 0;
    for (let a = 0; a < n; a++) c = c * shape[a] + idx[a];
    out[c] = fileData[f];
    for (let a = 0; a < n; a++) {
      if (++idx[a] < shape[a]) break;
      idx[a] = 0;
    }
  }
  return out;
}

const inv3 = (m) => {
  const [[a, b, c], [d, e, f], [g, h, i]] = m;
  const det = a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g);
  return [
    [(e * i - f * h) / det, (c * h - b * i) / det, (b * f - c * e) / det],
    [(f * g - d * i) / det, (a * i - c * g) / det, (c * d - a * f) / det],
    [(d * h - e * g) / det, (b * g - a * h) / det, (a * e - b * d) / det],
  ];
};

// ---- displacement NIfTI -----------------------------------------------------------------------------------------

test('itk convention: header fields as nibabel writes a vector NIfTI, LPS vectors match the float64 reference', async () => {
  for (const c of cases) {
    const flow = fixtureRef(c.flow).toTensor();
    const h = parseNifti(await vg.io.encodeDisplacementNifti(flow, { affine: c.affine, convention: 'itk' }));
    const ref = c.header;
    assert.equal(h.dim, ref.dim, `${c.name}: dim`);
    for (let i = 0; i < 8; i++) assert.ok(Math.abs(h.pixdim[i] - ref.pixdim[i]) <= 1e-6 * Math.abs(ref.pixdim[i]), `${c.name}: pixdim[${i}] ${h.pixdim[i]} vs ${ref.pixdim[i]}`);
    assert.is(h.intentCode, 1007, `${c.name}: intent`);
    assert.is(h.intentCode, ref.intent_code);
    assert.is(h.datatype, ref.datatype);
    assert.is(h.bitpix, ref.bitpix);
    assert.is(h.sformCode, ref.sform_code);
    assert.is(h.qformCode, ref.qform_code);
    assert.is(h.xyztUnits, ref.xyzt_units);
    assert.equal(h.sform, ref.sform, `${c.name}: sform (float32, bit-identical)`);
    const lps = fixtureRef(c.lps);
    const got = fileToC(h.data, lps.shape);
    // f32 products and sums of |A| ≤ 1.4 times |u| ≤ 2: a few ulps of ~6 mm.
    for (let i = 0; i < got.length; i++) assert.ok(Math.abs(got[i] - lps.data[i]) <= 3e-6, `${c.name}: value ${i}: ${got[i]} vs ${lps.data[i]}`);
  }
});

test('a known physical displacement on an oblique anisotropic grid: 2 mm towards R is (-2, 0, 0) in LPS, (2, 0, 0) in RAS', async () => {
  const A = cases[0].affine;
  const Ainv = inv3(A.slice(0, 3).map((r) => r.slice(0, 3)));
  const shape = [4, 3, 2];
  const n = 24;
  for (const [world, lpsWant] of [[[2, 0, 0], [-2, 0, 0]], [[0, 3, 0], [0, -3, 0]], [[0, 0, -1.5], [0, 0, -1.5]]]) {
    const u = Ainv.map((row) => row.reduce((s, v, k) => s + v * world[k], 0)); // voxels
    const flow = vg.tensor(u.flatMap((x) => new Array(n).fill(x)), [3, ...shape]);
    for (const [convention, want, intent] of [['itk', lpsWant, 1007], ['ras', world, 1006]]) {
      const h = parseNifti(await vg.io.encodeDisplacementNifti(flow, { affine: A, convention }));
      assert.is(h.intentCode, intent);
      for (let c = 0; c < 3; c++)
        for (let k = 0; k < n; k++) {
          const got = h.data[c * n + k];
          assert.ok(Math.abs(got - want[c]) <= 2e-6, `${convention} ${world}: component ${c} = ${got}, expected ${want[c]}`);
        }
    }
  }
});

test('round trips: itk and ras exact to f32, voxel bit-exact, 2-D and 3-D, .nii and .nii.gz, batched input', async () => {
  const r = rng(3);
  for (const c of cases) {
    const ref = fixtureRef(c.flow);
    const flow = ref.toTensor();
    const batched = vg.reshape(flow, [1, ...ref.shape]);
    for (const convention of ['itk', 'ras', 'voxel']) {
      for (const ext of ['.nii', '.nii.gz']) {
        const p = path.join(tmp, `rt-${convention}-${ref.shape.length}${ext}`);
        await vg.io.writeDisplacementNifti(p, convention === 'ras' ? batched : flow, { affine: c.affine, convention });
        const back = await vg.io.readDisplacementNifti(p);
        assert.is(back.convention, convention);
        assert.equal(back.affine, c.affine, 'affine (the float32 values given) comes back');
        // voxel: stored as given; itk/ras: two f32 3×3 products through a well-conditioned matrix
        await assertClose(back.flow, ref.f32(), { rtol: 0, atol: convention === 'voxel' ? 0 : 4e-6, msg: `${c.name} ${convention}${ext}` });
      }
    }
  }
  // spacing instead of an affine: a diagonal grid
  const u = Ref.random([3, 3, 4, 2], r, -3, 3);
  const p = path.join(tmp, 'spacing.nii');
  await vg.io.writeDisplacementNifti(p, u.toTensor(), { spacing: [0.5, 2, 0.25], convention: 'itk' });
  const back = await vg.io.readDisplacementNifti(p);
  assert.equal(back.spacing, [0.5, 2, 0.25]);
  await assertClose(back.flow, u.f32(), { rtol: 0, atol: 0, msg: 'power-of-two spacing: exact' });
  const h = parseNifti(fs.readFileSync(p));
  // file order: component 0 first, x fastest over [3, 4, 2]; LPS x = -(0.5 mm) · u_0
  const want = Array.from({ length: 24 }, (_, f) => -0.5 * Math.fround(u.data[((f % 3) * 4 + (Math.floor(f / 3) % 4)) * 2 + Math.floor(f / 12)]));
  assert.equal([...h.data.slice(0, 24)], want, 'x component in LPS = -0.5 mm per voxel');
});

test('reader: [X, Y, Z, 3] voxel files with an explicit convention; unknown intent asks for one', async () => {
  const r = rng(9);
  const u = Ref.random([3, 3, 2, 4], r);
  // A Learn2Reg-style file: [X, Y, Z, 3] voxel displacements, no intent.
  const p = path.join(tmp, 'l2r.nii.gz');
  await vg.io.writeNifti(p, vg.permute(u.toTensor(), [1, 2, 3, 0]), { spacing: [1, 1, 1] });
  await rejectsWith(() => vg.io.readDisplacementNifti(p), ['intent code 0', "convention: 'itk' | 'ras' | 'voxel'"]);
  const back = await vg.io.readDisplacementNifti(p, { convention: 'voxel' });
  await assertClose(back.flow, u.f32(), { rtol: 0, atol: 0 });
  const q = path.join(tmp, 'scalar.nii');
  await vg.io.writeNifti(q, vg.zeros([3, 4, 5]), { spacing: [1, 1, 1] });
  await rejectsWith(() => vg.io.readDisplacementNifti(q, { convention: 'itk' }), ['dims [3, 4, 5]', '[X, Y, Z, 1, 3]']);
});

test('consistency with warping: world displacement from the file moves voxel centres where spatialTransform pulls from', async () => {
  // Axis-aligned, anisotropic, x flipped (an LPS-like grid in RAS terms) and offset.
  const A = [[-1.5, 0, 0, 10], [0, 0.75, 0, -4], [0, 0, 2, 3], [0, 0, 0, 1]];
  const shape = [7, 6, 5];
  const r = rng(21);
  const u = Ref.random([3, ...shape], r, -0.9, 0.9);
  const p = path.join(tmp, 'warp.nii.gz');
  await vg.io.writeDisplacementNifti(p, u.toTensor(), { affine: A, convention: 'itk' });
  const file = await vg.io.readNifti(p); // generic reader: [X, Y, Z, 1, 3] LPS mm
  const lps = await file.tensor.data();
  // moving image linear in voxel coordinates: trilinear interpolation is exact inside the grid
  const m = (i, j, k) => 3 * i - 2 * j + 5 * k + 1;
  const vol = new Ref(Array.from({ length: 210 }, (_, f) => m(Math.floor(f / 30), Math.floor(f / 5) % 6, f % 5)), [1, 1, ...shape]);
  const moved = await vg.spatialTransform(vol.toTensor(), vg.reshape(u.f32().toTensor(), [1, 3, ...shape])).data();
  let checked = 0;
  for (let i = 0; i < 7; i++)
    for (let j = 0; j < 6; j++)
      for (let k = 0; k < 5; k++) {
        const v = (i * 6 + j) * 5 + k;
        const ras = [-lps[v * 3], -lps[v * 3 + 1], lps[v * 3 + 2]];
        const world = [0, 1, 2].map((a) => A[a][0] * i + A[a][1] * j + A[a][2] * k + A[a][3] + ras[a]);
        const q = [0, 1, 2].map((a) => (world[a] - A[a][3]) / A[a][a]); // back to voxels (diagonal A)
        if (q.some((x, a) => x < 0 || x > shape[a] - 1)) continue;
        checked++;
        assert.ok(Math.abs(moved[v] - m(...q)) <= 1e-4, `voxel ${[i, j, k]}: spatialTransform ${moved[v]}, world map ${m(...q)}`);
      }
  assert.ok(checked > 60, `${checked} interior voxels checked`);
});

test('displacementToWorld / displacementFromWorld: RAS and LPS, inverse of each other', async () => {
  const A = cases[0].affine;
  const r = rng(5);
  const u = Ref.random([3, 2, 3, 2], r);
  const M = A.slice(0, 3).map((row) => row.slice(0, 3));
  const want = new Ref(Array.from({ length: u.data.length }, (_, f) => {
    const c = Math.floor(f / 12);
    return [0, 1, 2].reduce((s, k) => s + M[c][k] * Math.fround(u.data[k * 12 + (f % 12)]), 0);
  }), u.shape);
  const ras = vg.io.displacementToWorld(u.toTensor(), A);
  await assertClose(ras, want, { rtol: 1e-6, atol: 1e-6 });
  const lps = vg.io.displacementToWorld(u.toTensor(), A, { space: 'LPS' });
  await assertClose(lps, new Ref(want.data.map((v, f) => (f < 24 ? -v : v)), u.shape), { rtol: 1e-6, atol: 1e-6 });
  await assertClose(vg.io.displacementFromWorld(lps, A, { space: 'LPS' }), u.f32(), { rtol: 0, atol: 3e-6 });
});

test('displacement errors name the argument and the fix', async () => {
  const flow = vg.zeros([3, 4, 4, 4]);
  const A = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]];
  await rejectsWith(() => vg.io.encodeDisplacementNifti(flow, { affine: A, convention: 'mm' }), ["convention must be 'itk'", 'got string mm']);
  await rejectsWith(() => vg.io.encodeDisplacementNifti(flow, { convention: 'itk' }), ['give the grid\'s affine']);
  await rejectsWith(() => vg.io.encodeDisplacementNifti(vg.zeros([4, 4, 4, 4]), { affine: A, convention: 'itk' }), ['[ndim, *spatial]', '[4, 4, 4, 4]']);
  await rejectsWith(() => vg.io.encodeDisplacementNifti(flow, { affine: [[1, 0.5, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], convention: 'itk' }), ['sheared']);
  await rejectsWith(() => vg.io.encodeDisplacementNifti(vg.zeros([3, 4, 4, 1]), { affine: A, convention: 'itk' }), ['2-D image']);
  await rejectsWith(() => vg.io.encodeDisplacementNifti(vg.zeros([2, 4, 4]), { affine: [[0, 0, 1, 0], [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1]], convention: 'itk' }), ['in-plane axes', 'affine[2][0]']);
  await rejectsWith(() => vg.io.writeDisplacementNifti('out.nrrd', flow, { affine: A, convention: 'itk' }), ['.nii or .nii.gz']);
  assertThrowsWith(() => vg.io.displacementToWorld(flow, A, { space: 'XYZ' }), ["space must be 'RAS' or 'LPS'"]);
});

// ---- figures ------------------------------------------------------------------------------------------------------

/** flow_vis's colour for (u right, v down), unfloored, from the published wheel segments (RY 15, YG 6, GC 4, CB 11, BM 13, MR 6). */
function middlebury(u, v, maxNorm) {
  const wheel = [];
  const ramp = (i, n) => Math.floor((255 * i) / n);
  for (let i = 0; i < 15; i++) wheel.push([255, ramp(i, 15), 0]);
  for (let i = 0; i < 6; i++) wheel.push([255 - ramp(i, 6), 255, 0]);
  for (let i = 0; i < 4; i++) wheel.push([0, 255, ramp(i, 4)]);
  for (let i = 0; i < 11; i++) wheel.push([0, 255 - ramp(i, 11), 255]);
  for (let i = 0; i < 13; i++) wheel.push([ramp(i, 13), 0, 255]);
  for (let i = 0; i < 6; i++) wheel.push([255, 0, 255 - ramp(i, 6)]);
  const rad = Math.hypot(u, v) / maxNorm;
  const a = Math.atan2(-v, -u) / Math.PI;
  const fk = ((a + 1) / 2) * 54;
  const k0 = Math.floor(fk);
  const k1 = k0 + 1 === 55 ? 0 : k0 + 1;
  const f = fk - k0;
  return [0, 1, 2].map((ch) => {
    const col = ((1 - f) * wheel[k0][ch] + f * wheel[k1][ch]) / 255;
    return 255 * (rad <= 1 ? 1 - rad * (1 - col) : col * 0.75);
  });
}

test('flowColor: Middlebury wheel directions (+x red), saturation by magnitude, default maxNorm = largest magnitude', async () => {
  // [down, right] displacement per pixel
  const vecs = [[0, 1], [1, 0], [0, -1], [-1, 0], [0.6, 0.8], [-0.28, 0.96], [0, 0.5], [0, 0], [0.3, -0.4], [2, 0]];
  const flow = vg.tensor([...vecs.map((d) => d[0]), ...vecs.map((d) => d[1])], [2, 1, vecs.length]);
  const got = await vg.io.flowColor(flow, { maxNorm: 1 }).data();
  const hard = { 0: [255, 0, 0], 1: [255, (221 + 238) / 2, 0], 2: [0, 209, 255], 3: [88, 0, 255], 6: [255, 127.5, 127.5], 7: [255, 255, 255] };
  vecs.forEach(([v, u], p) => {
    const want = middlebury(u, v, 1);
    for (let ch = 0; ch < 3; ch++) {
      assert.ok(Math.abs(got[p * 3 + ch] - want[ch]) <= 2e-3, `pixel ${p} (${u}, ${v}) ch ${ch}: ${got[p * 3 + ch]} vs ${want[ch]}`);
      if (hard[p]) assert.ok(Math.abs(got[p * 3 + ch] - hard[p][ch]) <= 2e-3, `pixel ${p} ch ${ch}: ${got[p * 3 + ch]} vs ${hard[p][ch]}`);
    }
  });
  // default normalisation: the largest magnitude (2, pixel 9) is fully saturated, pure +y: hue of fk = 13.5
  const def = await vg.io.flowColor(vg.reshape(flow, [1, 2, 1, vecs.length])).data();
  vecs.forEach(([v, u], p) => {
    const want = middlebury(u, v, 2);
    for (let ch = 0; ch < 3; ch++) assert.ok(Math.abs(def[p * 3 + ch] - want[ch]) <= 2e-3, `default max, pixel ${p} ch ${ch}`);
  });
  assert.equal(vg.io.flowColor(vg.zeros([2, 3, 4])).shape, [3, 4, 3]);
});

test('deformationGrid: zero flow gives straight lines at the spacing; a pull of +2 columns moves them 2 columns left', async () => {
  const [H, W] = [19, 21];
  const zero = await vg.io.deformationGrid(vg.zeros([2, H, W])).data();
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) {
      const want = y % 8 === 0 || x % 8 === 0 ? 0 : 255;
      for (let ch = 0; ch < 3; ch++) assert.is(zero[(y * W + x) * 3 + ch], want, `(${y}, ${x})`);
    }
  const shift = vg.cat([vg.zeros([1, H, W]), vg.full([1, H, W], 2)], 0);
  const moved = await vg.io.deformationGrid(shift, { spacing: 6, color: [10, 20, 30] }).data();
  for (let y = 1; y < H; y++)
    for (let x = 0; x < W - 2; x++) {
      const line = y % 6 === 0 || (x + 2) % 6 === 0;
      assert.equal([...moved.slice((y * W + x) * 3, (y * W + x) * 3 + 3)], line ? [10, 20, 30] : [255, 255, 255], `(${y}, ${x})`);
    }
  // over an image: the background is the image windowed to [0, 255]
  const img = vg.reshape(vg.arange(0, H * W, 1, { dtype: 'f32' }), [H, W]);
  const over = await vg.io.deformationGrid(vg.zeros([2, H, W]), { image: img }).data();
  const p = 3 * W + 5;
  assert.ok(Math.abs(over[p * 3] - (255 * p) / (H * W - 1)) < 1e-3, 'background pixel = windowed image');
  assert.equal([...over.slice(0, 3)], [255, 200, 0], 'line over an image: default colour');
});

test('jacobianMap: identity is neutral white, expansion red, compression blue, folding in the fold colour', async () => {
  const [H, W] = [6, 7];
  const ident = await vg.io.jacobianMap(vg.zeros([2, H, W])).data();
  assert.ok(ident.every((v) => v === 255), 'identity → white');
  const ramp = (s) => vg.cat([vg.zeros([1, H, W]), vg.mul(vg.reshape(vg.arange(0, W, 1, { dtype: 'f32' }), [1, 1, W]).expand([1, H, W]), s)], 0);
  // u_W = s · x: det = 1 + s everywhere (linear field, np.gradient exact also at the borders)
  const grow = await vg.io.jacobianMap(ramp(0.5)).data();
  const shrink = await vg.io.jacobianMap(ramp(-0.25), { range: 0.5 }).data();
  const fold = await vg.io.jacobianMap(ramp(-1.5)).data();
  const mix = (c, t) => c.map((v) => 255 + t * (v - 255));
  const { grow: red, shrink: blue } = vg.io.JACOBIAN_COLORS;
  for (let p = 0; p < H * W; p++) {
    for (let ch = 0; ch < 3; ch++) {
      assert.ok(Math.abs(grow[p * 3 + ch] - mix(red, 0.5)[ch]) < 1e-3, `det 1.5 pixel ${p}`);
      assert.ok(Math.abs(shrink[p * 3 + ch] - mix(blue, 0.5)[ch]) < 1e-3, `det 0.75, range 0.5, pixel ${p}`);
    }
    assert.equal([...fold.slice(p * 3, p * 3 + 3)], [255, 255, 0], `det -0.5 pixel ${p}`);
  }
});

test('heatmap: viridis and magma at their knots (matplotlib values), clamped outside min/max', async () => {
  const knots = {
    viridis: [[0.267004, 0.004874, 0.329415], [0.127568, 0.566949, 0.550556], [0.993248, 0.906157, 0.143936]],
    magma: [[0.001462, 0.000466, 0.013866], [0.716387, 0.214982, 0.47529], [0.987053, 0.991438, 0.749504]],
  };
  const x = vg.tensor([0, 0.5, 1, -3, 7], [1, 5]);
  for (const colormap of ['viridis', 'magma']) {
    const got = await vg.io.heatmap(x, { min: 0, max: 1, colormap }).data();
    [0, 1, 2, 0, 2].forEach((k, p) => {
      for (let ch = 0; ch < 3; ch++)
        assert.ok(Math.abs(got[p * 3 + ch] - 255 * knots[colormap][k][ch]) < 0.02, `${colormap} pixel ${p} ch ${ch}: ${got[p * 3 + ch]}`);
    });
  }
  // default window: the data's min and max
  const def = await vg.io.heatmap(vg.tensor([2, 4, 6], [1, 3])).data();
  assert.ok(Math.abs(def[3 + 1] - 255 * 0.566949) < 0.02);
});

test('overlay: PNG_PALETTE tints labels (l − 1) % 12 at alpha over the windowed image; 0 stays clear', async () => {
  const img = vg.tensor([0, 10, 20, 30, 40, 50], [2, 3]);
  const lab = vg.tensor([0, 1, 2, 13, 12, 0], [2, 3], { dtype: 'i32' });
  const got = await vg.io.overlay(img, lab, { alpha: 0.25 }).data();
  const pal = vg.io.PNG_PALETTE;
  const want = [null, pal[0], pal[1], pal[0], pal[11], null];
  want.forEach((c, p) => {
    const g = (255 * p) / 5;
    for (let ch = 0; ch < 3; ch++) {
      const w = c ? 0.75 * g + 0.25 * c[ch] : g;
      assert.ok(Math.abs(got[p * 3 + ch] - w) < 1e-3, `pixel ${p} ch ${ch}: ${got[p * 3 + ch]} vs ${w}`);
    }
  });
});

test('figures free their intermediates: only the returned image stays alive (inputs given with leading 1-axes)', async () => {
  const img = vg.rand([1, 1, 6, 5]);
  const lab = vg.zeros([1, 6, 5], { dtype: 'i32' });
  const flow = vg.zeros([1, 2, 6, 5]);
  const makers = {
    overlay: () => vg.io.overlay(img, lab),
    heatmap: () => vg.io.heatmap(img),
    flowColor: () => vg.io.flowColor(flow),
    deformationGrid: () => vg.io.deformationGrid(flow, { image: img, spacing: 3 }),
    jacobianMap: () => vg.io.jacobianMap(flow),
  };
  for (const [name, make] of Object.entries(makers)) {
    const live = vg.memory().liveTensors;
    const out = make();
    // the 2-D views of the inputs leaked, one per input, before they were made inside the tidy scope
    assert.is(vg.memory().liveTensors, live + 1, `${name}: tensors alive besides its result`);
    out.dispose();
  }
  for (const t of [img, lab, flow]) t.dispose();
});

test('figureGrid: exact tiling positions, background, titles in the 5x7 font', async () => {
  const panel = (h, w, level) => ({ rgb: vg.full([h, w, 3], level) });
  const out = vg.io.figureGrid([[panel(3, 4, 10), panel(5, 2, 20)], [panel(2, 6, 30), null]], { pad: 2, background: 200 });
  // columns 6 and 2 wide, rows 5 and 2 high
  assert.equal(out.shape, [2 + 5 + 2 + 2 + 2, 2 + 6 + 2 + 2 + 2, 3]);
  const px = await out.data();
  const W = out.shape[1];
  const at = (y, x) => px[(y * W + x) * 3];
  for (let y = 0; y < out.shape[0]; y++)
    for (let x = 0; x < W; x++) {
      let want = 200;
      if (y >= 2 && y < 5 && x >= 2 && x < 6) want = 10;
      if (y >= 2 && y < 7 && x >= 10 && x < 12) want = 20;
      if (y >= 9 && y < 11 && x >= 2 && x < 8) want = 30;
      assert.is(at(y, x), want, `(${y}, ${x})`);
    }
  // Titles: a band of (7 + 3) rows above each row of panels; 'I' is .###. on its first glyph row, one row into the band.
  const titled = vg.io.figureGrid([[{ title: 'I', rgb: vg.full([4, 8, 3], 100) }]], { pad: 1 });
  assert.equal(titled.shape, [1 + 10 + 4 + 1, 1 + 8 + 1, 3]);
  const t = await titled.data();
  const tw = titled.shape[1];
  const row = (y) => [...Array(6).keys()].map((x) => t[(y * tw + 1 + x) * 3]);
  assert.equal(row(1), [255, 255, 255, 255, 255, 255], 'top margin of the band');
  assert.equal(row(2), [255, 0, 0, 0, 255, 255], "'I' top bar");
  assert.equal(row(3), [255, 255, 0, 255, 255, 255], "'I' stem");
  assert.is(t[(11 * tw + 1) * 3], 100, 'panel starts below the band');
});

test('figure errors name the argument', () => {
  assertThrowsWith(() => vg.io.flowColor(vg.zeros([3, 4, 4])), ['flowColor', 'flow must be a 2-D displacement field', '[3, 4, 4]']);
  assertThrowsWith(() => vg.io.flowColor(vg.zeros([2, 4, 4]), { maxNorm: 0 }), ['maxNorm must be a positive number']);
  assertThrowsWith(() => vg.io.deformationGrid(vg.zeros([2, 4, 4]), { spacing: 1 }), ['spacing must be an integer ≥ 2']);
  assertThrowsWith(() => vg.io.deformationGrid(vg.zeros([2, 4, 4]), { image: vg.zeros([4, 5]) }), ["image must have the flow's spatial shape [4, 4]"]);
  assertThrowsWith(() => vg.io.heatmap(vg.zeros([4, 4]), { colormap: 'jet' }), ["colormap must be 'viridis' or 'magma'"]);
  assertThrowsWith(() => vg.io.overlay(vg.zeros([4, 4]), vg.zeros([4, 3])), ["label must have the image's shape [4, 4]"]);
  assertThrowsWith(() => vg.io.figureGrid([[{ rgb: vg.zeros([4, 4]) }]]), ['panels[0][0].rgb must be an f32 Tensor [H, W, 3]', '[4, 4]']);
  assertThrowsWith(() => vg.io.jacobianMap(vg.zeros([2, 4, 4]), { foldColor: [0, 0] }), ['foldColor must be an [r, g, b] list']);
});

// ---- tables -------------------------------------------------------------------------------------------------------

test('CSV: RFC 4180 quoting, CRLF, union of columns, inf/nan as Python reads them, atomic write', async () => {
  const rows = [
    { case: 'p01', dice: 0.9123, note: 'a,b' },
    { case: 'p"02"', dice: Infinity, hd95: NaN },
    { case: 'line\nbreak', dice: -Infinity, hd95: 1.5 },
  ];
  const text = vg.io.toCsv(rows);
  assert.is(text, 'case,dice,note,hd95\r\np01,0.9123,"a,b",\r\n"p""02""",inf,,nan\r\n"line\nbreak",-inf,,1.5\r\n');
  assert.is(vg.io.toCsv(rows, { columns: ['dice', 'case'] }).split('\r\n')[1], '0.9123,p01');
  const p = path.join(tmp, 'results.csv');
  await vg.io.writeCsv(p, rows);
  assert.is(fs.readFileSync(p, 'utf8'), text);
  assertThrowsWith(() => vg.io.toCsv([{ a: [1] }]), ['rows[0].a must be a number or a string']);
});

test('markdownTable and meanSd', () => {
  const md = vg.io.markdownTable([{ method: 'MSE', dice: 0.81234, p: 0.0004 }, { method: 'a|b', dice: 0.9, p: 1 }], { format: 3 });
  assert.is(md, '| method | dice | p |\n| --- | ---: | ---: |\n| MSE | 0.812 | 0.000 |\n| a\\|b | 0.900 | 1.000 |\n');
  const custom = vg.io.markdownTable([{ k: 'x', v: 0.5 }], { columns: ['v', 'k'], format: (v, c) => `${c}=${v}` });
  assert.is(custom, '| v | k |\n| ---: | --- |\n| v=0.5 | x |\n');
  assert.is(vg.io.meanSd([1, 2, 3, 4]), '2.500 ± 1.291'); // sample sd: sqrt(5/3)
  assert.is(vg.io.meanSd([0.5], { digits: 2 }), '0.50');
  assert.is(vg.io.meanSd([1, Infinity]), 'inf ± nan');
  assertThrowsWith(() => vg.io.meanSd([]), ['values must be a non-empty list of numbers']);
});

test.run();
