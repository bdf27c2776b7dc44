/**
 * Convolutions with PyTorch semantics: conv1d/2d/3d (x [N, Cin, ...], weight [Cout, Cin/groups, ...k]) and
 * convTranspose1d/2d/3d (weight [Cin, Cout/groups, ...k]), with stride, padding, dilation, groups and bias; each
 * also takes an unbatched input (rank one less), as PyTorch does. Padding is symmetric (a number or one per dim),
 * or 'valid' (none) or 'same' (stride 1 only; an odd total pads one more at the end, as PyTorch does).
 * Asymmetric padding is the caller's: pad the input with vg.pad first, as one would with F.pad.
 *
 * Internally a geometry (Geom) describes a conv from x-space (its input) to y-space (its output); a transposed
 * conv is described by the conv whose input gradient it is (x-space = its output, y-space = its input).
 * Two kernels serve every rank (1-D and 2-D run as 3-D with size-1 leading spatial dims); a third serves 2-D 3x3 convs:
 * - shaders/conv.wgsl, an implicit GEMM (output channels x output voxels per workgroup, weights staged in
 *   workgroup memory, register-blocked). Forward it is the conv forward and a transposed conv's input gradient;
 *   transposed it gathers per x-space element, one dispatch per stride phase: the conv input gradient and the
 *   transposed-conv forward. No atomics, so results are deterministic.
 * - shaders/conv_wgrad.wgsl, the weight gradient: a reduction over batch and output voxels split into ranges,
 *   whose partial sums its FINISH entry adds in a fixed order (deterministic too).
 * - shaders/conv_winograd.wgsl, F(2x2, 3x3) for 2-D 3x3 stride-1 convs and their input gradients, when asked for
 *   (`algorithm: 'winograd'`) or when vg.tune measured it faster for the problem (src/engine/tuner.ts, which also
 *   picks the implicit GEMM's register tiles).
 * Bias gradients are sums of the output gradient (vg.sum). An `activation` (ReLU, LeakyReLU) is applied in the
 * output write of the conv forward.
 *
 * The WGSL is generated per configuration (rows and voxels per invocation, the window geometry along W) and
 * compiled on first use; on CPU adapters (llvmpipe) that compile takes seconds for the large register blocks, so
 * ops below smallWork() multiply-adds take small blocks (see the shader headers for why the kernels look as they do).
 */
import convWgsl from '../../shaders/conv.wgsl';
import wgradWgsl from '../../shaders/conv_wgrad.wgsl';
import winogradWgsl from '../../shaders/conv_winograd.wgsl';
import { bindingLimit } from '../engine/binding.js';
import { gpu } from '../engine/device.js';
import { tuned } from '../engine/tuner.js';
import { fail, fmtShape } from '../engine/errors.js';
import { FLOAT, defineOp } from '../engine/op.js';
import { dispatch, grid1d, kernel } from '../engine/runtime.js';
import { stridesOf } from '../engine/shape.js';
import { Tensor, shapeSize, tidy } from '../engine/tensor.js';
import { ceilDiv, describe, emptyTensor, expectFloat, expectTensor } from './common.js';
import { fillInto, sliceAxis, stridedCopy, writeAxis } from './base.js';
import { mapExpr } from './elementwise.js';
import { add } from './math.js';
import { sum } from './reduce.js';
import { squeeze, unsqueeze } from './shape.js';

/**
 * An activation applied in the conv's output write (voxgrad's extension of PyTorch's conv): the same result as
 * vg.relu / vg.leakyRelu on the conv's output, without a second pass over it. LeakyReLU's slope must be >= 0
 * (PyTorch's default 0.01), so that the output's sign tells the backward which side each input was on.
 */
export type ConvActivation = { kind: 'relu' } | { kind: 'leakyRelu'; negativeSlope?: number };

/**
 * How a conv computes (voxgrad's extension): 'direct' the implicit GEMM, 'winograd' F(2x2, 3x3) (2-D 3x3 convs of
 * stride 1, dilation 1, one group, padding <= 2, fitting one storage binding; their input gradient too), 'auto'
 * (default) the direct kernel until vg.tune has measured both for a large problem where Winograd applies.
 */
export type ConvAlgorithm = 'auto' | 'direct' | 'winograd';

export interface ConvOptions {
  bias?: Tensor | null;
  activation?: ConvActivation | null;
  algorithm?: ConvAlgorithm;
  stride?: number | number[];
  padding?: number | number[] | 'same' | 'valid';
  dilation?: number | number[];
  groups?: number;
}

export interface ConvTransposeOptions {
  bias?: Tensor | null;
  stride?: number | number[];
  padding?: number | number[];
  outputPadding?: number | number[];
  dilation?: number | number[];
  groups?: number;
}

type Vec3 = [number, number, number];

/** A conv from x-space [N, xC, xS] to y-space [N, yC, yS]; spatial lists are 3-D (leading 1s / 0s for 1-D, 2-D). */
interface Geom {
  nd: number;
  N: number;
  groups: number;
  xC: number;
  xS: Vec3;
  yC: number;
  yS: Vec3;
  k: Vec3;
  s: Vec3;
  p: Vec3;
  d: Vec3;
}

/** A per-dim list of nd values brought to 3-D by leading `fill`s. */
function to3(v: readonly number[], fill: number): Vec3 {
  return [...Array(3 - v.length).fill(fill), ...v] as Vec3;
}

const spatial = (g: Geom, s: Vec3) => s.slice(3 - g.nd);

// ---- kernels ------------------------------------------------------------------------------------------------------

/** Rows per invocation: the block of output channels each invocation accumulates (a power of two up to 16). */
function rowsPerInvocation(rows: number): number {
  let tm = 1;
  while (tm < rows && tm < 16) tm *= 2;
  return tm;
}

/**
 * Invocations per workgroup of the gather conv: 64, or for fewer columns (a deep layer's 1x1 to 4x4 maps) the next
 * power of two from 8 up, since every invocation loops over the whole reduction whether it owns a column or not: a
 * 512-channel 3x3 conv on a 2x2 map (2 columns) kept 2 of 64 invocations busy and ran at 0.03 GFLOP/s.
 */
function gatherThreads(nCols: number): number {
  // SwiftShader keeps one pipeline per tile (each compile there costs seconds at first use in a page)
  if (gpu().info.architecture === 'swiftshader') return Math.min(64, gpu().maxWorkgroupSize);
  let t = 8;
  while (t < nCols && t < 64) t *= 2;
  return Math.min(t, gpu().maxWorkgroupSize);
}

/**
 * Whether the conv kernels broadcast a tap's weights (gather conv) or a voxel's gy rows (weight gradient) across
 * subgroup lanes instead of loading them in every lane (shaders/conv.wgsl, conv_wgrad.wgsl: SUBGROUPS).
 */
function subgroupWeights(): boolean {
  return gpu().subgroupLanes >= 8;
}

/**
 * Floats of workgroup memory a staged tile may use: the adapter's limit (16 KiB or more), up to 32 KiB; on SwiftShader
 * (Chromium's software fallback) up to 4 KiB, because its pipeline compile time grows with the workgroup array's
 * length: the gather conv's forward and transposed kernels compiled in 8.6 s and 7.1 s with 32 KiB, 1.0 s each with
 * 4 KiB (bench/web-compile.mjs, docs/browser.md), at every first use in a page; its steps ran faster too. The
 * smaller tile splits a conv's reduction into more dispatches.
 */
function tileFloats(): number {
  const { info, limits } = gpu();
  return Math.min(limits.maxComputeWorkgroupStorageSize, info.architecture === 'swiftshader' ? 4096 : 32768) / 4;
}

/** How TM rows' values (a tap's weights, a voxel's gy) are held as one WGSL value, so that one load fetches them. */
function weightType(tm: number): { type: string; get: (m: number, v: string) => string } {
  if (tm >= 8) return { type: `mat${tm / 4}x4<f32>`, get: (m, v) => `${v}[${m >> 2}][${m & 3}]` };
  if (tm >= 2) return { type: `vec${tm}<f32>`, get: (m, v) => `${v}[${m}]` };
  return { type: 'f32', get: (_m, v) => v };
}

/**
 * Rows r < R of each of G groups of `src` regrouped into blocks of tm: out [G, rowBlocks, ...inner, tm], where
 * element (g, r, i) of src is at offset + g*groupStride + r*rowStride + i·innerStrides, and rows past R are zero.
 * The kernels then load one block's tm values with a single {{WT}} load.
 */
function packRows(
  op: string,
  src: Tensor,
  G: number,
  R: number,
  tm: number,
  at: { offset: number; groupStride: number; rowStride: number; inner: readonly number[]; innerStrides: readonly number[] },
): Tensor {
  const rowBlocks = ceilDiv(R, tm);
  const out = emptyTensor(op, [G, rowBlocks, ...at.inner, tm], 'f32');
  const innerDst = stridesOf([...at.inner, tm]).slice(0, -1);
  const block = shapeSize(at.inner) * tm;
  const full = Math.floor(R / tm);
  if (R % tm !== 0) fillInto(out, 0);
  if (full > 0)
    stridedCopy(
      op,
      out,
      src,
      [G, full, tm, ...at.inner],
      { offset: at.offset, strides: [at.groupStride, tm * at.rowStride, at.rowStride, ...at.innerStrides] },
      { offset: 0, strides: [rowBlocks * block, block, 1, ...innerDst] },
    );
  if (R % tm !== 0)
    stridedCopy(
      op,
      out,
      src,
      [G, R % tm, ...at.inner],
      { offset: at.offset + full * tm * at.rowStride, strides: [at.groupStride, at.rowStride, ...at.innerStrides] },
      { offset: full * block, strides: [rowBlocks * block, 1, ...innerDst] },
    );
  return out;
}

/**
 * The weights one phase reads, as [G, rowBlocks, C, nkd, nkh, nkw, TM]. Forward rows are the conv's output
 * channels; transposed rows are its input channels (w's first two axes swapped).
 */
