// infoNCE (fused, shaders/info_nce.wgsl): against PyTorch fixtures (test/fixtures/gen_contrastive.py: indexed and
// all-keys negatives, one shared positive, the three reductions; loss and the gradients of queries, keys and
// positives), against a float64 JS reference and float64 finite differences, against the same loss materialised with
// generic ops (gather + bmm + crossEntropy), with repeated bank rows (the grouped bank gradient), and bad input.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fixtureRef, loadFixtures } from './fixtures.mjs';
import { Ref, assertClose, assertThrowsWith, gradcheck64, rng, setup, vg } from './helpers.mjs';

test.before(setup);

const CASES = loadFixtures('contrastive').filter((c) => c.op === 'infoNCE');
const GRAD_TOL = { rtol: 1e-4, atol: 2e-6 };

test('infoNCE matches cross-entropy over [positive | negatives] in PyTorch: loss and all three gradients', async () => {
  assert.ok(CASES.length >= 4, 'fixture cases present');
  for (const c of CASES) {
    const msg = `infoNCE q [${c.q.shape}] keys [${c.keys.shape}] pos [${c.pos.shape}] ${c.index ? `index [${c.index.shape}]` : 'all keys'} ${c.reduction}`;
    const [q, keys, pos] = [c.q, c.keys, c.pos].map((e) => fixtureRef(e).toTensor({ requiresGrad: true }));
    const index = c.index ? fixtureRef(c.index).toTensor() : undefined;
    const loss = vg.infoNCE(q, keys, pos, { temperature: c.tau, negativeIndex: index, reduction: c.reduction });
    // (fixture_io stores a 0-d reference as [1])
    const want = fixtureRef(c.out);
    await assertClose(loss, c.reduction === 'none' ? want : new Ref(want.data, []), { rtol: 1e-5, atol: 1e-5, msg });
    const g = fixtureRef(c.g);
    loss.backward(new Ref(g.data, loss.shape).toTensor());
    await assertClose(q.grad, fixtureRef(c.gq), { ...GRAD_TOL, msg: `${msg} query gradient` });
    await assertClose(keys.grad, fixtureRef(c.gkeys), { ...GRAD_TOL, msg: `${msg} keys gradient` });
    await assertClose(pos.grad, fixtureRef(c.gpos), { ...GRAD_TOL, msg: `${msg} positives gradient` });
    for (const t of [q, keys, pos, loss, index]) t?.dispose();
  }
});

/** Float64 InfoNCE: per-query losses, then the reduction. index: Ref [Q, J] or null (all keys). */
function refInfoNCE(q, keys, pos, index, tau, reduction = 'mean') {
  const [Q, D] = q.shape;
  const K = keys.shape[0];
  const J = index ? index.shape[1] : K;
  const shared = pos.shape.length === 1 || pos.shape[0] === 1;
  const dot = (a, ao, b, bo) => {
    let s = 0;
    for (let d = 0; d < D; d++) s += a.data[ao + d] * b.data[bo + d];
    return s;
  };
  const losses = new Float64Array(Q);
  for (let i = 0; i < Q; i++) {
    const logits = [dot(q, i * D, pos, shared ? 0 : i * D) / tau];
    for (let j = 0; j < J; j++) logits.push(dot(q, i * D, keys, (index ? index.data[i * J + j] : j) * D) / tau);
    const m = Math.max(...logits);
    losses[i] = m + Math.log(logits.reduce((s, l) => s + Math.exp(l - m), 0)) - logits[0];
  }
  if (reduction === 'none') return new Ref(losses, [Q]);
  const total = losses.reduce((s, v) => s + v, 0);
  return new Ref([reduction === 'mean' ? total / Q : total], []);
}

/** Random indices [Q, J] into K rows (i32 Ref); `repeat` draws from only a few rows so that many (q, j) share one. */
function randomIndex(Q, J, K, r, repeat = false) {
  return new Ref(Array.from({ length: Q * J }, () => r.int(0, repeat ? Math.min(K, 3) : K)), [Q, J], 'i32');
}

test('float64 finite differences: indexed, all keys, shared positive, each reduction', async () => {
  const r = rng(21);
  const Q = 5, K = 8, D = 4;
  for (const [J, shared, reduction, tau, tile] of [[6, false, 'mean', 0.5], [null, false, 'sum', 0.3, 3], [7, true, 'none', 0.8], [null, true, 'mean', 0.4]]) {
    const index = J ? randomIndex(Q, J, K, r) : null;
    const inputs = [Ref.random([Q, D], r), Ref.random([K, D], r), Ref.random(shared ? [D] : [Q, D], r)];
    const msg = `infoNCE ${J ? `J=${J}` : `all keys, tile ${tile ?? 'whole'}`} ${shared ? 'shared positive' : ''} ${reduction}`;
    const idxT = index?.toTensor();
    await gradcheck64(
      (q, k, p) => vg.infoNCE(q, k, p, { temperature: tau, negativeIndex: idxT, reduction, tile }),
      (q, k, p) => refInfoNCE(q, k, p, index, tau, reduction),
      inputs,
      { msg },
    );
    idxT?.dispose();
  }
});

