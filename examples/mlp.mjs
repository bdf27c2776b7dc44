// The main job for now: start WebGPU, print the adapter, and train a small MLP on a non-linear toy problem
// (two interleaved spirals) entirely on the GPU, printing the loss as it falls.
import * as vg from 'voxgrad';

const info = await vg.init();
console.log(`adapter: ${info.vendor} ${info.architecture} — ${info.description} (${info.platform})`);
console.log(`limits: maxStorageBufferBindingSize ${info.limits.maxStorageBufferBindingSize}, ` +
  `maxComputeInvocationsPerWorkgroup ${info.limits.maxComputeInvocationsPerWorkgroup}; features: ${info.features.length}`);

// two spirals, 256 points each, labels 0/1 (seeded CPU data so every run is the same)
const n = 256;
const points = [];
const labels = [];
for (let c = 0; c < 2; c++)
  for (let i = 0; i < n; i++) {
    const t = (i / n) * 3 * Math.PI + 0.5;
    const r = t / (3 * Math.PI);
    const sign = c === 0 ? 1 : -1;
    points.push(sign * r * Math.cos(t), sign * r * Math.sin(t));
    labels.push(c);
  }
const x = vg.tensor(points, [2 * n, 2]);
const y = vg.tensor(labels, [2 * n], { dtype: 'i32' });

// 2 → 64 → 64 → 2 MLP, weights from vg.randn with fixed seeds (scaled as Kaiming-normal for tanh-ish units)
const layer = (fanIn, fanOut, seed) => [
  vg.tidy(() => vg.randn([fanOut, fanIn], { seed }).mul(Math.sqrt(1 / fanIn))).requiresGrad_(),
  vg.zeros([fanOut]).requiresGrad_(),
];
let params = [...layer(2, 64, 1), ...layer(64, 64, 2), ...layer(64, 2, 3)];
const forward = ([w1, b1, w2, b2, w3, b3]) => {
  const h1 = vg.tanh(vg.linear(x, w1, b1));
  const h2 = vg.tanh(vg.linear(h1, w2, b2));
  return vg.linear(h2, w3, b3);
};

// SGD with momentum, written with plain ops (the fused optimisers arrive with vg.optim)
const lr = 0.2;
const momentum = 0.9;
let velocity = params.map(() => null);
const steps = 600;
const t0 = performance.now();
for (let step = 0; step <= steps; step++) {
  const loss = vg.tidy(() => {
    const l = vg.crossEntropy(forward(params, x), y);
    l.backward();
    return l;
  });
  const next = vg.noGrad(() =>
    vg.tidy(() =>
      params.map((p, i) => {
        const v = velocity[i] ? velocity[i].mul(momentum).add(p.grad) : p.grad.mul(1);
        return [v, p.sub(v.mul(lr)).requiresGrad_()];
      }),
    ),
  );
  for (const t of [...params, ...velocity]) t?.dispose();
  velocity = next.map(([v]) => v);
  params = next.map(([, p]) => p);
  if (step % 50 === 0) {
    const l = await loss.item();
    const acc = await vg.noGrad(() => vg.tidy(() => forward(params, x).argmax({ dim: 1 }).eq(y).to('f32').mean())).item();
    console.log(`step ${String(step).padStart(4)}  loss ${l.toFixed(4)}  accuracy ${(acc * 100).toFixed(1)}%`);
  }
  loss.dispose();
}
const secs = (performance.now() - t0) / 1000;
const mem = vg.memory();
console.log(`${steps} steps in ${secs.toFixed(1)} s (${((steps / secs)).toFixed(0)} steps/s); ` +
  `${mem.liveTensors} live tensors, ${(mem.bytesInUse / 1024).toFixed(0)} KiB in use, peak ${(mem.peakBytes / 1024).toFixed(0)} KiB`);
vg.destroy();
