// vg.methods.semisup: ACTION++'s simplex centres, Hungarian assignment and temperature schedule, the FIFO memory
// bank, and every loss of the semi-supervised methods against float64 references, with gradient checks.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Ref, assertClose, assertThrowsWith, gradcheck64, rng, setup, vg } from './helpers.mjs';

test.before(setup);
const S = () => vg.methods.semisup;
const scalar = (v) => new Ref([v], []);
const dot = (a, b) => a.reduce((s, x, i) => s + x * b[i], 0);
const unit = (v) => {
  const n = Math.hypot(...v) || 1;
  return v.map((x) => x / n);
};
const rows = (ref) => Array.from({ length: ref.shape[0] }, (_, i) => Array.from(ref.data.slice(i * ref.shape[1], (i + 1) * ref.shape[1])));
const logSoftmaxRow = (v) => {
  const m = Math.max(...v);
  const lse = m + Math.log(v.reduce((s, x) => s + Math.exp(x - m), 0));
  return v.map((x) => x - lse);
};

// ---- geometry -----------------------------------------------------------------------------------------------------

test('simplexCentres: unit rows with pairwise cosine -1/(C-1)', () => {
  for (const [c, d] of [[2, 2], [3, 8], [4, 496], [8, 16]]) {
    const centres = S().simplexCentres(c, d);
    assert.is(centres.length, c);
    for (let i = 0; i < c; i++) {
      assert.ok(Math.abs(dot(centres[i], centres[i]) - 1) < 1e-12, `norm of centre ${i} (C=${c})`);
      for (let j = i + 1; j < c; j++) assert.ok(Math.abs(dot(centres[i], centres[j]) + 1 / (c - 1)) < 1e-12, `cos(${i}, ${j}) for C=${c}`);
    }
  }
  assertThrowsWith(() => S().simplexCentres(4, 3), ['simplexCentres', 'dims', '>= classes (4)', 'got 3']);
});

test('assignCentres: the brute-force optimum equals an independent exhaustive search; errors past K = 8', () => {
  const r = rng(3);
  const best = (score) => {
    // recursive search over assignments (independent of Heap's order)
    const k = score.length;
    let top = -Infinity;
    const go = (c, used, acc) => {
      if (c === k) return void (top = Math.max(top, acc));
      for (let j = 0; j < k; j++) if (!used.has(j)) go(c + 1, new Set([...used, j]), acc + score[c][j]);
    };
    go(0, new Set(), 0);
    return top;
  };
  for (const k of [1, 2, 3, 4, 5]) {
    for (let rep = 0; rep < 5; rep++) {
      const score = Array.from({ length: k }, () => Array.from({ length: k }, () => r.uniform(-1, 1)));
      const p = S().assignCentres(score);
      assert.equal([...p].sort(), [...Array(k).keys()], 'a permutation');
      assert.ok(Math.abs(p.reduce((s, j, c) => s + score[c][j], 0) - best(score)) < 1e-12, `optimal for K=${k}`);
    }
  }
  // a clear case: class c's mean sits on centre (c + 1) mod 3
  const centres = S().simplexCentres(3, 3);
  const means = [1, 2, 0].map((j) => centres[j]);
  assert.equal(S().assignCentres(means.map((m) => centres.map((c) => dot(m, c)))), [1, 2, 0]);
  assertThrowsWith(() => S().assignCentres(Array.from({ length: 9 }, () => new Array(9).fill(0))), ['assignCentres', 'K <= 8', 'got 9 rows']);
});

test('atsTemperature: the cosine schedule τ⁻ + ½(1 + cos 2πt/T)(τ⁺ − τ⁻), paper and code periods', () => {
  const f = (t, T, lo, hi, period) => lo + 0.5 * (1 + Math.cos((2 * Math.PI * t) / (period * T))) * (hi - lo);
  for (const t of [0, 1, 17, 250, 499, 500, 731, 1000])
    assert.ok(Math.abs(S().atsTemperature(t, 1000) - f(t, 1000, 0.1, 1, 1)) < 1e-15, `t=${t}`);
  assert.ok(Math.abs(S().atsTemperature(0, 1000) - 1) < 1e-15);
  assert.ok(Math.abs(S().atsTemperature(500, 1000) - 0.1) < 1e-15);
  // the code's default period 0.1: ten cycles, τ⁻ = 0.07 for its TSC
  assert.ok(Math.abs(S().atsTemperature(50, 1000, { tauMin: 0.07, period: 0.1 }) - 0.07) < 1e-15);
  assert.ok(Math.abs(S().atsTemperature(100, 1000, { tauMin: 0.07, period: 0.1 }) - 1) < 1e-15);
  assertThrowsWith(() => S().atsTemperature(0, 0), ['atsTemperature', 'total', 'got total 0']);
});

// ---- memory bank --------------------------------------------------------------------------------------------------

