// vg.methods.registration: the papers' losses, the backbone adapter the reg recipe trains, and its evaluation.
export * from './losses.js';
export { makeBackbone, regnetVoxelFlow, warpLabels, type Backbone, type BackboneName, type RegistrationOutput } from './backbones.js';
export { evaluateRegistration, CARDIAC_STRUCTURES, type RegistrationEvaluation } from './evaluate.js';
