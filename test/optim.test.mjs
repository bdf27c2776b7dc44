// vg.optim against torch.optim: SGD / Adam / AdamW trajectories and clip_grad_norm_ from PyTorch fixtures
// (test/fixtures/gen_optim.py), in-place updates, one dispatch per parameter, memory, convergence and bad input.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fixtureRef, loadFixtures } from './fixtures.mjs';
import { Ref, assertThrowsWith, rng, setup, vg } from './helpers.mjs';

test.before(setup);

const fixtures = loadFixtures('optim');
const rows = (ref) => {
  const n = ref.shape.slice(1).reduce((a, b) => a * b, 1);
  return Array.from({ length: ref.shape[0] }, (_, i) => new Ref(ref.data.subarray(i * n, (i + 1) * n), ref.shape.slice(1)));
};
const param = (ref) => ref.toTensor({ requiresGrad: true });

for (const [ci, c] of fixtures.trajectories.entries()) {
  test(`${c.optimizer} ${JSON.stringify(c.options)} matches torch.optim over ${c.grads.shape[0]} steps (case ${ci})`, async () => {
    const p = param(fixtureRef(c.p0));
    const grads = rows(fixtureRef(c.grads));
    const traj = rows(fixtureRef(c.trajectory));
    const opt = new vg.optim[c.optimizer]([p], c.options);
    for (let s = 0; s < grads.length; s++) {
      p.grad = grads[s].toTensor();
      opt.step();
      // f32 state and update vs float64: round-off of a few ulps per step of |p| ~ 1 plus |lr·update| ≤ 0.1
      await assertCloseRef(p, traj[s], `step ${s + 1}`);
    }
    opt.dispose();
    p.dispose();
  });
}

async function assertCloseRef(t, ref, msg) {
  const got = await t.data();
  for (let i = 0; i < got.length; i++) {
    const want = ref.data[i];
    if (!(Math.abs(got[i] - want) <= 1e-5 + 1e-4 * Math.abs(want)))
      assert.unreachable(`${msg}: element ${i} got ${got[i]}, expected ${want}`);
  }
}

for (const [ci, c] of fixtures.clip.entries()) {
  test(`clipGradNorm normType ${c.normType}, maxNorm ${c.maxNorm} matches clip_grad_norm_ (case ${ci})`, async () => {
    const grads = c.grads.map(fixtureRef);
    const ps = grads.map((g) => vg.zeros(g.shape, { requiresGrad: true }));
    ps.forEach((p, i) => (p.grad = grads[i].toTensor()));
    const before = vg.dispatches();
    const total = vg.optim.clipGradNorm(ps, c.maxNorm, { normType: c.normType === 'inf' ? Infinity : c.normType });
    assert.ok(total instanceof vg.Tensor && total.ndim === 0, 'returns a 0-d tensor');
    assert.ok(vg.dispatches() > before, 'computed by GPU dispatches');
    // f32 sums of 300-odd squares / powers: relative round-off ~1e-6
    await assertCloseRef(total, fixtureRef(c.total), 'total norm');
    for (const [i, p] of ps.entries()) await assertCloseRef(p.grad, fixtureRef(c.clipped[i]), `grad ${i}`);
    for (const p of ps) p.dispose();
    total.dispose();
  });
}

test('clipGradNorm: no gradients gives 0; a gradient shared by two tensors is scaled once', async () => {
  const p = vg.zeros([3], { requiresGrad: true });
  const t0 = vg.optim.clipGradNorm([p], 1);
  assert.is(await t0.item(), 0);
  const g = vg.tensor(new Array(200).fill(1), [200]); // norm √200 ≈ 14.14
  const a = vg.zeros([200], { requiresGrad: true });
  const b = vg.zeros([200], { requiresGrad: true });
  a.grad = g;
  b.grad = g.shareStorage();
  const total = vg.optim.clipGradNorm([a, b], 2);
  assert.ok(Math.abs((await total.item()) - 20) < 1e-4, 'norm counts both gradients: √400 = 20');
  const got = await a.grad.data();
  assert.ok(Math.abs(got[0] - 2 / (20 + 1e-6)) < 1e-7, `scaled once: got ${got[0]}`);
  for (const t of [p, t0, a, b, total]) t.dispose();
});

