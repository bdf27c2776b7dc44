// Two builds of voxgrad in one process, sample by sample: the warp and conv kernels' GPU time (timestamp queries,
// vg.profile) in build A and build B on identical inputs, so machine load hits both alike. Each build has its own
// device. A and B may be two copies of one build's dist/ (the library keeps module state, so one copy cannot serve
// both); AB_INIT_A / AB_INIT_B (JSON) are then the vg.init options that tell them apart, e.g.
// AB_INIT_A='{"subgroups":false}'.
//   node bench/ab.mjs <A/dist/node.js> <B/dist/node.js> [samples] [case-name prefixes, comma-separated]
// Prints per case the median GPU ms of each build, B / A, and each build's min–max. Two copies of one build measure
// the tool's own noise on the host: on a shared 2-vCPU Xeon they read 0.88-0.95 on 16- and 32-channel conv cases
// and 1.41 on a 2-channel one (docs/performance.md), so a ratio that close to 1 shows nothing there.
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { median } from './stats.mjs';

const [pathA, pathB, samplesArg, only] = process.argv.slice(2);
if (!pathA || !pathB) {
  console.error('usage: node bench/ab.mjs <A/dist/node.js> <B/dist/node.js> [samples]');
  process.exit(2);
}
const SAMPLES = Number(samplesArg ?? 5);
const builds = [];
for (const [i, path] of [pathA, pathB].entries()) {
  const vg = await import(pathToFileURL(resolve(path)).href);
  await vg.init(JSON.parse(process.env[`AB_INIT_${'AB'[i]}`] ?? '{}'));
  builds.push(vg);
}

/** A conv case: forward, input gradient (dgrad) or weight gradient (wgrad) of a 3x3(x3) conv with padding 1. */
function convCase(name, xShape, cout, stride, pass) {
  return {
    name: `conv ${name} ${pass}`,
    setup: (vg) => {
      const nd = xShape.length - 2;
      const x = vg.randn(xShape, { seed: 1 });
      const w = vg.randn([cout, xShape[1], ...Array(nd).fill(3)], { seed: 2 }).mul(0.1);
      const conv = nd === 3 ? vg.conv3d : vg.conv2d;
      if (pass === 'forward') return { run: () => conv(x, w, { padding: 1, stride }), dispose: () => (x.dispose(), w.dispose()) };
      (pass === 'dgrad' ? x : w).requiresGrad = true;
      const gy = vg.tidy(() => vg.randn(conv(x.detach(), w.detach(), { padding: 1, stride }).shape, { seed: 3 }));
      let y = null;
      return {
        before: () => (y = conv(x, w, { padding: 1, stride })),
        run: () => y.backward(gy),
        after: () => {
          y.dispose();
          x.grad?.dispose();
          w.grad?.dispose();
          x.grad = null;
          w.grad = null;
        },
        dispose: () => (x.dispose(), w.dispose(), gy.dispose()),
      };
    },
  };
}

/** Times the backward of y = fn(x) for the upstream gradient gy alone (the forward runs untimed before each sample). */
function backwardOf(x, gy, fn) {
  x.requiresGrad = true;
  let y = null;
  return {
    before: () => (y = fn(x)),
    run: () => y.backward(gy),
    after: () => {
      y.dispose();
      x.grad.dispose();
      x.grad = null;
    },
    dispose: () => (x.dispose(), gy.dispose()),
  };
}

