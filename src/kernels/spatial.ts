/**
 * The spatial transformer family, with PyTorch / VoxelMorph semantics (coordinate conventions: docs/conventions.md):
 * - gridSample: torch.nn.functional.grid_sample for 4-D and 5-D input (bilinear/trilinear and nearest; zeros,
 *   border and reflection padding), gradients to input (deterministic, see shaders/grid_sample.wgsl) and grid.
 * - affineGrid: torch.nn.functional.affine_grid, composed from broadcast ops.
 * - spatialTransform: VoxelMorph's SpatialTransformer; the same kernel reads the voxel displacement field directly.
 * - integrateVelocity: VoxelMorph's VecInt (scaling and squaring), composed from spatialTransform.
 * - spatialGradient: finite differences along each spatial axis (one kernel, adjoint kernel for backward).
 * - jacobianDeterminant: det(I + grad u) as VoxelMorph's jacobian_determinant (np.gradient differences), composed
 *   from spatialGradient and elementwise ops: an evaluation metric, a handful of bandwidth-bound passes.
 */
import gridSampleWgsl from '../../shaders/grid_sample.wgsl';
import spatialGradientWgsl from '../../shaders/spatial_gradient.wgsl';
import { fail, fmtShape } from '../engine/errors.js';
import { declareCost } from '../engine/profiler-hooks.js';
import { FLOAT, defineOp, type BackwardRule } from '../engine/op.js';
import { bindingLimit, fitsBinding } from '../engine/binding.js';
import { dispatch, grid1d, kernel, type Kernel } from '../engine/runtime.js';
import { Tensor, shapeSize, tidy } from '../engine/tensor.js';
import { ceilDiv, describe, emptyTensor, expectFloat, expectRank, expectTensor } from './common.js';
import { fillInto, sliceBlock, writeBlock } from './base.js';
import { mapExpr } from './elementwise.js';
import { tensor } from './creation.js';
import { add, mul, sub } from './math.js';
import { cumsum } from './cumsum.js';
import { reshape, slice, split } from './shape.js';

export type GridSampleMode = 'bilinear' | 'nearest';
export type GridSamplePadding = 'zeros' | 'border' | 'reflection';

export interface GridSampleOptions {
  /** 'bilinear' (trilinear for 5-D input) or 'nearest'; PyTorch's default 'bilinear'. */
  mode?: GridSampleMode;
  /** How positions outside the input read: 'zeros' (default), 'border' (clamped) or 'reflection'. */
  paddingMode?: GridSamplePadding;
  /** true: -1 and 1 are the centres of the corner voxels; false (default): their outer edges. */
  alignCorners?: boolean;
}

const PADDING: Record<GridSamplePadding, number> = { zeros: 0, border: 1, reflection: 2 };

interface SampleAttrs {
  nd: 2 | 3;
  nearest: boolean;
  padding: number;
  alignCorners: boolean;
  /** coords is a voxel displacement field [N, nd, *spatial] (spatialTransform), not a normalised grid. */
  flow: boolean;
  /** Forward only, with flow and input = coords: output = input + sample, one squaring step of integrateVelocity. */
  addSelf?: boolean;
}

/** Uniforms shared by the passes. */
function sampleUniforms(input: Tensor, outSpatialShape: readonly number[], a: SampleAttrs) {
  const xyz = (s: readonly number[]) => [...s].reverse().concat([1, 1]).slice(0, 4);
  const inSpatial = input.shape.slice(2);
  const outSpatial = shapeSize(outSpatialShape);
  return {
    total: input.shape[0] * outSpatial,
    outSpatial,
    channels: input.shape[1],
    inSpatial: shapeSize(inSpatial),
    inSize: xyz(inSpatial),
    outSize: xyz(outSpatialShape),
    padding: a.padding,
    // flow positions are in voxels with corner voxels' centres at 0 and size - 1: reflection as align_corners=True
    alignCorners: a.alignCorners || a.flow ? 1 : 0,
  };
}

function sampleKernel(a: SampleAttrs, pass: 'forward' | 'backward', inputGrad = false, gridGrad = false) {
  const key =
    `gridSample.${a.nd}d.${a.nearest ? 'nearest' : 'linear'}.${a.flow ? 'flow' : 'grid'}.${pass}${a.addSelf && pass === 'forward' ? '.addSelf' : ''}` +
    (pass === 'backward' ? `.${inputGrad ? 'i' : ''}${gridGrad ? 'g' : ''}` : '');
  return kernel(key, () => gridSampleWgsl, {
    defines: {
      ...shapeDefines(a),
      FORWARD: pass === 'forward',
      ADD_SELF: Boolean(a.addSelf) && pass === 'forward',
      BACKWARD: pass === 'backward',
      INPUT_GRAD: inputGrad,
      GRID_GRAD: gridGrad,
    },
  });
}

function shapeDefines(a: SampleAttrs) {
  return { DIM3: a.nd === 3, NEAREST: a.nearest, FLOW: a.flow };
}

