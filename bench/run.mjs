#!/usr/bin/env node
// npm run bench [-- --json results.json] [-- --only section[,section...]] [-- --scale s (contrastive sizes / s)]
// On the adapter voxgrad picks: the adapter's ceilings (FMA-bound and copy kernels in raw WebGPU), then the sections
// (all by default; --only runs the named ones, the ceilings always):
//   matmul      matmul at 256³, 512³ and 1024³ beside tfjs-backend-webgpu on the same Dawn adapter, same process
//   dispatch    the per-op cost of 10,000 dependent tiny adds, beside tfjs
//   conv2d      conv2d forward 1x64x128² 3x3 -> 64 beside tfjs and onnxruntime-node's WebGPU EP (bench/conv.mjs)
//   conv3d      conv3d forward, input and weight gradients at three sizes, beside tfjs and ORT (forward only)
//   convshapes  conv forward / input / weight gradients at the papers' shapes: GPU ms, GFLOP/s, % of the FMA ceiling
//               re-measured between samples (bench/conv.mjs; with --tune, vg.tune picks each problem's tiles first)
//   gridsample  gridSample 3-D trilinear forward and backward: GPU time, GB/s against the copy ceiling, PyTorch CPU
//               as the labelled reference (no WebGPU peer has a 5-D grid_sample) (bench/spatial.mjs)
//   poolnorm    maxPool3d, avgPool3d, trilinear x2 upsampling, a bias-gradient sum, batchNorm (train), groupNorm,
//               beside tfjs where it has the op (bench/poolnorm.mjs)
//   sort        sort, topk (k = 8192 over 256² and 128³) and cumsum beside tfjs's topk and cumsum (bench/sort.mjs)
//   optim       one Adam step of a 10M-parameter model (one fused kernel per tensor) beside tfjs's Adam (bench/optim.mjs)
//   registration  VoxelMorph 2-D (8x128²) and 3-D (1x64³) training steps beside PyTorch CPU (bench/registration.mjs)
//   contrastive fused infoNCE (indexed negatives; all-key cosine softmax) beside generic ops (bench/contrastive.mjs)
//   semiseg     one ACTION fine-tuning step (the seg recipe's defaults) beside PyTorch CPU (bench/semiseg.mjs)
//   clip        CLIP ViT-B/32 image forward (batch 32, 224²) beside onnxruntime-node's WebGPU EP, the same weights;
//               the CLIP recipe's contrastive pretraining step at batch 256 beside PyTorch CPU (bench/clip.mjs)
// What every number includes is printed with it; docs/benchmarks.md has results.
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { create, globals } from 'webgpu';
import * as vg from 'voxgrad';
import { copyCeiling, fmaCeiling } from './ceilings.mjs';
import { benchClip } from './clip.mjs';
import { benchContrastive } from './contrastive.mjs';
import { benchConv2d, benchConv3d, benchConvShapes } from './conv.mjs';
import { randomData } from './harness.mjs';
import { loadOrt, probeOrt } from './ort.mjs';
import { benchOptim } from './optim.mjs';
import { benchPoolNorm } from './poolnorm.mjs';
import { benchRegistration } from './registration.mjs';
import { benchSemiseg } from './semiseg.mjs';
import { benchSort } from './sort.mjs';
import { benchGridSample } from './spatial.mjs';
import { median } from './stats.mjs';
import { loadTfjs } from './tfjs.mjs';

const SECTIONS = ['matmul', 'dispatch', 'conv2d', 'conv3d', 'convshapes', 'gridsample', 'poolnorm', 'sort', 'optim', 'registration', 'contrastive', 'semiseg', 'clip'];

const SIZES = [256, 512, 1024];
const SAMPLES = 5;
const GPU_SAMPLES = 3;
// back-to-back matmuls per timed sample, so that one readback is a small part of each sample
const OPS_PER_SAMPLE = { 256: 8, 512: 3, 1024: 1 };
const ADDS = 10_000;
const ADD_SAMPLES = 3;

const jsonAt = process.argv.indexOf('--json');
const jsonPath = jsonAt > 0 ? process.argv[jsonAt + 1] : null;
if (jsonAt > 0 && !jsonPath) throw new Error('--json needs a file path');
const onlyAt = process.argv.indexOf('--only');
if (onlyAt > 0 && !process.argv[onlyAt + 1]) throw new Error(`--only needs a section name: ${SECTIONS.join(', ')}`);
const only = onlyAt > 0 ? process.argv[onlyAt + 1].split(',').map((x) => x.trim().toLowerCase()) : SECTIONS;
for (const x of only) if (!SECTIONS.includes(x)) throw new Error(`--only: unknown section "${x}"; sections: ${SECTIONS.join(', ')}`);
const wanted = (x) => only.includes(x);
// --scale s: the contrastive section divides its anchors and bank by s (slow adapters)
const scaleAt = process.argv.indexOf('--scale');
const scaleArg = scaleAt > 0 ? Number(process.argv[scaleAt + 1]) : 1;
if (!(scaleArg >= 1 && Number.isInteger(scaleArg))) throw new Error('--scale needs a positive integer');