/** One case: setup(vg) returns { run(): Tensor | void, dispose() } whose run is timed. */
const cases = [
  {
    name: 'gridSample 3-D forward 1x3x128³',
    setup: (vg) => {
      const x = vg.randn([1, 3, 128, 128, 128], { seed: 1 });
      // identity plus up to ~1.5 voxels of displacement (normalised units: 2 / 128 per voxel)
      const grid = vg.tidy(() => vg.add(vg.affineGrid(vg.tensor([[[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]]]), [1, 3, 128, 128, 128]), vg.rand([1, 128, 128, 128, 3], { seed: 2 }).sub(0.5).mul(0.05)));
      return { run: () => vg.gridSample(x, grid), dispose: () => (x.dispose(), grid.dispose()) };
    },
  },
  {
    name: 'gridSample 3-D backward (input + grid) 1x3x128³',
    setup: (vg) => {
      const x = vg.randn([1, 3, 128, 128, 128], { seed: 1 }).requiresGrad_();
      const grid = vg.tidy(() => vg.add(vg.affineGrid(vg.tensor([[[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]]]), [1, 3, 128, 128, 128]), vg.rand([1, 128, 128, 128, 3], { seed: 2 }).sub(0.5).mul(0.05)));
      grid.requiresGrad = true;
      const gy = vg.randn([1, 3, 128, 128, 128], { seed: 3 });
      let y = null;
      return {
        before: () => (y = vg.gridSample(x, grid)),
        run: () => y.backward(gy),
        after: () => {
          y.dispose();
          for (const t of [x, grid]) {
            t.grad.dispose();
            t.grad = null;
          }
        },
        dispose: () => (x.dispose(), grid.dispose(), gy.dispose()),
      };
    },
  },
  {
    name: 'trilinear x2 forward 1x16x64³',
    setup: (vg) => {
      const x = vg.randn([1, 16, 64, 64, 64], { seed: 1 });
      return { run: () => vg.interpolate(x, { scaleFactor: 2, mode: 'trilinear' }), dispose: () => x.dispose() };
    },
  },
  {
    name: 'trilinear x2 backward 1x16x64³',
    setup: (vg) =>
      backwardOf(vg.randn([1, 16, 64, 64, 64], { seed: 1 }), vg.randn([1, 16, 128, 128, 128], { seed: 2 }), (x) =>
        vg.interpolate(x, { scaleFactor: 2, mode: 'trilinear' }),
      ),
  },
  ...['forward', 'backward'].map((pass) => ({
    name: `nearest x2 ${pass} 8x32x64²`,
    setup: (vg) => {
      const x = vg.randn([8, 32, 64, 64], { seed: 1 });
      const up = (t) => vg.interpolate(t, { scaleFactor: 2 });
      if (pass === 'forward') return { run: () => up(x), dispose: () => x.dispose() };
      return backwardOf(x, vg.randn([8, 32, 128, 128], { seed: 2 }), up);
    },
  })),
  {
    name: 'integrateVelocity 1x3x32³, 7 steps, forward',
    setup: (vg) => {
      const v = vg.tidy(() => vg.randn([1, 3, 32, 32, 32], { seed: 3 }).mul(4));
      return { run: () => vg.integrateVelocity(v, 7), dispose: () => v.dispose() };
    },
  },
  {
    name: 'integrateVelocity 1x3x32³, 7 steps, backward',
    setup: (vg) =>
      backwardOf(
        vg.tidy(() => vg.randn([1, 3, 32, 32, 32], { seed: 3 }).mul(4)),
        vg.randn([1, 3, 32, 32, 32], { seed: 4 }),
        (v) => vg.integrateVelocity(v, 7),
      ),
  },
  ...['forward', 'backward'].map((pass) => ({
    name: `maxPool2d 8x32x128² k2 ${pass}`,
    setup: (vg) => {
      const x = vg.randn([8, 32, 128, 128], { seed: 1 });
      if (pass === 'forward') return { run: () => vg.maxPool2d(x, 2), dispose: () => x.dispose() };
      return backwardOf(x, vg.randn([8, 32, 64, 64], { seed: 2 }), (t) => vg.maxPool2d(t, 2));
    },
  })),
  ...['forward', 'dgrad', 'wgrad'].flatMap((pass) => [
    convCase('2-D 8x32x128² -> 16', [8, 32, 128, 128], 16, 1, pass),
    convCase('2-D 8x16x128² -> 32 s2', [8, 16, 128, 128], 32, 2, pass),
    convCase('3-D 1x16x64³ -> 16', [1, 16, 64, 64, 64], 16, 1, pass),
    convCase('3-D 1x32x32³ -> 32', [1, 32, 32, 32, 32], 32, 1, pass),
    convCase('2-D 8x2x128² -> 16', [8, 2, 128, 128], 16, 1, pass),
    convCase('3-D 1x2x64³ -> 16', [1, 2, 64, 64, 64], 16, 1, pass),
    convCase('3-D 1x16x64³ -> 32 s2', [1, 16, 64, 64, 64], 32, 2, pass),
  ]),
];

for (const c of cases) {
  if (only && !only.split(',').some((prefix) => c.name.startsWith(prefix))) continue;
  const state = builds.map((vg) => c.setup(vg));
  const times = [[], []];
  for (let s = 0; s <= SAMPLES; s++)
    for (const b of s % 2 ? [1, 0] : [0, 1]) {
      const vg = builds[b];
      const st = state[b];
      st.before?.();
      await vg.sync();
      const { result, report } = await vg.profile(() => st.run());
      result?.dispose?.();
      st.after?.();
      if (s > 0) times[b].push(report.totalUs / 1000); // sample 0 compiles the pipelines
    }
  state.forEach((st) => st.dispose());
  const [a, b] = times.map(median);
  const span = (t) => `${Math.min(...t).toFixed(0)}–${Math.max(...t).toFixed(0)}`;
  console.log(`${c.name.padEnd(44)} A ${a.toFixed(1).padStart(8)} ms (${span(times[0])})  B ${b.toFixed(1).padStart(8)} ms (${span(times[1])})  B/A ${(b / a).toFixed(2)}`);
}
