// MORSE (vg.models.Morse, MoEHead, PointHead): the gate's maths (ReLU before the softmax, stochastic dropping of
// r ~ U{0..U} experts without renormalisation), the point heads against float64 references of their Conv1d MLPs
// and Fourier features, the refinement's overwrite of the uncertain cells, the loss schedule, and finite
// differences of the point loss.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Ref, assertClose, gradcheck, rng, setup, vg } from './helpers.mjs';

test.before(setup);

const host = async (t) => Float64Array.from(await t.data());

/** float64 Conv1d k=1 over x [B, Cin, N] with weight [Cout, Cin, 1] and bias [Cout]. */
function conv1x1(x, shape, w, b, cout) {
  const [bs, cin, n] = shape;
  const out = new Float64Array(bs * cout * n);
  for (let bi = 0; bi < bs; bi++)
    for (let o = 0; o < cout; o++)
      for (let j = 0; j < n; j++) {
        let s = b[o];
        for (let i = 0; i < cin; i++) s += w[o * cin + i] * x[(bi * cin + i) * n + j];
        out[(bi * cout + o) * n + j] = s;
      }
  return out;
}

/** Concatenation along dim 1 of [B, C_k, N] arrays. */
function catChannels(parts, n, bs) {
  const cs = parts.map((p) => p.data.length / (bs * n));
  const total = cs.reduce((a, b) => a + b, 0);
  const out = new Float64Array(bs * total * n);
  for (let bi = 0; bi < bs; bi++) {
    let c0 = 0;
    parts.forEach((p, k) => {
      out.set(p.data.subarray(bi * cs[k] * n, (bi + 1) * cs[k] * n), (bi * total + c0) * n);
      c0 += cs[k];
    });
  }
  return { data: out, channels: total };
}

async function refHead(head, fine, coarse, points, implicit) {
  const [bs, , n] = fine.shape;
  const params = Object.fromEntries(await Promise.all(head.namedParameters().map(async ([k, t]) => [k, await host(t)])));
  const parts = [fine, coarse];
  if (implicit) {
    const B = await host(head.fourier);
    const [d, f] = head.fourier.shape;
    const pe = new Float64Array(bs * 2 * f * n);
    for (let bi = 0; bi < bs; bi++)
      for (let j = 0; j < n; j++)
        for (let q = 0; q < f; q++) {
          let s = 0;
          for (let a = 0; a < d; a++) s += (2 * points.data[(bi * n + j) * d + a] - 1) * B[a * f + q];
          pe[(bi * 2 * f + q) * n + j] = Math.sin(2 * Math.PI * s);
          pe[(bi * 2 * f + f + q) * n + j] = Math.cos(2 * Math.PI * s);
        }
    parts.unshift({ data: pe });
  }
  let x = catChannels(parts, n, bs);
  const classes = coarse.shape[1];
  for (let i = 0; ; i++) {
    const w = params[`fc_layers.${i}.weight`];
    if (!w) break;
    const cout = params[`fc_layers.${i}.bias`].length;
    const h = conv1x1(x.data, [bs, x.channels, n], w, params[`fc_layers.${i}.bias`], cout).map((v) => Math.max(v, 0));
    x = catChannels([{ data: h }, coarse], n, bs);
  }
  return new Ref(conv1x1(x.data, [bs, x.channels, n], params['predictor.weight'], params['predictor.bias'], classes), [bs, classes, n]);
}

test('point heads (standard and implicit) match a float64 reference of their Conv1d MLPs and Fourier features', async () => {
  const r = rng(2);
  for (const implicit of [false, true]) {
    const head = new vg.models.PointHead(6, 3, implicit, { fcDim: 8, frequencies: 5, seed: 3 });
    const fine = Ref.random([2, 6, 7], r).f32();
    const coarse = Ref.random([2, 3, 7], r).f32();
    const points = Ref.random([2, 7, 2], r, 0, 1).f32();
    const ts = [fine, coarse, points].map((x) => x.toTensor());
    const out = head.call(...ts);
    await assertClose(out, await refHead(head, fine, coarse, points, implicit), { rtol: 1e-4, atol: 1e-5, msg: implicit ? 'implicit' : 'standard' });
    if (implicit) assert.equal(head.fourier.shape, [2, 5]);
    // the implicit head's width is fine + 2·frequencies (MORSE's input_channels + 256); the standard one is fcDim
    assert.is(head.namedParameters().find(([k]) => k === 'fc_layers.0.weight')[1].shape[0], implicit ? 6 + 10 : 8);
    for (const t of [...ts, out]) t.dispose();
    head.dispose();
  }
});

