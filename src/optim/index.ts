/**
 * vg.optim: SGD, Adam and AdamW with torch.optim's update formulas, and clipGradNorm.
 * Each parameter's step is one fused kernel (shaders/optim.wgsl) that reads grad and state and writes the parameter and
 * its state in place: a chain of elementwise ops would cost ~6-10 dispatches and as many temporaries per parameter.
 */
import optimWgsl from '../../shaders/optim.wgsl';
import { noGrad } from '../engine/autograd.js';
import { fail, fmtShape } from '../engine/errors.js';
import { dispatch, grid1d, kernel, type UniformValues } from '../engine/runtime.js';
import { Tensor, keep, tidy } from '../engine/tensor.js';
import { ceilDiv, describe } from '../kernels/common.js';
import { fillInto } from '../kernels/base.js';
import { zeros, zerosLike } from '../kernels/creation.js';
import { clone } from '../kernels/shape.js';
import { abs, add, clamp, div, maximum, mul, pow, sqrt } from '../kernels/math.js';
import { max, sum } from '../kernels/reduce.js';

/** torch.optim's state_dict layout (parameters numbered across groups; hyper-parameters under PyTorch's names). */
export interface OptimizerStateDict {
  state: Record<number, Record<string, Tensor | number>>;
  param_groups: ({ params: number[] } & Record<string, unknown>)[];
}

const snakeCase = (k: string) => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
const camelCase = (k: string) => k.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

function checkNumber(op: string, arg: string, v: unknown, ok: (x: number) => boolean, expected: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) fail(op, `${arg} must be ${expected}, got ${describe(v)}`);
  return v;
}

/** Shared parts: parameter groups, validation, per-parameter state and its disposal. */
abstract class Optimizer<O extends { lr: number }, S extends { step: number; buffers: Tensor[] }> {
  readonly paramGroups: (O & { params: Tensor[] })[];
  protected readonly state = new Map<Tensor, S>();

  constructor(
    readonly name: string,
    params: Tensor[] | ({ params: Tensor[] } & Partial<O>)[],
    defaults: Partial<O>,
  ) {
    if (!Array.isArray(params) || params.length === 0)
      fail(name, `params must be a non-empty array of tensors or of { params, ...options } groups, got ${describe(params)}`);
    const groups = params[0] instanceof Tensor ? [{ params: params as Tensor[] }] : (params as ({ params: Tensor[] } & Partial<O>)[]);
    const seen = new Set<Tensor>();
    this.paramGroups = groups.map((g, gi) => {
      const where = groups.length > 1 || !(params[0] instanceof Tensor) ? `paramGroups[${gi}].` : '';
      if (!g || !Array.isArray(g.params))
        fail(name, `params[${gi}] must be a Tensor or a { params: Tensor[], ...options } group, got ${describe(g)}`);
      g.params.forEach((p, i) => {
        const arg = `${where}params[${i}]`;
        if (!(p instanceof Tensor)) fail(name, `${arg} must be a Tensor, got ${describe(p)}`);
        p.storageFor(name);
        if (p.dtype !== 'f32') fail(name, `${arg} must be an f32 tensor, got ${p.dtype}; only floating-point tensors can be optimized`);
        if (!p.requiresGrad || !p.isLeaf)
          fail(
            name,
            `${arg} must be a leaf tensor with requiresGrad (a parameter), got ${describe(p)}` +
              `${p.requiresGrad ? ' produced by an op' : ' without requiresGrad'}. ` +
              'Create it with { requiresGrad: true } (or set p.requiresGrad = true on a tensor made without grad).',
          );
        if (seen.has(p)) fail(name, `${arg} appears more than once in the optimizer's parameters`);
        seen.add(p);
      });
      const merged = { ...defaults, ...g } as O & { params: Tensor[] };
      this.validate(merged, where);
      return merged;
    });
  }

  protected abstract validate(o: O, where: string): void;
  protected abstract update(p: Tensor, o: O): void;

