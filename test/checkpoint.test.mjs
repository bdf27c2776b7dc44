// safetensors and training checkpoints: files written by a spec-following Python writer (test/fixtures/gen_checkpoint.py)
// read with every dtype conversion, voxgrad's writer reproduces the reference layout byte for byte, PyTorch's
// state-dict keys, clear errors for truncated/corrupt files, bit-exact resume of a dropout + Adam + scheduler run, and a
// writer process killed mid-save leaving the previous checkpoint loadable.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadFixtures } from './fixtures.mjs';
import { setup, vg } from './helpers.mjs';

test.before(setup);

const fx = loadFixtures('checkpoint');
const bytesOf = (b64) => new Uint8Array(Buffer.from(b64, 'base64'));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-'));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Awaits fn and asserts it rejects with a VoxgradError containing every fragment. */
async function rejectsWith(fn, fragments, msg = '') {
  let err;
  try {
    await fn();
  } catch (e) {
    err = e;
  }
  assert.ok(err, `${msg} expected an error`);
  assert.instance(err, vg.VoxgradError, `${msg} got ${err}`);
  for (const f of fragments) assert.ok(err.message.includes(f), `${msg} message lacks "${f}": ${err.message}`);
}

test('readSafetensors: every dtype of a spec-written file converts exactly (F64/F16/BF16 → f32, I64/U8/BOOL → i32), with metadata', async () => {
  const { tensors, metadata } = await vg.io.readSafetensorsWithMetadata(bytesOf(fx.mixed.b64));
  assert.equal(metadata, { format: 'pt', note: 'written by gen_checkpoint.py' });
  assert.equal(Object.keys(tensors).sort(), Object.keys(fx.mixed.expected).sort());
  for (const [name, e] of Object.entries(fx.mixed.expected)) {
    const t = tensors[name];
    assert.equal([...t.shape], e.shape, name);
    assert.is(t.dtype, e.int ? 'i32' : 'f32', `${name} dtype`);
    // F64 values are rounded to f32 once; every other dtype converts exactly
    assert.equal(Array.from(await t.data()), e.values.map((v) => (e.int ? v : Math.fround(v))), name);
  }
  Object.values(tensors).forEach((t) => t.dispose());
});

test('readSafetensors: values f32/i32 cannot hold are errors naming the tensor and the element', async () => {
  await rejectsWith(() => vg.io.readSafetensors(bytesOf(fx.overflow.b64)), ['readSafetensors', "tensor 'big'", 'element 1 = 1e+300 overflows f32']);
  await rejectsWith(() => vg.io.readSafetensors(bytesOf(fx.int_overflow.b64)), ["tensor 'ids'", 'element 1 = 1099511627776 does not fit in i32']);
});

test("encodeSafetensors reproduces the reference writer's layout byte for byte; write/read round trip through a file", async () => {
  const tensors = {
    'b.weight': vg.tensor([1, -2, 3.5, 0.25], [2, 2]),
    'a.bias': vg.tensor([0.1, 0.2, 0.3], [3]),
    count: vg.tensor(7, [], { dtype: 'i32' }),
    ids: vg.tensor(new Uint32Array([1, 4000000000]), [2]),
  };
  const bytes = await vg.io.encodeSafetensors(tensors, { metadata: { step: '3' } });
  assert.equal(Buffer.from(bytes).toString('base64'), fx.layout.b64, 'same bytes as the spec-following Python writer');
  const file = path.join(tmp, 'w.safetensors');
  await vg.io.writeSafetensors(file, { ...tensors, empty: vg.zeros([0, 4]) }, { metadata: { a: 'b' } });
  const { tensors: back, metadata } = await vg.io.readSafetensorsWithMetadata(file);
  assert.equal(metadata, { a: 'b' });
  for (const [k, t] of Object.entries(tensors)) {
    assert.is(back[k].dtype, t.dtype, k);
    assert.equal(Array.from(await back[k].data()), Array.from(await t.data()), k);
  }
  assert.equal([...back.empty.shape], [0, 4]);
  await rejectsWith(() => vg.io.encodeSafetensors({ x: 3 }), ['encodeSafetensors', "tensors['x'] must be a Tensor"]);
  await rejectsWith(() => vg.io.encodeSafetensors({ x: tensors.count }, { metadata: { n: 3 } }), ["metadata['n'] must be a string"]);
});

