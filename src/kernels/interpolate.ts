/**
 * interpolate: torch.nn.functional.interpolate for modes nearest, linear, bilinear and trilinear on [N, C, ...]
 * inputs with 1, 2 or 3 spatial dims. The coordinate maps follow PyTorch 1.13 and are computed here, per axis, into
 * small tables the kernels read (shaders/interpolate.wgsl, interpolate_backward.wgsl), so forward and backward use
 * the same taps:
 * - nearest: source = min(floor(f32(o) * scale), in - 1) with scale = f32(1 / scaleFactor) when a scaleFactor is
 *   given (and recomputeScaleFactor is not set), else f32(in / out) — PyTorch's nearest_neighbor_compute_source_index
 *   (its CUDA kernel and its generic CPU kernel; PyTorch's CPU kernel for channels-last-contiguous inputs, i.e. C == 1,
 *   instead copies when out == in and uses o >> 1 when out == 2 * in).
 * - linear modes: PyTorch's compute_source_index_and_lambda in float64: an axis that keeps its size is copied; else
 *   src = scale * o (alignCorners, scale = (in - 1) / (out - 1)) or max(scale * (o + 0.5) - 0.5, 0) (scale =
 *   1 / scaleFactor or in / out), taps trunc(src) and the next index (clamped), weight of the second src - trunc(src).
 * The forward reads each output's 2 x 2 x 2 taps directly (one pass; separable scalar passes were slower on
 * lavapipe); the backward runs one gather pass per resampled axis (the weights are separable) from a table listing,
 * per source index, the destinations that read it: deterministic, no atomics. PyTorch's x2 without alignCorners and
 * its nearest x2, the common upsamplings, have fixed taps: there both directions run vec4 passes per axis
 * (shaders/interpolate_x2.wgsl).
 */
import interpolateWgsl from '../../shaders/interpolate.wgsl';
import backwardWgsl from '../../shaders/interpolate_backward.wgsl';
import x2WgslSource from '../../shaders/interpolate_x2.wgsl';
import { bindingLimit } from '../engine/binding.js';
import { fail, fmtShape } from '../engine/errors.js';
import { FLOAT, defineOp, type BackwardRule } from '../engine/op.js';
import { declareCost } from '../engine/profiler-hooks.js';
import { dispatch, grid1d, kernel } from '../engine/runtime.js';
import { Tensor, shapeSize } from '../engine/tensor.js';
import { ceilDiv, describe, emptyTensor, expectFloat, expectTensor } from './common.js';
import { inRowRuns } from './base.js';
import { tensor } from './creation.js';

export type InterpolateMode = 'nearest' | 'linear' | 'bilinear' | 'trilinear';

export interface InterpolateOptions {
  /** Output spatial size: an int for every axis or one per axis. Exactly one of size and scaleFactor is required. */
  size?: number | readonly number[] | null;
  /** Multiplier of the spatial size (output = floor(input * scaleFactor)), one for every axis or one per axis. */
  scaleFactor?: number | readonly number[] | null;
  /** Default 'nearest'. linear needs 3-D input, bilinear 4-D, trilinear 5-D; nearest takes any of them. */
  mode?: InterpolateMode;
  /** Linear modes only (default false): map corner pixel centres onto each other. */
  alignCorners?: boolean | null;
  /** With scaleFactor: derive the coordinate scale from the rounded output size instead of 1 / scaleFactor. */
  recomputeScaleFactor?: boolean | null;
}

/** One spatial axis: destination o reads source indices i0[o], i1[o] with weights w0[o], w1[o]. */
export interface Axis {
  nIn: number;
  nOut: number;
  i0: number[];
  i1: number[];
  w0: number[];
  w1: number[];
}

interface Attrs {
  B: number;
  /** (D, H, W); axes the input does not have are 1 -> 1 copies. */
  axes: [Axis, Axis, Axis];
}

/**
 * Elements per invocation: consecutive outputs along W (forward) or along the inner dims (backward passes) share
 * their index arithmetic and taps; on lavapipe 4 halves the time of trilinear x2 at 16 x 64^3 against 1.
 */
const RUN = 4;

