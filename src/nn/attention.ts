/**
 * Attention modules: torch.nn.MultiheadAttention (same parameters and state-dict keys), and a pre-norm transformer
 * block whose names follow timm's ViT Block / Swin's SwinTransformerBlock (norm1, attn.qkv, attn.proj, norm2,
 * mlp.fc1, mlp.fc2) with an optional Swin/TransMorph windowed attention (window partition, cyclic shift with Swin's
 * -100 mask, relative position bias table per head) on [B, H, W, C] or [B, D, H, W, C] token grids.
 */
import { noGrad } from '../engine/autograd.js';
import { fail, fmtShape } from '../engine/errors.js';
import { Tensor, keep, tidy } from '../engine/tensor.js';
import { describe } from '../kernels/common.js';
import { ones, tensor, zeros } from '../kernels/creation.js';
import { indexSelect } from '../kernels/indexing.js';
import { add, mul, where } from '../kernels/math.js';
import { linear } from '../kernels/matmul.js';
import { dropout } from '../kernels/dropout.js';
import { mean } from '../kernels/reduce.js';
import { pad } from '../kernels/pad.js';
import { cat, permute, reshape, slice, squeeze, transpose, unsqueeze } from '../kernels/shape.js';
import { attentionWithWeights } from '../kernels/attention.js';
import { constant_, normal_, xavierUniform_ } from './init.js';
import { Dropout, GELU, LayerNorm, Linear, type InitSeed } from './layers.js';
import { Module } from './module.js';

function positiveInt(op: string, name: string, v: unknown): number {
  if (!Number.isInteger(v) || (v as number) < 1) fail(op, `${name} must be a positive integer, got ${describe(v)}`);
  return v as number;
}

function probability(op: string, name: string, v: unknown): number {
  if (typeof v !== 'number' || !(v >= 0 && v <= 1)) fail(op, `${name} must be a probability in [0, 1], got ${describe(v)}`);
  return v;
}

const seedPlus = (seed: number | undefined, k: number) => (seed === undefined ? undefined : seed + k);

export interface MultiheadAttentionOptions extends InitSeed {
  /** Dropout on the attention weights (training only). Default 0. */
  dropout?: number;
  bias?: boolean;
  /** Inputs [N, L, E] instead of PyTorch's default [L, N, E]. */
  batchFirst?: boolean;
  kdim?: number;
  vdim?: number;
}

export interface MultiheadAttentionForwardOptions {
  /** [L, S] or [N·numHeads, L, S]; integer = boolean where nonzero means NOT allowed to attend; f32 = added to the scores. */
  attnMask?: Tensor | null;
  /** [N, S] (or [S] unbatched); integer: nonzero = ignore that key; f32: added. */
  keyPaddingMask?: Tensor | null;
  /** Return the attention weights (default true); otherwise the second result is null. */
  needWeights?: boolean;
  /** Average the weights over heads ([N, L, S], default) or keep them per head ([N, numHeads, L, S]). */
  averageAttnWeights?: boolean;
}

/**
 * torch.nn.MultiheadAttention: in_proj_weight [3E, E] (or q/k/v_proj_weight when kdim/vdim differ from E),
 * in_proj_bias [3E], out_proj.weight / out_proj.bias; initialised as PyTorch (xavier_uniform in-projection, zero
 * biases). forward(query, key, value, opts) → [output, weights | null].
 */
export class MultiheadAttention extends Module {
  declare inProjWeight: Tensor | null;
  declare qProjWeight: Tensor | null;
  declare kProjWeight: Tensor | null;
  declare vProjWeight: Tensor | null;
  declare inProjBias: Tensor | null;
  readonly outProj: Linear;
  readonly headDim: number;
  readonly dropout: number;
  readonly batchFirst: boolean;
  readonly kdim: number;
  readonly vdim: number;

