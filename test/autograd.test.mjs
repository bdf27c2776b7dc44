// The tape: topological order, accumulation, noGrad/detach, functional grad, errors, and that backward frees
// what it saved.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Ref, assertClose, assertThrowsWith, refMap, rng, setup, vg } from './helpers.mjs';

test.before(setup);

const data = async (t) => Array.from(await t.data());

test('a shared subgraph is visited once and its gradient accumulates over every path', async () => {
  const r = rng(1);
  const xr = Ref.random([5], r).f32();
  const x = xr.toTensor({ requiresGrad: true });
  // diamond: y = x², then z = y·3 + exp(y) + y  →  dz/dx = 2x (3 + e^y + 1)
  const y = x.mul(x);
  const z = vg.add(vg.add(y.mul(3), y.exp()), y).sum();
  z.backward();
  await assertClose(x.grad, refMap((v) => 2 * v * (4 + Math.exp(v * v)), xr), { rtol: 1e-5 });
});

test('leaf gradients accumulate across backward calls, as in PyTorch', async () => {
  const x = vg.tensor([1, 2, 3], null, { requiresGrad: true });
  x.mul(2).sum().backward();
  x.mul(x).sum().backward();
  assert.equal(await data(x.grad), [2 + 2, 2 + 4, 2 + 6]);
});

test('backward with an explicit gradient for non-scalar outputs', async () => {
  const x = vg.tensor([1, 2, 3], null, { requiresGrad: true });
  const y = x.mul(x);
  y.backward(vg.tensor([1, 0.5, -1]));
  assert.equal(await data(x.grad), [2, 2, -6]);
});

test('noGrad records nothing; detach cuts the graph; requiresGrad propagates', async () => {
  const x = vg.tensor([1, 2], null, { requiresGrad: true });
  const a = vg.noGrad(() => x.mul(2));
  assert.is(a.requiresGrad, false);
  assert.is(a.node, null);
  const d = x.detach();
  assert.is(d.requiresGrad, false);
  const y = x.mul(3).add(d.mul(100)).sum();
  assert.is(y.requiresGrad, true);
  y.backward();
  assert.equal(await data(x.grad), [3, 3]);
  assert.is(vg.isGradEnabled(), true);
});

test('grad and valueAndGrad are functional: no grads left on the arguments', async () => {
  const f = (a, b) => a.mul(b).sum().add(a.square().sum());
  const a = vg.tensor([1, 2]);
  const b = vg.tensor([3, 4]);
  const ga = vg.grad(f)(a, b);
  assert.equal(await data(ga), [3 + 2, 4 + 4]);
  const [value, [da, db]] = vg.valueAndGrad(f, { argnums: [0, 1] })(a, b);
  assert.is(await value.item(), 3 + 8 + 1 + 4);
  assert.equal(await data(da), [5, 8]);
  assert.equal(await data(db), [1, 2]);
  assert.is(a.grad, null);
  assert.is(a.requiresGrad, false);
  // an argument the function ignores gets zeros, like jax.grad
  assert.equal(await data(vg.grad((p, q) => q.sum(), { argnums: 0 })(a, b)), [0, 0]);
  assertThrowsWith(() => vg.grad((p) => p.mul(2))(a), ['vg.grad', 'scalar']);
});

test('errors: backward on a non-scalar, without grad, twice; requiresGrad on ints', async () => {
  const x = vg.tensor([1, 2, 3], null, { requiresGrad: true });
  assertThrowsWith(() => x.mul(2).backward(), ['backward', '[3]', 'scalar', 'loss.mean()']);
  assertThrowsWith(() => vg.tensor([1, 2]).sum().backward(), ['backward', 'does not require grad', 'requiresGrad']);
  const loss = x.exp().sum();
  loss.backward();
  // the first node met on the second pass is the final sum
  assertThrowsWith(() => loss.backward(), ['backward', 'sum', 'second time']);
  assertThrowsWith(() => x.mul(2).backward(vg.ones([4])), ['backward', '[4]', '[3]']);
  assertThrowsWith(() => vg.tensor([1], null, { dtype: 'i32', requiresGrad: true }), ['requiresGrad', 'f32', 'i32']);
});