// Cost models (vg.profile). Forward: an output reads 8 taps (7 fmas and the weight products: ~15 FLOPs, counted so
// for the x2 kernel too; nearest none), bytes = output + input once. Backward pass along one axis: each source element feeds at most 2 taps (an fma
// each), bytes = source + destination.
declareCost('interpolate.', (u, _g, _b, name) => {
  const outSize = u.outSize as number[];
  const inSize = u.inSize as number[];
  const total = u.total as number;
  const rows = total / Math.ceil(outSize[2] / RUN);
  const outputs = rows * outSize[2];
  const inputs = (rows / (outSize[0] * outSize[1])) * inSize[0] * inSize[1] * inSize[2];
  return { flops: name === 'interpolate.nearest' ? 0 : 15 * outputs, bytes: 4 * (outputs + inputs) };
});
declareCost('interpolate.x2', (u, _g, _b, name) => {
  const [outSize, inSize] = [u.outSize, u.inSize] as number[][];
  const planes = name.endsWith('.d') ? inSize[0] : outSize[0];
  const rows = (u.total as number) / (planes * inSize[1] * Math.ceil(inSize[2] / 2));
  const outputs = rows * outSize[0] * outSize[1] * outSize[2];
  return { flops: 15 * outputs, bytes: 4 * (outputs + rows * inSize[0] * inSize[1] * inSize[2]) };
});
/**
 * Rows per invocation of the x2 passes along a strided axis (src rows forward, dst rows in the adjoint; the adjoint
 * along the last axis: dst vec4s): each src row (vec4) is loaded once for them.
 */
const X2_ROWS = 4;
const x2Wgsl = () => x2WgslSource.replaceAll('{{ROWS}}', String(X2_ROWS));

// one x2 pass (shaders/interpolate_x2.wgsl), n = 4 x the vec4s it reads (forward) or writes (adjoint): forward, n
// source elements read and 2n outputs written (2 multiplies and an add each); adjoint, n outputs written from 2n
// source elements (as many operations)
declareCost('interpolate.pass2x', (u, _g, _b, name) => {
  const adjoint = name.startsWith('interpolate.pass2x.adjoint');
  const last = name.includes('.last');
  // invocations take X2_ROWS rows (the adjoint along the last axis vec4s) each, fewer in the last group; the forward
  // along the last axis one src vec4
  const rows = adjoint ? (last ? (u.nSrc as number) / 8 : (u.nSrc as number) / 2) : (u.nSrc as number);
  const perInvocation = adjoint || !last ? rows / Math.ceil(rows / X2_ROWS) : 1;
  // DH: two src planes per invocation, each src element feeding 4 outputs (H rows, then planes: 3 flops per output
  // of each stage: 6 outputs, 18 flops); DHW 8 (W, H, D: 14 outputs, 42 flops)
  const dh = name.includes('.dh');
  const stages = name.includes('.dhw') ? 14 : dh ? 6 : 2;
  const n = 4 * (u.total as number) * perInvocation * (dh ? Math.min(2, u.nPlanes as number) : 1);
  // nearest: copies forward, an add per output in the adjoint
  const flops = name.endsWith('.nearest') ? (adjoint ? n : 0) : 3 * stages * n;
  return { flops, bytes: 4 * (1 + (name.includes('.dhw') ? 8 : dh ? 4 : 2)) * n };
});
declareCost('interpolate.backward', (u) => {
  const [outer, inner, nSrc, nDst] = [u.outer, u.inner, u.nSrc, u.nDst] as number[];
  return { flops: 4 * outer * inner * nSrc, bytes: 4 * outer * inner * (nSrc + nDst) };
});

const MODE_RANK: Record<InterpolateMode, number> = { nearest: 0, linear: 3, bilinear: 4, trilinear: 5 };

