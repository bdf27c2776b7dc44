// The child process of the fuzzing harness: reads cases (one JSON line each on stdin), runs each through the public
// vg.io readers (or the CLI's config parsing), and answers one JSON line per case with its outcome, a summary of what
// was read (for the oracle) and its peak RSS. Every case prints {"start": i} first, so the parent knows which case
// was running if this process dies, hangs or grows past the memory limit.
//   node worker.mjs <format> <dist folder>     (format: nifti | safetensors | nrrd | checkpoint | config)
//   node worker.mjs seeds <dist folder> <dir>  writes the voxgrad-made seed files into dir, prints their list
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { pathToFileURL } from 'node:url';

const [format, distDir, seedDir] = process.argv.slice(2);
const vg = await import(pathToFileURL(path.join(distDir, 'node.js')).href);
await vg.init();

const status = (key) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(fs.readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0) * 1024;
// checkpoints of models: vg.io on this branch, vg.train once the training loop owns them (same functions)
const checkpoints = vg.train?.loadCheckpoint ? vg.train : vg.io;
const send = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);

/** SHA-1 of f32 values with NaNs and zeros canonical (the oracle hashes get_fdata() the same way): values, not bits. */
function f32Sha(values) {
  const f = Float32Array.from(values);
  const bits = new Uint32Array(f.buffer);
  for (let i = 0; i < f.length; i++) {
    if (Number.isNaN(f[i])) bits[i] = 0x7fc00000;
    else if (f[i] === 0) bits[i] = 0;
  }
  return crypto.createHash('sha1').update(new Uint8Array(f.buffer)).digest('hex');
}

/** An affine as JSON: non-finite entries as the strings Number() reads back (JSON would make them null). */
const jsonAffine = (A) => A.map((row) => row.map((v) => (Number.isFinite(v) ? v : String(v))));

/** Own keys of Object.prototype and Object: a case that adds one has polluted every later object. */
const prototypeState = () => `${Object.getOwnPropertyNames(Object.prototype).sort()}|${Object.getOwnPropertyNames(Object).sort()}`;
const cleanPrototypes = prototypeState();

async function seeds() {
  const written = [];
  const save = (name, bytes) => {
    const p = path.join(seedDir, name);
    fs.writeFileSync(p, bytes);
    written.push(p);
  };
  const volume = vg.tensor(Array.from({ length: 60 }, (_, i) => Math.sin(i)), [3, 4, 5]);
  const affine = [[0, -2, 0, 4], [1.5, 0, 0, -6], [0, 0, 3, 1], [0, 0, 0, 1]];
  save('vg_f32.nii', await vg.io.encodeNifti(volume, { affine }));
  save('vg_f32.nii.gz', await vg.io.encodeNifti(volume, { affine, gzip: true }));
  const labels = vg.tensor(Array.from({ length: 24 }, (_, i) => i % 5), [2, 3, 4], { dtype: 'i32' });
  save('vg_u8.nii.gz', await vg.io.encodeNifti(labels, { datatype: 'uint8', gzip: true }));
  save('vg_i16_4d.nii', await vg.io.encodeNifti(vg.tensor(Array.from({ length: 48 }, (_, i) => i - 20), [2, 3, 4, 2]), { datatype: 'int16' }));
  save('weights.safetensors', await vg.io.encodeSafetensors(
    { 'conv.weight': vg.tensor(Array.from({ length: 24 }, (_, i) => i / 7), [2, 3, 2, 2]), 'conv.bias': vg.tensor([1, -2], [2]), steps: labels, mask: vg.tensor([1, 0, 7], [3], { dtype: 'u32' }) },
    { metadata: { format: 'pt', note: 'fuzz seed' } },
  ));
  save('single.safetensors', await vg.io.encodeSafetensors({ w: vg.tensor([1, 2, 3, 4], [2, 2]) }));
  const { model, optimizer, scheduler } = checkpointTargets();
  const loss = vg.sum(model.forward(vg.tensor([1, 2, 3, 4, 5, 6], [2, 3])));
  loss.backward();
  optimizer.step();
  scheduler.step();
  save('train.ckpt.safetensors', await checkpoints.encodeCheckpoint({ model, optimizer, scheduler, step: 3, extra: { best: 0.5, note: 'seed' } }));
  save('weights-only.ckpt.safetensors', await checkpoints.encodeCheckpoint({ model, step: 0 }));
  send(written);
}

/** The model, optimizer and scheduler every checkpoint case loads into (the seed was saved from the same kinds). */
function checkpointTargets() {
  const model = new vg.nn.Linear(3, 2, { seed: 1 });
  const optimizer = new vg.optim.Adam(model.parameters(), { lr: 0.01 });
  const scheduler = new vg.optim.StepLR(optimizer, { stepSize: 2 });
  return { model, optimizer, scheduler };
}

async function snapshot({ model, optimizer, scheduler }) {
  const params = await Promise.all(model.parameters().map((p) => p.data()));
  const opt = optimizer.stateDict();
  return JSON.stringify({ params: params.map((d) => [...d]), groups: opt.param_groups, keys: Object.keys(opt.state), sched: scheduler.stateDict() });
}

