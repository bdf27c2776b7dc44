// gridSample 3-D trilinear, forward and backward (gradients to input and grid), at input 1x3x128³ sampled at a
// 128³ grid. No WebGPU peer has a 5-D grid_sample: ORT's WebGPU GridSample takes 4-D input only (opsets 16-19;
// onnxruntime/core/providers/webgpu/tensor/grid_sample.cc: "X must be 4-D"), tfjs has no grid_sample. So the
// reference is PyTorch on the CPU (2 threads), clearly labelled, and the measure of the kernels is bandwidth: the
// bytes an ideal kernel must move over the GPU time, against the adapter's copy bandwidth from the same run.
import * as vg from 'voxgrad';
import { exp1, f1, interleaved, kernelsOf, maxRelDiff, randomData, row } from './harness.mjs';
import { runTorch } from './torchref.mjs';

const S = 128;
const C = 3;
const SAMPLES = 5;
const MAX_DISPLACEMENT = 3; // voxels
const TOLERANCE = 1e-3;
// trilinear interpolation is not differentiable where a sample position is an integer voxel coordinate (the cell
// changes there): two engines rounding the position differently by ~1e-5 voxel take different one-sided slopes. The
// grid gradient is compared away from those kinks (this far, in voxels, along the component's own axis), and the
// number of values left out is printed.
const KINK = 1e-4;

/** Which grid-gradient values lie at least KINK voxels from an integer position along their own axis. */
function awayFromKinks(grid, s) {
  const keep = new Uint8Array(grid.length);
  let dropped = 0;
  for (let i = 0; i < grid.length; i++) {
    const p = ((grid[i] + 1) * s - 1) / 2;
    const ok = Math.abs(p - Math.round(p)) >= KINK;
    keep[i] = ok ? 1 : 0;
    if (!ok) dropped++;
  }
  return { keep, dropped };
}

function maxRelDiffWhere(a, b, keep) {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    scale = Math.max(scale, Math.abs(b[i]));
    if (!keep[i]) continue;
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= diff)) diff = d;
  }
  return Number.isNaN(diff) ? Infinity : scale === 0 ? diff : diff / scale;
}

/**
 * grid [1, S, S, S, 3] (x, y, z normalised, alignCorners false): the identity plus a smooth random displacement, a
 * sum of two separable sine products per component with random frequencies (1-4 periods over the volume) and phases,
 * at most MAX_DISPLACEMENT voxels. Smooth, as a registration field is (neighbouring outputs read neighbouring inputs).
 */
export function displacedGrid(s, seed) {
  const r = randomData(64, seed);
  let k = 0;
  const next = () => r[k++];
  const terms = [];
  for (let c = 0; c < 3; c++)
    for (let t = 0; t < 2; t++) {
      const amp = (MAX_DISPLACEMENT / 2) * next();
      const axes = [0, 1, 2].map(() => {
        const freq = (2 * Math.PI * (2.5 + 1.5 * next())) / s;
        const phase = Math.PI * next();
        return Float64Array.from({ length: s }, (_, i) => Math.sin(freq * i + phase));
      });
      terms.push({ c, amp, axes });
    }
  const grid = new Float32Array(s * s * s * 3);
  const scale = 2 / s;
  let o = 0;
  for (let z = 0; z < s; z++)
    for (let y = 0; y < s; y++)
      for (let x = 0; x < s; x++, o += 3) {
        const d = [0, 0, 0];
        for (const t of terms) d[t.c] += t.amp * t.axes[0][x] * t.axes[1][y] * t.axes[2][z];
        grid[o] = (2 * x + 1) / s - 1 + d[0] * scale;
        grid[o + 1] = (2 * y + 1) / s - 1 + d[1] * scale;
        grid[o + 2] = (2 * z + 1) / s - 1 + d[2] * scale;
      }
  return grid;
}