test('MoE gate (2-D and 3-D): softmax of ReLU(gate logits); dropped experts get weight 0 and the others are not renormalised', async () => {
  for (const dims of [2, 3]) await checkGate(dims);
});

async function checkGate(dims) {
  const moe = new vg.models.MoEHead([6, 4, 3], { width: 5, outChannels: 7, dropExperts: 2, seed: 1, dims });
  const r = rng(4);
  const side = (n) => new Array(dims).fill(n);
  const maps = [[2, 6, ...side(2)], [2, 4, ...side(4)], [2, 3, ...side(4)]].map((s) => Ref.random(s, r).toTensor());
  moe.eval();
  const { weights, experts } = moe.gateAndExperts(maps);
  // the gate's logits before its last ReLU
  const gate = moe.namedChildren().find(([k]) => k === 'gate')[1];
  const z = vg.noGrad(() => [0, 1, 2, 3, 4].reduce((h, i) => gate.at(i).call(h), vg.cat(experts, 1)));
  const zh = await host(z);
  const [b, e, ...spatial] = z.shape;
  assert.equal(spatial, side(4), `dims ${dims}: the experts are resized to the finest map`);
  const hw = spatial.reduce((x, y) => x * y, 1);
  const ref = new Float64Array(zh.length);
  for (let bi = 0; bi < b; bi++)
    for (let p = 0; p < hw; p++) {
      const at = (i) => (bi * e + i) * hw + p;
      const ex = Array.from({ length: e }, (_, i) => Math.exp(Math.max(zh[at(i)], 0)));
      const s = ex.reduce((a, c) => a + c, 0);
      for (let i = 0; i < e; i++) ref[at(i)] = ex[i] / s;
    }
  await assertClose(weights, new Ref(ref, z.shape), { rtol: 1e-5, atol: 1e-6, msg: 'eval weights' });
  // the fused output is Σ w_i g_i through the post-MLP: dropping nothing in eval mode gives the same map twice
  const a = moe.call(...maps);
  const again = moe.call(...maps);
  await assertClose(a, new Ref(await host(again), again.shape), { rtol: 0, atol: 0, msg: 'eval mode is deterministic' });

  // training: masks of r ~ U{0..2} dropped experts; the kept weights equal the unmasked ones
  moe.train();
  const counts = [0, 0, 0];
  for (let t = 0; t < 600; t++) counts[moe.expertMask().filter((k) => k === 0).length]++;
  // chi-square with 2 degrees of freedom against uniform counts of 200: 13.8 is its 0.999 quantile
  const chi = counts.reduce((s, c) => s + (c - 200) ** 2 / 200, 0);
  assert.ok(chi < 13.8, `dropped-expert counts ${counts} are not uniform on {0, 1, 2} (chi-square ${chi.toFixed(1)})`);
  let seenDrop = false;
  for (let t = 0; t < 20 && !seenDrop; t++) {
    const state = vg.noGrad(() => moe.gateAndExperts(maps));
    const full = vg.noGrad(() => vg.softmax(gate.call(vg.cat(state.experts, 1)), { dim: 1 }));
    const got = await host(state.weights);
    const want = await host(full);
    const dropped = Array.from({ length: e }, (_, i) => got.slice(i * hw, (i + 1) * hw).every((v) => v === 0));
    for (let bi = 0; bi < b; bi++)
      for (let i = 0; i < e; i++)
        for (let p = 0; p < hw; p++) {
          const k = (bi * e + i) * hw + p;
          assert.ok(dropped[i] ? got[k] === 0 : Math.abs(got[k] - want[k]) <= 1e-6, `expert ${i} weight at ${k}: ${got[k]} vs ${want[k]}`);
        }
    seenDrop = dropped.some(Boolean);
    for (const t of [state.weights, ...state.experts, full]) t.dispose();
  }
  assert.ok(seenDrop, 'no expert was dropped in 20 training draws');
  for (const t of [...maps, weights, ...experts, z, a, again]) t.dispose();
  moe.dispose();
}

