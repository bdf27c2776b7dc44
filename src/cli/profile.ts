/**
 * `voxgrad profile <recipe> [--steps N] [--out DIR]`: runs one warm-up training step of a recipe (pipelines compile
 * there) and N profiled steps, times every dispatch with timestamp queries (vg.profile), prices each with its kernel's
 * cost model (FLOPs, bytes), and compares the rates with the adapter's ceilings measured in the same command (an
 * FMA-bound kernel and a copy kernel, median of 3 dispatches). Writes DIR/trace.json.gz (Chrome trace of the profiled
 * steps: chrome://tracing or ui.perfetto.dev), DIR/summary.md and DIR/summary.json.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import * as vg from '../node.js';
import { dispatch, grid1d, kernel } from '../engine/runtime.js';
import { summarize, type KernelSummary, type KernelTiming } from '../engine/profiler.js';
import type { Config, Recipe } from '../train/recipe.js';

// FMA-bound: CHAINS independent scalar fma chains per invocation and no memory traffic in the loop (scalar chains:
// on llvmpipe the invocations are the SIMD lanes; 16 chains cover fma latency on any width), UNROLL rounds per loop
// iteration: with one, llvmpipe's per-iteration loop overhead held the kernel to about half its rate (24-29 against
// 51 GFLOP/s on a 2-core Xeon), so the conv kernels read above 100% of it. The same kernel as bench/ceilings.mjs.
const CHAINS = 16;
const FMA_ITERS = 512;
const UNROLL = 4;
const FMA_INVOCATIONS = 16384;
const chains = Array.from({ length: CHAINS }, (_, i) => `a${i}`);
const FMA_WGSL = `
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t = flat_workgroup(wid, nwg) * {{WG}}u + lid;
  let s = f32(t) * 1e-9;
  let m = 0.9999 + s;
  ${chains.map((n, i) => `var ${n} = s + ${i}.0;`).join(' ')}
  for (var i = 0u; i < ${FMA_ITERS}u; i++) {
${Array.from({ length: UNROLL }, () => '    ' + chains.map((n) => `${n} = fma(${n}, m, 1e-4);`).join(' ')).join('\n')}
  }
  // the store keeps every chain live
  out[t] = ${chains.join(' + ')};
}`;
const COPY_WGSL = `
@group(0) @binding(0) var<uniform> p: Params;
struct Params { n: u32 }
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> src: array<vec4<f32>>;
@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = flat_workgroup(wid, nwg) * {{WG}}u + lid;
  if (i < p.n) {
    dst[i] = src[i];
  }
}`;
/** 32 MiB read and 32 MiB written: far past the caches, ~40 ms on a 2-core software adapter. */
const COPY_VEC4S = 2 ** 21;

export interface Ceilings {
  /** GFLOP/s of the FMA-bound kernel. */
  fma: number;
  /** GB/s (bytes read + written) of the copy kernel. */
  copy: number;
}

async function medianGpuUs(run: () => void): Promise<number> {
  run(); // compiles the pipeline
  await vg.sync();
  const times: number[] = [];
  for (let i = 0; i < 3; i++) times.push((await vg.profile(run)).report.totalUs);
  return times.sort((a, b) => a - b)[1];
}

/** The adapter's FMA and copy ceilings, measured now (about a second on a software adapter). */
export async function measureCeilings(): Promise<Ceilings> {
  const fmaKernel = kernel('profile.ceiling.fma', () => FMA_WGSL);
  const out = vg.zeros([FMA_INVOCATIONS]);
  const fmaUs = await medianGpuUs(() => dispatch(fmaKernel, [out.buffer('profile')], null, grid1d(FMA_INVOCATIONS / fmaKernel.workgroupSize)));
  out.dispose();
  const copyKernel = kernel('profile.ceiling.copy', () => COPY_WGSL);
  const src = vg.zeros([4 * COPY_VEC4S]);
  const dst = vg.zeros([4 * COPY_VEC4S]);
  const copyUs = await medianGpuUs(() =>
    dispatch(copyKernel, [dst.buffer('profile'), src.buffer('profile')], { n: COPY_VEC4S }, grid1d(COPY_VEC4S / copyKernel.workgroupSize)),
  );
  src.dispose();
  dst.dispose();
  return { fma: (FMA_INVOCATIONS * FMA_ITERS * UNROLL * CHAINS * 2) / fmaUs / 1e3, copy: (COPY_VEC4S * 32) / copyUs / 1e3 };
}

