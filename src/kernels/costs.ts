/**
 * Cost models (FLOPs and bytes per dispatch, for vg.profile and `voxgrad profile`) of convolution, matmul,
 * elementwise maps, reductions, normalisation, copies and fills (gridSample and interpolate declare theirs in their
 * own files).
 * Each reads the uniforms its kernel is dispatched with. An fma counts 2 FLOPs; bytes are the compulsory traffic
 * where the uniforms give it, else the bound storage (at most 1/8 above the tensors' bytes: pool size classes).
 * Loaded for its declarations by src/ops.ts, so every vg.profile report carries them.
 */
import { declareCost } from '../engine/profiler-hooks.js';

type Uniforms = Readonly<Record<string, number | readonly number[]>>;
const num = (u: Uniforms, k: string): number => (typeof u[k] === 'number' ? (u[k] as number) : NaN);
const vec = (u: Uniforms, k: string, i: number): number => (Array.isArray(u[k]) ? (u[k] as number[])[i] ?? NaN : NaN);
/** A cost whose uniforms were not all there (another kernel version): no rate rather than a wrong one. */
const checked = (flops: number, bytes: number) => (Number.isFinite(flops) && Number.isFinite(bytes) ? { flops, bytes } : null);

// conv.wgsl, forward and transposed (input gradient): every dst element of the phase sums `units` kernel rows of
// nk.z taps; nCols / wBlocks = N · nq.x · nq.y lines of nq.z positions (shaders/conv.wgsl's header)
const gatherConv = (u: Uniforms, _g: readonly number[], bytes: number) =>
  checked(2 * num(u, 'dstC') * (num(u, 'nCols') / num(u, 'wBlocks')) * vec(u, 'nq', 2) * num(u, 'units') * vec(u, 'nk', 2), bytes);
declareCost('conv.forward', gatherConv);
declareCost('conv.transposed', gatherConv);
// conv_wgrad.wgsl: each of the `total` weight elements sums over N · Do · Ho · Wo output voxels
declareCost('conv.wgrad', (u, _g, bytes) =>
  checked(2 * num(u, 'total') * num(u, 'N') * vec(u, 'y', 0) * vec(u, 'y', 1) * vec(u, 'y', 2), bytes),
);
declareCost('conv.wgrad.finish', (u, _g, bytes) => checked(num(u, 'total') * (num(u, 'nSplit') - 1), bytes));
declareCost('conv.pack', (_u, _g, bytes) => ({ flops: 0, bytes }));

// matmul.wgsl: batch (grid z) products of M x K by K x N
declareCost('matmul', (u, grid, bytes) => checked(2 * num(u, 'M') * num(u, 'N') * num(u, 'K') * (grid[2] ?? 1), bytes));

// elementwise maps: n outputs, one FLOP per operator or function call of the expression in the kernel name
declareCost('map[', (u, _g, bytes, name) => {
  const expr = name.slice(4, name.lastIndexOf(']'));
  const ops = (expr.match(/[-+*/<>]|[a-z_][a-z0-9_]*\(/gi) ?? []).length;
  return checked(num(u, 'n') * Math.max(1, ops), bytes);
});

// reductions: one combine per element read; reads nOut · redSize elements (per split), writes nOut
declareCost('reduce.', (u) => checked(num(u, 'nOut') * num(u, 'redSize'), 4 * num(u, 'nOut') * (num(u, 'redSize') + 1)));

// batch/instance/group norm passes: statistics (sum and sum of squares) and the affine apply, counted as 2 FLOPs
// per bound f32 element; bytes as bound
declareCost('norm.', (_u, _g, bytes) => ({ flops: bytes / 2, bytes }));

declareCost('copy.', (_u, _g, bytes) => ({ flops: 0, bytes }));
// value fills count their elements in `total` (n: invocations of 4), arange in n
declareCost('fill.', (u) => checked(0, 4 * num(u, typeof u.total === 'number' ? 'total' : 'n')));
