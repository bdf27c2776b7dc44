// vg.data's registration data: the phantom benchmark's ED→ES pairs and nuisance variants, ch2 + AAL with known
// random diffeomorphisms, and the papers' ACDC/CAMUS preprocessing on tiny files written in the release layouts
// (CAMUS's resize against scipy references from test/fixtures/gen_regdata.py).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadFixtures, fixtureRef } from './fixtures.mjs';
import { assertThrowsWith, setup, vg } from './helpers.mjs';

test.before(setup);
let tmp;
test.before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-reg-'));
});
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const N = 48; // phantom size in the tests (the benchmark uses 128)

/** (v - min) / (max - min) in float64. */
function minMax(v) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const x of v) {
    lo = Math.min(lo, x);
    hi = Math.max(hi, x);
  }
  return Array.from(v, (x) => (x - lo) / (hi - lo));
}

const sameBits = (a, b) => a.length === b.length && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;

function dice(a, b, label) {
  let x = 0, y = 0, z = 0;
  for (let i = 0; i < a.length; i++) {
    const p = a[i] === label, q = b[i] === label;
    x += p;
    y += q;
    z += p && q;
  }
  return (2 * z) / (x + y);
}

/** Least-squares a, b of y ≈ a x + b over the indices where keep(i). */
function fitLine(x, y, keep = () => true) {
  let n = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (let i = 0; i < x.length; i++) {
    if (!keep(i)) continue;
    n++;
    sx += x[i];
    sy += y[i];
    sxx += x[i] * x[i];
    sxy += x[i] * y[i];
  }
  const a = (n * sxy - sx * sy) / (n * sxx - sx * sx);
  return [a, (sy - a * sx) / n];
}

// ---- the phantom benchmark ----------------------------------------------------------------------------------------------

test('phantomPairs: ED→ES direction, per-image min-max, the background mask, tensors', async () => {
  const ds = vg.data.phantomPairs({ count: 3, size: N, seed: 5 });
  assert.is(ds.length, 3);
  assert.is(ds.subjectOf(1), 6);
  const it = ds.get(1);
  assert.equal([it.moving.shape, it.fixed.shape, it.mask.shape, it.missing.shape], [[1, N, N], [1, N, N], [1, N, N], [1, N, N]]);
  assert.equal([it.movingLabel.shape, it.movingLabel.dtype, it.fixedLabel.dtype], [[N, N], 'i32', 'i32']);
  assert.equal([it.subject, it.variant], [6, 'clean']);
  const ph = vg.data.cardiacPhantomArrays({ size: N, frames: 2, seed: 6 });
  const n = N * N;
  const [mv, fx, ml, fl, mask] = await Promise.all([it.moving.data(), it.fixed.data(), it.movingLabel.data(), it.fixedLabel.data(), it.mask.data()]);
  // moving = ED (frame 0), fixed = ES (frame 1), each min-max normalised on its own
  assert.equal(Array.from(ml), Array.from(ph.label.subarray(0, n)));
  assert.equal(Array.from(fl), Array.from(ph.label.subarray(n, 2 * n)));
  const refM = minMax(ph.image.subarray(0, n));
  const refF = minMax(ph.image.subarray(n, 2 * n));
  for (let i = 0; i < n; i++) {
    assert.ok(Math.abs(mv[i] - refM[i]) <= 6e-8 && Math.abs(fx[i] - refF[i]) <= 6e-8, `pixel ${i}`); // f32 rounding of [0, 1]
  }
  for (const v of [mv, fx]) {
    assert.is(Math.min(...v), 0);
    assert.is(Math.max(...v), 1);
  }
  for (let i = 0; i < n; i++) assert.is(mask[i], mv[i] !== 0 || fx[i] !== 0 ? 1 : 0);
  assert.ok(mask.includes(1));
  for (const t of Object.values(it)) t?.dispose?.();
});

