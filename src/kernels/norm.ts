/**
 * Normalisation layers (batchNorm, instanceNorm, groupNorm, layerNorm), with PyTorch's semantics.
 *
 * The four layers share one description (`Layout`) of the contiguous input and three kernels, rather than a chain of
 * composite ops (mean, sub, var, rsqrt, mul, sum, ...: some fifteen dispatches and several full-size temporaries,
 * in every layer of every model):
 *  - shaders/norm_reduce.wgsl: one pass for the statistics (Welford) or the gradient sums, in units that split a long
 *    group over several workgroups; when one workgroup holds a whole group it also writes the output (layerNorm's
 *    forward and input gradient are then one dispatch each);
 *  - shaders/norm_combine.wgsl merges the units of each group (and updates running statistics in place);
 *  - shaders/norm_apply.wgsl: the elementwise normalisation, or the input gradient.
 * A forward costs 1 or 3 dispatches, a backward 3 (layerNorm: 1 or 3 for the input, 2 for weight and bias).
 */
import applyWgsl from '../../shaders/norm_apply.wgsl';
import combineWgsl from '../../shaders/norm_combine.wgsl';
import commonWgsl from '../../shaders/norm_common.wgsl';
import reduceWgsl from '../../shaders/norm_reduce.wgsl';
import { needsRecording, noGrad } from '../engine/autograd.js';
import { gpu } from '../engine/device.js';
import { fail, fmtShape } from '../engine/errors.js';
import { FLOAT, composed, defineOp, type BackwardContext, type Composed, type Forward } from '../engine/op.js';
import { bindingLimit, fitsBinding, requireBindable } from '../engine/binding.js';
import { dispatch, grid1d, kernel } from '../engine/runtime.js';
import { sameShape } from '../engine/shape.js';
import { Tensor, shapeSize, tidy } from '../engine/tensor.js';
import { ceilDiv, defineKey, describe, emptyTensor, expectFloat, expectTensor } from './common.js';
import { sliceAxis, writeAxis } from './base.js';
import { cat, clone, reshape, slice } from './shape.js';

// ---- layouts ------------------------------------------------------------------------------------------------------

/**
 * How a layer reads its contiguous input x (n elements):
 *  - statistics: x as [P, Q, S]; element e is in group q = (e / S) % Q, of M = P * S elements
 *    (batchNorm [N, C, spatial]; instanceNorm [1, N*C, spatial]; groupNorm [1, N*G, C/G * spatial]; layerNorm
 *    [1, rows, D]);
 *  - affine: element e uses weight[(e / affDiv) % affMod];
 *  - chan: x as [N, C, sp] with one affine channel per (n, c) row (layerNorm: [rows, D, 1]), the view over which
 *    the weight and bias gradients are summed.
 * kind says how the statistics groups relate to the affine channels: 'batch' (group = channel), 'cells' (group =
 * Cg consecutive channels of one sample: instance and group norm) or 'layer' (the weight varies inside a group).
 */
interface Layout {
  op: string;
  kind: 'batch' | 'cells' | 'layer';
  P: number;
  Q: number;
  S: number;
  affDiv: number;
  affMod: number;
  chan: { N: number; C: number; sp: number };
  Cg: number;
  eps: number;
}

/** Running statistics updated in place by a training forward: channel c averages groups q = rep * C + c. */
interface Running {
  mean: Tensor;
  var: Tensor;
  momentum: number;
}

/** One workgroup size for every norm kernel, so that the host's unit layout matches the kernel's {{WG}}. */
function wgSize(): number {
  return Math.min(256, gpu().maxWorkgroupSize);
}

/** Enough lanes to fill a large GPU; below this a long group is split over several workgroups. */
const TARGET_LANES = 1 << 16;

/** An affine channel per element: (e / div) % mod. */
interface Affine {
  div: number;
  mod: number;
}

function affineOf(L: Layout): Affine {
  return { div: L.affDiv, mod: L.affMod };
}

/**
 * Elements per kernel index W: 4 when rows of S elements split into whole vec4s whose affine channel is one
 * (div % 4 = 0) or four consecutive ones (affVec: layerNorm's weight read as vec4s); and the affine walk in those units.
 */
function vectorize(S: number, aff: Affine | null): { W: number; affVec: boolean; affDiv: number; affMod: number } {
  // without affine parameters the walk runs on a divisor no index reaches: it then never wraps (nor divides)
  if (!aff) return { W: S % 4 === 0 ? 4 : 1, affVec: false, affDiv: NO_CHANNEL, affMod: 1 };
  if (S % 4 === 0) {
    if (aff.div % 4 === 0) return { W: 4, affVec: false, affDiv: aff.div / 4, affMod: aff.mod };
    if (aff.div === 1 && aff.mod % 4 === 0) return { W: 4, affVec: true, affDiv: 1, affMod: aff.mod / 4 };
  }
  return { W: 1, affVec: false, affDiv: aff.div, affMod: aff.mod };
}