function stageWeights(op: string, transposed: boolean, w: Tensor, g: Geom, ph: Phase, tm: number): Tensor {
  const G = g.groups;
  const [Ry, Rx] = [g.yC / G, g.xC / G];
  const [R, C] = transposed ? [Rx, Ry] : [Ry, Rx];
  const [, Kh, Kw] = g.k;
  const kv = g.k[0] * Kh * Kw;
  // the forward reads w as it is stored, [G*R, C*kv]: rows of a [1, G*R, C*kv] tensor
  if (!transposed) return packChannels(op, w, G, R, 1, C * kv, tm);
  return packRows(op, w, G, R, tm, {
    offset: (ph.k0[0] * Kh + ph.k0[1]) * Kw + ph.k0[2],
    groupStride: R * C * kv,
    rowStride: transposed ? kv : C * kv,
    inner: [C, ...ph.nk],
    innerStrides: [transposed ? R * kv : kv, ph.kStep[0] * Kh * Kw, ph.kStep[1] * Kw, ph.kStep[2]],
  });
}

/** One phase of shaders/conv.wgsl: which dst positions it writes and how they map onto src, per dim (d, h, w). */
interface Phase {
  nq: Vec3;
  dstStep: Vec3;
  dstPhase: Vec3;
  /** taps per dim, the first tap index and the step between taps */
  nk: Vec3;
  k0: Vec3;
  kStep: Vec3;
  /** src = q * qA + qB + j * tapStep (d, h); along w, qB is the window start for q = 0 */
  qA: Vec3;
  qB: Vec3;
  tapStep: Vec3;
  /** w window: src step per voxel and per tap (compile-time); rev: taps walk the window backwards */
  xs: number;
  xt: number;
  rev: boolean;
}

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
const mod = (a: number, b: number) => ((a % b) + b) % b;

/** The conv forward: every dst position, every tap. */
function forwardPhase(g: Geom): Phase {
  return {
    nq: g.yS,
    dstStep: [1, 1, 1],
    dstPhase: [0, 0, 0],
    nk: g.k,
    k0: [0, 0, 0],
    kStep: [1, 1, 1],
    qA: g.s,
    qB: g.p.map((p) => -p) as Vec3,
    tapStep: g.d,
    xs: g.s[2],
    xt: g.d[2],
    rev: false,
  };
}

/**
 * The transposed direction, x-space position i = q * s + r (r the phase per dim): tap k reaches y-space position
 * (i + p - k*d) / s when that divides exactly, i.e. for k = k0, k0 + kStep, ... with kStep = s / gcd(s, d);
 * consecutive such taps move the source by kStep*d/s.
 */
function transposedPhases(g: Geom): Phase[] {
  const perDim = [0, 1, 2].map((i) => {
    const s = g.s[i];
    const kStep = s / gcd(s, g.d[i]);
    return Array.from({ length: s }, (_, r) => {
      const nq = Math.max(0, Math.ceil((g.xS[i] - r) / s));
      let k0 = 0;
      while (k0 < g.k[i] && mod(r + g.p[i] - k0 * g.d[i], s) !== 0) k0++;
      const nk = k0 < g.k[i] ? Math.floor((g.k[i] - 1 - k0) / kStep) + 1 : 0;
      const b = nk > 0 ? (r + g.p[i] - k0 * g.d[i]) / s : 0;
      const dq = (kStep * g.d[i]) / s;
      return { r, nq, k0, nk, kStep, b, dq };
    });
  });
  const phases: Phase[] = [];
  for (const d of perDim[0])
    for (const h of perDim[1])
      for (const w of perDim[2]) {
        if (d.nq === 0 || h.nq === 0 || w.nq === 0) continue;
        const dims = [d, h, w];
        phases.push({
          nq: [d.nq, h.nq, w.nq],
          dstStep: g.s,
          dstPhase: [d.r, h.r, w.r],
          nk: [d.nk, h.nk, w.nk],
          k0: [d.k0, h.k0, w.k0],
          kStep: [d.kStep, h.kStep, w.kStep],
          qA: [1, 1, 1],
          // along w the window starts at the last tap's source (taps then walk it backwards)
          qB: [d.b, h.b, w.b - Math.max(0, w.nk - 1) * w.dq],
          tapStep: dims.map((e) => -e.dq) as Vec3,
          xs: 1,
          xt: w.dq,
          rev: true,
        });
      }
  return phases;
}

/**
 * WGSL for one configuration of shaders/conv.wgsl: the unrolled accumulator, window, tap and store blocks. With
 * `kw` > 0 the kernel has exactly kw taps along W (walking the window backwards where `rev`), unrolled: the window
 * holds every value of the kernel row and each accumulator takes its kw fmas in a row, so a spilled accumulator is
 * loaded and stored once per kernel row instead of once per tap (llvmpipe spills a 16x16 tile's 256 accumulators;
 * ordered by accumulator a 16x16 register tile ran 1.5x faster than ordered by tap in a micro-benchmark). kw = 0: a
 * loop over the runtime p.nk.z taps that shifts the window from tap to tap.
 */
function gemmSource(tm: number, tn: number, xs: number, xt: number, rev: boolean, threads: number, subgroups: boolean, kw = 0, vec4Pad = -1, vec4Store = false): string {
  const wt = weightType(tm);
  const nq = tn / 4;
  const len = (tn - 1) * xs + 1;
  const fresh = Math.min(xt, len);
  const vec = (q: number, off = 0) => `vec4<f32>(${[0, 1, 2, 3].map((i) => `x${(4 * q + i) * xs + off}`).join(', ')})`;
  const acc = Array.from({ length: tm }, (_, m) => '  ' + Array.from({ length: nq }, (_, q) => `var a${m}_${q} = vec4<f32>(0.0);`).join(' '));
  const start = rev && kw === 0 ? `srcW0 + i32(nkw - 1u) * ${xt}` : 'srcW0';
  const winLen = kw > 0 ? len + (kw - 1) * xt : len;
  // with vec4Pad >= 0 the tile's own tn * xs positions (from wb * tn * xs, 4-aligned in the row) come from vec4 loads,
  // the vec4Pad values before and the rest of the window after them from scalar ones (shaders/conv.wgsl, VEC4_WINDOW)
  const block = vec4Pad >= 0 ? tn * xs : 0;
  const win: string[] = [];
  if (block) win.push(`    let at4 = rowOff / 4u + wb * ${block / 4}u;`);
  for (let q = 0; q < block / 4; q++) win.push(`    let v${q} = ld4(at4 + ${q}u, rowOk && wb * ${block}u + ${4 * q}u < p.src.z);`);
  for (let i = 0; i < winLen; i++) {
    const b = i - vec4Pad;
    win.push(
      block && b >= 0 && b < block
        ? `    let x${i} = v${b >> 2}.${'xyzw'[b & 3]};`
        : `    ${kw > 0 ? 'let' : 'var'} x${i} = ld(rowOff, ${start} + ${i}, rowOk);`,
    );
  }
  const taps: string[] = [];
  if (kw > 0) {
    // every tap's weights, then one accumulator after another through all kw taps
    for (let j = 0; j < kw; j++) {
      if (subgroups) {
        taps.push(`    let wi${j} = u32(wRow + ${j} * p.wK);`);
        for (let b = 0; b < tm; b += 8) taps.push(`    let wl${b}_${j} = wload(wi${j} + ${b}u * p.wM, r0 + lane + ${b}u);`);
      } else taps.push(`    let wt${j} = As[u * ${kw}u + ${j}u];`);
    }
    for (let m = 0; m < tm; m++) {
      for (let j = 0; j < kw; j++)
        taps.push(`    let w${m}_${j} = ${subgroups ? `subgroupBroadcast(wl${m & ~7}_${j}, ${m & 7}u)` : wt.get(m, `wt${j}`)};`);
      for (let q = 0; q < nq; q++) {
        let sum = `a${m}_${q}`;
        for (let j = 0; j < kw; j++) sum = `fma(vec4<f32>(w${m}_${j}), ${vec(q, (rev ? kw - 1 - j : j) * xt)}, ${sum})`;
        taps.push(`    a${m}_${q} = ${sum};`);
      }
    }
  } else {
    taps.push('    for (var jw = 0u; jw < nkw; jw++) {');
    if (subgroups) {
      // lane i holds rows i and i + 8 of the tap (shaders/conv.wgsl, SUBGROUPS)
      taps.push('      let wi = u32(wRow + i32(jw) * p.wK);');
      for (let b = 0; b < tm; b += 8) taps.push(`      let wl${b} = wload(wi + ${b}u * p.wM, r0 + lane + ${b}u);`);
      for (let m = 0; m < tm; m++) taps.push(`      let w${m} = subgroupBroadcast(wl${m & ~7}, ${m & 7}u);`);
    } else {
      taps.push('      let wt = As[u * nkw + jw];');
      for (let m = 0; m < tm; m++) taps.push(`      let w${m} = ${wt.get(m, 'wt')};`);
    }
    for (let m = 0; m < tm; m++)
      taps.push('      ' + Array.from({ length: nq }, (_, q) => `a${m}_${q} = fma(vec4<f32>(w${m}), ${vec(q)}, a${m}_${q});`).join(' '));
    // move the window to the next tap: keep the values it still covers, load the ones that enter
    taps.push('      if (jw + 1u < nkw) {');
    taps.push(`        let at = srcW0 + ${rev ? `(i32(nkw) - 2 - i32(jw)) * ${xt}` : `i32(jw + 1u) * ${xt}`};`);
    if (rev) {
      for (let i = len - 1; i >= fresh; i--) taps.push(`        x${i} = x${i - xt};`);
      for (let i = 0; i < fresh; i++) taps.push(`        x${i} = ld(rowOff, at + ${i}, rowOk);`);
    } else {
      for (let i = 0; i + fresh < len; i++) taps.push(`        x${i} = x${i + xt};`);
      for (let i = len - fresh; i < len; i++) taps.push(`        x${i} = ld(rowOff, at + ${i}, rowOk);`);
    }
    taps.push('      }', '    }');
  }
  // the first slice adds the bias, later ones what dst holds (loaded only there: a load site costs llvmpipe a loop
  // over the lanes, a large share of a small-Cin conv); the last applies the activation
  const store4 = Array.from({ length: nq }, (_, q) =>
    [
      `      if (left > ${4 * q}u) {`,
      `        let o${q} = orow / 4u + ${q}u;`,
      `        var v${q} = vec4<f32>(b) + a0_${q};`,
      `        if (acc) { v${q} = dst[o${q}] + a0_${q}; }`,
      `        dst[o${q}] = select(v${q}, v${q} * p.slope, vec4<bool>(act) & (v${q} < vec4<f32>(0.0)));`,
      '      }',
    ].join('\n'),
  );
  const store = Array.from({ length: tn }, (_, t) =>
    [
      `      if (left > ${t}u) {`,
      `        let o${t} = orow + ${t}u * p.dstStep.z;`,
      `        var v${t} = b + a0_${t >> 2}[${t & 3}];`,
      `        if (acc) { v${t} = dst[o${t}] + a0_${t >> 2}[${t & 3}]; }`,
      `        dst[o${t}] = select(v${t}, v${t} * p.slope, act && v${t} < 0.0);`,
      '      }',
    ].join('\n'),
  );
  const shift = Array.from({ length: tm - 1 }, (_, m) => '    ' + Array.from({ length: nq }, (_, q) => `a${m}_${q} = a${m + 1}_${q};`).join(' '));
  return convWgsl
    .replace('{{ACC}}', acc.join('\n'))
    .replace('{{WINDOW}}', win.join('\n'))
    .replace('{{TAPS}}', taps.join('\n'))
    .replace('{{STORE}}', (vec4Store ? store4 : store).join('\n'))
    .replace('{{SHIFT}}', shift.join('\n'))
    .replaceAll('{{WT}}', wt.type)
    .replace('{{AS_LEN}}', String(tileFloats() / tm))
    .replaceAll('{{TM}}', String(tm))
    .replaceAll('{{TN}}', String(tn))
    .replaceAll('{{XS}}', String(xs))
    .replaceAll('{{XT}}', String(xt))
    .replaceAll('{{THREADS}}', String(threads));
}