test('readSafetensors: truncated, corrupt and inconsistent files give errors that say what is wrong', async () => {
  const good = bytesOf(fx.layout.b64);
  const headerLen = Number(new DataView(good.buffer).getBigUint64(0, true));
  await rejectsWith(() => vg.io.readSafetensors(good.subarray(0, 5)), ['file is truncated', '8-byte header length']);
  await rejectsWith(() => vg.io.readSafetensors(good.subarray(0, 40)), ['file is truncated', `header claims ${headerLen} bytes`]);
  await rejectsWith(() => vg.io.readSafetensors(good.subarray(0, good.length - 4)), ['outside the', 'truncated or corrupt']);
  const huge = good.slice();
  new DataView(huge.buffer).setBigUint64(0, 1n << 40n, true);
  await rejectsWith(() => vg.io.readSafetensors(huge), ['header length 1099511627776 is implausible']);
  const badJson = good.slice();
  badJson[8] = 0x5b; // '[' → not an object / not JSON
  await rejectsWith(() => vg.io.readSafetensors(badJson), ['header is not valid UTF-8 JSON']);
  const extra = new Uint8Array(good.length + 4);
  extra.set(good);
  await rejectsWith(() => vg.io.readSafetensors(extra), ['trailing bytes']);
  const edit = (fn) => {
    const h = JSON.parse(Buffer.from(good.subarray(8, 8 + headerLen)).toString());
    fn(h);
    let json = Buffer.from(JSON.stringify(h));
    json = Buffer.concat([json, Buffer.alloc((8 - (json.length % 8)) % 8, 0x20)]);
    const out = Buffer.alloc(8 + json.length + good.length - 8 - headerLen);
    out.writeBigUInt64LE(BigInt(json.length));
    json.copy(out, 8);
    Buffer.from(good.subarray(8 + headerLen)).copy(out, 8 + json.length);
    return new Uint8Array(out);
  };
  await rejectsWith(() => vg.io.readSafetensors(edit((h) => (h.count.dtype = 'Q7'))), ["tensor 'count' has dtype \"Q7\"", 'expected one of']);
  await rejectsWith(() => vg.io.readSafetensors(edit((h) => (h.count.shape = [2]))), ["tensor 'count' (I32 [2]) needs 8 bytes"]);
  await rejectsWith(() => vg.io.readSafetensors(edit((h) => (h['a.bias'].data_offsets = [4, 16]))), ['overlapping or missing data']);
  await rejectsWith(() => vg.io.readSafetensors(edit((h) => (h.__metadata__ = { step: 3 }))), ["__metadata__['step'] must be a string"]);
});

test("a module's stateDict has exactly PyTorch's keys and shapes (Conv/BN/GroupNorm/InstanceNorm/ConvTranspose/Linear/LayerNorm/MHA/ModuleList)", () => {
  class Net extends vg.nn.Module {
    constructor() {
      super();
      const nn = vg.nn;
      this.enc = new nn.Sequential(new nn.Conv3d(2, 4, 3, { padding: 1 }), new nn.BatchNorm3d(4), new nn.ReLU(), new nn.Conv3d(4, 4, 3, { stride: 2, bias: false }));
      this.norm = new nn.GroupNorm(2, 4);
      this.inorm = new nn.InstanceNorm3d(4, { affine: true, trackRunningStats: true });
      this.up = new nn.ConvTranspose3d(4, 2, 2, { stride: 2 });
      this.head = new nn.Linear(8, 3);
      this.ln = new nn.LayerNorm([3]);
      this.attn = new nn.MultiheadAttention(8, 2);
      this.blocks = new nn.ModuleList([new nn.Conv2d(1, 2, [3, 1]), new nn.BatchNorm2d(2)]);
    }
  }
  const net = new Net();
  assert.equal(Object.entries(net.stateDict()).map(([k, t]) => [k, [...t.shape]]), fx.torchKeys);
  net.dispose();
});

// ---- checkpoints --------------------------------------------------------------------------------------------------

