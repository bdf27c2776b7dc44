// Engine reliability (issue 12): vg.debug.checkNumerics names the first op (or backward rule) producing NaN/Infinity;
// out-of-memory is reported by op and size and leaves the engine usable; after a lost or destroyed device every call
// fails clearly and vg.init() brings back a device on which a training run resumes from its checkpoint bit for bit.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { assertThrowsWith, setup, vg } from './helpers.mjs';
import { trainStep } from './train-step.mjs';

test.before(setup);

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-engrel-'));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** The error `promise` rejects with (fails the test when it resolves). */
async function rejection(promise, msg) {
  const err = await promise.then(() => null, (e) => e);
  assert.ok(err instanceof vg.VoxgradError, `${msg}: expected a VoxgradError, got ${err}`);
  return err;
}

function includesAll(err, fragments, msg = '') {
  for (const f of fragments) assert.ok(err.message.includes(f), `${msg} "${f}" missing in: ${err.message}`);
}

/** Runs fn with every tensor of at most `elements` elements kept on the host (0: everything on the GPU). */
function withHostThreshold(elements, fn) {
  vg.setCpuForwardThreshold(elements);
  try {
    return fn();
  } finally {
    vg.setCpuForwardThreshold(128);
  }
}

// ---- numerics -----------------------------------------------------------------------------------------------------

for (const [where, threshold] of [['GPU', 0], ['host', 128]]) {
  test(`checkNumerics (${where} tensors): log(-1) inside a chain is named, not the ops after it; inputs' shapes given`, async () => {
    vg.debug.checkNumerics(true);
    try {
      const y = withHostThreshold(threshold, () => {
        const x = vg.tensor([[1, -1, 2], [3, 4, 5]]);
        return vg.mul(vg.exp(vg.log(vg.add(x, 1e-3))), 2);
      });
      includesAll(await rejection(y.data(), 'log(-1)'), ['checkNumerics', 'log is the first op', '[2, 3] f32', 'inputs were all finite']);
      // reported once: the next read is clean, and finite chains raise nothing
      const z = withHostThreshold(threshold, () => vg.sqrt(vg.add(vg.tensor([1, 4, 9]), 0)));
      assert.equal(Array.from(await z.data()), [1, 2, 3]);
    } finally {
      vg.debug.checkNumerics(false);
    }
  });

  test(`checkNumerics (${where} tensors): a NaN/Infinity gradient names the backward rule that produced it`, async () => {
    vg.debug.checkNumerics(true);
    try {
      // d sqrt(x)/dx = 1 / (2 sqrt(x)) is Infinity at 0 while the forward stays finite
      const p = withHostThreshold(threshold, () => vg.tensor([0, 1, 4], null, { requiresGrad: true }));
      const loss = withHostThreshold(threshold, () => vg.sum(vg.mul(vg.sqrt(p), 3)));
      assert.is(await loss.item(), 9);
      withHostThreshold(threshold, () => loss.backward());
      includesAll(await rejection(p.grad.data(), 'sqrt backward'), ['checkNumerics', 'sqrt.backward', 'inputs were all finite']);
    } finally {
      vg.debug.checkNumerics(false);
    }
  });
}

test('checkNumerics: an op fed NaN says its inputs already held NaN; off by default, and off again costs nothing', async () => {
  const x = vg.tensor(new Float32Array(300).fill(NaN)); // made with the check off: no op is blamed for it
  vg.debug.checkNumerics(true);
  try {
    includesAll(await rejection(vg.abs(x).data(), 'abs(NaN)'), ['abs is the first op', '[300] f32', 'inputs already held NaN']);
    // a creation op given non-finite values is itself the first op to hold them
    includesAll(await rejection(vg.exp(vg.tensor([0, -Infinity, 1])).data(), 'tensor(Inf)'), ['tensor is the first op', 'no tensor inputs']);
    // an op called inside another is named with the op the user called: (1e30 - 0)^2 overflows inside mseLoss
    const loss = vg.mseLoss(vg.tensor([[1e30, 1]]), vg.tensor([[0, 0]]));
    includesAll(await rejection(loss.data(), 'inside'), ['checkNumerics', '(inside mseLoss)', '[1, 2] f32', 'inputs were all finite']);
  } finally {
    vg.debug.checkNumerics(false);
  }
  // off: NaN flows without an error, as in PyTorch
  assert.ok(Number.isNaN((await vg.log(vg.tensor([-1])).data())[0]));
  const before = vg.dispatches();
  vg.add(vg.ones([1000]), 1);
  assert.is(vg.dispatches() - before, 2, 'ones + add: no check kernels when off');
});

// ---- out of memory ------------------------------------------------------------------------------------------------

test('a tensor beyond maxBufferSize fails before any GPU work, naming the op and the limit; nothing leaks', async () => {
  const limit = vg.backendInfo().limits.maxBufferSize;
  const live = vg.memory().liveTensors;
  const before = vg.dispatches();
  assertThrowsWith(() => vg.zeros([Math.ceil(limit / 4) + 16]), ['zeros', 'maxBufferSize', String(limit)]);
  assertThrowsWith(() => vg.randn([Math.ceil(limit / 4) + 16]), ['randn', 'maxBufferSize']);
  assert.is(vg.dispatches(), before, 'no dispatch recorded');
  assert.is(vg.memory().liveTensors, live, 'no tensor left behind');
  assert.is(await vg.sum(vg.ones([10])).item(), 10);
});

