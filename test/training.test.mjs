// End-to-end: a small MLP trained with plain GPU ops learns a non-linear problem, a long training loop holds its
// memory flat, and vg.train's loop writes the run folder (evaluation hooks, stop and resume) for a recipe of user code.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

/** A user-defined recipe: a linear regression y = 2x − 1 trained by vg.train's loop, evaluated by its hooks. */
const linearRecipe = vg.train.defineRecipe({
  name: 'linear-fit',
  description: 'y = 2x − 1 by SGD',
  defaults: { steps: 8, lr: 0.1, checkpointEvery: 2, evaluateEvery: 3 },
  async train(run) {
    const model = new vg.nn.Linear(1, 1, { seed: 4 });
    const optimizer = new vg.optim.SGD(model.parameters(), { lr: run.config.lr });
    const x = vg.tensor([-1, 0, 0.5, 1, 2], [5, 1]);
    const y = vg.tensor([-3, -1, 0, 1, 3], [5, 1]);
    const error = () => vg.noGrad(() => vg.mseLoss(model.call(x), y));
    try {
      return await vg.train.trainLoop(run, {
        model,
        optimizer,
        steps: run.config.steps,
        checkpointEvery: run.config.checkpointEvery,
        evaluateEvery: run.config.evaluateEvery,
        step: async () => {
          const loss = vg.tidy(() => {
            const l = vg.mseLoss(model.call(x), y);
            l.backward();
            return l;
          });
          optimizer.step();
          optimizer.zeroGrad();
          const value = await loss.item();
          loss.dispose();
          return { loss: value };
        },
        evaluate: async (step) => {
          const e = error();
          const mse = await e.item();
          e.dispose();
          return { mse, evaluatedAt: step };
        },
      });
    } finally {
      for (const t of [x, y]) t.dispose();
      optimizer.dispose();
      model.dispose();
    }
  },
  async evaluate() {
    return {};
  },
});

test('vg.train: a recipe of user code gets the run folder, evaluation hooks, and a stop + resume that keeps the history', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vg-train-'));
  try {
    const full = await linearRecipe.train({ outDir: join(dir, 'full') });
    assert.is(full.finished, true);
    const metrics = JSON.parse(readFileSync(join(dir, 'full', 'metrics.json'), 'utf8'));
    assert.equal(JSON.parse(readFileSync(join(dir, 'full', 'config.json'), 'utf8')), { recipe: 'linear-fit', steps: 8, lr: 0.1, checkpointEvery: 2, evaluateEvery: 3 });
    assert.equal(metrics.history.map((h) => h.step), [0, 1, 2, 3, 4, 5, 6, 7]);
    // the loss falls, and the hooks ran at steps 3 and 6 (during training) and 8 (the final evaluation)
    assert.ok(metrics.history[7].loss < metrics.history[0].loss / 4, `loss ${metrics.history[0].loss} → ${metrics.history[7].loss}`);
    assert.equal(metrics.evaluations.map((e) => e.step), [3, 6]);
    assert.equal(metrics.evaluations.map((e) => e.evaluatedAt), [3, 6]);
    assert.is(metrics.evaluation.evaluatedAt, 8);
    assert.ok(metrics.evaluation.mse < metrics.evaluations[0].mse);
    assert.equal(metrics.evaluation, full.evaluation);
    assert.ok(existsSync(join(dir, 'full', 'loss.png')) && existsSync(join(dir, 'full', 'checkpoint.safetensors')));

    // stopped after 5 steps: a checkpoint at 5 and the metrics so far; resumed: the same history and end state
    let steps = 0;
    const stopped = await linearRecipe.train({ outDir: join(dir, 'cut'), shouldStop: () => steps === 5, onStep: () => steps++ });
    assert.is(stopped.finished, false);
    assert.is(stopped.steps, 5);
    const partial = JSON.parse(readFileSync(join(dir, 'cut', 'metrics.json'), 'utf8'));
    assert.equal([partial.finished, partial.steps, partial.history.length, partial.evaluation], [false, 5, 5, null]);
    const resumed = await linearRecipe.train({ outDir: join(dir, 'cut'), resume: join(dir, 'cut', 'checkpoint.safetensors') });
    assert.equal(resumed.history.map((h) => h.step), [5, 6, 7], 'this invocation ran the remaining steps');
    const after = JSON.parse(readFileSync(join(dir, 'cut', 'metrics.json'), 'utf8'));
    assert.equal(after.history, metrics.history, 'the run folder holds the whole history, bit for bit');
    assert.equal(after.evaluations, metrics.evaluations);
    assert.equal(after.evaluation, metrics.evaluation);
    assert.ok(after.seconds >= partial.seconds, 'the earlier time is kept');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('vg.train: a loop with a bad checkpointEvery or evaluateEvery, or an unknown setting, fails before training', async () => {
  for (const [config, fragment] of [
    [{ checkpointEvery: 0 }, 'checkpointEvery must be a positive integer'],
    [{ evaluateEvery: 1.5 }, 'evaluateEvery must be a positive integer'],
    [{ learningRate: 1 }, "recipe linear-fit has no setting 'learningRate'"],
  ]) {
    let err;
    try {
      await linearRecipe.train({ config });
    } catch (e) {
      err = e;
    }
    assert.instance(err, vg.VoxgradError, JSON.stringify(config));
    assert.match(err.message, fragment);
  }
});

test('vg.train: a recipe with seedsGlobalGenerator starts the global generator from its seed, whatever ran before', async () => {
  const drawRecipe = vg.train.defineRecipe({
    name: 'draw',
    description: 'one unseeded draw',
    defaults: { seed: 0 },
    seedsGlobalGenerator: true,
    async train() {
      const r = vg.rand([6]);
      const values = Array.from(await r.data());
      r.dispose();
      return { steps: 0, finished: true, history: [], evaluation: { values }, seconds: 0 };
    },
  });
  const first = (await drawRecipe.train({ config: { seed: 5 } })).evaluation.values;
  vg.rand([1000]).dispose(); // advances the global generator
  const again = (await drawRecipe.train({ config: { seed: 5 } })).evaluation.values;
  const other = (await drawRecipe.train({ config: { seed: 6 } })).evaluation.values;
  assert.equal(again, first);
  assert.ok(other.some((v, i) => v !== first[i]), 'another seed draws other numbers');
});

test.run();
