/**
 * The loop every recipe shares: steps with a progress bar and a per-step callback; periodic, final and on-interrupt
 * checkpoints (model, optimizer, scheduler, step and the random generator, so a resumed run continues exactly);
 * evaluation hooks; and the run folder (config.json at the start, metrics.json at every checkpoint and at the end,
 * loss.png at the end), so a run trained from code leaves the same folder as one trained from the CLI.
 */
import { fail } from '../engine/errors.js';
import { files } from '../io/files.js';
import type { Module } from '../nn/module.js';
import { loadCheckpoint, saveCheckpoint, type CheckpointContents } from './checkpoint.js';
import { progressBar } from './progress.js';
import type { RecipeRun, TrainResult } from './recipe.js';
import { adapterOf, readMetrics, runPath, RUN_FILES, writeConfig, writeLossPlot, writeMetrics, type RunMetrics } from './run-folder.js';

export interface LoopParts {
  model: Module;
  optimizer: CheckpointContents['optimizer'];
  scheduler?: CheckpointContents['scheduler'];
  steps: number;
  checkpointEvery: number;
  /** One training step at `step` (0-based): returns the values to log; `loss` must be among them. */
  step(step: number): Promise<Record<string, number>>;
  /** Recipe state outside the model and optimizer (JSON), saved in checkpoints and handed back on resume. */
  state?: { save(): unknown; restore(saved: unknown): void };
  /** Held-out evaluation: after the last step (metrics.json `evaluation`), and every `evaluateEvery` steps (`evaluations`). */
  evaluate?: (step: number) => Promise<Record<string, unknown>>;
  /** Evaluate during training too, every this many steps (default: only after the last step). */
  evaluateEvery?: number;
}

/** Runs steps [start, parts.steps), checkpointing every `checkpointEvery` steps, at the end, and when stopped. */
export async function trainLoop(run: RecipeRun, parts: LoopParts): Promise<TrainResult> {
  const t0 = performance.now();
  const { outDir } = run;
  if (!(Number.isInteger(parts.checkpointEvery) && parts.checkpointEvery > 0))
    fail('train', `checkpointEvery must be a positive integer, got ${String(parts.checkpointEvery)}`);
  if (parts.evaluateEvery !== undefined && !(Number.isInteger(parts.evaluateEvery) && parts.evaluateEvery > 0))
    fail('train', `evaluateEvery must be a positive integer, got ${String(parts.evaluateEvery)}`);
  if (outDir) {
    await files('train').mkdir(outDir);
    await writeConfig(outDir, run.recipe, run.config);
  }
  let start = 0;
  let earlier: Pick<RunMetrics, 'history' | 'evaluations' | 'seconds'> = { history: [], evaluations: [], seconds: 0 };
  if (run.resume) {
    const { step, extra } = await loadCheckpoint(run.resume, { model: parts.model, optimizer: parts.optimizer, scheduler: parts.scheduler });
    parts.state?.restore(extra);
    if (!(step >= 0 && step <= parts.steps)) fail('train', `checkpoint ${run.resume} is at step ${step}, outside this run's ${parts.steps} steps`);
    start = step;
    // a resumed run keeps the rows its run folder recorded before the checkpoint
    const previous = outDir ? await readMetrics(outDir) : null;
    if (previous && previous.recipe === run.recipe)
      earlier = {
        history: (previous.history ?? []).filter((h) => h.step < step),
        evaluations: (previous.evaluations ?? []).filter((e) => (e.step as number) <= step),
        seconds: Number(previous.seconds) || 0,
      };
    run.log?.(`resumed from ${run.resume} at step ${step}`);
  }
  const history: Record<string, number>[] = [];
  const evaluations: Record<string, unknown>[] = [];
  let checkpoint: string | undefined;
  const bar = run.progress ? progressBar(run.recipe) : null;
  const seconds = () => earlier.seconds + (performance.now() - t0) / 1000;
  const metrics = (steps: number, finished: boolean, evaluation: Record<string, unknown> | null): RunMetrics => ({
    recipe: run.recipe,
    config: run.config,
    adapter: adapterOf(),
    steps,
    finished,
    seconds: seconds(),
    evaluation,
    evaluations: [...earlier.evaluations, ...evaluations],
    history: [...earlier.history, ...history],
  });
  const save = async (step: number) => {
    if (!outDir) return;
    checkpoint = runPath(outDir, RUN_FILES.checkpoint);
    await saveCheckpoint(checkpoint, { model: parts.model, optimizer: parts.optimizer, scheduler: parts.scheduler, step, extra: parts.state?.save() });
    await writeMetrics(outDir, metrics(step, false, null));
  };
  const finish = async (steps: number, finished: boolean, evaluation?: Record<string, unknown>): Promise<TrainResult> => {
    bar?.done();
    if (outDir) {
      await writeMetrics(outDir, metrics(steps, finished, evaluation ?? null));
      await writeLossPlot(outDir, [...earlier.history, ...history]);
    }
    return { steps, finished, history, evaluation, checkpoint, seconds: seconds() };
  };
  let step = start;
  for (; step < parts.steps; step++) {
    if (run.shouldStop?.()) {
      await save(step);
      return finish(step, false);
    }
    const values = await parts.step(step);
    if (!Number.isFinite(values.loss))
      fail('train', `the loss is ${values.loss} at step ${step}: training diverged (lower the learning rate, or check the inputs for NaN)`);
    history.push({ step, ...values });
    bar?.update(step + 1, parts.steps, values);
    run.onStep?.(step + 1, parts.steps, values);
    const done = step + 1;
    if (parts.evaluate && parts.evaluateEvery && done % parts.evaluateEvery === 0 && done < parts.steps) {
      const evaluation = await parts.evaluate(done);
      evaluations.push({ step: done, ...evaluation });
      run.log?.(`evaluation at step ${done}: ${JSON.stringify(evaluation)}`);
    }
    if (done % parts.checkpointEvery === 0 && done < parts.steps) await save(done);
  }
  await save(step);
  return finish(step, true, parts.evaluate ? await parts.evaluate(step) : undefined);
}