// Dawn instance for the ceiling kernels; it must stay referenced while its device lives (a collected instance
// takes the device down with it: segfaults)
let instance = null;

/** Adapter ceilings on a device of our own (voxgrad's device is not reachable from outside the library). */
async function ceilings() {
  Object.assign(globalThis, globals);
  instance = create([]);
  const adapter = await instance.requestAdapter();
  const device = await adapter.requestDevice({
    requiredFeatures: adapter.features.has('timestamp-query') ? ['timestamp-query'] : [],
    requiredLimits: { maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize, maxBufferSize: adapter.limits.maxBufferSize },
  });
  const fma = await fmaCeiling(device);
  const copy = await copyCeiling(device, { bytes: Math.min(64 << 20, device.limits.maxStorageBufferBindingSize) });
  device.destroy();
  return { fma, copy };
}

/** Runs `ops` back-to-back ops and reads the last result back; returns ms per op. */
async function timeOps(ops, step) {
  const t0 = performance.now();
  let last = null;
  for (let i = 0; i < ops; i++) {
    last?.dispose();
    last = step();
  }
  await last.data();
  last.dispose();
  return (performance.now() - t0) / ops;
}

async function benchMatmul(tf, n) {
  const A = randomData(n * n, n);
  const B = randomData(n * n, n + 1);
  const [a, b] = [vg.tensor(A, [n, n]), vg.tensor(B, [n, n])];
  const [ta, tb] = [tf.tensor2d(A, [n, n]), tf.tensor2d(B, [n, n])];
  // warm-up (pipelines compiled) and a cross-check: both engines computed the same product
  const cv = vg.matmul(a, b);
  const ct = tf.matMul(ta, tb);
  const [v, t] = [await cv.data(), await ct.data()];
  cv.dispose();
  ct.dispose();
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < v.length; i++) {
    diff = Math.max(diff, Math.abs(v[i] - t[i]));
    scale = Math.max(scale, Math.abs(t[i]));
  }
  const ops = OPS_PER_SAMPLE[n];
  const wall = { voxgrad: [], tfjs: [] };
  // interleaved, so that load from other processes falls on both engines alike
  for (let s = 0; s < SAMPLES; s++) {
    wall.voxgrad.push(await timeOps(ops, () => vg.matmul(a, b)));
    wall.tfjs.push(await timeOps(ops, () => tf.matMul(ta, tb)));
  }
  const gpu = { voxgrad: [], tfjs: [] };
  for (let s = 0; s < GPU_SAMPLES; s++) {
    const { result, report } = await vg.profile(() => vg.matmul(a, b));
    result.dispose();
    gpu.voxgrad.push(report.totalUs / 1000);
    gpu.tfjs.push((await tf.time(() => tf.tidy(() => void tf.matMul(ta, tb)))).kernelMs);
  }
  for (const x of [a, b, ta, tb]) x.dispose();
  const flops = 2 * n ** 3;
  const side = (k) => {
    const ms = median(wall[k]);
    return { wallMs: ms, samplesMs: wall[k], gflops: flops / ms / 1e6, gpuMs: median(gpu[k]), gpuSamplesMs: gpu[k] };
  };
  const voxgrad = side('voxgrad');
  const tfjs = side('tfjs');
  return { n, flops, opsPerSample: ops, voxgrad, tfjs, speedup: tfjs.wallMs / voxgrad.wallMs, maxRelDiff: diff / scale };
}

/**
 * `ADDS` dependent adds on a 4-element tensor (each disposes its input), one readback at the end: µs per op.
 * Both engines by default compute ops on tiny host-resident tensors in JS (tfjs: WEBGPU_CPU_FORWARD; voxgrad:
 * setCpuForwardThreshold, 128 elements), which dispatches nothing. The dispatch cost is measured with that off on
 * both sides; the defaults are measured too.
 */
