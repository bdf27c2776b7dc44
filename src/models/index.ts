// vg.models: the architectures of the papers' recipes.
export { UNet2D, type UNet2DOptions } from './unet.js';