/** PyTorch's taps for one axis (see the module comment); `sf` is the scaleFactor when it sets the scale. */
function axisTaps(nIn: number, nOut: number, sf: number | null, nearest: boolean, align: boolean): Axis {
  const ax: Axis = { nIn, nOut, i0: [], i1: [], w0: [], w1: [] };
  const copy = !nearest && nIn === nOut;
  let scale: number;
  if (nearest) scale = Math.fround(sf !== null ? 1 / sf : nIn / nOut);
  else if (align) scale = nOut > 1 ? (nIn - 1) / (nOut - 1) : 0;
  else scale = sf !== null ? 1 / sf : nIn / nOut;
  for (let o = 0; o < nOut; o++) {
    if (nearest || copy) {
      // o * scale is exact in float64 (24-bit operands), so fround gives the f32 product
      const i = copy ? o : Math.min(Math.floor(Math.fround(o * scale)), nIn - 1);
      ax.i0.push(i);
      ax.i1.push(i);
      ax.w0.push(1);
      ax.w1.push(0);
      continue;
    }
    const src = align ? scale * o : Math.max(scale * (o + 0.5) - 0.5, 0);
    const i0 = Math.trunc(src);
    const w1 = Math.min(Math.max(src - i0, 0), 1);
    ax.i0.push(i0);
    ax.i1.push(i0 < nIn - 1 ? i0 + 1 : i0);
    ax.w0.push(1 - w1);
    ax.w1.push(w1);
  }
  return ax;
}

const isCopy = (ax: Axis) => ax.nIn === ax.nOut && ax.i0.every((i, o) => i === o && ax.w0[o] === 1 && ax.i1[o] === o);

/**
 * An axis upsampled x2 whose taps stay next to the output's half position (i0, i1 within o/2 - 1 .. o/2 + 1, as
 * PyTorch's x2 maps with and without alignCorners): the X2 entry of shaders/interpolate.wgsl requires it.
 */
function isDoubling(ax: Axis): boolean {
  if (ax.nOut !== 2 * ax.nIn) return false;
  for (let o = 0; o < ax.nOut; o++) {
    const i = o >> 1;
    if (ax.i0[o] < i - 1 || ax.i1[o] > i + 1 || ax.i0[o] > ax.i1[o]) return false;
  }
  return true;
}

/**
 * Whether the axis is PyTorch's linear x2 without alignCorners, whose adjoint is a fixed 4-tap filter: input i gets
 * 0.25, 0.75, 0.75, 0.25 of outputs 2i - 1 .. 2i + 2, those indices clamped to the axis (the passes of
 * shaders/interpolate_x2.wgsl, forward and adjoint). Checked against the axis' own taps.
 */
function isHalfPixelDoubling(ax: Axis): boolean {
  const n = ax.nIn;
  if (ax.nOut !== 2 * n || n < 2) return false;
  // output o reads x at o / 2 - 0.25: (i - 1, i) with 0.25, 0.75 for o = 2i, (i, i + 1) with 0.75, 0.25 for o = 2i + 1,
  // all of its weight on x[0] or x[n - 1] past the ends
  for (let o = 0; o < ax.nOut; o++) {
    const i = o >> 1;
    const edge = o === 0 || o === ax.nOut - 1;
    const [a, b, wa] = o % 2 === 0 ? [i - 1, i, 0.25] : [i, i + 1, 0.75];
    const ok = edge
      ? ax.i0[o] === i && ax.w0[o] + (ax.i1[o] === i ? ax.w1[o] : 0) === 1
      : ax.i0[o] === a && ax.i1[o] === b && ax.w0[o] === wa && ax.w1[o] === 1 - wa;
    if (!ok) return false;
  }
  return true;
}

/** Whether the axis is PyTorch's nearest x2: output o reads input o >> 1 (shaders/interpolate_x2.wgsl's NEAREST). */
function isNearestDoubling(ax: Axis): boolean {
  return ax.nOut === 2 * ax.nIn && ax.i0.every((i, o) => i === o >> 1 && ax.i1[o] === i && ax.w0[o] === 1 && ax.w1[o] === 0);
}

/** Calls fn(i, o, w) for every tap (source i, destination o, weight w) in increasing o; equal taps merged. */
function eachTap(ax: Axis, fn: (i: number, o: number, w: number) => void): void {
  for (let o = 0; o < ax.nOut; o++) {
    if (ax.i1[o] === ax.i0[o]) fn(ax.i0[o], o, ax.w0[o] + ax.w1[o]);
    else {
      fn(ax.i0[o], o, ax.w0[o]);
      fn(ax.i1[o], o, ax.w1[o]);
    }
  }
}

