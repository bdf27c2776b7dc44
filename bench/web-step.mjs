// The app's fine-tuning step in Node, for comparison with the page (test/browser/app.mjs prints the page's numbers):
// the shipped UNet (web/weights) on the phantom sample's two 64x64 slices, the first step (compiling the training
// kernels; the forward pass is compiled first, as the page's warm-up does) and the mean of the next steps.
//   node bench/web-step.mjs [steps=5]
import { readFileSync } from 'node:fs';
import * as vg from 'voxgrad';
import { finetuneStep } from '../web/finetune-step.mjs';

const steps = Number(process.argv[2] ?? 5);
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
net.train();
const optimizer = new vg.optim.Adam(net.parameters(), { lr: 0.0005 });
const times = [];
for (let i = 0; i <= steps; i++) {
  const s0 = performance.now();
  await finetuneStep(vg, net, x, y, optimizer);
  times.push(performance.now() - s0);
}
const later = times.slice(1);
console.log(`Node (${info.vendor} ${info.architecture}): forward warm-up ${forwardMs.toFixed(0)} ms, first training step ${times[0].toFixed(0)} ms, then ${(later.reduce((a, b) => a + b, 0) / later.length).toFixed(0)} ms per step (mean of ${later.length}; min ${Math.min(...later).toFixed(0)})`);
vg.destroy();