/** Above any element index (buffers hold at most 2^30 f32), so a walk by it never wraps. */
const NO_CHANNEL = 2 ** 31;

/**
 * The units of one norm_reduce pass over x as [P, C, S] (see the shader's header; S and chunk in units of W
 * elements), and where each channel's partials land: channel c's partials are part[a * sa + c * st + b] for a < nA,
 * b < nB, and partial idx belongs to channel (idx / cDiv) % C. The short field names are the shaders' uniform names.
 */
interface Units {
  /** ROWS layout (a unit is a chunk of one row of S elements); false: COLS (a unit is one column j over p). */
  rows: boolean;
  /** Elements per kernel index: 4 (vec4) or 1. */
  W: number;
  /** The affine weight is read as vec4s (four consecutive channels per vec4: layerNorm). */
  affVec: boolean;
  /** The affine channel of element index e is (e / affDiv) % affMod (in units of W). */
  affDiv: number;
  affMod: number;
  /** x as [P, C, S]: P outer blocks (batch), C rows per block, S elements per row (ROWS: in units of W). */
  P: number;
  C: number;
  S: number;
  /** ROWS: threads (lanes) per row chunk, a power of two. */
  tpr: number;
  /** ROWS: chunks per row (a long row split over K units so that the device has enough lanes). */
  K: number;
  /** ROWS: elements per chunk (units of W). */
  chunk: number;
  /** COLS: columns per block, C * S / W. */
  J: number;
  /** COLS: blocks p per unit (each unit reduces pc consecutive p of its column). */
  pc: number;
  /** Units in the pass (one partial each) and the workgroups that run them. */
  units: number;
  workgroups: number;
  /**
   * Where channel c's partials land: part[a * sa + c * st + b] for a < nA, b < nB (a: the outer repeat, b: the chunk
   * or column within the channel).
   */
  nA: number;
  sa: number;
  st: number;
  nB: number;
  /** Partial index idx belongs to channel (idx / cDiv) % C. */
  cDiv: number;
}

/**
 * Rows (a slot of tpr lanes per row chunk, about 64 elements per lane: on CPU adapters every workgroup barrier of the
 * tree merge costs a context switch per invocation, so lanes must have work) unless rows are short and many
 * (o.cols: only where partials may mix different p; o.colsVec4: gradient sums whose groups hold whole vec4s). A row is
 * split into K chunks while there are too few lanes for the device. o.aff: the affine channel the pass reads, if any.
 */
function planUnits(P: number, C: number, S: number, o: { cols?: boolean; colsVec4?: boolean; aff?: Affine | null }): Units {
  const wg = wgSize();
  const aff = o.aff ?? null;
  if (o.cols && S < 16 && P >= 16) {
    const W = o.colsVec4 && (C * S) % 4 === 0 ? 4 : 1;
    const J = (C * S) / W;
    const want = Math.max(1, Math.min(Math.ceil(TARGET_LANES / J), Math.floor(P / 16)));
    const pc = Math.ceil(P / want);
    const KP = Math.ceil(P / pc);
    const units = KP * J;
    return {
      rows: false,
      W,
      affVec: false,
      affDiv: NO_CHANNEL,
      affMod: 1,
      P,
      C,
      S,
      tpr: 1,
      K: 1,
      chunk: 0,
      J,
      pc,
      units,
      workgroups: ceilDiv(units, wg),
      // one partial per (kp, column): channel c's are part[kp * C * S + c * S + s]
      nA: KP,
      sa: C * S,
      st: S,
      nB: S,
      cDiv: S,
    };
  }
  const v = vectorize(S, aff);
  const tpr = Math.min(wg, 2 ** Math.floor(Math.log2(Math.max(1, Math.ceil(S / 64)))));
  const rowsN = P * C;
  let K = 1;
  if (rowsN * tpr < TARGET_LANES) K = Math.max(1, Math.min(Math.ceil(TARGET_LANES / (rowsN * tpr)), Math.floor(S / (64 * tpr))));
  const SV = S / v.W;
  const chunk = Math.ceil(SV / K);
  K = Math.ceil(SV / chunk);
  const units = rowsN * K;
  const slots = Math.floor(wg / tpr);
  const workgroups = ceilDiv(units, slots);
  return { rows: true, ...v, P, C, S: SV, tpr, K, chunk, J: 0, pc: 0, units, workgroups, nA: P, sa: C * K, st: K, nB: K, cDiv: K };
}