  constructor(readonly embedDim: number, readonly numHeads: number, opts: MultiheadAttentionOptions = {}) {
    super();
    const op = 'MultiheadAttention';
    positiveInt(op, 'embedDim', embedDim);
    positiveInt(op, 'numHeads', numHeads);
    if (embedDim % numHeads) fail(op, `embedDim (${embedDim}) must be divisible by numHeads (${numHeads})`);
    this.headDim = embedDim / numHeads;
    this.dropout = probability(op, 'dropout', opts.dropout ?? 0);
    this.batchFirst = opts.batchFirst ?? false;
    this.kdim = positiveInt(op, 'kdim', opts.kdim ?? embedDim);
    this.vdim = positiveInt(op, 'vdim', opts.vdim ?? embedDim);
    const same = this.kdim === embedDim && this.vdim === embedDim;
    const p = (shape: number[]) => zeros(shape, { requiresGrad: true });
    this.registerParameter('in_proj_weight', same ? p([3 * embedDim, embedDim]) : null, 'inProjWeight');
    this.registerParameter('q_proj_weight', same ? null : p([embedDim, embedDim]), 'qProjWeight');
    this.registerParameter('k_proj_weight', same ? null : p([embedDim, this.kdim]), 'kProjWeight');
    this.registerParameter('v_proj_weight', same ? null : p([embedDim, this.vdim]), 'vProjWeight');
    this.registerParameter('in_proj_bias', opts.bias ?? true ? p([3 * embedDim]) : null, 'inProjBias');
    this.outProj = new Linear(embedDim, embedDim, { bias: opts.bias ?? true, seed: seedPlus(opts.seed, 4) });
    this.registerModule('out_proj', this.outProj);
    // PyTorch's _reset_parameters
    if (same) xavierUniform_(this.inProjWeight!, { seed: opts.seed });
    else [this.qProjWeight, this.kProjWeight, this.vProjWeight].forEach((w, i) => xavierUniform_(w!, { seed: seedPlus(opts.seed, i) }));
    if (this.outProj.bias) constant_(this.outProj.bias, 0);
  }

  override forward(query: Tensor, key: Tensor, value: Tensor, opts: MultiheadAttentionForwardOptions = {}): [Tensor, Tensor | null] {
    const op = 'MultiheadAttention';
    const E = this.embedDim;
    const H = this.numHeads;
    for (const [name, t, f] of [['query', query, E], ['key', key, this.kdim], ['value', value, this.vdim]] as const) {
      if (!(t instanceof Tensor)) fail(op, `${name} must be a Tensor, got ${describe(t)}`);
      if ((t.ndim !== 2 && t.ndim !== 3) || t.shape[t.ndim - 1] !== f)
        fail(op, `${name} must be [${this.batchFirst ? 'N, L' : 'L, N'}, ${f}] (or unbatched [L, ${f}]), got ${fmtShape(t.shape)}`);
    }
    const batched = query.ndim === 3;
    if (key.ndim !== query.ndim || value.ndim !== query.ndim)
      fail(op, `query, key and value must all be batched (3-D) or all unbatched (2-D), got ${fmtShape(query.shape)}, ${fmtShape(key.shape)}, ${fmtShape(value.shape)}`);
    const bdim = this.batchFirst ? 0 : 1;
    const N = batched ? query.shape[bdim] : 1;
    const L = query.shape[batched ? 1 - bdim : 0];
    const S = key.shape[batched ? 1 - bdim : 0];
    if (batched && (key.shape[bdim] !== N || value.shape[bdim] !== N))
      fail(op, `key and value must have the query's batch size ${N}, got ${fmtShape(key.shape)} and ${fmtShape(value.shape)}`);
    if (value.shape[batched ? 1 - bdim : 0] !== S)
      fail(op, `key and value must have the same number of tokens, got ${fmtShape(key.shape)} and ${fmtShape(value.shape)}`);
    const needWeights = opts.needWeights ?? true;
    const average = opts.averageAttnWeights ?? true;
    return tidy(() => {
      // [N, T, F]
      const toNTF = (t: Tensor) => (!batched ? unsqueeze(t, 0) : this.batchFirst ? t : transpose(t, 0, 1));
      const [q0, k0, v0] = [toNTF(query), toNTF(key), toNTF(value)];
      const w = (i: number) => (this.inProjWeight ? slice(this.inProjWeight, 0, i * E, (i + 1) * E) : [this.qProjWeight, this.kProjWeight, this.vProjWeight][i]!);
      const b = (i: number) => (this.inProjBias ? slice(this.inProjBias, 0, i * E, (i + 1) * E) : null);
      // [N, T, E] → [N, H, T, hd]
      const heads = (t: Tensor, T: number) => permute(reshape(t, [N, T, H, this.headDim]), [0, 2, 1, 3]);
      const q = heads(linear(q0, w(0), b(0)), L);
      const k = heads(linear(k0, w(1), b(1)), S);
      const v = heads(linear(v0, w(2), b(2)), S);
      const mask = this.combinedMask(op, opts, N, L, S, batched);
      const drop = this.training ? this.dropout : 0;
      const [o, weights] = attentionWithWeights(op, q, k, v, mask, 1 / Math.sqrt(this.headDim), drop);
      let out = this.outProj.call(reshape(permute(o, [0, 2, 1, 3]), [N, L, E])) as Tensor;
      out = !batched ? squeeze(out, 0) : this.batchFirst ? out : transpose(out, 0, 1);
      if (!needWeights) return [out, null];
      let wOut = average ? mean(weights, { dim: 1 }) : weights;
      if (!batched) wOut = squeeze(wOut, 0);
      return [out, wOut];
    });
  }

