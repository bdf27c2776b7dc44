// Registration training steps (issue 5): one VoxelMorph step — forward, MSE + Grad loss, backward, Adam — for
// VoxelMorph-2D (batch 8, 128²) and VoxelMorph-3D (batch 1, 64³), default widths, diffeomorphic (7 steps at half
// resolution). voxgrad's wall time per step (the step awaits its loss, as a training loop that logs does) and peak
// GPU bytes (vg.memory().peakBytes after vg.emptyCache()); the same step in PyTorch CPU (Debian torch, 2 threads,
// bench/torch_registration_step.py with the reference architecture of the parity tests) in the same run, as a ratio.
// No WebGPU peer has grid_sample in 2-D and 3-D with gradients, so PyTorch CPU is the labelled reference.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as vg from 'voxgrad';
import { f1, row } from './harness.mjs';
import { median } from './stats.mjs';

const PYTHON = process.env.VOXGRAD_BENCH_PYTHON ?? '/usr/bin/python3';
const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'torch_registration_step.py');
const REPEATS = 3;

async function voxgradStep(inshape, batch) {
  vg.emptyCache();
  const net = new vg.models.VxmDense(inshape, { seed: 0 });
  const opt = new vg.optim.Adam(net.parameters(), { lr: 1e-4 });
  const src = vg.rand([batch, 1, ...inshape], { seed: 1 });
  const tgt = vg.rand([batch, 1, ...inshape], { seed: 2 });
  const reg = vg.methods.registration;
  const step = async () => {
    const loss = vg.tidy(() => {
      const o = net.call(src, tgt);
      const l = vg.add(reg.mse(o.ySource, tgt), vg.mul(reg.gradL2(o.preintFlow, { lossMult: 2 }), 0.01));
      l.backward();
      return l;
    });
    opt.step();
    opt.zeroGrad();
    await loss.item();
    loss.dispose();
  };
  await step(); // pipelines compiled here
  const times = [];
  for (let i = 0; i < REPEATS; i++) {
    const t = performance.now();
    await step();
    times.push(performance.now() - t);
  }
  const peak = vg.memory().peakBytes;
  for (const t of [src, tgt]) t.dispose();
  opt.dispose();
  net.dispose();
  return { ms: median(times), samplesMs: times, peakBytes: peak };
}

function torchStep(inshape, batch) {
  if (!existsSync(PYTHON)) return { error: `${PYTHON} not found` };
  const r = spawnSync(PYTHON, [SCRIPT, JSON.stringify({ inshape, batch, repeats: REPEATS })], { encoding: 'utf8', timeout: 600_000 });
  const line = r.stdout?.trim().split('\n').at(-1);
  if (r.status !== 0 || !line?.startsWith('{')) return { error: `torch step failed (exit ${r.status}): ${(r.stderr || '').trim().split('\n').at(-1)}` };
  const v = JSON.parse(line);
  return { ms: median(v.stepMs), samplesMs: v.stepMs, torch: v.torch, threads: v.threads, peakRssMb: v.peakRssMb };
}

export async function benchRegistration() {
  const cases = [
    { name: 'VoxelMorph-2D 8x128²', inshape: [128, 128], batch: 8 },
    { name: 'VoxelMorph-3D 1x64³', inshape: [64, 64, 64], batch: 1 },
  ];
  console.log(`\nVoxelMorph training step (wall ms per step, median of ${REPEATS} after one warm-up step; PyTorch CPU 2 threads, same step)`);
  const widths = [22, 11, 9, 13, 11, 9, 18];
  console.log(row(['step', 'voxgrad ms', 'steps/s', 'peak GPU MB', 'torch ms', 'steps/s', 'voxgrad vs torch'], widths));
  const results = [];
  for (const c of cases) {
    const v = await voxgradStep(c.inshape, c.batch);
    const t = torchStep(c.inshape, c.batch);
    const ratio = t.ms ? (t.ms / v.ms >= 1 ? `${(t.ms / v.ms).toFixed(2)}x faster` : `${(t.ms / v.ms).toFixed(2)}x (slower)`) : t.error;
    console.log(row([c.name, f1(v.ms), (1000 / v.ms).toFixed(2), f1(v.peakBytes / 2 ** 20), f1(t.ms), t.ms ? (1000 / t.ms).toFixed(2) : '-', ratio], widths));
    results.push({ ...c, voxgrad: v, torch: t });
  }
  return results;
}