export interface ProfileSummary {
  recipe: string;
  settings: Config;
  adapter: string;
  steps: number;
  /** The higher of the two measurements of each ceiling (a ceiling measured under a passing load reads low). */
  ceilings: Ceilings;
  /** The ceilings measured before and after the profiled steps. */
  ceilingRuns: [Ceilings, Ceilings];
  /** GPU time of each profiled step (sum of its kernels), ms. */
  stepGpuMs: number[];
  /** Wall time of each profiled step, ms. */
  stepWallMs: number[];
  totalMs: number;
  kernels: (KernelSummary & { gflops: number | null; gbps: number; fmaFraction: number | null; copyFraction: number })[];
}

const STEP_MARK = 'step ';

/**
 * One warm-up step and `steps` profiled steps of `recipe` with `config`; returns the summary and the Chrome trace of
 * the profiled steps.
 */
export async function profileRecipe(recipe: Recipe, config: Config, steps: number): Promise<{ summary: ProfileSummary; trace: string }> {
  const info = await vg.init();
  const before = await measureCeilings();
  const total = steps + 1;
  const wall: number[] = [];
  let last = performance.now();
  let done = 0;
  const { report } = await vg.profile((mark) =>
    recipe.train({
      // one step more than run, so the loop stops through shouldStop, before its final evaluation
      config: { ...config, steps: total + 1 },
      outDir: null,
      shouldStop: () => done >= total,
      onStep: (step) => {
        done = step;
        const now = performance.now();
        wall.push(now - last);
        last = now;
        mark(`${STEP_MARK}${step}`);
      },
    }),
  );
  const after = await measureCeilings();
  const ceilings = { fma: Math.max(before.fma, after.fma), copy: Math.max(before.copy, after.copy) };
  const ends = report.marks.filter((m) => m.name.startsWith(STEP_MARK)).map((m) => m.index);
  if (ends.length !== total) throw new vg.VoxgradError(`profile: expected ${total} training steps of ${recipe.name}, saw ${ends.length}`);
  const perStep: KernelTiming[][] = [];
  for (let s = 1; s < total; s++) perStep.push(report.kernels.slice(ends[s - 1], ends[s]));
  const kernels = perStep.flat();
  const { summary, totalUs } = summarize(kernels);
  const rated = summary.map((k) => {
    const gflops = k.flops === null ? null : k.flops / k.totalUs / 1e3;
    const gbps = k.bytes / k.totalUs / 1e3;
    return { ...k, gflops, gbps, fmaFraction: gflops === null ? null : gflops / ceilings.fma, copyFraction: gbps / ceilings.copy };
  });
  const t0 = kernels[0]?.startUs ?? 0;
  const trace = JSON.stringify({
    displayTimeUnit: 'ms',
    traceEvents: [
      ...kernels.map((k) => ({
        name: k.name,
        cat: 'gpu',
        ph: 'X',
        ts: k.startUs - t0,
        dur: k.durationUs,
        pid: 1,
        tid: 1,
        args: { flops: k.flops, bytes: k.bytes },
      })),
      ...perStep.map((ks, s) => ({ name: `step ${s + 2}`, cat: 'step', ph: 'i', s: 'g', ts: (ks[0]?.startUs ?? t0) - t0, pid: 1, tid: 1 })),
    ],
  });
  return {
    summary: {
      recipe: recipe.name,
      settings: config,
      adapter: `${info.vendor} ${info.architecture} (${info.description})`,
      steps,
      ceilings,
      ceilingRuns: [before, after],
      stepGpuMs: perStep.map((ks) => ks.reduce((s, k) => s + k.durationUs, 0) / 1000),
      stepWallMs: wall.slice(1),
      totalMs: totalUs / 1000,
      kernels: rated,
    },
    trace,
  };
}

const pct = (f: number | null) => (f === null ? '–' : `${(100 * f).toFixed(1)}%`);
const fixed = (v: number | null, d: number) => (v === null ? '–' : v.toFixed(d));