test('phantomPairs: bit-identical per (seed, index, variant); labels shared by the variants; disjoint splits', () => {
  const bySeed = {};
  for (const variant of vg.data.PHANTOM_VARIANTS) {
    const a = vg.data.phantomPairs({ count: 2, size: N, variant, split: 'test' }).arrays(1);
    const b = vg.data.phantomPairs({ count: 4, size: N, variant, split: 'test', seed: 1 }).arrays(0); // same subject
    const c = vg.data.phantomPairs({ count: 2, size: N, variant, split: 'test', cacheSize: 2 });
    for (const k of ['moving', 'fixed', 'movingLabel', 'fixedLabel', 'mask', 'missing', 'noiseVariance']) {
      assert.ok(sameBits(a[k], b[k]), `${variant} ${k}`);
      assert.ok(sameBits(a[k], c.arrays(1)[k]) && sameBits(a[k], c.arrays(1)[k]), `${variant} ${k} (cached)`);
    }
    assert.is(a.subject, 1_000_001);
    bySeed[variant] = a;
  }
  const clean = bySeed.clean;
  for (const variant of ['heteroscedastic', 'speckle', 'missing-correspondence']) {
    const v = bySeed[variant];
    assert.ok(sameBits(v.movingLabel, clean.movingLabel) && sameBits(v.fixedLabel, clean.fixedLabel), `${variant}: the true labels`);
    assert.not.ok(sameBits(v.moving, clean.moving) || sameBits(v.fixed, clean.fixed), `${variant} changes both images`);
  }
  // severity 0: heteroscedastic and missing-correspondence reduce to the clean pair exactly
  for (const variant of ['heteroscedastic', 'missing-correspondence']) {
    const z = vg.data.phantomPairs({ count: 2, size: N, variant, split: 'test', severity: 0 }).arrays(1);
    assert.ok(sameBits(z.moving, clean.moving) && sameBits(z.fixed, clean.fixed) && !z.missing.includes(1), variant);
  }
  // the splits' subject ranges are disjoint and every variant offers >= 100 test pairs
  const train = vg.data.phantomPairs({ count: 1000, split: 'train' });
  const testSet = vg.data.phantomPairs({ count: 100, split: 'test' });
  const trainSubjects = new Set(Array.from({ length: train.length }, (_, i) => train.subjectOf(i)));
  for (let i = 0; i < testSet.length; i++) assert.not.ok(trainSubjects.has(testSet.subjectOf(i)));
  assert.equal(vg.data.REGISTRATION_SPLIT_SEEDS, { train: 0, test: 1_000_000 });
  // another index or seed is another subject
  assert.not.ok(sameBits(vg.data.phantomPairs({ count: 2, size: N }).arrays(0).moving, vg.data.phantomPairs({ count: 2, size: N }).arrays(1).moving));
});