  /** attn_mask and key_padding_mask merged into one additive f32 mask broadcastable to [N, H, L, S] (or null). */
  private combinedMask(op: string, opts: MultiheadAttentionForwardOptions, N: number, L: number, S: number, batched: boolean): Tensor | null {
    const additive = (m: Tensor) => (m.dtype === 'f32' ? m : where(m, -Infinity, 0));
    let mask: Tensor | null = null;
    const am = opts.attnMask ?? null;
    if (am !== null) {
      if (!(am instanceof Tensor)) fail(op, `attnMask must be a Tensor, got ${describe(am)}`);
      if (am.ndim === 2 && am.shape[0] === L && am.shape[1] === S) mask = additive(am);
      else if (am.ndim === 3 && am.shape[0] === N * this.numHeads && am.shape[1] === L && am.shape[2] === S)
        mask = reshape(additive(am), [N, this.numHeads, L, S]);
      else fail(op, `attnMask must be [L, S] = [${L}, ${S}] or [N·numHeads, L, S] = [${N * this.numHeads}, ${L}, ${S}], got ${fmtShape(am.shape)}`);
    }
    const kp = opts.keyPaddingMask ?? null;
    if (kp !== null) {
      if (!(kp instanceof Tensor)) fail(op, `keyPaddingMask must be a Tensor, got ${describe(kp)}`);
      const want = batched ? [N, S] : [S];
      if (kp.shape.join(',') !== want.join(',')) fail(op, `keyPaddingMask must be ${fmtShape(want)} ([N, S]), got ${fmtShape(kp.shape)}`);
      const k4 = reshape(additive(kp), [N, 1, 1, S]);
      mask = mask ? add(mask, k4) : k4;
    }
    return mask;
  }
}

/** Swin/timm Mlp: fc1 → GELU → dropout → fc2 → dropout. */
export class Mlp extends Module {
  readonly fc1: Linear;
  readonly act = new GELU();
  readonly fc2: Linear;
  readonly drop: Dropout;
  constructor(inFeatures: number, hiddenFeatures: number, opts: { dropout?: number } & InitSeed = {}) {
    super();
    this.fc1 = new Linear(inFeatures, hiddenFeatures, { seed: opts.seed });
    this.fc2 = new Linear(hiddenFeatures, inFeatures, { seed: seedPlus(opts.seed, 2) });
    this.drop = new Dropout({ p: opts.dropout ?? 0 });
  }
  override forward(x: Tensor): Tensor {
    return this.drop.call(this.fc2.call(this.drop.call(this.act.call(this.fc1.call(x)))));
  }
}

