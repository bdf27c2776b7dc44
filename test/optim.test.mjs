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
  // an integer tensor cannot be made to require grad (the setter refuses), nor be optimized
  assertThrowsWith(() => (ints.requiresGrad = true), ['requiresGrad', 'f32', 'i32']);
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

test('EMA: fused update matches a float64 mean-teacher reference (SSL4MIS warmup α and constant α); buffers are copied', async () => {
  for (const warmup of [true, false]) {
    const r = rng(warmup ? 1 : 2);
    const student = new vg.nn.Sequential(new vg.nn.Linear(7, 5, { seed: 1 }), new vg.nn.BatchNorm1d(5));
    const teacher = new vg.nn.Sequential(new vg.nn.Linear(7, 5, { seed: 9 }), new vg.nn.BatchNorm1d(5));
    const ema = new vg.optim.EMA(student, { decay: 0.9, warmup, teacher });
    const names = student.namedParameters().map(([k]) => k);
    const params = Object.fromEntries(student.namedParameters());
    // float64 reference of the shadow weights, starting from the student's weights (the teacher is overwritten)
    const ref = {};
    for (const k of names) ref[k] = Float64Array.from(await params[k].data());
    for (let step = 0; step < 5; step++) {
      // the student moves (stands in for optimizer.step()); its BatchNorm buffer changes too
      vg.noGrad(() => {
        for (const k of names) {
          const next = vg.tensor(Array.from(r.array(params[k].size)), params[k].shape);
          student.loadStateDict({ ...student.stateDict(), [k]: next });
          next.dispose();
        }
      });
      student.at(1).runningMean.dispose();
      student.at(1).runningMean = vg.tensor(Array.from(r.array(5)), [5]);
      const alpha = warmup ? Math.min(1 - 1 / (step + 1), 0.9) : 0.9;
      assert.is(ema.alpha, alpha, `alpha at step ${step}`);
      ema.update();
      for (const k of names) {
        const p = await params[k].data();
        ref[k] = ref[k].map((e, i) => alpha * e + (1 - alpha) * p[i]);
      }
      const tsd = teacher.stateDict();
      // f32 state: |e| ≤ 1, one rounding per update
      for (const k of names) await assertCloseRef(tsd[k], new Ref(ref[k], params[k].shape), `${k} step ${step}`);
      assert.equal(Array.from(await tsd['1.running_mean'].data()), Array.from(await student.at(1).runningMean.data()), 'buffer copied');
    }
    assert.is(ema.module, teacher);
    ema.dispose();
    student.dispose();
    teacher.dispose();
  }
});

test('EMA without a teacher keeps its own copies: applyTo loads them into a module; one dispatch per parameter', async () => {
  const student = new vg.nn.Linear(4, 3, { seed: 2 });
  const ema = new vg.optim.EMA(student, { decay: 0.5 });
  const w0 = await student.weight.data();
  vg.noGrad(() => student.loadStateDict({ weight: vg.zeros([3, 4]), bias: vg.zeros([3]) }));
  const before = vg.dispatches();
  ema.update();
  assert.is(vg.dispatches() - before, 2, 'one fused kernel per parameter (weight, bias)');
  const other = new vg.nn.Linear(4, 3, { seed: 5 });
  ema.applyTo(other);
  const got = await other.weight.data();
  got.forEach((v, i) => assert.ok(Math.abs(v - 0.5 * w0[i]) < 1e-7, `weight ${i}`));
  assertThrowsWith(() => new vg.optim.EMA(student, { decay: 1.5 }), ['EMA', 'decay must be a number in [0, 1]']);
  assertThrowsWith(() => new vg.optim.EMA({}), ['EMA', 'model must be a vg.nn.Module']);
  assertThrowsWith(() => new vg.optim.EMA(student, { teacher: new vg.nn.Linear(4, 2) }), ['loadStateDict', 'size mismatch']);
  ema.dispose();
  student.dispose();
  other.dispose();
});

test('gradient accumulation: k backward() calls of mean-loss/k sum into .grad and one step equals the big-batch step', async () => {
  const r = rng(8);
  const X = Ref.random([12, 5], r).f32();
  const Y = Ref.random([12, 2], r).f32();
  const run = async (k) => {
    const model = new vg.nn.Linear(5, 2, { seed: 3 });
    const opt = new vg.optim.SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
    for (let it = 0; it < 2; it++) {
      opt.zeroGrad();
      const n = 12 / k;
      for (let j = 0; j < k; j++) {
        const x = vg.tensor(Array.from(X.data.subarray(j * n * 5, (j + 1) * n * 5)), [n, 5]);
        const y = vg.tensor(Array.from(Y.data.subarray(j * n * 2, (j + 1) * n * 2)), [n, 2]);
        const loss = vg.mseLoss(model.call(x), y).div(k);
        loss.backward();
        for (const t of [x, y, loss]) t.dispose();
      }
      opt.step();
    }
    const out = [await model.weight.data(), await model.bias.data()];
    opt.dispose();
    model.dispose();
    return out;
  };
  const [w1, b1] = await run(1);
  for (const k of [3, 4]) {
    const [wk, bk] = await run(k);
    // f32 sums over 12 samples in a different order: a few ulps of |w| ≤ 1
    wk.forEach((v, i) => assert.ok(Math.abs(v - w1[i]) < 1e-6, `k=${k} weight ${i}: ${v} vs ${w1[i]}`));
    bk.forEach((v, i) => assert.ok(Math.abs(v - b1[i]) < 1e-6, `k=${k} bias ${i}`));
  }
});