test('phantomPairs heteroscedastic: noise variance grows with intensity; ED and ES noise independent', () => {
  const clean = vg.data.phantomPairs({ count: 1, size: 96, seed: 3 }).arrays(0);
  const het = vg.data.phantomPairs({ count: 1, size: 96, seed: 3, variant: 'heteroscedastic' }).arrays(0);
  const res = [];
  for (const k of ['moving', 'fixed']) {
    // normalisation is affine per image: undo it by a least-squares fit; the residual is the added noise
    const [a, b] = fitLine(clean[k], het[k]);
    const r = Array.from(het[k], (v, i) => v - a * clean[k][i] - b);
    res.push(r);
    const binVar = (lo, hi) => {
      let s = 0, n = 0;
      r.forEach((v, i) => {
        if (clean[k][i] >= lo && clean[k][i] < hi) {
          s += v * v;
          n++;
        }
      });
      return s / n;
    };
    // σ ∝ 0.2 + I: blood (~0.9) vs lung (~0.05) gives a variance ratio near 19, modulated by the smooth profile;
    // homoscedastic noise would give a ratio near 1 (the phantom's own Rician noise is 5 to 10 times weaker)
    const ratio = binVar(0.7, 1.01) / binVar(0, 0.15);
    assert.ok(ratio > 5, `${k}: bright/dark noise variance ratio ${ratio}`);
  }
  let c = 0, s0 = 0, s1 = 0;
  for (let i = 0; i < res[0].length; i++) {
    c += res[0][i] * res[1][i];
    s0 += res[0][i] ** 2;
    s1 += res[1][i] ** 2;
  }
  assert.ok(Math.abs(c / Math.sqrt(s0 * s1)) < 0.1, `ED/ES noise correlation ${c / Math.sqrt(s0 * s1)}`);
  // noiseVariance is the variance of fixed − moving from the added noise: the squared residual difference matches it
  // on average, and where it is large the residuals are large
  const d2 = res[1].map((v, i) => (v - res[0][i]) ** 2);
  const nv = het.noiseVariance;
  const ratio = d2.reduce((a, b) => a + b, 0) / nv.reduce((a, b) => a + b, 0);
  assert.ok(ratio > 0.9 && ratio < 1.1, `Σ(r_ES − r_ED)² / Σ noiseVariance = ${ratio}`);
  const order = Array.from(nv.keys()).sort((i, j) => nv[i] - nv[j]);
  const quart = order.length >> 2;
  const meanOf = (idx) => idx.reduce((a, i) => a + d2[i], 0) / idx.length;
  const meanNv = (idx) => idx.reduce((a, i) => a + nv[i], 0) / idx.length;
  const [lo, hi] = [order.slice(0, quart), order.slice(-quart)];
  assert.ok(Math.abs(meanOf(hi) / meanNv(hi) - 1) < 0.15 && Math.abs(meanOf(lo) / meanNv(lo) - 1) < 0.25, `quartiles ${meanOf(lo) / meanNv(lo)} ${meanOf(hi) / meanNv(hi)}`);
  assert.ok(!clean.noiseVariance.some((v) => v !== 0), 'no noise variance in the clean variant');
});

test('phantomPairs speckle: zero outside one sector shared by both frames, multiplicative Rayleigh speckle with mean 1', () => {
  const S = 96;
  const clean = vg.data.phantomPairs({ count: 1, size: S, seed: 11 }).arrays(0);
  const sp = vg.data.phantomPairs({ count: 1, size: S, seed: 11, variant: 'speckle' }).arrays(0);
  const inside = (v) => Array.from(v, (x) => x !== 0);
  const inM = inside(sp.moving);
  assert.equal(inM, inside(sp.fixed), 'one field of view for both frames');
  assert.equal(Array.from(sp.mask), inM.map((b) => (b ? 1 : 0)), 'the background mask is the sector');
  // sector shape: top corners outside, centre inside; every row one contiguous run whose width does not shrink
  // going down until the far arc
  assert.not.ok(inM[0] || inM[S - 1]);
  assert.ok(inM[(S / 2) * S + S / 2]);
  let prev = 0;
  let arc = false;
  for (let i = 0; i < S; i++) {
    const row = inM.slice(i * S, (i + 1) * S);
    const first = row.indexOf(true);
    const last = row.lastIndexOf(true);
    const width = first < 0 ? 0 : last - first + 1;
    if (first >= 0) assert.ok(row.slice(first, last + 1).every(Boolean), `row ${i} is one run`);
    if (width < prev) arc = true;
    else assert.not.ok(arc && width > prev, `row ${i} widens again below the arc`);
    if (!arc && i > 0) assert.ok(width >= prev, `row ${i}`);
    prev = width;
  }
  const fraction = inM.filter(Boolean).length / (S * S);
  assert.ok(fraction > 0.5 && fraction < 0.95, `sector covers ${fraction}`);
  // inside: speckle / raw phantom frame is the multiplicative noise up to the normalisation's scale; scaled to
  // mean 1 it is Rayleigh / E[Rayleigh], coefficient of variation sqrt(4/π − 1) = 0.523
  const raw = vg.data.cardiacPhantomArrays({ size: S, frames: 2, seed: sp.subject }).image;
  for (const [f, k] of ['moving', 'fixed'].entries()) {
    const keep = (i) => sp[k][i] !== 0;
    const I = raw.subarray(f * S * S, (f + 1) * S * S);
    const ratio = Array.from(sp[k], (v, i) => v / I[i]);
    let mean = 0, n = 0;
    ratio.forEach((r, i) => keep(i) && ((mean += r), n++));
    mean /= n;
    let sq = 0;
    ratio.forEach((r, i) => keep(i) && (sq += (r / mean - 1) ** 2));
    const cv = Math.sqrt(sq / n);
    assert.ok(cv > 0.45 && cv < 0.6, `${k} coefficient of variation ${cv}`);
    // locally: 12 × 12 blocks wholly inside the sector keep the clean mean (~25 independent speckle grains each:
    // the block mean's standard deviation is about 0.52 / 5 ≈ 0.1)
    for (let bi = 0; bi + 12 <= S; bi += 12)
      for (let bj = 0; bj + 12 <= S; bj += 12) {
        let s = 0, all = true;
        for (let i = bi; i < bi + 12; i++)
          for (let j = bj; j < bj + 12; j++) {
            all &&= keep(i * S + j);
            s += ratio[i * S + j] / mean;
          }
        if (all) assert.ok(Math.abs(s / 144 - 1) < 0.4, `${k} block (${bi}, ${bj}) mean ratio ${s / 144}`);
      }
  }
});