/**
 * Multi-head self-attention over the tokens of [B', N, C] (timm's Attention; with windowSize, Swin's WindowAttention:
 * a learned bias per head for every relative offset inside a window, relative_position_bias_table
 * [∏(2wᵢ − 1), heads] indexed by the relative_position_index buffer with TransMorph's convention).
 */
export class WindowAttention extends Module {
  declare relativePositionBiasTable: Tensor | null;
  declare relativePositionIndex: Tensor | null;
  readonly qkv: Linear;
  readonly proj: Linear;
  readonly attnDropout: number;
  readonly projDrop: Dropout;
  readonly scale: number;

  constructor(
    readonly dim: number,
    readonly numHeads: number,
    readonly windowSize: number[] | null,
    opts: { qkvBias?: boolean; attnDropout?: number; projDropout?: number } & InitSeed = {},
  ) {
    super();
    this.scale = (dim / numHeads) ** -0.5;
    this.attnDropout = opts.attnDropout ?? 0;
    if (windowSize) {
      const size = windowSize.reduce((a, w) => a * (2 * w - 1), 1);
      const table = zeros([size, numHeads], { requiresGrad: true });
      this.registerParameter('relative_position_bias_table', table, 'relativePositionBiasTable');
      this.registerBuffer('relative_position_index', tensor(relativePositionIndex(windowSize), [windowTokens(windowSize), windowTokens(windowSize)], { dtype: 'i32' }), 'relativePositionIndex');
      // Swin's trunc_normal_(std=.02) truncates at ±2 (absolute), i.e. 100σ: a plain normal draw
      normal_(table, { std: 0.02, seed: seedPlus(opts.seed, 9) });
    } else {
      this.registerParameter('relative_position_bias_table', null, 'relativePositionBiasTable');
      this.registerBuffer('relative_position_index', null, 'relativePositionIndex');
    }
    this.qkv = new Linear(dim, 3 * dim, { bias: opts.qkvBias ?? true, seed: opts.seed });
    this.proj = new Linear(dim, dim, { seed: seedPlus(opts.seed, 2) });
    this.projDrop = new Dropout({ p: opts.projDropout ?? 0 });
  }

  /** x [B', N, C] → [B', N, C]; mask (windowed, shifted) [nW, N, N] additive, B' = B·nW. */
  override forward(x: Tensor, mask: Tensor | null = null): Tensor {
    const [Bw, N, C] = x.shape;
    const H = this.numHeads;
    return tidy(() => {
      const qkv = permute(reshape(this.qkv.call(x), [Bw, N, 3, H, C / H]), [2, 0, 3, 1, 4]);
      const [q, k, v] = [0, 1, 2].map((i) => reshape(slice(qkv, 0, i, i + 1), [Bw, H, N, C / H]));
      let bias: Tensor | null = null;
      if (this.relativePositionBiasTable) {
        const rel = indexSelect(this.relativePositionBiasTable, 0, reshape(this.relativePositionIndex!, [N * N]));
        bias = unsqueeze(permute(reshape(rel, [N, N, H]), [2, 0, 1]), 0);
      }
      if (mask) {
        const nW = mask.shape[0];
        const m = reshape(mask, [1, nW, 1, N, N]);
        bias = bias ? add(unsqueeze(bias, 0), m) : m;
      }
      // scores are reshaped to [B, nW, H, N, N] when a window mask is present, as Swin does
      const qq = mask ? reshape(q, [Bw / mask.shape[0], mask.shape[0], H, N, C / H]) : q;
      const kk = mask ? reshape(k, [Bw / mask.shape[0], mask.shape[0], H, N, C / H]) : k;
      const vv = mask ? reshape(v, [Bw / mask.shape[0], mask.shape[0], H, N, C / H]) : v;
      const drop = this.training ? this.attnDropout : 0;
      const [o] = attentionWithWeights('WindowAttention', qq, kk, vv, bias, this.scale, drop);
      const out = reshape(transpose(reshape(o, [Bw, H, N, C / H]), 1, 2), [Bw, N, C]);
      return this.projDrop.call(this.proj.call(out));
    });
  }
}

