/**
 * Training checkpoints as one safetensors file: the model's weights under their state-dict keys (PyTorch users read
 * them with safetensors.torch.load_file), the optimizer's state tensors under `optimizer.state.<index>.<name>`, and
 * in `__metadata__` (JSON strings): format version, step, the optimizer's param_groups and per-parameter steps, the
 * scheduler's state, the global random generator (dropout masks) and user extras. Written atomically, so a crash
 * mid-save leaves the previous checkpoint in place; loading restores everything so training continues bit-for-bit.
 */
import { fail } from '../engine/errors.js';
import { Tensor } from '../engine/tensor.js';
import { describe } from '../kernels/common.js';
import { generatorState, setGeneratorState } from '../kernels/random.js';
import { Module } from '../nn/module.js';
import type { OptimizerStateDict } from '../optim/index.js';
import type { LRScheduler } from '../optim/schedulers.js';
import { files, readBytes } from './files.js';
import { decodeSafetensors, encodeSafetensors, type SafetensorsSource } from './safetensors.js';

const FORMAT = 'voxgrad.checkpoint';
const VERSION = 1;
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
  const metadata: Record<string, string> = { format: FORMAT, format_version: String(VERSION), step: String(c.step), rng: JSON.stringify(generatorState()) };
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
    metadata.optimizer = JSON.stringify({ type: opt.name, param_groups: sd.param_groups, state });
  }
  if (c.scheduler) metadata.scheduler = JSON.stringify(checkScheduler(op, c.scheduler).stateDict());
  if (c.extra !== undefined) {
    let json: string | undefined;
    try {
      json = JSON.stringify(c.extra);
    } catch (e) {
      fail(op, `extra must be JSON-serialisable: ${(e as Error).message}`);
    }
    if (json === undefined) fail(op, `extra must be JSON-serialisable, got ${describe(c.extra)}`);
    metadata.extra = json;
  }
  return encodeSafetensors(tensors, { metadata }, op);
}

/** Saves model, optimizer, scheduler, step, RNG state and extras to `path` atomically (temp file + rename). */
export async function saveCheckpoint(path: string, c: CheckpointContents): Promise<void> {
  const op = 'saveCheckpoint';
  if (typeof path !== 'string' || !path) fail(op, `path must be a file path string, got ${describe(path)}`);
  const bytes = await encodeCheckpoint(c, op);
  await files(op).writeFileAtomic(path, bytes);
}

export interface LoadCheckpointTargets {
  model: Module;
  optimizer?: StatefulOptimizer;
  scheduler?: LRScheduler;
  /** Restore the global random generator (default true: needed for a bit-exact resume with dropout). */
  restoreRng?: boolean;
}

function parseJson(op: string, metadata: Record<string, string>, key: string): unknown {
  try {
    return JSON.parse(metadata[key]);
  } catch (e) {
    return fail(op, `__metadata__.${key} is not valid JSON (${(e as Error).message}): the checkpoint is corrupt`);
  }
}

/**
 * Restores a checkpoint written by saveCheckpoint into the given model (strict keys and shapes), optimizer and
 * scheduler, and the random generator; returns { step, extra }. Everything is validated before anything is changed.
 */
export async function loadCheckpoint(source: SafetensorsSource, targets: LoadCheckpointTargets): Promise<{ step: number; extra: unknown }> {
  const op = 'loadCheckpoint';
  if (!targets || !(targets.model instanceof Module)) fail(op, `expects { model, optimizer?, scheduler? } with a vg.nn.Module, got ${describe(targets?.model)}`);
  const optimizer = targets.optimizer ? checkOptimizer(op, targets.optimizer) : null;
  const scheduler = targets.scheduler ? checkScheduler(op, targets.scheduler) : null;
  const { tensors, metadata } = decodeSafetensors(await readBytes(op, source), op);
  try {
    if (metadata.format !== FORMAT)
      fail(op, `not a voxgrad checkpoint (__metadata__.format is ${describe(metadata.format)}); for plain weights use vg.io.readSafetensors + model.loadStateDict`);
    if (Number(metadata.format_version) > VERSION)
      fail(op, `checkpoint format version ${metadata.format_version} is newer than this voxgrad reads (${VERSION}); upgrade voxgrad`);
    const step = Number(metadata.step);
    if (!Number.isSafeInteger(step) || step < 0) fail(op, `__metadata__.step is ${describe(metadata.step)}, expected a non-negative integer`);
    const rng = parseJson(op, metadata, 'rng') as { seed: number; offset: number };
    const extra = metadata.extra === undefined ? undefined : parseJson(op, metadata, 'extra');
    const modelDict: Record<string, Tensor> = {};
    const optTensors: Record<string, Record<string, Tensor>> = {};
    for (const [k, t] of Object.entries(tensors)) {
      if (!k.startsWith(OPT_PREFIX) || metadata.optimizer === undefined) {
        modelDict[k] = t;
        continue;
      }
      const rest = k.slice(OPT_PREFIX.length);
      const dot = rest.indexOf('.');
      (optTensors[rest.slice(0, dot)] ??= {})[rest.slice(dot + 1)] = t;
    }
    let optDict: OptimizerStateDict | null = null;
    if (optimizer) {
      if (metadata.optimizer === undefined) fail(op, 'an optimizer was given but the checkpoint holds no optimizer state (it was saved without one)');
      const saved = parseJson(op, metadata, 'optimizer') as { type: string; param_groups: OptimizerStateDict['param_groups']; state: Record<string, Record<string, unknown>> };
      if (saved.type !== optimizer.name) fail(op, `the checkpoint holds ${saved.type} state but the optimizer is ${optimizer.name}`);
      const state: OptimizerStateDict['state'] = {};
      for (const i of new Set([...Object.keys(saved.state ?? {}), ...Object.keys(optTensors)]))
        state[Number(i)] = { ...(saved.state?.[i] ?? {}), ...(optTensors[i] ?? {}) } as Record<string, Tensor | number>;
      optDict = { state, param_groups: saved.param_groups };
    }
    let schedDict: Record<string, unknown> | null = null;
    if (scheduler) {
      if (metadata.scheduler === undefined) fail(op, 'a scheduler was given but the checkpoint holds no scheduler state (it was saved without one)');
      schedDict = parseJson(op, metadata, 'scheduler') as Record<string, unknown>;
    }
    // model first: its strict key/shape check is the likeliest mismatch, and it changes nothing when it fails
    targets.model.loadStateDict(modelDict);
    if (optimizer && optDict) optimizer.loadStateDict(optDict);
    if (scheduler && schedDict) scheduler.loadStateDict(schedDict);
    if (targets.restoreRng ?? true) setGeneratorState(rng);
    return { step, extra };
  } finally {
    for (const t of Object.values(tensors)) t.dispose();
  }
}
