// Issue 12: a VoxelMorph-3D training step on volumes past maxStorageBufferBindingSize. VxmDense (default widths,
// 7 integration steps at half resolution), batch 1, MSE + 0.01 * Grad loss, forward + backward, run twice on the same
// weights and images: once with the adapter's own binding limit and once with vg.debug.setBindingLimit at half of it,
// so every split op takes a different plan (other slab and run sizes). Prints per run the wall time, vg.memory()'s peak
// bytes, the dispatch count and the process's max RSS, then how far the second run's loss, outputs and parameter
// gradients are from the first (max |a - b| / max |a| per tensor). Usage: node bench/bindlimit-vxm.mjs [D H W [limit]]
// (default 160 192 224 and the adapter's limit; a smaller first limit in bytes tries the script on small volumes).
// On a shared machine run it under bench/bindlimit-watchdog.mjs.
import { readFileSync } from 'node:fs';
import * as vg from 'voxgrad';
import { maxRelDiff } from './stats.mjs';

const shape = process.argv.length >= 5 ? process.argv.slice(2, 5).map(Number) : [160, 192, 224];
await vg.init();
const adapterLimit = vg.backendInfo().limits.maxStorageBufferBindingSize;
const firstLimit = process.argv[5] ? Number(process.argv[5]) : adapterLimit;
const reg = vg.methods.registration;
const net = new vg.models.VxmDense(shape, { seed: 0 });
const src = vg.rand([1, 1, ...shape], { seed: 1 });
const tgt = vg.rand([1, 1, ...shape], { seed: 2 });
const params = net.namedParameters();
const MiB = 2 ** 20;
/** The process's largest resident memory so far (VmHWM), in GB. */
const maxRssGB = () => Number(/VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]) / 1e6;

async function step(limit) {
  vg.debug.setBindingLimit(limit === adapterLimit ? null : limit);
  for (const [, p] of params) p.grad = null;
  vg.emptyCache();
  const before = vg.dispatches();
  const t0 = performance.now();
  const kept = vg.tidy(() => {
    const o = net.call(src, tgt);
    const loss = vg.add(reg.mse(o.ySource, tgt), vg.mul(reg.gradL2(o.preintFlow, { lossMult: 2 }), 0.01));
    loss.backward();
    return [loss, o.ySource, o.flow];
  });
  const [loss, ySource, flow] = await Promise.all(kept.map((t) => t.data()));
  const grads = await Promise.all(params.map(([, p]) => p.grad.data()));
  const seconds = (performance.now() - t0) / 1000;
  const { peakBytes } = vg.memory();
  kept.forEach((t) => t.dispose());
  vg.debug.setBindingLimit(null);
  return { seconds, peakBytes, dispatches: vg.dispatches() - before, loss, ySource, flow, grads };
}


console.log(`VxmDense 3-D ${shape.join('x')}, batch 1, ${vg.backendInfo().description}; adapter binding limit ${adapterLimit / MiB} MiB`);
console.log(`largest activation: ${(48 * shape.reduce((a, b) => a * b) * 4) / MiB} MiB (the decoder's 48-channel concatenation)`);
const runs = [];
for (const limit of [firstLimit, firstLimit / 2]) {
  const r = await step(limit);
  runs.push(r);
  console.log(
    `limit ${limit / MiB} MiB: step ${r.seconds.toFixed(1)} s, peak ${(r.peakBytes / MiB).toFixed(0)} MiB, ${r.dispatches} dispatches, ` +
      `loss ${r.loss[0]}, process max RSS so far ${maxRssGB().toFixed(2)} GB`,
  );
}
const [a, b] = runs;
const gradErr = Math.max(...a.grads.map((g, i) => maxRelDiff(g, b.grads[i])));
const worst = params[a.grads.map((g, i) => maxRelDiff(g, b.grads[i])).indexOf(gradErr)][0];
console.log(`loss rel diff ${maxRelDiff(a.loss, b.loss).toExponential(2)}, ySource ${maxRelDiff(a.ySource, b.ySource).toExponential(2)}, flow ${maxRelDiff(a.flow, b.flow).toExponential(2)}`);
console.log(`parameter gradients: max rel diff ${gradErr.toExponential(2)} (${worst}) over ${params.length} tensors`);
const ok = gradErr <= 1e-5 && maxRelDiff(a.loss, b.loss) <= 1e-5;
console.log(ok ? 'MATCH within 1e-5' : 'MISMATCH');
vg.destroy();
process.exit(ok ? 0 : 1);