export async function benchGridSample({ copy }) {
  const inShape = [1, C, S, S, S];
  const gridShape = [1, S, S, S, 3];
  const n = S ** 3;
  const I = randomData(C * n, 41);
  const G = displacedGrid(S, 42);
  const GY = randomData(C * n, 43);
  const input = vg.tensor(I, inShape);
  const grid = vg.tensor(G, gridShape);
  const gy = vg.tensor(GY, inShape);

  const forward = {
    name: 'voxgrad',
    async run(keep) {
      const t0 = performance.now();
      const { result: y, report } = await vg.profile(() => vg.gridSample(input, grid));
      const wallMs = performance.now() - t0;
      const outputs = keep ? [await y.data()] : undefined;
      y.dispose();
      return { wallMs, gpuMs: report.totalUs / 1000, kernels: kernelsOf(report), outputs };
    },
  };
  const backward = {
    name: 'voxgrad',
    async run(keep) {
      input.requiresGrad = grid.requiresGrad = true;
      const y = vg.gridSample(input, grid); // not timed
      await vg.sync();
      const t0 = performance.now();
      const { report } = await vg.profile(() => y.backward(gy));
      const wallMs = performance.now() - t0;
      const [gi, gg] = [input.grad, grid.grad];
      input.grad = grid.grad = null;
      const outputs = keep ? [await gi.data(), await gg.data()] : undefined;
      for (const t of [gi, gg, y]) t.dispose();
      input.requiresGrad = grid.requiresGrad = false;
      return { wallMs, gpuMs: report.totalUs / 1000, kernels: kernelsOf(report), outputs };
    },
  };
  const fwd = (await interleaved([forward], { samples: SAMPLES })).voxgrad;
  const bwd = (await interleaved([backward], { samples: SAMPLES })).voxgrad;
  for (const t of [input, grid, gy]) t.dispose();

  const torch = runTorch([
    { name: 'grid_sample', op: 'grid_sample', repeats: 3, inputs: { input: { data: I, shape: inShape }, grid: { data: G, shape: gridShape }, gy: { data: GY, shape: inShape } } },
  ]);
  const ref = torch.ok ? torch.results.grid_sample : null;
  const kinks = awayFromKinks(G, S);
  const diff = ref
    ? {
        output: maxRelDiff(fwd.outputs[0], ref.outputs[0]),
        inputGrad: maxRelDiff(bwd.outputs[0], ref.outputs[1]),
        gridGrad: maxRelDiffWhere(bwd.outputs[1], ref.outputs[2], kinks.keep),
        gridGradAll: maxRelDiff(bwd.outputs[1], ref.outputs[2]),
        gridGradLeftOut: kinks.dropped,
      }
    : null;
  delete fwd.outputs;
  delete bwd.outputs;

  // the bytes an ideal kernel must move: every input read once, every output written once (f32)
  const vol = C * n * 4;
  const gridBytes = 3 * n * 4;
  const bytes = { forward: vol /* input */ + gridBytes + vol /* output */, backward: vol /* gy */ + gridBytes + vol /* input, for the grid gradient */ + vol /* d input */ + gridBytes /* d grid */ };
  const gbps = (b, ms) => b / ms / 1e6;
  const rows = [
    { pass: 'forward', r: fwd, bytes: bytes.forward, torchMs: ref?.fwdMs, diff: diff && `output ${exp1(diff.output)}${diff.output > TOLERANCE ? ' (!)' : ''}` },
    {
      pass: 'backward (input + grid)',
      r: bwd,
      bytes: bytes.backward,
      torchMs: ref?.bwdMs,
      diff: diff && `d input ${exp1(diff.inputGrad)}${diff.inputGrad > TOLERANCE ? ' (!)' : ''}, d grid ${exp1(diff.gridGrad)}${diff.gridGrad > TOLERANCE ? ' (!)' : ''} *`,
    },
  ];

  console.log(`\ngridSample 3-D trilinear (zeros padding, alignCorners false): input 1x${C}x${S}³ at grid 1x${S}³x3 (identity + smooth random displacement, up to ${MAX_DISPLACEMENT} voxels)`);
  console.log("  No WebGPU peer has a 5-D grid_sample (ORT's WebGPU GridSample is 4-D only; tfjs has none): the reference is PyTorch on the CPU,");
  console.log(`    ${ref ? `torch ${torch.version}, ${ref.threads} threads, ${torch.blas}` : `not run: ${torch.error}`}, median of 3 after a warm-up (backward: torch.autograd.grad after an untimed forward).`);
  console.log(`  gpu ms: summed kernel time from timestamp queries (vg.profile), median of ${SAMPLES} after a warm-up; backward after an untimed forward.`);
  console.log('  GB/s: the bytes an ideal kernel must move (every input read once, every output written once, f32) / gpu ms;');
  console.log(`    % copy: of the copy kernel's ${f1(copy.gbps)} GB/s measured above in this run.`);
  const w = [24, 7, 9, 7, 7, 15, 30];
  console.log('  ' + row(['pass', 'gpu ms', 'min MB', 'GB/s', '% copy', 'torch CPU ms', 'max |voxgrad - torch| / max |torch|'], w));
  for (const x of rows)
    console.log(
      '  ' +
        row(
          [x.pass, f1(x.r.gpuMs), f1(x.bytes / 1e6), f1(gbps(x.bytes, x.r.gpuMs)), `${((100 * gbps(x.bytes, x.r.gpuMs)) / copy.gbps).toFixed(0)}%`, ref ? f1(x.torchMs) : '-', x.diff ?? '-'],
          w,
        ),
    );
  if (diff)
    console.log(
      `  * d grid compared away from the kinks of trilinear interpolation (positions within ${KINK} voxel of an integer along the component's axis,\n` +
        `    where the slope jumps: ${diff.gridGradLeftOut} of ${G.length} values left out; over all values: ${exp1(diff.gridGradAll)})`,
    );
  for (const x of rows) {
    const kern = Object.entries(x.r.kernels ?? {})
      .sort((a, b) => b[1] - a[1])
      .map(([k, ms]) => `${k} ${f1(ms)}`)
      .join(', ');
    console.log(`    ${x.pass}: voxgrad kernels (gpu ms): ${kern}`);
  }
  return {
    shape: { input: inShape, grid: gridShape },
    copyGbps: copy.gbps,
    rows: rows.map((x) => ({ pass: x.pass, ...x.r, bytes: x.bytes, gbps: gbps(x.bytes, x.r.gpuMs), copyFraction: gbps(x.bytes, x.r.gpuMs) / copy.gbps, torchCpuMs: x.torchMs ?? null })),
    torch: ref ? { version: torch.version, threads: ref.threads, fwdSamplesMs: ref.fwdSamplesMs, bwdSamplesMs: ref.bwdSamplesMs } : { error: torch.error },
    maxRelDiff: diff,
  };
}
