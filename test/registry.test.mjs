// The op registry: every public op is listed once (sorted, with its dtypes and whether it is differentiable), calling
// an op is what records it, the call counters move with forward and backward, ops with several outputs differentiate
// the one they name, and the Tensor methods come from the same functions.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Ref, assertClose, assertThrowsWith, setup, vg } from './helpers.mjs';

test.before(setup);

const data = async (t) => Array.from(await t.data());
const statOf = (name) => vg.debug.opStats().find((s) => s.name === name);

test('listOps: sorted, unique names, each entry either vg.<name> or reached through the function it names', () => {
  const ops = vg.listOps();
  const names = ops.map((o) => o.name);
  assert.equal(names, [...names].sort(), 'sorted by name');
  assert.is(new Set(names).size, names.length, 'unique');
  for (const o of ops) {
    assert.ok(Array.isArray(o.dtypes) && o.dtypes.length > 0 && o.dtypes.every((d) => ['f32', 'i32', 'u32'].includes(d)), o.name);
    assert.type(o.differentiable, 'boolean');
    assert.type(o.composite, 'boolean');
    if (o.via === undefined) assert.type(vg[o.name], 'function', `vg.${o.name}`);
    else
      for (const fn of o.via.split('/'))
        assert.type(fn.split('.').reduce((ns, k) => ns?.[k], vg), 'function', `${o.name} via ${fn}`);
  }
});

test('listOps covers the public ops, including the elementwise table', () => {
  const listed = new Set(vg.listOps().map((o) => o.name));
  const expected = [
    'neg', 'abs', 'exp', 'log', 'tanh', 'sigmoid', 'relu', 'round', 'add', 'sub', 'mul', 'div', 'pow', 'maximum',
    'where', 'eq', 'logicalNot', 'clamp', 'gelu', 'leakyRelu', 'cast', 'sum', 'mean', 'max', 'argmax', 'var', 'std',
    'logsumexp', 'reshape', 'permute', 'transpose', 'expand', 'slice', 'narrow', 'split', 'flip', 'cat', 'stack', 'pad',
    'clone', 'gather', 'scatterAdd', 'indexSelect', 'oneHot', 'matmul', 'bmm', 'linear', 'softmax', 'logSoftmax',
    'crossEntropy', 'nllLoss', 'mseLoss', 'tensor', 'zeros', 'onesLike', 'arange', 'rand', 'randn', 'conv1d', 'conv3d',
    'convTranspose2d', 'maxPool2d', 'maxPool3d', 'avgPool3d', 'adaptiveAvgPool2d', 'interpolate', 'batchNorm',
    'layerNorm', 'dropout', 'dropout3d', 'gridSample', 'spatialTransform', 'integrateVelocity', 'affineGrid',
    'spatialGradient', 'jacobianDeterminant', 'scaledDotProductAttention',
  ];
  const missing = expected.filter((n) => !listed.has(n));
  assert.equal(missing, [], 'public ops missing from listOps');
  const info = Object.fromEntries(vg.listOps().map((o) => [o.name, o]));
  assert.is(info.tanh.differentiable, true);
  assert.is(info.eq.differentiable, false);
  assert.is(info.argmax.differentiable, false);
  assert.is(info.mean.composite, true);
  assert.is(info.sum.composite, false);
  assert.equal(info.matmul.dtypes, ['f32']);
  assert.equal(info.oneHot.dtypes, ['i32', 'u32']);
  assert.is(info.geluTanh.via, 'gelu');
});

test('opStats: forward calls count per call, backward calls per rule run; reset clears them', async () => {
  vg.debug.resetOpStats();
  assert.ok(vg.debug.opStats().every((s) => s.forward === 0 && s.backward === 0));
  const x = vg.randn([4, 5], { seed: 1 }).requiresGrad_();
  const y = vg.tanh(x);
  const loss = y.mul(y).sum();
  assert.equal(statOf('tanh'), { name: 'tanh', forward: 1, backward: 0 });
  assert.is(statOf('mul').forward, 1);
  loss.backward();
  assert.equal(statOf('tanh'), { name: 'tanh', forward: 1, backward: 1 });
  assert.equal(statOf('sum'), { name: 'sum', forward: 1, backward: 1 });
  assert.is(statOf('mul').backward, 1);
  // a composite counts its own call; its parts count theirs, and only they run backward rules
  vg.debug.resetOpStats();
  const z = vg.mean(x);
  z.backward();
  assert.equal(statOf('mean'), { name: 'mean', forward: 1, backward: 0 });
  assert.is(statOf('sum').backward, 1);
  assert.is(statOf('mul').backward, 1);
});

