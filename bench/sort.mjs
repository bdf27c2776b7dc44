// sort, topk and cumsum: voxgrad's GPU time beside tfjs-backend-webgpu on the same adapter, engines interleaved.
// tfjs has tf.topk (its WebGPU backend: a bitonic sort of k-blocks followed by merges that keep the top halves, a
// dedicated selection) and tf.cumsum; it has no sort, so the full sort row runs tf.topk with k = n (sorted), the
// same output. voxgrad's topk (k at most half the padded row) stops the bitonic stages at sorted runs of k and then
// halves the row in rounds, keeping the better half of two runs: the same kind of selection; the full-sort rows of
// the same sizes give what sort-then-narrow would cost. Sizes: the issues' top-8192 over a 256² map and over a 128³ volume (one row each), many short
// rows (4096 × 256, k = 8), and cumsum over one 2^20 row and along the middle dim of a 64³ volume.
//
// GPU time from timestamp queries (vg.profile, tf.time), without the readback; every output is compared with tfjs's
// (values: on random inputs ties are too rare to move them, indices may differ on ties and are not compared).
import * as vg from 'voxgrad';
import { exp1, f1, interleaved, kernelsOf, maxRelDiffAll, randomData, ratio, row } from './harness.mjs';

const SAMPLES = 3;
const TOLERANCE = 1e-5;
const size = (shape) => shape.reduce((a, b) => a * b, 1);

/** GPU time of fn() (a tensor or { values, indices }); keeps the first output (values) for the comparison. */
function vgEngine(fn) {
  return {
    name: 'voxgrad',
    async run(keep) {
      const { result, report } = await vg.profile(fn);
      const ts = result instanceof vg.Tensor ? [result] : [result.values, result.indices];
      const outputs = keep ? [await ts[0].data()] : undefined;
      for (const t of ts) t.dispose();
      return { wallMs: report.totalUs / 1000, gpuMs: report.totalUs / 1000, kernels: kernelsOf(report), outputs };
    },
  };
}

function tfEngine(tf, fn) {
  return {
    name: 'tfjs',
    async run(keep) {
      let y;
      const t = await tf.time(() => {
        y = fn();
      });
      const ts = y instanceof tf.Tensor ? [y] : [y.values, y.indices];
      const outputs = keep ? [await ts[0].data()] : undefined;
      for (const v of ts) v.dispose();
      return { wallMs: t.kernelMs, gpuMs: t.kernelMs, outputs };
    },
  };
}

export async function benchSort({ tf }) {
  const cases = [
    { op: 'topk k=8192', shape: [256 * 256], vg: (x) => vg.topk(x, 8192), tf: (x) => tf.topk(x, 8192, true) },
    { op: 'topk k=8192', shape: [128 * 128 * 128], vg: (x) => vg.topk(x, 8192), tf: (x) => tf.topk(x, 8192, true) },
    { op: 'topk k=8', shape: [4096, 256], vg: (x) => vg.topk(x, 8), tf: (x) => tf.topk(x, 8, true) },
    { op: 'sort (descending)', shape: [256 * 256], vg: (x) => vg.sort(x, { descending: true }), tf: (x) => tf.topk(x, 256 * 256, true) },
    { op: 'sort (descending)', shape: [1 << 20], vg: (x) => vg.sort(x, { descending: true }), tf: (x) => tf.topk(x, 1 << 20, true) },
    { op: 'sort (descending)', shape: [4096, 256], vg: (x) => vg.sort(x, { descending: true }), tf: (x) => tf.topk(x, 256, true) },
    { op: 'cumsum dim -1', shape: [1 << 20], vg: (x) => vg.cumsum(x, -1), tf: (x) => tf.cumsum(x, 0) },
    { op: 'cumsum dim 1', shape: [64, 64, 64], vg: (x) => vg.cumsum(x, 1), tf: (x) => tf.cumsum(x, 1) },
  ];
  const rows = [];
  for (const [i, c] of cases.entries()) {
    const X = randomData(size(c.shape), 71 + i);
    const x = vg.tensor(X, c.shape);
    const tx = tf.tensor(X, c.shape);
    const r = await interleaved([vgEngine(() => c.vg(x)), tfEngine(tf, () => c.tf(tx))], { samples: SAMPLES });
    const diff = maxRelDiffAll(r.voxgrad.outputs, r.tfjs.outputs);
    for (const e of Object.values(r)) delete e.outputs;
    rows.push({ op: c.op, shape: c.shape, r, diff });
    x.dispose();
    tx.dispose();
  }

  console.log('\nsort, topk, cumsum (f32): voxgrad beside tfjs-webgpu on the same adapter');
  console.log(`  gpu ms: summed kernel time from timestamp queries (vg.profile, tf.time), median of ${SAMPLES} after a warm-up, engines`);
  console.log('    interleaved; no readback. tfjs has no sort: tf.topk with k = n gives the same sorted values. Both topks are');
  console.log('    bitonic selections (sorted runs of k, then rounds that keep the better half of two runs); the sort rows of the');
  console.log('    same sizes are what sort-then-narrow would cost.');
  const w = [18, 14, 9, 9, 15, 22];
  console.log('  ' + row(['op', 'shape', 'gpu ms', 'tfjs gpu', 'vs tfjs (gpu)', 'max rel diff vs tfjs'], w));
  for (const r of rows) {
    const v = r.r.voxgrad;
    const t = r.r.tfjs;
    console.log(
      '  ' +
        row([r.op, `[${r.shape}]`, f1(v.gpuMs), f1(t.gpuMs), ratio(v.gpuMs, t.gpuMs), `${exp1(r.diff)}${r.diff > TOLERANCE ? ' (!)' : ''}`], w),
    );
  }
  for (const r of rows) {
    const kern = Object.entries(r.r.voxgrad.kernels ?? {})
      .sort((a, b) => b[1] - a[1])
      .map(([k, ms]) => `${k} ${f1(ms)}`)
      .join(', ');
    console.log(`    ${`${r.op} [${r.shape}]`.padEnd(34)} voxgrad kernels (gpu ms): ${kern}`);
  }
  return rows.map((r) => ({ op: r.op, shape: r.shape, engines: r.r, maxRelDiff: r.diff }));
}
