// End-to-end: a small MLP trained with plain GPU ops learns a non-linear problem, and a long training loop
// holds its memory flat.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { rng, setup, vg } from './helpers.mjs';

test.before(setup);

/** 2 → hidden → hidden → 1 MLP with tanh, Kaiming-uniform-like init from a seeded CPU generator. */
function mlp(hidden, seed) {
  const r = rng(seed);
  const layer = (fanIn, fanOut) => {
    const bound = 1 / Math.sqrt(fanIn);
    return [
      vg.tensor(Array.from({ length: fanIn * fanOut }, () => r.uniform(-bound, bound)), [fanOut, fanIn], { requiresGrad: true }),
      vg.tensor(Array.from({ length: fanOut }, () => r.uniform(-bound, bound)), [fanOut], { requiresGrad: true }),
    ];
  };
  return [...layer(2, hidden), ...layer(hidden, hidden), ...layer(hidden, 1)];
}

function forward(params, x) {
  const [w1, b1, w2, b2, w3, b3] = params;
  const h1 = vg.tanh(vg.linear(x, w1, b1));
  const h2 = vg.tanh(vg.linear(h1, w2, b2));
  return vg.linear(h2, w3, b3);
}

/** One SGD-with-momentum step; returns the new parameter list (old parameters, grads and velocities disposed). */
function sgdStep(params, velocity, lr, momentum) {
  return vg.noGrad(() =>
    params.map((p, i) => {
      const [v, next] = vg.tidy(() => {
        const nv = velocity[i] ? velocity[i].mul(momentum).add(p.grad) : p.grad.mul(1);
        return [nv, p.sub(nv.mul(lr)).requiresGrad_()];
      });
      velocity[i]?.dispose();
      velocity[i] = vg.keep(v);
      p.dispose();
      return vg.keep(next);
    }),
  );
}

test('a tiny MLP learns XOR to near-zero loss', async () => {
  const x = vg.tensor([[0, 0], [0, 1], [1, 0], [1, 1]]);
  const y = vg.tensor([[0], [1], [1], [0]]);
  let params = mlp(8, 3);
  const velocity = [];
  let first;
  let loss;
  for (let step = 0; step < 400; step++) {
    loss = vg.tidy(() => {
      const l = vg.bceWithLogits(forward(params, x), y);
      l.backward();
      return l;
    });
    if (step === 0) first = await loss.item();
    params = sgdStep(params, velocity, 0.5, 0.9);
    if (step < 399) loss.dispose();
  }
  const last = await loss.item();
  assert.ok(first > 0.5, `initial loss ${first} should be near log 2`);
  assert.ok(last < 0.01, `final loss ${last} should be near zero (started at ${first})`);
  const pred = await vg.noGrad(() => vg.sigmoid(forward(params, x))).data();
  assert.equal(Array.from(pred, (p) => (p > 0.5 ? 1 : 0)), [0, 1, 1, 0]);
});

test('2,000 training iterations: live tensors and bytes in use do not grow, the pool stays bounded', async () => {
  const r = rng(5);
  const n = 64;
  const xs = Array.from({ length: n * 2 }, () => r.uniform(-1, 1));
  const x = vg.tensor(xs, [n, 2]);
  const y = vg.tensor(Array.from({ length: n }, (_, i) => Math.sin(3 * xs[2 * i]) * Math.cos(2 * xs[2 * i + 1])), [n, 1]);
  let params = mlp(16, 9);
  const velocity = [];
  const snapshots = [];
  for (let step = 0; step < 2000; step++) {
    const loss = vg.tidy(() => {
      const l = vg.mseLoss(forward(params, x), y);
      l.backward();
      return l;
    });
    params = sgdStep(params, velocity, 0.05, 0.9);
    // like a real loop, log the loss now and then (this is also where the GPU catches up)
    if (step % 20 === 0) await loss.item();
    loss.dispose();
    if (step === 99 || step === 1999) {
      await vg.sync();
      snapshots.push(vg.memory());
    }
  }
  const [early, late] = snapshots;
  assert.is(late.liveTensors, early.liveTensors, `live tensors grew: ${early.liveTensors} → ${late.liveTensors}`);
  assert.is(late.bytesInUse, early.bytesInUse, `bytes in use grew: ${early.bytesInUse} → ${late.bytesInUse}`);
  assert.ok(late.bytesPooled <= early.bytesPooled * 2 + 65536, `pool grew: ${early.bytesPooled} → ${late.bytesPooled}`);
  // the loop still learns (a broken optimiser would pass a pure memory check)
  const final = await vg.noGrad(() => vg.mseLoss(forward(params, x), y)).item();
  assert.ok(final < 0.05, `loss after 2000 steps ${final}`);
});

test.run();