/** Per source index i, the (o, weight) pairs of the destinations that read it (in increasing o), as CSR. */
function transposedTaps(ax: Axis): Uint32Array {
  const start = new Array<number>(ax.nIn + 1).fill(0);
  eachTap(ax, (i) => start[i + 1]++);
  for (let i = 0; i < ax.nIn; i++) start[i + 1] += start[i];
  const pairs = ax.nIn + 1;
  const table = new Uint32Array(pairs + 2 * start[ax.nIn]);
  const bits = new Float32Array(table.buffer);
  table.set(start);
  const next = start.slice();
  eachTap(ax, (i, o, w) => {
    const k = next[i]++;
    table[pairs + 2 * k] = o;
    bits[pairs + 2 * k + 1] = w;
  });
  return table;
}

/** The gradient along axis `a` of the [B, D, H, W] view `shape` of g: that axis goes from nOut back to nIn. */
function axisBackward(op: string, g: Tensor, shape: readonly number[], a: number, ax: Axis): Tensor {
  const dstShape = shape.slice();
  dstShape[a + 1] = ax.nIn;
  const gin = emptyTensor(op, dstShape, 'f32');
  if (gin.size === 0) return gin;
  const inner = shapeSize(shape.slice(a + 2));
  const innerRun = inner > 1;
  const last = !innerRun && ax.nIn % 4 === 0;
  const nearest = isNearestDoubling(ax);
  if (((innerRun && inner % 4 === 0) || last) && (nearest || isHalfPixelDoubling(ax))) {
    // the fixed filter over vec4s (of the inner dims, or along the last axis): 4 loads per 4 outputs instead of a
    // table walk per output
    const name = `interpolate.pass2x.adjoint${last ? '.last' : ''}${nearest ? '.nearest' : ''}`;
    const k = kernel(name, x2Wgsl, { defines: { ADJOINT: true, LAST: last, NEAREST: nearest } });
    const whole = ([dst]: Tensor[], [src]: Tensor[], B: number) => {
      const outer = B * shapeSize(shape.slice(1, a + 1));
      // an invocation writes X2_ROWS dst rows (along the last axis: vec4s of a row)
      const total = last ? outer * Math.ceil(ax.nIn / 4 / X2_ROWS) : (outer * Math.ceil(ax.nIn / X2_ROWS) * inner) / 4;
      dispatch(k, [dst.buffer(op), src.buffer(op)], { total, inner, nSrc: ax.nOut }, grid1d(ceilDiv(total, k.workgroupSize)));
    };
    if (!inRowRuns(op, shape[0], [gin], [g], whole)) whole([gin], [g], shape[0]);
    return gin;
  }
  const k = kernel(`interpolate.backward.${innerRun ? 'inner' : 'outer'}`, () => backwardWgsl.replaceAll('{{RUN}}', String(RUN)), {
    defines: { INNER_RUN: innerRun },
  });
  const table = tensor(transposedTaps(ax));
  // rows of B (batch x channel) in runs when g or its gradient is past one binding
  const whole = ([dst]: Tensor[], [src]: Tensor[], B: number) => {
    const outer = B * shapeSize(shape.slice(1, a + 1));
    const total = innerRun ? outer * ax.nIn * ceilDiv(inner, RUN) : ceilDiv(outer, RUN) * ax.nIn;
    dispatch(
      k,
      [dst.buffer(op), src.buffer(op), table.buffer(op)],
      { total, outer, inner, nSrc: ax.nOut, nDst: ax.nIn },
      grid1d(ceilDiv(total, k.workgroupSize)),
    );
  };
  if (!inRowRuns(op, shape[0], [gin], [g], whole)) whole([gin], [g], shape[0]);
  table.dispose();
  return gin;
}

