/**
 * Pooling with PyTorch's semantics (torch.nn.functional, CPU rules): maxPool2d/3d (argmax indices in PyTorch's
 * flattened-spatial convention), avgPool2d/3d, adaptiveAvgPool2d/3d, each with its backward. Every variant runs
 * shaders/pool.wgsl on a [B, D, H, W] view (B = all leading dims, so unbatched inputs need no copy; 2-D pooling is
 * 3-D pooling with a unit depth axis). Backward kernels are gathers (each input sums the outputs that cover it):
 * deterministic, no atomics.
 */
import poolWgsl from '../../shaders/pool.wgsl';
import { needsRecording } from '../engine/autograd.js';
import { fail, fmtShape } from '../engine/errors.js';
import { FLOAT, composed, defineMultiOutputOp, defineOp, type Composed, type Forward } from '../engine/op.js';
import { dispatch, grid1d, kernel } from '../engine/runtime.js';
import { Tensor, shapeSize, tidy } from '../engine/tensor.js';
import { ceilDiv, describe, emptyTensor, expectFloat, expectTensor } from './common.js';
import { fillInto, inRowRuns } from './base.js';
import { mean } from './reduce.js';
import { reshape } from './shape.js';

/** An int, or one int per spatial axis (a 1-element list is repeated, as PyTorch accepts). */
export type IntOrTuple = number | readonly number[];

export interface MaxPoolOptions {
  /** Default (null or omitted): kernelSize. */
  stride?: IntOrTuple | null;
  padding?: IntOrTuple;
  dilation?: IntOrTuple;
  ceilMode?: boolean;
  /** Also return the argmax of each window: [values, indices (i32)], indices flattened over the spatial dims. */
  returnIndices?: boolean;
}

export interface AvgPoolOptions {
  /** Default (null or omitted): kernelSize. */
  stride?: IntOrTuple | null;
  padding?: IntOrTuple;
  ceilMode?: boolean;
  countIncludePad?: boolean;
  /** Divide every window sum by this instead of the window's element count. */
  divisorOverride?: number | null;
}

/** Output size per spatial axis; null keeps that axis's input size. */
export type AdaptiveOutputSize = number | null | readonly (number | null)[];

type Vec3 = [number, number, number];
type Variant = 'max' | 'avg' | 'adaptive';

/** A pooling problem on the [B, D, H, W] view; spatial vectors are (D, H, W) with D = 1 for 2-D pooling. */
interface Geometry {
  /** Input dims before the spatial ones ([N, C] or [C]). */
  lead: number[];
  B: number;
  inSize: Vec3;
  outSize: Vec3;
  ksize: Vec3;
  stride: Vec3;
  pad: Vec3;
  dil: Vec3;
  divisor: number;
  countPad: boolean;
}

/** Kernel forms: forward (with or without writing the argmax) and the gather or scatter backward. */
type Form = 'forward' | 'forward+indices' | 'gather' | 'scatter';

/**
 * Max pooling whose windows are all 2x2 (2-D) or 2x2x2 at stride 2, without padding or dilation, inside the input
 * (maxPool(x, 2)): the forward and scatter kernels' unrolled form (shaders/pool.wgsl WIN2); 0 otherwise.
 */
function win2(variant: Variant, geo: Geometry): 0 | 2 | 3 {
  if (variant !== 'max') return 0;
  const depth = geo.ksize[0];
  const ok =
    (depth === 1 || depth === 2) &&
    geo.ksize.every((k, a) => (a === 0 ? k === depth : k === 2) && geo.stride[a] === k && geo.pad[a] === 0 && geo.dil[a] === 1) &&
    geo.outSize.every((o, a) => o * geo.stride[a] <= geo.inSize[a]);
  return !ok ? 0 : depth === 2 ? 3 : 2;
}

function poolKernel(variant: Variant, form: Form, win: 0 | 2 | 3) {
  return kernel(`pool.${variant}.${form}${win ? `.win${win}` : ''}`, () => poolWgsl, {
    defines: {
      WIN2: win > 0,
      WIN2D: win === 3,
      MAX: variant === 'max',
      AVG: variant === 'avg',
      ADAPTIVE: variant === 'adaptive',
      INDICES: form === 'forward+indices',
      BACKWARD: form === 'gather' || form === 'scatter',
      SCATTER: form === 'scatter',
    },
  });
}

