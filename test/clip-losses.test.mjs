// The robust-CLIP losses against float64 references written here (forward values and finite-difference gradients):
// CLIP's symmetric contrastive loss, CFR's calibration InfoNCE, the targeted supervised contrastive term with its
// queue / EMA centroids / Hungarian target assignment, and the simplex targets.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Ref, assertClose, assertThrowsWith, gradcheck64, rng, setup, vg } from './helpers.mjs';

test.before(setup);
const M = () => vg.methods.clip;

const lse = (xs) => {
  const m = Math.max(...xs);
  return m + Math.log(xs.reduce((s, x) => s + Math.exp(x - m), 0));
};
const unit = (v) => {
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
};
const dot = (a, b) => a.reduce((s, x, i) => s + x * b[i], 0);
const rows = (ref, D) => Array.from({ length: ref.data.length / D }, (_, i) => Array.from(ref.data.subarray(i * D, (i + 1) * D)));

function clipLossRef(L) {
  const N = L.shape[0];
  const at = (i, j) => L.data[i * N + j];
  let s = 0;
  for (let i = 0; i < N; i++) {
    s += lse(Array.from({ length: N }, (_, j) => at(i, j))) - at(i, i);
    s += lse(Array.from({ length: N }, (_, j) => at(j, i))) - at(i, i);
  }
  return new Ref([s / (2 * N)], []);
}

test('clipContrastiveLoss: value and gradient against float64', async () => {
  const r = rng(3);
  const L = Ref.random([6, 6], r, -3, 3).f32();
  const out = M().clipContrastiveLoss(L.toTensor());
  await assertClose(out, clipLossRef(L), { rtol: 1e-5, atol: 1e-6, msg: 'clip loss' });
  out.dispose();
  await gradcheck64((l) => M().clipContrastiveLoss(l), clipLossRef, [L]);
  const bad = vg.zeros([3, 4]);
  assertThrowsWith(() => M().clipContrastiveLoss(bad), ['clipContrastiveLoss', 'square [N, N]', '[3, 4]']);
  bad.dispose();
});

function cfrRef(tau) {
  return (A, P, N) => {
    const [B, D] = A.shape;
    const [, k] = P.shape;
    const [, m] = N.shape;
    const a = rows(A, D).map(unit);
    const p = rows(P, D).map(unit);
    const n = rows(N, D).map(unit);
    let s = 0;
    for (let b = 0; b < B; b++)
      for (let j = 0; j < k; j++) {
        const sp = dot(a[b], p[b * k + j]) / tau;
        const logits = [sp, ...Array.from({ length: m }, (_, i) => dot(a[b], n[b * m + i]) / tau)];
        s += lse(logits) - sp;
      }
    return new Ref([s / (B * k)], []);
  };
}

test('cfrContrastiveLoss: every positive against the shared hardest negatives, τ = 1 and 0.5', async () => {
  const r = rng(5);
  const A = Ref.random([4, 8], r).f32();
  const P = Ref.random([4, 3, 8], r).f32();
  const N = Ref.random([4, 5, 8], r).f32();
  for (const tau of [1, 0.5]) {
    const out = M().cfrContrastiveLoss(A.toTensor(), P.toTensor(), N.toTensor(), { temperature: tau });
    await assertClose(out, cfrRef(tau)(A, P, N), { rtol: 1e-5, atol: 1e-6, msg: `τ ${tau}` });
    out.dispose();
    await gradcheck64((a, p, n) => M().cfrContrastiveLoss(a, p, n, { temperature: tau }), cfrRef(tau), [A, P, N], { msg: `τ ${tau}` });
  }
  const a = vg.zeros([4, 8]);
  const p = vg.zeros([4, 3, 7]);
  assertThrowsWith(() => M().cfrContrastiveLoss(a, p, p), ['cfrContrastiveLoss', 'same B and D']);
  [a, p].forEach((t) => t.dispose());
});

test('simplexTargets: unit vectors with pairwise cosine -1/(C-1)', () => {
  for (const [C, D] of [[2, 3], [3, 2], [4, 5], [5, 4]]) {
    const t = M().simplexTargets(C, D);
    const v = Array.from({ length: C }, (_, i) => Array.from(t.subarray(i * D, (i + 1) * D)));
    for (let i = 0; i < C; i++) {
      assert.ok(Math.abs(Math.hypot(...v[i]) - 1) < 1e-12, `C ${C} D ${D} norm`);
      for (let j = i + 1; j < C; j++) assert.ok(Math.abs(dot(v[i], v[j]) + 1 / (C - 1)) < 1e-12, `C ${C} D ${D} cos ${i},${j}`);
    }
  }
  assertThrowsWith(() => M().simplexTargets(4, 2), ['simplexTargets', 'D >= C - 1']);
});