const interpolateBackward: BackwardRule<Attrs> = (g, ctx) => {
  const { B, axes } = ctx.attrs;
  // copied axes need no pass; the others run most-shrinking first so later passes handle less data
  const order = [0, 1, 2].filter((a) => !isCopy(axes[a])).sort((a, b) => axes[a].nIn / axes[a].nOut - axes[b].nIn / axes[b].nOut);
  let shape = [B, ...axes.map((ax) => ax.nOut)];
  let cur = g;
  for (const a of order) {
    const next = axisBackward('interpolate.backward', cur, shape, a, axes[a]);
    if (cur !== g) cur.dispose();
    cur = next;
    shape = [...next.shape];
  }
  return [cur.shareStorage(ctx.inputShapes[0])];
};

/** A number or list of `nd` numbers (one per spatial axis) from a size or scaleFactor option. */
function perAxis(arg: string, v: number | readonly number[], nd: number, valid: (e: number) => boolean, what: string): number[] {
  const list = typeof v === 'number' ? new Array<number>(nd).fill(v) : Array.isArray(v) ? [...v] : null;
  if (!list) fail('interpolate', `${arg} must be a number or a list of ${nd} numbers (one per spatial dim), got ${describe(v)}`);
  if (list.length !== nd)
    fail(
      'interpolate',
      `${arg} has ${list.length} entries but the input has ${nd} spatial dim${nd > 1 ? 's' : ''}; give one per spatial dim ` +
        `(input [N, C, ...spatial])`,
    );
  for (const e of list) if (typeof e !== 'number' || !valid(e)) fail('interpolate', `${arg} must hold ${what}, got ${JSON.stringify(v)}`);
  return list;
}

/** torch.nn.functional.interpolate(input, size, scale_factor, mode, align_corners, recompute_scale_factor). */
export const interpolate = defineOp({
  name: 'interpolate',
  dtypes: FLOAT,
  inputs: ([x]) => [x],
  forward: (x: Tensor, opts: InterpolateOptions = {}) => {
    const { axes, nearest, outShape } = interpolationAxes(x, opts);
    const out = sampleAlongAxes('interpolate', x, axes, nearest, outShape);
    return { out, attrs: { B: x.shape[0] * x.shape[1], axes } };
  },
  backward: interpolateBackward,
});

/** Checks interpolate's arguments and returns its taps, per axis (D, H, W), and the output shape. */
function interpolationAxes(x: Tensor, opts: InterpolateOptions): { axes: Attrs['axes']; nearest: boolean; outShape: number[] } {
  const op = 'interpolate';
  expectTensor(op, 'input', x);
  expectFloat(op, 'input', x);
  if (opts === null || typeof opts !== 'object')
    fail(op, `options must be an object like { scaleFactor: 2, mode: 'trilinear' }, got ${describe(opts)}`);
  const mode = opts.mode ?? 'nearest';
  if (!Object.hasOwn(MODE_RANK, mode))
    fail(op, `mode must be 'nearest', 'linear', 'bilinear' or 'trilinear', got ${describe(mode)}`);
  const nearest = mode === 'nearest';
  const alignGiven = opts.alignCorners !== undefined && opts.alignCorners !== null;
  if (nearest && alignGiven)
    fail(op, `alignCorners can only be set with the interpolating modes linear, bilinear and trilinear, not with mode 'nearest'; leave it out`);
  const align = Boolean(opts.alignCorners);
  if (x.ndim < 3 || x.ndim > 5)
    fail(op, `input must be 3-D, 4-D or 5-D [N, C, ...spatial] (1 to 3 spatial dims), got rank ${x.ndim} (shape ${fmtShape(x.shape)})`);
  if (!nearest && MODE_RANK[mode] !== x.ndim)
    fail(op, `mode '${mode}' needs ${MODE_RANK[mode]}-D input, got ${x.ndim}-D (shape ${fmtShape(x.shape)}); use ` +
      `'${['linear', 'bilinear', 'trilinear'][x.ndim - 3]}' for ${x.ndim}-D input`);
  const hasSize = opts.size !== undefined && opts.size !== null;
  const hasScale = opts.scaleFactor !== undefined && opts.scaleFactor !== null;
  if (hasSize === hasScale)
    fail(op, hasSize ? 'give either size or scaleFactor, not both' : 'either size or scaleFactor must be given (e.g. { scaleFactor: 2 })');
  if (opts.recomputeScaleFactor && hasSize)
    fail(op, 'recomputeScaleFactor is only meaningful with scaleFactor, not with an explicit size; leave it out');
  const nd = x.ndim - 2;
  const spatial = x.shape.slice(2);
  let sizes: number[];
  let factors: number[] | null = null;
  if (hasSize) sizes = perAxis('size', opts.size!, nd, (e) => Number.isInteger(e) && e > 0, 'positive integers');
  else {
    const sf = perAxis('scaleFactor', opts.scaleFactor!, nd, (e) => Number.isFinite(e) && e > 0, 'positive numbers');
    sizes = spatial.map((n, i) => Math.floor(n * sf[i]));
    if (!opts.recomputeScaleFactor) factors = sf;
  }
  if (spatial.includes(0) || sizes.includes(0))
    fail(op, `input and output spatial sizes must be greater than 0, got input ${fmtShape(spatial)} and output ${fmtShape(sizes)}`);

  const axes = [0, 1, 2].map((a) => {
    const i = a - (3 - nd);
    return i < 0 ? axisTaps(1, 1, null, nearest, align) : axisTaps(spatial[i], sizes[i], factors ? factors[i] : null, nearest, align);
  }) as Attrs['axes'];
  return { axes, nearest, outShape: [x.shape[0], x.shape[1], ...sizes] };
}

