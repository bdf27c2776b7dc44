// Exits 0 when Dawn (the `webgpu` package) finds a WebGPU adapter on this machine, 1 otherwise.
// Used by setup.sh to decide whether a Vulkan driver must be installed.
import { create, globals } from 'webgpu';

process.env.XDG_RUNTIME_DIR ??= '/tmp';
Object.assign(globalThis, globals);
const adapter = await create([]).requestAdapter();
if (!adapter) {
  console.log('probe: no WebGPU adapter found');
  process.exit(1);
}
const info = adapter.info;
console.log(`probe: adapter ${info.vendor} ${info.architecture} (${info.description})`);
process.exit(0);
