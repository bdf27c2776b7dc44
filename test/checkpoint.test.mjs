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
import { trainStep } from './train-step.mjs';

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
  await rejectsWith(() => vg.io.readSafetensors(good.subarray(0, 5)), ['the given buffer is truncated', '8-byte header length']);
  await rejectsWith(() => vg.io.readSafetensors(good.subarray(0, 40)), ['the given buffer is truncated', `header claims ${headerLen} bytes`]);
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

test('resume is bit-exact: a run restored from the step-k checkpoint matches the uninterrupted run at every later step', async () => {
  const N = 7;
  const K = 3;
  const file = path.join(tmp, 'ck.safetensors');
  vg.manualSeed(123);
  const a = makeRun(1);
  const ref = [];
  for (let s = 1; s <= N; s++) {
    ref.push(await trainStep(a, s));
    if (s === K) await vg.train.saveCheckpoint(file, { ...a, step: s, extra: { best: 0.5, note: 'k' } });
  }
  vg.manualSeed(999); // a different generator state and different initial weights: everything must come from the file
  const b = makeRun(50);
  const { step, extra } = await vg.train.loadCheckpoint(file, b);
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
  await vg.train.loadCheckpoint(file, { ...c, restoreRng: false });
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
  await vg.train.saveCheckpoint(file, { ...run, step: 1 });
  const bytes = fs.readFileSync(file);
  const before = await run.model.parameters()[0].data();
  const other = makeRun(4);
  await rejectsWith(() => vg.train.loadCheckpoint(bytes.subarray(0, bytes.length - 10), other), ['loadCheckpoint', 'truncated']);
  const flipped = Buffer.from(bytes);
  flipped[8] = 0xff; // not UTF-8
  await rejectsWith(() => vg.train.loadCheckpoint(flipped, other), ['loadCheckpoint', 'header is not valid UTF-8 JSON']);
  const plain = await vg.io.encodeSafetensors(run.model.stateDict());
  await rejectsWith(() => vg.train.loadCheckpoint(plain, other), ['not a voxgrad checkpoint', 'readSafetensors']);
  const wrongModel = { model: new vg.nn.Linear(6, 16) };
  await rejectsWith(() => vg.train.loadCheckpoint(file, wrongModel), ['loadCheckpoint', file, 'missing keys']);
  const sgd = new vg.optim.SGD(other.model.parameters(), { lr: 0.1 });
  await rejectsWith(() => vg.train.loadCheckpoint(file, { model: other.model, optimizer: sgd }), ['holds Adam state but the optimizer is SGD']);
  const noOpt = path.join(tmp, 'noopt.safetensors');
  await vg.train.saveCheckpoint(noOpt, { model: run.model, step: 2 });
  await rejectsWith(() => vg.train.loadCheckpoint(noOpt, other), ['checkpoint holds no optimizer state']);
  await rejectsWith(() => vg.train.saveCheckpoint(noOpt, { model: run.model, step: -1 }), ['saveCheckpoint', 'step must be a non-negative integer']);
  await rejectsWith(() => vg.train.saveCheckpoint(noOpt, { model: run.model, step: 1, extra: { n: 1n } }), ['extra must be JSON-serialisable']);
  assert.equal(Array.from(await run.model.parameters()[0].data()), Array.from(before), 'the source run is untouched');
  for (const r of [run, other]) {
    r.optimizer.dispose();
    r.model.dispose();
  }
  wrongModel.model.dispose();
});

/** A checkpoint of `run` at step 1 re-encoded with its tensors and metadata changed by `edit`, written to `name`. */
async function forgedCheckpoint(run, name, edit) {
  const { tensors, metadata } = await vg.io.readSafetensorsWithMetadata(await vg.train.encodeCheckpoint({ ...run, step: 1 }));
  const forged = edit({ tensors: { ...tensors }, metadata: { ...metadata } });
  const file = path.join(tmp, name);
  fs.writeFileSync(file, await vg.io.encodeSafetensors(forged.tensors, { metadata: forged.metadata }));
  Object.values(tensors).forEach((t) => t.dispose());
  return file;
}