test('phantomPairs missing-correspondence: the marked regions disagree with the clean pair far beyond the gain change', () => {
  const S = 96;
  let checked = 0;
  for (let idx = 0; idx < 3; idx++) {
    const clean = vg.data.phantomPairs({ count: 3, size: S, split: 'test' }).arrays(idx);
    const mc = vg.data.phantomPairs({ count: 3, size: S, split: 'test', variant: 'missing-correspondence' }).arrays(idx);
    const miss = mc.missing;
    const area = miss.reduce((a, b) => a + b, 0) / (S * S);
    assert.ok(area > 0.005 && area < 0.35, `missing area ${area}`);
    // each frame: fit the clean frame outside the marked region; inside, at least one frame departs strongly
    const dev = { in: 0, out: 0, nIn: 0, nOut: 0 };
    const perFrame = [];
    for (const k of ['moving', 'fixed']) {
      const [a, b] = fitLine(clean[k], mc[k], (i) => miss[i] === 0);
      perFrame.push(Array.from(mc[k], (v, i) => Math.abs(v - a * clean[k][i] - b)));
    }
    for (let i = 0; i < S * S; i++) {
      const d = Math.max(perFrame[0][i], perFrame[1][i]);
      if (miss[i]) (dev.in += d), dev.nIn++;
      else (dev.out += d), dev.nOut++;
    }
    const ratio = dev.in / dev.nIn / (dev.out / dev.nOut);
    assert.ok(ratio > 3, `pair ${idx}: mean deviation inside / outside the missing mask ${ratio}`);
    // outside the mask the frames still differ from the clean pair (independent gain fields), by less
    assert.ok(dev.out / dev.nOut > 0.005, 'the smooth gain change');
    checked++;
  }
  assert.is(checked, 3);
});

test('phantomPairs: unregistered Dice of the ED/ES labels below 1 and above a floor (20 test pairs)', () => {
  const ds = vg.data.phantomPairs({ count: 20, size: 64, split: 'test' });
  const mean = { 1: 0, 2: 0, 3: 0 };
  for (let i = 0; i < ds.length; i++) {
    const a = ds.arrays(i);
    for (const l of [1, 2, 3]) mean[l] += dice(a.movingLabel, a.fixedLabel, l) / ds.length;
  }
  // contraction of 22-34 % in LV radius and a thickening wall: large but not disjoint overlaps
  assert.ok(mean[2] > 0.2 && mean[2] < 0.6, `myocardium ${mean[2]}`);
  assert.ok(mean[3] > 0.5 && mean[3] < 0.85, `LV ${mean[3]}`);
  assert.ok(mean[1] > 0.15 && mean[1] < 0.6, `RV ${mean[1]}`);
});

