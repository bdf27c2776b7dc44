/**
 * Seeded random tensors generated on the GPU with Philox4x32-10. With { seed }, a call is a pure function of
 * (seed, shape). Without, draws come from the global generator (vg.manualSeed), whose offset advances per call,
 * so a program re-run with the same manualSeed gets the same numbers.
 */
import philoxWgsl from '../../shaders/philox.wgsl';
import randomIntWgsl from '../../shaders/random_int.wgsl';
import { fail, fmtShape } from '../engine/errors.js';
import { FLOAT, NOT_DIFFERENTIABLE, defineOp } from '../engine/op.js';
import { dispatch, grid1d, kernel } from '../engine/runtime.js';
import { checkShapeArg } from '../engine/shape.js';
import { Tensor, shapeSize } from '../engine/tensor.js';
import { ceilDiv, defineSource, emptyTensor } from './common.js';
import { cumsum } from './cumsum.js';
import { topk } from './sort.js';

let globalSeed = 0x5eed;
let globalOffset = 0;

/** Seeds are the 64-bit Philox key; JS numbers carry them exactly up to 2^53 - 1. */
function checkSeed(op: string, seed: unknown): void {
  if (!Number.isSafeInteger(seed) || (seed as number) < 0)
    fail(op, `seed must be an integer in [0, 2^53 - 1], got ${typeof seed === 'number' ? seed : `${typeof seed} ${String(seed)}`}`);
}

/** Sets the global generator's seed and restarts its stream. */
export function manualSeed(seed: number): void {
  checkSeed('manualSeed', seed);
  globalSeed = seed;
  globalOffset = 0;
}

export interface RandomOptions {
  seed?: number;
  requiresGrad?: boolean;
}

/**
 * The Philox key and counter offset of one random draw: with `seed`, a pure function of it; without, the global
 * generator's, which then advances (dropout draws its masks from the same streams).
 */
export function randomStream(op: string, seed: number | undefined): { seed: number; offset: number } {
  if (seed !== undefined) {
    checkSeed(op, seed);
    return { seed, offset: 0 };
  }
  const stream = { seed: globalSeed, offset: globalOffset };
  globalOffset = (globalOffset + 1) >>> 0; // one Philox counter block per call: streams never overlap
  return stream;
}

function generate(op: string, shape: readonly number[], normal: boolean, low: number, high: number, opts: RandomOptions): Tensor {
  checkShapeArg(op, shape);
  const { seed, offset } = randomStream(op, opts.seed);
  const n = shapeSize(shape);
  const out = emptyTensor(op, shape, 'f32');
  if (n > 0) {
    const k = kernel(`philox.${normal ? 'normal' : 'uniform'}`, () => philoxWgsl, { defines: { NORMAL: normal } });
    dispatch(
      k,
      [out.buffer(op)],
      { n, seedLo: seed >>> 0, seedHi: Math.floor(seed / 2 ** 32) >>> 0, offset, low, high },
      grid1d(ceilDiv(ceilDiv(n, 4), k.workgroupSize)),
    );
  }
  if (opts.requiresGrad) out.requiresGrad = true;
  return out;
}

/** Uniform on [0, 1). */
export const rand = defineSource('rand', randForward);

function randForward(shape: readonly number[], opts: RandomOptions = {}): Tensor {
  return generate('rand', shape, false, 0, 1, opts);
}

/** Standard normal. */
export const randn = defineSource('randn', randnForward);

function randnForward(shape: readonly number[], opts: RandomOptions = {}): Tensor {
  return generate('randn', shape, true, 0, 1, opts);
}

/** Uniform on [low, high). */
export const uniform = defineSource('uniform', uniformForward);

function uniformForward(shape: readonly number[], low: number, high: number, opts: RandomOptions = {}): Tensor {
  if (!Number.isFinite(low) || !Number.isFinite(high) || !(low <= high))
    fail('uniform', `expects finite low <= high, got low=${low}, high=${high}`);
  return generate('uniform', shape, false, low, high, opts);
}

/** Normal with the given mean and std. */
export const normal = defineSource('normal', normalForward);

function normalForward(shape: readonly number[], mean: number, std: number, opts: RandomOptions = {}): Tensor {
  if (!Number.isFinite(mean)) fail('normal', `mean must be a finite number, got ${mean}`);
  if (!Number.isFinite(std) || !(std >= 0)) fail('normal', `std must be a finite number >= 0, got ${std}`);
  return generate('normal', shape, true, mean, std, opts);
}

/** Internal: the state that `manualSeed` controls (checkpoints store it). */
export function generatorState(): { seed: number; offset: number } {
  return { seed: globalSeed, offset: globalOffset };
}

/** Internal: restores a state returned by generatorState() (checkpoint resume), so later draws continue the stream. */
export function setGeneratorState(state: { seed: number; offset: number }): void {
  checkSeed('setGeneratorState', state?.seed);
  const offset = state.offset;
  if (!Number.isInteger(offset) || offset < 0 || offset > 0xffffffff)
    fail('setGeneratorState', `offset must be an integer in [0, 2^32 - 1], got ${String(offset)}`);
  globalSeed = state.seed;
  globalOffset = offset;
}

// ---- integer draws: randint, multinomial (shaders/random_int.wgsl) -------------------------------------------------

