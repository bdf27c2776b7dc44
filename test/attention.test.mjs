// Attention against PyTorch fixtures (test/fixtures/gen_attention.py): scaledDotProductAttention vs an explicit float64
// softmax(QKᵀ·scale + mask)V, nn.MultiheadAttention (state dicts loaded from torch, forward, weights, every gradient),
// and the pre-norm TransformerBlock vs a float64 Swin/TransMorph block (windows, shift mask, padding, relative position
// bias) and a timm ViT block; finite-difference gradchecks and bad input.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fixtureRef, loadFixtures } from './fixtures.mjs';
import { Ref, assertClose, assertThrowsWith, gradcheck, rng, setup, vg } from './helpers.mjs';

test.before(setup);

const fx = loadFixtures('attention');
const sdpa = vg.nn.functional.scaledDotProductAttention;
// f32 matmul/softmax chains of ≤ 64 terms against float64: round-off well under 1e-4 relative; atol covers
// near-zero entries formed by cancellation
const TOL = { rtol: 1e-4, atol: 1e-5 };

const leaf = (e) => fixtureRef(e).toTensor({ requiresGrad: true });
const stateDict = (state) => Object.fromEntries(Object.entries(state).map(([k, e]) => [k, fixtureRef(e).toTensor()]));

for (const c of fx.sdpa) {
  test(`scaledDotProductAttention ${c.name}: forward and gradients match the float64 reference`, async () => {
    const [q, k, v] = [leaf(c.q), leaf(c.k), leaf(c.v)];
    const mask = c.mask ? (c.maskBool ? fixtureRef(c.mask).toTensor() : leaf(c.mask)) : null;
    const out = sdpa(q, k, v, { attnMask: mask, isCausal: c.isCausal, scale: c.scale });
    await assertClose(out, fixtureRef(c.out), { ...TOL, msg: 'out' });
    out.backward(fixtureRef(c.upstream).toTensor());
    const ins = [q, k, v, ...(mask && !c.maskBool ? [mask] : [])];
    for (const [i, t] of ins.entries()) await assertClose(t.grad, fixtureRef(c.grads[i]), { ...TOL, msg: `grad ${i}` });
    for (const t of [...ins, out, mask]) t?.dispose();
  });
}

test('scaledDotProductAttention: gradcheck (float mask, custom scale) and dropout keeps the expectation', async () => {
  const r = rng(3);
  const q = Ref.random([2, 3, 4], r).f32();
  const k = Ref.random([2, 5, 4], r).f32();
  const v = Ref.random([2, 5, 3], r).f32();
  const m = Ref.random([3, 5], r).f32();
  await gradcheck((a, b, c, d) => sdpa(a, b, c, { attnMask: d, scale: 0.8 }), [q, k, v, m]);
  await gradcheck((a, b, c) => sdpa(a, b, c, { isCausal: true }), [q, k, v]);
  // dropout p on the weights: with a fixed seed, the result equals weights·mask/(1-p) @ v; check it zeroes something
  const [qt, kt, vt] = [q.toTensor(), k.toTensor(), v.toTensor()];
  const a = await sdpa(qt, kt, vt, { dropoutP: 0.5, seed: 5 }).data();
  const b = await sdpa(qt, kt, vt).data();
  assert.ok(a.some((x, i) => Math.abs(x - b[i]) > 1e-3), 'dropout changes the output');
  const a2 = await sdpa(qt, kt, vt, { dropoutP: 0.5, seed: 5 }).data();
  assert.equal(Array.from(a2), Array.from(a), 'seeded dropout is reproducible');
});

test('scaledDotProductAttention: bad input names the argument', () => {
  const q = vg.zeros([2, 3, 4]);
  assertThrowsWith(() => sdpa(q, vg.zeros([2, 5, 3]), vg.zeros([2, 5, 3])), ['scaledDotProductAttention', "key's feature size", '4']);
  assertThrowsWith(() => sdpa(q, vg.zeros([2, 5, 4]), vg.zeros([2, 6, 4])), ['value must have as many tokens as key (5)']);
  assertThrowsWith(() => sdpa(q, vg.zeros([2, 5, 4]), vg.zeros([2, 5, 4]), { attnMask: vg.zeros([4, 5]) }), ['attnMask [4, 5]']);
  assertThrowsWith(() => sdpa(q, vg.zeros([2, 3, 4]), vg.zeros([2, 3, 4]), { isCausal: true, attnMask: vg.zeros([3, 3]) }), ['isCausal']);
  assertThrowsWith(() => sdpa(q, q, q, { dropoutP: 2 }), ['dropoutP must be a number in [0, 1]']);
  assertThrowsWith(() => sdpa(vg.zeros([4]), q, q), ['query must have at least 2 dims']);
});

