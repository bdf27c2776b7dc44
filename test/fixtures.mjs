// Loads the PyTorch reference fixtures written by test/fixtures/gen_*.py (Node only: reads gzip files).
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { Ref } from './helpers.mjs';

const ARRAYS = { f32: Float32Array, f64: Float64Array, i32: Int32Array };

/** The cases of test/fixtures/<area>.json.gz. */
export function loadFixtures(area) {
  const raw = gunzipSync(readFileSync(new URL(`./fixtures/${area}.json.gz`, import.meta.url)));
  return JSON.parse(raw.toString('utf8')).cases;
}

/** A fixture tensor as a float64 Ref (integer tensors keep dtype 'i32' so toTensor() makes an i32 tensor). */
export function fixtureRef(e) {
  const bytes = Buffer.from(e.b64, 'base64');
  const Ctor = ARRAYS[e.dtype];
  const values = new Ctor(bytes.buffer, bytes.byteOffset, bytes.byteLength / Ctor.BYTES_PER_ELEMENT);
  return new Ref(values, e.shape, e.dtype === 'i32' ? 'i32' : undefined);
}