test('step updates the parameter in place with one fused dispatch per parameter; params without grad are skipped', async () => {
  for (const [name, opts] of [
    ['SGD', { lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 0.1 }],
    ['Adam', { amsgrad: true, weightDecay: 0.1 }],
    ['AdamW', {}],
  ]) {
    const r = rng(3);
    const ps = [[1000], [17, 3], [4, 5, 6]].map((s) => Ref.random(s, r).toTensor({ requiresGrad: true }));
    const frozen = vg.tensor([1, 2, 3], [3], { requiresGrad: true });
    const opt = new vg.optim[name]([...ps, frozen], opts);
    const buffers = ps.map((p) => p.buffer('test'));
    const before0 = await ps[0].data();
    for (let s = 0; s < 3; s++) {
      for (const p of ps) p.grad = Ref.random(p.shape, r).toTensor();
      ps.forEach((p) => p.buffer('test')); // uploads of host-resident grads are not dispatches
      ps.forEach((p) => p.grad.buffer('test'));
      const d0 = vg.dispatches();
      opt.step();
      // the first step also zero-fills the new state buffers
      if (s > 0) assert.is(vg.dispatches() - d0, ps.length, `${name}: one dispatch per parameter with a grad`);
    }
    ps.forEach((p, i) => assert.ok(p.buffer('test') === buffers[i] && !p.isDisposed && p.isLeaf, `${name}: same storage`));
    assert.not.equal([...(await ps[0].data())], [...before0], `${name}: parameter changed`);
    assert.equal([...(await frozen.data())], [1, 2, 3], `${name}: parameter without grad untouched`);
    opt.zeroGrad();
    assert.ok(ps.every((p) => p.grad === null), `${name}: zeroGrad clears grads`);
    opt.dispose();
    for (const p of [...ps, frozen]) p.dispose();
  }
});

test('param groups take their own lr; unspecified options fall back to the defaults', async () => {
  const a = vg.tensor(new Array(150).fill(1), [150], { requiresGrad: true });
  const b = vg.tensor(new Array(150).fill(1), [150], { requiresGrad: true });
  const opt = new vg.optim.SGD([{ params: [a] }, { params: [b], lr: 0.5 }], { lr: 0.1 });
  a.grad = vg.ones([150]);
  b.grad = vg.ones([150]);
  opt.step();
  assert.ok(Math.abs((await a.data())[0] - 0.9) < 1e-6 && Math.abs((await b.data())[149] - 0.5) < 1e-6);
  opt.paramGroups[0].lr = 0.2; // schedulers write the lr here
  opt.step();
  assert.ok(Math.abs((await a.data())[0] - 0.7) < 1e-6);
  opt.dispose();
  a.dispose();
  b.dispose();
});

/** Linear regression y = X·w* + b*: returns [loss(first), loss(last)]; leaves params / optimizer disposed. */
async function regress(make, steps) {
  const r = rng(11);
  const X = Ref.random([64, 5], r).toTensor();
  const wStar = vg.tensor([[0.5], [-1], [2], [0.25], [-0.75]]);
  const y = vg.tidy(() => vg.add(vg.matmul(X, wStar), 0.3));
  const w = vg.zeros([5, 1], { requiresGrad: true });
  const b = vg.zeros([1], { requiresGrad: true });
  const opt = make([w, b]);
  const losses = [];
  const mem = [];
  for (let s = 0; s < steps; s++) {
    opt.zeroGrad();
    const loss = vg.tidy(() => {
      const l = vg.mean(vg.square(vg.sub(vg.add(vg.matmul(X, w), b), y)));
      l.backward();
      return l;
    });
    opt.step();
    if (s === 0 || s === steps - 1) losses.push(await loss.item());
    loss.dispose();
    if (s === 20 || s === steps - 1) mem.push(vg.memory());
  }
  opt.zeroGrad();
  opt.dispose();
  for (const t of [X, wStar, y, w, b]) t.dispose();
  return { losses, mem };
}

test('each optimizer fits a linear regression; memory is flat over 200 steps and dispose() frees the state', async () => {
  const live0 = vg.memory().liveTensors;
  for (const [name, make] of [
    ['SGD', (ps) => new vg.optim.SGD(ps, { lr: 0.1 })],
    ['SGD momentum nesterov', (ps) => new vg.optim.SGD(ps, { lr: 0.05, momentum: 0.9, nesterov: true })],
    ['Adam', (ps) => new vg.optim.Adam(ps, { lr: 0.05 })],
    ['Adam amsgrad', (ps) => new vg.optim.Adam(ps, { lr: 0.05, amsgrad: true })],
    ['AdamW', (ps) => new vg.optim.AdamW(ps, { lr: 0.05, weightDecay: 1e-4 })],
  ]) {
    const { losses, mem } = await regress(make, 200);
    assert.ok(losses[0] > 1 && losses[1] < 1e-3 * losses[0], `${name}: loss ${losses[0]} → ${losses[1]}`);
    assert.is(mem[1].liveTensors, mem[0].liveTensors, `${name}: live tensors stable`);
    assert.is(mem[1].bytesInUse, mem[0].bytesInUse, `${name}: bytes in use stable`);
    assert.is(vg.memory().liveTensors, live0, `${name}: nothing left after dispose`);
  }
});