const windowTokens = (w: number[]) => w.reduce((a, b) => a * b, 1);

/** TransMorph's relative_position_index for an n-D window: Σ_d (c_i[d] − c_j[d] + w_d − 1) · ∏_{d' > d} (2w_{d'} − 1). */
function relativePositionIndex(w: number[]): Int32Array {
  const N = windowTokens(w);
  const coords = Array.from({ length: N }, (_, i) => {
    const c = new Array<number>(w.length);
    for (let d = w.length - 1, r = i; d >= 0; d--) {
      c[d] = r % w[d];
      r = Math.floor(r / w[d]);
    }
    return c;
  });
  const mult = w.map((_, d) => w.slice(d + 1).reduce((a, x) => a * (2 * x - 1), 1));
  const out = new Int32Array(N * N);
  for (let i = 0; i < N; i++)
    for (let j = 0; j < N; j++) out[i * N + j] = w.reduce((s, wd, d) => s + (coords[i][d] - coords[j][d] + wd - 1) * mult[d], 0);
  return out;
}

export interface TransformerBlockOptions extends InitSeed {
  /** MLP hidden size = ⌊dim · mlpRatio⌋; default 4. */
  mlpRatio?: number;
  /** Dropout after the attention projection and in the MLP (Swin's drop); default 0. */
  dropout?: number;
  /** Dropout on the attention weights (Swin's attn_drop); default 0. */
  attnDropout?: number;
  qkvBias?: boolean;
  /** Swin windowed attention: window size per spatial dim, [Wh, Ww] or [Wd, Wh, Ww]; input is then [B, H, W, C] or [B, D, H, W, C]. */
  windowSize?: number[];
  /** Cyclic shift (Swin's SW-MSA), each in [0, window); all zero or all positive. Default 0. */
  shiftSize?: number | number[];
  /**
   * Stochastic depth (Swin's drop_path, timm's DropPath): in training, each sample's attention branch and MLP branch
   * are dropped with this probability (independent draws from the global generator, vg.manualSeed) and kept ones
   * scaled by 1 / (1 − p); identity in eval. Default 0.
   */
  dropPath?: number;
}

/**
 * Pre-norm transformer block: x + attn(norm1(x)), then x + mlp(norm2(x)). Without windowSize, global attention over
 * the tokens of [B, L, C] (timm's ViT Block). With windowSize, Swin/TransMorph's SwinTransformerBlock over a token
 * grid [B, ...spatial, C]: zero-pad to whole windows, cyclic shift with the -100 region mask, window attention with
 * relative position bias, reverse shift, crop.
 */
export class TransformerBlock extends Module {
  readonly norm1: LayerNorm;
  readonly attn: WindowAttention;
  readonly norm2: LayerNorm;
  readonly mlp: Mlp;
  readonly windowSize: number[] | null;
  readonly shiftSize: number[] | null;
  readonly dropPath: number;
  private readonly masks = new Map<string, Tensor>();

