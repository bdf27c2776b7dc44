// Pooling, interpolation, reduction and normalisation rows: maxPool3d(2), avgPool3d(2), trilinear x2 upsampling and
// the sum over all dims but the channels (a conv bias gradient) at 1x16x64³; batchNorm (training: batch statistics)
// and groupNorm(8) at 2x32x32³. voxgrad's GPU time beside tfjs-webgpu
// where tfjs has the op (maxPool3d, avgPool3d and their gradient kernels; batchNorm composed with tf.moments, as tfjs
// has no training-mode batch norm kernel, and its backward composed from tfjs ops), PyTorch CPU (2 threads) as the labelled reference where no WebGPU peer
// has it (3-D trilinear resize, group norm), and every result compared with a peer's.
//
// These ops are memory-bound and fast, so the measure is GPU time (timestamp queries: vg.profile, tf.time), without a
// readback; GB/s counts the bytes an ideal kernel must move (every input read once, every output written once).
import * as vg from 'voxgrad';
import { exp1, f1, interleaved, kernelsOf, maxRelDiffAll, permute, randomData, ratio, row } from './harness.mjs';
import { runTorch } from './torchref.mjs';

const SAMPLES = 5;
const TOLERANCE = 1e-3;
const POOL_SHAPE = [1, 16, 64, 64, 64];
const NORM_SHAPE = [2, 32, 32, 32, 32];
const GROUPS = 8;
const EPS = 1e-5;

const size = (shape) => shape.reduce((a, b) => a * b, 1);
const TO_LAST = [0, 2, 3, 4, 1];
const TO_FIRST = [0, 4, 1, 2, 3];

/** A voxgrad engine: forward alone (no grad recorded), or backward alone after an untimed forward, or both. */
function vgEngine(kind, leaves, fwd, gy) {
  return {
    name: 'voxgrad',
    async run(keep) {
      if (kind === 'forward') {
        const { result: y, report } = await vg.profile(fwd);
        const outputs = keep ? [await y.data()] : undefined;
        y.dispose();
        return { wallMs: report.totalUs / 1000, gpuMs: report.totalUs / 1000, kernels: kernelsOf(report), outputs };
      }
      for (const t of leaves) t.requiresGrad = true;
      let y;
      let fwdMs = 0;
      const fk = {};
      if (kind === 'forward+backward') {
        const p = await vg.profile(fwd);
        y = p.result;
        fwdMs = p.report.totalUs / 1000;
        for (const [k, v] of Object.entries(kernelsOf(p.report))) fk[`fwd ${k}`] = v;
      } else {
        y = fwd(); // not timed
        await vg.sync();
      }
      const { report } = await vg.profile(() => y.backward(gy));
      const grads = leaves.map((t) => t.grad);
      for (const t of leaves) {
        t.grad = null;
        t.requiresGrad = false;
      }
      const outputs = keep ? await Promise.all(grads.map((g) => g.data())) : undefined;
      if (keep && kind === 'forward+backward') outputs.unshift(await y.data());
      for (const g of grads) g.dispose();
      y.dispose();
      const gpuMs = fwdMs + report.totalUs / 1000;
      const bk = {};
      for (const [k, v] of Object.entries(kernelsOf(report))) bk[kind === 'forward+backward' ? `bwd ${k}` : k] = v;
      return { wallMs: gpuMs, gpuMs, kernels: { ...fk, ...bk }, outputs };
    },
  };
}

/** A tfjs engine: GPU time of op() by tf.time; `back` brings its outputs to voxgrad's layout (outside the timing). */
function tfEngine(tf, op, back) {
  return {
    name: 'tfjs',
    async run(keep) {
      let y;
      const t = await tf.time(() => {
        y = op();
      });
      const ys = Array.isArray(y) ? y : [y];
      const outputs = keep ? (await Promise.all(ys.map((v) => v.data()))).map((d, i) => back(d, i)) : undefined;
      for (const v of ys) v.dispose();
      return { wallMs: t.kernelMs, gpuMs: t.kernelMs, outputs };
    },
  };
}

