// vg.methods.clip: robust CLIP on a spurious-correlation benchmark (issue 16): losses, sample selection, recipe.
export { clipContrastiveLoss, cfrContrastiveLoss, simplexTargets, TargetedSupConLoss, type TargetedSupConOptions } from './losses.js';
export { clipRecipe, embeddingFigure, pretrainedCacheFile } from './recipe.js';