  /** Applies one update to every parameter that has a gradient (others are skipped, as in PyTorch). */
  step(): void {
    noGrad(() =>
      this.paramGroups.forEach((g, gi) => {
        const where = this.paramGroups.length > 1 ? `paramGroups[${gi}].` : '';
        // options may have been changed since construction (schedulers, user code)
        this.validate(g, where);
        g.params.forEach((p, i) => {
          if (!p.grad) return;
          if (p.grad.dtype !== 'f32' || p.grad.shape.join(',') !== p.shape.join(','))
            fail(
              this.name,
              `${where}params[${i}].grad must be an f32 tensor of the parameter's shape ${fmtShape(p.shape)}, ` +
                `got ${describe(p.grad)}`,
            );
          this.update(p, g);
        });
      }),
    );
  }

  /**
   * Clears the gradients that backward() accumulates into (several backward calls sum into p.grad until this is
   * called, PyTorch's gradient-accumulation pattern). setToNone (default, as PyTorch) drops them; false zero-fills
   * them in place.
   */
  zeroGrad(opts: { setToNone?: boolean } = {}): void {
    const setToNone = opts.setToNone ?? true;
    for (const g of this.paramGroups)
      for (const p of g.params) {
        if (!p.grad) continue;
        if (setToNone) {
          p.grad.dispose();
          p.grad = null;
        } else fillInto(p.grad, 0);
      }
  }

  /** PyTorch's names of the state tensors, in the order of S.buffers (e.g. exp_avg, exp_avg_sq). */
  protected abstract stateNames(): string[];
  /** Whether the per-parameter state carries `step` (Adam does, SGD does not). */
  protected abstract readonly hasStep: boolean;