test('MemoryBank: FIFO order with wrap-around, labels alongside, oversize writes keep the newest rows', async () => {
  const bank = new (S().MemoryBank)(5, 2, { labels: true });
  assert.equal(Array.from(await bank.labels.data()), [-1, -1, -1, -1, -1]);
  const push = (from, n) => {
    const v = Array.from({ length: n }, (_, i) => from + i);
    const x = vg.tensor(v.flatMap((k) => [k, 10 * k]), [n, 2]);
    const l = vg.tensor(v, [n], { dtype: 'i32' });
    bank.enqueue(x, l);
    x.dispose();
    l.dispose();
  };
  push(0, 3);
  assert.equal(Array.from(await bank.labels.data()), [0, 1, 2, -1, -1]);
  push(3, 3);
  // rows 3, 4 fill the end, row 5 replaces the oldest (row 0)
  assert.equal(Array.from(await bank.labels.data()), [5, 1, 2, 3, 4]);
  assert.equal(Array.from(await bank.keys.data()), [5, 50, 1, 10, 2, 20, 3, 30, 4, 40]);
  assert.is(bank.pointer, 1);
  assert.is(bank.filled, 5);
  push(6, 7);
  // 7 rows into 5: the last 5 (8..12) land where seven single writes from slot 1 would leave them
  assert.equal(Array.from(await bank.labels.data()), [10, 11, 12, 8, 9]);
  assert.is(bank.pointer, 3);
  const bad = vg.zeros([2, 3]);
  assertThrowsWith(() => bank.enqueue(bad), ['MemoryBank.enqueue', 'rows must be [n, 2]', '[2, 3]']);
  bad.dispose();
  bank.dispose();
  const unitBank = new (S().MemoryBank)(4, 3, { init: 'random-unit', seed: 1 });
  const u = rows(new Ref(await unitBank.keys.data(), [4, 3]));
  for (const row of u) assert.ok(Math.abs(dot(row, row) - 1) < 1e-6);
  unitBank.dispose();
});

// ---- losses -------------------------------------------------------------------------------------------------------

function refSupervised(logits, labels, weight = 0.5) {
  const [n, c, h, w] = logits.shape;
  let ce = 0;
  const inter = new Float64Array(c), psum = new Float64Array(c), tsum = new Float64Array(c);
  for (let b = 0; b < n; b++)
    for (let p = 0; p < h * w; p++) {
      const v = Array.from({ length: c }, (_, k) => logits.data[(b * c + k) * h * w + p]);
      const lp = logSoftmaxRow(v);
      const y = labels.data[b * h * w + p];
      ce -= lp[y];
      lp.forEach((l, k) => {
        const pk = Math.exp(l);
        inter[k] += pk * (k === y ? 1 : 0);
        psum[k] += pk;
        tsum[k] += k === y ? 1 : 0;
      });
    }
  ce /= n * h * w;
  let dice = 0;
  for (let k = 0; k < c; k++) dice += (2 * inter[k] + 1e-5) / (psum[k] + tsum[k] + 1e-5);
  return scalar(weight * (ce + 1 - dice / c));
}

test('supervisedSegLoss = 0.5·(CE + Dice) against float64, with a gradient check', async () => {
  const r = rng(5);
  const logits = Ref.random([2, 3, 4, 4], r, -2, 2);
  const labels = new Ref(Array.from({ length: 32 }, () => r.int(0, 3)), [2, 4, 4], 'i32');
  const lt = logits.f32().toTensor();
  const yt = labels.toTensor();
  const out = S().supervisedSegLoss(lt, yt);
  await assertClose(out, refSupervised(logits.f32(), labels), { rtol: 1e-5, atol: 1e-6 });
  await gradcheck64((x) => S().supervisedSegLoss(x, yt), (x) => refSupervised(x, labels), [logits], { msg: 'supervisedSegLoss' });
  for (const t of [lt, yt, out]) t.dispose();
});

function refConfidenceCE(logits, label, conf, thr) {
  const [n, c, h, w] = logits.shape;
  const P = h * w;
  let num = 0, count = 0;
  for (let b = 0; b < n; b++) {
    let valid = 0, confident = 0;
    for (let p = 0; p < P; p++) {
      const y = label.data[b * P + p];
      if (y === -1) continue;
      valid++;
      if (conf.data[b * P + p] >= thr) confident++;
    }
    const wb = confident / Math.max(valid, 1);
    for (let p = 0; p < P; p++) {
      const y = label.data[b * P + p];
      if (y === -1) continue;
      const lp = logSoftmaxRow(Array.from({ length: c }, (_, k) => logits.data[(b * c + k) * P + p]));
      const ce = -lp[y];
      if (ce > 0) {
        num += wb * ce;
        count++;
      }
    }
  }
  return scalar(num / Math.max(count, 1));
}