/** The uniforms that step an index walk (norm_common.wgsl) of divisor `div` by `stride` indices. */
function strideSteps(prefix: 'q' | 'c', stride: number, div: number): Record<string, number> {
  return { [`${prefix}StepQ`]: Math.floor(stride / div), [`${prefix}StepR`]: stride % div };
}

// ---- kernel launches ----------------------------------------------------------------------------------------------

interface ReduceArgs {
  /** Gradient sums instead of statistics: xhat uses group (e / qS) % qQ (qS in elements) of mean / var. */
  grad?: { g: Tensor; mean: Tensor; var: Tensor; qS: number; qQ: number };
  /** Weight per element (statistics FUSED: the affine output; GRAD: g * weight), and bias (statistics FUSED). */
  weight?: Tensor | null;
  bias?: Tensor | null;
  /** FUSED: the output (y or dx), and for statistics the per-group mean and var. */
  fused?: { out: Tensor; mean?: Tensor; var?: Tensor };
}

/** One norm_reduce pass; returns the partials (vec4 per unit), or null when FUSED wrote the output. */
function reduce(L: Layout, u: Units, x: Tensor, a: ReduceArgs): Tensor | null {
  const op = L.op;
  const grad = a.grad;
  const defines = {
    GRAD: Boolean(grad),
    ROWS: u.rows,
    FUSED: Boolean(a.fused),
    WEIGHT: Boolean(a.weight),
    BIAS: Boolean(a.bias),
    VEC4: u.W === 4,
    AFF_VEC: u.affVec && Boolean(a.weight || a.bias),
  };
  const k = kernel(`norm.reduce.${defineKey(defines)}`, () => commonWgsl + '\n' + reduceWgsl, { workgroupSize: wgSize(), defines });
  const bufs = [x.buffer(op)];
  if (grad) bufs.push(grad.g.buffer(op), grad.mean.buffer(op), grad.var.buffer(op));
  if (a.weight) bufs.push(a.weight.buffer(op));
  if (a.bias) bufs.push(a.bias.buffer(op));
  let part: Tensor | null = null;
  if (a.fused) {
    bufs.push(a.fused.out.buffer(op));
    if (!grad) bufs.push(a.fused.mean!.buffer(op), a.fused.var!.buffer(op));
  } else {
    part = emptyTensor(op, [u.rows ? u.units : u.units * u.W, 4], 'f32');
    bufs.push(part.buffer(op));
  }
  const qS = (grad?.qS ?? u.W) / u.W;
  if (!Number.isInteger(qS)) throw new Error(`voxgrad internal: ${op} statistics groups of ${grad?.qS} elements read as vec4s`);
  dispatch(
    k,
    bufs,
    {
      P: u.P,
      C: u.C,
      S: u.S,
      K: u.K,
      chunk: u.chunk,
      tpr: u.tpr,
      units: u.units,
      J: u.J,
      pc: u.pc,
      qS,
      qQ: grad?.qQ ?? 1,
      qStep: u.rows ? 0 : u.J / qS,
      affDiv: u.affDiv,
      affMod: u.affMod,
      ...strideSteps('c', u.tpr, u.affDiv),
      eps: L.eps,
      invM: 1 / (L.P * L.S),
    },
    grid1d(u.workgroups),
  );
  return part;
}

/** Merges statistics partials into mean[Q], var[Q]; with running statistics, updates them in place. */
function combineStats(L: Layout, u: Units, part: Tensor, running: Running | null): { mean: Tensor; var: Tensor } {
  const op = L.op;
  const mean = emptyTensor(op, [L.Q], 'f32');
  const vari = emptyTensor(op, [L.Q], 'f32');
  const nT = running ? running.mean.size : L.Q;
  const k = kernel(`norm.combine.stats${running ? '.running' : ''}`, () => commonWgsl + '\n' + combineWgsl, {
    workgroupSize: wgSize(),
    defines: { GRAD: false, RUNNING: Boolean(running) },
  });
  const bufs = [part.buffer(op), mean.buffer(op), vari.buffer(op)];
  if (running) bufs.push(running.mean.buffer(op), running.var.buffer(op));
  dispatch(
    k,
    bufs,
    { nT, reps: L.Q / nT, nA: u.nA, sa: u.sa, st: u.st, nB: u.nB, momentum: running?.momentum ?? 0 },
    grid1d(ceilDiv(nT, k.workgroupSize)),
  );
  return { mean, var: vari };
}