for (const c of fx.mha) {
  test(`MultiheadAttention ${c.name}: PyTorch's state dict loads, forward/weights/gradients match`, async () => {
    const m = new vg.nn.MultiheadAttention(c.embedDim, c.numHeads, c.options);
    assert.equal(Object.keys(m.stateDict()), c.keys, 'state-dict keys and order are PyTorch’s');
    const sd = stateDict(c.state);
    m.loadStateDict(sd);
    const [q, k, v] = [leaf(c.q), leaf(c.k), leaf(c.v)];
    const [out, w] = m.call(q, k, v, {
      attnMask: c.attnMask ? fixtureRef(c.attnMask).toTensor() : null,
      keyPaddingMask: c.keyPaddingMask ? fixtureRef(c.keyPaddingMask).toTensor() : null,
      needWeights: c.needWeights,
      averageAttnWeights: c.average,
    });
    await assertClose(out, fixtureRef(c.out), { ...TOL, msg: 'out' });
    if (c.needWeights) await assertClose(w, fixtureRef(c.weights), { ...TOL, msg: 'weights' });
    else assert.is(w, null);
    out.backward(fixtureRef(c.upstream).toTensor());
    for (const [i, t] of [q, k, v].entries()) await assertClose(t.grad, fixtureRef(c.grads[i]), { ...TOL, msg: `input grad ${i}` });
    const params = Object.fromEntries(m.namedParameters());
    assert.equal(Object.keys(params).sort(), Object.keys(c.paramGrads).sort(), 'parameter names');
    for (const [name, g] of Object.entries(c.paramGrads)) await assertClose(params[name].grad, fixtureRef(g), { ...TOL, msg: name });
    for (const t of [q, k, v, out, w, ...Object.values(sd)]) t?.dispose();
    m.dispose();
  });
}

test('MultiheadAttention: PyTorch initialisation (zero biases, xavier in-projection bound), dropout only in training, errors', async () => {
  const m = new vg.nn.MultiheadAttention(8, 2, { seed: 4, dropout: 0.5, batchFirst: true });
  assert.ok((await m.inProjBias.data()).every((x) => x === 0), 'in_proj_bias zero');
  assert.ok((await m.outProj.bias.data()).every((x) => x === 0), 'out_proj.bias zero');
  const bound = Math.sqrt(6 / (8 + 24)); // xavier_uniform on [24, 8]
  const w = await m.inProjWeight.data();
  assert.ok(w.every((x) => Math.abs(x) <= bound) && w.some((x) => Math.abs(x) > bound / 2), 'xavier range');
  const x = vg.randn([2, 3, 8], { seed: 1 });
  m.eval();
  const [a] = m.call(x, x, x);
  const [b] = m.call(x, x, x);
  assert.equal(Array.from(await a.data()), Array.from(await b.data()), 'eval is deterministic');
  m.train();
  const [c] = m.call(x, x, x);
  const ad = await a.data();
  assert.ok(Array.from(await c.data()).some((v, i) => Math.abs(v - ad[i]) > 1e-4), 'training applies attention dropout');
  assertThrowsWith(() => new vg.nn.MultiheadAttention(6, 4), ['MultiheadAttention', 'embedDim (6) must be divisible by numHeads (4)']);
  assertThrowsWith(() => m.call(vg.zeros([2, 3, 5]), x, x), ['query must be [N, L, 8]', '[2, 3, 5]']);
  assertThrowsWith(() => m.call(x, x, x, { attnMask: vg.zeros([2, 2]) }), ['attnMask must be [L, S] = [3, 3]', '[2, 2]']);
  assertThrowsWith(() => m.call(x, x, x, { keyPaddingMask: vg.zeros([3, 3]) }), ['keyPaddingMask must be [2, 3]']);
  m.dispose();
});

