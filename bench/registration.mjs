// Training steps (issues 5 and 13): one VoxelMorph step — forward, MSE + Grad loss, backward, Adam — for VoxelMorph-2D
// (batch 8, 128²) and VoxelMorph-3D (batch 1, 64³), default widths (enc [16, 32, 32, 32], dec [32, 32, 32, 32, 32,
// 16, 16]), diffeomorphic (7 steps at half resolution), beside the same step in PyTorch CPU (Debian torch, 2 threads,
// bench/torch_registration_step.py with the reference architecture of the parity tests). PyTorch runs as a persistent
// child process serving one step per request, and the engines alternate step by step (voxgrad, torch, voxgrad, ...),
// so load from other jobs hits both alike; each reports the wall time of its step (voxgrad's awaits its loss, as a
// training loop that logs does). No WebGPU peer has grid_sample in 2-D and 3-D with gradients, so PyTorch CPU is the
// labelled reference. Then the demo's UNet step (unet-phantom: batch 8, 64², augmentation on) in voxgrad alone.
// VOXGRAD_BENCH_REG_STEPS sets the timed steps per engine (default 5 in 2-D, 3 in 3-D).
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as vg from 'voxgrad';
import { f1, row } from './harness.mjs';
import { median } from './stats.mjs';
import { blasNote, torchServer } from './torchref.mjs';

const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'torch_registration_step.py');
const STEPS = process.env.VOXGRAD_BENCH_REG_STEPS ? Number(process.env.VOXGRAD_BENCH_REG_STEPS) : null;

/** A voxgrad VoxelMorph step on fixed random inputs; returns { step, dispose }. */
function voxgradStepper(inshape, batch) {
  vg.emptyCache();
  const net = new vg.models.VxmDense(inshape, { seed: 0 });
  const opt = new vg.optim.Adam(net.parameters(), { lr: 1e-4 });
  const src = vg.rand([batch, 1, ...inshape], { seed: 1 });
  const tgt = vg.rand([batch, 1, ...inshape], { seed: 2 });
  const reg = vg.methods.registration;
  const step = async () => {
    const t = performance.now();
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
    return performance.now() - t;
  };
  const dispose = () => {
    for (const t of [src, tgt]) t.dispose();
    opt.dispose();
    net.dispose();
  };
  return { step, dispose };
}

const spread = (xs) => `${f1(Math.min(...xs))}–${f1(Math.max(...xs))}`;

/** Wall ms of each step of the demo's recipe (unet-phantom defaults: batch 8, 64²) after one warm-up step. */
export async function unetDemoSteps(steps) {
  const wall = [];
  let last = 0;
  let done = 0;
  await vg.methods.unetPhantom.train({
    config: { steps: steps + 2 },
    outDir: null,
    shouldStop: () => done >= steps + 1,
    onStep: (step) => {
      const now = performance.now();
      if (step > 1) wall.push(now - last);
      last = now;
      done = step;
    },
  });
  return wall;
}

export async function benchRegistration() {
  const cases = [
    { name: 'VoxelMorph-2D 8x128²', inshape: [128, 128], batch: 8, steps: STEPS ?? 5 },
    { name: 'VoxelMorph-3D 1x64³', inshape: [64, 64, 64], batch: 1, steps: STEPS ?? 3 },
  ];
  console.log('\nVoxelMorph training step, engines alternating step by step (wall ms per step after one warm-up step each; PyTorch CPU 2 threads)');
  const widths = [22, 11, 13, 11, 13, 11, 18];
  console.log(row(['step', 'voxgrad ms', 'min–max', 'torch ms', 'min–max', 'peak GPU MB', 'voxgrad / torch'], widths));
  const server = torchServer(SCRIPT);
  const results = [];
  let blas = null;
  for (const c of cases) {
    const v = voxgradStepper(c.inshape, c.batch);
    let torchError = server.error ?? null;
    let version = null;
    if (!torchError) {
      const r = await server.request({ cmd: 'setup', inshape: c.inshape, batch: c.batch });
      if (r.ok) {
        version = r.torch;
        blas = r.blas ?? [];
      } else torchError = r.error;
    }
    const vMs = [];
    const tMs = [];
    let peakRssMb = null;
    // warm-up (pipelines compile, torch allocates), then the timed steps; the engine that goes first alternates
    for (let i = 0; i <= c.steps; i++) {
      const order = i % 2 === 0 ? ['vg', 'torch'] : ['torch', 'vg'];
      for (const engine of order) {
        if (engine === 'vg') {
          const ms = await v.step();
          if (i > 0) vMs.push(ms);
        } else if (!torchError) {
          const r = await server.request({ cmd: 'step' });
          if (!r.ok) torchError = r.error;
          else if (i > 0) {
            tMs.push(r.ms);
            peakRssMb = r.peakRssMb;
          }
        }
      }
    }
    const peak = vg.memory().peakBytes;
    v.dispose();
    const vm = median(vMs);
    const tm = tMs.length ? median(tMs) : null;
    const ratio = tm ? `${(tm / vm).toFixed(3)}x` : torchError;
    console.log(row([c.name, f1(vm), spread(vMs), f1(tm), tMs.length ? spread(tMs) : '-', f1(peak / 2 ** 20), ratio], widths));
    results.push({ name: c.name, inshape: c.inshape, batch: c.batch, voxgrad: { ms: vm, samplesMs: vMs, peakBytes: peak }, torch: tm ? { ms: tm, samplesMs: tMs, torch: version, threads: 2, peakRssMb, blas } : { error: torchError }, ratio: tm ? tm / vm : null });
  }
  server.close?.();
  if (blas) console.log(`  PyTorch's ${blasNote(blas)}`);
  const unetSteps = STEPS ?? 5;
  const unet = await unetDemoSteps(unetSteps);
  console.log(`\nDemo UNet step (unet-phantom defaults: batch 8, 64², augmentation on), voxgrad: median ${f1(median(unet))} ms over ${unetSteps} steps (${spread(unet)})`);
  return { steps: results, unetDemo: { ms: median(unet), samplesMs: unet } };
}