  /**
   * torch.optim's state_dict structure: { state: { index: { step?, exp_avg, ... } }, param_groups: [{ lr, betas,
   * weight_decay, ..., params: [indices] }] }, parameters numbered across groups in order. The state tensors are the
   * optimizer's own (not copies): read or save them, do not dispose them.
   */
  stateDict(): OptimizerStateDict {
    const index = new Map<Tensor, number>();
    const paramGroups = this.paramGroups.map((g) => {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(g)) if (k !== 'params') out[snakeCase(k)] = Array.isArray(v) ? [...v] : v;
      out.params = g.params.map((p) => {
        index.set(p, index.size);
        return index.size - 1;
      });
      return out as OptimizerStateDict['param_groups'][number];
    });
    const state: OptimizerStateDict['state'] = {};
    const names = this.stateNames();
    for (const [p, s] of this.state) {
      if (!index.has(p) || (!this.hasStep && s.buffers.length === 0)) continue;
      const entry: Record<string, Tensor | number> = this.hasStep ? { step: s.step } : {};
      s.buffers.forEach((b, i) => (entry[names[i]] = b));
      state[index.get(p)!] = entry;
    }
    return { state, param_groups: paramGroups };
  }

  /**
   * Restores a stateDict() (this optimizer's or one of the same kind over the same parameter layout): the
   * hyper-parameters of every group and copies of the state tensors. Checks group and parameter counts and shapes.
   */
  loadStateDict(dict: OptimizerStateDict): void {
    const op = `${this.name}.loadStateDict`;
    if (!dict || typeof dict !== 'object' || !Array.isArray(dict.param_groups) || !dict.state || typeof dict.state !== 'object')
      fail(op, `expected { state, param_groups } as returned by stateDict(), got ${describe(dict)}`);
    if (dict.param_groups.length !== this.paramGroups.length)
      fail(op, `the state dict has ${dict.param_groups.length} parameter groups, this optimizer ${this.paramGroups.length}`);
    const params: Tensor[] = [];
    dict.param_groups.forEach((g, gi) => {
      const own = this.paramGroups[gi];
      if (!g || !Array.isArray(g.params) || g.params.length !== own.params.length)
        fail(op, `param_groups[${gi}] has ${Array.isArray(g?.params) ? g.params.length : 'no'} parameters, this optimizer's group ${own.params.length}`);
      params.push(...own.params);
    });
    const names = this.stateNames();
    const loaded = new Map<Tensor, S>();
    const problems: string[] = [];
    for (const [key, entry] of Object.entries(dict.state)) {
      const p = params[Number(key)];
      if (!p || !entry || typeof entry !== 'object') {
        problems.push(`state[${key}] does not name a parameter (0..${params.length - 1})`);
        continue;
      }
      const step = this.hasStep ? entry.step : 0;
      if (typeof step !== 'number' || !Number.isInteger(step) || step < 0) problems.push(`state[${key}].step must be a non-negative integer, got ${describe(step)}`);
      const present = names.filter((n) => entry[n] !== undefined);
      for (const n of present) {
        const t = entry[n];
        if (!(t instanceof Tensor) || t.dtype !== 'f32' || t.shape.join(',') !== p.shape.join(','))
          problems.push(`state[${key}].${n} must be an f32 tensor of the parameter's shape ${fmtShape(p.shape)}, got ${describe(t)}`);
      }
      if (present.some((n, i) => n !== names[i])) problems.push(`state[${key}] has ${present.join(', ')}; expected the first of ${names.join(', ')}`);
      loaded.set(p, { step, buffers: present.map((n) => entry[n] as Tensor) } as S);
    }
    if (problems.length) fail(op, `${problems.join('; ')}. Nothing was loaded.`);
    const groups = dict.param_groups.map((g, gi) => {
      const merged = { ...this.paramGroups[gi] } as Record<string, unknown>;
      for (const [k, v] of Object.entries(g)) if (k !== 'params') merged[camelCase(k)] = Array.isArray(v) ? [...v] : v;
      this.validate(merged as unknown as O, this.paramGroups.length > 1 ? `param_groups[${gi}].` : '');
      return merged;
    });
    groups.forEach((g, gi) => Object.assign(this.paramGroups[gi], g, { params: this.paramGroups[gi].params }));
    for (const s of this.state.values()) for (const b of s.buffers) b.dispose();
    this.state.clear();
    noGrad(() => {
      for (const [p, s] of loaded) this.state.set(p, { ...s, buffers: s.buffers.map((b) => keep(clone(b))) });
    });
  }

  /** Releases the optimizer state (momentum / moment buffers). The optimizer is unusable afterwards. */
  dispose(): void {
    for (const s of this.state.values()) for (const b of s.buffers) b.dispose();
    this.state.clear();
    this.paramGroups.length = 0;
  }

  /** Zero-filled state buffers shaped like p that outlive any tidy scope (freed by dispose()). */
  protected buffersLike(p: Tensor, count: number): Tensor[] {
    return Array.from({ length: count }, () => keep(zerosLike(p)));
  }

  protected run(defines: Record<string, boolean>, p: Tensor, state: Tensor[], uniforms: UniformValues): void {
    const all: Record<string, boolean> = { ...defines, VEC4: p.size % 4 === 0 };
    const key = `optim.${this.name}[${Object.keys(all).filter((d) => all[d]).join(',')}]`;
    const k = kernel(key, () => optimWgsl, { defines: all });
    const n = all.VEC4 ? p.size / 4 : p.size;
    const buffers = [p.buffer(this.name), p.grad!.buffer(this.name), ...state.map((s) => s.buffer(this.name))];
    dispatch(k, buffers, { n, ...uniforms }, grid1d(ceilDiv(n, k.workgroupSize)));
  }
}

export interface SGDOptions {
  lr: number;
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
  nesterov?: boolean;
}

interface SGDState {
  step: number;
  buffers: Tensor[];
}

/** torch.optim.SGD: d = g + wd·p; buf = d (first step) or μ·buf + (1 − τ)·d; d = nesterov ? d + μ·buf : buf; p −= lr·d. */
export class SGD extends Optimizer<Required<SGDOptions>, SGDState> {
  protected readonly hasStep = false;
  protected stateNames(): string[] {
    return ['momentum_buffer'];
  }
  constructor(params: Tensor[] | ({ params: Tensor[] } & Partial<SGDOptions>)[], opts: SGDOptions) {
    if (!opts || typeof opts !== 'object') fail('SGD', `options must be an object with at least lr, got ${describe(opts)}`);
    super('SGD', params, { momentum: 0, dampening: 0, weightDecay: 0, nesterov: false, ...opts });
  }

