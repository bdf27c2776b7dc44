/**
 * Training checkpoints of a model, its optimizer and scheduler, in vg.io's checkpoint format: the model's weights
 * under their state-dict keys, the optimizer's state tensors under `optimizer.state.<index>.<name>`, and as JSON
 * sections the optimizer's param_groups and per-parameter steps, the scheduler's state, the global random generator
 * (dropout masks) and user extras. Written atomically, so a crash mid-save leaves the previous checkpoint in place;
 * loading validates everything before it changes anything, then restores it so training continues bit-for-bit.
 */
import { fail, fmtShape } from '../engine/errors.js';
import { Tensor } from '../engine/tensor.js';
import { describe } from '../kernels/common.js';
import { generatorState, setGeneratorState } from '../kernels/random.js';
import { encodeCheckpointData, readCheckpointData, type CheckpointData } from '../io/checkpoint.js';
import { files } from '../io/files.js';
import type { SafetensorsSource } from '../io/safetensors.js';
import { Module } from '../nn/module.js';
import type { OptimizerStateDict } from '../optim/index.js';
import type { LRScheduler } from '../optim/schedulers.js';

const OPT_PREFIX = 'optimizer.state.';

/** What checkpoints need of an optimizer (every vg.optim optimizer). */
interface StatefulOptimizer {
  readonly name: string;
  stateDict(): OptimizerStateDict;
  loadStateDict(dict: OptimizerStateDict): void;
}

export interface CheckpointContents {
  model: Module;
  optimizer?: StatefulOptimizer;
  scheduler?: LRScheduler;
  /** The training step (or epoch) the checkpoint was taken after. */
  step: number;
  /** Anything JSON-serialisable (best metric, config, ...), returned by loadCheckpoint. */
  extra?: unknown;
}

function checkOptimizer(op: string, o: unknown): StatefulOptimizer {
  const x = o as StatefulOptimizer | null;
  if (!x || typeof x.stateDict !== 'function' || typeof x.loadStateDict !== 'function' || typeof x.name !== 'string')
    fail(op, `optimizer must be a vg.optim optimizer, got ${describe(o)}`);
  return x;
}

function checkScheduler(op: string, s: unknown): LRScheduler {
  const x = s as LRScheduler | null;
  if (!x || typeof x.stateDict !== 'function' || typeof x.loadStateDict !== 'function')
    fail(op, `scheduler must be a vg.optim scheduler, got ${describe(s)}`);
  return x;
}

/** The checkpoint's bytes (what saveCheckpoint writes), e.g. to store elsewhere than a file. */
export async function encodeCheckpoint(c: CheckpointContents, op = 'encodeCheckpoint'): Promise<Uint8Array> {
  if (!c || typeof c !== 'object') fail(op, `expects { model, optimizer?, scheduler?, step, extra? }, got ${describe(c)}`);
  if (!(c.model instanceof Module)) fail(op, `model must be a vg.nn.Module, got ${describe(c.model)}`);
  if (!Number.isSafeInteger(c.step) || c.step < 0) fail(op, `step must be a non-negative integer, got ${describe(c.step)}`);
  const tensors: Record<string, Tensor> = { ...c.model.stateDict() };
  const clash = Object.keys(tensors).find((k) => k.startsWith('optimizer.'));
  if (clash && c.optimizer) fail(op, `model state-dict key '${clash}' collides with the optimizer's 'optimizer.' prefix; rename that submodule`);
  const sections: Record<string, unknown> = { rng: generatorState() };
  if (c.optimizer) {
    const opt = checkOptimizer(op, c.optimizer);
    const sd = opt.stateDict();
    const state: Record<string, Record<string, unknown>> = {};
    for (const [i, entry] of Object.entries(sd.state)) {
      state[i] = {};
      for (const [name, v] of Object.entries(entry)) {
        if (v instanceof Tensor) tensors[`${OPT_PREFIX}${i}.${name}`] = v;
        else state[i][name] = v;
      }
    }
    sections.optimizer = { type: opt.name, param_groups: sd.param_groups, state };
  }
  if (c.scheduler) sections.scheduler = checkScheduler(op, c.scheduler).stateDict();
  sections.extra = c.extra;
  return encodeCheckpointData(tensors, c.step, sections, op);
}

/** Saves model, optimizer, scheduler, step, RNG state and extras to `path` atomically (temp file + rename). */
export async function saveCheckpoint(path: string, c: CheckpointContents): Promise<void> {
  const op = 'saveCheckpoint';
  if (typeof path !== 'string' || !path) fail(op, `path must be a file path string, got ${describe(path)}`);
  const bytes = await encodeCheckpoint(c, op);
  await files(op, 'vg.train.encodeCheckpoint').writeFileAtomic(path, bytes);
}

export interface LoadCheckpointTargets {
  model: Module;
  optimizer?: StatefulOptimizer;
  scheduler?: LRScheduler;
  /** Restore the global random generator (default true: needed for a bit-exact resume with dropout). */
  restoreRng?: boolean;
}

