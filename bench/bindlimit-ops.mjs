// Issue 12, per op at full size: each op below runs forward and backward on a [1, 16, 160, 192, 224] f32 volume
// (420 MiB, past lavapipe's 128 MiB binding limit) with the adapter's own limit, then with vg.debug.setBindingLimit at
// half of it (another split plan); prints the time of the first run and the largest relative difference between the
// two runs' outputs and input gradients (max |a - b| / max |a|) under the loss sum(y^2) / 2. Usage: node bench/bindlimit-ops.mjs [D H W].
import * as vg from 'voxgrad';
import { maxRelDiff } from './stats.mjs';

const shape = process.argv.length >= 5 ? process.argv.slice(2, 5).map(Number) : [160, 192, 224];
await vg.init();
const limit = vg.backendInfo().limits.maxStorageBufferBindingSize;
const MiB = 2 ** 20;
// 16 channels built from one random channel (27 MiB): vg.rand itself cannot fill a tensor past one binding yet
const base = vg.rand([1, 1, ...shape], { seed: 1 });
const x = vg.cat(Array.from({ length: 16 }, (_, c) => vg.add(vg.mul(base, 1 - 0.05 * c), 0.01 * c)), 1);
const w = vg.mul(vg.rand([16, 16, 3, 3, 3], { seed: 2 }), 0.05);
console.log(`input [1, 16, ${shape.join(', ')}]: ${(x.size * 4) / MiB} MiB; adapter binding limit ${limit / MiB} MiB`);

const OPS = {
  leakyRelu: (t) => vg.leakyRelu(t, { negativeSlope: 0.2 }),
  maxPool3d: (t) => vg.maxPool3d(t, 2),
  'interpolate nearest x2 (of the pooled)': (t) => vg.interpolate(vg.maxPool3d(t, 2), { scaleFactor: 2 }),
  'interpolate trilinear x0.5': (t) => vg.interpolate(t, { scaleFactor: 0.5, mode: 'trilinear', alignCorners: true }),
  instanceNorm: (t) => vg.instanceNorm(t),
  'cat (32 channels)': (t) => vg.cat([t, t], 1),
  'sum over space': (t) => vg.sum(t, { dim: [2, 3, 4] }),
  'conv3d 16->16 k3': (t) => vg.conv3d(t, w, { padding: 1 }),
};

async function run(fn, bytes) {
  vg.debug.setBindingLimit(bytes === limit ? null : bytes);
  const xi = vg.noGrad(() => vg.mul(x, 1));
  xi.requiresGrad = true;
  const t0 = performance.now();
  const y = fn(xi);
  // loss sum(y^2) / 2: the upstream gradient is y itself
  vg.backward(vg.mul(vg.sum(vg.mul(y, y)), 0.5));
  const data = await Promise.all([y.data(), xi.grad.data()]);
  const seconds = (performance.now() - t0) / 1000;
  for (const t of [xi, y]) t.dispose();
  vg.debug.setBindingLimit(null);
  return { data, seconds };
}


for (const [name, fn] of Object.entries(OPS)) {
  const a = await run(fn, limit);
  const b = await run(fn, limit / 2);
  const { peakBytes } = vg.memory();
  console.log(
    `${name}: forward + backward ${a.seconds.toFixed(1)} s (half limit ${b.seconds.toFixed(1)} s), ` +
      `rel diff output ${maxRelDiff(a.data[0], b.data[0]).toExponential(2)}, input gradient ${maxRelDiff(a.data[1], b.data[1]).toExponential(2)}, ` +
      `peak ${(peakBytes / MiB).toFixed(0)} MiB`,
  );
  vg.emptyCache();
}
vg.destroy();
process.exit(0);