/** The passes of the input gradient's gather after the counting backward pass (shaders/grid_sample.wgsl). */
function gatherKernel(a: SampleAttrs, pass: 'order' | 'place' | 'gather', acc = false) {
  const key = `gridSample.${a.nd}d.${a.nearest ? 'nearest' : 'linear'}.${a.flow ? 'flow' : 'grid'}.${pass}${acc ? '.acc' : ''}`;
  return kernel(key, () => gridSampleWgsl, {
    defines: { ...shapeDefines(a), ORDER: pass === 'order', PLACE: pass === 'place', GATHER: pass === 'gather', ACC: acc },
  });
}

/** Floats of a sample's record (shaders/grid_sample.wgsl): its fraction (linear modes), its upstream gradients, in vec4s. */
function recordFloats(nearest: boolean, channels: number): number {
  return 4 * ((nearest ? 0 : 1) + ceilDiv(channels, 4));
}

/** GATHER's invocations: one per input element (nearest), or per 2x2(x2) block of them (linear modes). */
function gatherInvocations(nearest: boolean, batch: number, inSize: number[]): number {
  const [w, h, d] = inSize;
  return nearest ? batch * w * h * d : batch * Math.ceil(w / 2) * Math.ceil(h / 2) * Math.ceil(d / 2);
}

/** Cells per batch element of the input gradient's gather: base voxels -1 .. size - 1 along each axis. */
function cellsPerBatch(input: Tensor): number {
  return shapeSize(input.shape.slice(2).map((d) => d + 1));
}

// Cost models (vg.profile), per output location (sample) and channel: the forward reads 2^nd corners (an fma
// each); the backward adds per corner an fma into the coordinate gradient, and counts the sample into its cell (an
// atomic, its slot and cell written). ORDER moves 16 bytes per sample; PLACE reads its key, slot, cell range,
// (about one) cell neighbour, coordinates and upstream gradients and writes its record (fractions and gradients);
// GATHER reads each record once per block of input elements its cell touches (1.5^nd blocks on average: 2 along
// an axis where the cell's base is odd, 1 where even), about 4 FLOPs per channel and corner, and writes the input
// gradient.
declareCost('gridSample', (u, _g, _b, name) => {
  const nd = name.includes('.3d.') ? 3 : 2;
  const nearest = name.includes('.nearest.');
  const corners = nearest ? 1 : 2 ** nd;
  const [total, C, inSpatial, outSpatial] = [u.total, u.channels, u.inSpatial, u.outSpatial] as number[];
  const record = recordFloats(nearest, C);
  const pass = name.split('.')[4];
  if (pass === 'gather') {
    const batch = total / gatherInvocations(nearest, 1, u.inSize as number[]);
    const samples = batch * outSpatial;
    const reads = nearest ? 1 : 1.5 ** nd;
    return { flops: 4 * corners * samples * C, bytes: 4 * record * samples * reads + 4 * batch * inSpatial * C };
  }
  const inputs = (total / outSpatial) * C * inSpatial;
  if (pass === 'forward') return { flops: 2 * corners * total * C, bytes: 4 * (total * C + total * nd + inputs) };
  if (pass === 'order') return { flops: 0, bytes: 16 * total };
  if (pass === 'place') return { flops: 0, bytes: 4 * total * (5 + nd + C + record) };
  if (pass !== 'backward') return null;
  const passes = name.slice(name.lastIndexOf('.') + 1);
  const gInput = passes.includes('i');
  const gGrid = passes.includes('g');
  const flops = gGrid ? 4 * corners * total * C : 0;
  const bytes = 4 * total * nd + (gGrid ? 4 * (total * C + inputs + total * nd) : 0) + (gInput ? 16 * total : 0);
  return { flops, bytes };
});

function outSpatialOf(coords: Tensor, a: SampleAttrs): number[] {
  return a.flow ? coords.shape.slice(2) : coords.shape.slice(1, -1);
}

function sampleRaw(op: string, input: Tensor, coords: Tensor, a: SampleAttrs): Tensor {
  const outSpatial = outSpatialOf(coords, a);
  const out = emptyTensor(op, [input.shape[0], input.shape[1], ...outSpatial], 'f32');
  if (out.size === 0) return out;
  const k = sampleKernel(a, 'forward');
  const u = sampleUniforms(input, outSpatial, a);
  const plan = samplePlan(op, input, coords, a, false);
  if (!plan) {
    dispatch(k, [out.buffer(op), input.buffer(op), coords.buffer(op)], u, grid1d(ceilDiv(u.total, k.workgroupSize)));
    return out;
  }
  const outView = out.shareStorage([...plan.lead, plan.outer, plan.plane]);
  for (const pc of pieces(op, input, coords, a, plan)) {
    const part = emptyTensor(op, [1, pc.c1 - pc.c0, pc.r1 - pc.r0, plan.plane], 'f32');
    const pu = pieceUniforms(u, plan, pc);
    dispatch(k, [part.buffer(op), pc.input.buffer(op), pc.coords.buffer(op)], pu, grid1d(ceilDiv(pu.total, k.workgroupSize)));
    writeBlock(op, outView, [pc.n, pc.c0, pc.r0, 0], part);
    part.dispose();
  }
  outView.dispose();
  return out;
}