/**
 * The window's left padding when its tile's own positions can load as vec4s (shaders/conv.wgsl, VEC4_WINDOW), else
 * -1: stride 1 or 2 and dilation 1 along W with the taps unrolled, rows of a multiple of 4 (so the tile's first
 * position, wb * tn * stride, is 4-aligned in memory and a vec4 lies wholly inside or outside the row), and the
 * tile's tn * stride positions inside the window (which starts `pad` before them). On llvmpipe 4 vec4 loads of 16
 * cached floats took 0.65x the time of 16 scalar loads.
 */
function vec4WindowPad(ph: Phase, kw: number, tn: number, srcW: number): number {
  const pad = -ph.qB[2];
  const window = (tn - 1) * ph.xs + 1 + (kw - 1) * ph.xt;
  const fits = pad >= 0 && pad + tn * ph.xs <= window && (tn * ph.xs) % 4 === 0;
  return kw > 0 && (ph.xs === 1 || ph.xs === 2) && ph.xt === 1 && srcW % 4 === 0 && fits ? pad : -1;
}

/** Taps along W up to which a window's taps are unrolled (gemmSource): every conv the papers train is 3 wide. */
const UNROLL_TAPS = 3;

/**
 * Multiply-adds below which a conv takes the small 4x4 register tile: 2e6, but 2e7 on SwiftShader (Chromium's
 * software fallback), where the larger tiles' pipelines compile several times slower: with 2e6 there, the browser
 * suite's app lost its device in registration and fine-tuning (the cause was not isolated further).
 */
function smallWork(): number {
  return gpu().info.architecture === 'swiftshader' ? 2e7 : 2e6;
}

/** Register tiles (rows x voxels per invocation) shaders/conv.wgsl may take on large problems; vg.tune measures them. */
const GEMM_TILES = ['16x16', '16x8', '16x4', '8x8', '8x4', '4x32', '4x16', '4x8', '4x4', '2x16', '2x32', '1x32'];

interface Tile {
  tm: number;
  tn: number;
}

const parseTile = (v: string): Tile => {
  const [tm, tn] = v.split('x').map(Number);
  return { tm, tn };
};

/**
 * The register tile of one gather conv. Small problems take 4x4 (cheap to compile); larger ones by default as many
 * rows as the conv has (at least 4, up to 16) and 8 voxels (16 for a forward with subgroup weights), which measured fastest
 * on llvmpipe (docs/benchmarks.md, docs/performance.md),
 * and convs writing 1 or 2 channels (the input gradient of a 1- or 2-channel input) 2 rows and 16 voxels: with 4
 * rows, half the fmas would be padding (1.6x faster on llvmpipe for conv3d 1x2x64³ -> 16's input gradient); convs
 * writing 3 or 4 channels 4 rows and 16 voxels where the window loads as vec4s; unless vg.tune() measured the tiles
 * for this problem on this adapter (src/engine/tuner.ts).
 */
function gemmTile(op: string, transposed: boolean, w: Tensor, g: Geom, flipped = false): Tile {
  const [dstC, dstS, srcC, srcS] = transposed ? [g.xC, g.xS, g.yC, g.yS] : [g.yC, g.yS, g.xC, g.xS];
  const rows = dstC / g.groups;
  const taps = (g.k[0] * g.k[1] * g.k[2]) / (transposed ? g.s[0] * g.s[1] * g.s[2] : 1);
  const work = g.N * dstS[0] * dstS[1] * dstS[2] * dstC * (srcC / g.groups) * taps;
  if (work < smallWork()) return { tm: 4, tn: 4 };
  const maxTm = rowsPerInvocation(Math.max(rows, 4));
  // with subgroup weights, a stride-1 forward on lines of 16+ takes 16 rows x 16 voxels: 0.81-0.86x the time of
  // 16x8 on llvmpipe (bench/ab.mjs conv cases); the transposed direction measured 1.02-1.24x with it, and a stride-2
  // window of 16 voxels is too long
  const wide = maxTm === 16 && subgroupWeights() && !transposed && g.s[2] === 1 && dstS[2] >= 16;
  // convs writing 3 or 4 channels (a 3-D flow field) take 16 voxels where windows load as vec4s: 16 -> 3 at 64³
  // 0.73-0.78x the time of 4x8 (A/B, both orders); 2 rows measured the same with 16 or 32 voxels
  const long = maxTm === 4 && rows > 2 && !transposed && g.s[2] === 1 && srcS[2] % 4 === 0 && dstS[2] >= 16;
  const fallback = rows <= 2 ? '2x16' : long ? '4x16' : wide ? '16x16' : `${maxTm}x8`;
  // tiles of fewer than 4 rows only for convs of 1 or 2 rows
  const variants = GEMM_TILES.filter((t) => parseTile(t).tm <= maxTm && (rows <= 2 || parseTile(t).tm >= 4));
  const key =
    `conv.${transposed ? 'transposed' : 'forward'} N${g.N} G${g.groups} ${g.xC}x${g.xS.join('x')} -> ${g.yC}x${g.yS.join('x')}` +
    ` k${g.k.join('x')} s${g.s.join('x')} p${g.p.join('x')} d${g.d.join('x')}`;
  const wShape = [...w.shape];
  const chosen = tuned(key, variants, fallback, () => {
    // zeros of the problem's shapes: the tiles' speed does not depend on the values
    const s = emptyTensor(op, [g.N, srcC, ...spatial(g, srcS)], 'f32');
    const wt = emptyTensor(op, wShape, 'f32');
    fillInto(s, 0);
    fillInto(wt, 0);
    return {
      run: (v) => gatherConv(op, transposed, s, wt, null, g, null, parseTile(v), flipped).dispose(),
      dispose: () => (s.dispose(), wt.dispose()),
    };
  });
  return parseTile(chosen);
}

/**
 * shaders/conv.wgsl. Forward (transposed = false): y-space dst from x-space src. Transposed: x-space dst from
 * y-space src, one phase per stride phase, each through its own packed copy of the taps it uses. Each phase's
 * reduction runs in slices that fit workgroup memory, one dispatch each, added up in order. `tile` overrides the
 * register tile (the tuner's trials).
 */
function gatherConv(
  op: string,
  transposed: boolean,
  src: Tensor,
  w: Tensor,
  bias: Tensor | null,
  g: Geom,
  slope: number | null,
  tile: Tile = gemmTile(op, transposed, w, g),
  flipped = false,
): Tensor {
  const [dstC, dstS, srcC, srcS] = transposed ? [g.xC, g.xS, g.yC, g.yS] : [g.yC, g.yS, g.xC, g.xS];
  const out = emptyTensor(op, [g.N, dstC, ...spatial(g, dstS)], 'f32');
  if (out.size === 0) return out;
  const rows = dstC / g.groups;
  const C = srcC / g.groups;
  const TM = tile.tm;
  const rowBlocks = ceilDiv(rows, TM);
  const slots = tileFloats() / TM;
  const sg = subgroupWeights();
  for (const ph of transposed ? transposedPhases(g) : [forwardPhase(g)]) {
    const nkw = ph.nk[2];
    if (!sg && nkw > slots) fail(op, `a kernel of ${g.k[2]} taps along the last dim is wider than this kernel supports (${slots}); use a smaller kernel`);
    const units = nkw === 0 ? 0 : C * ph.nk[0] * ph.nk[1];
    // with subgroups the forward reads the weights as stored (flipped: a transposed conv's, see flippedForward);
    // the transposed direction reads a packed copy
    const direct = sg && !transposed;
    const a = units > 0 && !direct ? stageWeights(op, transposed, w, g, ph, TM) : w;
    const kv = ph.nk[0] * ph.nk[1] * nkw;
    const wLayout = !direct
      ? { wGroup: rowBlocks * units * nkw * TM, wBlock: units * nkw * TM, wM: 1, wOff: 0, wC: kv * TM, wK: TM }
      : !flipped
        ? { wGroup: rows * C * kv, wBlock: TM * C * kv, wM: C * kv, wOff: 0, wC: kv, wK: 1 }
        : { wGroup: C * rows * kv, wBlock: TM * kv, wM: kv, wOff: kv - 1, wC: rows * kv, wK: -1 };
    // short lines take 4 voxels per invocation whatever the tile
    const TN = ph.nq[2] <= 4 ? 4 : tile.tn;
    const wBlocks = ceilDiv(ph.nq[2], TN);
    const nCols = g.N * ph.nq[0] * ph.nq[1] * wBlocks;
    const threads = gatherThreads(nCols);
    const colBlocks = ceilDiv(nCols, threads);
    const blocks = colBlocks * rowBlocks * g.groups;
    // a window of up to UNROLL_TAPS taps along W is unrolled (gemmSource)
    const kw = nkw <= UNROLL_TAPS ? nkw : 0;
    const v4 = vec4WindowPad(ph, kw, TN, srcS[2]);
    // whole vec4 stores: consecutive dst positions in rows of a multiple of 4, tiles of a multiple of 4
    const s4 = ph.dstStep[2] === 1 && ph.dstPhase[2] === 0 && dstS[2] % 4 === 0 && TN % 4 === 0;
    const key =
      `conv.${transposed ? 'transposed' : 'forward'}.${TM}x${TN}.w${ph.xs}.${ph.xt}${kw ? `.k${kw}` : ''}${v4 >= 0 ? `.v4p${v4}` : ''}` +
      `${s4 ? '.s4' : ''}.${threads}${sg ? '.sg' : ''}`;
    const k = kernel(key, () => gemmSource(TM, TN, ph.xs, ph.xt, ph.rev, threads, sg, kw, v4, s4), {
      defines: { SUBGROUPS: sg, VEC4_WINDOW: v4 >= 0, VEC4_STORE: s4 },
    });
    // slices of whole kernel rows that fit the staged tile, summed in order into dst (with subgroups nothing is
    // staged: one slice)
    const slice = sg ? Math.max(1, units) : Math.max(1, Math.floor(slots / Math.max(1, nkw)));
    for (let u0 = 0; u0 === 0 || u0 < units; u0 += slice) {
      // the slice's first kernel row (c, jd, jh)
      const [c0, jd0, jh0] = units > 0 ? [Math.floor(u0 / (ph.nk[0] * ph.nk[1])), Math.floor(u0 / ph.nk[1]) % ph.nk[0], u0 % ph.nk[1]] : [0, 0, 0];
      const bound = [out.buffer(op), src.buffer(op), a.buffer(op), (bias ?? w).buffer(op)];
      dispatch(
        k,
        v4 >= 0 ? [...bound, src.buffer(op)] : bound,
        {
          rows,
          rowBlocks,
          blocks,
          colBlocks,
          nCols,
          wBlocks,
          C,
          srcC,
          dstC,
          aRow: units * nkw,
          ...wLayout,
          u0,
          units: Math.min(slice, units - u0),
          c0,
          jd0,
          jh0,
          accumulate: u0 > 0 ? 1 : 0,
          hasBias: bias ? 1 : 0,
          act: slope !== null && u0 + slice >= units ? 1 : 0,
          slope: slope ?? 0,
          src: srcS,
          dst: dstS,
          nq: ph.nq,
          dstStep: ph.dstStep,
          dstPhase: ph.dstPhase,
          nk: ph.nk,
          qA: ph.qA,
          qB: ph.qB,
          tapStep: ph.tapStep,
        },
        grid1d(blocks),
      );
    }
    if (a !== w) a.dispose();
  }
  return out;
}

