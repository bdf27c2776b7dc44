/**
 * What a training recipe is (a paper's method, or a demo): a name, typed defaults, and train/evaluate functions that
 * the CLI and user code call the same way. defineRecipe resolves the caller's settings against the defaults, so a
 * recipe always sees every setting, and `recipe.train({ outDir })` from code writes the same run folder as the CLI.
 */
import { fail } from '../engine/errors.js';
import { manualSeed } from '../kernels/random.js';

export type Config = Record<string, number | string | boolean | number[]>;

/** How a recipe is run, by the CLI or by user code. */
export interface RunContext {
  /** Settings that override the recipe's defaults (every key must be one of the recipe's settings). */
  config?: Config;
  /** Run folder: config.json, metrics.json, loss.png, checkpoint.safetensors and the recipe's outputs; null or absent writes nothing. */
  outDir?: string | null;
  /** Checkpoint to resume from. */
  resume?: string;
  /** True once the user asked to stop (Ctrl-C): the loop saves a checkpoint and returns early. */
  shouldStop?: () => boolean;
  /** Called after every step with the values logged at that step (loss, lr, ...). */
  onStep?: (step: number, total: number, values: Record<string, number>) => void;
  /** Show a progress bar on stderr (Node). */
  progress?: boolean;
  log?: (message: string) => void;
}

/** A run as the recipe sees it: its name, every setting resolved, the run folder or null. */
export interface RecipeRun extends RunContext {
  recipe: string;
  config: Config;
  outDir: string | null;
}

export interface TrainResult {
  steps: number;
  /** Completed all steps (false: stopped early by shouldStop). */
  finished: boolean;
  /** One row per step of this invocation: the values logged by the recipe (a resumed run's metrics.json holds all). */
  history: Record<string, number>[];
  /** Held-out evaluation at the end (recipe-defined, e.g. Dice per class). */
  evaluation?: Record<string, unknown>;
  checkpoint?: string;
  /** Wall time of the run, resumed runs included (their earlier time from the run folder's metrics.json). */
  seconds: number;
}

export interface Recipe {
  name: string;
  description: string;
  defaults: Config;
  train(ctx?: RunContext): Promise<TrainResult>;
  /** Evaluates a checkpoint written by train() on the recipe's held-out data. */
  evaluate(ctx: RunContext & { checkpoint: string }): Promise<Record<string, unknown>>;
}

export interface RecipeDefinition {
  name: string;
  description: string;
  defaults: Config;
  /**
   * Start the global generator (vg.manualSeed) from the `seed` setting before training, so dropout masks and unseeded
   * draws do not depend on what ran earlier in the process. Opt-in: the recipes whose committed tables were made
   * without it (unet-phantom, reg, itl, castformer, clip) would change their results.
   */
  seedsGlobalGenerator?: boolean;
  train(run: RecipeRun): Promise<TrainResult>;
  evaluate(run: RecipeRun & { checkpoint: string }): Promise<Record<string, unknown>>;
}

/** The keys of `config` that are not settings of a recipe with these defaults. */
export function unknownSettings(defaults: Config, config: Config): string[] {
  return Object.keys(config).filter((k) => !Object.prototype.hasOwnProperty.call(defaults, k));
}

function resolve(def: RecipeDefinition, ctx: RunContext | undefined): RecipeRun {
  const overrides = ctx?.config ?? {};
  if (overrides === null || typeof overrides !== 'object' || Array.isArray(overrides))
    fail(def.name, `config must be an object of settings, got ${JSON.stringify(overrides)}`);
  const unknown = unknownSettings(def.defaults, overrides);
  if (unknown.length)
    fail(def.name, `recipe ${def.name} has no setting ${unknown.map((k) => `'${k}'`).join(', ')}; its settings: ${Object.keys(def.defaults).join(', ')}`);
  return { ...ctx, recipe: def.name, config: { ...def.defaults, ...overrides }, outDir: ctx?.outDir ?? null };
}

/** A recipe whose train/evaluate see the caller's settings resolved against the defaults. */
export function defineRecipe(def: RecipeDefinition): Recipe {
  return {
    name: def.name,
    description: def.description,
    defaults: def.defaults,
    train: (ctx) => {
      const run = resolve(def, ctx);
      // draws without their own seed (dropout masks, random ops) would otherwise depend on what ran before in the process
      if (def.seedsGlobalGenerator && typeof run.config.seed === 'number') manualSeed(run.config.seed);
      return def.train(run);
    },
    evaluate: (ctx) => def.evaluate({ ...resolve(def, ctx), checkpoint: ctx.checkpoint }),
  };
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
