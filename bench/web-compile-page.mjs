// The page side of bench/web-compile.mjs (bundled by it with voxgrad from src/): runs the app's work to collect the
// kernels it builds on this adapter, then compiles each one alone on a fresh device.
import * as vg from 'voxgrad';
import { finetuneStep } from '../web/finetune-step.mjs';
import { registrationNets, registrationStep } from '../web/register-step.mjs';

/** The kernels of the segmentation forward, a registration step per size and a fine-tuning step, with their phase. */
window.__collect = async (sizes) => {
  await vg.init();
  const { tensors, metadata } = await vg.io.readSafetensorsWithMetadata('/unet-phantom.safetensors');
  const net = new vg.models.UNet2D({ inChannels: 1, numClasses: 4, features: JSON.parse(metadata.features) });
  net.loadStateDict(tensors);
  const phase = new Map();
  const mark = (name) => vg.debug.kernelLayouts().forEach((k) => phase.has(k.name) || phase.set(k.name, name));
  vg.noGrad(() => vg.tidy(() => vg.argmax(net.call(vg.zeros([1, 1, 64, 64])), { dim: 1 })).dispose());
  await vg.pipelinesReady();
  mark('segmentation');
  for (const size of sizes) {
    const nets = registrationNets(vg, 'voxelmorph', size);
    await registrationStep(vg, nets, vg.rand([1, 1, size, size]), vg.rand([1, 1, size, size]), new vg.optim.Adam(nets.parameters));
    mark(`registration ${size}x${size}`);
  }
  net.train();
  await finetuneStep(vg, net, vg.rand([2, 1, 64, 64]), vg.zeros([2, 64, 64], { dtype: 'i32' }), new vg.optim.Adam(net.parameters()));
  mark('fine-tuning');
  const info = vg.backendInfo();
  const kernels = vg.debug.kernelLayouts().map((k) => ({ name: k.name, phase: phase.get(k.name), source: k.source }));
  vg.destroy();
  return { adapter: `${info.vendor} ${info.architecture}`, kernels };
};

/** Compiles each kernel alone (a unique comment defeats caches); reports a line per kernel; returns the sum in ms. */
window.__compile = async (list) => {
  const adapter = await navigator.gpu.requestAdapter();
  // the limits voxgrad asks for that the kernels rely on (workgroup size and memory, storage buffers)
  const limits = ['maxStorageBuffersPerShaderStage', 'maxComputeWorkgroupStorageSize', 'maxComputeInvocationsPerWorkgroup', 'maxComputeWorkgroupSizeX'];
  const device = await adapter.requestDevice({ requiredLimits: Object.fromEntries(limits.map((l) => [l, adapter.limits[l]])) });
  let sum = 0;
  for (const k of list) {
    const t = performance.now();
    const module = device.createShaderModule({ code: `// ${Math.random()}\n${k.source}` });
    // a compile that runs for minutes can end in a lost device: reported, and the later kernels fail with it
    const failure = await device.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint: 'main' } }).then(() => '', (e) => ` (failed: ${e.message})`);
    const ms = performance.now() - t;
    sum += ms;
    await window.__report(`${(ms / 1000).toFixed(2).padStart(8)} s  ${k.phase.padEnd(20)} ${k.name}${failure}`);
  }
  return sum;
};
