// Helpers of the vg.io test files (not a test file itself).
import * as assert from 'uvu/assert';
import { vg } from './helpers.mjs';

/** Awaits a promise (or calls an async function) and checks it rejects with a VoxgradError containing every fragment. */
export async function rejectsWith(promiseOrFn, fragments, msg = '') {
  let err;
  try {
    await (typeof promiseOrFn === 'function' ? promiseOrFn() : promiseOrFn);
  } catch (e) {
    err = e;
  }
  assert.ok(err, `${msg} expected an error, none was thrown`);
  assert.instance(err, vg.VoxgradError, `${msg} expected a VoxgradError, got ${err}`);
  for (const f of fragments) assert.ok(err.message.includes(f), `${msg} error message lacks "${f}": ${err.message}`);
  return err;
}