// ---- sampling past one storage binding -----------------------------------------------------------------------------
// Samples may land anywhere in the input, so its planes are never split; the work is split per batch element, into
// groups of channels whose input planes (and, for the input gradient, twice their size) fit one binding, and into
// slabs of the outermost output dim whose outputs, coordinates and gather records fit. Each piece runs the unchanged
// kernels: the output comes out identical to the whole problem's; the input gradient is the sum of the slabs' sums
// and the coordinate gradient of several channel groups their sum (a different order of additions).

interface SamplePlan {
  /** [N, C]: the output's leading dims. */
  lead: [number, number];
  groups: [number, number][];
  /** Output slabs: `rows` indices of the `outer` (outermost output) dim, each `plane` locations. */
  rows: number;
  outer: number;
  plane: number;
  inSpatial: number;
}

function samplePlan(op: string, input: Tensor, coords: Tensor, a: SampleAttrs, inputGrad: boolean): SamplePlan | null {
  const outSpatial = outSpatialOf(coords, a);
  const [N, C] = input.shape;
  const inSpatial = shapeSize(input.shape.slice(2));
  const outer = outSpatial[0];
  const plane = shapeSize(outSpatial.slice(1));
  const limit = bindingLimit();
  const planeBytes = inSpatial * 4 * (inputGrad ? 2 : 1);
  // whole: the input gradient is input-shaped, and the gather's records and cell counts are bound
  const cellBytes = inputGrad ? cellsPerBatch(input) * 4 : 0;
  const gather = inputGrad ? N * Math.max(outer * plane * 4 * recordFloats(a.nearest, C), cellBytes + 4) : 0;
  if (fitsBinding(input, coords) && N * C * outer * plane * 4 <= limit && gather <= limit) return null;
  // in pieces, a channel group's input gradient is summed across the output slabs (the input and it bound at once)
  const perGroup = cellBytes + 4 > limit ? 0 : Math.min(C, Math.floor(limit / planeBytes));
  if (perGroup === 0)
    fail(
      op,
      `one channel plane of input (shape ${fmtShape(input.shape)}) takes ${planeBytes} bytes${inputGrad ? ' with its gradient' : ''}, ` +
        `more than one storage binding on this adapter (maxStorageBufferBindingSize ${limit} bytes); samples may land anywhere in ` +
        'it, so it cannot be split: downsample or crop the input first',
    );
  // per output location: its values or coordinates, and with the input gradient its record
  const rows = Math.min(outer, Math.floor(limit / (Math.max(perGroup, a.nd, inputGrad ? recordFloats(a.nearest, perGroup) : 0) * plane * 4)));
  if (rows === 0)
    fail(
      op,
      `one row of its output (${plane} locations) with ${Math.max(perGroup, a.nd)} channels is larger than one storage ` +
        `binding (maxStorageBufferBindingSize ${limit} bytes); crop the output grid`,
    );
  const groups: [number, number][] = [];
  for (let c0 = 0; c0 < C; c0 += perGroup) groups.push([c0, Math.min(C, c0 + perGroup)]);
  return { lead: [N, C], groups, rows, outer, plane, inSpatial };
}

interface SamplePiece {
  n: number;
  /** Index of the channel group. */
  group: number;
  c0: number;
  c1: number;
  r0: number;
  r1: number;
  /** The group's input planes [1, c1 - c0, inSpatial] and the slab's coordinates (freed when the next piece comes). */
  input: Tensor;
  coords: Tensor;
}

/** Each piece of `plan` in order (batch element, channel group, output slab), with its copied input and coordinates. */
function* pieces(op: string, input: Tensor, coords: Tensor, a: SampleAttrs, plan: SamplePlan): Generator<SamplePiece> {
  const [N, C] = plan.lead;
  const inView = input.shareStorage([N, C, plan.inSpatial]);
  const cView = coords.shareStorage(a.flow ? [N, a.nd, plan.outer, plan.plane] : [N, plan.outer, plan.plane, a.nd]);
  for (let n = 0; n < N; n++)
    for (let group = 0; group < plan.groups.length; group++) {
      const [c0, c1] = plan.groups[group];
      const inPart = sliceBlock(op, inView, [n, c0, 0], [1, c1 - c0, plan.inSpatial]);
      for (let r0 = 0; r0 < plan.outer; r0 += plan.rows) {
        const r1 = Math.min(plan.outer, r0 + plan.rows);
        const cPart = a.flow
          ? sliceBlock(op, cView, [n, 0, r0, 0], [1, a.nd, r1 - r0, plan.plane])
          : sliceBlock(op, cView, [n, r0, 0, 0], [1, r1 - r0, plan.plane, a.nd]);
        yield { n, group, c0, c1, r0, r1, input: inPart, coords: cPart };
        cPart.dispose();
      }
      inPart.dispose();
    }
  inView.dispose();
  cView.dispose();
}