/** The same loss written with generic ops: gather the negatives, bmm, cat the positive logit, crossEntropy. */
function materialised(q, keys, pos, index, tau) {
  return vg.tidy(() => {
    const [Q, D] = q.shape;
    const negs = index ? vg.reshape(vg.indexSelect(keys, 0, vg.reshape(index, [-1])), [Q, -1, D]) : vg.expand(vg.unsqueeze(keys, 0), [Q, ...keys.shape]);
    const lneg = vg.squeeze(vg.bmm(negs, vg.unsqueeze(q, 2)), 2);
    const lpos = vg.sum(vg.mul(q, pos), { dim: 1, keepdim: true });
    const logits = vg.div(vg.cat([lpos, lneg], 1), tau);
    return vg.crossEntropy(logits, vg.zeros([Q], { dtype: 'i32' }));
  });
}

test('the fused loss equals the materialised one (gather + bmm + crossEntropy) and the float64 reference; repeated bank rows', async () => {
  const r = rng(22);
  // Q·J = 19,200 entries onto 300 rows (or onto 3 rows: each read ~6,400 times), D not a multiple of the workgroup
  for (const [Q, J, K, D, repeat, tau] of [[150, 128, 300, 70, false, 0.1], [40, 200, 300, 33, true, 0.5], [90, null, 130, 100, false, 0.2]]) {
    const msg = `Q=${Q} J=${J ?? 'all'} K=${K} D=${D}${repeat ? ' repeated rows' : ''}`;
    const [qr, kr, pr] = [Ref.random([Q, D], r, -0.3, 0.3).f32(), Ref.random([K, D], r, -0.3, 0.3).f32(), Ref.random([Q, D], r, -0.3, 0.3).f32()];
    const ir = J ? randomIndex(Q, J, K, r, repeat) : null;
    const index = ir?.toTensor();
    const fused = [qr, kr, pr].map((x) => x.toTensor({ requiresGrad: true }));
    const plain = [qr, kr, pr].map((x) => x.toTensor({ requiresGrad: true }));
    const a = vg.infoNCE(...fused, { temperature: tau, negativeIndex: index });
    const b = materialised(...plain, index, tau);
    await assertClose(a, refInfoNCE(qr, kr, pr, ir, tau), { rtol: 1e-5, atol: 1e-5, msg: `${msg} fused vs float64` });
    await assertClose(a, new Ref(await b.data(), []), { rtol: 1e-5, atol: 1e-5, msg: `${msg} fused vs materialised` });
    a.backward();
    b.backward();
    for (let i = 0; i < 3; i++) {
      const want = new Ref(await plain[i].grad.data(), plain[i].shape);
      const scale = Math.max(...want.data.map(Math.abs));
      await assertClose(fused[i].grad, want, { rtol: 1e-3, atol: 1e-4 * scale, msg: `${msg} gradient of input ${i}` });
    }
    for (const t of [...fused, ...plain, a, b, index]) t?.dispose();
  }
});

test('all keys as negatives over several logit tiles (the online log-sum-exp): loss and gradients against float64', async () => {
  const r = rng(24);
  // 1,000 keys in tiles of 128: 7 full tiles and a last one of 104
  const Q = 300, K = 1000, D = 8, tau = 0.5;
  const [qr, kr, pr] = [Ref.random([Q, D], r).f32(), Ref.random([K, D], r).f32(), Ref.random([Q, D], r).f32()];
  const [q, k, p] = [qr, kr, pr].map((x) => x.toTensor({ requiresGrad: true }));
  const loss = vg.infoNCE(q, k, p, { temperature: tau, tile: 128 });
  loss.backward();
  // float64: softmax weights w = (p - onehot(0)) / (Q tau); dq = Σ w row, dkey = Σ w q, dpos = w0 q
  const gq = new Float64Array(Q * D);
  const gk = new Float64Array(K * D);
  const gp = new Float64Array(Q * D);
  let total = 0;
  const logits = new Float64Array(K + 1);
  for (let i = 0; i < Q; i++) {
    const qi = qr.data.subarray(i * D, i * D + D);
    const dotWith = (src, row) => qi.reduce((s, v, d) => s + v * src.data[row * D + d], 0);
    logits[0] = dotWith(pr, i) / tau;
    for (let j = 0; j < K; j++) logits[j + 1] = dotWith(kr, j) / tau;
    const m = Math.max(...logits);
    let s = 0;
    for (const l of logits) s += Math.exp(l - m);
    const lse = m + Math.log(s);
    total += lse - logits[0];
    for (let c = 0; c <= K; c++) {
      const w = (Math.exp(logits[c] - lse) - (c === 0 ? 1 : 0)) / (Q * tau);
      const row = c === 0 ? pr.data.subarray(i * D, i * D + D) : kr.data.subarray((c - 1) * D, c * D);
      for (let d = 0; d < D; d++) {
        gq[i * D + d] += w * row[d];
        if (c === 0) gp[i * D + d] = w * qi[d];
        else gk[(c - 1) * D + d] += w * qi[d];
      }
    }
  }
  await assertClose(loss, new Ref([total / Q], []), { rtol: 2e-5, atol: 1e-5, msg: 'tiled loss' });
  for (const [t, want, name] of [[q, gq, 'query'], [k, gk, 'keys'], [p, gp, 'positives']]) {
    const scale = Math.max(...want.map(Math.abs));
    await assertClose(t.grad, new Ref(want, t.shape), { rtol: 1e-3, atol: 1e-4 * scale, msg: `tiled ${name} gradient` });
  }
  for (const t of [q, k, p, loss]) t.dispose();
});