test('phantomPairs: bad options name the argument and the range', () => {
  assertThrowsWith(() => vg.data.phantomPairs({ variant: 'rician' }), ['phantomPairs', 'variant', "'speckle'", 'rician']);
  assertThrowsWith(() => vg.data.phantomPairs({ severity: 3 }), ['phantomPairs', 'severity', '[0, 2]', '3']);
  assertThrowsWith(() => vg.data.phantomPairs({ count: 0 }), ['phantomPairs', 'count']);
  assertThrowsWith(() => vg.data.phantomPairs({ split: 'val' }), ['phantomPairs', "'train' or 'test'", 'val']);
  assertThrowsWith(() => vg.data.phantomPairs({ count: 10, seed: 999_995 }), ['phantomPairs', 'seed + count <= 1000000']);
  assertThrowsWith(() => vg.data.phantomPairs({ count: 2 }).get(2), ['RegistrationPhantom.get', 'index', '[0, 2)']);
});

// ---- ch2 + AAL -------------------------------------------------------------------------------------------------------

/** Nearest-neighbour pull warp with border clamping, the reference for spatialTransform(..., nearest, border). */
function nearestWarp(src, flow, S) {
  const n = S * S * S;
  const out = new Int32Array(n);
  let ambiguous = 0;
  const skip = new Uint8Array(n);
  for (let d = 0, o = 0; d < S; d++)
    for (let h = 0; h < S; h++)
      for (let w = 0; w < S; w++, o++) {
        const idx = [d, h, w].map((x, a) => {
          const p = Math.min(S - 1, Math.max(0, x + flow[a * n + o]));
          // a position within f32 round-off of a rounding tie may go either way on the GPU
          if (Math.abs((p % 1) - 0.5) < 1e-5) skip[o] = 1; // f32 spacing near 24 is 2e-6
          return Math.round(p);
        });
        if (skip[o]) ambiguous++;
        out[o] = src[(idx[0] * S + idx[1]) * S + idx[2]];
      }
  return { out, skip, ambiguous };
}