/** The whole problem's uniforms narrowed to one piece (one batch element, its channels and output slab). */
function pieceUniforms(u: ReturnType<typeof sampleUniforms>, plan: SamplePlan, pc: SamplePiece) {
  const locations = (pc.r1 - pc.r0) * plan.plane;
  return { ...u, total: locations, outSpatial: locations, channels: pc.c1 - pc.c0, outStart: pc.r0 * plan.plane };
}

/** Gradients to input (a gather, see shaders/grid_sample.wgsl) and to coords; the per-sample pass does the coords'. */
function sampleBackward(op: string, g: Tensor, input: Tensor, coords: Tensor, a: SampleAttrs, needInput: boolean, needCoords: boolean): (Tensor | null)[] {
  // nearest has a zero coordinate gradient (as PyTorch): no kernel work beyond the zero fill
  const gridGrad = needCoords && !a.nearest;
  const empty = g.size === 0 || input.size === 0;
  // planned first: a problem that cannot be split fails before any GPU work
  const plan = (needInput || gridGrad) && !empty ? samplePlan(op, input, coords, a, needInput) : null;
  const gCoords = needCoords ? emptyTensor(op, coords.shape, 'f32') : null;
  if (gCoords && !gridGrad) fillInto(gCoords, 0);
  if (!needInput && !gridGrad) return [null, gCoords];
  const outSpatial = outSpatialOf(coords, a);
  const u = sampleUniforms(input, outSpatial, a);
  const gIn = needInput ? emptyTensor(op, input.shape, 'f32') : null;
  if (empty) {
    if (gIn) fillInto(gIn, 0);
    if (gCoords && gridGrad) fillInto(gCoords, 0);
    return [gIn, gCoords];
  }
  const k = sampleKernel(a, 'backward', needInput, gridGrad);
  if (plan) {
    sampleBackwardPieces(op, k, u, plan, g, input, coords, a, gIn, gridGrad ? gCoords : null);
    return [gIn, gCoords];
  }
  const buffers = [g.buffer(op), coords.buffer(op)];
  if (gridGrad) buffers.push(input.buffer(op), gCoords!.buffer(op));
  const cells = needInput ? sampleCells(op, input.shape[0], input, u.total) : null;
  if (cells) buffers.push(cells.counts.buffer(op), cells.slots.buffer(op), cells.keys.buffer(op));
  dispatch(k, buffers, u, grid1d(ceilDiv(u.total, k.workgroupSize)));
  if (gIn) gatherInputGrad(op, a, u, input.shape[0], g, coords, cells!, gIn, false);
  return [gIn, gCoords];
}

/** The per-cell sample counts (zeroed, one leading 0), and the per-sample slots and cells the backward pass writes. */
function sampleCells(op: string, batch: number, input: Tensor, samples: number) {
  const counts = emptyTensor(op, [1 + batch * cellsPerBatch(input)], 'u32');
  fillInto(counts, 0);
  return { counts, slots: emptyTensor(op, [samples], 'u32'), keys: emptyTensor(op, [samples], 'u32') };
}

/**
 * The input gradient from the counted samples (shaders/grid_sample.wgsl): their cells' ranges (a scan of the
 * counts), each cell's samples in order, their records (fraction, upstream gradients) placed, then one gather per
 * input element (or 2x2(x2) block of them) into `target` (with `acc`, added to it). Frees `cells`.
 */
function gatherInputGrad(
  op: string,
  a: SampleAttrs,
  u: ReturnType<typeof sampleUniforms>,
  batch: number,
  g: Tensor,
  coords: Tensor,
  cells: ReturnType<typeof sampleCells>,
  target: Tensor,
  acc: boolean,
): void {
  const ends = cumsum(cells.counts, 0);
  cells.counts.dispose();
  const ok = gatherKernel(a, 'order');
  const order = emptyTensor(op, [u.total], 'u32');
  dispatch(ok, [cells.keys.buffer(op), cells.slots.buffer(op), ends.buffer(op), order.buffer(op)], u, grid1d(ceilDiv(u.total, ok.workgroupSize)));
  const records = emptyTensor(op, [u.total * recordFloats(a.nearest, u.channels)], 'f32');
  const placed = [coords.buffer(op), cells.keys.buffer(op), cells.slots.buffer(op), ends.buffer(op), order.buffer(op), g.buffer(op), records.buffer(op)];
  const pk = gatherKernel(a, 'place');
  dispatch(pk, placed, u, grid1d(ceilDiv(u.total, pk.workgroupSize)));
  for (const t of [order, cells.keys, cells.slots]) t.dispose();
  const gk = gatherKernel(a, 'gather', acc);
  const invocations = gatherInvocations(a.nearest, batch, u.inSize as number[]);
  dispatch(gk, [target.buffer(op), ends.buffer(op), records.buffer(op)], { ...u, total: invocations }, grid1d(ceilDiv(invocations, gk.workgroupSize)));
  for (const t of [ends, records]) t.dispose();
}