/**
 * Runs one kernel form over `outs` then `ins` (the shader's binding order); `perRow` = invocations with work per row of
 * B; rows in runs when a tensor is past one binding (`prepare` runs on each run's outputs first, e.g. zeroing).
 */
function launch(
  op: string,
  variant: Variant,
  form: Form,
  geo: Geometry,
  outs: Tensor[],
  ins: Tensor[],
  perRow: number,
  prepare?: (outs: Tensor[]) => void,
): void {
  if (geo.B * perRow === 0) return;
  const k = poolKernel(variant, form, form === 'gather' ? 0 : win2(variant, geo));
  const v4 = (v: Vec3) => [...v, 0];
  const whole = (o: Tensor[], i: Tensor[], B: number) => {
    prepare?.(o);
    dispatch(
      k,
      [...o, ...i].map((t) => t.buffer(op)),
      {
        total: B * perRow,
        divisor: geo.divisor,
        countPad: geo.countPad ? 1 : 0,
        inSize: v4(geo.inSize),
        outSize: v4(geo.outSize),
        ksize: v4(geo.ksize),
        stride: v4(geo.stride),
        pad: v4(geo.pad),
        dil: v4(geo.dil),
      },
      grid1d(ceilDiv(B * perRow, k.workgroupSize)),
    );
  };
  if (!inRowRuns(op, geo.B, outs, ins, whole)) whole(outs, ins, geo.B);
}

const spatialVolume = (v: Vec3) => v[0] * v[1] * v[2];
const outShapeOf = (geo: Geometry, nd: number) => [...geo.lead, ...geo.outSize.slice(3 - nd)];

/**
 * The gradient of the input from the output gradient `g` (and, for max pooling, the saved argmax). Windows that do
 * not overlap (the usual kernel = stride downsampling) scatter from each output, 1/volume of the invocations of the
 * gather; the inputs no window covers are zeroed first unless the windows tile the input.
 */
function poolBackward(variant: Variant, geo: Geometry, g: Tensor, idx: Tensor | null, inputShape: readonly number[]): Tensor {
  const op = `${variant}Pool.backward`;
  const gin = emptyTensor(op, inputShape, 'f32');
  const ins = idx ? [g, idx] : [g];
  const span = geo.ksize.map((k, a) => (k - 1) * geo.dil[a] + 1);
  const disjoint = variant !== 'adaptive' && geo.stride.every((s, a) => s >= span[a]);
  if (!disjoint) {
    launch(op, variant, 'gather', geo, [gin], ins, spatialVolume(geo.inSize));
    return gin;
  }
  // windows tile an axis when they are contiguous, adjacent and reach its end (the first starts at -pad <= 0)
  const tiles = geo.stride.every(
    (s, a) => s === span[a] && (geo.ksize[a] === 1 || geo.dil[a] === 1) && (geo.outSize[a] - 1) * s - geo.pad[a] + span[a] >= geo.inSize[a],
  );
  launch(op, variant, 'scatter', geo, [gin], ins, spatialVolume(geo.outSize), tiles ? undefined : ([t]) => fillInto(t, 0));
  return gin;
}

// ---- argument checks --------------------------------------------------------------------------------------------

function checkInput(op: string, x: Tensor, nd: number): number[] {
  expectTensor(op, 'input', x);
  expectFloat(op, 'input', x);
  if (x.ndim !== nd + 1 && x.ndim !== nd + 2)
    fail(
      op,
      `input must be ${nd + 2}-D [N, C, ${nd === 2 ? 'H, W' : 'D, H, W'}] or ${nd + 1}-D unbatched [C, ${nd === 2 ? 'H, W' : 'D, H, W'}], ` +
        `got rank ${x.ndim} (shape ${fmtShape(x.shape)})`,
    );
  // PyTorch allows an empty batch, never an empty channel or spatial dim
  const nonBatch = x.shape.slice(x.ndim - nd - 1);
  if (nonBatch.includes(0))
    fail(op, `input has an empty channel or spatial dimension (shape ${fmtShape(x.shape)}); only the batch dimension may be 0`);
  return x.shape.slice(x.ndim - nd);
}