/** Members of each statistics group among gradient partials, with the weight to apply per member (if any). */
interface GroupSpec {
  nGroup: number;
  gnA: number;
  gsa: number;
  gst: number;
  gnB: number;
  weight: Tensor | null;
  wDiv: number;
  wMod: number;
}

/** Merges gradient partials: per-channel totals (dw = sum g xhat, db = sum g) and per-group A, B (ab = [A; B]). */
function combineGrad(L: Layout, u: Units, part: Tensor, chan: boolean, groups: GroupSpec | null) {
  const op = L.op;
  const defines = { GRAD: true, CHAN: chan, GROUPS: Boolean(groups), WEIGHT: Boolean(groups?.weight) };
  const k = kernel(`norm.combine.${defineKey(defines)}`, () => commonWgsl + '\n' + combineWgsl, { workgroupSize: wgSize(), defines });
  const nChan = chan ? u.C : 0;
  const dw = chan ? emptyTensor(op, [u.C], 'f32') : null;
  const db = chan ? emptyTensor(op, [u.C], 'f32') : null;
  const ab = groups ? emptyTensor(op, [2, groups.nGroup], 'f32') : null;
  const bufs = [part.buffer(op)];
  if (dw && db) bufs.push(dw.buffer(op), db.buffer(op));
  if (ab) bufs.push(ab.buffer(op));
  if (groups?.weight) bufs.push(groups.weight.buffer(op));
  const nGroup = groups?.nGroup ?? 0;
  dispatch(
    k,
    bufs,
    {
      nA: u.nA,
      sa: u.sa,
      st: u.st,
      nB: u.nB,
      nChan,
      nGroup,
      gnA: groups?.gnA ?? 0,
      gsa: groups?.gsa ?? 0,
      gst: groups?.gst ?? 0,
      gnB: groups?.gnB ?? 0,
      wDiv: groups?.wDiv ?? 1,
      wMod: groups?.wMod ?? 1,
    },
    grid1d(ceilDiv(nChan + nGroup, k.workgroupSize)),
  );
  return { dw, db, ab };
}

/**
 * norm_apply: the forward normalisation (g null), or the input gradient: with ab (batch statistics) the full
 * closed form, without it (running statistics) g * weight * rstd.
 */
function apply(
  L: Layout,
  x: Tensor | null,
  mean: Tensor | null,
  vari: Tensor,
  weight: Tensor | null,
  bias: Tensor | null,
  back: { g: Tensor; ab: Tensor | null } | null,
  shape: readonly number[],
): Tensor {
  const op = L.op;
  const out = emptyTensor(op, shape, 'f32');
  const v = vectorize(L.S, weight || bias ? affineOf(L) : null);
  const n = out.size / v.W;
  const S = L.S / v.W;
  const xmean = !back || Boolean(back.ab);
  const defines = {
    BACKWARD: Boolean(back),
    XMEAN: xmean,
    WEIGHT: Boolean(weight),
    BIAS: Boolean(bias),
    AB: Boolean(back?.ab),
    VEC4: v.W === 4,
    AFF_VEC: v.affVec,
  };
  const k = kernel(`norm.apply.${defineKey(defines)}`, () => commonWgsl + '\n' + applyWgsl, { workgroupSize: wgSize(), defines });
  const bufs = [out.buffer(op)];
  if (back) bufs.push(back.g.buffer(op));
  if (xmean) bufs.push(x!.buffer(op), mean!.buffer(op));
  if (weight) bufs.push(weight.buffer(op));
  if (bias) bufs.push(bias.buffer(op));
  bufs.push(vari.buffer(op));
  if (back?.ab) bufs.push(back.ab.buffer(op));
  dispatch(
    k,
    bufs,
    {
      n,
      S,
      Q: L.Q,
      affDiv: v.affDiv,
      affMod: v.affMod,
      ...strideSteps('q', k.workgroupSize, S),
      ...strideSteps('c', k.workgroupSize, v.affDiv),
      eps: L.eps,
      invM: 1 / (L.P * L.S),
    },
    grid1d(ceilDiv(n, 8 * k.workgroupSize)),
  );
  return out;
}

// ---- forward and backward -----------------------------------------------------------------------------------------

interface NormAttrs {
  L: Layout;
  /** Statistics given (running), not computed from x: they do not depend on x. */
  fixedStats: boolean;
  weightShape: readonly number[] | null;
}