function sampleBackwardPieces(
  op: string,
  k: Kernel,
  u: ReturnType<typeof sampleUniforms>,
  plan: SamplePlan,
  g: Tensor,
  input: Tensor,
  coords: Tensor,
  a: SampleAttrs,
  gIn: Tensor | null,
  gCoords: Tensor | null,
): void {
  const [N, C] = plan.lead;
  const gView = g.shareStorage([N, C, plan.outer, plan.plane]);
  const gSlab = (pc: SamplePiece) => sliceBlock(op, gView, [pc.n, pc.c0, pc.r0, 0], [1, pc.c1 - pc.c0, pc.r1 - pc.r0, plan.plane]);
  const gInView = gIn?.shareStorage([N, C, plan.inSpatial]);
  const gcView = gCoords?.shareStorage(a.flow ? [N, a.nd, plan.outer, plan.plane] : [N, plan.outer, plan.plane, a.nd]);
  // the channel group's input gradient, the output slabs' sums added in turn
  let part: Tensor | null = null;
  const finishGroup = (pc: SamplePiece) => {
    if (!part) return;
    writeBlock(op, gInView!, [pc.n, pc.c0, 0], part);
    part.dispose();
    part = null;
  };
  let last: SamplePiece | null = null;
  for (const pc of pieces(op, input, coords, a, plan)) {
    if (last && (last.n !== pc.n || last.group !== pc.group)) finishGroup(last);
    if (gIn && !part) {
      part = emptyTensor(op, [1, pc.c1 - pc.c0, plan.inSpatial], 'f32');
      fillInto(part, 0);
    }
    const gPart = gSlab(pc);
    const gcPart = gCoords ? emptyTensor(op, pc.coords.shape, 'f32') : null;
    const buffers = [gPart.buffer(op), pc.coords.buffer(op)];
    if (gcPart) buffers.push(pc.input.buffer(op), gcPart.buffer(op));
    const pu = pieceUniforms(u, plan, pc);
    const cells = part ? sampleCells(op, 1, input, pu.total) : null;
    if (cells) buffers.push(cells.counts.buffer(op), cells.slots.buffer(op), cells.keys.buffer(op));
    dispatch(k, buffers, pu, grid1d(ceilDiv(pu.total, k.workgroupSize)));
    if (cells) gatherInputGrad(op, a, pu, 1, gPart, pc.coords, cells, part!, true);
    gPart.dispose();
    if (gcPart) {
      const at = a.flow ? [pc.n, 0, pc.r0, 0] : [pc.n, pc.r0, 0, 0];
      if (pc.group === 0) writeBlock(op, gcView!, at, gcPart);
      else {
        // later channel groups add their share of the coordinate gradient
        const prev = sliceBlock(op, gcView!, at, gcPart.shape);
        const total = mapExpr(op, 'a + b', [{ name: 'a', value: prev }, { name: 'b', value: gcPart }], 'f32', 'f32');
        writeBlock(op, gcView!, at, total);
        prev.dispose();
        total.dispose();
      }
      gcPart.dispose();
    }
    last = pc;
  }
  if (last) finishGroup(last);
  for (const t of [gView, gInView, gcView]) t?.dispose();
}

const sampleBackwardRule =
  (op: string): BackwardRule<SampleAttrs> =>
  (g, ctx) => {
    const [input, coords] = ctx.saved;
    return sampleBackward(`${op}.backward`, g, input, coords, ctx.attrs, ctx.needsGrad[0], ctx.needsGrad[1]);
  };

function checkMode(op: string, mode: unknown): boolean {
  if (mode === 'bicubic') fail(op, "mode 'bicubic' is not implemented; use 'bilinear' or 'nearest'");
  if (mode !== 'bilinear' && mode !== 'nearest') fail(op, `mode must be 'bilinear' or 'nearest', got ${describe(mode)}`);
  return mode === 'nearest';
}

function checkPadding(op: string, padding: unknown): number {
  if (padding !== 'zeros' && padding !== 'border' && padding !== 'reflection')
    fail(op, `paddingMode must be 'zeros', 'border' or 'reflection', got ${describe(padding)}`);
  return PADDING[padding];
}

function checkSpatialInput(op: string, arg: string, x: Tensor): 2 | 3 {
  expectTensor(op, arg, x);
  expectFloat(op, arg, x);
  expectRank(op, arg, x, [4, 5]);
  if (x.shape.slice(2).some((d) => d === 0))
    fail(op, `${arg} must have non-empty spatial dimensions, got shape ${fmtShape(x.shape)}`);
  return (x.ndim - 2) as 2 | 3;
}

/**
 * torch.nn.functional.grid_sample: samples input [N, C, H, W] at grid [N, Ho, Wo, 2] (or [N, C, D, H, W] at
 * [N, Do, Ho, Wo, 3]) → [N, C, Ho, Wo] (or [N, C, Do, Ho, Wo]). grid[..., 0] is x (along W), grid[..., 1] is y (along H),
 * grid[..., 2] is z (along D), each normalised to [-1, 1]. Differentiable in input and grid.
 */
export const gridSample = defineOp({
  name: 'gridSample',
  dtypes: FLOAT,
  inputs: ([input, grid]) => [input, grid],
  forward: gridSampleForward,
  backward: sampleBackwardRule('gridSample'),
});