function makeRun(seed) {
  const model = new vg.nn.Sequential(new vg.nn.Linear(6, 16, { seed }), new vg.nn.ReLU(), new vg.nn.Dropout({ p: 0.3 }), new vg.nn.Linear(16, 2, { seed: seed + 7 }));
  const optimizer = new vg.optim.Adam(model.parameters(), { lr: 0.02, weightDecay: 0.01 });
  const scheduler = new vg.optim.LinearWarmup(new vg.optim.CosineAnnealingLR(optimizer, { tMax: 8 }), { warmupIters: 2 });
  return { model, optimizer, scheduler };
}

/** One training step on seeded data (the data depend only on the step; dropout draws from the global generator). */
async function trainStep({ model, optimizer, scheduler }, step) {
  optimizer.zeroGrad();
  const x = vg.randn([8, 6], { seed: 1000 + step });
  const y = vg.randn([8, 2], { seed: 2000 + step });
  const loss = vg.mseLoss(model.call(x), y);
  loss.backward();
  optimizer.step();
  scheduler.step();
  const value = await loss.item();
  for (const t of [x, y, loss]) t.dispose();
  const params = await Promise.all(model.parameters().map(async (p) => Buffer.from((await p.data()).buffer)));
  return { value, params: Buffer.concat(params) };
}

test('resume is bit-exact: a run restored from the step-k checkpoint matches the uninterrupted run at every later step', async () => {
  const N = 7;
  const K = 3;
  const file = path.join(tmp, 'ck.safetensors');
  vg.manualSeed(123);
  const a = makeRun(1);
  const ref = [];
  for (let s = 1; s <= N; s++) {
    ref.push(await trainStep(a, s));
    if (s === K) await vg.io.saveCheckpoint(file, { ...a, step: s, extra: { best: 0.5, note: 'k' } });
  }
  vg.manualSeed(999); // a different generator state and different initial weights: everything must come from the file
  const b = makeRun(50);
  const { step, extra } = await vg.io.loadCheckpoint(file, b);
  assert.is(step, K);
  assert.equal(extra, { best: 0.5, note: 'k' });
  for (let s = K + 1; s <= N; s++) {
    const got = await trainStep(b, s);
    assert.is(Object.is(got.value, ref[s - 1].value), true, `loss at step ${s}: ${got.value} vs ${ref[s - 1].value}`);
    assert.ok(got.params.equals(ref[s - 1].params), `parameters bit-identical at step ${s}`);
  }
  // the model part is plain safetensors under PyTorch's keys
  const weights = await vg.io.readSafetensors(file);
  assert.ok(['0.weight', '0.bias', '3.weight', '3.bias', 'optimizer.state.0.exp_avg'].every((k) => k in weights));
  Object.values(weights).forEach((t) => t.dispose());
  // without restoring the generator the dropout masks differ, so the check above is sensitive to the RNG state
  const c = makeRun(50);
  await vg.io.loadCheckpoint(file, { ...c, restoreRng: false });
  vg.manualSeed(5);
  const diverged = await trainStep(c, K + 1);
  assert.not.ok(diverged.params.equals(ref[K].params), 'different dropout masks give different parameters');
  for (const r of [a, b, c]) {
    r.optimizer.dispose();
    r.model.dispose();
  }
});