test('no [Q, J, D] tensor: the forward and backward of 512 indexed negatives stay within a few [Q, D] buffers', async () => {
  const r = rng(23);
  const Q = 256, J = 512, K = 2048, D = 64;
  const [q, k, p] = [[Q, D], [K, D], [Q, D]].map((s) => Ref.random(s, r).toTensor({ requiresGrad: true }));
  const index = randomIndex(Q, J, K, r).toTensor();
  await vg.sync();
  vg.emptyCache(); // restarts the peak at the bytes in use now
  const before = vg.memory().peakBytes;
  const loss = vg.infoNCE(q, k, p, { temperature: 0.1, negativeIndex: index });
  loss.backward();
  await loss.data();
  const grown = vg.memory().peakBytes - before;
  // the gathered negatives alone would take Q·J·D·4 = 32 MiB
  assert.ok(grown < (Q * J * D * 4) / 8, `peak grew by ${grown} bytes`);
  for (const t of [q, k, p, index, loss]) t.dispose();
});

test('a GPU-resident negativeIndex outside the bank raises at the read back, naming infoNCE and the value', async () => {
  const q = vg.ones([4, 3]);
  const k = vg.ones([6, 3]);
  const p = vg.ones([4, 3]);
  // made on the GPU (randint), so only the kernel sees the values: every index is 6, 7 or 8 of a 6-row bank
  const idx = vg.randint(6, 9, [4, 5], { seed: 1 });
  const err = await vg.infoNCE(q, k, p, { temperature: 1, negativeIndex: idx }).data().then(() => null, (e) => e);
  assert.ok(err instanceof Error, 'an out-of-range GPU index must raise');
  for (const f of ['infoNCE', 'negativeIndex', '[0, 6)']) assert.ok(err.message.includes(f), `"${f}" missing in: ${err.message}`);
  // the engine stays usable
  const good = vg.infoNCE(q, k, p, { temperature: 1, negativeIndex: vg.zeros([4, 5], { dtype: 'i32' }) });
  await assertClose(good, new Ref([Math.log(6)], []), { rtol: 1e-6, atol: 1e-6, msg: 'equal logits: log(1 + J)' });
  for (const t of [q, k, p, idx, good]) t.dispose();
});

test('bad input: clear errors naming infoNCE and the argument', () => {
  const q = vg.zeros([4, 3]);
  const k = vg.zeros([6, 3]);
  const p = vg.zeros([4, 3]);
  const idx = vg.zeros([4, 5], { dtype: 'i32' });
  assertThrowsWith(() => vg.infoNCE(q, k, p, {}), ['infoNCE', 'temperature', 'undefined']);
  assertThrowsWith(() => vg.infoNCE(q, k, p, { temperature: 0 }), ['infoNCE', 'temperature', '> 0']);
  assertThrowsWith(() => vg.infoNCE(q, vg.zeros([6, 2]), p, { temperature: 1 }), ['infoNCE', 'keys', '[K, 3]', '[6, 2]']);
  assertThrowsWith(() => vg.infoNCE(q, k, vg.zeros([3, 3]), { temperature: 1 }), ['infoNCE', 'positives', '[4, 3]', '[3, 3]']);
  assertThrowsWith(() => vg.infoNCE(q, k, p, { temperature: 1, negativeIndex: vg.zeros([3, 5], { dtype: 'i32' }) }), ['infoNCE', 'negativeIndex', '[4, J]', '[3, 5]']);
  assertThrowsWith(() => vg.infoNCE(q, k, p, { temperature: 1, negativeIndex: vg.zeros([4, 5]) }), ['infoNCE', 'negativeIndex', 'integer', 'f32']);
  assertThrowsWith(() => vg.infoNCE(q, k, p, { temperature: 1, negativeIndex: vg.full([4, 5], 6, { dtype: 'i32' }) }), ['infoNCE', 'negativeIndex']);
  assertThrowsWith(() => vg.infoNCE(q, k, p, { temperature: 1, reduction: 'avg' }), ['infoNCE', 'reduction', 'avg']);
  assertThrowsWith(() => vg.infoNCE(q, k, p, { temperature: 1, margin: 1 }), ['infoNCE', "unknown option 'margin'"]);
  assertThrowsWith(() => vg.infoNCE(q, k, p, { temperature: 1, tile: 0 }), ['infoNCE', 'tile', 'positive integer']);
  for (const t of [q, k, p, idx]) t.dispose();
});

test.run();