/** One value per spatial axis from an int or list; `min` is the smallest value allowed. */
function perAxis(op: string, arg: string, v: unknown, nd: number, min: number): number[] {
  const list = typeof v === 'number' ? [v] : Array.isArray(v) ? [...(v as unknown[])] : null;
  if (!list || (list.length !== 1 && list.length !== nd))
    fail(op, `${arg} must be an integer or a list of ${nd} integers (one per spatial dim), got ${describe(v)}`);
  for (const e of list)
    if (typeof e !== 'number' || !Number.isInteger(e) || e < min)
      fail(op, `${arg} must hold integers >= ${min}, got ${JSON.stringify(v)}`);
  return list.length === 1 ? new Array<number>(nd).fill(list[0] as number) : (list as number[]);
}

/** [1, h, w] for 2-D, [d, h, w] for 3-D. */
function toVec3(v: readonly number[], fill: number): Vec3 {
  return (v.length === 3 ? [...v] : [fill, ...v]) as Vec3;
}

/** PyTorch's pooling_output_shape: with ceilMode the last window must still start inside the input or left padding. */
function pooledSize(inSize: number, k: number, pad: number, stride: number, dil: number, ceil: boolean): number {
  let out = Math.floor((inSize + 2 * pad - dil * (k - 1) - 1 + (ceil ? stride - 1 : 0)) / stride) + 1;
  if (ceil && (out - 1) * stride >= inSize + pad) out--;
  return out;
}

function windowGeometry(
  op: string,
  x: Tensor,
  nd: number,
  kernelSize: IntOrTuple,
  o: { stride?: IntOrTuple | null; padding?: IntOrTuple; dilation?: IntOrTuple; ceilMode?: boolean },
): Geometry {
  const spatial = checkInput(op, x, nd);
  if (o === null || typeof o !== 'object') fail(op, `options must be an object like { stride: 2, padding: 1 }, got ${describe(o)}`);
  const k = perAxis(op, 'kernelSize', kernelSize, nd, 1);
  const noStride = o.stride === undefined || o.stride === null || (Array.isArray(o.stride) && o.stride.length === 0);
  const s = noStride ? k : perAxis(op, 'stride', o.stride, nd, 1);
  const p = perAxis(op, 'padding', o.padding ?? 0, nd, 0);
  const d = perAxis(op, 'dilation', o.dilation ?? 1, nd, 1);
  if (p.some((pi, i) => pi > Math.floor(k[i] / 2)))
    fail(op, `padding must be at most half the kernel size on every axis, got padding ${fmtShape(p)} with kernelSize ${fmtShape(k)}`);
  const ceil = Boolean(o.ceilMode);
  const out = spatial.map((n, i) => pooledSize(n, k[i], p[i], s[i], d[i], ceil));
  if (out.some((n) => n < 1))
    fail(
      op,
      `the output would be empty: input spatial size ${fmtShape(spatial)} with kernelSize ${fmtShape(k)}, stride ${fmtShape(s)}, ` +
        `padding ${fmtShape(p)}, dilation ${fmtShape(d)} gives ${fmtShape(out)}. Use a smaller kernel or dilation, or pad the input.`,
    );
  const lead = x.shape.slice(0, x.ndim - nd);
  return {
    lead,
    B: shapeSize(lead),
    inSize: toVec3(spatial, 1),
    outSize: toVec3(out, 1),
    ksize: toVec3(k, 1),
    stride: toVec3(s, 1),
    pad: toVec3(p, 0),
    dil: toVec3(d, 1),
    divisor: 0,
    countPad: true,
  };
}

// ---- max pooling ------------------------------------------------------------------------------------------------

/**
 * Max pooling as an op with two outputs: `values` (differentiable) and `indices` (the argmax per window, made only when
 * asked for or when backward needs it: the gradient is scattered through them).
 */