function normBackward(g: Tensor, ctx: BackwardContext<NormAttrs>): (Tensor | null)[] {
  const { L, fixedStats, weightShape } = ctx.attrs;
  const [x, mean, vari, weight = null] = ctx.saved;
  const [needX, needW, needB] = ctx.needsGrad;
  const needChan = needW || needB;
  let dx: Tensor | null = null;
  let dw: Tensor | null = null;
  let db: Tensor | null = null;
  const { N, C, sp } = L.chan;
  const gradSums = { g, mean, var: vari, qS: L.S, qQ: L.Q };
  if (fixedStats || L.kind === 'layer') {
    if (needX) {
      if (fixedStats) dx = apply(L, null, null, vari, weight, null, { g, ab: null }, x.shape);
      else {
        const u = planUnits(1, L.Q, L.S, { aff: weight ? affineOf(L) : null });
        if (u.K === 1) {
          dx = emptyTensor(L.op, x.shape, 'f32');
          reduce(L, u, x, { grad: gradSums, weight, fused: { out: dx } });
        } else {
          const part = reduce(L, u, x, { grad: gradSums, weight })!;
          const groups = { nGroup: L.Q, gnA: 1, gsa: 0, gst: u.K, gnB: u.K, weight: null, wDiv: 1, wMod: 1 };
          const { ab } = combineGrad(L, u, part, false, groups);
          dx = apply(L, x, mean, vari, weight, null, { g, ab }, x.shape);
        }
      }
    }
    if (needChan) {
      const u = planUnits(N, C, sp, { cols: true, colsVec4: L.S % 4 === 0 });
      const part = reduce(L, u, x, { grad: gradSums })!;
      ({ dw, db } = combineGrad(L, u, part, true, null));
    }
  } else {
    // batch and cells: one pass over the channel view gives the channel totals and, merged per group, A and B
    const u = planUnits(N, C, sp, { cols: L.kind === 'batch', colsVec4: L.S % 4 === 0 });
    const part = reduce(L, u, x, { grad: gradSums })!;
    let groups: GroupSpec | null = null;
    if (needX) {
      const gs = L.kind === 'batch' ? { gnA: u.nA, gsa: u.sa, gst: u.st, gnB: u.nB } : { gnA: 1, gsa: 0, gst: L.Cg * u.K, gnB: L.Cg * u.K };
      groups = { nGroup: L.Q, ...gs, weight, wDiv: u.cDiv, wMod: C };
    }
    const sums = combineGrad(L, u, part, needChan, groups);
    ({ dw, db } = sums);
    if (needX) dx = apply(L, x, mean, vari, weight, null, { g, ab: sums.ab }, x.shape);
  }
  return [dx, needW && dw ? dw.shareStorage(weightShape!) : null, needB && db ? db.shareStorage(weightShape!) : null];
}

/**
 * Normalises x by L: with `stats`, by those (running) statistics; otherwise by its own, updating `running` in place.
 * Saves x, the statistics and the weight for backward.
 */
function normalize(
  L: Layout,
  x: Tensor,
  weight: Tensor | null,
  bias: Tensor | null,
  stats: { mean: Tensor; var: Tensor } | null,
  running: Running | null,
): Forward<Tensor, NormAttrs> | Composed<Tensor> {
  const op = L.op;
  // an empty input has nothing to normalise or differentiate (an unrecorded empty result, as PyTorch)
  if (x.size === 0) return composed(emptyTensor(op, x.shape, 'f32'));
  let y: Tensor;
  let mean: Tensor;
  let vari: Tensor;
  const recording = needsRecording([x, weight, bias]);
  if (stats) {
    y = apply(L, x, stats.mean, stats.var, weight, bias, null, x.shape);
    // saved copies: a later training step updates the running statistics in place
    mean = noGrad(() => (recording ? clone(stats.mean) : stats.mean));
    vari = noGrad(() => (recording ? clone(stats.var) : stats.var));
  } else {
    const u = planUnits(L.P, L.Q, L.S, { cols: true, aff: weight || bias ? affineOf(L) : null });
    if (u.rows && L.P === 1 && u.K === 1 && !running) {
      y = emptyTensor(op, x.shape, 'f32');
      mean = emptyTensor(op, [L.Q], 'f32');
      vari = emptyTensor(op, [L.Q], 'f32');
      reduce(L, u, x, { weight, bias, fused: { out: y, mean, var: vari } });
    } else {
      const part = reduce(L, u, x, {})!;
      ({ mean, var: vari } = combineStats(L, u, part, running));
      part.dispose();
      y = apply(L, x, mean, vari, weight, bias, null, x.shape);
    }
  }
  return {
    out: y,
    attrs: { L, fixedStats: Boolean(stats), weightShape: weight?.shape ?? bias?.shape ?? null },
    save: () => (weight ? [x, mean, vari, weight] : [x, mean, vari]),
    // the statistics computed here, or the copies made for backward (given running statistics stay the caller's)
    release: !stats || recording ? [mean, vari] : [],
  };
}

