// The app's steps in Node, for comparison with the page (test/browser/app.mjs prints the page's numbers):
// - fine-tuning: the shipped UNet (web/weights) on the phantom sample's two 64x64 slices, the first step (compiling
//   the training kernels; the forward pass is compiled first, as the page's warm-up does) and the mean of the next;
// - registration (web/register-step.mjs): slice 1 onto slice 0 of the phantom at size x size with `method`, the
//   first step (compiling its kernels) and the mean of the next, as the app's test runs it.
//   node bench/web-step.mjs [steps=5] [method=hetero] [size=32]
import { readFileSync } from 'node:fs';
import * as vg from 'voxgrad';
import { finetuneStep } from '../web/finetune-step.mjs';
import { registrationNets, registrationStep } from '../web/register-step.mjs';

const steps = Number(process.argv[2] ?? 5);
const method = process.argv[3] ?? 'hetero';
const size = Number(process.argv[4] ?? 32);
const info = await vg.init();
const { tensors, metadata } = await vg.io.readSafetensorsWithMetadata(readFileSync(new URL('../web/weights/unet-phantom.safetensors', import.meta.url)));
const net = new vg.models.UNet2D({ inChannels: 1, numClasses: 4, features: JSON.parse(metadata.features) });
net.loadStateDict(tensors);
const image = await vg.io.readNifti(new URL('../web/samples/phantom.nii.gz', import.meta.url));
const labels = await vg.io.readNifti(new URL('../web/samples/phantom-labels.nii.gz', import.meta.url), { dtype: 'i32' });
// [X, Y, Z] volumes → Z slices, intensities scaled to [0, 1] as the worker does
const x = vg.tidy(() => {
  const s = vg.permute(image.tensor, [2, 0, 1]).unsqueeze(1);
  const lo = vg.min(image.tensor);
  return s.sub(lo).div(vg.max(image.tensor).sub(lo).add(1e-6));
});
const y = vg.tidy(() => vg.permute(labels.tensor, [2, 0, 1]));
const t0 = performance.now();
vg.noGrad(() => vg.tidy(() => net.call(x.slice(0, 0, 1))).dispose());
await vg.pipelinesReady();
const forwardMs = performance.now() - t0;

const summary = (t) => {
  const later = t.slice(1);
  return `first step ${t[0].toFixed(0)} ms, then ${(later.reduce((a, b) => a + b, 0) / later.length).toFixed(0)} ms per step (mean of ${later.length}; min ${Math.min(...later).toFixed(0)})`;
};
console.log(`Node (${info.vendor} ${info.architecture}): forward warm-up ${forwardMs.toFixed(0)} ms`);

// in the app test's order: registration, then fine-tuning
// the registration pair as the worker makes it: intensities scaled to [0, 1], resized to size x size
const pair = vg.tidy(() => vg.interpolate(x, { size: [size, size], mode: 'bilinear' }));
const [fixed, moving] = [pair.slice(0, 0, 1), pair.slice(0, 1, 2)];
const nets = registrationNets(vg, method, size);
const regOptimizer = new vg.optim.Adam(nets.parameters, { lr: 0.003 });
const regTimes = [];
for (let i = 0; i <= steps; i++) {
  const s0 = performance.now();
  await registrationStep(vg, nets, moving, fixed, regOptimizer);
  regTimes.push(performance.now() - s0);
}
console.log(`Node: registration (${method}, ${size}x${size}): ${summary(regTimes)}`);

net.train();
const optimizer = new vg.optim.Adam(net.parameters(), { lr: 0.0005 });
const times = [];
for (let i = 0; i <= steps; i++) {
  const s0 = performance.now();
  await finetuneStep(vg, net, x, y, optimizer);
  times.push(performance.now() - s0);
}
console.log(`Node: fine-tuning (2 slices 64x64): ${summary(times)}`);
optimizer.dispose();
vg.destroy();