  constructor(readonly dim: number, readonly numHeads: number, opts: TransformerBlockOptions = {}) {
    super();
    const op = 'TransformerBlock';
    positiveInt(op, 'dim', dim);
    positiveInt(op, 'numHeads', numHeads);
    if (dim % numHeads) fail(op, `dim (${dim}) must be divisible by numHeads (${numHeads})`);
    const mlpRatio = opts.mlpRatio ?? 4;
    if (typeof mlpRatio !== 'number' || !(mlpRatio > 0) || Math.floor(dim * mlpRatio) < 1)
      fail(op, `mlpRatio must be a number > 0 giving at least one hidden unit, got ${describe(opts.mlpRatio)}`);
    const drop = probability(op, 'dropout', opts.dropout ?? 0);
    const attnDrop = probability(op, 'attnDropout', opts.attnDropout ?? 0);
    this.dropPath = probability(op, 'dropPath', opts.dropPath ?? 0);
    if (opts.windowSize !== undefined) {
      const w = opts.windowSize;
      if (!Array.isArray(w) || (w.length !== 2 && w.length !== 3) || w.some((x) => !Number.isInteger(x) || x < 1))
        fail(op, `windowSize must list 2 or 3 positive integers (one per spatial dim: [Wh, Ww] or [Wd, Wh, Ww]), got ${JSON.stringify(w)}`);
      const ss = opts.shiftSize ?? 0;
      const s = typeof ss === 'number' ? new Array<number>(w.length).fill(ss) : ss;
      if (!Array.isArray(s) || s.length !== w.length || s.some((x, i) => !Number.isInteger(x) || x < 0 || x >= w[i]))
        fail(op, `shiftSize must be an integer or ${w.length} integers in [0, windowSize), got ${JSON.stringify(ss)} for window ${JSON.stringify(w)}`);
      if (s.some((x) => x > 0) && s.some((x) => x === 0))
        fail(op, `shiftSize must be all zero or all positive (Swin's region mask assumes a shift along every dim), got ${JSON.stringify(ss)}`);
      this.windowSize = [...w];
      this.shiftSize = [...s];
    } else {
      if (opts.shiftSize) fail(op, 'shiftSize needs windowSize (shifted windows are a windowed-attention option)');
      this.windowSize = null;
      this.shiftSize = null;
    }
    this.norm1 = new LayerNorm(dim);
    this.attn = new WindowAttention(dim, numHeads, this.windowSize, { qkvBias: opts.qkvBias, attnDropout: attnDrop, projDropout: drop, seed: opts.seed });
    this.norm2 = new LayerNorm(dim);
    this.mlp = new Mlp(dim, Math.floor(dim * mlpRatio), { dropout: drop, seed: seedPlus(opts.seed, 5) });
  }

  override forward(x: Tensor): Tensor {
    const op = 'TransformerBlock';
    if (!(x instanceof Tensor)) fail(op, `input must be a Tensor, got ${describe(x)}`);
    const C = this.dim;
    if (!this.windowSize) {
      if (x.ndim !== 3 || x.shape[2] !== C) fail(op, `input must be tokens [B, L, ${C}], got ${fmtShape(x.shape)}`);
      return tidy(() => {
        const h = add(x, this.branch(this.attn.call(this.norm1.call(x))));
        return add(h, this.branch(this.mlp.call(this.norm2.call(h))));
      });
    }
    const n = x.ndim - 2;
    if ((n !== 2 && n !== 3) || x.shape[x.ndim - 1] !== C)
      fail(op, `windowed attention needs a token grid [B, H, W, ${C}] or [B, D, H, W, ${C}], got ${fmtShape(x.shape)}`);
    if (this.windowSize.length !== n)
      fail(op, `windowSize has ${this.windowSize.length} dims but the input has ${n} spatial dims (${fmtShape(x.shape)})`);
    const w = this.windowSize;
    const s = this.shiftSize!;
    const B = x.shape[0];
    const spatial = x.shape.slice(1, 1 + n);
    const padded = spatial.map((d, i) => Math.ceil(d / w[i]) * w[i]);
    const shifted = s.some((v) => v > 0);
    const mask = shifted ? this.shiftMask(padded, w, s) : null;
    return tidy(() => {
      let h = this.norm1.call(x) as Tensor;
      if (padded.some((p, i) => p !== spatial[i])) {
        const widths: number[] = [0, 0];
        for (let i = n - 1; i >= 0; i--) widths.push(0, padded[i] - spatial[i]);
        h = pad(h, widths);
      }
      if (shifted) h = roll(h, s.map((v) => -v));
      const windows = partition(h, w);
      const attended = this.attn.call(windows, mask) as Tensor;
      h = unpartition(attended, B, padded, w);
      if (shifted) h = roll(h, s);
      for (let i = 0; i < n; i++) if (padded[i] !== spatial[i]) h = slice(h, 1 + i, 0, spatial[i]);
      const y = add(x, this.branch(h));
      return add(y, this.branch(this.mlp.call(this.norm2.call(y))));
    });
  }