async function benchAdds(tf) {
  const run = async (engine, hostForward) => {
    const vgSide = engine === 'voxgrad';
    tf.env().set('WEBGPU_CPU_FORWARD', hostForward);
    vg.setCpuForwardThreshold(hostForward ? 128 : 0);
    const y = vgSide ? vg.tensor([1, 2, 3, 4]) : tf.tensor1d([1, 2, 3, 4]);
    const loop = async (n) => {
      let x = vgSide ? vg.zeros([4]) : tf.zeros([4]);
      const t0 = performance.now();
      for (let i = 0; i < n; i++) {
        const next = vgSide ? x.add(y) : tf.add(x, y);
        x.dispose();
        x = next;
      }
      const out = await x.data();
      const ms = performance.now() - t0;
      x.dispose();
      // every add must have run: x = n * y
      if (out[3] !== 4 * n) throw new Error(`${engine}: ${n} adds gave ${out[3]}, expected ${4 * n}`);
      return (ms * 1000) / n;
    };
    await loop(200);
    const samples = [];
    for (let s = 0; s < ADD_SAMPLES; s++) samples.push(await loop(ADDS));
    y.dispose();
    return { usPerOp: median(samples), samplesUs: samples };
  };
  const gpu = { voxgrad: await run('voxgrad', false), tfjs: await run('tfjs', false) };
  const host = { voxgrad: await run('voxgrad', true), tfjs: await run('tfjs', true) };
  tf.env().set('WEBGPU_CPU_FORWARD', true);
  vg.setCpuForwardThreshold(128);
  return {
    adds: ADDS,
    gpu: { ...gpu, speedup: gpu.tfjs.usPerOp / gpu.voxgrad.usPerOp },
    hostForwarded: { ...host, speedup: host.tfjs.usPerOp / host.voxgrad.usPerOp },
  };
}

const f1 = (x) => x.toFixed(1);
const pct = (x) => `${(100 * x).toFixed(1)}%`;
const row = (cells, widths) => cells.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  ');

function printMatmul(matmul, fma) {
  console.log(`\nmatmul f32 N x N @ N x N (2N³ flop)`);
  console.log(`  wall ms: per op, from k back-to-back ops on the same inputs then one readback of the last result (k = ${SIZES.map((n) => OPS_PER_SAMPLE[n]).join('/')}), median of ${SAMPLES}, engines interleaved`);
  console.log(`  gpu ms: kernel time from timestamp queries (vg.profile, tf.time), median of ${GPU_SAMPLES}; % FMA: wall GFLOP/s / FMA ceiling`);
  const w = [6, 9, 8, 6, 8, 9, 8, 6, 8, 14];
  console.log('  ' + row(['N', 'voxgrad', 'GFLOP/s', '% FMA', 'gpu ms', 'tfjs', 'GFLOP/s', '% FMA', 'gpu ms', 'voxgrad/tfjs'], w));
  for (const m of matmul)
    console.log(
      '  ' +
        row(
          [
            `${m.n}³`,
            `${f1(m.voxgrad.wallMs)} ms`,
            f1(m.voxgrad.gflops),
            pct(m.voxgrad.gflops / fma.gflops),
            f1(m.voxgrad.gpuMs),
            `${f1(m.tfjs.wallMs)} ms`,
            f1(m.tfjs.gflops),
            pct(m.tfjs.gflops / fma.gflops),
            f1(m.tfjs.gpuMs),
            `${m.speedup.toFixed(2)}x faster`,
          ],
          w,
        ),
    );
  console.log(`  results agree: max |voxgrad - tfjs| / max |tfjs| = ${matmul.map((m) => m.maxRelDiff.toExponential(1)).join(', ')}`);
}

function printAdds(adds) {
  console.log(`\nDispatch overhead: ${ADDS.toLocaleString('en')} dependent adds on a 4-element tensor (x = x + y, previous x disposed),`);
  console.log(`  one readback at the end; total time / ${ADDS.toLocaleString('en')}, median of ${ADD_SAMPLES}`);
  const addRow = (label, r) =>
    console.log(`  ${label.padEnd(37)} voxgrad ${f1(r.voxgrad.usPerOp).padStart(6)} µs/op   tfjs ${f1(r.tfjs.usPerOp).padStart(6)} µs/op   voxgrad/tfjs ${r.speedup.toFixed(2)}x faster`);
  addRow('every add a GPU dispatch:', adds.gpu);
  addRow('defaults (tiny tensors on the host):', adds.hostForwarded);
}

/** Section runner: a failing section is reported and the others still run. */
async function section(name, results, fn) {
  if (!wanted(name)) return;
  const t0 = performance.now();
  try {
    results[name] = await fn();
  } catch (e) {
    console.log(`\n${name}: FAILED: ${e?.stack ?? e}`);
    results[name] = { error: String(e?.message ?? e) };
    process.exitCode = 1;
  }
  console.log(`  (${name}: ${((performance.now() - t0) / 1000).toFixed(0)} s)`);
}