/**
 * PyTorch's linear x2 without alignCorners (`nearest`: its nearest x2) along every doubled axis of x ([B, D, H, W]
 * with W a multiple of 4, the result within one binding) in vec4 passes (shaders/interpolate_x2.wgsl): the last axis
 * first, then each strided one; D and H together in one pass, and with W too when all three are doubled (x read
 * once, the output written once). Whole vec4s per load and store: 1.5-2x faster on llvmpipe than the fused
 * kernel's scattered ones.
 */
function doubleAlongAxes(op: string, x: Tensor, axes: readonly Axis[], outShape: readonly number[], nearest: boolean): Tensor {
  let cur = x;
  const sizes = axes.map((ax) => ax.nIn);
  const B = x.size / shapeSize(sizes);
  // D and H both doubled: one pass for the two (no H-doubled volume in memory between them), with W too where it
  // is doubled (WX)
  const dh = !isCopy(axes[0]) && !isCopy(axes[1]);
  const wx = dh && !isCopy(axes[2]);
  const passes = wx ? [-1] : [2, ...(dh ? [-1] : [1, 0])].filter((a) => a < 0 || !isCopy(axes[a]));
  const suffix = nearest ? '.nearest' : '';
  for (const a of passes) {
    const last = a === 2;
    const name = `interpolate.pass2x${last ? '.last' : a < 0 ? (wx ? '.dhw' : '.dh') : ''}${suffix}`;
    const k = kernel(name, x2Wgsl, { defines: { LAST: last, DH: a < 0, WX: wx, NEAREST: nearest } });
    const outer = B * (a < 0 ? 1 : shapeSize(sizes.slice(0, a)));
    const inner = shapeSize(sizes.slice(a < 0 ? 2 : a + 1));
    const doubled = sizes.map((n, i) => (i === a || (a < 0 && (i < 2 || wx)) ? 2 * n : n));
    const next = emptyTensor(op, a === passes.at(-1) ? outShape : [B, ...doubled], 'f32');
    // along a strided axis an invocation reads X2_ROWS src rows of a column (DH: of two planes)
    const total =
      a === 2
        ? (outer * sizes[a] * inner) / 4
        : a < 0
          ? (outer * Math.ceil(sizes[0] / 2) * Math.ceil(sizes[1] / X2_ROWS) * inner) / 4
          : (outer * Math.ceil(sizes[a] / X2_ROWS) * inner) / 4;
    const nSrc = a < 0 ? sizes[1] : sizes[a];
    dispatch(k, [next.buffer(op), cur.buffer(op)], { total, inner, nSrc, nPlanes: sizes[0] }, grid1d(ceilDiv(total, k.workgroupSize)));
    if (cur !== x) cur.dispose();
    cur = next;
    sizes.splice(0, 3, ...doubled);
  }
  return cur;
}

