// Optimiser step cost: one Adam update of a 10M-parameter model. voxgrad runs one fused kernel per parameter tensor
// (shaders/optim.wgsl); tfjs-webgpu's Adam (tf.train.adam) composes each update from elementwise ops. Two models: one
// 10M-element tensor (the kernel alone) and a UNet2D widened to ~10M parameters in 46 tensors (per-tensor overhead
// included). GPU time from timestamp queries (vg.profile, tf.time's kernelMs), interleaved samples; GB/s counts the
// 7 f32 streams an ideal update moves (read param, grad, m, v; write param, m, v), to compare with the copy ceiling.
import * as vg from 'voxgrad';
import { f1, interleaved, maxRelDiff, ratio, row } from './harness.mjs';

const SAMPLES = 5;
const LR = 1e-3;

function voxgradEngine(shapes) {
  const params = shapes.map((s, i) => vg.tidy(() => vg.randn(s, { seed: 10 + i }).mul(0.1)).requiresGrad_());
  const grads = shapes.map((s, i) => vg.randn(s, { seed: 100 + i }));
  const adam = new vg.optim.Adam(params, { lr: LR });
  return {
    name: 'voxgrad',
    async run(keep) {
      params.forEach((p, i) => (p.grad = grads[i]));
      const { report } = await vg.profile(() => adam.step());
      params.forEach((p) => (p.grad = null));
      const ms = report.totalUs / 1000;
      return { wallMs: ms, gpuMs: ms, outputs: keep ? [await params[0].data()] : undefined, dispatches: report.kernels.length };
    },
    dispose() {
      for (const t of [...params, ...grads]) t.dispose();
    },
  };
}

function tfjsEngine(tf, shapes, tag) {
  // identical initial values: tfjs starts from voxgrad's tensors' values
  return {
    name: 'tfjs-webgpu',
    async init() {
      this.vars = [];
      this.grads = {};
      for (const [i, s] of shapes.entries()) {
        const p = vg.tidy(() => vg.randn(s, { seed: 10 + i }).mul(0.1));
        const g = vg.randn(s, { seed: 100 + i });
        const v = tf.variable(tf.tensor(await p.data(), s), true, `${tag}p${i}`);
        this.vars.push(v);
        this.grads[`${tag}p${i}`] = tf.tensor(await g.data(), s);
        p.dispose();
        g.dispose();
      }
      // tfjs's default epsilon is 1e-7; PyTorch's (and voxgrad's) is 1e-8
      this.opt = tf.train.adam(LR, 0.9, 0.999, 1e-8);
    },
    async run(keep) {
      const info = await tf.time(() => this.opt.applyGradients(this.grads));
      return { wallMs: info.wallMs, gpuMs: info.kernelMs, outputs: keep ? [await this.vars[0].data()] : undefined };
    },
    dispose() {
      tf.dispose([...this.vars, ...Object.values(this.grads)]);
      this.opt.dispose();
    },
  };
}

/** Parameter shapes of a UNet2D (SSL4MIS layout) with the given widths. */
function unetShapes(features) {
  const net = new vg.models.UNet2D({ features, numClasses: 4 });
  const shapes = net.parameters().map((p) => [...p.shape]);
  net.dispose();
  return shapes;
}

export async function benchOptim({ tf, copy }) {
  const models = [
    { name: 'one 10M tensor', shapes: [[10_000_000]] },
    { name: 'UNet2D [36..576]', shapes: unetShapes([36, 72, 144, 288, 576]) },
  ];
  const results = [];
  console.log(`\nAdam step (GPU ms, median of ${SAMPLES}; same initial params and grads; first step's output cross-checked)`);
  const widths = [18, 11, 8, 11, 11, 9, 16, 14];
  console.log(row(['model', 'params', 'tensors', 'voxgrad ms', 'tfjs ms', 'GB/s', 'voxgrad vs tfjs', 'max rel diff'], widths));
  for (const m of models) {
    const n = m.shapes.reduce((a, s) => a + s.reduce((x, y) => x * y, 1), 0);
    const v = voxgradEngine(m.shapes);
    const engines = [v];
    if (tf) {
      const t = tfjsEngine(tf, m.shapes, `m${results.length}_`);
      await t.init();
      engines.push(t);
    }
    const r = await interleaved(engines, { samples: SAMPLES });
    const vgMs = r.voxgrad.gpuMs;
    const tfMs = r['tfjs-webgpu']?.gpuMs ?? null;
    const diff = tf ? maxRelDiff(r.voxgrad.outputs[0], r['tfjs-webgpu'].outputs[0]) : null;
    const gbps = (7 * 4 * n) / vgMs / 1e6;
    console.log(row([m.name, n.toLocaleString('en'), m.shapes.length, f1(vgMs), f1(tfMs), f1(gbps), ratio(vgMs, tfMs), diff == null ? '-' : diff.toExponential(1)], widths));
    results.push({ model: m.name, params: n, tensors: m.shapes.length, voxgradMs: vgMs, tfjsMs: tfMs, gbps, maxRelDiffVsTfjs: diff, copyCeilingGbps: copy.gbps });
    for (const e of engines) e.dispose();
  }
  console.log(`  (an Adam step is memory-bound: compare GB/s with the copy kernel's ${f1(copy.gbps)} GB/s measured in this run)`);
  return results;
}
