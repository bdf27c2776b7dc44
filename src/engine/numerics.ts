/**
 * vg.debug.checkNumerics(true): every registered op checks its f32 outputs (and its inputs) for NaN and Infinity, so
 * that the first op to produce one can be named, with its inputs' shapes and whether they already held non-finite
 * values. Backward rules run ops too, named "<op> (inside log.backward)", and the gradients a rule returns are checked
 * under "log.backward". GPU tensors are checked by a small kernel per tensor that records into the device-side
 * assertion buffer (device-asserts.ts), so nothing waits: the error is thrown at the next read back
 * (data/item/array/sync). Host-resident tensors are checked in JS. A debug mode: it costs one extra dispatch per f32
 * tensor an op touches, and a larger read back.
 */
import checkFiniteWgsl from '../../shaders/check_finite.wgsl';
import { NUMERICS_BASE, NUMERICS_CALLS, assertBuffer, numericsCall, recordHostNonFinite } from './device-asserts.js';
import { currentUserOp, fmtShape } from './errors.js';
import { dispatch, grid1d, kernel } from './runtime.js';
import type { Tensor } from './tensor.js';

let enabled = false;

/** Turns the NaN/Infinity check of every op on or off (off by default). */
export function checkNumerics(on: boolean): void {
  enabled = Boolean(on);
}

export function numericsChecked(): boolean {
  return enabled;
}

/** Checks one op call: `op`'s f32 outputs, and its inputs (to say whether they already held NaN/Infinity). */
export function checkOpNumerics(op: string, inputs: readonly (Tensor | null | undefined)[], outputs: readonly (Tensor | null)[]): void {
  const floatOutputs = outputs.filter((t): t is Tensor => t !== null && t.dtype === 'f32' && t.size > 0 && !t.isDisposed);
  if (floatOutputs.length === 0) return;
  const outer = currentUserOp();
  const present = inputs.filter((t): t is Tensor => t != null && !t.isDisposed);
  const seq = numericsCall(outer && outer !== op ? `${op} (inside ${outer})` : op, present.map((t) => `${fmtShape(t.shape)} ${t.dtype}`).join(', ') || 'none');
  for (const t of present) if (t.dtype === 'f32' && t.size > 0) checkTensor(t, seq, true);
  for (const t of floatOutputs) checkTensor(t, seq, false);
}

function checkTensor(t: Tensor, seq: number, isInput: boolean): void {
  const host = t.storageFor('checkNumerics').host;
  if (host) {
    for (let i = 0; i < t.size; i++)
      if (!Number.isFinite(host[i])) {
        recordHostNonFinite(seq, isInput);
        return;
      }
    return;
  }
  const k = kernel('checkFinite', () => checkFiniteWgsl);
  dispatch(
    k,
    [t.buffer('checkNumerics'), assertBuffer()],
    { n: t.size, seq, input: isInput ? 1 : 0, base: NUMERICS_BASE, calls: NUMERICS_CALLS },
    grid1d(Math.ceil(t.size / k.workgroupSize)),
  );
}