test('zeroGrad({ setToNone: false }) zero-fills the gradients in place; the default drops them', async () => {
  const p = vg.ones([3], { requiresGrad: true });
  const opt = new vg.optim.SGD([p], { lr: 1 });
  p.mul(2).sum().backward();
  const g = p.grad;
  opt.zeroGrad({ setToNone: false });
  assert.is(p.grad, g, 'same tensor');
  assert.equal(Array.from(await p.grad.data()), [0, 0, 0]);
  p.mul(3).sum().backward();
  assert.equal(Array.from(await p.grad.data()), [3, 3, 3], 'accumulates onto the zeros');
  opt.zeroGrad();
  assert.is(p.grad, null);
  opt.dispose();
  p.dispose();
});

test("optimizer stateDict has torch.optim's structure and loadStateDict resumes identically", async () => {
  const r = rng(4);
  const grads = Array.from({ length: 6 }, () => Ref.random([10], r).f32());
  for (const [Ctor, opts, names] of [
    [vg.optim.Adam, { lr: 0.01, amsgrad: true, weightDecay: 0.1 }, ['step', 'exp_avg', 'exp_avg_sq', 'max_exp_avg_sq']],
    [vg.optim.AdamW, { lr: 0.02, betas: [0.8, 0.9] }, ['step', 'exp_avg', 'exp_avg_sq']],
    [vg.optim.SGD, { lr: 0.1, momentum: 0.9, nesterov: true }, ['momentum_buffer']],
  ]) {
    const p = vg.tensor(Array.from(r.array(10)), [10], { requiresGrad: true });
    const q = vg.zeros([4], { requiresGrad: true }); // never gets a gradient: no state, like PyTorch
    const opt = new Ctor([{ params: [p] }, { params: [q], lr: 0.5 }], opts);
    for (let s = 0; s < 3; s++) {
      p.grad = grads[s].toTensor();
      opt.step();
    }
    const sd = opt.stateDict();
    assert.equal(Object.keys(sd), ['state', 'param_groups']);
    assert.equal(Object.keys(sd.state), ['0'], 'state only for parameters that stepped');
    assert.equal(Object.keys(sd.state[0]), names);
    if (names[0] === 'step') assert.is(sd.state[0].step, 3);
    assert.equal(sd.param_groups.map((g) => g.params), [[0], [1]]);
    assert.is(sd.param_groups[1].lr, 0.5);
    if (Ctor !== vg.optim.SGD) assert.ok('weight_decay' in sd.param_groups[0] && 'betas' in sd.param_groups[0], 'PyTorch hyper-parameter names');
    // a second optimizer on a copy of p, loaded from the first, continues exactly as the first
    const p2 = vg.tensor(Array.from(await p.data()), [10], { requiresGrad: true });
    const q2 = vg.zeros([4], { requiresGrad: true });
    const opt2 = new Ctor([{ params: [p2] }, { params: [q2], lr: 9 }], { ...opts, lr: 1 });
    opt2.loadStateDict(sd);
    assert.is(opt2.paramGroups[0].lr, opts.lr, 'hyper-parameters restored');
    assert.is(opt2.paramGroups[1].lr, 0.5);
    for (let s = 3; s < 6; s++) {
      p.grad = grads[s].toTensor();
      p2.grad = grads[s].toTensor();
      opt.step();
      opt2.step();
    }
    assert.equal(Array.from(await p2.data()), Array.from(await p.data()), `${Ctor.name} bit-identical after resume`);
    assertThrowsWith(() => opt2.loadStateDict({ ...sd, param_groups: sd.param_groups.slice(0, 1) }), ['loadStateDict', '1 parameter groups, this optimizer 2']);
    const bad = { ...sd, state: { 0: { ...sd.state[0], [names.at(-1)]: vg.zeros([3]) } } };
    assertThrowsWith(() => opt2.loadStateDict(bad), ['loadStateDict', `state[0].${names.at(-1)} must be an f32 tensor of the parameter's shape [10]`]);
    for (const t of [p, q, p2, q2]) t.dispose();
    opt.dispose();
    opt2.dispose();
  }
});

test('scheduler stateDict uses PyTorch names and restores the schedule position', () => {
  const p = vg.zeros([2], { requiresGrad: true });
  const opt = new vg.optim.SGD([p], { lr: 1 });
  const sched = new vg.optim.LinearWarmup(new vg.optim.CosineAnnealingLR(opt, { tMax: 10, etaMin: 0.01 }), { warmupIters: 3 });
  for (let i = 0; i < 4; i++) sched.step();
  const sd = sched.stateDict();
  assert.is(sd.last_epoch, 4);
  assert.equal(sd.base_lrs, [1]);
  assert.is(sd.warmup_iters, 3);
  assert.is(sd.inner.T_max, 10);
  assert.is(sd.inner.eta_min, 0.01);
  const opt2 = new vg.optim.SGD([p], { lr: 1 });
  const sched2 = new vg.optim.LinearWarmup(new vg.optim.CosineAnnealingLR(opt2, { tMax: 99 }), { warmupIters: 1 });
  sched2.loadStateDict(JSON.parse(JSON.stringify(sd)));
  for (let i = 0; i < 3; i++) {
    sched.step();
    sched2.step();
    assert.is(opt2.paramGroups[0].lr, opt.paramGroups[0].lr, `lr after ${5 + i} steps`);
  }
  assertThrowsWith(() => sched2.loadStateDict({ ...sd, base_lrs: [1, 2] }), ['loadStateDict', 'base_lrs must be 1 numbers']);
  assertThrowsWith(() => new vg.optim.StepLR(opt, { stepSize: 2 }).loadStateDict(sd), ['StepLR.loadStateDict', 'step_size must be a number']);
  p.dispose();
});

test.run();
