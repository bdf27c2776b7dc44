/** Node platform: Dawn through the `webgpu` npm package. Imported only by the Node entry point. */
import { create, globals } from 'webgpu';
import { destroyDevice, setGpuProvider } from './device.js';

let gpuObject: GPU | undefined;

setGpuProvider(async () => {
  // Mesa prints errors without a runtime dir; any writable folder will do.
  process.env.XDG_RUNTIME_DIR ??= '/tmp';
  if (!gpuObject) {
    Object.assign(globalThis, globals);
    gpuObject = create([]) as GPU;
  }
  return gpuObject;
}, 'node');

// Dawn can keep a process alive while a device exists: release it when the event loop drains.
process.on('beforeExit', destroyDevice);