function maxPoolOp(op: 'maxPool2d' | 'maxPool3d', nd: number) {
  return defineMultiOutputOp({
    name: op,
    dtypes: FLOAT,
    differentiableOutput: 'values',
    inputs: ([x]) => [x],
    forward: (x: Tensor, kernelSize: IntOrTuple, opts: MaxPoolOptions = {}) => {
      const geo = windowGeometry(op, x, nd, kernelSize, opts);
      const outShape = outShapeOf(geo, nd);
      const values = emptyTensor(op, outShape, 'f32');
      const indices = opts.returnIndices || needsRecording([x]) ? emptyTensor(op, outShape, 'i32') : null;
      launch(op, 'max', indices ? 'forward+indices' : 'forward', geo, indices ? [values, indices] : [values], [x], spatialVolume(geo.outSize));
      const out: { values: Tensor; indices: Tensor | null } = { values, indices };
      return { out, attrs: geo, save: () => [indices!] };
    },
    backward: (g, ctx) => [poolBackward('max', ctx.attrs, g, ctx.saved[0], ctx.inputShapes[0])],
  });
}

const maxPool2dOp = maxPoolOp('maxPool2d', 2);
const maxPool3dOp = maxPoolOp('maxPool3d', 3);

/** PyTorch's return convention: the pooled tensor, or [values, indices] with returnIndices. */
function valuesOrPair(r: { values: Tensor; indices: Tensor | null }, returnIndices: boolean | undefined): Tensor | [Tensor, Tensor] {
  if (returnIndices) return [r.values, r.indices!];
  r.indices?.dispose();
  return r.values;
}

/** torch.nn.functional.max_pool2d on [N, C, H, W] or [C, H, W]. */
export function maxPool2d(x: Tensor, kernelSize: IntOrTuple, opts: MaxPoolOptions & { returnIndices: true }): [Tensor, Tensor];
export function maxPool2d(x: Tensor, kernelSize: IntOrTuple, opts?: MaxPoolOptions & { returnIndices?: false }): Tensor;
export function maxPool2d(x: Tensor, kernelSize: IntOrTuple, opts?: MaxPoolOptions): Tensor | [Tensor, Tensor];
export function maxPool2d(x: Tensor, kernelSize: IntOrTuple, opts?: MaxPoolOptions): Tensor | [Tensor, Tensor] {
  return valuesOrPair(maxPool2dOp(x, kernelSize, opts), opts?.returnIndices);
}

/** torch.nn.functional.max_pool3d on [N, C, D, H, W] or [C, D, H, W]. */
export function maxPool3d(x: Tensor, kernelSize: IntOrTuple, opts: MaxPoolOptions & { returnIndices: true }): [Tensor, Tensor];
export function maxPool3d(x: Tensor, kernelSize: IntOrTuple, opts?: MaxPoolOptions & { returnIndices?: false }): Tensor;
export function maxPool3d(x: Tensor, kernelSize: IntOrTuple, opts?: MaxPoolOptions): Tensor | [Tensor, Tensor];
export function maxPool3d(x: Tensor, kernelSize: IntOrTuple, opts?: MaxPoolOptions): Tensor | [Tensor, Tensor] {
  return valuesOrPair(maxPool3dOp(x, kernelSize, opts), opts?.returnIndices);
}

// ---- average pooling --------------------------------------------------------------------------------------------

function avgPoolOp(op: 'avgPool2d' | 'avgPool3d', nd: number) {
  return defineOp({
    name: op,
    dtypes: FLOAT,
    inputs: ([x]) => [x],
    forward: (x: Tensor, kernelSize: IntOrTuple, opts: AvgPoolOptions = {}) => {
      const geo = avgGeometry(op, nd, x, kernelSize, opts);
      const out = emptyTensor(op, outShapeOf(geo, nd), 'f32');
      launch(op, 'avg', 'forward', geo, [out], [x], spatialVolume(geo.outSize));
      return { out, attrs: geo };
    },
    backward: (g, ctx) => [poolBackward('avg', ctx.attrs, g, null, ctx.inputShapes[0])],
  });
}

