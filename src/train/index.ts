// vg.train: the training loop, run folders (config.json, metrics.json, loss.png, checkpoints), checkpoints of a model
// with its optimizer and scheduler, the progress bar, and what a recipe is.
export { trainLoop, type LoopParts } from './loop.js';
export { defineRecipe, setting, unknownSettings, type Config, type Recipe, type RecipeDefinition, type RecipeRun, type RunContext, type TrainResult } from './recipe.js';
export { saveCheckpoint, loadCheckpoint, encodeCheckpoint, type CheckpointContents, type LoadCheckpointTargets } from './checkpoint.js';
export { readMetrics, writeMetrics, writeJson, writeFile, resultJson, writeLossPlot, RUN_FILES, type RunMetrics } from './run-folder.js';
export { progressBar, type Progress } from './progress.js';
export { plotCurve } from './plot.js';