/** The summary as Markdown: settings, ceilings, per-step times, the top kernels and every kernel's row. */
export function summaryMarkdown(s: ProfileSummary): string {
  const median = (xs: number[]) => {
    const v = [...xs].sort((a, b) => a - b);
    const m = v.length >> 1;
    return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
  };
  const top = s.kernels.slice(0, 3).map((k, i) => {
    const bound = k.fmaFraction !== null && k.fmaFraction >= k.copyFraction ? `${pct(k.fmaFraction)} of the FMA ceiling` : `${pct(k.copyFraction)} of the copy ceiling`;
    return `${i + 1}. \`${k.name}\`: ${(k.totalUs / 1000).toFixed(1)} ms (${pct(k.totalUs / 1000 / s.totalMs)} of GPU time), ${bound}`;
  });
  const rows = s.kernels.map(
    (k) =>
      `| \`${k.name.replaceAll('|', '\\|')}\` | ${k.count} | ${(k.totalUs / 1000).toFixed(3)} | ${pct(k.totalUs / 1000 / s.totalMs)} | ` +
      `${fixed(k.flops === null ? null : k.flops / 1e9, 3)} | ${(k.bytes / 1e9).toFixed(3)} | ${fixed(k.gflops, 2)} | ${pct(k.fmaFraction)} | ` +
      `${k.gbps.toFixed(2)} | ${pct(k.copyFraction)} |`,
  );
  // families: the kernel name up to its first '.' or '[' (conv, matmul, map, gridSample, ...)
  const families = new Map<string, { ms: number; calls: number }>();
  for (const k of s.kernels) {
    const f = k.name.split(/[.[]/)[0];
    const e = families.get(f) ?? { ms: 0, calls: 0 };
    e.ms += k.totalUs / 1000;
    e.calls += k.count;
    families.set(f, e);
  }
  const familyRows = [...families.entries()].sort((a, b) => b[1].ms - a[1].ms).map(([f, e]) => `| ${f} | ${e.calls} | ${e.ms.toFixed(1)} | ${pct(e.ms / s.totalMs)} |`);
  const flops = s.kernels.reduce((t, k) => t + (k.flops ?? 0), 0);
  const bytes = s.kernels.reduce((t, k) => t + k.bytes, 0);
  const calls = s.kernels.reduce((t, k) => t + k.count, 0);
  return [
    `# voxgrad profile: ${s.recipe}`,
    '',
    `- adapter: ${s.adapter}`,
    `- settings: \`${JSON.stringify(s.settings)}\``,
    `- ceilings measured in this run, the higher of the measurements before and after the steps: FMA ${s.ceilings.fma.toFixed(1)} GFLOP/s ` +
      `(${s.ceilingRuns.map((c) => c.fma.toFixed(1)).join(' / ')}), copy ${s.ceilings.copy.toFixed(2)} GB/s (${s.ceilingRuns.map((c) => c.copy.toFixed(2)).join(' / ')})`,
    `- ${s.steps} profiled step${s.steps === 1 ? '' : 's'} after one warm-up step: GPU time per step (sum of its kernels) ` +
      `${s.stepGpuMs.map((v) => v.toFixed(1)).join(', ')} ms (median ${median(s.stepGpuMs).toFixed(1)}); wall time per step ` +
      `${s.stepWallMs.map((v) => v.toFixed(1)).join(', ')} ms (the step times every pass on its own, with timestamp queries)`,
    '',
    '## Top kernels',
    '',
    ...top,
    '',
    '## By kernel family',
    '',
    '| family | calls | GPU ms | share |',
    '| --- | --- | --- | --- |',
    ...familyRows,
    '',
    '## Every kernel (all profiled steps)',
    '',
    'GFLOP and GB from each kernel family\'s cost model (– : none declared; bytes then are the bound storage, an upper bound).',
    '',
    '| kernel | calls | GPU ms | share | GFLOP | GB | GFLOP/s | % FMA | GB/s | % copy |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...rows,
    `| **total** | ${calls} | ${s.totalMs.toFixed(3)} | 100.0% | ${(flops / 1e9).toFixed(3)} | ${(bytes / 1e9).toFixed(3)} | ` +
      `${(flops / s.totalMs / 1e6).toFixed(2)} | ${pct(flops / s.totalMs / 1e6 / s.ceilings.fma)} | ${(bytes / s.totalMs / 1e6).toFixed(2)} | ` +
      `${pct(bytes / s.totalMs / 1e6 / s.ceilings.copy)} |`,
    '',
  ].join('\n');
}

/** The command: profiles, prints the summary and writes it with the trace to `out`. */
export async function runProfile(recipe: Recipe, config: Config, opts: { steps?: string; out?: string }): Promise<number> {
  const steps = opts.steps === undefined ? 3 : Number(opts.steps);
  if (!Number.isInteger(steps) || steps < 1) throw new vg.VoxgradError(`profile: --steps must be a positive integer, got '${opts.steps}'`);
  const out = opts.out ?? `profiles/${recipe.name}-${new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15)}`;
  const { steps: _ignored, ...settings } = config;
  const { summary, trace } = await profileRecipe(recipe, settings, steps);
  const md = summaryMarkdown(summary);
  await mkdir(out, { recursive: true });
  await writeFile(`${out}/trace.json.gz`, gzipSync(trace));
  await writeFile(`${out}/summary.md`, md);
  await writeFile(`${out}/summary.json`, JSON.stringify(summary, null, 1));
  console.log(md);
  console.error(`wrote ${out}/summary.md, ${out}/summary.json and ${out}/trace.json.gz (open in ui.perfetto.dev)`);
  return 0;
}
