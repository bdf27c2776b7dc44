// The tuner (src/engine/tuner.ts, its Node store src/engine/tuner-node.ts) through the conv's register tiles: pending
// keys, vg.tune's measurement and choice, the JSON file per adapter (atomic, reloaded), bad files ignored, every
// tile giving the same bits, and the argument checks.
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

// the store reads its folder when the library loads: set it first (static imports would load the library earlier)
const dir = mkdtempSync(join(tmpdir(), 'voxgrad-tuning-'));
process.env.VOXGRAD_TUNING_DIR = dir;
const { setup, vg } = await import('./helpers.mjs');

test.before(setup);
test.after(() => rmSync(dir, { recursive: true, force: true }));

// 8 output channels x 8 input channels x 27 taps at 24³: past the small-problem threshold, so its tiles are tunable
// (8x8 by default; 8x4, 4x8 and 4x4 offered)
const x = () => vg.randn([1, 8, 24, 24, 24], { seed: 1 });
const w = () => vg.randn([8, 8, 3, 3, 3], { seed: 2 });

async function convData() {
  const [a, b] = [x(), w()];
  const y = vg.conv3d(a, b, { padding: 1 });
  const data = await y.data();
  for (const t of [a, b, y]) t.dispose();
  return data;
}

const storeFile = () => vg.tuningState().store;

let key;
let reference;

test('a large conv runs its default tile at once and leaves its key pending', async () => {
  vg.resetTuning();
  reference = await convData();
  const st = vg.tuningState();
  assert.match(st.adapter, /^[0-9a-f]{8}$/);
  assert.is(st.store, join(dir, `tuning-${st.adapter}.json`));
  const keys = st.pending.filter((k) => k.startsWith('conv.forward N1 G1 8x24x24x24 -> 8x24x24x24 k3x3x3'));
  assert.is(keys.length, 1, `pending: ${JSON.stringify(st.pending)}`);
  key = keys[0];
  assert.equal(st.choices, {});
  assert.equal(readdirSync(dir), [], 'nothing is written before vg.tune');
});

test('vg.tune measures every tile of the pending key, keeps the fastest and writes it to the adapter file', async () => {
  const results = await vg.tune({ keys: [key], runs: 1 });
  assert.is(results.length, 1);
  const [r] = results;
  assert.is(r.key, key);
  assert.equal(Object.keys(r.ms).sort(), ['4x16', '4x32', '4x4', '4x8', '8x4', '8x8']);
  for (const ms of Object.values(r.ms)) assert.ok(ms > 0 && Number.isFinite(ms), `a measured time: ${ms}`);
  assert.is(r.chosen, Object.entries(r.ms).sort((a, b) => a[1] - b[1])[0][0], 'the fastest median is chosen');
  const st = vg.tuningState();
  assert.is(st.choices[key], r.chosen);
  assert.not.ok(st.pending.includes(key));
  const saved = JSON.parse(readFileSync(storeFile(), 'utf8'));
  assert.is(saved.format, 1);
  assert.is(saved.choices[key], r.chosen);
  assert.equal(
    readdirSync(dir).filter((f) => f.includes('.tmp-')),
    [],
    'no temp file is left behind',
  );
});

test('a new process (reset) reads the choice back; every tile gives the default tile\'s bits', async () => {
  for (const tile of ['4x4', '4x8', '8x4', '8x8']) {
    writeFileSync(storeFile(), JSON.stringify({ format: 1, choices: { [key]: tile } }));
    vg.resetTuning();
    assert.is(vg.tuningState().choices[key], tile);
    const got = await convData();
    const i = got.findIndex((v, j) => !Object.is(v, reference[j]));
    assert.is(i, -1, `tile ${tile} differs from the default tile at ${i}: ${got[i]} vs ${reference[i]}`);
    assert.not.ok(vg.tuningState().pending.includes(key), `tile ${tile}: a known key is not pending`);
  }
});

test('a conv writing 2 channels (a 2-channel input gradient) takes 2x16 tiles, with the bits of 4x8 tiles', async () => {
  const dx = async () => {
    const [a, b, gy] = [vg.randn([1, 2, 32, 32, 32], { seed: 3 }), vg.randn([16, 2, 3, 3, 3], { seed: 4 }), vg.randn([1, 16, 32, 32, 32], { seed: 5 })];
    const g = vg.grad((t) => vg.conv3d(t, b, { padding: 1 }).mul(gy).sum())(a);
    const data = await g.data();
    for (const t of [a, b, gy, g]) t.dispose();
    return data;
  };
  vg.resetTuning();
  const byDefault = await dx();
  // the input gradient's key: the transposed conv's, or with subgroups the flipped forward's (16 -> 2 channels)
  const k = vg
    .tuningState()
    .pending.find((p) => p.startsWith('conv.transposed N1 G1 2x32x32x32 -> 16x32x32x32') || p.startsWith('conv.forward N1 G1 16x32x32x32 -> 2x32x32x32'));
  assert.ok(k, `pending: ${JSON.stringify(vg.tuningState().pending)}`);
  const saved = JSON.parse(readFileSync(storeFile(), 'utf8'));
  writeFileSync(storeFile(), JSON.stringify({ format: 1, choices: { ...saved.choices, [k]: '4x8' } }));
  vg.resetTuning();
  assert.is(vg.tuningState().choices[k], '4x8');
  const four = await dx();
  assert.not.ok(vg.tuningState().pending.includes(k), 'the 4x8 choice was used');
  assert.ok(
    byDefault.every((v, i) => Object.is(v, four[i])),
    '2x16 and 4x8 tiles differ',
  );
});

test('an unreadable or foreign file, or a choice no longer offered, falls back to the heuristic', async () => {
  for (const text of ['{ not json', JSON.stringify({ format: 99, choices: { [key]: '4x4' } }), JSON.stringify({ format: 1, choices: { [key]: '32x32' } })]) {
    writeFileSync(storeFile(), text);
    vg.resetTuning();
    const got = await convData();
    assert.ok(
      got.every((v, j) => Object.is(v, reference[j])),
      `result with file ${text}`,
    );
    assert.ok(vg.tuningState().pending.includes(key), `file ${text}: the key is pending again`);
  }
});

test('vg.tune checks its arguments', async () => {
  for (const [opts, frag] of [
    [{ runs: 0 }, 'runs must be a positive integer'],
    [{ keys: ['no such key'] }, 'no pending problem has the key "no such key"'],
  ]) {
    let err = null;
    try {
      await vg.tune(opts);
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof vg.VoxgradError && err.message.includes('vg.tune') && err.message.includes(frag), `${JSON.stringify(opts)}: ${err?.message}`);
  }
});

test.run();