test('backward frees every saved tensor; dropping an unused graph frees it too', async () => {
  await vg.sync();
  const base = vg.memory();
  const w = vg.tensor([[1, 2], [3, 4]], null, { requiresGrad: true });
  const x = vg.tensor([[0.5, -1], [2, 1]]);
  vg.tidy(() => {
    const loss = vg.tanh(x.matmul(w)).square().mean();
    loss.backward();
  });
  // left: w, x and w.grad
  assert.is(vg.memory().liveTensors, base.liveTensors + 3);
  vg.tidy(() => {
    // a forward that is never differentiated: disposing its outputs releases the tape's saved tensors
    vg.tanh(x.matmul(w)).exp().sum();
  });
  assert.is(vg.memory().liveTensors, base.liveTensors + 3);
  for (const t of [w, x]) t.dispose();
  assert.is(vg.memory().liveTensors, base.liveTensors);
  assert.is(vg.memory().bytesInUse, base.bytesInUse);
});

test('tidy keeps returned tensors (also nested in arrays/objects) and disposes the rest; keep escapes', async () => {
  const before = vg.memory().liveTensors;
  let kept;
  const out = vg.tidy(() => {
    const a = vg.ones([3]);
    const b = a.add(1);
    kept = vg.keep(b.mul(2));
    const inner = vg.tidy(() => [a.mul(3), { c: b.mul(4) }]);
    return { list: inner, d: b.add(5) };
  });
  assert.is(vg.memory().liveTensors, before + 4);
  assert.equal(await data(out.list[0]), [3, 3, 3]);
  assert.equal(await data(out.list[1].c), [8, 8, 8]);
  assert.equal(await data(out.d), [7, 7, 7]);
  assert.equal(await data(kept), [4, 4, 4]);
  assertThrowsWith(() => vg.tidy(async () => vg.ones([1])), ['tidy', 'Promise']);
  for (const t of [out.list[0], out.list[1].c, out.d, kept]) t.dispose();
  assert.is(vg.memory().liveTensors, before);
});

test('using a disposed tensor names the op, the shape and the fix', async () => {
  const t = vg.ones([2, 5]);
  t.dispose();
  assertThrowsWith(() => t.add(1), ['add', 'disposed', '[2, 5]', 'vg.keep']);
  let err;
  try {
    await t.data();
  } catch (e) {
    err = e;
  }
  assert.ok(err && err.message.includes('data') && err.message.includes('disposed'));
});

test('the device reports its adapter, limits and features', async () => {
  const info = vg.backendInfo();
  assert.type(info.vendor, 'string');
  assert.ok(info.limits.maxStorageBufferBindingSize > 0);
  assert.ok(info.limits.maxComputeInvocationsPerWorkgroup >= 64);
  assert.ok(Array.isArray(info.features));
  assert.is(info.platform, 'node');
});

test('vg.profile reports per-kernel GPU times and a Chrome trace', async () => {
  if (!vg.backendInfo().features.includes('timestamp-query')) {
    // adapters without timestamps must refuse clearly rather than report zeros
    let err;
    try {
      await vg.profile(() => {});
    } catch (e) {
      err = e;
    }
    assert.ok(err?.message.includes('timestamp-query'), String(err));
    return;
  }
  const a = vg.randn([64, 64], { seed: 1 });
  const { report } = await vg.profile(() => vg.tidy(() => a.matmul(a).relu().sum()));
  const names = report.kernels.map((k) => k.name);
  assert.ok(names.some((n) => n.startsWith('matmul')), names.join());
  assert.ok(names.some((n) => n.startsWith('reduce.sum')), names.join());
  assert.ok(report.kernels.every((k) => k.durationUs >= 0));
  const trace = JSON.parse(report.chromeTrace());
  assert.is(trace.traceEvents.length, report.kernels.length);
  a.dispose();
});

test.run();