const isObject = (x: unknown): x is Record<string, unknown> => x !== null && typeof x === 'object' && !Array.isArray(x);

/** The model's part of the file must match the module exactly: keys, shapes, dtypes. */
function checkModelTensors(op: string, label: string, model: Module, given: Map<string, Tensor>): void {
  const own = new Map(Object.entries(model.stateDict()));
  const missing = [...own.keys()].filter((k) => !given.has(k));
  const unexpected = [...given.keys()].filter((k) => !own.has(k));
  if (missing.length || unexpected.length)
    fail(
      op,
      `${label} does not match the model: missing keys [${missing.map((k) => `'${k}'`).join(', ')}], unexpected keys [${unexpected.map((k) => `'${k}'`).join(', ')}]. Nothing was loaded.`,
    );
  const problems: string[] = [];
  for (const [k, t] of own) {
    const src = given.get(k)!;
    if (src.shape.join(',') !== t.shape.join(',')) problems.push(`'${k}': checkpoint shape ${fmtShape(src.shape)}, model shape ${fmtShape(t.shape)}`);
    else if (src.dtype !== t.dtype) problems.push(`'${k}': checkpoint dtype ${src.dtype}, model dtype ${t.dtype}`);
  }
  if (problems.length) fail(op, `${label} does not match the model: ${problems.join('; ')}. Nothing was loaded.`);
}

/** The optimizer's state dict from the file, its param_groups shaped exactly like the optimizer's own (keys and types). */
function optimizerDict(op: string, data: CheckpointData, optimizer: StatefulOptimizer, tensors: Map<string, Map<string, Tensor>>): OptimizerStateDict {
  const { label } = data;
  const saved = data.sections.get('optimizer');
  if (saved === undefined) fail(op, `${label}: an optimizer was given but the checkpoint holds no optimizer state (it was saved without one)`);
  if (!isObject(saved) || !Array.isArray(saved.param_groups) || (saved.state !== undefined && !isObject(saved.state)))
    fail(op, `${label}: __metadata__.optimizer must be { type, param_groups, state }, got ${describe(saved)}`);
  if (saved.type !== optimizer.name) fail(op, `${label}: the checkpoint holds ${String(saved.type)} state but the optimizer is ${optimizer.name}`);
  const own = optimizer.stateDict();
  if (saved.param_groups.length !== own.param_groups.length)
    fail(op, `${label}: __metadata__.optimizer.param_groups has ${saved.param_groups.length} groups, the optimizer ${own.param_groups.length}`);
  const paramCount = own.param_groups.reduce((n, g) => n + g.params.length, 0);
  saved.param_groups.forEach((group: unknown, gi: number) => {
    const mine = own.param_groups[gi] as unknown as Record<string, unknown>;
    const where = `__metadata__.optimizer.param_groups[${gi}]`;
    if (!isObject(group)) fail(op, `${label}: ${where} must be an object, got ${describe(group)}`);
    for (const [key, expected] of Object.entries(mine)) {
      const value = group[key];
      const sameKind = Array.isArray(expected)
        ? Array.isArray(value) && value.length === expected.length && value.every((v) => typeof v === 'number' && Number.isFinite(v))
        : typeof value === typeof expected && (typeof value !== 'number' || Number.isFinite(value));
      if (!sameKind) fail(op, `${label}: ${where}.${key} must be ${Array.isArray(expected) ? `${expected.length} numbers` : `a finite ${typeof expected}`} (as the optimizer's own), got ${describe(value)}`);
    }
    const unknown = Object.keys(group).find((k) => !(k in mine));
    if (unknown !== undefined) fail(op, `${label}: ${where}.${unknown} is not a setting of ${optimizer.name}`);
  });
  const savedState = (saved.state ?? {}) as Record<string, unknown>;
  const state: OptimizerStateDict['state'] = {};
  for (const index of new Set([...Object.keys(savedState), ...tensors.keys()])) {
    const i = Number(index);
    if (!/^(0|[1-9][0-9]*)$/.test(index) || i >= paramCount)
      fail(op, `${label}: optimizer state '${index}' does not name a parameter (0..${paramCount - 1})`);
    const numbers = savedState[index] ?? {};
    if (!isObject(numbers)) fail(op, `${label}: __metadata__.optimizer.state.${index} must be an object, got ${describe(numbers)}`);
    state[i] = { ...(numbers as Record<string, number>), ...Object.fromEntries(tensors.get(index) ?? []) };
  }
  return { state, param_groups: saved.param_groups as OptimizerStateDict['param_groups'] };
}