// lavapipe cannot be made to refuse an allocation safely: under `ulimit -v` Dawn/lavapipe abort the process
// (std::bad_alloc, SIGSEGV) instead of returning VK_ERROR_OUT_OF_DEVICE_MEMORY. The fault-injection hook marks the
// next allocation as refused through the same error-scope path a real refusal takes.
test('out of memory (injected): reported at the next read back by op and size; pool emptied; the engine stays usable', async () => {
  const keep = vg.ones([5000]);
  vg.ones([7000]).dispose(); // an idle buffer in the pool
  await vg.sync();
  assert.ok(vg.memory().bytesPooled > 0);
  vg.debug.simulateOutOfMemory(1);
  const a = withHostThreshold(0, () => vg.full([1000, 37], 2));
  const err = await rejection(a.data(), 'injected OOM');
  includesAll(err, ['full', 'ran out of memory', '163840 bytes', 'engine stays usable']);
  assert.is(vg.memory().bytesPooled, 0, 'idle buffers released');
  // reported once; the refused buffer is destroyed on release, never pooled for reuse
  a.dispose();
  await vg.sync();
  assert.is(vg.memory().bytesPooled, 0, 'the refused buffer was not pooled');
  assert.is(await vg.sum(vg.mul(keep, 2)).item(), 10000);
  assert.is(await vg.sum(vg.full([1000, 37], 2)).item(), 74000);
  // the error also surfaces through sync(), and names the user's op for an allocation deep inside it
  vg.debug.simulateOutOfMemory(1);
  vg.matmul(vg.ones([40, 50]), vg.ones([50, 60]));
  includesAll(await rejection(vg.sync(), 'OOM via sync'), ['ran out of memory']);
  keep.dispose();
});

// ---- device loss --------------------------------------------------------------------------------------------------

function makeRun(seed) {
  const nn = vg.nn;
  const model = new nn.Sequential(new nn.Linear(6, 16, { seed }), new nn.ReLU(), new nn.Dropout({ p: 0.3 }), new nn.Linear(16, 2, { seed: seed + 7 }));
  const optimizer = new vg.optim.Adam(model.parameters(), { lr: 0.02, weightDecay: 0.01 });
  const scheduler = new vg.optim.CosineAnnealingLR(optimizer, { tMax: 8 });
  return { model, optimizer, scheduler };
}

const disposeRun = (r) => {
  r.optimizer.dispose();
  r.model.dispose();
};

test('device lost mid-run: the step fails clearly, vg.init() re-acquires, and training resumes from the checkpoint bit for bit', async () => {
  const N = 7;
  const file = path.join(tmp, 'run.safetensors');
  vg.manualSeed(123);
  const a = makeRun(1);
  const ref = [];
  for (let s = 1; s <= N; s++) ref.push(await trainStep(a, s));
  disposeRun(a);

  vg.manualSeed(123);
  let b = makeRun(1);
  let s = 1;
  for (; s <= 4; s++) {
    await trainStep(b, s);
    if (s % 2 === 0) await vg.train.saveCheckpoint(file, { ...b, step: s });
  }
  // the device goes away in the middle of step 5 (after the forward, before backward and the read)
  const err = await rejection(trainStep(b, s, { beforeBackward: () => vg.debug.loseDevice() }), 'step on a lost device');
  includesAll(err, ['device was lost', 'vg.init()']);
  assertThrowsWith(() => vg.ones([3]), ['device was lost', 'vg.init()']);
  await vg.init();
  // the old run's tensors belong to the lost device: using them is an error naming it, disposing them is safe
  assertThrowsWith(() => vg.add(b.model.parameters()[0], 1), ['add', 'device that has since been destroyed or lost']);
  disposeRun(b);
  b = makeRun(50); // different weights: everything must come from the file
  const { step } = await vg.train.loadCheckpoint(file, b);
  assert.is(step, 4);
  for (s = step + 1; s <= N; s++) {
    const got = await trainStep(b, s);
    assert.ok(Object.is(got.value, ref[s - 1].value), `loss at step ${s}: ${got.value} vs ${ref[s - 1].value}`);
    assert.ok(got.params.equals(ref[s - 1].params), `parameters bit-identical at step ${s}`);
  }
  disposeRun(b);
});

test('vg.destroy(): every call then says so; vg.init() gives a working device with fresh caches', async () => {
  const t = vg.ones([300]);
  assert.is(await vg.sum(t).item(), 300);
  vg.destroy();
  assertThrowsWith(() => vg.ones([3]), ['destroyed', 'vg.init()']);
  assertThrowsWith(() => vg.sum(t), ['destroyed']);
  await vg.init();
  assertThrowsWith(() => vg.sum(t), ['sum', 'device that has since been destroyed or lost']);
  t.dispose();
  // pipelines, bind groups, the pool and the assertion buffer are rebuilt lazily on the new device
  const idx = withHostThreshold(0, () => vg.tensor([2, 0, 5], null, { dtype: 'i32' }));
  includesAll(await rejection(vg.oneHot(idx, 3).data(), 'bad index after re-init'), ['oneHot', 'value 5']);
  assert.equal(await vg.matmul(vg.ones([2, 3]), vg.ones([3, 2])).array(), [[3, 3], [3, 3]]);
});

test.run();