// ---- Winograd F(2x2, 3x3) -----------------------------------------------------------------------------------------

/** Whether shaders/conv_winograd.wgsl computes this conv (forward) and its input gradient (padding <= 2). */
function winogradApplies(g: Geom): boolean {
  return (
    g.nd === 2 &&
    g.groups === 1 &&
    g.k[1] === 3 &&
    g.k[2] === 3 &&
    g.s.every((v) => v === 1) &&
    g.d.every((v) => v === 1) &&
    g.p[1] <= 2 &&
    g.p[2] <= 2
  );
}

/** The WGSL of shaders/conv_winograd.wgsl's main entry for tm output channels per invocation (tm = 4, 8 or 16). */
function winogradSource(tm: number, threads: number): string {
  const wt = weightType(tm);
  const nq = tm / 4;
  const col = (k: number, q: number) => (tm >= 8 ? `u${k}[${q}]` : `u${k}`);
  const r4 = [0, 1, 2, 3];
  const acc = r4.flatMap((i) => r4.map((j) => '  ' + Array.from({ length: nq }, (_, q) => `var m${i * 4 + j}_${q} = vec4<f32>(0.0);`).join(' ')));
  const patch = [
    ...r4.map((i) => '    ' + r4.map((j) => `let d${i}${j} = ld(plane, y0 + ${i}, x0 + ${j}, colOk);`).join(' ')),
    // B^T d, then (B^T d) B
    ...r4.map((j) => `    let t0${j} = d0${j} - d2${j}; let t1${j} = d1${j} + d2${j}; let t2${j} = d2${j} - d1${j}; let t3${j} = d1${j} - d3${j};`),
    ...r4.map((i) => `    let v${i}0 = t${i}0 - t${i}2; let v${i}1 = t${i}1 + t${i}2; let v${i}2 = t${i}2 - t${i}1; let v${i}3 = t${i}1 - t${i}3;`),
  ];
  const points = r4.flatMap((i) =>
    r4.map((j) => {
      const k = i * 4 + j;
      return `    let u${k} = Us[at + ${k}u]; ` + Array.from({ length: nq }, (_, q) => `m${k}_${q} = fma(${col(k, q)}, vec4<f32>(v${i}${j}), m${k}_${q});`).join(' ');
    }),
  );
  const out: string[] = [];
  for (let q = 0; q < nq; q++) {
    const m = (i: number, j: number) => `m${i * 4 + j}_${q}`;
    // A^T M, then (A^T M) A: the 2x2 outputs of 4 channels at once
    for (const j of r4) out.push(`  let s0${j}_${q} = ${m(0, j)} + ${m(1, j)} + ${m(2, j)}; let s1${j}_${q} = ${m(1, j)} - ${m(2, j)} - ${m(3, j)};`);
    out.push(`  let y00_${q} = s00_${q} + s01_${q} + s02_${q}; let y01_${q} = s01_${q} - s02_${q} - s03_${q};`);
    out.push(`  let y10_${q} = s10_${q} + s11_${q} + s12_${q}; let y11_${q} = s11_${q} - s12_${q} - s13_${q};`);
    for (const e of r4) {
      const r = `r0 + ${4 * q + e}u`;
      out.push(
        `  if (${r} < p.rows) {`,
        `    let b = select(0.0, bias[select(0u, ${r}, p.hasBias != 0u)], p.hasBias != 0u);`,
        `    let o = ((n * p.dstC + ${r}) * p.Ho + oy) * p.Wo + ox;`,
        `    put(o, y00_${q}[${e}], b, acc, act);`,
        `    if (okX) { put(o + 1u, y01_${q}[${e}], b, acc, act); }`,
        `    if (okY) { put(o + p.Wo, y10_${q}[${e}], b, acc, act); }`,
        `    if (okX && okY) { put(o + p.Wo + 1u, y11_${q}[${e}], b, acc, act); }`,
        '  }',
      );
    }
  }
  const put = [
    '// dst[o] = (the first slice: bias, else dst[o]) + v, then the activation on the last slice',
    'fn put(o: u32, v: f32, b: f32, acc: bool, act: bool) {',
    '  let s = select(b, dst[o], acc) + v;',
    '  dst[o] = select(s, s * p.slope, act && s < 0.0);',
    '}',
  ].join('\n');
  return winogradWgsl
    .replace('{{ACC}}', acc.join('\n'))
    .replace('{{PATCH}}', patch.join('\n'))
    .replace('{{POINTS}}', points.join('\n'))
    .replace('{{OUTPUT}}', out.join('\n'))
    .replace('#endif', `${put}\n#endif`)
    .replaceAll('{{WT}}', wt.type)
    .replace('{{US_LEN}}', String(tileFloats() / tm))
    .replaceAll('{{TM}}', String(tm))
    .replaceAll('{{THREADS}}', String(threads));
}

/**
 * A 2-D 3x3 stride-1 conv by shaders/conv_winograd.wgsl. Forward (flip = false): y-space dst from x; flip = true:
 * the input gradient, x-space dst from gy through the transposed, rotated kernel with padding 2 - p.
 */
function winogradConv(op: string, flip: boolean, src: Tensor, w: Tensor, bias: Tensor | null, g: Geom, slope: number | null, tm: number): Tensor {
  const [dstC, dstS, srcC, srcS] = flip ? [g.xC, g.xS, g.yC, g.yS] : [g.yC, g.yS, g.xC, g.xS];
  const out = emptyTensor(op, [g.N, dstC, ...spatial(g, dstS)], 'f32');
  if (out.size === 0) return out;
  const rowBlocks = ceilDiv(dstC, tm);
  const u = emptyTensor(op, [rowBlocks, srcC, 16, tm], 'f32');
  if (dstC % tm !== 0) fillInto(u, 0);
  const [H, W, Ho, Wo] = [srcS[1], srcS[2], dstS[1], dstS[2]];
  const uniforms = {
    rows: dstC,
    rowBlocks,
    srcC,
    dstC,
    H,
    W,
    Ho,
    Wo,
    padH: flip ? 2 - g.p[1] : g.p[1],
    padW: flip ? 2 - g.p[2] : g.p[2],
    flip: flip ? 1 : 0,
    total: dstC * srcC,
  };
  const tk = kernel(`conv.winograd.transform.${tm}`, () => winogradWgsl.replaceAll('{{TM}}', String(tm)), { defines: { TRANSFORM: true } });
  dispatch(tk, [u.buffer(op), w.buffer(op)], uniforms, grid1d(ceilDiv(dstC * srcC, 64)));
  const threads = Math.min(64, gpu().maxWorkgroupSize);
  const [tilesH, tilesW] = [ceilDiv(Ho, 2), ceilDiv(Wo, 2)];
  const nCols = g.N * tilesH * tilesW;
  const colBlocks = ceilDiv(nCols, threads);
  const blocks = colBlocks * rowBlocks;
  const k = kernel(`conv.winograd.${tm}.${threads}`, () => winogradSource(tm, threads));
  // channel slices whose transformed weights fit workgroup memory, summed in order into dst
  const slice = Math.floor(tileFloats() / (16 * tm));
  for (let c0 = 0; c0 === 0 || c0 < srcC; c0 += slice)
    dispatch(
      k,
      [out.buffer(op), src.buffer(op), u.buffer(op), (bias ?? w).buffer(op)],
      {
        ...uniforms,
        blocks,
        colBlocks,
        nCols,
        tilesH,
        tilesW,
        C: Math.min(slice, srcC - c0),
        c0,
        accumulate: c0 > 0 ? 1 : 0,
        hasBias: bias ? 1 : 0,
        act: slope !== null && c0 + slice >= srcC ? 1 : 0,
        slope: slope ?? 0,
      },
      grid1d(blocks),
    );
  u.dispose();
  return out;
}

/** Workgroups the weight-gradient split aims for: enough to fill a large GPU, few enough to keep partials small. */
const WGRAD_TARGET_WORKGROUPS = 128;
const WGRAD_MIN_UNITS = 8;
const WGRAD_PARTIAL_BYTES = 32 << 20;
/** Accumulators per invocation the weight gradient allows itself (rows x taps). */
const WGRAD_ACC = 160;