test('ch2Deformations: the template cube, trueFlow maps fixed onto moving exactly (labels), Dice, determinism', async () => {
  const S = 24;
  const t = await vg.data.loadCh2Template({ size: S });
  assert.equal(t.shape, [S, S, S]);
  assert.is(Math.min(...t.image), 0);
  assert.is(Math.max(...t.image), 1);
  // isotropic cube: the affine's diagonal is the spacing; AAL's largest structures are present
  assert.equal([t.affine[0][0], t.affine[1][1], t.affine[2][2]], t.spacing);
  assert.ok(t.spacing[0] > 6 && t.spacing[0] < 9, `spacing ${t.spacing}`); // a ~170 mm brain box over 24 voxels
  for (const s of vg.data.CH2_DICE_STRUCTURES) assert.ok(t.label.includes(s.label), s.name);

  const ds = vg.data.ch2Deformations({ size: S, count: 2, split: 'test' });
  const p = await ds.get(1);
  assert.equal([p.moving.shape, p.fixed.shape, p.mask.shape, p.trueFlow.shape, p.inverseFlow.shape], [[1, S, S, S], [1, S, S, S], [1, S, S, S], [3, S, S, S], [3, S, S, S]]);
  assert.equal([p.movingLabel.shape, p.movingLabel.dtype], [[S, S, S], 'i32']);
  assert.equal(p.affine, t.affine);
  const [mv, fx, ml, fl, u, mask, inv] = await Promise.all(['moving', 'fixed', 'movingLabel', 'fixedLabel', 'trueFlow', 'mask', 'inverseFlow'].map((k) => p[k].data()));
  const { out, skip, ambiguous } = nearestWarp(fl, u, S);
  assert.ok(ambiguous < 20, `${ambiguous} tie positions`); // expected ~1 of 3·24³ coordinates
  for (let i = 0; i < out.length; i++) if (!skip[i]) assert.is(ml[i], out[i], `voxel ${i}`);
  for (let i = 0; i < mask.length; i++) assert.is(mask[i], mv[i] !== 0 || fx[i] !== 0 ? 1 : 0);
  // a smooth, non-trivial deformation of the default magnitude (4 · S / 64 voxels at the control points)
  let maxU = 0;
  for (let i = 0; i < u.length / 3; i++) maxU = Math.max(maxU, Math.hypot(u[i], u[i + S ** 3], u[i + 2 * S ** 3]));
  assert.ok(maxU > 0.3 && maxU < 4, `max |trueFlow| ${maxU}`);
  // inverseFlow undoes trueFlow: u(x) + inv(x + u(x)) ≈ 0 (linear interpolation, nearest sample is enough here)
  let res = 0;
  let count = 0;
  const n = S ** 3;
  for (let d = 2, o; d < S - 2; d++)
    for (let h = 2; h < S - 2; h++)
      for (let w = 2; w < S - 2; w++) {
        o = (d * S + h) * S + w;
        const q = [d, h, w].map((x, a) => Math.min(S - 1, Math.max(0, Math.round(x + u[a * n + o]))));
        const qo = (q[0] * S + q[1]) * S + q[2];
        res += Math.hypot(...[0, 1, 2].map((a) => u[a * n + o] + inv[a * n + qo]));
        count++;
      }
  assert.ok(res / count < 0.35, `mean |u + inv ∘ (id + u)| ${res / count}`); // < rounding to the nearest voxel (≤ 0.87)
  // unregistered Dice of the large structures: changed by the deformation, still overlapping
  const ds2 = vg.data.CH2_DICE_STRUCTURES.map((s) => dice(ml, fl, s.label));
  const meanDice = ds2.reduce((a, b) => a + b) / ds2.length;
  assert.ok(meanDice > 0.3 && meanDice < 0.97, `unregistered Dice ${meanDice}`);
  // deterministic per (split, seed, index)
  const again = await vg.data.ch2Deformations({ size: S, count: 3, split: 'test' }).get(1);
  assert.ok(sameBits(await again.moving.data(), mv) && sameBits(await again.trueFlow.data(), u));
  // deformFixed false: fixed is the template itself
  const plain = await vg.data.ch2Deformations({ size: S, count: 1, deformFixed: false }).get(0);
  assert.ok(sameBits(await plain.fixed.data(), t.image) && sameBits(await plain.fixedLabel.data(), t.label));
  for (const it of [p, again, plain]) for (const v of Object.values(it)) v?.dispose?.();
  assertThrowsWith(() => vg.data.ch2Deformations({ magnitude: -1 }), ['ch2Deformations', 'magnitude', '-1']);
  assertThrowsWith(() => vg.data.ch2Deformations({ controlPoints: 1 }), ['ch2Deformations', 'controlPoints', '>= 2']);
});

// ---- ACDC and CAMUS ----------------------------------------------------------------------------------------------------

