// `voxgrad profile`: two steps of a tiny UNet recipe write a Chrome trace that parses and a summary whose totals are
// the sums of its kernels; the cost models of convolution, matmul, gridSample and interpolate give the work counted
// here from the shapes; marks cut the dispatches where they were set.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { setup, vg } from './helpers.mjs';

const CLI = new URL('../dist/cli.js', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'vg-profile-'));

test.before(setup);
test.after(() => rmSync(dir, { recursive: true, force: true }));

test('profile unet-phantom --steps 2: trace parses, summary totals are the sums of its kernels', () => {
  const out = join(dir, 'unet');
  const tiny = ['--set', 'size=32', '--set', 'features=[4,8,8,16,16]', '--set', 'trainSubjects=2', '--set', 'testSubjects=1', '--set', 'batchSize=2'];
  const r = spawnSync(process.execPath, [CLI, 'profile', 'unet-phantom', '--steps', '2', '--out', out, ...tiny], {
    encoding: 'utf8',
    env: { ...process.env, XDG_RUNTIME_DIR: '/tmp' },
  });
  assert.is(r.status, 0, r.stderr);
  const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
  assert.is(summary.steps, 2);
  assert.is(summary.stepGpuMs.length, 2);
  assert.ok(summary.ceilings.fma > 0 && summary.ceilings.copy > 0);
  // measured before and after the steps; the summary rates against the higher of each
  assert.is(summary.ceilingRuns.length, 2);
  assert.is(summary.ceilings.fma, Math.max(...summary.ceilingRuns.map((c) => c.fma)));
  assert.is(summary.ceilings.copy, Math.max(...summary.ceilingRuns.map((c) => c.copy)));
  const trace = JSON.parse(gunzipSync(readFileSync(join(out, 'trace.json.gz'))).toString('utf8'));
  const spans = trace.traceEvents.filter((e) => e.ph === 'X');
  assert.is(trace.traceEvents.filter((e) => e.ph === 'i').length, 2, 'one instant event per profiled step');
  // the trace holds exactly the summarised dispatches
  const calls = summary.kernels.reduce((s, k) => s + k.count, 0);
  assert.is(spans.length, calls);
  const sumUs = spans.reduce((s, e) => s + e.dur, 0);
  assert.ok(Math.abs(sumUs / 1000 - summary.totalMs) <= 1e-6 * summary.totalMs, `trace ${sumUs / 1000} ms vs summary ${summary.totalMs} ms`);
  const kernelMs = summary.kernels.reduce((s, k) => s + k.totalUs / 1000, 0);
  assert.ok(Math.abs(kernelMs - summary.totalMs) <= 1e-6 * summary.totalMs);
  const stepsMs = summary.stepGpuMs.reduce((s, v) => s + v, 0);
  assert.ok(Math.abs(stepsMs - summary.totalMs) <= 1e-6 * summary.totalMs);
  // the Markdown table: its rows' GPU ms (rounded to 1 µs) add up to its total row
  const md = readFileSync(join(out, 'summary.md'), 'utf8');
  const rows = md.split('\n').filter((l) => l.startsWith('| `'));
  assert.is(rows.length, summary.kernels.length);
  const total = md.split('\n').find((l) => l.startsWith('| **total** |'));
  const cell = (l, i) => Number(l.split(' | ')[i]);
  const rowMs = rows.reduce((s, l) => s + cell(l, 2), 0);
  assert.ok(Math.abs(rowMs - cell(total, 2)) <= 1e-3 * rows.length, `rows ${rowMs} ms vs total ${cell(total, 2)} ms`);
  assert.is(rows.reduce((s, l) => s + cell(l, 1), 0), cell(total, 1));
  // the step's convolutions are priced: the forward conv rows carry FLOPs
  assert.ok(summary.kernels.some((k) => k.name.startsWith('conv.forward') && k.flops > 0));
});

