// The `voxgrad` command line: usage errors, a short training run's folder (config, metrics, loss curve, a checkpoint
// that loads) and the same folder from a recipe trained in code, and Ctrl-C: the run saves a checkpoint and exits cleanly, and resuming from it ends bit-for-bit where
// an uninterrupted run ends.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { setup, vg } from './helpers.mjs';

const CLI = new URL('../dist/cli.js', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'vg-cli-'));
// a tiny configuration so each run takes seconds on a software adapter
const TINY = ['--set', 'size=32', '--set', 'features=[4,8,8,16,16]', '--set', 'trainSubjects=2', '--set', 'testSubjects=1', '--set', 'batchSize=2'];
// enough steps that the interrupt lands mid-run even on a fast adapter
const STEPS = 30;

const run = (args) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, XDG_RUNTIME_DIR: '/tmp' } });

test.before(setup);
test.after(() => rmSync(dir, { recursive: true, force: true }));

test('usage: help, unknown command, unknown recipe, unknown setting', () => {
  const help = run(['--help']);
  assert.is(help.status, 0);
  assert.match(help.stdout, 'train <recipe>');
  const bad = run(['frobnicate']);
  assert.is(bad.status, 2);
  assert.match(bad.stderr, "unknown command 'frobnicate'");
  const recipe = run(['train', 'no-such-recipe']);
  assert.is(recipe.status, 2);
  assert.match(recipe.stderr, "unknown recipe 'no-such-recipe'; recipes: unet-phantom");
  const setting = run(['train', 'unet-phantom', '--set', 'learningRate=1']);
  assert.is(setting.status, 2);
  assert.match(setting.stderr, "recipe unet-phantom has no setting 'learningRate'");
  const steps = run(['train', 'unet-phantom', '--steps', '-3']);
  assert.is(steps.status, 2);
  assert.match(steps.stderr, "--steps must be a positive integer, got '-3'");
});

test('train seg --method morse|castformer runs that paper\'s own recipe with its settings', () => {
  const morse = join(dir, 'seg-morse');
  const m = run(['train', 'seg', '--method', 'morse', '--steps', '1', ...TINY, '--out', morse]);
  assert.is(m.status, 0, m.stderr);
  const mc = JSON.parse(readFileSync(join(morse, 'config.json'), 'utf8'));
  assert.is(mc.recipe, 'morse');
  assert.is(mc.method, 'morse');
  // the 3-D setting: MORSE on a VNet with the left-atrium phantom, scored coarse and refined in voxels
  const morse3d = join(dir, 'seg-morse-3d');
  const tiny3d = ['--set', 'size=16', '--set', 'vnetFilters=2', '--set', 'trainSubjects=2', '--set', 'testSubjects=1', '--set', 'batchSize=2', '--set', 'trainPoints=64', '--set', 'subdivisionPoints=128'];
  const m3 = run(['train', 'seg', '--method', 'morse', '--data', 'phantom3d', '--steps', '2', ...tiny3d, '--out', morse3d]);
  assert.is(m3.status, 0, m3.stderr);
  const e3 = JSON.parse(readFileSync(join(morse3d, 'metrics.json'), 'utf8')).evaluation;
  assert.is(e3.unit, 'voxel');
  assert.equal(Object.keys(e3.coarse.dice), ['LA']);
  assert.equal(Object.keys(e3.refined.dice), ['LA']);
  const badData = run(['train', 'seg', '--method', 'morse', '--data', 'la', '--steps', '1', ...TINY]);
  assert.match(badData.stderr, "data must be 'phantom' or 'phantom3d', got 'la'");
  const cast = join(dir, 'seg-castformer');
  const small = ['--set', 'size=32', '--set', 'trainSubjects=2', '--set', 'testSubjects=1', '--set', 'batchSize=2', '--set', 'features=[4,8,8,16]', '--set', 'embedDim=16', '--set', 'discriminatorDim=16'];
  const c = run(['train', 'seg', '--method', 'castformer', '--variant', 'no-adv', '--steps', '1', ...small, '--out', cast]);
  assert.is(c.status, 0, c.stderr);
  const cc = JSON.parse(readFileSync(join(cast, 'config.json'), 'utf8'));
  assert.is(cc.recipe, 'castformer');
  assert.is(cc.variant, 'no-adv');
  assert.not.ok('method' in cc);
  // the seg recipe's own methods still go to seg
  const bad = run(['train', 'seg', '--method', 'fixmatch', '--steps', '1']);
  assert.match(bad.stderr, "method must be one of supervised, mean-teacher, action, actionpp, mona, got 'fixmatch'");
});