test('loadCheckpoint: corrupt, truncated or mismatched checkpoints give clear errors and change nothing', async () => {
  const file = path.join(tmp, 'ck2.safetensors');
  const run = makeRun(3);
  await trainStep(run, 1);
  await vg.io.saveCheckpoint(file, { ...run, step: 1 });
  const bytes = fs.readFileSync(file);
  const before = await run.model.parameters()[0].data();
  const other = makeRun(4);
  await rejectsWith(() => vg.io.loadCheckpoint(bytes.subarray(0, bytes.length - 10), other), ['loadCheckpoint', 'truncated']);
  const flipped = Buffer.from(bytes);
  flipped[8] = 0xff; // not UTF-8
  await rejectsWith(() => vg.io.loadCheckpoint(flipped, other), ['loadCheckpoint', 'header is not valid UTF-8 JSON']);
  const plain = await vg.io.encodeSafetensors(run.model.stateDict());
  await rejectsWith(() => vg.io.loadCheckpoint(plain, other), ['not a voxgrad checkpoint', 'readSafetensors']);
  const wrongModel = { model: new vg.nn.Linear(6, 16) };
  await rejectsWith(() => vg.io.loadCheckpoint(file, wrongModel), ['loadStateDict', 'missing keys']);
  const sgd = new vg.optim.SGD(other.model.parameters(), { lr: 0.1 });
  await rejectsWith(() => vg.io.loadCheckpoint(file, { model: other.model, optimizer: sgd }), ['holds Adam state but the optimizer is SGD']);
  const noOpt = path.join(tmp, 'noopt.safetensors');
  await vg.io.saveCheckpoint(noOpt, { model: run.model, step: 2 });
  await rejectsWith(() => vg.io.loadCheckpoint(noOpt, other), ['checkpoint holds no optimizer state']);
  await rejectsWith(() => vg.io.saveCheckpoint(noOpt, { model: run.model, step: -1 }), ['saveCheckpoint', 'step must be a non-negative integer']);
  await rejectsWith(() => vg.io.saveCheckpoint(noOpt, { model: run.model, step: 1, extra: { n: 1n } }), ['extra must be JSON-serialisable']);
  assert.equal(Array.from(await run.model.parameters()[0].data()), Array.from(before), 'the source run is untouched');
  for (const r of [run, other]) {
    r.optimizer.dispose();
    r.model.dispose();
  }
  wrongModel.model.dispose();
});

test('a writer killed mid-save leaves the previous checkpoint intact and loadable', async () => {
  const dir = fs.mkdtempSync(path.join(tmp, 'crash-'));
  const file = path.join(dir, 'ck.safetensors');
  const child = path.join(dir, 'writer.mjs');
  // 4M parameters (16 MB): each save takes long enough that the kill lands inside writeFileAtomic
  fs.writeFileSync(
    child,
    `import * as vg from ${JSON.stringify(new URL('../dist/node.js', import.meta.url).href)};
await vg.init();
const model = new vg.nn.Linear(2048, 2048, { bias: false });
for (let step = 1; ; step++) {
  vg.noGrad(() => model.loadStateDict({ weight: vg.full([2048, 2048], step) }));
  await vg.io.saveCheckpoint(${JSON.stringify(file)}, { model, step });
  process.stdout.write('saved ' + step + '\\n');
}
`,
  );
  let lastSaved = 0;
  let killedMidWrite = false;
  for (let attempt = 0; attempt < 4 && !killedMidWrite; attempt++) {
    const proc = spawn(process.execPath, [child], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise((resolve, reject) => {
      let killed = false;
      proc.stdout.on('data', (d) => {
        const m = String(d).match(/saved (\d+)/g);
        if (m) lastSaved = Number(m.at(-1).slice(6));
      });
      const timer = setInterval(() => {
        // once a checkpoint exists, kill as soon as the next temp file appears (the writer is inside writeFileAtomic)
        if (!killed && lastSaved >= 1 && fs.readdirSync(dir).some((f) => f.endsWith('.tmp'))) {
          killed = true;
          proc.kill('SIGKILL');
        }
      }, 1);
      proc.on('exit', () => {
        clearInterval(timer);
        resolve();
      });
      proc.on('error', reject);
    });
    killedMidWrite = fs.readdirSync(dir).some((f) => f.endsWith('.tmp'));
    for (const f of fs.readdirSync(dir)) if (f.endsWith('.tmp')) fs.rmSync(path.join(dir, f));
  }
  assert.ok(killedMidWrite, 'the writer was killed while a temp file was being written');
  const model = new vg.nn.Linear(2048, 2048, { bias: false });
  const { step } = await vg.io.loadCheckpoint(file, { model });
  // the file is the last completed save (the killed save never replaced it)
  assert.ok(step >= 1 && step >= lastSaved && step <= lastSaved + 1, `loaded step ${step}, last reported save ${lastSaved}`);
  const w = await model.weight.data();
  assert.ok(w.every((v) => v === step), 'every weight is from that one save');
  model.dispose();
});

test.run();