test('bad input names the optimizer and the argument', () => {
  const p = vg.zeros([3], { requiresGrad: true });
  assertThrowsWith(() => new vg.optim.SGD([p], { lr: -0.1 }), ['SGD', 'lr', '>= 0', '-0.1']);
  assertThrowsWith(() => new vg.optim.SGD([p]), ['SGD', 'options', 'lr']);
  assertThrowsWith(() => new vg.optim.SGD([p], { lr: 0.1, nesterov: true }), ['SGD', 'nesterov', 'momentum > 0']);
  assertThrowsWith(() => new vg.optim.Adam([p], { betas: [0.9, 1] }), ['Adam', 'betas', '[0, 1)', '[0.9, 1]']);
  assertThrowsWith(() => new vg.optim.AdamW([p], { betas: [0.9] }), ['AdamW', 'betas']);
  assertThrowsWith(() => new vg.optim.Adam([p], { lr: -1 }), ['Adam', 'lr', '-1']);
  assertThrowsWith(() => new vg.optim.AdamW([p], { weightDecay: -1 }), ['AdamW', 'weightDecay']);
  assertThrowsWith(() => new vg.optim.Adam([]), ['Adam', 'params', 'non-empty']);
  const noGrad = vg.zeros([3]);
  assertThrowsWith(() => new vg.optim.Adam([p, noGrad]), ['Adam', 'params[1]', 'leaf tensor with requiresGrad']);
  const nonLeaf = vg.mul(p, 2);
  assertThrowsWith(() => new vg.optim.SGD([nonLeaf], { lr: 1 }), ['SGD', 'params[0]', 'produced by an op']);
  const ints = vg.zeros([3], { dtype: 'i32' });
  ints.requiresGrad = true;
  assertThrowsWith(() => new vg.optim.AdamW([ints]), ['AdamW', 'params[0]', 'f32', 'i32']);
  assertThrowsWith(() => new vg.optim.SGD([p, p], { lr: 1 }), ['SGD', 'params[1]', 'more than once']);
  assertThrowsWith(() => new vg.optim.SGD([{ params: [p], lr: -2 }], { lr: 1 }), ['SGD', 'paramGroups[0].lr', '-2']);
  assertThrowsWith(() => vg.optim.clipGradNorm([p], -1), ['clipGradNorm', 'maxNorm']);
  assertThrowsWith(() => vg.optim.clipGradNorm([p], 1, { normType: 0 }), ['clipGradNorm', 'normType']);
  assertThrowsWith(() => vg.optim.clipGradNorm([p, 3], 1), ['clipGradNorm', 'params[1]']);
  const opt = new vg.optim.Adam([p]);
  p.grad = vg.zeros([4]);
  assertThrowsWith(() => opt.step(), ['Adam', 'params[0].grad', 'shape [3]', '[4]']);
  p.grad = vg.zeros([3]);
  opt.paramGroups[0].lr = -1;
  assertThrowsWith(() => opt.step(), ['Adam', 'lr', '-1']);
  opt.dispose();
  for (const t of [p, noGrad, nonLeaf, ints]) t.dispose();
});

/** An SGD optimizer over two groups with the fixtures' base lrs (0.1 and 0.02). */
function twoGroups() {
  const ps = [vg.zeros([1], { requiresGrad: true }), vg.zeros([1], { requiresGrad: true })];
  return { ps, opt: new vg.optim.SGD([{ params: [ps[0]] }, { params: [ps[1]], lr: 0.02 }], { lr: 0.1 }) };
}

for (const c of fixtures.schedulers) {
  test(`${c.scheduler} ${JSON.stringify(c.options)} matches torch.optim.lr_scheduler over ${c.lrs.length - 1} epochs`, () => {
    const { ps, opt } = twoGroups();
    const sched = new vg.optim[c.scheduler](opt, c.options);
    for (const [e, want] of c.lrs.entries()) {
      if (e > 0) sched.step();
      // PyTorch's recursive forms vs the closed form in float64: only round-off differs
      sched.getLastLr().forEach((lr, i) => assert.ok(Math.abs(lr - want[i]) <= 1e-12, `epoch ${e} group ${i}: ${lr} vs ${want[i]}`));
    }
    opt.dispose();
    ps.forEach((p) => p.dispose());
  });
}

test('LinearWarmup scales the inner schedule linearly from startFactor to 1 over warmupIters', () => {
  const { ps, opt } = twoGroups();
  const sched = new vg.optim.LinearWarmup(new vg.optim.CosineAnnealingLR(opt, { tMax: 20 }), { warmupIters: 4, startFactor: 0.2 });
  for (let e = 0; e <= 8; e++) {
    if (e > 0) sched.step();
    const cos = (1 + Math.cos((Math.PI * e) / 20)) / 2;
    const f = e < 4 ? 0.2 + (0.8 * e) / 4 : 1;
    [0.1, 0.02].forEach((base, i) => assert.ok(Math.abs(opt.paramGroups[i].lr - base * f * cos) <= 1e-15, `epoch ${e} group ${i}`));
  }
  assert.is(sched.inner.lastEpoch, 8);
  assertThrowsWith(() => new vg.optim.StepLR(opt, { stepSize: 0 }), ['StepLR', 'stepSize', 'positive integer']);
  assertThrowsWith(() => new vg.optim.PolyLR({}, { totalIters: 3 }), ['PolyLR', 'optimizer']);
  assertThrowsWith(() => new vg.optim.LinearWarmup(opt, { warmupIters: 3 }), ['LinearWarmup', 'inner']);
  opt.dispose();
  ps.forEach((p) => p.dispose());
});

test.run();