/**
 * Output voxels per step of the weight gradient's walk (wgradSource): 4 for 16 rows or fewer at stride 1 with subgroup
 * broadcasts (3-D 1x16x64³ -> 16 on llvmpipe: 0.71-0.85x the time of 2 in three A/B runs, where two copies of one
 * build read 0.95), and for 32 rows where the step loads vec4s (`vec4`: 3-D 1x32x32³ -> 32 0.76 / 0.88x the time of 2
 * in the two orders of an A/B); else 2 (4 measured 1.01-1.20x with 32 rows of scalar loads, stride 2 or the packed
 * gy rows).
 */
function wgradVoxels(tm: number, sw: number, subgroups: boolean, vec4: boolean): number {
  return (tm <= 16 || (tm === 32 && vec4)) && sw === 1 && subgroups ? 4 : 2;
}

/** WGSL for one configuration of shaders/conv_wgrad.wgsl (the unrolled blocks; FINISH needs none). */
function wgradSource(tm: number, kh: number, kw: number, sw: number, dw: number, threads: number, subgroups: boolean, U: number, vec4Pad = -1): string {
  const gt = weightType(tm);
  const len = (kw - 1) * dw + 1;
  const hs = [...Array(kh).keys()];
  const acc: string[] = [];
  for (let m = 0; m < tm; m++) for (const h of hs) acc.push('  ' + Array.from({ length: kw }, (_, w) => `var a${m}_${h}_${w} = 0.0;`).join(' '));
  const rows = hs.map((h) =>
    [
      `    let iy${h} = i32(oy * p.stride.y) - p.pad.y + i32(kh0 + ${h}u) * p.dil.y;`,
      `    let ok${h} = zOk && iy${h} >= 0 && iy${h} < i32(p.x.y);`,
      `    let ro${h} = select(0u, (zOff + u32(iy${h})) * p.x.z, ok${h});`,
    ].join('\n'),
  );
  // U voxels per step, each accumulator taking its U fmas in a row (a spilled accumulator is loaded and stored once
  // per step; the additions stay in voxel order); the window holds the step's taps and moves U * sw per step
  const winLen = len + (U - 1) * sw;
  const step = Math.min(U * sw, winLen);
  const gLoads = (v: string, u: number, ind: string) =>
    subgroups
      ? Array.from({ length: Math.ceil(tm / 8) }, (_, i) => `${ind}let gl${8 * i}_${u} = gload(gBase + ${v}${u ? ` + ${u}u` : ''} + ${8 * i}u * gS, gRow + ${8 * i}u);`)
      : [`${ind}let g_${u} = gt[gBase + ${v}${u ? ` + ${u}u` : ''}];`];
  const gOf = (m: number, u: number) => (subgroups ? `subgroupBroadcast(gl${m & ~7}_${u}, ${m & 7}u)` : gt.get(m, `g_${u}`));
  /** The fmas of `n` voxels; voxel u's tap w reads x(h, u * sw + w * dw). */
  const fmas = (n: number, x: (h: number, i: number) => string, ind: string) => {
    const out: string[] = [];
    for (let m = 0; m < tm; m++) {
      for (let u = 0; u < n; u++) out.push(`${ind}let g${m}_${u} = ${gOf(m, u)};`);
      for (const h of hs)
        for (let w = 0; w < kw; w++) {
          let sum = `a${m}_${h}_${w}`;
          for (let u = 0; u < n; u++) sum = `fma(g${m}_${u}, ${x(h, u * sw + w * dw)}, ${sum})`;
          out.push(`${ind}a${m}_${h}_${w} = ${sum};`);
        }
    }
    return out;
  };
  const voxels: string[] = [];
  if (vec4Pad >= 0) {
    // (shaders/conv_wgrad.wgsl, VEC4) the step's 4 voxels' gy rows one vec4 load each, and the x window as the
    // aligned vec4s covering it (window value i at position ow0 + v - vec4Pad + i), one new vec4 per step
    const lo = Math.floor(-vec4Pad / 4);
    const nv = Math.floor((winLen - 1 - vec4Pad) / 4) - lo + 1;
    for (const h of hs) for (let k = 0; k < nv; k++) voxels.push(`    var xv${h}_${k} = ldx4(ro${h}, i32(ow0) + ${4 * (k + lo)}, ok${h});`);
    voxels.push('    var v = 0u;', '    for (; v + 4u <= vb; v += 4u) {');
    for (let b = 0; b < tm; b += 8) {
      voxels.push(`      let gq${b} = gload4((gBase + v + ${b}u * gS) / 4u, gRow + ${b}u);`);
      for (let u = 0; u < 4; u++) voxels.push(`      let gl${b}_${u} = gq${b}.${'xyzw'[u]};`);
    }
    for (const h of hs)
      for (let i = 0; i < winLen; i++) {
        const j = i - vec4Pad;
        voxels.push(`      let x${h}_${i} = xv${h}_${Math.floor(j / 4) - lo}.${'xyzw'[((j % 4) + 4) % 4]};`);
      }
    voxels.push(...fmas(4, (h, i) => `x${h}_${i}`, '      '));
    for (const h of hs) {
      for (let k = 0; k + 1 < nv; k++) voxels.push(`      xv${h}_${k} = xv${h}_${k + 1};`);
      voxels.push(`      xv${h}_${nv - 1} = ldx4(ro${h}, i32(ow0 + v) + ${4 * (nv + lo)}, ok${h});`);
    }
    voxels.push('    }');
  } else {
    for (const h of hs) for (let i = 0; i < winLen; i++) voxels.push(`    var x${h}_${i} = ld(ro${h}, w0 + ${i}, ok${h});`);
    voxels.push('    var v = 0u;', `    for (; v + ${U}u <= vb; v += ${U}u) {`);
    for (let u = 0; u < U; u++) voxels.push(...gLoads('v', u, '      '));
    voxels.push(...fmas(U, (h, i) => `x${h}_${i}`, '      '));
    voxels.push(`      let at = w0 + i32((v + ${U}u) * p.stride.z);`);
    for (const h of hs) {
      for (let i = 0; i + step < winLen; i++) voxels.push(`      x${h}_${i} = x${h}_${i + step};`);
      for (let i = winLen - step; i < winLen; i++) voxels.push(`      x${h}_${i} = ld(ro${h}, at + ${i}, ok${h});`);
    }
    voxels.push('    }');
  }
  // the unit's last vb % U voxels one at a time, each loading its own window
  voxels.push('    for (; v < vb; v++) {', '      let at = w0 + i32(v * p.stride.z);');
  for (const h of hs) for (let i = 0; i < len; i++) voxels.push(`      let y${h}_${i} = ld(ro${h}, at + ${i}, ok${h});`);
  voxels.push(...gLoads('v', 0, '      '));
  voxels.push(...fmas(1, (h, i) => `y${h}_${i}`, '      '));
  voxels.push('    }');
  const store: string[] = [];
  for (const h of hs) for (let w = 0; w < kw; w++) store.push(`      partial[orow + ${h * kw + w}u] = a0_${h}_${w};`);
  const shift: string[] = [];
  for (let m = 0; m + 1 < tm; m++) for (const h of hs) shift.push('    ' + Array.from({ length: kw }, (_, w) => `a${m}_${h}_${w} = a${m + 1}_${h}_${w};`).join(' '));
  return wgradWgsl
    .replace('{{ACC}}', acc.join('\n'))
    .replace('{{ROWS}}', rows.join('\n'))
    .replace('{{VOXELS}}', voxels.join('\n'))
    .replace('{{STORE}}', store.join('\n'))
    .replace('{{SHIFT}}', shift.join('\n'))
    .replaceAll('{{GT}}', gt.type)
    .replaceAll('{{TM}}', String(tm))
    .replaceAll('{{KH}}', String(kh))
    .replaceAll('{{KW}}', String(kw))
    .replaceAll('{{SW}}', String(sw))
    .replaceAll('{{DW}}', String(dw))
    .replaceAll('{{THREADS}}', String(threads));
}

/**
 * t [N, G*R, S] (channels-first) as [G, rowBlocks, N, S] elements of tm rows (rows past R zero), by
 * shaders/conv_wgrad.wgsl's PACK entry: one load then brings a voxel's (or a weight tap's) tm rows.
 */
function packChannels(op: string, t: Tensor, G: number, R: number, N: number, S: number, tm: number): Tensor {
  const rowBlocks = ceilDiv(R, tm);
  const total = G * rowBlocks * N * S;
  const out = emptyTensor(op, [G, rowBlocks, N, S, tm], 'f32');
  const k = kernel(`conv.pack.${tm}`, () => wgradPackSource(tm), { defines: { PACK: true } });
  dispatch(k, [out.buffer(op), t.buffer(op)], { rows: R, rowBlocks, yC: G * R, N, total, y: [1, 1, S] }, grid1d(ceilDiv(total, 64)));
  return out;
}

/** shaders/conv_wgrad.wgsl's PACK entry: the TM rows of one voxel gathered into one element. */
function wgradPackSource(tm: number): string {
  const gt = weightType(tm);
  const loads = Array.from({ length: tm }, (_, m) => `  let v${m} = select(0.0, gy[base + min(r0 + ${m}u, p.rows - 1u) * S], r0 + ${m}u < p.rows);`);
  const vals = Array.from({ length: tm }, (_, m) => `v${m}`).join(', ');
  return wgradWgsl.replace('{{PACK}}', [...loads, `  gt[i] = ${gt.type}(${vals});`].join('\n')).replaceAll('{{GT}}', gt.type).replaceAll('{{TM}}', String(tm));
}

/** Voxels along W per unit of the weight gradient (the granularity of the split along W). */
const WGRAD_WB = 64;