function avgGeometry(op: string, nd: number, x: Tensor, kernelSize: IntOrTuple, opts: AvgPoolOptions): Geometry {
  const geo = windowGeometry(op, x, nd, kernelSize, { ...opts, dilation: 1 });
  const div = opts.divisorOverride;
  if (div !== undefined && div !== null && (!Number.isInteger(div) || div === 0))
    fail(op, `divisorOverride must be a non-zero integer (or null), got ${describe(div)}`);
  geo.divisor = div ?? 0;
  geo.countPad = opts.countIncludePad ?? true;
  return geo;
}

/** torch.nn.functional.avg_pool2d on [N, C, H, W] or [C, H, W]. */
export const avgPool2d = avgPoolOp('avgPool2d', 2);

/** torch.nn.functional.avg_pool3d on [N, C, D, H, W] or [C, D, H, W]. */
export const avgPool3d = avgPoolOp('avgPool3d', 3);

// ---- adaptive average pooling -----------------------------------------------------------------------------------

function adaptiveAvgPoolOp(op: 'adaptiveAvgPool2d' | 'adaptiveAvgPool3d', nd: number) {
  return defineOp({
    name: op,
    dtypes: FLOAT,
    inputs: ([x]) => [x],
    forward: (x: Tensor, outputSize: AdaptiveOutputSize) => adaptiveForward(op, nd, x, outputSize),
    backward: (g, ctx) => [poolBackward('adaptive', ctx.attrs, g, null, ctx.inputShapes[0])],
  });
}

function adaptiveForward(op: string, nd: number, x: Tensor, outputSize: AdaptiveOutputSize): Forward<Tensor, Geometry> | Composed<Tensor> {
  const spatial = checkInput(op, x, nd);
  const list = outputSize === null || typeof outputSize === 'number' ? [outputSize] : Array.isArray(outputSize) ? [...outputSize] : null;
  if (!list || (list.length !== 1 && list.length !== nd))
    fail(op, `outputSize must be an integer or a list of ${nd} integers or nulls (one per spatial dim), got ${describe(outputSize)}`);
  const sizes = spatial.map((n, i) => {
    const v = list.length === 1 ? list[0] : list[i];
    if (v === null) return n;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1)
      fail(op, `outputSize must hold positive integers or nulls, got ${JSON.stringify(outputSize)}`);
    return v;
  });
  const lead = x.shape.slice(0, x.ndim - nd);
  if (sizes.every((o, i) => spatial[i] % o === 0)) {
    // Equal windows (global pooling above all): a mean over a reshaped view, whose reduction kernel shares each
    // large window among a workgroup instead of one invocation (and gives the gradient by its own rules).
    return composed(
      tidy(() => {
        const split = sizes.flatMap((o, i) => [o, spatial[i] / o]);
        const windowDims = sizes.map((_, i) => lead.length + 2 * i + 1);
        return mean(reshape(x, [...lead, ...split]), { dim: windowDims });
      }),
    );
  }
  const geo: Geometry = {
    lead,
    B: shapeSize(lead),
    inSize: toVec3(spatial, 1),
    outSize: toVec3(sizes, 1),
    ksize: [1, 1, 1],
    stride: [1, 1, 1],
    pad: [0, 0, 0],
    dil: [1, 1, 1],
    divisor: 0,
    countPad: false,
  };
  const out = emptyTensor(op, [...lead, ...sizes], 'f32');
  launch(op, 'adaptive', 'forward', geo, [out], [x], spatialVolume(geo.outSize));
  return { out, attrs: geo };
}

/** torch.nn.functional.adaptive_avg_pool2d on [N, C, H, W] or [C, H, W]. */
export const adaptiveAvgPool2d = adaptiveAvgPoolOp('adaptiveAvgPool2d', 2);

/** torch.nn.functional.adaptive_avg_pool3d on [N, C, D, H, W] or [C, D, H, W]. */
export const adaptiveAvgPool3d = adaptiveAvgPoolOp('adaptiveAvgPool3d', 3);