test('acdcRegistrationPairs: one crop centre per patient (ED myocardium centroid of the middle slice), zero padding', async () => {
  const root = path.join(tmp, 'acdc');
  const X = 12, Y = 10, Z = 3, C = 8;
  const affine = [[0, -1.5, 0, 10], [1.25, 0, 0, -5], [0, 0, 8, 2], [0, 0, 0, 1]];
  const img = (p, f, i, j, k) => 50 + p * 7 + f * 3 + ((i * 13 + j * 7 + k * 5) % 17);
  // ED middle slice (k = 1) myocardium at (1, 1), (1, 2), (4, 2), (4, 3): centroid (2.5, 2) → centre (2, 2) (half to even)
  const myo = new Set(['1,1', '1,2', '4,2', '4,3']);
  const lab = (p, f, i, j, k) => (f === 1 && k === 1 ? (myo.has(`${i},${j}`) ? 2 : (i + j) % 2 === 0 ? 3 : 0) : (i + 2 * j + k + f) % 4);
  const patients = [{ n: 1, ed: 1, es: 5 }, { n: 2, ed: 1, es: 4 }];
  const vol = (fn, p, f) => Float32Array.from({ length: X * Y * Z }, (_, q) => fn(p, f, Math.floor(q / (Y * Z)), Math.floor(q / Z) % Y, q % Z));
  for (const { n, ed, es } of patients) {
    const name = `patient00${n}`;
    const dir = path.join(root, 'training', name);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'Info.cfg'), `ED: ${ed}\nES: ${es}\nGroup: NOR\nNbFrame: 10\n`);
    for (const f of [ed, es]) {
      const ff = `frame0${f}`;
      const a = vg.tensor(vol(img, n, f), [X, Y, Z]);
      const l = vg.tensor(Int32Array.from(vol(lab, n, f)), [X, Y, Z], { dtype: 'i32' });
      await vg.io.writeNifti(path.join(dir, `${name}_${ff}.nii.gz`), a, { affine });
      await vg.io.writeNifti(path.join(dir, `${name}_${ff}_gt.nii.gz`), l, { affine });
      a.dispose();
      l.dispose();
    }
  }
  const ds = await vg.data.acdcRegistrationPairs(root, { size: C });
  assert.is(ds.length, 2 * Z);
  const all = await vg.data.acdcRegistrationPairs(root, { size: C, labels: 'all', patients: [2] });
  for (let idx = 0; idx < ds.length; idx++) {
    const it = await ds.get(idx);
    const p = idx < Z ? 1 : 2;
    const k = idx % Z;
    const { ed, es } = patients[p - 1];
    assert.equal([it.patient, it.slice, it.centre], [`patient00${p}`, k, [2, 2]]);
    // window [c - 4, c + 4) on each axis: rows/columns -2 and -1 are padding
    const crop = (fn, f) => Array.from({ length: C * C }, (_, q) => {
      const i = Math.floor(q / C) - 2, j = (q % C) - 2;
      return i < 0 || j < 0 || i >= X || j >= Y ? 0 : fn(p, f, i, j, k);
    });
    const [mv, fx, ml, fl, mask] = await Promise.all([it.moving.data(), it.fixed.data(), it.movingLabel.data(), it.fixedLabel.data(), it.mask.data()]);
    const em = minMax(crop(img, ed));
    const ef = minMax(crop(img, es));
    for (let q = 0; q < C * C; q++) assert.ok(Math.abs(mv[q] - em[q]) < 6e-8 && Math.abs(fx[q] - ef[q]) < 6e-8, `pair ${idx} pixel ${q}`);
    assert.equal(Array.from(mv.slice(0, 2 * C)), new Array(2 * C).fill(0), 'padded rows read 0');
    assert.equal(Array.from(ml), crop(lab, ed).map((v) => (v === 2 ? 1 : 0)));
    assert.equal(Array.from(fl), crop(lab, es).map((v) => (v === 2 ? 1 : 0)));
    assert.equal(Array.from(mask), Array.from(mv, (v, q) => (v !== 0 || fx[q] !== 0 ? 1 : 0)));
    // the crop's voxel (0, 0) is the slice's voxel (-2, -2): origin moves by -2 columns 0 and 1 (slice k: + 8 k)
    assert.equal(it.affine, [[0, -1.5, 0, 10 + 3], [1.25, 0, 0, -5 - 2.5], [0, 0, 8, 2 + 8 * k], [0, 0, 0, 1]]);
    if (p === 2) {
      const a = await all.get(k);
      assert.equal(Array.from(await a.movingLabel.data()), crop(lab, ed));
      for (const v of Object.values(a)) v?.dispose?.();
    }
    for (const v of Object.values(it)) v?.dispose?.();
  }
  let err;
  try {
    await ds.get(ds.length);
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof vg.VoxgradError && err.message.includes('acdcRegistrationPairs.get') && err.message.includes(`[0, ${ds.length})`));
});

