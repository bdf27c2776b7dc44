/**
 * The run folder every training run writes, from the CLI or from code: config.json (the recipe and every setting),
 * metrics.json (one schema: RunMetrics), loss.png (the loss curve) and checkpoint.safetensors, plus what the recipe's
 * evaluation writes (pairs.csv, figures, volumes). Every file goes through vg.io's atomic writer.
 */
import { backendInfo } from '../engine/device.js';
import { files } from '../io/files.js';
import { writePng } from '../io/png.js';
import { tensor } from '../ops.js';
import { plotCurve } from './plot.js';
import type { Config } from './recipe.js';

export const RUN_FILES = { config: 'config.json', metrics: 'metrics.json', lossPlot: 'loss.png', checkpoint: 'checkpoint.safetensors' } as const;

/** metrics.json: the one schema of a run's results. */
export interface RunMetrics {
  recipe: string;
  /** Every setting the run used (config.json holds the same, with the recipe's name). */
  config: Config;
  adapter: { vendor: string; architecture: string; description: string };
  /** Steps done so far (the total once finished). */
  steps: number;
  finished: boolean;
  /** Wall time, resumed runs included. */
  seconds: number;
  /** The held-out evaluation after the last step (null until then). */
  evaluation: Record<string, unknown> | null;
  /** Evaluations during training (evaluateEvery), each with its step. */
  evaluations: Record<string, unknown>[];
  /** One row per step: `step` and the values the recipe logged (loss, lr, ...). */
  history: Record<string, number>[];
}

export const runPath = (outDir: string, name: string) => `${outDir.replace(/[\\/]+$/, '')}/${name}`;

/**
 * Indented JSON of a run's results. JSON has no Infinity/NaN (an HD95 with a missed structure is Infinity): they are
 * written as strings, not as JSON.stringify's null.
 */
export function resultJson(value: unknown): string {
  return JSON.stringify(value, (_, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v), 2);
}

/** Writes text (UTF-8) or bytes through the atomic writer: a crash never leaves half a file. */
export async function writeFile(path: string, contents: string | Uint8Array): Promise<void> {
  await files('writeFile').writeFileAtomic(path, typeof contents === 'string' ? new TextEncoder().encode(contents) : contents);
}

/** Writes `value` as resultJson through the atomic writer. */
export async function writeJson(path: string, value: unknown): Promise<void> {
  await writeFile(path, `${resultJson(value)}\n`);
}

/** The adapter a run's metrics name. */
export function adapterOf(): RunMetrics['adapter'] {
  const { vendor, architecture, description } = backendInfo();
  return { vendor, architecture, description };
}

/** A run folder's metrics.json, or null when it has none. */
export async function readMetrics(outDir: string): Promise<RunMetrics | null> {
  const fs = files('readMetrics');
  const path = runPath(outDir, RUN_FILES.metrics);
  if (!(await fs.exists(path))) return null;
  return JSON.parse(new TextDecoder().decode(await fs.readFile(path))) as RunMetrics;
}

export async function writeMetrics(outDir: string, metrics: RunMetrics): Promise<void> {
  await writeJson(runPath(outDir, RUN_FILES.metrics), metrics);
}

export async function writeConfig(outDir: string, recipe: string, config: Config): Promise<void> {
  await writeJson(runPath(outDir, RUN_FILES.config), { recipe, ...config });
}

/** loss.png: the history's loss on a log scale. */
export async function writeLossPlot(outDir: string, history: Record<string, number>[]): Promise<void> {
  const { rgb, width, height } = plotCurve(history.map((h) => h.loss));
  const image = tensor(Float32Array.from(rgb), [height, width, 3]);
  try {
    await writePng(runPath(outDir, RUN_FILES.lossPlot), image, { min: 0, max: 255 });
  } finally {
    image.dispose();
  }
}