/** A small MORSE on a 2-D UNet (5 maps of 4 channels) or, with dims 3, on a VNet of 2 base filters (maps 8, 4, 2). */
function tinyMorse(implicit, dims = 2) {
  const backbone =
    dims === 3 ? new vg.models.VNet({ filters: 2, numClasses: 3, seed: 1 }) : new vg.models.UNet2D({ inChannels: 1, numClasses: 3, features: [4, 4, 4, 4, 4], seed: 1 });
  const mapChannels = dims === 3 ? [8, 4, 2] : [4, 4, 4, 4, 4];
  return new vg.models.Morse(backbone, {
    numClasses: 3,
    mapChannels,
    moe: { width: 6, outChannels: 5, dropExperts: mapChannels.length - 1 },
    implicit,
    pointHead: { fcDim: 6, frequencies: 4 },
    trainPoints: 20,
    subdivisionPoints: 30,
    subdivisionSteps: 1,
    seed: 2,
  });
}

test('refine (2-D and 3-D) overwrites exactly the most uncertain cells with the point head logits', async () => {
  for (const dims of [2, 3]) await checkRefine(dims);
});

async function checkRefine(dims) {
  const model = tinyMorse(true, dims);
  model.eval();
  const x = vg.randn([2, 1, ...new Array(dims).fill(16)], { seed: 5 });
  const { coarse, fine } = vg.noGrad(() => model.features(x));
  const refined = vg.noGrad(() => model.refine(coarse, fine));
  const { indices, coords } = vg.uncertainGridPoints(coarse, 30);
  const pl = vg.noGrad(() => model.pointLogits(coarse, fine, coords));
  const [c0, idx, p] = [await host(coarse), await host(indices), await host(pl)];
  const want = Float64Array.from(c0);
  const m = 16 ** dims;
  for (let b = 0; b < 2; b++)
    for (let j = 0; j < 30; j++) for (let c = 0; c < 3; c++) want[(b * 3 + c) * m + idx[b * 30 + j]] = p[(b * 3 + c) * 30 + j];
  assert.equal(coords.shape, [2, 30, dims]);
  await assertClose(refined, new Ref(want, coarse.shape), { rtol: 0, atol: 0, msg: `dims ${dims}` });
  for (const t of [x, coarse, fine, refined, indices, coords, pl]) t.dispose();
  model.dispose();
}

test('point loss (2-D and 3-D): finite differences with respect to the fine features (points fixed by the seed)', async () => {
  for (const dims of [2, 3]) {
    const model = tinyMorse(false, dims);
    model.eval();
    const r = rng(8);
    const side = new Array(dims).fill(dims === 3 ? 4 : 8);
    const cells = side.reduce((a, b) => a * b, 1);
    const coarse = Ref.random([1, 3, ...side], r).toTensor();
    const label = vg.tensor(Array.from({ length: cells }, (_, i) => i % 3), [1, ...side], { dtype: 'i32' });
    const fine = Ref.random([1, 5, ...side], r);
    await gradcheck((f) => model.pointLoss(coarse, f, label, 3).reshape([1]), [fine], { eps: 1e-2 });
    for (const t of [coarse, label]) t.dispose();
    model.dispose();
  }
});

test('MoE head: maps of the wrong rank for its dims are refused with the expected layout', () => {
  const moe = new vg.models.MoEHead([2, 2], { width: 3, outChannels: 2, dims: 3 });
  const maps = [vg.zeros([1, 2, 4, 4]), vg.zeros([1, 2, 4, 4])];
  assert.throws(() => moe.gateAndExperts(maps), /MoEHead.*\[B, C, D, H, W\].*\[1, 2, 4, 4\]/);
  for (const t of maps) t.dispose();
  moe.dispose();
  assert.throws(() => new vg.models.MoEHead([2], { dims: 4 }), /dims must be 2 or 3, got 4/);
});

test('the point-loss weight: 0 in the first half, then (t - T/2) / T up to 0.5', () => {
  assert.is(vg.models.morsePointWeight(0, 100), 0);
  assert.is(vg.models.morsePointWeight(49, 100), 0);
  assert.is(vg.models.morsePointWeight(50, 100), 0);
  assert.is(vg.models.morsePointWeight(75, 100), 0.25);
  assert.is(vg.models.morsePointWeight(99, 100), 0.49);
});

test.run();