test('camusRegistrationPairs and skimageResize: scikit-image resize (anti-aliased bilinear), round(resize(mask))', async () => {
  const cases = loadFixtures('regdata');
  for (const c of cases) {
    const ed = fixtureRef(c.ed);
    const [X, Y] = ed.shape;
    const got = vg.data.skimageResize(ed.data, X, Y, c.out[0], c.out[1]);
    const ref = fixtureRef(c.moving).data;
    const norm = minMax(got);
    for (let i = 0; i < ref.length; i++) assert.ok(Math.abs(norm[i] - ref[i]) < 1e-9, `${c.name} pixel ${i}: ${norm[i]} vs ${ref[i]}`);
  }
  // end to end on the square case, in the CAMUS NIfTI layout
  const c = cases[0];
  const root = path.join(tmp, 'camus');
  const dir = path.join(root, 'patient0001');
  fs.mkdirSync(dir, { recursive: true });
  const affine = [[0.3, 0, 0, 1], [0, 0.15, 0, 2], [0, 0, 1, 0], [0, 0, 0, 1]];
  for (const view of ['2CH', '4CH']) {
    fs.writeFileSync(path.join(dir, `Info_${view}.cfg`), 'ED: 1\nES: 12\nNbFrame: 20\n');
    for (const [phase, im, lb] of [['ED', c.ed, c.edLabel], ['ES', c.es, c.esLabel]]) {
      const t = fixtureRef(im).toTensor();
      const l = fixtureRef(lb).toTensor();
      await vg.io.writeNifti(path.join(dir, `patient0001_${view}_${phase}.nii.gz`), t, { affine });
      await vg.io.writeNifti(path.join(dir, `patient0001_${view}_${phase}_gt.nii.gz`), l, { datatype: 'uint8', affine });
      t.dispose();
      l.dispose();
    }
  }
  const ds = await vg.data.camusRegistrationPairs(root, { size: c.out[0] });
  assert.is(ds.length, 2);
  const it = await ds.get(1);
  assert.equal([it.patient, it.view, it.moving.shape, it.movingLabel.shape], ['patient0001', '4CH', [1, 16, 16], [16, 16]]);
  const [mv, fx, ml, fl, mask] = await Promise.all([it.moving.data(), it.fixed.data(), it.movingLabel.data(), it.fixedLabel.data(), it.mask.data()]);
  const rm = fixtureRef(c.moving).data;
  const rf = fixtureRef(c.fixed).data;
  for (let i = 0; i < rm.length; i++) assert.ok(Math.abs(mv[i] - rm[i]) < 1e-6 && Math.abs(fx[i] - rf[i]) < 1e-6, `pixel ${i}`); // f32 output
  assert.equal(Array.from(ml), Array.from(fixtureRef(c.movingLabel).data));
  assert.equal(Array.from(fl), Array.from(fixtureRef(c.fixedLabel).data));
  assert.ok(ml.includes(1) && ml.includes(0));
  assert.equal(Array.from(mask), Array.from(mv, (v, q) => (v !== 0 || fx[q] !== 0 ? 1 : 0)));
  // the resized grid: voxel i samples old position (i + ½)·f − ½, f = 41/16 and 53/16
  const fx0 = 41 / 16, fy0 = 53 / 16;
  const close = (a, b) => a.every((r, i) => r.every((v, j) => Math.abs(v - b[i][j]) < 1e-6));
  assert.ok(close(it.affine, [[0.3 * fx0, 0, 0, 1 + 0.3 * (fx0 - 1) / 2], [0, 0.15 * fy0, 0, 2 + 0.15 * (fy0 - 1) / 2], [0, 0, 1, 0], [0, 0, 0, 1]]), JSON.stringify(it.affine));
  for (const v of Object.values(it)) v?.dispose?.();
});

test.run();