test('list names the recipes', () => {
  const r = run(['list']);
  assert.is(r.status, 0);
  assert.match(r.stdout, /^unet-phantom\s+UNet2D segmentation/m);
});

async function checkpointTensors(path) {
  const tensors = await vg.io.readSafetensors(path);
  const out = {};
  for (const [k, t] of Object.entries(tensors)) {
    out[k] = Buffer.from((await t.data()).buffer).toString('base64');
    t.dispose();
  }
  return out;
}

test('train writes the run folder (config, per-step metrics, loss curve PNG, a loadable checkpoint); eval reproduces its evaluation', async () => {
  const out = join(dir, 'full');
  const r = run(['train', 'unet-phantom', '--steps', String(STEPS), ...TINY, '--out', out]);
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stderr, `${STEPS}/${STEPS}`);
  const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
  assert.equal(config, { recipe: 'unet-phantom', ...config, steps: STEPS, size: 32, batchSize: 2 });
  const metrics = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8'));
  assert.is(metrics.finished, true);
  assert.is(metrics.history.length, STEPS);
  assert.ok(metrics.history.every((h, i) => h.step === i && Number.isFinite(h.loss) && h.loss > 0));
  assert.ok(metrics.evaluation.meanDice >= 0 && metrics.evaluation.meanDice <= 1);
  const png = readFileSync(join(out, 'loss.png'));
  assert.equal([...png.subarray(0, 8)], [137, 80, 78, 71, 13, 10, 26, 10]);
  const model = new vg.models.UNet2D({ features: [4, 8, 8, 16, 16] });
  const { step } = await vg.train.loadCheckpoint(join(out, 'checkpoint.safetensors'), { model });
  assert.is(step, STEPS);
  model.dispose();
  // eval of the checkpoint reproduces the evaluation the training run wrote
  // (the run folder's config.json as --config; an --out folder that does not exist yet)
  const evalOut = join(dir, 'eval', 'nested');
  const ev = run(['eval', 'unet-phantom', '--checkpoint', join(out, 'checkpoint.safetensors'), '--config', join(out, 'config.json'), '--out', evalOut]);
  assert.is(ev.status, 0, ev.stderr);
  assert.equal(JSON.parse(readFileSync(join(evalOut, 'eval.json'), 'utf8')), metrics.evaluation);
  const other = run(['eval', 'reg', '--checkpoint', join(out, 'checkpoint.safetensors'), '--config', join(out, 'config.json')]);
  assert.is(other.status, 2);
  assert.match(other.stderr, "is a config of recipe 'unet-phantom', not 'reg'");
});

test('eval --compare: run folders side by side with paired t-tests against the baseline, written to --out', async () => {
  const runs = { mse: [0.80, 0.82, 0.79, 0.85], hetero: [0.81, 0.84, 0.80, 0.85], adacs: [0.78, 0.83, 0.75, 0.84] };
  for (const [name, dice] of Object.entries(runs)) {
    mkdirSync(join(dir, name));
    await vg.io.writeCsv(join(dir, name, 'pairs.csv'), dice.map((d, pair) => ({ pair, dice: d, dice_Myo: d - 0.1, hd95_Myo: 2 + pair })));
  }
  const folders = Object.keys(runs).map((n) => join(dir, n));
  const out = join(dir, 'cmp');
  const r = run(['eval', 'reg', '--compare', folders.join(','), '--baseline', folders[0], '--out', out]);
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, '| run | cases | dice | dice_Myo | hd95_Myo | Δ dice | p dice |');
  const table = await vg.io.readCsv(join(out, 'comparison.csv'));
  const expected = vg.metrics.compareRuns(Object.entries(runs).map(([name, dice]) => ({ name, rows: dice.map((d, pair) => ({ pair, dice: d, dice_Myo: d - 0.1, hd95_Myo: 2 + pair })) })));
  assert.equal(table.map((row) => row.run), ['mse', 'hetero', 'adacs']);
  for (const [i, row] of table.entries()) for (const k of Object.keys(expected[i])) assert.ok(Math.abs(row[k] - expected[i][k]) < 1e-12 || row[k] === expected[i][k], `${row.run} ${k}`);
  assert.ok(existsSync(join(out, 'comparison.md')));
  const one = run(['eval', 'reg', '--compare', folders[0]]);
  assert.is(one.status, 2);
  assert.match(one.stderr, '--compare needs two or more run folders');
  const missing = run(['eval', 'reg', '--compare', `${folders[0]},${join(dir, 'nothing')}`]);
  assert.is(missing.status, 1);
  assert.match(missing.stderr, 'nothing/pairs.csv not found');
});

