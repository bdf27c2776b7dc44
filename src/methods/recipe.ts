/**
 * What a training recipe is (a paper's method, or a demo), and the loop every recipe shares: steps with a progress
 * callback, periodic and on-interrupt checkpoints (model, optimizer, scheduler, step and the random generator, so a
 * resumed run continues exactly), and a metrics log. The CLI and user code drive recipes the same way.
 */
import { fail } from '../engine/errors.js';
import { loadCheckpoint, saveCheckpoint } from '../train/checkpoint.js';
import { files } from '../io/files.js';
import type { Module } from '../nn/module.js';

export type Config = Record<string, number | string | boolean | number[]>;

export interface RunContext {
  /** The recipe's defaults overridden by the user's config file and flags. */
  config: Config;
  /** Run folder for checkpoints and outputs, or null to write nothing (tests, notebooks). */
  outDir: string | null;
  /** Checkpoint to resume from. */
  resume?: string;
  /** True once the user asked to stop (Ctrl-C): the loop saves a checkpoint and returns early. */
  shouldStop?: () => boolean;
  /** Called after every step with the values logged at that step (loss, lr, ...). */
  onStep?: (step: number, total: number, values: Record<string, number>) => void;
  log?: (message: string) => void;
}

export interface TrainResult {
  steps: number;
  /** Completed all steps (false: stopped early by shouldStop). */
  finished: boolean;
  /** One row per step: the values logged by the recipe. */
  history: Record<string, number>[];
  /** Held-out evaluation at the end (recipe-defined, e.g. Dice per class). */
  evaluation?: Record<string, unknown>;
  checkpoint?: string;
}

export interface Recipe {
  name: string;
  description: string;
  defaults: Config;
  train(ctx: RunContext): Promise<TrainResult>;
  /** Evaluates a checkpoint written by train() on the recipe's held-out data. */
  evaluate(ctx: RunContext & { checkpoint: string }): Promise<Record<string, unknown>>;
}

export interface LoopParts {
  model: Module;
  optimizer: Parameters<typeof saveCheckpoint>[1]['optimizer'];
  scheduler?: Parameters<typeof saveCheckpoint>[1]['scheduler'];
  steps: number;
  checkpointEvery: number;
  /** One training step at `step` (0-based): returns the values to log; `loss` must be among them. */
  step(step: number): Promise<Record<string, number>>;
  /** Recipe state outside the model and optimizer (JSON), saved in checkpoints and handed back on resume. */
  state?: { save(): unknown; restore(saved: unknown): void };
}

const join = (dir: string, name: string) => `${dir.replace(/\/+$/, '')}/${name}`;

/** Runs steps [start, parts.steps), checkpointing every `checkpointEvery` steps, at the end, and when stopped. */
export async function trainLoop(ctx: RunContext, parts: LoopParts): Promise<TrainResult> {
  let start = 0;
  if (ctx.resume) {
    const { step, extra } = await loadCheckpoint(ctx.resume, { model: parts.model, optimizer: parts.optimizer, scheduler: parts.scheduler });
    parts.state?.restore(extra);
    if (!(step >= 0 && step <= parts.steps)) fail('train', `checkpoint ${ctx.resume} is at step ${step}, outside this run's ${parts.steps} steps`);
    start = step;
    ctx.log?.(`resumed from ${ctx.resume} at step ${step}`);
  }
  const history: Record<string, number>[] = [];
  let checkpoint: string | undefined;
  const save = async (step: number) => {
    if (!ctx.outDir) return;
    await files('train').mkdir(ctx.outDir);
    checkpoint = join(ctx.outDir, 'checkpoint.safetensors');
    await saveCheckpoint(checkpoint, { model: parts.model, optimizer: parts.optimizer, scheduler: parts.scheduler, step, extra: parts.state?.save() });
  };
  let step = start;
  for (; step < parts.steps; step++) {
    if (ctx.shouldStop?.()) {
      await save(step);
      return { steps: step, finished: false, history, checkpoint };
    }
    const values = await parts.step(step);
    if (!Number.isFinite(values.loss))
      fail('train', `the loss is ${values.loss} at step ${step}: training diverged (lower the learning rate, or check the inputs for NaN)`);
    history.push({ step, ...values });
    ctx.onStep?.(step + 1, parts.steps, values);
    if ((step + 1) % parts.checkpointEvery === 0 && step + 1 < parts.steps) await save(step + 1);
  }
  await save(step);
  return { steps: step, finished: true, history, checkpoint };
}

/** Reads a config value with its default's type, naming the key when the given value has another type. */
export function setting<T extends number | string | boolean | number[]>(config: Config, defaults: Config, key: string): T {
  const value = config[key] ?? defaults[key];
  const expected = defaults[key];
  if (value === undefined) fail('config', `'${key}' is not set and has no default`);
  if (expected !== undefined && Array.isArray(expected) !== Array.isArray(value))
    fail('config', `'${key}' must be ${Array.isArray(expected) ? 'a list of numbers' : typeof expected}, got ${JSON.stringify(value)}`);
  if (expected !== undefined && !Array.isArray(expected) && typeof value !== typeof expected)
    fail('config', `'${key}' must be a ${typeof expected}, got ${JSON.stringify(value)}`);
  return value as T;
}

