// tfjs-backend-webgpu on the same Dawn adapter, in this process: the `webgpu` package supplies navigator.gpu before
// tfjs is imported.
import { create, globals } from 'webgpu';

/** Loads tfjs-core with the WebGPU backend; returns the tf namespace, or throws if the backend does not start. */
export async function loadTfjs() {
  Object.assign(globalThis, globals);
  // Node >= 21 defines a navigator getter: replace it rather than assign through it
  Object.defineProperty(globalThis, 'navigator', { value: { gpu: create([]) }, configurable: true, writable: true });
  // tfjs greets Node users on console.warn/log at import and backend start; keep the benchmark output to the table
  const { log, warn } = console;
  console.log = console.warn = () => {};
  try {
    const tf = await import('@tensorflow/tfjs-core');
    await import('@tensorflow/tfjs-backend-webgpu');
    if (!(await tf.setBackend('webgpu'))) throw new Error('tf.setBackend("webgpu") returned false');
    await tf.ready();
    return tf;
  } finally {
    Object.assign(console, { log, warn });
  }
}