  protected validate(o: Required<SGDOptions>, where: string): void {
    checkNumber('SGD', `${where}lr`, o.lr, (x) => x >= 0, 'a number >= 0 (the learning rate)');
    checkNumber('SGD', `${where}momentum`, o.momentum, (x) => x >= 0, 'a number >= 0');
    checkNumber('SGD', `${where}dampening`, o.dampening, () => true, 'a finite number');
    checkNumber('SGD', `${where}weightDecay`, o.weightDecay, (x) => x >= 0, 'a number >= 0');
    if (o.nesterov && (o.momentum <= 0 || o.dampening !== 0))
      fail('SGD', `${where}nesterov requires momentum > 0 and dampening = 0, got momentum ${o.momentum}, dampening ${o.dampening}`);
  }

  protected update(p: Tensor, o: Required<SGDOptions>): void {
    const useMomentum = o.momentum !== 0;
    let s = this.state.get(p);
    if (!s) this.state.set(p, (s = { step: 0, buffers: [] }));
    // PyTorch creates the momentum buffer on the first step with momentum, as a copy of d_p
    const first = useMomentum && s.buffers.length === 0;
    if (first) s.buffers = this.buffersLike(p, 1);
    this.run({ SGD: true, MOMENTUM: useMomentum, NESTEROV: o.nesterov }, p, useMomentum ? s.buffers : [], {
      first: first ? 1 : 0,
      lr: o.lr,
      weightDecay: o.weightDecay,
      momentum: o.momentum,
      dampening: o.dampening,
    });
    s.step++;
  }
}

export interface AdamOptions {
  lr?: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
  amsgrad?: boolean;
}

interface AdamState {
  step: number;
  /** exp_avg, exp_avg_sq and (amsgrad) max_exp_avg_sq. */
  buffers: Tensor[];
}

/**
 * torch.optim.Adam: g += wd·p; m = β1·m + (1 − β1)·g; v = β2·v + (1 − β2)·g²; (amsgrad) v̂ = max(v̂, v);
 * p −= lr/(1 − β1ᵗ) · m / (√v / √(1 − β2ᵗ) + eps). AdamW (decoupled) instead scales p by (1 − lr·wd) first.
 */
export class Adam extends Optimizer<Required<AdamOptions>, AdamState> {
  protected readonly hasStep = true;
  protected stateNames(): string[] {
    return ['exp_avg', 'exp_avg_sq', 'max_exp_avg_sq'];
  }
  constructor(
    params: Tensor[] | ({ params: Tensor[] } & Partial<AdamOptions>)[],
    opts: AdamOptions = {},
    name = 'Adam',
    private readonly decoupled = false,
  ) {
    if (!opts || typeof opts !== 'object') fail(name, `options must be an object, got ${describe(opts)}`);
    super(name, params, { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: decoupled ? 1e-2 : 0, amsgrad: false, ...opts });
  }

  protected validate(o: Required<AdamOptions>, where: string): void {
    checkNumber(this.name, `${where}lr`, o.lr, (x) => x >= 0, 'a number >= 0 (the learning rate)');
    checkNumber(this.name, `${where}eps`, o.eps, (x) => x >= 0, 'a number >= 0');
    checkNumber(this.name, `${where}weightDecay`, o.weightDecay, (x) => x >= 0, 'a number >= 0');
    const b = o.betas;
    if (!Array.isArray(b) || b.length !== 2 || !b.every((x) => typeof x === 'number' && x >= 0 && x < 1))
      fail(this.name, `${where}betas must be two numbers in [0, 1), got ${Array.isArray(b) ? `[${b.join(', ')}]` : describe(b)}`);
  }