async function workOf(fn) {
  const { report } = await vg.profile((mark) => {
    vg.tidy(fn);
    mark('end');
  });
  assert.equal(report.marks, [{ name: 'end', index: report.kernels.length }]);
  return report.summary;
}

const flopsOf = (summary, prefix) => summary.filter((k) => k.name.startsWith(prefix)).reduce((s, k) => s + k.flops, 0);

test('cost models: FLOPs of conv, matmul, gridSample and interpolate from their shapes', async () => {
  const x = vg.randn([2, 3, 10, 12], { seed: 1 });
  const w = vg.randn([5, 3, 3, 3], { seed: 2 });
  // 2 FLOPs per multiply-add: N · Cout · Ho · Wo outputs, each Cin · 3 · 3 taps
  assert.is(flopsOf(await workOf(() => vg.conv2d(x, w, { padding: 1 })), 'conv.forward'), 2 * 2 * 5 * 10 * 12 * 3 * 9);
  // stride 2, no padding: 4 x 5 outputs
  assert.is(flopsOf(await workOf(() => vg.conv2d(x, w, { stride: 2 })), 'conv.forward'), 2 * 2 * 5 * 4 * 5 * 3 * 9);
  const a = vg.randn([3, 33, 17], { seed: 3 });
  const b = vg.randn([3, 17, 9], { seed: 4 });
  assert.is(flopsOf(await workOf(() => vg.matmul(a, b)), 'matmul'), 2 * 3 * 33 * 17 * 9);
  const img = vg.randn([1, 2, 6, 7, 8], { seed: 5 });
  const grid = vg.tidy(() => vg.rand([1, 4, 5, 3, 3], { seed: 6 }).mul(2).sub(1));
  // trilinear: 8 corners per output location and channel
  assert.is(flopsOf(await workOf(() => vg.gridSample(img, grid)), 'gridSample.3d'), 2 * 8 * 4 * 5 * 3 * 2);
  // x2 without alignCorners, W a multiple of 4: the FLOPs of one pass per axis (W, H, D), each doubling its n source
  // elements into 2n outputs of 2 multiplies and an add; in 3-D one pass does all three, reading x once and writing
  // 8 outputs per element
  const up = await workOf(() => vg.interpolate(img, { scaleFactor: 2, mode: 'trilinear' }));
  const [nW, nH, nD] = [2 * 6 * 7 * 8, 2 * 6 * 7 * 16, 2 * 6 * 14 * 16];
  const dhw = up.find((k) => k.name === 'interpolate.pass2x.dhw');
  assert.equal([dhw.flops, dhw.bytes], [6 * (nW + nH + nD), 4 * 9 * nW], 'the one 3-D pass');
  assert.is(flopsOf(up, 'interpolate'), 6 * (nW + nH + nD));
  // in 2-D a pass per axis: W, then H
  const flat = vg.randn([2, 6, 7, 8], { seed: 8 });
  const up2 = await workOf(() => vg.interpolate(flat, { scaleFactor: 2, mode: 'bilinear' }));
  const lastPass = up2.find((k) => k.name === 'interpolate.pass2x.last');
  assert.equal([lastPass.flops, lastPass.bytes], [6 * nW, 12 * nW], 'the pass along W');
  assert.is(flopsOf(up2, 'interpolate'), 6 * (nW + nH));
  // W of 5: the fused kernel, 15 FLOPs per output
  const img5 = vg.randn([1, 2, 6, 7, 5], { seed: 7 });
  const up5 = await workOf(() => vg.interpolate(img5, { scaleFactor: 2, mode: 'trilinear' }));
  const outputs = 2 * 12 * 14 * 10;
  assert.is(flopsOf(up5, 'interpolate'), 15 * outputs);
  assert.is(up5.find((k) => k.name.startsWith('interpolate')).bytes, 4 * (outputs + 2 * 6 * 7 * 5));
  for (const t of [x, w, a, b, img, img5, flat, grid]) t.dispose();
});

test.run();