/**
 * The forward kernel: out[b, d, h, w] = the weighted taps of x along the three axes (D, H, W), or with `nearest` the
 * kernel's nearest variant, which reads the first tap. x is [B, ...] with the axes' nIn as its spatial sizes;
 * `outShape` is the output's shape (its element count B · nOut_D · nOut_H · nOut_W).
 * Not an op by itself: interpolate records it, and io's volume resampler (its own taps, no gradient) reuses it.
 */
export function sampleAlongAxes(op: string, x: Tensor, axes: readonly Axis[], nearest: boolean, outShape: readonly number[]): Tensor {
  const separable =
    axes.some((ax) => !isCopy(ax)) &&
    axes.every((ax) => isCopy(ax) || (nearest ? isNearestDoubling(ax) : isHalfPixelDoubling(ax))) &&
    axes[2].nIn % 4 === 0 &&
    shapeSize(outShape) * 4 <= bindingLimit();
  if (separable) return doubleAlongAxes(op, x, axes, outShape, nearest);
  const out = emptyTensor(op, outShape, 'f32');
  if (out.size > 0) {
    // (i0, i1, w0 bits, w1 bits) per destination index, axis after axis
    const taps = new Uint32Array(4 * (axes[0].nOut + axes[1].nOut + axes[2].nOut));
    const bits = new Float32Array(taps.buffer);
    const tapOffset: number[] = [];
    let at = 0;
    for (const ax of axes) {
      tapOffset.push(at);
      for (let o = 0; o < ax.nOut; o++, at++) {
        taps[4 * at] = ax.i0[o];
        taps[4 * at + 1] = ax.i1[o];
        bits[4 * at + 2] = ax.w0[o];
        bits[4 * at + 3] = ax.w1[o];
      }
    }
    const tapTensor = tensor(taps);
    const uniforms = { inSize: [...axes.map((a) => a.nIn), 1], outSize: [...axes.map((a) => a.nOut), 1], tapOffset: [...tapOffset, 0] };
    const doubleD = isDoubling(axes[0]);
    // x2 along H and W (and D, or D copied): the blocked kernel, which loads each input about twice instead of 8 times
    if (!nearest && isDoubling(axes[1]) && isDoubling(axes[2]) && (doubleD || isCopy(axes[0]))) {
      const k = kernel(`interpolate.x2${doubleD ? '.d' : ''}`, () => interpolateWgsl, { defines: { X2: true, DOUBLE_D: doubleD } });
      const planes = doubleD ? axes[0].nIn : axes[0].nOut;
      const whole = ([dst]: Tensor[], [src]: Tensor[]) => {
        const rows = dst.size / (axes[0].nOut * axes[1].nOut * axes[2].nOut);
        const total = rows * planes * axes[1].nIn * ceilDiv(axes[2].nIn, 2);
        dispatch(k, [dst.buffer(op), src.buffer(op), tapTensor.buffer(op)], { total, ...uniforms }, grid1d(ceilDiv(total, k.workgroupSize)));
      };
      const B = out.size / (axes[0].nOut * axes[1].nOut * axes[2].nOut);
      if (!inRowRuns(op, B, [out], [x], whole)) whole([out], [x]);
      tapTensor.dispose();
      return out;
    }
    const k = kernel(`interpolate.${nearest ? 'nearest' : 'linear'}`, () => interpolateWgsl.replaceAll('{{RUN}}', String(RUN)), {
      defines: { NEAREST: nearest },
    });
    // rows of B (batch x channel) in runs when x or out is past one binding
    const whole = ([dst]: Tensor[], [src]: Tensor[]) => {
      const total = (dst.size / axes[2].nOut) * ceilDiv(axes[2].nOut, RUN);
      dispatch(
        k,
        [dst.buffer(op), src.buffer(op), tapTensor.buffer(op)],
        { total, ...uniforms },
        grid1d(ceilDiv(total, k.workgroupSize)),
      );
    };
    const B = out.size / (axes[0].nOut * axes[1].nOut * axes[2].nOut);
    if (!inRowRuns(op, B, [out], [x], whole)) whole([out], [x]);
    tapTensor.dispose();
  }
  return out;
}