test('loadCheckpoint: prototype keys are rejected naming the file and the key, and pollute nothing', async () => {
  const run = makeRun(5);
  await trainStep(run, 1);
  const withTensor = (key) => ({ tensors, metadata }) => ({ tensors: { ...tensors, [key]: tensors['optimizer.state.0.exp_avg'] }, metadata });
  const cases = [
    ['optimizer.state.__proto__.polluted', withTensor('optimizer.state.__proto__.polluted')],
    ['optimizer.state.constructor.X', withTensor('optimizer.state.constructor.X')],
    ['optimizer.state.0.__proto__', withTensor('optimizer.state.0.__proto__')],
    // the same keys inside the JSON metadata
    ['__proto__', ({ tensors, metadata }) => ({ tensors, metadata: { ...metadata, optimizer: metadata.optimizer.replace('"state":{', '"state":{"__proto__":{"polluted":1},') } })],
    ['constructor', ({ tensors, metadata }) => ({ tensors, metadata: { ...metadata, extra: '{"constructor":{"polluted":1}}' } })],
  ];
  for (const [key, edit] of cases) {
    const file = await forgedCheckpoint(run, 'proto.safetensors', edit);
    await rejectsWith(() => vg.train.loadCheckpoint(file, run), ['loadCheckpoint', file, key], key);
    assert.is({}.polluted, undefined, `${key}: Object.prototype untouched`);
    assert.is(Object.X, undefined, `${key}: Object untouched`);
  }
  // the GPU ops that broke on a polluted prototype still run
  const r = vg.randn([1000], { seed: 3 });
  assert.is((await r.data()).length, 1000);
  r.dispose();
  run.optimizer.dispose();
  run.model.dispose();
});

test('loadCheckpoint: a checkpoint that fails validation changes neither the model, the optimizer, the scheduler nor the generator', async () => {
  const source = makeRun(6);
  await trainStep(source, 1);
  const target = makeRun(8);
  await trainStep(target, 1);
  await trainStep(target, 2);
  const snapshot = async () => ({
    params: Buffer.concat(await Promise.all(target.model.parameters().map(async (p) => Buffer.from((await p.data()).buffer)))),
    moments: Buffer.concat(await Promise.all(Object.values(target.optimizer.stateDict().state).map(async (s) => Buffer.from((await s.exp_avg.data()).buffer)))),
    groups: JSON.stringify(target.optimizer.stateDict().param_groups),
    scheduler: JSON.stringify(target.scheduler.stateDict()),
  });
  const before = await snapshot();
  const edits = {
    'bad rng': ['rng', ({ tensors, metadata }) => ({ tensors, metadata: { ...metadata, rng: '{"seed":1,"offset":-5}' } })],
    'bad scheduler state': ['scheduler', ({ tensors, metadata }) => ({ tensors, metadata: { ...metadata, scheduler: metadata.scheduler.replace('"last_epoch":1', '"last_epoch":"one"') } })],
    'a string lr': ['lr', ({ tensors, metadata }) => ({ tensors, metadata: { ...metadata, optimizer: metadata.optimizer.replace('"lr":', '"lr":"0.1","was":') } })],
  };
  for (const [what, [field, edit]] of Object.entries(edits)) {
    const file = await forgedCheckpoint(source, `invalid-${field}.safetensors`, edit);
    vg.manualSeed(77);
    await rejectsWith(() => vg.train.loadCheckpoint(file, target), ['loadCheckpoint', file, field], what);
    const drawn = await vg.rand([4]).data();
    vg.manualSeed(77);
    assert.equal(Array.from(drawn), Array.from(await vg.rand([4]).data()), `${what}: the generator is unchanged`);
    const after = await snapshot();
    assert.ok(after.params.equals(before.params), `${what}: the model's weights are unchanged`);
    assert.ok(after.moments.equals(before.moments), `${what}: the optimizer's moments are unchanged`);
    assert.is(after.groups, before.groups, `${what}: the optimizer's hyper-parameters are unchanged`);
    assert.is(after.scheduler, before.scheduler, `${what}: the scheduler is unchanged`);
  }
  const versioned = await forgedCheckpoint(source, 'version.safetensors', ({ tensors, metadata }) => ({ tensors, metadata: { ...metadata, format_version: 'abc' } }));
  await rejectsWith(() => vg.train.loadCheckpoint(versioned, target), ['loadCheckpoint', versioned, 'format_version', 'abc']);
  for (const r of [source, target]) {
    r.optimizer.dispose();
    r.model.dispose();
  }
});