  /** timm's drop_path on a residual branch [B, ...]: sample b is kept when vg.rand([B])[b] >= p, as dropout keeps. */
  private branch(h: Tensor): Tensor {
    if (!this.training || this.dropPath === 0) return h;
    const keep = dropout(ones([h.shape[0], ...h.shape.slice(1).map(() => 1)]), { p: this.dropPath });
    return mul(h, keep);
  }

  /** Swin's SW-MSA mask [nW, N, N]: 0 within a region, -100 across regions (cached per padded grid). */
  private shiftMask(padded: number[], w: number[], s: number[]): Tensor {
    const key = padded.join('x');
    const cached = this.masks.get(key);
    if (cached && !cached.isDisposed) return cached;
    const n = padded.length;
    const region = (i: number, d: number) => (i < padded[d] - w[d] ? 0 : i < padded[d] - s[d] ? 1 : 2);
    const counts = padded.map((p, d) => p / w[d]);
    const nW = counts.reduce((a, b) => a * b, 1);
    const N = windowTokens(w);
    const ids = new Int32Array(nW * N);
    for (let win = 0; win < nW; win++)
      for (let t = 0; t < N; t++) {
        let id = 0;
        for (let d = 0, rw = win, rt = t, wStride = nW, tStride = N; d < n; d++) {
          wStride /= counts[d];
          tStride /= w[d];
          const wi = Math.floor(rw / wStride);
          const ti = Math.floor(rt / tStride);
          rw -= wi * wStride;
          rt -= ti * tStride;
          id = id * 3 + region(wi * w[d] + ti, d);
        }
        ids[win * N + t] = id;
      }
    const m = new Float32Array(nW * N * N);
    for (let win = 0; win < nW; win++)
      for (let i = 0; i < N; i++) for (let j = 0; j < N; j++) m[(win * N + i) * N + j] = ids[win * N + i] === ids[win * N + j] ? 0 : -100;
    const t = keep(noGrad(() => tensor(m, [nW, N, N])));
    this.masks.set(key, t);
    return t;
  }

  protected override freeCaches(): void {
    for (const m of this.masks.values()) m.dispose();
    this.masks.clear();
  }
}

/** torch.roll over the spatial dims 1..n of [B, ...spatial, C] by `shifts` (positive moves elements forward). */
function roll(x: Tensor, shifts: number[]): Tensor {
  let y = x;
  shifts.forEach((sh, i) => {
    const d = 1 + i;
    const len = y.shape[d];
    const k = ((sh % len) + len) % len;
    if (k) y = cat([slice(y, d, len - k, len), slice(y, d, 0, len - k)], d);
  });
  return y;
}

/** [B, ...padded, C] → [B·nW, N, C], windows in row-major window order (Swin's window_partition). */
function partition(x: Tensor, w: number[]): Tensor {
  const n = w.length;
  const B = x.shape[0];
  const C = x.shape[x.ndim - 1];
  const split: number[] = [B];
  for (let i = 0; i < n; i++) split.push(x.shape[1 + i] / w[i], w[i]);
  const perm = [0, ...w.map((_, i) => 1 + 2 * i), ...w.map((_, i) => 2 + 2 * i), 2 * n + 1];
  return reshape(permute(reshape(x, [...split, C]), perm), [-1, windowTokens(w), C]);
}

/** Inverse of partition (Swin's window_reverse). */
function unpartition(windows: Tensor, B: number, padded: number[], w: number[]): Tensor {
  const n = w.length;
  const C = windows.shape[2];
  const counts = padded.map((p, i) => p / w[i]);
  const perm = [0];
  for (let i = 0; i < n; i++) perm.push(1 + i, 1 + n + i);
  perm.push(2 * n + 1);
  return reshape(permute(reshape(windows, [B, ...counts, ...w, C]), perm), [B, ...padded, C]);
}