function gridSampleForward(input: Tensor, grid: Tensor, opts: GridSampleOptions = {}) {
  const op = 'gridSample';
  const nd = checkSpatialInput(op, 'input', input);
  expectTensor(op, 'grid', grid);
  expectFloat(op, 'grid', grid);
  const layout = nd === 2 ? '[N, Ho, Wo, 2]' : '[N, Do, Ho, Wo, 3]';
  if (grid.ndim !== input.ndim)
    fail(op, `grid must have rank ${input.ndim} (${layout} for a ${input.ndim}-D input), got shape ${fmtShape(grid.shape)}`);
  if (grid.shape[0] !== input.shape[0])
    fail(op, `grid batch size ${grid.shape[0]} must equal input batch size ${input.shape[0]} (grid ${fmtShape(grid.shape)}, input ${fmtShape(input.shape)})`);
  if (grid.shape[grid.ndim - 1] !== nd)
    fail(op, `grid's last dim must be ${nd} (${nd === 2 ? 'x, y' : 'x, y, z'}) for a ${input.ndim}-D input (${layout}), got shape ${fmtShape(grid.shape)}`);
  const nearest = checkMode(op, opts.mode ?? 'bilinear');
  const padding = checkPadding(op, opts.paddingMode ?? 'zeros');
  const alignCorners = opts.alignCorners ?? false;
  if (typeof alignCorners !== 'boolean') fail(op, `alignCorners must be a boolean, got ${describe(alignCorners)}`);
  const attrs: SampleAttrs = { nd, nearest, padding, alignCorners, flow: false };
  return { out: sampleRaw(op, input, grid, attrs), attrs, save: () => [input, grid] };
}

export interface SpatialTransformOptions {
  /** 'bilinear' (VoxelMorph's default; trilinear in 3-D) or 'nearest' (for label maps; no gradient to the flow). */
  mode?: GridSampleMode;
  /** VoxelMorph samples with 'zeros'; 'border' and 'reflection' behave as in gridSample with alignCorners. */
  paddingMode?: GridSamplePadding;
}

/**
 * VoxelMorph's SpatialTransformer: moved(v) = src(v + flow(v)), a backward (pull) warp. src [N, C, *spatial],
 * flow [N, ndim, *spatial] in voxels, channel i displacing along spatial axis i (D, H, W order in 3-D; H, W in 2-D).
 * Equal to grid_sample(src, normalised identity + flow with channels reversed, align_corners=True) as VoxelMorph
 * computes it, without the normalisation round trip. Differentiable in src and flow.
 */
export const spatialTransform = defineOp({
  name: 'spatialTransform',
  dtypes: FLOAT,
  inputs: ([src, flow]) => [src, flow],
  forward: spatialTransformForward,
  backward: sampleBackwardRule('spatialTransform'),
});

function spatialTransformForward(src: Tensor, flow: Tensor, opts: SpatialTransformOptions = {}) {
  const op = 'spatialTransform';
  const nd = checkSpatialInput(op, 'src', src);
  checkFlow(op, flow, nd);
  if (flow.shape[0] !== src.shape[0] || flow.shape.slice(2).join() !== src.shape.slice(2).join())
    fail(op, `flow ${fmtShape(flow.shape)} must have src's batch size and spatial shape (src ${fmtShape(src.shape)}): the displacement is defined on the grid it warps`);
  const nearest = checkMode(op, opts.mode ?? 'bilinear');
  const padding = checkPadding(op, opts.paddingMode ?? 'zeros');
  const attrs: SampleAttrs = { nd, nearest, padding, alignCorners: true, flow: true };
  return { out: sampleRaw(op, src, flow, attrs), attrs, save: () => [src, flow] };
}

/** A displacement (or velocity) field: [N, nd, *spatial] f32, nd = number of spatial dims (2 or 3, or `nd` given). */
function checkFlow(op: string, flow: Tensor, nd?: number, arg = 'flow'): 2 | 3 {
  expectTensor(op, arg, flow);
  expectFloat(op, arg, flow);
  if (nd !== undefined && flow.ndim !== nd + 2)
    fail(op, `${arg} must have rank ${nd + 2} ([N, ${nd}, ${nd === 2 ? 'H, W' : 'D, H, W'}]), got shape ${fmtShape(flow.shape)}`);
  expectRank(op, arg, flow, [4, 5]);
  const spatial = flow.ndim - 2;
  if (flow.shape[1] !== spatial)
    fail(op, `${arg} must have ${spatial} channels (one displacement per spatial axis, channel i along axis i) for ${spatial}-D fields, got ${flow.shape[1]} (shape ${fmtShape(flow.shape)})`);
  return spatial as 2 | 3;
}

/**
 * VoxelMorph's VecInt: integrates a stationary velocity field [N, ndim, *spatial] (voxels) by scaling and squaring:
 * v = vel / 2^steps, then `steps` times v = v + spatialTransform(v, v). Returns the displacement field.
 */
export const integrateVelocity = defineOp({ name: 'integrateVelocity', composite: true, dtypes: FLOAT, forward: integrateVelocityForward });