/** d loss / d weight of the conv `g` from its input x (x-space) and output gradient gy (y-space): [yC, xC/G, ...k]. */
function weightGrad(op: string, x: Tensor, gy: Tensor, g: Geom): Tensor {
  const rows = g.yC / g.groups;
  const C = g.xC / g.groups;
  const [Kd, Kh, Kw] = g.k;
  const K = C * Kd * Kh * Kw;
  const wShape = [g.yC, C, ...spatial(g, g.k)];
  const small = g.N * g.yS[0] * g.yS[1] * g.yS[2] * g.yC * K < smallWork();
  // 32 rows for a 3x3(x3) kernel of 32+ output channels: each voxel's x window then feeds twice the fmas (0.86-0.94x
  // the time of 16 rows on llvmpipe, once 1.01); their gy rows arrive only through subgroup broadcasts (no 32-row
  // pack type)
  const wide = !small && rows >= 32 && Kh * Kw <= 9 && subgroupWeights();
  let TM = small ? 4 : wide ? 32 : rowsPerInvocation(Math.max(rows, 4));
  while (TM > 1 && TM * Kw > WGRAD_ACC) TM /= 2;
  // an invocation takes all kernel rows of its (c, kd), sharing each staged gy load, when the accumulators fit
  const KH = !small && (wide || TM * Kh * Kw <= WGRAD_ACC) ? Kh : 1;
  const khGroups = Kh / KH;
  const lanes = C * Kd * khGroups;
  // every invocation walks its split whether it owns a kernel row or not: above 32 lanes, workgroups of a multiple
  // of 8 invocations that split the lanes evenly (48 kernel rows: one workgroup of 48, not 64 with 16 idle)
  const threads = Math.min(lanes <= 32 ? 32 : 8 * ceilDiv(ceilDiv(lanes, ceilDiv(lanes, 64)), 8), gpu().maxWorkgroupSize);
  // few kernel rows (small Cin): the workgroup's other invocations take further splits
  const subs = lanes < threads ? Math.floor(threads / lanes) : 1;
  // with several splits per workgroup, subgroups must not straddle two of them
  const sg = subgroupWeights() && (subs === 1 || lanes % gpu().subgroupMaxLanes === 0);
  if (!sg) TM = Math.min(TM, 16);
  const wb = Math.min(WGRAD_WB, g.yS[2]);
  const owBlocks = ceilDiv(g.yS[2], wb);
  const units = g.N * g.yS[0] * g.yS[1] * owBlocks;
  const colBlocks = ceilDiv(lanes, threads);
  const rowBlocks = ceilDiv(rows, TM);
  const blocks = colBlocks * rowBlocks * g.groups;
  const total = g.yC * K;
  const maxSplit = Math.max(1, Math.floor(WGRAD_PARTIAL_BYTES / (total * 4)));
  let nSplit = Math.max(1, Math.min(ceilDiv(WGRAD_TARGET_WORKGROUPS, blocks) * subs, Math.floor(units / WGRAD_MIN_UNITS), maxSplit));
  const unitsPerSplit = ceilDiv(units, nSplit);
  nSplit = ceilDiv(units, unitsPerSplit);
  const wgSplits = ceilDiv(nSplit, subs);
  const out = emptyTensor(op, wShape, 'f32');
  if (total === 0) return out;
  const partial = nSplit === 1 ? out : emptyTensor(op, [nSplit, total], 'f32');
  // gy row-blocked (a kernel of its own: the generic strided copy decomposes every index and costs as much as
  // the gradient)
  // with subgroups the kernel reads gy as it is
  const gt = sg ? gy : packChannels(op, gy, g.groups, rows, g.N, g.yS[0] * g.yS[1] * g.yS[2], TM);
  // 4-voxel steps of stride 1 and dilation 1 on rows of a multiple of 4 (x and gy; units then start 4-aligned)
  // load as vec4s (0.65x the time of scalar loads of the same floats on llvmpipe)
  const aligned = sg && g.s[2] === 1 && g.d[2] === 1 && g.yS[2] % 4 === 0 && g.xS[2] % 4 === 0 && g.p[2] <= 3;
  const U = wgradVoxels(TM, g.s[2], sg, aligned);
  const v4 = aligned && U === 4 ? g.p[2] : -1;
  const key = `conv.wgrad.${TM}.${KH}x${Kw}.${g.s[2]}.${g.d[2]}.${threads}.u${U}${v4 >= 0 ? `.v4p${v4}` : ''}${sg ? '.sg' : ''}`;
  const k = kernel(key, () => wgradSource(TM, KH, Kw, g.s[2], g.d[2], threads, sg, U, v4), { defines: { SUBGROUPS: sg, VEC4: v4 >= 0 } });
  const uniforms = {
    rows,
    rowBlocks,
    blocks,
    colBlocks,
    lanes,
    khGroups,
    C,
    xC: g.xC,
    yC: g.yC,
    K,
    units,
    unitsPerSplit,
    owBlocks,
    wb,
    total,
    nSplit,
    subs,
    wgSplits,
    N: g.N,
    x: g.xS,
    y: g.yS,
    kern: g.k,
    stride: g.s,
    pad: g.p,
    dil: g.d,
  };
  const bound = [partial.buffer(op), x.buffer(op), gt.buffer(op)];
  dispatch(k, v4 >= 0 ? [...bound, x.buffer(op), gt.buffer(op)] : bound, uniforms, grid1d(blocks * wgSplits));
  if (gt !== gy) gt.dispose();
  if (nSplit > 1) {
    const fin = kernel('conv.wgrad.finish', () => wgradWgsl.replaceAll('{{THREADS}}', '64'), { defines: { FINISH: true } });
    dispatch(fin, [out.buffer(op), partial.buffer(op)], uniforms, grid1d(ceilDiv(total, 64)));
    partial.dispose();
  }
  return out;
}

/** d loss / d bias: the output gradient summed over batch and space. */
function biasGrad(gy: Tensor): Tensor {
  return sum(gy, { dim: [0, ...gy.shape.slice(2).map((_, i) => i + 2)] });
}

// ---- volumes past one storage binding -------------------------------------------------------------------------------
// When a tensor of a conv is larger than one binding, the conv runs in slabs along its outermost spatial dim (depth
// in 3-D): each slab's source rows (with the halo its taps reach) are copied into a tensor of their own, the unchanged
// kernels run on them under a geometry shifted to the slab, and the slab's result is copied into place. Every output
// element sums the same taps in the same order as the whole conv, so the result is identical; only the weight
// gradient adds per-slab partial sums (a different order).

/** A slab: dst rows [d0, d1) along the split dim, the src rows [s0, s1) they read, and the geometry of the pair. */
interface Slab {
  d0: number;
  d1: number;
  s0: number;
  s1: number;
  geom: Geom;
}

/** The slab of dst rows [d0, d1) (dst = y-space forward, x-space transposed) along Geom dim `a`. */
function slabOf(g: Geom, transposed: boolean, a: number, d0: number, d1: number): Slab {
  const [s, p, reach] = [g.s[a], g.p[a], (g.k[a] - 1) * g.d[a]];
  const srcRows = transposed ? g.yS[a] : g.xS[a];
  let s0: number;
  let s1: number;
  let pad: number;
  if (!transposed) {
    // y row q reads x rows q*s - p + k*d
    s0 = Math.min(Math.max(0, d0 * s - p), srcRows - 1);
    s1 = Math.max(s0 + 1, Math.min(srcRows, (d1 - 1) * s - p + reach + 1));
    pad = p - d0 * s + s0;
  } else {
    // x row i receives y rows q with q*s - p + k*d = i; s0*s <= d0 + p keeps the shifted padding non-negative
    s0 = Math.min(Math.max(0, Math.min(Math.ceil((d0 + p - reach) / s), Math.floor((d0 + p) / s))), srcRows - 1);
    s1 = Math.max(s0 + 1, Math.min(srcRows, Math.floor((d1 - 1 + p) / s) + 1));
    pad = p + d0 - s0 * s;
  }
  const set = (v: Vec3, at: number): Vec3 => v.map((e, i) => (i === a ? at : e)) as Vec3;
  const [xRows, yRows] = transposed ? [d1 - d0, s1 - s0] : [s1 - s0, d1 - d0];
  return { d0, d1, s0, s1, geom: { ...g, xS: set(g.xS, xRows), yS: set(g.yS, yRows), p: set(g.p, pad) } };
}

/**
 * The slabs covering all dst rows of g whose src and dst tensors (`srcC` and `dstC` channels; `dstPad` rounds the
 * dst channels up as the weight gradient's packed copy does) each fit one binding; null when the whole conv fits.
 */
function slabPlan(op: string, g: Geom, transposed: boolean, dstPad = 1): Slab[] | null {
  const [dstC, dstS, srcC, srcS] = transposed ? [g.xC, g.xS, g.yC, g.yS] : [g.yC, g.yS, g.xC, g.xS];
  const limit = bindingLimit();
  const a = 3 - g.nd;
  const plane = (S: Vec3) => S.reduce((m, v, i) => (i === a ? m : m * v), 1);
  const dstRowBytes = g.N * ceilDiv(dstC, dstPad) * dstPad * plane(dstS) * 4;
  const srcRowBytes = g.N * srcC * plane(srcS) * 4;
  if (dstRowBytes * dstS[a] <= limit && srcRowBytes * srcS[a] <= limit) return null;
  const fits = (sl: Slab) => (sl.d1 - sl.d0) * dstRowBytes <= limit && (sl.s1 - sl.s0) * srcRowBytes <= limit;
  const slabs: Slab[] = [];
  for (let d0 = 0; d0 < dstS[a]; ) {
    let rows = Math.max(1, Math.min(dstS[a] - d0, Math.floor(limit / dstRowBytes)));
    while (rows > 0 && !fits(slabOf(g, transposed, a, d0, d0 + rows))) rows--;
    if (rows === 0)
      fail(
        op,
        `one row along the first spatial dim of its ${transposed ? 'input-gradient' : 'output'} slab needs ` +
          `${Math.max(dstRowBytes, srcRowBytes * (srcS[a] > 1 ? Math.min(srcS[a], g.k[a] * g.d[a]) : 1))} bytes with its halo, ` +
          `more than one storage binding on this adapter (maxStorageBufferBindingSize ${limit} bytes); ` +
          'use fewer channels or a smaller batch, or crop the in-plane dims',
      );
    slabs.push(slabOf(g, transposed, a, d0, d0 + rows));
    d0 += rows;
  }
  return slabs;
}

/**
 * Output channels per invocation when Winograd computes this gather (a conv forward, or with `transposed` its input
 * gradient), else 0: as `algo` says, and for 'auto' on large problems where it applies when vg.tune measured it
 * faster than the direct kernel for the problem.
 */