test('a recipe trained from code writes the same run folder as the CLI, value for value', async () => {
  const out = join(dir, 'from-code');
  // the CLI process starts with the global generator's default state (dropout draws from it)
  vg.manualSeed(0x5eed);
  const settings = { steps: STEPS, size: 32, features: [4, 8, 8, 16, 16], trainSubjects: 2, testSubjects: 1, batchSize: 2 };
  const result = await vg.methods.unetPhantom.train({ config: settings, outDir: out });
  assert.is(result.finished, true);
  const cli = join(dir, 'full');
  const files = (d) => ['config.json', 'metrics.json', 'loss.png', 'checkpoint.safetensors'].filter((f) => existsSync(join(d, f)));
  assert.equal(files(out), files(cli));
  const read = (d, f) => JSON.parse(readFileSync(join(d, f), 'utf8'));
  assert.equal(read(out, 'config.json'), read(cli, 'config.json'));
  const [mine, theirs] = [read(out, 'metrics.json'), read(cli, 'metrics.json')];
  assert.equal(Object.keys(mine).sort(), Object.keys(theirs).sort(), 'one metrics.json schema');
  for (const key of ['recipe', 'config', 'adapter', 'steps', 'finished', 'evaluation', 'evaluations', 'history']) assert.equal(mine[key], theirs[key], key);
  assert.equal(JSON.parse(vg.train.resultJson(result.evaluation)), mine.evaluation);
  assert.ok(readFileSync(join(out, 'loss.png')).equals(readFileSync(join(cli, 'loss.png'))), 'the same loss curve');
  assert.equal(await checkpointTensors(join(out, 'checkpoint.safetensors')), await checkpointTensors(join(cli, 'checkpoint.safetensors')));
  // settings that are not the recipe's are refused from code as from the CLI
  let err;
  try {
    await vg.methods.unetPhantom.train({ config: { learningRate: 1 } });
  } catch (e) {
    err = e;
  }
  assert.instance(err, vg.VoxgradError);
  assert.match(err.message, "recipe unet-phantom has no setting 'learningRate'");
});

test('Ctrl-C saves a checkpoint and exits cleanly; resuming ends bit-for-bit where the uninterrupted run ends', async () => {
  const out = join(dir, 'interrupted');
  const child = spawn(process.execPath, [CLI, 'train', 'unet-phantom', '--steps', String(STEPS), ...TINY, '--out', out], {
    env: { ...process.env, XDG_RUNTIME_DIR: '/tmp' },
  });
  let stderr = '';
  let signalled = false;
  child.stderr.on('data', (d) => {
    stderr += d;
    // interrupt once the first step is reported
    if (!signalled && new RegExp(` 1/${STEPS} `).test(stderr)) {
      signalled = true;
      child.kill('SIGINT');
    }
  });
  const code = await new Promise((resolve) => child.on('exit', resolve));
  assert.ok(signalled, `the run finished before it could be interrupted:\n${stderr}`);
  assert.is(code, 0, stderr);
  const stoppedAt = Number(/stopped at step (\d+)/.exec(stderr)?.[1]);
  assert.ok(stoppedAt >= 1 && stoppedAt < STEPS, `stopped at ${stoppedAt}:\n${stderr}`);
  const ckpt = join(out, 'checkpoint.safetensors');
  assert.ok(existsSync(ckpt));
  const metrics = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8'));
  assert.is(metrics.finished, false);
  assert.is(metrics.steps, stoppedAt);

  const resumed = run(['train', 'unet-phantom', '--steps', String(STEPS), ...TINY, '--out', out, '--resume', ckpt]);
  assert.is(resumed.status, 0, resumed.stderr);
  assert.match(resumed.stderr, `resumed from ${ckpt} at step ${stoppedAt}`);
  const after = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8'));
  assert.is(after.finished, true);
  assert.equal(after.history.map((h) => h.step), [...Array(STEPS).keys()], 'the history keeps the rows before the interruption');
  const full = await checkpointTensors(join(dir, 'full', 'checkpoint.safetensors'));
  const cont = await checkpointTensors(ckpt);
  assert.equal(Object.keys(cont).sort(), Object.keys(full).sort());
  for (const k of Object.keys(full)) assert.ok(cont[k] === full[k], `tensor ${k} differs between the resumed and the uninterrupted run`);
});

test.run();