/** The TSC loss in float64 from the state (queue, labels, targets, assignment) of `tsc`. */
function tscRef(tsc, labels) {
  return (F) => {
    const D = tsc.dim;
    const K = tsc.filled;
    const C = tsc.numClasses;
    const T = tsc.temperature;
    const q = rows(F, D).map(unit);
    const queue = Array.from({ length: K }, (_, j) => Array.from(tsc.queue.subarray(j * D, (j + 1) * D)));
    const targets = Array.from({ length: C }, (_, c) => Array.from(tsc.targets.subarray(c * D, (c + 1) * D)));
    let s = 0;
    q.forEach((qb, b) => {
      // the own key is q itself (detached): its logit is 1 / T whatever q is
      const logits = [1 / T, ...queue.map((k) => dot(qb, k) / T), ...targets.map((t) => dot(qb, t) / T)];
      const Z = lse(logits);
      const lp = (i) => logits[i] - Z;
      const same = queue.map((_, j) => j).filter((j) => tsc.queueLabels[j] === labels[b]);
      let term = lp(0) + tsc.targetWeight * lp(1 + K + tsc.assignment[labels[b]]);
      if (same.length) term += same.reduce((acc, j) => acc + lp(1 + j), 0) / same.length;
      s -= term;
    });
    return new Ref([s / q.length], []);
  };
}

test('TargetedSupConLoss: loss against float64 with an empty and a filled queue; EMA centroids, Hungarian, ring buffer', async () => {
  const r = rng(9);
  const D = 6;
  const tsc = new (M().TargetedSupConLoss)(D, 3, { queueSize: 10, temperature: 0.5, targetWeight: 0.2 });
  const labels1 = [0, 1, 2, 1, 0, 2, 2];
  const F1 = Ref.random([7, D], r).f32();
  // empty queue: own key and targets only
  let out = tsc.loss(F1.toTensor(), labels1);
  await assertClose(out, tscRef(tsc, labels1)(F1), { rtol: 1e-5, atol: 1e-6, msg: 'empty queue' });
  out.dispose();
  const f1 = F1.toTensor();
  await tsc.update(f1, labels1);
  f1.dispose();
  assert.is(tsc.filled, 7);
  const q1 = rows(F1, D).map(unit);
  // first update: centroid = normalised mean of the class's normalised features
  for (let c = 0; c < 3; c++) {
    const members = q1.filter((_, b) => labels1[b] === c);
    const mean = unit(members.reduce((acc, v) => acc.map((x, i) => x + v[i]), new Array(D).fill(0)));
    mean.forEach((x, i) => assert.ok(Math.abs(tsc.centroids[c][i] - x) < 1e-6, `centroid ${c}[${i}]`));
  }
  // assignment maximises the summed cosine over the 3! permutations
  const targets = Array.from({ length: 3 }, (_, c) => Array.from(tsc.targets.subarray(c * D, (c + 1) * D)));
  const perms = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]];
  const score = (p) => p.reduce((s, t, c) => s + dot(Array.from(tsc.centroids[c]), targets[t]), 0);
  const best = Math.max(...perms.map(score));
  assert.ok(Math.abs(score(tsc.assignment) - best) < 1e-9, `assignment ${tsc.assignment}`);
  // filled queue: same-label keys are positives
  const labels2 = [2, 0, 1, 1, 0];
  const F2 = Ref.random([5, D], r).f32();
  out = tsc.loss(F2.toTensor(), labels2);
  await assertClose(out, tscRef(tsc, labels2)(F2), { rtol: 1e-5, atol: 1e-6, msg: 'filled queue' });
  out.dispose();
  await gradcheck64((f) => tsc.loss(f, labels2), tscRef(tsc, labels2), [F2]);
  // second update: EMA 0.9 old + 0.1 batch mean, renormalised; the queue wraps (7 + 5 > 10)
  const before = tsc.centroids.map((c) => Array.from(c));
  const f2 = F2.toTensor();
  await tsc.update(f2, labels2);
  f2.dispose();
  const q2 = rows(F2, D).map(unit);
  for (let c = 0; c < 3; c++) {
    const members = q2.filter((_, b) => labels2[b] === c);
    const mean = members.reduce((acc, v) => acc.map((x, i) => x + v[i] / members.length), new Array(D).fill(0));
    const want = unit(before[c].map((x, i) => 0.9 * x + 0.1 * mean[i]));
    want.forEach((x, i) => assert.ok(Math.abs(tsc.centroids[c][i] - x) < 1e-6, `EMA centroid ${c}[${i}]`));
  }
  assert.is(tsc.filled, 10);
  assert.equal(Array.from(tsc.queueLabels), [1, 0, 2, 1, 0, 2, 2, 2, 0, 1]);
  q2[4].forEach((x, i) => assert.ok(Math.abs(tsc.queue[1 * D + i] - x) < 1e-6, 'wrapped key'));
  const bad = vg.zeros([2, D]);
  assertThrowsWith(() => tsc.loss(bad, [0, 3]), ['TargetedSupConLoss', 'labels[1]', '[0, 3)']);
  assertThrowsWith(() => tsc.loss(bad, [0]), ['TargetedSupConLoss', 'one class per feature row']);
  bad.dispose();
});

test.run();
