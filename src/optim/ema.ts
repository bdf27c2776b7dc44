/**
 * vg.optim.EMA: exponential moving average of a module's weights (mean teacher, Tarvainen & Valpola 2017; the
 * SSL4MIS recipes). update() runs one fused kernel per parameter (shaders/ema.wgsl) instead of a mul + add chain
 * with its temporaries; buffers (running statistics, counters) are copied from the student.
 */
import emaWgsl from '../../shaders/ema.wgsl';
import { noGrad } from '../engine/autograd.js';
import { fail } from '../engine/errors.js';
import { dispatch, grid1d, kernel } from '../engine/runtime.js';
import { Tensor, keep } from '../engine/tensor.js';
import { ceilDiv, describe } from '../kernels/common.js';
import { clone } from '../kernels/shape.js';
import { Module, copyInto } from '../nn/module.js';

export interface EMAOptions {
  /** The EMA decay α (weight of the old average); default 0.999. */
  decay?: number;
  /**
   * SSL4MIS's ramp: α = min(1 − 1/(step + 1), decay), so the first update copies the student and early averages
   * forget faster. Default false (constant α).
   */
  warmup?: boolean;
  /**
   * A module of the same architecture to hold the average (the teacher; its weights are overwritten with the
   * student's now). Without it the EMA keeps its own copies: read them with stateDict() or applyTo(module).
   */
  teacher?: Module;
  /** Copy buffers (BatchNorm running statistics) from the student on every update; default true. */
  copyBuffers?: boolean;
}

export class EMA {
  readonly decay: number;
  readonly warmup: boolean;
  readonly copyBuffers: boolean;
  /** The teacher module, when one was given. */
  readonly module: Module | null;
  /** Updates done so far (SSL4MIS's global_step for the next update). */
  step = 0;
  /** [state-dict key, shadow]; the student's tensors are looked up by key on every update (a module may replace them). */
  private readonly params: [string, Tensor][] = [];
  private readonly buffers: [string, Tensor][] = [];

  constructor(readonly model: Module, opts: EMAOptions = {}) {
    const op = 'EMA';
    if (!(model instanceof Module)) fail(op, `model must be a vg.nn.Module, got ${describe(model)}`);
    if (!opts || typeof opts !== 'object') fail(op, `options must be an object, got ${describe(opts)}`);
    this.decay = opts.decay ?? 0.999;
    if (typeof this.decay !== 'number' || !(this.decay >= 0 && this.decay <= 1)) fail(op, `decay must be a number in [0, 1], got ${describe(opts.decay)}`);
    this.warmup = opts.warmup ?? false;
    this.copyBuffers = opts.copyBuffers ?? true;
    const teacher = opts.teacher ?? null;
    if (teacher !== null && !(teacher instanceof Module)) fail(op, `teacher must be a vg.nn.Module, got ${describe(teacher)}`);
    if (teacher === model) fail(op, 'teacher must be a separate module of the same architecture, not the student itself');
    this.module = teacher;
    if (teacher) teacher.loadStateDict(model.stateDict());
    const shadowOf = teacher ? teacher.stateDict() : null;
    noGrad(() => {
      const own = (t: Tensor) => keep(clone(t));
      for (const [k, p] of model.namedParameters()) this.params.push([k, shadowOf ? shadowOf[k] : own(p)]);
      for (const [k, b] of model.namedBuffers()) this.buffers.push([k, shadowOf ? shadowOf[k] : own(b)]);
    });
  }

  /** The α the next update() uses. */
  get alpha(): number {
    return this.warmup ? Math.min(1 - 1 / (this.step + 1), this.decay) : this.decay;
  }

  /** shadow = α·shadow + (1 − α)·param for every parameter (call after optimizer.step()); buffers are copied. */
  update(): void {
    const op = 'EMA.update';
    const alpha = this.alpha;
    const kernels = [false, true].map((v) => kernel(`ema${v ? '[VEC4]' : ''}`, () => emaWgsl, { defines: { VEC4: v } }));
    const student = this.model.stateDict();
    const get = (k: string) => student[k] ?? fail(op, `the model no longer has '${k}'; the EMA follows the model's state-dict keys at construction`);
    for (const [key, s] of this.params) {
      const p = get(key);
      if (p.shape.join(',') !== s.shape.join(',')) fail(op, `'${key}' changed shape since the EMA was created`);
      if (p.size === 0) continue;
      const vec4 = p.size % 4 === 0;
      const k = kernels[vec4 ? 1 : 0];
      const n = vec4 ? p.size / 4 : p.size;
      dispatch(k, [s.buffer(op), p.buffer(op)], { n, alpha, oneMinusAlpha: 1 - alpha }, grid1d(ceilDiv(n, k.workgroupSize)));
    }
    if (this.copyBuffers) noGrad(() => this.buffers.forEach(([k, s]) => copyInto(op, s, get(k))));
    this.step++;
  }

  /** The averaged weights and buffers under the model's state-dict keys (the EMA's own tensors: do not dispose them). */
  stateDict(): Record<string, Tensor> {
    const out: Record<string, Tensor> = {};
    for (const [k, s] of [...this.params, ...this.buffers]) out[k] = s;
    return out;
  }

  /** Copies the averaged weights into `m` (a module of the model's architecture), e.g. for evaluation or export. */
  applyTo(m: Module): void {
    if (!(m instanceof Module)) fail('EMA.applyTo', `expects a vg.nn.Module, got ${describe(m)}`);
    m.loadStateDict(this.stateDict());
  }

  /** Frees the EMA's own copies (a teacher module keeps its tensors). */
  dispose(): void {
    if (!this.module) for (const [, s] of [...this.params, ...this.buffers]) s.dispose();
    this.params.length = 0;
    this.buffers.length = 0;
  }
}