test('calling an op records it; without grad (or with noGrad) it records nothing', async () => {
  const x = vg.tensor([0.5, -1, 2], null, { requiresGrad: true });
  const y = vg.sin(x);
  assert.ok(y.requiresGrad && !y.isLeaf, 'an op on a tensor that requires grad is recorded');
  const c = vg.sin(vg.tensor([0.5, -1, 2]));
  assert.ok(!c.requiresGrad && c.isLeaf, 'no input requires grad: not recorded');
  const n = vg.noGrad(() => vg.sin(x));
  assert.ok(!n.requiresGrad, 'noGrad: not recorded');
  // an integer result is never recorded (only f32 tensors carry gradients)
  const i = vg.argmax(x);
  assert.ok(!i.requiresGrad);
  y.sum().backward();
  await assertClose(x.grad, new Ref([Math.cos(0.5), Math.cos(-1), Math.cos(2)], [3]), { rtol: 1e-6, atol: 1e-7 });
});

test('an op with two outputs differentiates the one it names: maxPool values, not indices', async () => {
  const x = vg.tensor([[[[1, 5, 2, 0], [3, 4, 8, 7]]]], null, { requiresGrad: true });
  const [values, indices] = vg.maxPool2d(x, [2, 2], { returnIndices: true });
  assert.ok(values.requiresGrad);
  assert.ok(!indices.requiresGrad);
  assert.is(indices.dtype, 'i32');
  assert.equal(await data(values), [5, 8]);
  values.sum().backward();
  assert.equal(await data(x.grad), [0, 1, 0, 0, 0, 0, 1, 0]);
});

test('requiresGrad is checked whichever way it is set', () => {
  const i = vg.tensor([1, 2], null, { dtype: 'i32' });
  assertThrowsWith(() => (i.requiresGrad = true), ['requiresGrad', 'f32', 'i32']);
  assertThrowsWith(() => i.requiresGrad_(), ['requiresGrad', 'f32', 'i32']);
  assertThrowsWith(() => vg.zeros([2], { dtype: 'u32', requiresGrad: true }), ['zeros', 'f32']);
  const x = vg.tensor([1, 2], null, { requiresGrad: true });
  const y = x.mul(2);
  assertThrowsWith(() => (y.requiresGrad = false), ['requiresGrad', 'non-leaf', 'detach']);
  x.requiresGrad = false;
  assert.is(x.requiresGrad, false);
});

test('the registry checks dtypes before the forward runs, naming the op', () => {
  const i = vg.tensor([[1, 2], [3, 4]], null, { dtype: 'i32' });
  assertThrowsWith(() => vg.matmul(i, i), ['matmul', 'f32', 'i32']);
  assertThrowsWith(() => vg.softmax(i, { dim: 0 }), ['softmax', 'f32', 'i32']);
  assertThrowsWith(() => vg.oneHot(vg.tensor([0.5]), 3), ['oneHot', 'integer', 'f32']);
});

test('methods are the functions: same results, same recording', async () => {
  const x = vg.randn([3, 4], { seed: 2 });
  const pairs = [
    [x.sum({ dim: 1 }), vg.sum(x, { dim: 1 })],
    [x.var({ dim: 0, correction: 0 }), vg.var(x, { dim: 0, correction: 0 })],
    [x.clamp(-0.5, 0.5), vg.clamp(x, -0.5, 0.5)],
    [x.transpose(0, 1), vg.transpose(x, 0, 1)],
    [x.to('i32'), vg.cast(x, 'i32')],
  ];
  for (const [m, f] of pairs) {
    assert.equal([...m.shape], [...f.shape]);
    assert.equal(await data(m), await data(f));
  }
  const parts = x.split(2, 1);
  assert.is(parts.length, 2);
  const d = x.detach();
  assert.ok(d.isLeaf && !d.requiresGrad);
});

test.run();