async function main() {
  const t0 = performance.now();
  const info = await vg.init();
  const cpus = os.cpus();
  console.log(`adapter: ${info.description || '(no description)'} [vendor ${info.vendor}, architecture ${info.architecture}${info.isFallbackAdapter ? ', fallback adapter' : ''}]`);
  console.log(`host: ${cpus.length} x ${cpus[0]?.model ?? 'unknown CPU'}, node ${process.version}, ${os.platform()}${only === SECTIONS ? '' : `; sections: ${only.join(', ')}`}`);
  const ceil = await ceilings();
  const { fma, copy } = ceil;
  console.log(`\nAdapter ceilings (raw WebGPU; one dispatch per run, ${fma.timer}, median of ${fma.times.length})`);
  console.log(`  FMA-bound kernel  ${f1(fma.gflops).padStart(7)} GFLOP/s  (${fma.chains} independent fma chains in each of ${fma.invocations} invocations)`);
  console.log(`  copy kernel       ${f1(copy.gbps).padStart(7)} GB/s     (${copy.bytes >> 20} MiB read + ${copy.bytes >> 20} MiB written, one vec4 per invocation)`);

  const needsTf = ['matmul', 'dispatch', 'conv2d', 'conv3d', 'poolnorm', 'sort', 'optim'].some(wanted);
  const tf = needsTf ? await loadTfjs() : null;
  // onnxruntime-node for the conv and CLIP rows: checked once in a child process (bench/ort.mjs), then loaded here
  let ort = null;
  const ortStatus = { probe: null, errors: [] };
  if (wanted('conv2d') || wanted('conv3d') || wanted('clip')) {
    try {
      ortStatus.probe = probeOrt();
      ort = await loadOrt();
    } catch (e) {
      ortStatus.errors.push(String(e?.message ?? e).split('\n')[0]);
    }
  }
  const results = {};
  await section('matmul', results, async () => {
    const matmul = [];
    for (const n of SIZES) matmul.push(await benchMatmul(tf, n));
    printMatmul(matmul, fma);
    return matmul;
  });
  await section('dispatch', results, async () => {
    const adds = await benchAdds(tf);
    printAdds(adds);
    return adds;
  });
  await section('conv2d', results, () => benchConv2d({ tf, ort, ortStatus }));
  await section('conv3d', results, () => benchConv3d({ tf, ort, ortStatus }));
  await section('convshapes', results, () => benchConvShapes({ tune: process.argv.includes('--tune') }));
  await section('gridsample', results, () => benchGridSample({ copy }));
  await section('poolnorm', results, () => benchPoolNorm({ tf, copy }));
  await section('sort', results, () => benchSort({ tf }));
  await section('optim', results, () => benchOptim({ tf, copy }));
  await section('registration', results, () => benchRegistration());
  await section('contrastive', results, () => benchContrastive({ scale: scaleArg }));
  await section('semiseg', results, () => benchSemiseg());
  await section('clip', results, () => benchClip({ ort, ortStatus, fma }));
  console.log(`\nbench took ${((performance.now() - t0) / 1000).toFixed(0)} s`);

  if (jsonPath) {
    const out = {
      date: new Date().toISOString(),
      host: { cpus: cpus.length, cpu: cpus[0]?.model, node: process.version, platform: os.platform() },
      adapter: info,
      sections: only,
      ceilings: {
        fma: { gflops: fma.gflops, ms: fma.ms, samplesMs: fma.times, timer: fma.timer, flops: fma.flops },
        copy: { gbps: copy.gbps, ms: copy.ms, samplesMs: copy.times, timer: copy.timer, bytes: copy.bytes },
      },
      matmul: results.matmul,
      dispatch: results.dispatch,
      conv2d: results.conv2d,
      conv3d: results.conv3d,
      convShapes: results.convshapes,
      ortWebgpu: ortStatus.probe || ortStatus.errors.length ? ortStatus : undefined,
      gridSample: results.gridsample,
      poolNorm: results.poolnorm,
      sort: results.sort,
      optim: results.optim,
      registration: results.registration,
      contrastive: results.contrastive,
      semiseg: results.semiseg,
      clip: results.clip,
    };
    writeFileSync(jsonPath, JSON.stringify(out, null, 2));
    console.log(`results written to ${jsonPath}`);
  }
  vg.destroy();
}

// the `webgpu` package can keep the process alive at exit while a device exists (a known lifecycle bug): exit explicitly
main().then(
  () => process.exit(process.exitCode ?? 0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