export async function benchPoolNorm({ tf, copy }) {
  const rows = [];
  const torchJobs = [];
  const add = (r) => rows.push(r);

  // ---- pooling and upsampling at 1x16x64³ --------------------------------------------------------------------------
  {
    const X = randomData(size(POOL_SHAPE), 51);
    const pooled = [1, 16, 32, 32, 32];
    const up = [1, 16, 128, 128, 128];
    const GYP = randomData(size(pooled), 52);
    const GYU = randomData(size(up), 53);
    const x = vg.tensor(X, POOL_SHAPE);
    const gyp = vg.tensor(GYP, pooled);
    const gyu = vg.tensor(GYU, up);
    const xT = permute(X, POOL_SHAPE, TO_LAST);
    const gypT = permute(GYP, pooled, TO_LAST);
    const tx = tf.tensor(xT.data, xT.shape);
    const tgy = tf.tensor(gypT.data, gypT.shape);
    const pooledT = [1, 32, 32, 32, 16];
    const backP = (d) => permute(d, pooledT, TO_FIRST).data;
    const backX = (d) => permute(d, xT.shape, TO_FIRST).data;
    const attrs = { filterSize: 2, strides: 2, pad: 'valid', dimRoundingMode: undefined };
    const tMax = tf.maxPool3d(tx, 2, 2, 'valid');
    const inB = size(POOL_SHAPE) * 4;
    const poolB = size(pooled) * 4;
    const upB = size(up) * 4;

    add({ op: 'maxPool3d(2)', pass: 'forward', shape: POOL_SHAPE, bytes: inB + poolB,
      r: await interleaved([vgEngine('forward', [], () => vg.maxPool3d(x, 2)), tfEngine(tf, () => tf.maxPool3d(tx, 2, 2, 'valid'), backP)], { samples: SAMPLES }) });
    // voxgrad's max pool backward scatters through the argmax indices its forward saved (i32, one per output)
    add({ op: 'maxPool3d(2)', pass: 'backward', shape: POOL_SHAPE, bytes: poolB + poolB /* indices */ + inB,
      r: await interleaved(
        [vgEngine('backward', [x], () => vg.maxPool3d(x, 2), gyp), tfEngine(tf, () => tf.engine().runKernel('MaxPool3DGrad', { dy: tgy, input: tx, output: tMax }, attrs), backX)],
        { samples: SAMPLES }) });
    add({ op: 'avgPool3d(2)', pass: 'forward', shape: POOL_SHAPE, bytes: inB + poolB,
      r: await interleaved([vgEngine('forward', [], () => vg.avgPool3d(x, 2)), tfEngine(tf, () => tf.avgPool3d(tx, 2, 2, 'valid'), backP)], { samples: SAMPLES }) });
    add({ op: 'avgPool3d(2)', pass: 'backward', shape: POOL_SHAPE, bytes: poolB + inB,
      r: await interleaved(
        [vgEngine('backward', [x], () => vg.avgPool3d(x, 2), gyp), tfEngine(tf, () => tf.engine().runKernel('AvgPool3DGrad', { dy: tgy, input: tx }, attrs), backX)],
        { samples: SAMPLES }) });
    const upsample = () => vg.interpolate(x, { scaleFactor: 2, mode: 'trilinear' });
    add({ op: 'trilinear x2', pass: 'forward', shape: POOL_SHAPE, bytes: inB + upB, torch: 'upsample', torchOut: [0],
      r: await interleaved([vgEngine('forward', [], upsample)], { samples: SAMPLES }) });
    add({ op: 'trilinear x2', pass: 'backward', shape: POOL_SHAPE, bytes: upB + inB, torch: 'upsample', torchOut: [1],
      r: await interleaved([vgEngine('backward', [x], upsample, gyu)], { samples: SAMPLES }) });
    torchJobs.push({ name: 'upsample', op: 'upsample', repeats: 3, inputs: { x: { data: X, shape: POOL_SHAPE }, gy: { data: GYU, shape: up } } });
    // a convolution's bias gradient: the sum over every dim but the channels, 16 outputs of 262,144 terms each
    add({ op: 'sum over N,D,H,W', pass: 'forward', shape: POOL_SHAPE, bytes: inB + 16 * 4,
      r: await interleaved([vgEngine('forward', [], () => vg.sum(x, { dim: [0, 2, 3, 4] })), tfEngine(tf, () => tf.sum(tx, [0, 1, 2, 3]), (d) => d)], { samples: SAMPLES }) });
    for (const t of [x, gyp, gyu, tx, tgy, tMax]) t.dispose();
  }

  // ---- normalisation at 2x32x32³ -----------------------------------------------------------------------------------
  {
    const [N, C] = NORM_SHAPE;
    const X = randomData(size(NORM_SHAPE), 61);
    const GY = randomData(size(NORM_SHAPE), 62);
    const Wt = randomData(C, 63).map((v) => 1 + 0.5 * v);
    const B = randomData(C, 64);
    const x = vg.tensor(X, NORM_SHAPE);
    const gy = vg.tensor(GY, NORM_SHAPE);
    const weight = vg.tensor(Wt, [C]);
    const bias = vg.tensor(B, [C]);
    const xT = permute(X, NORM_SHAPE, TO_LAST);
    const gyT = permute(GY, NORM_SHAPE, TO_LAST);
    const tx = tf.tensor(xT.data, xT.shape);
    const tgy = tf.tensor(gyT.data, gyT.shape);
    const tw = tf.tensor(Wt, [C]);
    const tb = tf.tensor(B, [C]);
    const backX = (d) => permute(d, xT.shape, TO_FIRST).data;
    const backAll = (d, i) => (i < 2 ? backX(d) : d);
    const bytes = size(NORM_SHAPE) * 4;
    // tfjs: training-mode batch norm = tf.moments over N, D, H, W, then tf.batchNorm (its FusedBatchNorm kernel).
    // On the [N*D*H*W, C] view of its NDHWC tensor (a free reshape): tfjs-webgpu's broadcasting binary ops on rank-5
    // tensors fail to compile (BinaryOpProgram: "cannot index type 'vec5'"), which the comparison caught.
    const tx2 = tf.reshape(tx, [-1, C]);
    const tgy2 = tf.reshape(tgy, [-1, C]);
    const tfBn = () => {
      const m = tf.moments(tx2, 0);
      const y = tf.batchNorm(tx2, m.mean, m.variance, tb, tw, EPS);
      m.mean.dispose();
      m.variance.dispose();
      return y;
    };
    // tfjs-core's Node bundle registers no gradient functions (the union package @tensorflow/tfjs does), so tf.grads
    // cannot differentiate tf.moments here: the training batch norm's backward is composed from tfjs ops in closed
    // form, dx = scale / sigma * (gy - mean(gy) - xhat * mean(gy * xhat)), dscale = sum(gy * xhat), dbias = sum(gy)
    const m = size(NORM_SHAPE) / C;
    const tfBnFwdBwd = () =>
      tf.tidy(() => {
        const { mean, variance } = tf.moments(tx2, 0);
        const inv = tf.rsqrt(tf.add(variance, EPS));
        const xhat = tf.mul(tf.sub(tx2, mean), inv);
        const y = tf.add(tf.mul(xhat, tw), tb);
        const dbias = tf.sum(tgy2, 0);
        const dscale = tf.sum(tf.mul(tgy2, xhat), 0);
        const dxhat = tf.sub(tf.sub(tgy2, tf.div(dbias, m)), tf.mul(xhat, tf.div(dscale, m)));
        const dx = tf.mul(dxhat, tf.mul(tw, inv));
        return [y, dx, dscale, dbias];
      });
    const bn = () => vg.batchNorm(x, null, null, { training: true, weight, bias, eps: EPS });
    add({ op: 'batchNorm (train)', pass: 'forward', shape: NORM_SHAPE, bytes: 2 * bytes,
      r: await interleaved([vgEngine('forward', [], bn), tfEngine(tf, tfBn, backX)], { samples: SAMPLES }) });
    // forward + backward: the output and the x, weight, bias gradients
    add({ op: 'batchNorm (train)', pass: 'forward+backward', shape: NORM_SHAPE, bytes: 2 * bytes + 3 * bytes,
      r: await interleaved(
        [vgEngine('forward+backward', [x, weight, bias], bn, gy), tfEngine(tf, tfBnFwdBwd, backAll)],
        { samples: SAMPLES }) });
    const gn = () => vg.groupNorm(x, GROUPS, { weight, bias, eps: EPS });
    add({ op: `groupNorm(${GROUPS})`, pass: 'forward', shape: NORM_SHAPE, bytes: 2 * bytes, torch: 'group_norm', torchOut: [0],
      r: await interleaved([vgEngine('forward', [], gn)], { samples: SAMPLES }) });
    add({ op: `groupNorm(${GROUPS})`, pass: 'forward+backward', shape: NORM_SHAPE, bytes: 2 * bytes + 3 * bytes, torch: 'group_norm', torchOut: [0, 1, 2, 3],
      r: await interleaved([vgEngine('forward+backward', [x, weight, bias], gn, gy)], { samples: SAMPLES }) });
    torchJobs.push({
      name: 'group_norm', op: 'group_norm', repeats: 5,
      inputs: { x: { data: X, shape: NORM_SHAPE }, weight: { data: Wt, shape: [C] }, bias: { data: B, shape: [C] }, gy: { data: GY, shape: NORM_SHAPE } },
    });
    for (const t of [x, gy, weight, bias, tx, tgy, tx2, tgy2, tw, tb]) t.dispose();
    void N;
  }

  // ---- PyTorch CPU reference for the rows without a WebGPU peer, then the comparisons -----------------------------
  const torch = runTorch(torchJobs);
  for (const r of rows) {
    const v = r.r.voxgrad;
    if (r.r.tfjs) {
      r.diff = { peer: 'tfjs', value: maxRelDiffAll(v.outputs, r.r.tfjs.outputs) };
    } else if (r.torch && torch.ok) {
      const ref = torch.results[r.torch];
      r.diff = { peer: 'torch', value: maxRelDiffAll(v.outputs, r.torchOut.map((i) => ref.outputs[i])) };
      r.torchCpuMs = r.pass === 'forward' ? ref.fwdMs : r.pass === 'backward' ? ref.bwdMs : ref.fwdMs + ref.bwdMs;
    }
    for (const e of Object.values(r.r)) delete e.outputs;
  }

  console.log(`\nPooling, interpolation, reduction and normalisation (maxPool3d, avgPool3d, trilinear, sum at 1x16x64³; norms at 2x32x32³, f32)`);
  console.log(`  gpu ms: summed kernel time from timestamp queries (vg.profile, tf.time), median of ${SAMPLES} after a warm-up, engines interleaved;`);
  console.log('    no readback. backward: after an untimed forward; forward+backward: both passes, output and x/weight/bias gradients.');
  console.log('    tfjs runs channels-last (NDHWC): inputs transposed once on the host, outside the timing; its gradient kernels');
  console.log('    (MaxPool3DGrad, AvgPool3DGrad) called directly. tfjs has no training batch-norm kernel: forward tf.moments +');
  console.log('    tf.batchNorm; forward+backward composed from tfjs ops in closed form (its Node bundle registers no gradients),');
  console.log("    both on the [N*D*H*W, C] view (tfjs-webgpu's rank-5 broadcasting binary ops fail to compile: 'cannot index type vec5').");
  console.log(`  GB/s: bytes an ideal kernel must move (inputs read once, outputs written once) / voxgrad gpu ms; copy ceiling ${f1(copy.gbps)} GB/s.`);
  console.log(
    `  No WebGPU peer for 3-D trilinear resize (tfjs has 2-D resizeBilinear only) or group norm: PyTorch CPU is the reference there${
      torch.ok ? ` (torch ${torch.version}, 2 threads, ${torch.blas}, median of 3-5)` : ` (not run: ${torch.error})`
    }.`,
  );
  const w = [18, 16, 8, 6, 7, 9, 14, 13, 22];
  console.log('  ' + row(['op', 'pass', 'gpu ms', 'GB/s', '% copy', 'tfjs gpu', 'vs tfjs (gpu)', 'torch CPU ms', 'max rel diff vs peer'], w));
  for (const r of rows) {
    const v = r.r.voxgrad;
    const t = r.r.tfjs;
    const gbps = r.bytes / v.gpuMs / 1e6;
    console.log(
      '  ' +
        row(
          [
            r.op,
            r.pass,
            f1(v.gpuMs),
            f1(gbps),
            `${((100 * gbps) / copy.gbps).toFixed(0)}%`,
            t ? f1(t.gpuMs) : 'n/a',
            t ? ratio(v.gpuMs, t.gpuMs) : '-',
            r.torchCpuMs != null ? `${f1(r.torchCpuMs)} (CPU)` : '-',
            r.diff ? `${r.diff.peer} ${exp1(r.diff.value)}${r.diff.value > TOLERANCE ? ' (!)' : ''}` : '-',
          ],
          w,
        ),
    );
    r.gbps = gbps;
  }
  for (const r of rows) {
    const kern = Object.entries(r.r.voxgrad.kernels ?? {})
      .sort((a, b) => b[1] - a[1])
      .map(([k, ms]) => `${k} ${f1(ms)}`)
      .join(', ');
    console.log(`    ${`${r.op} ${r.pass}`.padEnd(34)} voxgrad kernels (gpu ms): ${kern}`);
  }
  return rows.map((r) => ({ op: r.op, pass: r.pass, shape: r.shape, bytes: r.bytes, gbps: r.gbps, engines: r.r, torchCpuMs: r.torchCpuMs ?? null, maxRelDiff: r.diff ?? null }));
}