test('confidenceWeightedCE: per-image weight = confident / valid pixels, mean over CE > 0, ignores -1', async () => {
  const r = rng(6);
  const logits = Ref.random([2, 4, 3, 5], r, -3, 3);
  const label = new Ref(Array.from({ length: 30 }, () => r.int(-1, 4)), [2, 3, 5], 'i32');
  const conf = new Ref(Array.from({ length: 30 }, () => (r.next() < 0.5 ? 0.99 : 0.5)), [2, 3, 5]);
  const yt = label.toTensor();
  const ct = conf.toTensor();
  const lt = logits.f32().toTensor();
  const out = S().confidenceWeightedCE(lt, yt, ct, { threshold: 0.97 });
  await assertClose(out, refConfidenceCE(logits.f32(), label, conf, 0.97), { rtol: 1e-5, atol: 1e-6 });
  await gradcheck64((x) => S().confidenceWeightedCE(x, yt, ct), (x) => refConfidenceCE(x, label, conf, 0.97), [logits], { msg: 'confidenceWeightedCE' });
  for (const t of [yt, ct, lt, out]) t.dispose();
});

function refRelationKL(s, t, bank, tauS, tauT) {
  // s, t [..., B, D]; bank [..., K, D] with matching leading dim (or none)
  const D = s.shape[s.shape.length - 1];
  const K = bank.shape[bank.shape.length - 2];
  const groups = s.shape.length === 3 ? s.shape[0] : 1;
  const B = s.shape[s.shape.length - 2];
  let kl = 0;
  for (let g = 0; g < groups; g++) {
    const bankRows = Array.from({ length: K }, (_, k) => unit(Array.from(bank.data.slice((g * K + k) * D, (g * K + k + 1) * D))));
    for (let b = 0; b < B; b++) {
      const sv = unit(Array.from(s.data.slice((g * B + b) * D, (g * B + b + 1) * D)));
      const tv = unit(Array.from(t.data.slice((g * B + b) * D, (g * B + b + 1) * D)));
      const ls = logSoftmaxRow(bankRows.map((a) => dot(sv, a) / tauS));
      const lt = logSoftmaxRow(bankRows.map((a) => dot(tv, a) / tauT));
      lt.forEach((l, k) => (kl += Math.exp(l) * (l - ls[k])));
    }
  }
  return scalar(kl / (groups * B));
}

test('relationKL (ISD distillation): KL(p_teacher ‖ p_student) over a bank, plain and per-patch batched', async () => {
  const r = rng(7);
  for (const [sShape, bShape] of [[[3, 5], [6, 5]], [[2, 3, 4], [2, 5, 4]]]) {
    const s = Ref.random(sShape, r).f32();
    const t = Ref.random(sShape, r).f32();
    const bank = Ref.random(bShape, r).f32();
    const [tt, bt, st] = [t.toTensor(), bank.toTensor(), s.toTensor()];
    const out = S().relationKL(st, tt, bt, { tauStudent: 0.1, tauTeacher: 0.05 });
    await assertClose(out, refRelationKL(s, t, bank, 0.1, 0.05), { rtol: 1e-4, atol: 1e-6 });
    await gradcheck64((x) => S().relationKL(x, tt, bt, { tauStudent: 0.1, tauTeacher: 0.05 }), (x) => refRelationKL(x, t, bank, 0.1, 0.05), [s], { msg: 'relationKL' });
    for (const x of [tt, bt, st, out]) x.dispose();
  }
});

function refAAC(s, t, labels, queue, qLabels, centres, assign, tau, lambda) {
  const S_ = rows(s).map(unit), T_ = rows(t).map(unit), Q = rows(queue), C = rows(centres);
  let lc = 0, lt = 0;
  S_.forEach((si, i) => {
    const y = labels.data[i];
    const logits = [dot(si, T_[i]), ...Q.map((q) => dot(si, q)), ...C.map((c) => dot(si, c))].map((v) => v / tau);
    const lp = logSoftmaxRow(logits);
    let pos = lp[0], count = 1;
    Q.forEach((_, k) => {
      if (qLabels.data[k] === y) {
        pos += lp[1 + k];
        count++;
      }
    });
    const P = count + 1;
    lc += pos / P;
    lt += lp[1 + Q.length + assign[y]] / P;
  });
  return scalar(-(lc / S_.length) - lambda * (lt / S_.length));
}