// ---- argument checks ----------------------------------------------------------------------------------------------

function checkInput(op: string, x: unknown, minRank: number, expected: string): Tensor {
  const t = expectTensor(op, 'input', x);
  expectFloat(op, 'input', t);
  if (t.ndim < minRank) fail(op, `input must have shape ${expected} (rank >= ${minRank}), got ${fmtShape(t.shape)}`);
  return t;
}

/** An optional f32 tensor of exactly `shape` (per-channel parameters and statistics). */
function checkParam(op: string, arg: string, v: unknown, shape: readonly number[], what: string): Tensor | null {
  if (v === null || v === undefined) return null;
  const t = expectTensor(op, arg, v);
  expectFloat(op, arg, t);
  if (!sameShape(t.shape, shape)) fail(op, `${arg} must have shape ${fmtShape(shape)} (${what}), got ${fmtShape(t.shape)}`);
  return t;
}

function checkNumber(op: string, arg: string, v: unknown, fallback: number, min = -Infinity): number {
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min)
    fail(op, `${arg} must be a finite number${min > -Infinity ? ` >= ${min}` : ''}, got ${describe(v)}`);
  return v;
}

function checkRunning(op: string, rm: unknown, rv: unknown, C: number, x: Tensor, momentum: number): Running | null {
  const what = `one per channel, dim 1 of input ${fmtShape(x.shape)}`;
  const mean = checkParam(op, 'runningMean', rm, [C], what);
  const vari = checkParam(op, 'runningVar', rv, [C], what);
  if (Boolean(mean) !== Boolean(vari))
    fail(
      op,
      `runningMean and runningVar go together: got ${mean ? 'runningMean' : 'runningVar'} without the other. ` +
        'Pass both, or null for both.',
    );
  return mean && vari ? { mean, var: vari, momentum } : null;
}

/** The channel view [N, C, spatial] of input x, and the layout fields that follow from it. */
function channelLayout(op: string, x: Tensor, eps: number) {
  const [N, C] = x.shape;
  const sp = shapeSize(x.shape.slice(2));
  return { N, C, sp, base: { op, affDiv: sp, affMod: C, chan: { N, C, sp }, eps } };
}

// ---- inputs past one storage binding -------------------------------------------------------------------------------

/**
 * A norm whose input is larger than one binding, as the same norm over slabs of whole independent units along `dim`
 * (`unit` indices each: channels for batch and instance norm, groups of channels for group norm, rows for layer
 * norm), concatenated. Slicing, the norms and cat are recorded ops, so gradients flow through them; running
 * statistics are sliced per slab and written back. Statistics of a slab may be reduced in a different order than
 * the whole input's (results within float rounding, not bit-identical).
 */
function inSlabs(
  op: string,
  x: Tensor,
  dim: number,
  unit: number,
  running: Running | null,
  run: (xs: Tensor, i0: number, i1: number, running: { mean: Tensor; var: Tensor } | null) => Tensor,
): Tensor {
  const n = x.shape[dim];
  const unitBytes = (x.size / n) * unit * 4;
  const per = Math.floor(bindingLimit() / unitBytes) * unit;
  if (per === 0)
    requireBindable(
      op,
      { input: x },
      `One slab of ${unit} index(es) along dim ${dim} takes ${unitBytes} bytes, more than one binding: crop or downsample ` +
        'the input, or use a smaller batch.',
    );
  return tidy(() => {
      const parts: Tensor[] = [];
      for (let i0 = 0; i0 < n; i0 += per) {
        const i1 = Math.min(n, i0 + per);
        const slabStats = running && { mean: sliceAxis(op, running.mean, 0, i0, i1), var: sliceAxis(op, running.var, 0, i0, i1) };
        parts.push(run(slice(x, dim, i0, i1), i0, i1, slabStats));
        if (running && slabStats) {
          writeAxis(op, running.mean, 0, i0, slabStats.mean);
          writeAxis(op, running.var, 0, i0, slabStats.var);
          slabStats.mean.dispose();
          slabStats.var.dispose();
        }
      }
      return cat(parts, dim);
  });
}

/** weight/bias [C] restricted to channels [c0, c1), or null. */
const channelSlice = (t: Tensor | null, c0: number, c1: number) => (t ? slice(t, 0, c0, c1) : null);

// ---- public ops ---------------------------------------------------------------------------------------------------