export interface RandintOptions {
  seed?: number;
}

function intKernel(variant: 'RANDINT' | 'SEARCH' | 'KEYS') {
  const defines = { PHILOX_FUNCTIONS_ONLY: true, [variant]: true };
  return kernel(`randomInt.${variant}`, () => philoxWgsl + '\n' + randomIntWgsl, { defines });
}

function streamUniforms(op: string, seed: number | undefined) {
  const s = randomStream(op, seed);
  return { seedLo: s.seed >>> 0, seedHi: Math.floor(s.seed / 2 ** 32) >>> 0, offset: s.offset };
}

/** torch.randint(low, high, shape): i32 uniform on [low, high), drawn on the GPU. */
export const randint = defineSource('randint', randintForward);

function randintForward(low: number, high: number, shape: readonly number[], opts: RandintOptions = {}): Tensor {
  const op = 'randint';
  if (!Number.isInteger(low) || !Number.isInteger(high) || low < -(2 ** 31) || high > 2 ** 31 || !(low < high) || high - low > 2 ** 32 - 1)
    fail(op, `expects integers -2^31 <= low < high <= 2^31 with high - low < 2^32, got low=${low}, high=${high}`);
  checkShapeArg(op, shape);
  const out = emptyTensor(op, shape, 'i32');
  const n = shapeSize(shape);
  const uniforms = { n, ...streamUniforms(op, opts.seed), stream: 0, low, range: high - low, C: 0, samples: 0 };
  if (n > 0) {
    const k = intKernel('RANDINT');
    dispatch(k, [out.buffer(op)], uniforms, grid1d(ceilDiv(ceilDiv(n, 4), k.workgroupSize)));
  }
  return out;
}

export interface MultinomialOptions {
  /** Draw with replacement (default false, as torch.multinomial). */
  replacement?: boolean;
  seed?: number;
}

/**
 * torch.multinomial(weights, numSamples, replacement): category indices (i32) drawn in proportion to the
 * non-negative weights of each row ([C] → [numSamples], [B, C] → [B, numSamples]). With replacement: inverse-CDF
 * search over the row's prefix sums. Without: the numSamples largest Efraimidis–Spirakis keys, whose order is that
 * of successive draws; numSamples must not exceed C, and a row with fewer positive weights than numSamples fills
 * the rest with zero-weight categories (PyTorch raises; the check would need a read back). Weights are not checked
 * for negative or non-finite values on the GPU.
 */
export const multinomial = defineOp({
  name: 'multinomial',
  dtypes: FLOAT,
  inputs: ([weights]) => [weights],
  forward: (weights: Tensor, numSamples: number, opts: MultinomialOptions = {}) => {
    const op = 'multinomial';
    if (weights.ndim !== 1 && weights.ndim !== 2) fail(op, `weights must be [C] or [B, C], got ${fmtShape(weights.shape)}`);
    const C = weights.shape[weights.ndim - 1];
    const rows = weights.ndim === 2 ? weights.shape[0] : 1;
    if (C === 0) fail(op, `weights need at least one category, got ${fmtShape(weights.shape)}`);
    if (!Number.isInteger(numSamples) || numSamples < 0) fail(op, `numSamples must be a non-negative integer, got ${String(numSamples)}`);
    if (opts === null || typeof opts !== 'object') fail(op, `options must be an object like { replacement: true }, got ${String(opts)}`);
    for (const key of Object.keys(opts)) if (key !== 'replacement' && key !== 'seed') fail(op, `unknown option '${key}' (expected replacement, seed)`);
    const replacement = opts.replacement ?? false;
    if (typeof replacement !== 'boolean') fail(op, `replacement must be true or false, got ${String(replacement)}`);
    if (!replacement && numSamples > C)
      fail(op, `cannot draw ${numSamples} samples without replacement from ${C} categories (pass { replacement: true })`);
    const outShape = weights.ndim === 2 ? [rows, numSamples] : [numSamples];
    const stream = streamUniforms(op, opts.seed);
    if (numSamples === 0) return { out: emptyTensor(op, outShape, 'i32'), attrs: undefined };
    if (replacement) {
      const cdf = cumsum(weights, -1);
      const out = emptyTensor(op, outShape, 'i32');
      const n = rows * numSamples;
      const k = intKernel('SEARCH');
      dispatch(k, [out.buffer(op), cdf.buffer(op)], { n, ...stream, stream: 1, low: 0, range: 0, C, samples: numSamples }, grid1d(ceilDiv(ceilDiv(n, 4), k.workgroupSize)));
      cdf.dispose();
      return { out, attrs: undefined };
    }
    const keys = emptyTensor(op, weights.shape, 'f32');
    const n = rows * C;
    const k = intKernel('KEYS');
    dispatch(k, [keys.buffer(op), weights.buffer(op)], { n, ...stream, stream: 2, low: 0, range: 0, C, samples: numSamples }, grid1d(ceilDiv(ceilDiv(n, 4), k.workgroupSize)));
    const { values, indices } = topk(keys, numSamples, { dim: -1 });
    values.dispose();
    keys.dispose();
    return { out: indices, attrs: undefined };
  },
  backward: NOT_DIFFERENTIABLE,
});