test('adaptiveAnatomicalContrast (ACTION++ TSC): own view + same-class queue rows positive, assigned centre as target', async () => {
  const r = rng(8);
  const n = 6, D = 5, Kq = 7, C = 3;
  const s = Ref.random([n, D], r).f32();
  const t = Ref.random([n, D], r).f32();
  const labels = new Ref([0, 1, 2, 1, 0, 2], [n], 'i32');
  const queue = new Ref(rows(Ref.random([Kq, D], r)).flatMap(unit), [Kq, D]).f32();
  const qLabels = new Ref([0, -1, 1, 1, 2, -1, 0], [Kq], 'i32');
  const centres = new Ref(S().simplexCentres(C, D).flatMap((v) => Array.from(v)), [C, D]).f32();
  const assign = [2, 0, 1];
  const ts = [t, labels, queue, qLabels, centres].map((x) => x.toTensor());
  const call = (x) => S().adaptiveAnatomicalContrast({ student: x, teacher: ts[0], labels: ts[1], queue: ts[2], queueLabels: ts[3], centres: ts[4], assignment: assign }, { temperature: 0.2, lambda: 0.2 });
  const st = s.toTensor();
  const out = call(st);
  await assertClose(out, refAAC(s, t, labels, queue, qLabels, centres, assign, 0.2, 0.2), { rtol: 1e-4, atol: 1e-6 });
  await gradcheck64(call, (x) => refAAC(x, t, labels, queue, qLabels, centres, assign, 0.2, 0.2), [s], { msg: 'adaptiveAnatomicalContrast' });
  assertThrowsWith(() => S().adaptiveAnatomicalContrast({ student: st, teacher: ts[0], labels: ts[1], queue: ts[2], queueLabels: ts[3], centres: ts[4], assignment: [0, 1] }), ['adaptiveAnatomicalContrast', 'each of the 3 classes', 'got 2']);
  for (const x of [...ts, st, out]) x.dispose();
});

function refNN(s, t, pool, k) {
  const P = rows(pool).map(unit);
  let total = 0;
  rows(s).forEach((sv, b) => {
    const tv = unit(rows(t)[b]);
    const order = P.map((p, j) => [dot(tv, p), j]).sort((a, c) => c[0] - a[0]).slice(0, k);
    const su = unit(sv);
    for (const [, j] of order) total += 2 - 2 * dot(su, P[j]);
  });
  return scalar(total / (s.shape[0] * k));
}

test('nearestNeighbourLoss (MONA, mean-shift form): neighbours by the teacher, gradient through the student', async () => {
  const r = rng(9);
  const s = Ref.random([3, 4], r).f32();
  const t = Ref.random([3, 4], r).f32();
  const pool = Ref.random([8, 4], r).f32();
  const [tt, pt] = [t.toTensor(), pool.toTensor()];
  const st = s.toTensor();
  const out = S().nearestNeighbourLoss(st, tt, pt, 3);
  await assertClose(out, refNN(s, t, pool, 3), { rtol: 1e-5, atol: 1e-6 });
  await gradcheck64((x) => S().nearestNeighbourLoss(x, tt, pt, 3), (x) => refNN(x, t, pool, 3), [s], { msg: 'nearestNeighbourLoss' });
  assertThrowsWith(() => S().nearestNeighbourLoss(st, tt, pt, 9), ['nearestNeighbourLoss', 'k must be an integer in [1, 8]', 'got 9']);
  for (const x of [tt, pt, st, out]) x.dispose();
});

function refEqv(pred, target, mask) {
  const [n, c, h, w] = pred.shape;
  const P = h * w;
  let total = 0;
  for (let b = 0; b < n; b++) {
    let num = 0, den = 0;
    for (let p = 0; p < P; p++) {
      const lp = logSoftmaxRow(Array.from({ length: c }, (_, k) => pred.data[(b * c + k) * P + p]));
      const lt = logSoftmaxRow(Array.from({ length: c }, (_, k) => target.data[(b * c + k) * P + p]));
      const kl = lt.reduce((s, l, k) => s + Math.exp(l) * (l - lp[k]), 0);
      num += mask.data[b * P + p] * kl;
      den += mask.data[b * P + p];
    }
    total += num / Math.max(den, 1e-6);
  }
  return scalar(total / n);
}

test('equivarianceKL (MONA): masked per-image KL(softmax(target) ‖ softmax(pred)), averaged over images', async () => {
  const r = rng(10);
  const pred = Ref.random([2, 3, 3, 4], r, -2, 2).f32();
  const target = Ref.random([2, 3, 3, 4], r, -2, 2).f32();
  const mask = new Ref(Array.from({ length: 24 }, () => (r.next() < 0.6 ? 1 : 0)), [2, 3, 4]);
  const [tt, mt] = [target.toTensor(), mask.toTensor()];
  const pt = pred.toTensor();
  const out = S().equivarianceKL(pt, tt, mt);
  await assertClose(out, refEqv(pred, target, mask), { rtol: 1e-5, atol: 1e-6 });
  await gradcheck64((x) => S().equivarianceKL(x, tt, mt), (x) => refEqv(x, target, mask), [pred], { msg: 'equivarianceKL' });
  for (const x of [tt, mt, pt, out]) x.dispose();
});

test.run();