export interface BatchNormOptions {
  weight?: Tensor | null;
  bias?: Tensor | null;
  training?: boolean;
  momentum?: number;
  eps?: number;
}

/** The argument checks batchNorm and instanceNorm share: input rank, eps, momentum, per-channel affine and running stats. */
function channelArgs(
  op: string,
  x: Tensor,
  minRank: number,
  layout: string,
  opts: { weight?: Tensor | null; bias?: Tensor | null; momentum?: number; eps?: number },
  runningMean: Tensor | null | undefined,
  runningVar: Tensor | null | undefined,
) {
  checkInput(op, x, minRank, layout);
  const eps = checkNumber(op, 'eps', opts.eps, 1e-5, 0);
  const momentum = checkNumber(op, 'momentum', opts.momentum, 0.1);
  const { N, C, sp, base } = channelLayout(op, x, eps);
  const what = `one per channel, dim 1 of input ${fmtShape(x.shape)}`;
  const weight = checkParam(op, 'weight', opts.weight, [C], what);
  const bias = checkParam(op, 'bias', opts.bias, [C], what);
  const running = checkRunning(op, runningMean, runningVar, C, x, momentum);
  return { N, C, sp, base, weight, bias, running };
}

/**
 * batch_norm over x [N, C, ...]. Training (or without running statistics) normalises by the batch statistics per
 * channel (biased variance); with running statistics it then updates runningMean and runningVar IN PLACE on the GPU:
 * r = (1 - momentum) r + momentum * batch value, the variance unbiased, as PyTorch. Those two tensors are state, never
 * part of the autodiff graph (no gradient reaches them). Eval mode normalises by the running statistics.
 */
export const batchNorm = defineOp({
  name: 'batchNorm',
  dtypes: FLOAT,
  inputs: ([x, , , opts]) => [x, opts?.weight, opts?.bias],
  forward: batchNormForward,
  backward: normBackward,
});

type NormResult = Forward<Tensor, NormAttrs> | Composed<Tensor>;

function batchNormForward(x: Tensor, runningMean: Tensor | null, runningVar: Tensor | null, opts: BatchNormOptions = {}): NormResult {
  const op = 'batchNorm';
  const { N, C, sp, base, weight, bias, running } = channelArgs(op, x, 2, '[N, C, ...]', opts, runningMean, runningVar);
  const useBatch = (opts.training ?? false) || !running;
  if (useBatch && N * sp === 1)
    fail(
      op,
      `expected more than 1 value per channel when using batch statistics, got input ${fmtShape(x.shape)}. ` +
        'Use a larger batch, or eval mode with running statistics.',
    );
  if (!fitsBinding(x))
    return composed(
      inSlabs(op, x, 1, 1, running, (xs, c0, c1, r): Tensor =>
        batchNorm(xs, r?.mean ?? null, r?.var ?? null, { ...opts, weight: channelSlice(weight, c0, c1), bias: channelSlice(bias, c0, c1) }),
      ),
    );
  const L: Layout = { ...base, kind: 'batch', P: N, Q: C, S: sp, Cg: 1 };
  return useBatch ? normalize(L, x, weight, bias, null, running) : normalize(L, x, weight, bias, running, null);
}

export interface InstanceNormOptions {
  runningMean?: Tensor | null;
  runningVar?: Tensor | null;
  weight?: Tensor | null;
  bias?: Tensor | null;
  useInputStats?: boolean;
  momentum?: number;
  eps?: number;
}

/**
 * instance_norm over x [N, C, spatial...]: each (sample, channel) normalised by its own statistics; with running
 * statistics, those are updated in place with the batch average (PyTorch's rule); useInputStats = false normalises
 * by the running statistics instead.
 */
export const instanceNorm = defineOp({
  name: 'instanceNorm',
  dtypes: FLOAT,
  inputs: ([x, opts]) => [x, opts?.weight, opts?.bias],
  forward: instanceNormForward,
  backward: normBackward,
});

function instanceNormForward(x: Tensor, opts: InstanceNormOptions = {}): NormResult {
  const op = 'instanceNorm';
  const { N, C, sp, base, weight, bias, running } = channelArgs(op, x, 3, '[N, C, spatial...]', opts, opts.runningMean, opts.runningVar);
  if (!fitsBinding(x) && (sp > 1 || !(opts.useInputStats ?? true)))
    return composed(
      inSlabs(op, x, 1, 1, running, (xs, c0, c1, r): Tensor =>
        instanceNorm(xs, {
          ...opts,
          weight: channelSlice(weight, c0, c1),
          bias: channelSlice(bias, c0, c1),
          runningMean: r?.mean,
          runningVar: r?.var,
        }),
      ),
    );
  if (opts.useInputStats ?? true) {
    if (sp === 1) fail(op, `expected more than 1 spatial element per channel when using input statistics, got input ${fmtShape(x.shape)}`);
    return normalize({ ...base, kind: 'cells', P: 1, Q: N * C, S: sp, Cg: 1 }, x, weight, bias, null, running);
  }
  if (!running) fail(op, 'useInputStats = false normalises by the running statistics: pass runningMean and runningVar');
  return normalize({ ...base, kind: 'batch', P: N, Q: C, S: sp, Cg: 1 }, x, weight, bias, running, null);
}

