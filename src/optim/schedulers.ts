/**
 * Learning-rate schedulers (torch.optim.lr_scheduler closed forms): pure JS that writes each param group's lr.
 * Construction sets epoch 0's lr; every step() advances one epoch (call it after optimizer.step(), as in PyTorch).
 */
import { fail } from '../engine/errors.js';
import { describe } from '../kernels/common.js';

interface HasGroups {
  paramGroups: { lr: number }[];
}

function expectOptimizer(op: string, v: unknown): HasGroups {
  const groups = (v as HasGroups | null)?.paramGroups;
  if (!Array.isArray(groups)) fail(op, `optimizer must be a vg.optim optimizer (with paramGroups), got ${describe(v)}`);
  return v as HasGroups;
}

function checkOpt(op: string, arg: string, v: unknown, ok: (x: number) => boolean, expected: string): number {
  if (typeof v !== 'number' || !ok(v)) fail(op, `${arg} must be ${expected}, got ${describe(v)}`);
  return v;
}

/** PyTorch's attribute names for the schedule settings (snake_case, with CosineAnnealingLR's capitalised T_max). */
const torchName = (k: string) => (k === 'tMax' ? 'T_max' : k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`));

export abstract class LRScheduler {
  readonly optimizer: HasGroups;
  /** Each group's lr when the scheduler was created (PyTorch's initial_lr). */
  readonly baseLrs: number[];
  lastEpoch = 0;

  constructor(op: string, optimizer: unknown) {
    this.optimizer = expectOptimizer(op, optimizer);
    this.baseLrs = this.optimizer.paramGroups.map((g) => g.lr);
  }

  /** The lr of a group whose base lr is `base`, at `epoch`. */
  abstract lrAt(epoch: number, base: number): number;

  step(): void {
    this.lastEpoch++;
    this.apply();
  }

  getLastLr(): number[] {
    return this.optimizer.paramGroups.map((g) => g.lr);
  }

  /**
   * PyTorch's scheduler state_dict: last_epoch, base_lrs, _last_lr and the schedule's settings under PyTorch's names
   * (step_size, gamma, T_max, eta_min, total_iters, power, ...); a warmup wrapper nests its inner schedule's.
   */
  stateDict(): Record<string, unknown> {
    const out: Record<string, unknown> = { last_epoch: this.lastEpoch, base_lrs: [...this.baseLrs], _last_lr: this.getLastLr() };
    for (const [k, v] of Object.entries(this))
      if (!['optimizer', 'baseLrs', 'lastEpoch'].includes(k)) out[torchName(k)] = v instanceof LRScheduler ? v.stateDict() : v;
    return out;
  }

  /** Restores a stateDict() of the same kind of schedule; the optimizer's lr comes from the optimizer's own state, as in PyTorch. */
  loadStateDict(dict: Record<string, unknown>): void {
    const op = `${this.constructor.name}.loadStateDict`;
    if (!dict || typeof dict !== 'object') fail(op, `expected the object stateDict() returns, got ${describe(dict)}`);
    const { last_epoch: lastEpoch, base_lrs: baseLrs } = dict as { last_epoch?: unknown; base_lrs?: unknown };
    checkOpt(op, 'last_epoch', lastEpoch, (x) => Number.isInteger(x) && x >= 0, 'a non-negative integer');
    if (!Array.isArray(baseLrs) || baseLrs.length !== this.baseLrs.length || baseLrs.some((x) => typeof x !== 'number'))
      fail(op, `base_lrs must be ${this.baseLrs.length} numbers (one per parameter group), got ${describe(baseLrs)}`);
    const self = this as unknown as Record<string, unknown>;
    const settings: [string, unknown][] = [];
    for (const [k, v] of Object.entries(this)) {
      if (['optimizer', 'baseLrs', 'lastEpoch'].includes(k)) continue;
      const saved = dict[torchName(k)];
      if (v instanceof LRScheduler) continue;
      if (typeof saved !== typeof v) fail(op, `${torchName(k)} must be a ${typeof v} (saved by the same kind of scheduler), got ${describe(saved)}`);
      settings.push([k, saved]);
    }
    for (const [k, v] of Object.entries(this)) if (v instanceof LRScheduler) v.loadStateDict(dict[torchName(k)] as Record<string, unknown>);
    for (const [k, v] of settings) self[k] = v;
    this.lastEpoch = lastEpoch as number;
    this.baseLrs.splice(0, this.baseLrs.length, ...(baseLrs as number[]));
  }

  protected apply(): void {
    this.optimizer.paramGroups.forEach((g, i) => (g.lr = this.lrAt(this.lastEpoch, this.baseLrs[i])));
  }
}

/** torch StepLR: lr = base · gamma^⌊epoch / stepSize⌋. */
export class StepLR extends LRScheduler {
  readonly stepSize: number;
  readonly gamma: number;
  constructor(optimizer: unknown, opts: { stepSize: number; gamma?: number }) {
    super('StepLR', optimizer);
    this.stepSize = checkOpt('StepLR', 'stepSize', opts?.stepSize, (x) => Number.isInteger(x) && x > 0, 'a positive integer');
    this.gamma = checkOpt('StepLR', 'gamma', opts.gamma ?? 0.1, (x) => Number.isFinite(x) && x >= 0, 'a number >= 0');
    this.apply();
  }
  lrAt(epoch: number, base: number): number {
    return base * this.gamma ** Math.floor(epoch / this.stepSize);
  }
}

/** torch CosineAnnealingLR: lr = etaMin + (base − etaMin)·(1 + cos(π·epoch / tMax)) / 2. */
export class CosineAnnealingLR extends LRScheduler {
  readonly tMax: number;
  readonly etaMin: number;
  constructor(optimizer: unknown, opts: { tMax: number; etaMin?: number }) {
    super('CosineAnnealingLR', optimizer);
    this.tMax = checkOpt('CosineAnnealingLR', 'tMax', opts?.tMax, (x) => Number.isInteger(x) && x > 0, 'a positive integer');
    this.etaMin = checkOpt('CosineAnnealingLR', 'etaMin', opts.etaMin ?? 0, (x) => Number.isFinite(x) && x >= 0, 'a number >= 0');
    this.apply();
  }
  lrAt(epoch: number, base: number): number {
    return this.etaMin + ((base - this.etaMin) * (1 + Math.cos((Math.PI * epoch) / this.tMax))) / 2;
  }
}

/** torch PolynomialLR (nnU-Net's poly schedule): lr = base · (1 − min(epoch, totalIters) / totalIters)^power. */
export class PolyLR extends LRScheduler {
  readonly totalIters: number;
  readonly power: number;
  constructor(optimizer: unknown, opts: { totalIters: number; power?: number }) {
    super('PolyLR', optimizer);
    this.totalIters = checkOpt('PolyLR', 'totalIters', opts?.totalIters, (x) => Number.isInteger(x) && x > 0, 'a positive integer');
    this.power = checkOpt('PolyLR', 'power', opts.power ?? 1, (x) => Number.isFinite(x) && x > 0, 'a number > 0');
    this.apply();
  }
  lrAt(epoch: number, base: number): number {
    return base * (1 - Math.min(epoch, this.totalIters) / this.totalIters) ** this.power;
  }
}

/**
 * Linear warmup over another scheduler: for epoch < warmupIters the inner lr is scaled by
 * startFactor + (1 − startFactor)·epoch / warmupIters (torch LinearLR's factor), afterwards it is the inner lr unchanged.
 * Step this wrapper only: it advances the inner schedule's epoch with its own.
 */
export class LinearWarmup extends LRScheduler {
  readonly inner: LRScheduler;
  readonly warmupIters: number;
  readonly startFactor: number;
  constructor(inner: LRScheduler, opts: { warmupIters: number; startFactor?: number }) {
    if (!(inner instanceof LRScheduler)) fail('LinearWarmup', `inner must be a vg.optim scheduler, got ${describe(inner)}`);
    super('LinearWarmup', inner.optimizer);
    this.inner = inner;
    this.baseLrs.splice(0, this.baseLrs.length, ...inner.baseLrs);
    this.warmupIters = checkOpt('LinearWarmup', 'warmupIters', opts?.warmupIters, (x) => Number.isInteger(x) && x > 0, 'a positive integer');
    this.startFactor = checkOpt('LinearWarmup', 'startFactor', opts.startFactor ?? 1 / 3, (x) => x > 0 && x <= 1, 'a number in (0, 1]');
    this.apply();
  }
  override step(): void {
    this.inner.lastEpoch = this.lastEpoch + 1;
    super.step();
  }
  lrAt(epoch: number, base: number): number {
    const f = epoch < this.warmupIters ? this.startFactor + ((1 - this.startFactor) * epoch) / this.warmupIters : 1;
    return f * this.inner.lrAt(epoch, base);
  }
}
