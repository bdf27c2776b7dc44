/**
 * `voxgrad bench`: GPU time of the kernels that matter most, measured with timestamp queries on this adapter (median of
 * 5 calls after a warm-up). The repository's `npm run bench` adds peers (tfjs, ONNX Runtime) and the adapter's ceilings.
 */
import * as vg from '../node.js';

interface Case {
  name: string;
  /** Work per call, for the rate column. */
  work: { flops?: number; bytes?: number };
  setup(): vg.Tensor[];
  run(inputs: vg.Tensor[]): void;
}

const cases: Case[] = [
  {
    name: 'matmul 512x512x512',
    work: { flops: 2 * 512 ** 3 },
    setup: () => [vg.randn([512, 512], { seed: 1 }), vg.randn([512, 512], { seed: 2 })],
    run: ([a, b]) => void vg.matmul(a, b).dispose(),
  },
  {
    name: 'conv3d 1x16x32^3, 3^3 -> 16',
    work: { flops: 2 * 16 * 16 * 27 * 32 ** 3 },
    setup: () => [vg.randn([1, 16, 32, 32, 32], { seed: 1 }), vg.randn([16, 16, 3, 3, 3], { seed: 2 })],
    run: ([x, w]) => void vg.conv3d(x, w, { padding: 1 }).dispose(),
  },
  {
    name: 'gridSample 3-D 1x1x64^3 trilinear',
    work: { bytes: 64 ** 3 * 4 * (1 + 3 + 1) },
    setup: () => [vg.randn([1, 1, 64, 64, 64], { seed: 1 }), vg.tidy(() => vg.rand([1, 64, 64, 64, 3], { seed: 2 }).mul(2).sub(1))],
    run: ([x, g]) => void vg.gridSample(x, g, { alignCorners: true }).dispose(),
  },
];

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

async function gpuMs(fn: () => void): Promise<number> {
  const { report } = await vg.profile(fn);
  return report.totalUs / 1000;
}

export async function runBench(): Promise<number> {
  const info = await vg.init();
  console.log(`adapter: ${info.vendor} ${info.architecture} (${info.description})`);
  const rows: string[][] = [['kernel', 'GPU ms (median of 5)', 'rate']];
  for (const c of cases) {
    const inputs = c.setup();
    c.run(inputs);
    await vg.sync();
    const times: number[] = [];
    for (let i = 0; i < 5; i++) times.push(await gpuMs(() => c.run(inputs)));
    const ms = median(times);
    const rate = c.work.flops ? `${(c.work.flops / ms / 1e6).toFixed(1)} GFLOP/s` : `${((c.work.bytes ?? 0) / ms / 1e6).toFixed(2)} GB/s`;
    rows.push([c.name, ms.toFixed(2), rate]);
    for (const t of inputs) t.dispose();
  }
  // one fused Adam update of a 10M-parameter model: 7 f32 streams (read p, g, m, v; write p, m, v)
  const p = vg.zeros([10_000_000], { requiresGrad: true });
  p.grad = vg.randn([10_000_000], { seed: 3 });
  const adam = new vg.optim.Adam([p], { lr: 1e-3 });
  adam.step();
  await vg.sync();
  const times: number[] = [];
  for (let i = 0; i < 5; i++) times.push(await gpuMs(() => adam.step()));
  const ms = median(times);
  rows.push(['Adam step, 10M parameters', ms.toFixed(2), `${((7 * 4 * 1e7) / ms / 1e6).toFixed(2)} GB/s`]);
  p.dispose();
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows) console.log(r.map((v, i) => v.padEnd(widths[i])).join('  '));
  return 0;
}