function integrateVelocityForward(vel: Tensor, steps = 7): Tensor {
  const op = 'integrateVelocity';
  checkFlow(op, vel, undefined, 'vel');
  if (!Number.isInteger(steps) || steps < 0) fail(op, `steps must be a non-negative integer, got ${describe(steps)}`);
  return tidy(() => {
    let v = mul(vel, 2 ** -steps);
    for (let i = 0; i < steps; i++) v = squaringStep(v);
    return v;
  });
}

/**
 * One squaring step, v + spatialTransform(v, v), in one kernel (the sample and the add fused). Its gradient:
 * g + (d sample / d src)^T g + (d sample / d flow)^T g, the last two from the sampler's backward.
 */
const squaringStep = defineOp({
  name: 'squaringStep',
  via: 'integrateVelocity',
  dtypes: FLOAT,
  inputs: ([v]) => [v],
  forward: (v: Tensor) => {
    const attrs: SampleAttrs = { nd: (v.ndim - 2) as 2 | 3, nearest: false, padding: PADDING.zeros, alignCorners: true, flow: true };
    return { out: sampleRaw('integrateVelocity', v, v, { ...attrs, addSelf: true }), attrs, save: () => [v] };
  },
  backward: (g, ctx) => {
    const op = 'integrateVelocity.backward';
    const [v] = ctx.saved;
    const [gSrc, gFlow] = sampleBackward(op, g, v, v, ctx.attrs, true, true);
    const sum = mapExpr(op, 'a + b + c', [{ name: 'a', value: g }, { name: 'b', value: gSrc! }, { name: 'c', value: gFlow! }], 'f32', 'f32');
    gSrc!.dispose();
    gFlow!.dispose();
    return [sum];
  },
});

/** PyTorch's base-grid coordinates along an axis of n samples (linspace(-1, 1, n), scaled by (n - 1) / n without alignCorners). */
function baseLine(n: number, alignCorners: boolean): number[] {
  if (n <= 1) return [0];
  return Array.from({ length: n }, (_, i) => (alignCorners ? (2 * i - (n - 1)) / (n - 1) : (2 * i + 1 - n) / n));
}

/**
 * torch.nn.functional.affine_grid: theta [N, 2, 3] with size [N, C, H, W] → grid [N, H, W, 2], or theta [N, 3, 4]
 * with size [N, C, D, H, W] → [N, D, H, W, 3]; grid = (x, y[, z], 1) @ theta^T. Differentiable in theta.
 */
export const affineGrid = defineOp({ name: 'affineGrid', composite: true, dtypes: FLOAT, forward: affineGridForward });

function affineGridForward(theta: Tensor, size: readonly number[], opts: { alignCorners?: boolean } = {}): Tensor {
  const op = 'affineGrid';
  expectTensor(op, 'theta', theta);
  expectFloat(op, 'theta', theta);
  if (!Array.isArray(size) || (size.length !== 4 && size.length !== 5) || !size.every((d) => Number.isInteger(d) && d > 0))
    fail(op, `size must be [N, C, H, W] or [N, C, D, H, W] of positive integers, got ${describe(size)}${Array.isArray(size) ? ` [${size.join(', ')}]` : ''}`);
  const nd = size.length - 2;
  const want = nd === 2 ? [size[0], 2, 3] : [size[0], 3, 4];
  if (theta.shape.join() !== want.join())
    fail(op, `theta must have shape ${fmtShape(want)} for a ${size.length}-D size ${fmtShape(size)}, got ${fmtShape(theta.shape)}`);
  const alignCorners = opts.alignCorners ?? false;
  if (typeof alignCorners !== 'boolean') fail(op, `alignCorners must be a boolean, got ${describe(alignCorners)}`);
  const spatial = size.slice(2);
  return tidy(() => {
    // grid[..., k] = theta[k, nd] + sum_a theta[k, a] * base_a, base_a varying along one axis only (x along W): each
    // product is a small broadcast tensor, and only the last add writes the whole grid (a matmul of the
    // [P, nd + 1] base grid would be (nd + 1) / nd times that work and hits its workgroup-count limit at 128^3)
    const col = (j: number) => reshape(slice(theta, 2, j, j + 1), [size[0], ...spatial.map(() => 1), nd]);
    let grid = col(nd);
    for (let a = 0; a < nd; a++) {
      const axis = nd - 1 - a;
      const shape = [1, ...spatial.map((d, i) => (i === axis ? d : 1)), 1];
      grid = add(grid, mul(tensor(baseLine(spatial[axis], alignCorners), shape), col(a)));
    }
    return grid;
  });
}

// ---- finite differences ---------------------------------------------------------------------------------------------

export type SpatialGradientMode = 'forward' | 'central';

interface DiffAttrs {
  /** Length of the differenced axis in the input, and the product of the dims before / after it. */
  L: number;
  outer: number;
  inner: number;
  central: boolean;
}

function diffKernel(central: boolean, backward: boolean) {
  return kernel(`spatialGradient.${central ? 'central' : 'forward'}${backward ? '.backward' : ''}`, () => spatialGradientWgsl, {
    defines: { CENTRAL: central, BACKWARD: backward },
  });
}

