// vg.methods: the training recipes (the papers' methods and the embedded-data demo), runnable from code and the CLI.
import type { Recipe } from '../train/recipe.js';
import { reg } from './registration/recipe.js';
import { unetPhantom } from './unet-phantom.js';
import { morse } from './morse.js';
import { castformer } from './castformer.js';
import { itl } from './itl-recipe.js';
import { clipRecipe } from './clip/recipe.js';
import { seg } from './semisup/recipe.js';

export { diceLoss, discriminatorLoss, generatorAdversarialLoss, type DiceLossOptions, type AdversarialLossKind } from './losses.js';
export { siteDistillationLoss, siteWeight, backwardTransfer, type SiteDistillationOptions } from './itl.js';
export * as registration from './registration/index.js';
export * as clip from './clip/index.js';
export * as semisup from './semisup/index.js';
export { reg, unetPhantom, morse, castformer, seg, itl };

/** Every recipe by name (the CLI's `voxgrad train <name>`). */
export const recipes: Record<string, Recipe> = {
  [unetPhantom.name]: unetPhantom,
  [reg.name]: reg,
  [seg.name]: seg,
  [morse.name]: morse,
  [castformer.name]: castformer,
  [itl.name]: itl,
  [clipRecipe.name]: clipRecipe,
};