function winogradRows(op: string, transposed: boolean, w: Tensor, g: Geom, algo: ConvAlgorithm): number {
  if (algo === 'direct' || !winogradApplies(g)) return 0;
  const [dstC, dstS, srcC] = transposed ? [g.xC, g.xS, g.yC] : [g.yC, g.yS, g.xC];
  const tm = Math.min(16, rowsPerInvocation(Math.max(dstC, 4)));
  if (algo === 'winograd') return tm;
  if (g.N * dstS[1] * dstS[2] * dstC * srcC * 9 < smallWork()) return 0;
  const key =
    `conv.algorithm.${transposed ? 'transposed' : 'forward'} N${g.N} ${g.xC}x${g.xS.slice(1).join('x')} -> ${g.yC}x${g.yS.slice(1).join('x')}` +
    ` p${g.p.slice(1).join('x')}`;
  const wShape = [...w.shape];
  // direct by default: on llvmpipe this Winograd kernel ran 1.5x slower than the direct one for all its 2.25x fewer
  // multiplies (8x32x64² -> 32; it loads 16 transformed weights per channel and tile where the direct kernel's 9
  // taps serve 8 voxels), so only a measurement (vg.tune) picks it
  const chosen = tuned(key, ['direct', 'winograd'], 'direct', () => {
    const [srcC2, srcS] = transposed ? [g.yC, g.yS] : [g.xC, g.xS];
    const s = emptyTensor(op, [g.N, srcC2, ...spatial(g, srcS)], 'f32');
    const wt = emptyTensor(op, wShape, 'f32');
    fillInto(s, 0);
    fillInto(wt, 0);
    return {
      run: (v) => (v === 'winograd' ? winogradConv(op, transposed, s, wt, null, g, null, tm) : gatherConv(op, transposed, s, wt, null, g, null)).dispose(),
      dispose: () => (s.dispose(), wt.dispose()),
    };
  });
  return chosen === 'winograd' ? tm : 0;
}

/**
 * A conv forward (or with `transposed` its input gradient) by Winograd or the direct gather, the latter in slabs when
 * a tensor is larger than one binding; `slope` (non-null) fuses a (Leaky)ReLU.
 */
function convGather(
  op: string,
  transposed: boolean,
  src: Tensor,
  w: Tensor,
  bias: Tensor | null,
  g: Geom,
  slope: number | null = null,
  algo: ConvAlgorithm = 'auto',
): Tensor {
  const plan = slabPlan(op, g, transposed);
  if (!plan) {
    const tm = algo === 'winograd' || !flips(transposed, g) ? winogradRows(op, transposed, w, g, algo) : 0;
    return tm ? winogradConv(op, transposed, src, w, bias, g, slope, tm) : gather(op, transposed, src, w, bias, g, slope);
  }
  const [dstC, dstS] = transposed ? [g.xC, g.xS] : [g.yC, g.yS];
  const out = emptyTensor(op, [g.N, dstC, ...spatial(g, dstS)], 'f32');
  for (const sl of plan) {
    const part = sliceAxis(op, src, 2, sl.s0, sl.s1);
    const y = gather(op, transposed, part, w, bias, sl.geom, slope);
    writeAxis(op, out, 2, sl.d0, y);
    part.dispose();
    y.dispose();
  }
  return out;
}

/** Whether a transposed conv runs as flippedForward: stride 1, with subgroups. */
const flips = (transposed: boolean, g: Geom) => transposed && subgroupWeights() && g.s.every((v) => v === 1);

/** gatherConv, or flippedForward where it applies (whole convs and slabs alike, so that both sum in one order). */
function gather(op: string, transposed: boolean, src: Tensor, w: Tensor, bias: Tensor | null, g: Geom, slope: number | null): Tensor {
  return flips(transposed, g) ? flippedForward(op, src, w, bias, g, slope) : gatherConv(op, transposed, src, w, bias, g, slope);
}

/**
 * A stride-1 transposed conv (a conv's input gradient) as the forward conv of src with the flipped kernel, its two
 * channel axes swapped, and padding (k - 1)·d - p: the forward kernels ran the same problems faster on llvmpipe
 * (subgroup path only: the flip is in how the kernel indexes w).
 */
function flippedForward(op: string, src: Tensor, w: Tensor, bias: Tensor | null, g: Geom, slope: number | null): Tensor {
  const gf: Geom = { ...g, xC: g.yC, xS: g.yS, yC: g.xC, yS: g.xS, p: g.k.map((k, i) => (k - 1) * g.d[i] - g.p[i]) as Vec3 };
  // the kernel reads w as stored, taps backwards and the channel axes swapped (gatherConv's `flipped` layout)
  return gatherConv(op, false, src, w, bias, gf, slope, gemmTile(op, false, w, gf, true), true);
}

/** weightGrad, summing per-slab weight gradients when a tensor is larger than one binding. */
function convWeightGrad(op: string, x: Tensor, gy: Tensor, g: Geom): Tensor {
  const plan = slabPlan(op, g, false, 16);
  if (!plan) return weightGrad(op, x, gy, g);
  let total: Tensor | null = null;
  for (const sl of plan) {
    const xs = sliceAxis(op, x, 2, sl.s0, sl.s1);
    const gs = sliceAxis(op, gy, 2, sl.d0, sl.d1);
    const part = weightGrad(op, xs, gs, sl.geom);
    xs.dispose();
    gs.dispose();
    if (!total) total = part;
    else {
      const next = add(total, part);
      total.dispose();
      part.dispose();
      total = next;
    }
  }
  return total!;
}

// ---- autodiff -----------------------------------------------------------------------------------------------------

/**
 * The batched convolution every convNd reaches after its checks (`op` names the public op in errors): one gather
 * kernel for the output; backward is the transposed gather for the input, the weight-gradient kernel and a bias sum.
 * With a fused activation (`slope` non-null: LeakyReLU of that slope, ReLU at 0) the output is saved too, and the
 * backward first takes the output gradient through the activation (where the output is > 0, as vg.leakyRelu's
 * backward does with its input: the same sign for slopes >= 0).
 */
const conv = defineOp({
  name: 'conv',
  dtypes: FLOAT,
  via: 'conv1d/conv2d/conv3d',
  inputs: ([x, w, bias]) => [x, w, bias],
  forward: (x: Tensor, w: Tensor, bias: Tensor | null, geom: Geom, op: string, slope: number | null, algo: ConvAlgorithm) => {
    const out = convGather(op, false, x, w, bias, geom, slope, algo);
    return { out, attrs: { geom, slope, algo }, save: () => (slope === null ? [x, w] : [x, w, out]) };
  },
  backward: (gout, ctx) => {
    const [x, w, y] = ctx.saved;
    const { geom: g, slope, algo } = ctx.attrs;
    const op = 'conv.backward';
    const gy =
      slope === null
        ? gout
        : mapExpr(op, 'select(g * b, g, y > 0.0)', [{ name: 'g', value: gout }, { name: 'b', value: slope }, { name: 'y', value: y }], 'f32', 'f32');
    const grads = [
      ctx.needsGrad[0] ? convGather(op, true, gy, w, null, g, null, algo) : null,
      ctx.needsGrad[1] ? convWeightGrad(op, x, gy, g) : null,
      ctx.needsGrad[2] ? biasGrad(gy) : null,
    ];
    if (gy !== gout) gy.dispose();
    return grads;
  },
});

/** The batched transposed convolution: the input-gradient gather of the conv described by `geom`. */
const convTranspose = defineOp({
  name: 'convTranspose',
  dtypes: FLOAT,
  via: 'convTranspose1d/convTranspose2d/convTranspose3d',
  inputs: ([x, w, bias]) => [x, w, bias],
  forward: (x: Tensor, w: Tensor, bias: Tensor | null, geom: Geom, op: string) => ({
    out: convGather(op, true, x, w, bias, geom),
    attrs: { geom },
    save: () => [x, w],
  }),
  backward: (gout, ctx) => {
    // out = (input gradient of the conv g) applied to x; so d/dx is that conv's forward, d/dw its weight gradient
    const [x, w] = ctx.saved;
    const g = ctx.attrs.geom;
    const op = 'convTranspose.backward';
    return [
      ctx.needsGrad[0] ? convGather(op, false, gout, w, null, g) : null,
      ctx.needsGrad[1] ? convWeightGrad(op, gout, x, g) : null,
      ctx.needsGrad[2] ? biasGrad(gout) : null,
    ];
  },
});

// ---- argument checks ----------------------------------------------------------------------------------------------

/** A number or a list of nd numbers, each an integer >= min. */
function perDim(op: string, name: string, v: unknown, nd: number, min: number, dflt: number): number[] {
  if (v === undefined || v === null) return Array(nd).fill(dflt);
  const list = typeof v === 'number' ? Array(nd).fill(v) : Array.isArray(v) ? v : null;
  const what = min > 0 ? 'positive integer' : 'non-negative integer';
  if (!list || list.length !== nd || !list.every((e) => Number.isInteger(e) && e >= min))
    fail(op, `${name} must be a ${what} or a list of ${nd} ${what}s, got ${Array.isArray(v) ? JSON.stringify(v) : describe(v)}`);
  return list as number[];
}

function checkGroups(op: string, groups: unknown): number {
  if (groups === undefined || groups === null) return 1;
  if (typeof groups !== 'number' || !Number.isInteger(groups) || groups < 1) fail(op, `groups must be a positive integer, got ${describe(groups)}`);
  return groups;
}

interface Prepared {
  x: Tensor;
  w: Tensor;
  bias: Tensor | null;
  unbatched: boolean;
}

/** Checks tensor arguments common to both kinds; returns the batched input (unbatched input gets a batch of 1). */
function checkTensors(op: string, nd: number, x: unknown, w: unknown, bias: unknown): Prepared {
  const xt = expectTensor(op, 'input', x);
  const wt = expectTensor(op, 'weight', w);
  expectFloat(op, 'input', xt);
  expectFloat(op, 'weight', wt);
  const names = ['L', 'H, W', 'D, H, W'][nd - 1];
  if (xt.ndim !== nd + 2 && xt.ndim !== nd + 1)
    fail(op, `input must have rank ${nd + 2} [N, C, ${names}] (or ${nd + 1} without the batch dim), got rank ${xt.ndim} (shape ${fmtShape(xt.shape)})`);
  if (wt.ndim !== nd + 2)
    fail(op, `weight must have rank ${nd + 2} (channels, channels per group, then ${nd} kernel dims), got rank ${wt.ndim} (shape ${fmtShape(wt.shape)})`);
  if (wt.shape.slice(2).some((k) => k < 1)) fail(op, `weight ${fmtShape(wt.shape)} has an empty kernel dimension`);
  let b: Tensor | null = null;
  if (bias !== undefined && bias !== null) {
    b = expectTensor(op, 'bias', bias);
    expectFloat(op, 'bias', b);
  }
  return { x: xt, w: wt, bias: b, unbatched: xt.ndim === nd + 1 };
}