  protected update(p: Tensor, o: Required<AdamOptions>): void {
    let s = this.state.get(p);
    if (!s) this.state.set(p, (s = { step: 0, buffers: this.buffersLike(p, o.amsgrad ? 3 : 2) }));
    if (o.amsgrad && s.buffers.length === 2) s.buffers.push(...this.buffersLike(p, 1));
    s.step++;
    const [beta1, beta2] = o.betas;
    this.run({ ADAM: true, AMSGRAD: o.amsgrad, DECOUPLED: this.decoupled }, p, s.buffers.slice(0, o.amsgrad ? 3 : 2), {
      lr: o.lr,
      weightDecay: o.weightDecay,
      beta1,
      beta2,
      eps: o.eps,
      stepSize: o.lr / (1 - beta1 ** s.step),
      bc2Sqrt: Math.sqrt(1 - beta2 ** s.step),
    });
  }
}

/** torch.optim.AdamW: Adam with decoupled weight decay (p *= 1 − lr·wd before the Adam step); weightDecay defaults to 1e-2. */
export class AdamW extends Adam {
  constructor(params: Tensor[] | ({ params: Tensor[] } & Partial<AdamOptions>)[], opts: AdamOptions = {}) {
    super(params, opts, 'AdamW', true);
  }
}

export interface ClipGradNormOptions {
  /** p of the p-norm; Infinity for the max norm. */
  normType?: number;
}

/**
 * torch.nn.utils.clip_grad_norm_: total = ‖(‖g₁‖, ‖g₂‖, …)‖ₚ over the gradients of `params` (those without grad are
 * skipped); every gradient is scaled in place by min(maxNorm / (total + 1e-6), 1). Returns total as a 0-d tensor; nothing
 * is read back to the host.
 */
export function clipGradNorm(params: Tensor | Tensor[], maxNorm: number, opts: ClipGradNormOptions = {}): Tensor {
  const op = 'clipGradNorm';
  const list = params instanceof Tensor ? [params] : params;
  if (!Array.isArray(list)) fail(op, `params must be a Tensor or an array of tensors, got ${describe(params)}`);
  list.forEach((p, i) => {
    if (!(p instanceof Tensor)) fail(op, `params[${i}] must be a Tensor, got ${describe(p)}`);
  });
  checkNumber(op, 'maxNorm', maxNorm, (x) => x >= 0, 'a number >= 0');
  const normType = opts.normType ?? 2;
  if (typeof normType !== 'number' || !(normType > 0))
    fail(op, `normType must be a positive number or Infinity, got ${describe(normType)}`);
  const grads = list.filter((p) => p.grad).map((p) => p.grad!);
  return noGrad(() =>
    tidy(() => {
      if (grads.length === 0) return zeros([]);
      const inf = normType === Infinity;
      // per-tensor partial: max |g| (inf) or Σ|g|ᵖ, combined across tensors the same way
      const parts = grads.map((g) => (inf ? max(abs(g)) : normType === 2 ? sum(mul(g, g)) : sum(pow(abs(g), normType))));
      let acc = parts[0];
      for (const t of parts.slice(1)) acc = inf ? maximum(acc, t) : add(acc, t);
      const total = inf ? acc : normType === 2 ? sqrt(acc) : pow(acc, 1 / normType);
      const scale = clamp(div(maxNorm, add(total, 1e-6)), { max: 1 });
      const kernels = [false, true].map((v) => kernel(`optim.clipScale${v ? '[VEC4]' : ''}`, () => optimWgsl, { defines: { SCALE: true, VEC4: v } }));
      // scale each storage once: gradients may share one (e.g. views), and in-place scaling must not compound
      const scaled = new Set<unknown>();
      for (const g of grads) {
        if (scaled.has(g.storageFor(op))) continue;
        scaled.add(g.storageFor(op));
        const vec4 = g.size % 4 === 0;
        const k = kernels[vec4 ? 1 : 0];
        const n = vec4 ? g.size / 4 : g.size;
        dispatch(k, [g.buffer(op), scale.buffer(op)], { n }, grid1d(ceilDiv(n, k.workgroupSize)));
      }
      return total;
    }),
  );
}

export { LRScheduler, StepLR, CosineAnnealingLR, PolyLR, LinearWarmup } from './schedulers.js';
export { EMA, type EMAOptions } from './ema.js';