test('MultiheadAttention: gradcheck through masks and projections (unbatched, bool key padding)', async () => {
  const r = rng(11);
  const m = new vg.nn.MultiheadAttention(4, 2, { seed: 2, batchFirst: true });
  const kp = vg.tensor([[0, 0, 1]], [1, 3], { dtype: 'i32' });
  await gradcheck((q, k, v) => m.call(q, k, v, { keyPaddingMask: kp })[0], [Ref.random([1, 2, 4], r).f32(), Ref.random([1, 3, 4], r).f32(), Ref.random([1, 3, 4], r).f32()]);
  m.dispose();
});

for (const c of fx.blocks) {
  test(`TransformerBlock ${c.name}: keys, forward and every gradient match the PyTorch block`, async () => {
    const block = new vg.nn.TransformerBlock(c.dim, c.options.numHeads, c.options);
    assert.equal(Object.keys(block.stateDict()), c.keys, 'state-dict keys and order are Swin’s / timm’s');
    const index = block.stateDict()['attn.relative_position_index'];
    if (index) assert.equal(Array.from(await index.data()), Array.from(fixtureRef(c.state['attn.relative_position_index']).data), 'TransMorph’s relative position index');
    const sd = stateDict(c.state);
    block.loadStateDict(sd);
    const x = leaf(c.x);
    const out = block.call(x);
    await assertClose(out, fixtureRef(c.out), { ...TOL, msg: 'out' });
    out.backward(fixtureRef(c.upstream).toTensor());
    await assertClose(x.grad, fixtureRef(c.grad), { ...TOL, msg: 'input grad' });
    const params = Object.fromEntries(block.namedParameters());
    for (const [name, g] of Object.entries(c.paramGrads)) await assertClose(params[name].grad, fixtureRef(g), { ...TOL, msg: name });
    for (const t of [x, out, ...Object.values(sd)]) t.dispose();
    block.dispose();
  });
}

test('TransformerBlock: gradcheck of a shifted 2-D window block and a 3-D one; bad options and inputs', async () => {
  const r = rng(5);
  const b2 = new vg.nn.TransformerBlock(4, 2, { windowSize: [2, 2], shiftSize: 1, mlpRatio: 1, seed: 3 });
  await gradcheck((x) => b2.call(x), [Ref.random([1, 4, 3, 4], r).f32()]);
  const b3 = new vg.nn.TransformerBlock(4, 1, { windowSize: [2, 2, 2], mlpRatio: 1, seed: 4 });
  await gradcheck((x) => b3.call(x), [Ref.random([1, 2, 2, 4, 4], r).f32()]);
  assertThrowsWith(() => new vg.nn.TransformerBlock(6, 4), ['TransformerBlock', 'dim (6) must be divisible by numHeads (4)']);
  assertThrowsWith(() => new vg.nn.TransformerBlock(4, 2, { windowSize: 4 }), ['windowSize must list 2 or 3 positive integers']);
  assertThrowsWith(() => new vg.nn.TransformerBlock(4, 2, { windowSize: [4, 4], shiftSize: 4 }), ['shiftSize must be an integer or 2 integers in [0, windowSize)']);
  assertThrowsWith(() => new vg.nn.TransformerBlock(4, 2, { windowSize: [4, 4], shiftSize: [2, 0] }), ['all zero or all positive']);
  assertThrowsWith(() => new vg.nn.TransformerBlock(4, 2, { shiftSize: 2 }), ['shiftSize needs windowSize']);
  assertThrowsWith(() => b2.call(vg.zeros([1, 4, 4, 4, 4])), ['windowSize has 2 dims but the input has 3 spatial dims']);
  assertThrowsWith(() => b2.call(vg.zeros([1, 4, 4, 5])), ['token grid [B, H, W, 4]', '[1, 4, 4, 5]']);
  b2.dispose();
  b3.dispose();
});

test('disposing a tree frees the shifted-window masks its blocks cache', async () => {
  const before = vg.memory().liveTensors;
  const net = new vg.nn.Sequential(new vg.nn.TransformerBlock(8, 2, { windowSize: [4, 4], shiftSize: [2, 2], seed: 3 }));
  const x = vg.randn([1, 8, 8, 8], { seed: 4 });
  vg.noGrad(() => net.call(x)).dispose();
  x.dispose();
  net.dispose();
  assert.is(vg.memory().liveTensors, before);
});

test.run();
