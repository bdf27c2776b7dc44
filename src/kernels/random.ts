/**
 * Seeded random tensors generated on the GPU with Philox4x32-10. With { seed }, a call is a pure function of
 * (seed, shape). Without, draws come from the global generator (vg.manualSeed), whose offset advances per call,
 * so a program re-run with the same manualSeed gets the same numbers.
 */
import philoxWgsl from '../../shaders/philox.wgsl';
import { alignElements, fitsBinding, window, windowElements } from '../engine/binding.js';
import { fail } from '../engine/errors.js';
import { dispatch, grid1d, kernel } from '../engine/runtime.js';
import { checkShapeArg } from '../engine/shape.js';
import { Tensor, shapeSize } from '../engine/tensor.js';
import { ceilDiv, defineSource, emptyTensor } from './common.js';

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
    const params = { seedLo: seed >>> 0, seedHi: Math.floor(seed / 2 ** 32) >>> 0, offset, low, high };
    if (fitsBinding(out)) dispatch(k, [out.buffer(op)], { ...params, n, firstBlock: 0 }, grid1d(ceilDiv(ceilDiv(n, 4), k.workgroupSize)));
    else {
      // windows of whole alignment units (a multiple of 4 elements), so each starts on a counter block
      const chunk = Math.floor(windowElements() / alignElements()) * alignElements();
      for (let start = 0; start < n; start += chunk) {
        const count = Math.min(chunk, n - start);
        const { range } = window(op, out, start, start + count);
        dispatch(k, [range], { ...params, n: count, firstBlock: start / 4 }, grid1d(ceilDiv(ceilDiv(count, 4), k.workgroupSize)));
      }
    }
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