let cli = null;
/** dist/cli.js runs its main on import: it is imported once with the harmless 'list' command, output muted. */
async function loadCli() {
  const log = console.log;
  console.log = () => {};
  process.argv = [process.argv[0], 'voxgrad', 'list'];
  cli = await import(pathToFileURL(path.join(distDir, 'cli.js')).href);
  console.log = log;
  process.exitCode = 0;
}

async function runConfig(c) {
  if (!cli) await loadCli();
  const missing = path.join(path.dirname(c.file), 'no-such-checkpoint.safetensors');
  const argv = ['eval', c.recipe, '--checkpoint', missing, ...(c.config !== null ? ['--config', c.file] : []), ...c.set.flatMap((s) => ['--set', s])];
  const [log, err] = [console.log, console.error];
  console.log = console.error = () => {};
  try {
    await cli.main(argv);
    return { outcome: 'defect', detail: 'eval with a missing checkpoint returned normally' };
  } catch (e) {
    const message = String(e?.message);
    // the config was accepted: evaluation went on to read the (missing) checkpoint
    if (message.includes('no-such-checkpoint')) {
      const keys = [...(c.config !== null ? configKeys(c.config) : []), ...c.set.map((s) => s.slice(0, Math.max(0, s.indexOf('='))))];
      const unknown = keys.filter((k) => k !== 'recipe' && !c.settings.includes(k));
      if (unknown.length) return { outcome: 'defect', detail: `accepted the unknown setting(s) ${unknown.map((k) => `'${k}'`).join(', ')}` };
      return { outcome: 'accepted' };
    }
    if (e?.constructor?.name === 'UsageError' || e?.name === 'VoxgradError') return { outcome: 'typed', detail: message };
    return { outcome: 'defect', detail: `${e?.constructor?.name}: ${message}` };
  } finally {
    [console.log, console.error] = [log, err];
    process.exitCode = 0;
  }
}

function configKeys(text) {
  try {
    const v = JSON.parse(text);
    return v && typeof v === 'object' && !Array.isArray(v) ? Object.keys(v) : [];
  } catch {
    return [];
  }
}

/** Runs one case; returns { outcome: 'accepted' | 'typed' | 'defect', detail?, summary? }. */
async function runCase(c) {
  if (format === 'config') return runConfig(c);
  const bytes = new Uint8Array(fs.readFileSync(c.file));
  let targets = null;
  let before = null;
  try {
    if (format === 'nifti') {
      const img = await vg.io.readNifti(bytes);
      const summary = { shape: [...img.tensor.shape], sha: f32Sha(await img.tensor.data()), affine: jsonAffine(img.affine) };
      img.tensor.dispose();
      return { outcome: 'accepted', summary };
    }
    if (format === 'nrrd') {
      const img = await vg.io.readNrrd(bytes);
      const summary = { shape: [...img.tensor.shape], sha: f32Sha(await img.tensor.data()), affine: jsonAffine(img.affine) };
      img.tensor.dispose();
      return { outcome: 'accepted', summary };
    }
    if (format === 'safetensors') {
      const { tensors } = vg.io.decodeSafetensors(bytes);
      const summary = Object.entries(tensors).map(([k, t]) => [k, t.dtype, [...t.shape]]);
      for (const t of Object.values(tensors)) t.dispose();
      return { outcome: 'accepted', summary };
    }
    targets = checkpointTargets();
    before = await snapshot(targets);
    const { step } = await checkpoints.loadCheckpoint(bytes, targets);
    return { outcome: 'accepted', summary: { step } };
  } catch (e) {
    if (!(e instanceof vg.VoxgradError)) return { outcome: 'defect', detail: `not a VoxgradError: ${e?.constructor?.name}: ${e?.message}` };
    if (targets && (await snapshot(targets)) !== before) return { outcome: 'defect', detail: `a failed load changed the model/optimizer/scheduler (${e.message})` };
    return { outcome: 'typed', detail: e.message };
  } finally {
    if (targets) {
      targets.optimizer.dispose();
      targets.model.dispose();
    }
  }
}

if (format === 'seeds') await seeds();
else {
  for await (const line of readline.createInterface({ input: process.stdin })) {
    if (!line.trim()) continue;
    const c = JSON.parse(line);
    send({ start: c.i });
    globalThis.gc?.();
    fs.writeFileSync('/proc/self/clear_refs', '5');
    const rss = status('VmRSS');
    const t0 = performance.now();
    const live = vg.memory().liveTensors;
    let result = await runCase(c);
    if (vg.memory().liveTensors !== live && result.outcome !== 'defect')
      result = { outcome: 'defect', detail: `${vg.memory().liveTensors - live} tensor(s) left alive (${result.detail ?? 'accepted'})` };
    if (prototypeState() !== cleanPrototypes) result = { outcome: 'defect', detail: `Object.prototype or Object polluted (${result.detail ?? result.outcome})` };
    const peak = status('VmHWM');
    send({ i: c.i, ...result, ms: performance.now() - t0, peak, growth: Math.max(0, peak - rss) });
    // a polluted process would contaminate the next cases: stop, the parent starts a fresh one
    if (prototypeState() !== cleanPrototypes) process.exit(3);
  }
}