/** group_norm over x [N, C, ...]: the C channels in numGroups groups, each (sample, group) normalised by its own statistics. */
export const groupNorm = defineOp({
  name: 'groupNorm',
  dtypes: FLOAT,
  inputs: ([x, , opts]) => [x, opts?.weight, opts?.bias],
  forward: groupNormForward,
  backward: normBackward,
});

function groupNormForward(x: Tensor, numGroups: number, opts: { weight?: Tensor | null; bias?: Tensor | null; eps?: number } = {}): NormResult {
  const op = 'groupNorm';
  checkInput(op, x, 2, '[N, C, ...]');
  const eps = checkNumber(op, 'eps', opts.eps, 1e-5, 0);
  const { N, C, sp, base } = channelLayout(op, x, eps);
  if (!Number.isInteger(numGroups) || numGroups < 1 || C % numGroups !== 0)
    fail(
      op,
      `numGroups must be a positive integer dividing the number of channels C = ${C} (dim 1 of input ` +
        `${fmtShape(x.shape)}), got ${describe(numGroups)}`,
    );
  const what = `one per channel, dim 1 of input ${fmtShape(x.shape)}`;
  const weight = checkParam(op, 'weight', opts.weight, [C], what);
  const bias = checkParam(op, 'bias', opts.bias, [C], what);
  const Cg = C / numGroups;
  if (!fitsBinding(x))
    return composed(
      inSlabs(op, x, 1, Cg, null, (xs, c0, c1): Tensor =>
        groupNorm(xs, (c1 - c0) / Cg, { ...opts, weight: channelSlice(weight, c0, c1), bias: channelSlice(bias, c0, c1) }),
      ),
    );
  return normalize({ ...base, kind: 'cells', P: 1, Q: N * numGroups, S: Cg * sp, Cg }, x, weight, bias, null, null);
}

/** layer_norm over the trailing dims normalizedShape of x (a number means [number]). */
export const layerNorm = defineOp({
  name: 'layerNorm',
  dtypes: FLOAT,
  inputs: ([x, , opts]) => [x, opts?.weight, opts?.bias],
  forward: layerNormForward,
  backward: normBackward,
});

function layerNormForward(
  x: Tensor,
  normalizedShape: number | readonly number[],
  opts: { weight?: Tensor | null; bias?: Tensor | null; eps?: number } = {},
): NormResult {
  const op = 'layerNorm';
  const t = expectTensor(op, 'input', x);
  expectFloat(op, 'input', t);
  const ns = typeof normalizedShape === 'number' ? [normalizedShape] : normalizedShape;
  if (!Array.isArray(ns) || ns.length === 0 || ns.some((d) => !Number.isInteger(d) || d < 1))
    fail(op, `normalizedShape must be a positive integer or a non-empty array of them, got ${describe(normalizedShape)}`);
  if (!sameShape(x.shape.slice(x.ndim - ns.length), ns) || ns.length > x.ndim)
    fail(
      op,
      `normalizedShape ${fmtShape(ns)} must equal the trailing dims of input ${fmtShape(x.shape)}: expected input of ` +
        `shape [*, ${ns.join(', ')}]`,
    );
  const eps = checkNumber(op, 'eps', opts.eps, 1e-5, 0);
  const weight = checkParam(op, 'weight', opts.weight, ns, 'normalizedShape');
  const bias = checkParam(op, 'bias', opts.bias, ns, 'normalizedShape');
  const D = shapeSize(ns);
  const R = x.size / D;
  if (!fitsBinding(x)) {
    const rows = (): Tensor => inSlabs(op, reshape(x, [R, ...ns]), 0, 1, null, (xs): Tensor => layerNorm(xs, ns, opts));
    return composed(tidy(() => reshape(rows(), x.shape)));
  }
  const L: Layout = { op, kind: 'layer', P: 1, Q: R, S: D, affDiv: 1, affMod: D, chan: { N: R, C: D, sp: 1 }, Cg: 1, eps };
  return normalize(L, x, weight, bias, null, null);
}