test('a writer killed mid-save leaves the previous checkpoint intact, and the next save removes its temp file', async () => {
  const dir = fs.mkdtempSync(path.join(tmp, 'crash-'));
  const file = path.join(dir, 'ck.safetensors');
  const child = path.join(dir, 'writer.mjs');
  // temp files are named <file>.tmp-<pid>-<random>: whose they are, and whether that writer is still alive
  const tempsOf = (pid) => fs.readdirSync(dir).filter((f) => f.includes('ck.safetensors.tmp-') && (pid === undefined || f.includes(`.tmp-${pid}-`)));
  // 4M parameters (16 MB): each save takes long enough that the kill lands inside writeFileAtomic
  fs.writeFileSync(
    child,
    `import * as vg from ${JSON.stringify(new URL('../dist/node.js', import.meta.url).href)};
await vg.init();
const model = new vg.nn.Linear(2048, 2048, { bias: false });
for (let step = 1; ; step++) {
  vg.noGrad(() => model.loadStateDict({ weight: vg.full([2048, 2048], step) }));
  await vg.train.saveCheckpoint(${JSON.stringify(file)}, { model, step });
  process.stdout.write('saved ' + step + '\\n');
}
`,
  );
  let lastSaved = 0;
  let killedMidWrite = false;
  const killed = [];
  for (let attempt = 0; attempt < 4 && !killedMidWrite; attempt++) {
    const proc = spawn(process.execPath, [child], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise((resolve, reject) => {
      let sent = false;
      const started = Date.now();
      proc.stdout.on('data', (d) => {
        const m = String(d).match(/saved (\d+)/g);
        if (m) lastSaved = Number(m.at(-1).slice(6));
      });
      const timer = setInterval(() => {
        // once a checkpoint exists, kill as soon as this writer's next temp file appears (it is inside writeFileAtomic)
        // (and after 60 s regardless, so that a writer whose temp files cannot be recognised fails the test)
        if (!sent && ((lastSaved >= 1 && tempsOf(proc.pid).length > 0) || Date.now() - started > 60_000)) {
          sent = true;
          proc.kill('SIGKILL');
        }
      }, 1);
      proc.on('exit', () => {
        clearInterval(timer);
        resolve();
      });
      proc.on('error', reject);
    });
    killed.push(proc.pid);
    killedMidWrite = tempsOf(proc.pid).length > 0;
  }
  assert.ok(killedMidWrite, 'the writer was killed while a temp file was being written');
  // a later writer's save removed the temp files of the writers killed before it
  assert.equal(tempsOf().filter((f) => !f.includes(`.tmp-${killed.at(-1)}-`)), [], 'earlier writers left no temp file');
  const model = new vg.nn.Linear(2048, 2048, { bias: false });
  const { step } = await vg.train.loadCheckpoint(file, { model });
  // the file is the last completed save (the killed save never replaced it)
  assert.ok(step >= 1 && step >= lastSaved && step <= lastSaved + 1, `loaded step ${step}, last reported save ${lastSaved}`);
  const w = await model.weight.data();
  assert.ok(w.every((v) => v === step), 'every weight is from that one save');
  // the next save into the folder removes the dead writer's multi-MB temp file, and only a dead writer's
  const alive = path.join(dir, `ck.safetensors.tmp-${process.pid}-inflight`);
  fs.writeFileSync(alive, 'a save of this process in flight');
  await vg.train.saveCheckpoint(file, { model, step: step + 1 });
  assert.equal(tempsOf(), [path.basename(alive)], 'the killed writer\'s temp file is gone, the live one kept');
  fs.rmSync(alive);
  model.dispose();
});

test.run();