/** The scheduler's saved state must have what its loadStateDict reads, with the types of its own (nested schedules too). */
function checkSchedulerState(op: string, label: string, saved: unknown, own: Record<string, unknown>, where: string): void {
  if (!isObject(saved)) fail(op, `${label}: ${where} must be a scheduler's state object, got ${describe(saved)}`);
  for (const [key, expected] of Object.entries(own)) {
    const value = saved[key];
    if (key === 'last_epoch') {
      if (!Number.isSafeInteger(value) || (value as number) < 0) fail(op, `${label}: ${where}.last_epoch must be a non-negative integer, got ${describe(value)}`);
    } else if (Array.isArray(expected)) {
      if (!Array.isArray(value) || value.length !== expected.length || value.some((v) => typeof v !== 'number'))
        fail(op, `${label}: ${where}.${key} must be ${expected.length} numbers (one per parameter group), got ${describe(value)}`);
    } else if (isObject(expected)) checkSchedulerState(op, label, value, expected, `${where}.${key}`);
    else if (typeof value !== typeof expected) fail(op, `${label}: ${where}.${key} must be a ${typeof expected} (saved by the same kind of scheduler), got ${describe(value)}`);
  }
}

function checkRng(op: string, label: string, rng: unknown): { seed: number; offset: number } {
  if (!isObject(rng) || !Number.isSafeInteger(rng.seed) || (rng.seed as number) < 0 || !Number.isInteger(rng.offset) || (rng.offset as number) < 0 || (rng.offset as number) > 0xffffffff)
    fail(op, `${label}: __metadata__.rng must be { seed: integer ≥ 0, offset: integer in [0, 2^32 - 1] }, got ${JSON.stringify(rng)}`);
  return rng as { seed: number; offset: number };
}

/**
 * Restores a checkpoint written by saveCheckpoint into the given model (strict keys, shapes and dtypes), optimizer
 * and scheduler, and the random generator; returns { step, extra }. Everything is validated before anything changes:
 * a checkpoint that fails leaves the model, optimizer, scheduler and generator as they were.
 */
export async function loadCheckpoint(source: SafetensorsSource, targets: LoadCheckpointTargets): Promise<{ step: number; extra: unknown }> {
  const op = 'loadCheckpoint';
  if (!targets || !(targets.model instanceof Module)) fail(op, `expects { model, optimizer?, scheduler? } with a vg.nn.Module, got ${describe(targets?.model)}`);
  const optimizer = targets.optimizer ? checkOptimizer(op, targets.optimizer) : null;
  const scheduler = targets.scheduler ? checkScheduler(op, targets.scheduler) : null;
  const data = await readCheckpointData(source, op);
  const { label } = data;
  try {
    // optimizer tensors (when the file holds optimizer state) by parameter index, then name; the rest is the model's
    const modelTensors = new Map<string, Tensor>();
    const optTensors = new Map<string, Map<string, Tensor>>();
    const hasOptimizer = data.sections.has('optimizer');
    for (const [key, t] of data.tensors) {
      if (!hasOptimizer || !key.startsWith(OPT_PREFIX)) {
        modelTensors.set(key, t);
        continue;
      }
      const m = /^(\d+)\.([A-Za-z_][A-Za-z0-9_]*)$/.exec(key.slice(OPT_PREFIX.length));
      if (!m) fail(op, `${label}: tensor '${key}' is not an optimizer state tensor (optimizer.state.<index>.<name>)`);
      if (!optTensors.has(m[1])) optTensors.set(m[1], new Map());
      optTensors.get(m[1])!.set(m[2], t);
    }
    const rng = checkRng(op, label, data.sections.get('rng'));
    checkModelTensors(op, label, targets.model, modelTensors);
    const optDict = optimizer ? optimizerDict(op, data, optimizer, optTensors) : null;
    let schedDict: Record<string, unknown> | null = null;
    if (scheduler) {
      const saved = data.sections.get('scheduler');
      if (saved === undefined) fail(op, `${label}: a scheduler was given but the checkpoint holds no scheduler state (it was saved without one)`);
      checkSchedulerState(op, label, saved, scheduler.stateDict(), '__metadata__.scheduler');
      schedDict = saved as Record<string, unknown>;
    }
    // the optimizer first: its loadStateDict checks its state tensors and the groups' values before it changes
    // anything, and what follows cannot fail after the checks above
    if (optimizer && optDict) optimizer.loadStateDict(optDict);
    if (scheduler && schedDict) scheduler.loadStateDict(schedDict);
    targets.model.loadStateDict(Object.fromEntries(modelTensors));
    if (targets.restoreRng ?? true) setGeneratorState(rng);
    return { step: data.step, extra: data.sections.get('extra') };
  } finally {
    for (const t of data.tensors.values()) t.dispose();
  }
}

/**
 * Loads a checkpoint's weights into `model`, runs `evaluate(model)` and disposes the model whatever happens (a recipe's
 * evaluate builds the model only for this, so a bad checkpoint must not leak it).
 */
export async function evaluateCheckpoint<M extends Module, R>(checkpoint: SafetensorsSource, model: M, evaluate: (model: M) => Promise<R>): Promise<R> {
  try {
    await loadCheckpoint(checkpoint, { model });
    return await evaluate(model);
  } finally {
    model.dispose();
  }
}