/** The LeakyReLU slope a conv's `activation` option fuses (ReLU: 0), or null for none. */
function activationSlope(op: string, a: unknown): number | null {
  if (a === undefined || a === null) return null;
  const kind = typeof a === 'object' ? (a as { kind?: unknown }).kind : undefined;
  if (kind === 'relu') return 0;
  if (kind !== 'leakyRelu')
    fail(op, `activation must be null, { kind: 'relu' } or { kind: 'leakyRelu', negativeSlope }, got ${typeof a === 'object' ? JSON.stringify(a) : describe(a)}`);
  const slope = (a as { negativeSlope?: unknown }).negativeSlope ?? 0.01;
  if (typeof slope !== 'number' || !Number.isFinite(slope) || slope < 0)
    fail(op, `activation.negativeSlope must be a finite number >= 0 (the output's sign then tells the backward each input's side), got ${describe(slope)}`);
  return slope;
}

function checkBias(op: string, bias: Tensor | null, channels: number): void {
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== channels))
    fail(op, `bias must have shape [${channels}] (one value per output channel), got ${fmtShape(bias.shape)}`);
}

/** Runs fn on the batched input, removing the added batch dim from the result for unbatched input. */
function batched(pr: Prepared, fn: (x: Tensor) => Tensor): Tensor {
  if (!pr.unbatched) return fn(pr.x);
  return tidy(() => squeeze(fn(unsqueeze(pr.x, 0)), 0));
}

function convNd(nd: number, op: string, input: Tensor, weight: Tensor, opts: ConvOptions = {}): Tensor {
  if (opts === null || typeof opts !== 'object') fail(op, `options must be an object like { stride: 1, padding: 1 }, got ${describe(opts)}`);
  const pr = checkTensors(op, nd, input, weight, opts.bias);
  const groups = checkGroups(op, opts.groups);
  const stride = perDim(op, 'stride', opts.stride, nd, 1, 1);
  const dilation = perDim(op, 'dilation', opts.dilation, nd, 1, 1);
  const slope = activationSlope(op, opts.activation);
  const algo = opts.algorithm ?? 'auto';
  if (algo !== 'auto' && algo !== 'direct' && algo !== 'winograd') fail(op, `algorithm must be 'auto', 'direct' or 'winograd', got ${describe(algo)}`);
  const { w } = pr;
  const ks = w.shape.slice(2);
  let padding: number[];
  if (opts.padding === 'valid') padding = Array(nd).fill(0);
  else if (opts.padding === 'same') {
    if (stride.some((s) => s !== 1))
      fail(op, `padding='same' needs stride 1 (as in PyTorch), got stride ${JSON.stringify(stride)}; pass explicit padding instead`);
    // the smaller half goes first; an odd total leaves one more at the end, which the output size accounts for
    padding = ks.map((k, i) => Math.floor((dilation[i] * (k - 1)) / 2));
  } else if (typeof opts.padding === 'string') fail(op, `padding must be a number, a list, 'same' or 'valid', got '${opts.padding}'`);
  else padding = perDim(op, 'padding', opts.padding, nd, 0, 0);
  const Cout = w.shape[0];
  if (Cout % groups !== 0) fail(op, `weight.shape[0] (${Cout} output channels) must be divisible by groups (${groups}); weight ${fmtShape(w.shape)}`);
  checkBias(op, pr.bias, Cout);
  return batched(pr, (x) => {
    const Cin = x.shape[1];
    if (Cin !== w.shape[1] * groups)
      fail(
        op,
        `input has ${Cin} channels (shape ${fmtShape(pr.x.shape)}) but weight ${fmtShape(w.shape)} with groups=${groups} expects ` +
          `weight.shape[1] * groups = ${w.shape[1] * groups}`,
      );
    const inS = x.shape.slice(2);
    const outS = inS.map((n, i) =>
      opts.padding === 'same' ? n : Math.floor((n + 2 * padding[i] - dilation[i] * (ks[i] - 1) - 1) / stride[i]) + 1,
    );
    if (outS.some((n) => n <= 0))
      fail(
        op,
        `the input's spatial size ${fmtShape(inS)} with padding ${fmtShape(padding)} is smaller than the dilated kernel ` +
          `${fmtShape(ks.map((k, i) => dilation[i] * (k - 1) + 1))}, so the output ${fmtShape(outS)} would be empty; ` +
          'use a larger input, more padding or a smaller kernel/dilation',
      );
    const g: Geom = {
      nd,
      N: x.shape[0],
      groups,
      xC: Cin,
      xS: to3(inS, 1),
      yC: Cout,
      yS: to3(outS, 1),
      k: to3(ks, 1),
      s: to3(stride, 1),
      p: to3(padding, 0),
      d: to3(dilation, 1),
    };
    if (algo === 'winograd' && !winogradApplies(g))
      fail(
        op,
        `algorithm 'winograd' needs a 2-D 3x3 kernel, stride 1, dilation 1, groups 1 and padding <= 2, got kernel ${fmtShape(ks)}, ` +
          `stride ${fmtShape(stride)}, dilation ${fmtShape(dilation)}, groups ${groups}, padding ${fmtShape(padding)}; use 'auto' or 'direct'`,
      );
    return conv(x, w, pr.bias, g, op, slope, algo);
  });
}

function convTransposeNd(nd: number, op: string, input: Tensor, weight: Tensor, opts: ConvTransposeOptions = {}): Tensor {
  if (opts === null || typeof opts !== 'object') fail(op, `options must be an object like { stride: 2 }, got ${describe(opts)}`);
  const pr = checkTensors(op, nd, input, weight, opts.bias);
  const groups = checkGroups(op, opts.groups);
  const stride = perDim(op, 'stride', opts.stride, nd, 1, 1);
  const dilation = perDim(op, 'dilation', opts.dilation, nd, 1, 1);
  if (typeof opts.padding === 'string') fail(op, `padding must be a number or a list of ${nd} numbers ('${opts.padding}' is only for convNd, as in PyTorch)`);
  const padding = perDim(op, 'padding', opts.padding, nd, 0, 0);
  const outputPadding = perDim(op, 'outputPadding', opts.outputPadding, nd, 0, 0);
  outputPadding.forEach((o, i) => {
    if (o >= stride[i] && o >= dilation[i])
      fail(op, `outputPadding must be smaller than stride or dilation (as in PyTorch), got outputPadding ${fmtShape(outputPadding)} with stride ${fmtShape(stride)} and dilation ${fmtShape(dilation)}`);
  });
  const { w } = pr;
  const ks = w.shape.slice(2);
  const Cin = w.shape[0];
  if (Cin % groups !== 0) fail(op, `weight.shape[0] (${Cin} input channels) must be divisible by groups (${groups}); weight ${fmtShape(w.shape)}`);
  const Cout = w.shape[1] * groups;
  checkBias(op, pr.bias, Cout);
  return batched(pr, (x) => {
    if (x.shape[1] !== Cin)
      fail(op, `input has ${x.shape[1]} channels (shape ${fmtShape(pr.x.shape)}) but weight ${fmtShape(w.shape)} expects weight.shape[0] = ${Cin}`);
    const inS = x.shape.slice(2);
    const outS = inS.map((n, i) => (n - 1) * stride[i] - 2 * padding[i] + dilation[i] * (ks[i] - 1) + outputPadding[i] + 1);
    if (outS.some((n) => n <= 0))
      fail(op, `padding ${fmtShape(padding)} is too large for input size ${fmtShape(inS)} and kernel ${fmtShape(ks)}: the output ${fmtShape(outS)} would be empty`);
    // described as the conv whose input gradient this is: x-space = this output, y-space = this input
    const g: Geom = {
      nd,
      N: x.shape[0],
      groups,
      xC: Cout,
      xS: to3(outS, 1),
      yC: Cin,
      yS: to3(inS, 1),
      k: to3(ks, 1),
      s: to3(stride, 1),
      p: to3(padding, 0),
      d: to3(dilation, 1),
    };
    return convTranspose(x, w, pr.bias, g, op);
  });
}

// ---- public ops ---------------------------------------------------------------------------------------------------

/** conv1d/2d/3d: the same checks and primitive, `nd` spatial dims. */
function convOp(name: 'conv1d' | 'conv2d' | 'conv3d', nd: number) {
  return defineOp({
    name,
    composite: true,
    dtypes: FLOAT,
    forward: (input: Tensor, weight: Tensor, opts?: ConvOptions): Tensor => convNd(nd, name, input, weight, opts),
  });
}

function convTransposeOp(name: 'convTranspose1d' | 'convTranspose2d' | 'convTranspose3d', nd: number) {
  return defineOp({
    name,
    composite: true,
    dtypes: FLOAT,
    forward: (input: Tensor, weight: Tensor, opts?: ConvTransposeOptions): Tensor => convTransposeNd(nd, name, input, weight, opts),
  });
}

/** torch.nn.functional.conv1d: input [N, Cin, L], weight [Cout, Cin/groups, k]. */
export const conv1d = convOp('conv1d', 1);

/** torch.nn.functional.conv2d: input [N, Cin, H, W], weight [Cout, Cin/groups, kH, kW]. */
export const conv2d = convOp('conv2d', 2);

/** torch.nn.functional.conv3d: input [N, Cin, D, H, W], weight [Cout, Cin/groups, kD, kH, kW]. */
export const conv3d = convOp('conv3d', 3);

/** torch.nn.functional.conv_transpose1d: input [N, Cin, L], weight [Cin, Cout/groups, k]. */
export const convTranspose1d = convTransposeOp('convTranspose1d', 1);

/** torch.nn.functional.conv_transpose2d: input [N, Cin, H, W], weight [Cin, Cout/groups, kH, kW]. */
export const convTranspose2d = convTransposeOp('convTranspose2d', 2);

/** torch.nn.functional.conv_transpose3d: input [N, Cin, D, H, W], weight [Cin, Cout/groups, kD, kH, kW]. */
export const convTranspose3d = convTransposeOp('convTranspose3d', 3);
