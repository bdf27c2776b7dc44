/**
 * Node platform: Dawn through the `webgpu` npm package (an optional peer dependency, so that web projects installing
 * voxgrad never download Dawn's native binaries). Imported only by the Node entry point; loaded at the first init().
 */
import { destroyDevice, setGpuProvider } from './device.js';
import { fail } from './errors.js';

let gpuObject: GPU | undefined;

setGpuProvider(async () => {
  // Mesa prints errors without a runtime dir; any writable folder will do.
  process.env.XDG_RUNTIME_DIR ??= '/tmp';
  if (!gpuObject) {
    let dawn: typeof import('webgpu');
    try {
      dawn = await import('webgpu');
    } catch (e) {
      return fail('init', `WebGPU in Node needs the \`webgpu\` package (Dawn), an optional peer dependency of voxgrad: run \`npm install webgpu\` (${(e as Error).message})`);
    }
    Object.assign(globalThis, dawn.globals);
    gpuObject = dawn.create([]) as GPU;
  }
  return gpuObject;
}, 'node');

// Dawn can keep a process alive while a device exists: release it when the event loop drains.
process.on('beforeExit', destroyDevice);
