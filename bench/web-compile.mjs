// First-use pipeline compile time per kernel in headless Chromium (SwiftShader where there is no GPU): the kernels the
// app's work builds (segmentation forward, a registration step at 32x32 and at 64x64, a fine-tuning step) are
// collected in Node, then compiled one at a time on a fresh device in the page, each with a unique comment so that no
// cache answers. Prints one line per kernel as it finishes: on SwiftShader a large register tile takes far longer
// than the rest, which is why the app registers 32x32 slices on a software adapter.
//   node bench/web-compile.mjs [pattern]   (a regular expression the kernel names must match; default all)
// Env: VOXGRAD_CHROMIUM (default /usr/bin/chromium).
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { chromium } from 'playwright-core';
import * as vg from 'voxgrad';
import { finetuneStep } from '../web/finetune-step.mjs';
import { registrationNets, registrationStep } from '../web/register-step.mjs';

const pattern = new RegExp(process.argv[2] ?? '');
await vg.init();
const { tensors, metadata } = await vg.io.readSafetensorsWithMetadata(readFileSync(new URL('../web/weights/unet-phantom.safetensors', import.meta.url)));
const net = new vg.models.UNet2D({ inChannels: 1, numClasses: 4, features: JSON.parse(metadata.features) });
net.loadStateDict(tensors);
const phase = new Map();
const mark = (name) => vg.debug.kernelLayouts().forEach((k) => phase.has(k.name) || phase.set(k.name, name));
vg.noGrad(() => vg.tidy(() => vg.argmax(net.call(vg.zeros([1, 1, 64, 64])), { dim: 1 })).dispose());
mark('segmentation');
for (const size of [32, 64]) {
  const nets = registrationNets(vg, 'voxelmorph', size);
  await registrationStep(vg, nets, vg.rand([1, 1, size, size]), vg.rand([1, 1, size, size]), new vg.optim.Adam(nets.parameters));
  mark(`registration ${size}x${size}`);
}
net.train();
await finetuneStep(vg, net, vg.rand([2, 1, 64, 64]), vg.zeros([2, 64, 64], { dtype: 'i32' }), new vg.optim.Adam(net.parameters()));
mark('fine-tuning');
const kernels = vg.debug.kernelLayouts().filter((k) => pattern.test(k.name)).map((k) => ({ name: k.name, phase: phase.get(k.name), source: k.source }));
vg.destroy();

const server = http.createServer((_, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,">'));
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const browser = await chromium.launch({ executablePath: process.env.VOXGRAD_CHROMIUM ?? '/usr/bin/chromium', headless: true, args: ['--headless=new', '--no-sandbox', '--enable-unsafe-webgpu'] });
const page = await browser.newPage();
await page.exposeFunction('__report', (line) => console.log(line));
await page.goto(`http://127.0.0.1:${server.address().port}/`);
const total = await page.evaluate(async (list) => {
  const adapter = await navigator.gpu.requestAdapter();
  // the limits voxgrad asks for (workgroup size and storage buffers) change no kernel's compile
  const limits = ['maxStorageBuffersPerShaderStage', 'maxComputeWorkgroupStorageSize', 'maxComputeInvocationsPerWorkgroup', 'maxComputeWorkgroupSizeX'];
  const device = await adapter.requestDevice({ requiredLimits: Object.fromEntries(limits.map((l) => [l, adapter.limits[l]])) });
  await window.__report(`${adapter.info.vendor} ${adapter.info.architecture}: ${list.length} kernels, one at a time`);
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
}, kernels);
console.log(`${(total / 1000).toFixed(1)} s in all`);
await browser.close();
server.close();