function diffUniforms(a: DiffAttrs, n: number) {
  return { n, L: a.L, Lout: a.central ? a.L : a.L - 1, inner: a.inner };
}

/** The finite differences along one axis of x viewed as [outer, L, inner]; spatialGradient runs it per spatial axis. */
const axisDifference = defineOp({
  name: 'axisDifference',
  dtypes: FLOAT,
  via: 'spatialGradient',
  inputs: ([x]) => [x],
  forward: (x: Tensor, dim: number, central: boolean) => {
    const op = 'spatialGradient';
    const a: DiffAttrs = { L: x.shape[dim], outer: shapeSize(x.shape.slice(0, dim)), inner: shapeSize(x.shape.slice(dim + 1)), central };
    const y = emptyTensor(op, x.shape.map((v, i) => (i === dim && !central ? v - 1 : v)), 'f32');
    if (y.size > 0) {
      const k = diffKernel(central, false);
      dispatch(k, [y.buffer(op), x.buffer(op)], diffUniforms(a, y.size), grid1d(ceilDiv(y.size, k.workgroupSize)));
    }
    return { out: y, attrs: a };
  },
  backward: (g, ctx) => {
    const a = ctx.attrs;
    const out = emptyTensor('spatialGradient.backward', ctx.inputShapes[0], 'f32');
    if (out.size === 0) return [out];
    if (g.size === 0) {
      // forward differences along an axis of length 1: y is empty and x does not influence it
      fillInto(out, 0);
      return [out];
    }
    const k = diffKernel(a.central, true);
    dispatch(k, [out.buffer('spatialGradient'), g.buffer('spatialGradient')], diffUniforms(a, out.size), grid1d(ceilDiv(out.size, k.workgroupSize)));
    return [out];
  },
});

/**
 * Finite differences of x [N, C, *spatial] (1 to 3 spatial dims) along each spatial axis, returned as one tensor per
 * axis in axis order (D, H, W). 'forward' (default): x[k + 1] - x[k], the axis one shorter (VoxelMorph's Grad loss:
 * Grad-l2 = mean over axes of vg.mean(vg.square(d))). 'central': np.gradient / torch.gradient with unit spacing,
 * (x[k + 1] - x[k - 1]) / 2 inside and one-sided x[1] - x[0], x[n - 1] - x[n - 2] at the two ends, same shape as x.
 */
export const spatialGradient = defineOp({ name: 'spatialGradient', composite: true, dtypes: FLOAT, forward: spatialGradientForward });

function spatialGradientForward(x: Tensor, opts: { mode?: SpatialGradientMode } = {}): Tensor[] {
  const op = 'spatialGradient';
  expectTensor(op, 'input', x);
  expectFloat(op, 'input', x);
  expectRank(op, 'input', x, [3, 4, 5]);
  const mode = opts.mode ?? 'forward';
  if (mode !== 'forward' && mode !== 'central') fail(op, `mode must be 'forward' or 'central', got ${describe(mode)}`);
  const central = mode === 'central';
  const minLen = central ? 2 : 1;
  if (x.shape.slice(2).some((d) => d < minLen))
    fail(op, `every spatial dim must have at least ${minLen} samples for ${mode} differences, got shape ${fmtShape(x.shape)}`);
  const out: Tensor[] = [];
  for (let d = 2; d < x.ndim; d++) out.push(axisDifference(x, d, central));
  return out;
}

/**
 * det(I + grad u) of displacement fields flow [N, ndim, *spatial] (ndim = 2 or 3, voxels, channel i along axis i) →
 * [N, *spatial], as VoxelMorph's jacobian_determinant (np.gradient of identity + u): central differences inside,
 * one-sided first differences on the first and last voxel of each axis. Differentiable in flow.
 */
export const jacobianDeterminant = defineOp({ name: 'jacobianDeterminant', composite: true, dtypes: FLOAT, forward: jacobianDeterminantForward });

function jacobianDeterminantForward(flow: Tensor): Tensor {
  const op = 'jacobianDeterminant';
  const nd = checkFlow(op, flow);
  if (flow.shape.slice(2).some((d) => d < 2))
    fail(op, `every spatial dim must have at least 2 voxels (np.gradient's one-sided borders), got shape ${fmtShape(flow.shape)}`);
  return tidy(() => {
    // J[a][c] = d(identity + u)_c / d axis a, each [N, 1, *spatial]
    const J = spatialGradient(flow, { mode: 'central' }).map((d, a) => split(d, 1, 1).map((t, c) => (a === c ? add(t, 1) : t)));
    const m = (i: number, j: number) => J[i][j];
    const det2 = (a: number, b: number, c: number, d: number) => sub(mul(m(a, b), m(c, d)), mul(m(a, d), m(c, b)));
    const det =
      nd === 2
        ? det2(0, 0, 1, 1)
        : add(sub(mul(m(0, 0), det2(1, 1, 2, 2)), mul(m(0, 1), det2(1, 0, 2, 2))), mul(m(0, 2), det2(1, 0, 2, 1)));
    return reshape(det, [flow.shape[0], ...flow.shape.slice(2)]);
  });
}
