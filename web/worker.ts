/**
 * The app's GPU work, in a module Worker so that the page stays responsive: voxgrad on navigator.gpu (which Workers
 * have), reading and writing NIfTI bytes, a UNet2D with the shipped weights for segmentation and fine-tuning, and
 * registration of two slices (VoxelMorph and the three registration papers' methods). Long loops report progress per
 * step and stop at the next step after 'cancel'.
 */
import * as vg from 'voxgrad';
import { finetuneStep } from './finetune-step.mjs';
import { auxiliaryPicture, registrationNets, registrationStep } from './register-step.mjs';
import type { FinetuneResult, RegisterRequest, InitResult, LoadResult, MemoryLine, Picture, RegisterResult, Reply, Request, SegmentResult } from './protocol.js';

/** The shipped model: trained in Node by web/train-weights.mjs on 64x64 phantom slices (ACDC labels). */
const MODEL = { url: new URL('./unet-phantom.safetensors', self.location.href), size: 64, classes: 4 };
const STRUCTURES: Record<number, string> = { 1: 'RV', 2: 'myocardium', 3: 'LV' };

let model: InstanceType<typeof vg.models.UNet2D> | null = null;
/** The shipped model's channels per level (from the weights file's metadata). */
let features: number[] = [];
let volume: { image: vg.Tensor; labels: vg.Tensor | null; affine: number[][]; spacing: number[] } | null = null;
/** The last segmentation [X, Y, Z] of the loaded volume (for the slice view). */
let segmentation: vg.Tensor | null = null;
let cancelled = false;

const post = (reply: Reply, transfer: Transferable[] = []) => (self as unknown as Worker).postMessage(reply, transfer);
function memory(): MemoryLine {
  const m = vg.memory();
  return { liveTensors: m.liveTensors, bytesInUse: m.bytesInUse, peakBytes: m.peakBytes };
}
const progress = (id: number, stage: string, fraction: number, loss?: number) => post({ id, kind: 'progress', stage, fraction, loss, memory: memory() });

class Cancelled extends Error {}
function checkCancel(): void {
  if (cancelled) throw new Cancelled('cancelled');
}
/** Lets queued messages ('cancel') in between steps. */
const yieldToMessages = () => new Promise((resolve) => setTimeout(resolve, 0));

async function loadModel(): Promise<InstanceType<typeof vg.models.UNet2D>> {
  if (model) return model;
  const { tensors, metadata } = await vg.io.readSafetensorsWithMetadata(MODEL.url);
  features = JSON.parse(String(metadata.features)) as number[];
  const m = new vg.models.UNet2D({ inChannels: 1, numClasses: MODEL.classes, features });
  m.loadStateDict(tensors);
  for (const t of Object.values(tensors)) t.dispose();
  model = m;
  return m;
}

/** Slices [Z, 1, size, size] of a volume [X, Y, Z] (the model's size by default), intensities scaled to [0, 1] per volume. */
function modelSlices(image: vg.Tensor, size = MODEL.size): vg.Tensor {
  return vg.tidy(() => {
    const [X, Y] = image.shape;
    const slices = vg.permute(image, [2, 0, 1]).unsqueeze(1);
    const lo = vg.min(image);
    const hi = vg.max(image);
    const scaled = slices.sub(lo).div(hi.sub(lo).add(1e-6));
    return X === size && Y === size ? scaled : vg.interpolate(scaled, { size: [size, size], mode: 'bilinear' });
  });
}

/** Labels [Z, S, S] at the model's size (nearest), from a label volume [X, Y, Z]. */
function modelLabels(labels: vg.Tensor): vg.Tensor {
  return vg.tidy(() => {
    const slices = vg.permute(labels, [2, 0, 1]).unsqueeze(1).to('f32');
    const [X, Y] = labels.shape;
    const sized = X === MODEL.size && Y === MODEL.size ? slices : vg.interpolate(slices, { size: [MODEL.size, MODEL.size], mode: 'nearest' });
    return sized.squeeze(1).round().to('i32');
  });
}

async function init(id: number): Promise<InitResult> {
  const info = await vg.init();
  // warm-up: the first use of each kernel compiles its pipeline; the segmentation network's now, with progress on
  // screen (the training step's compile at the first fine-tuning step, whose time the page reports apart)
  const t0 = performance.now();
  const net = await loadModel();
  progress(id, 'compiling the segmentation kernels (first use only)', 0.3);
  const x = vg.zeros([1, 1, MODEL.size, MODEL.size]);
  vg.noGrad(() => vg.tidy(() => vg.argmax(net.call(x), { dim: 1 })).dispose());
  await vg.pipelinesReady();
  x.dispose();
  const adapter = [info.vendor, info.architecture, info.description].filter(Boolean).join(' ');
  return { adapter, fallback: info.isFallbackAdapter, features: info.features, warmupMs: performance.now() - t0 };
}

async function load(image: ArrayBuffer, name: string, labels?: ArrayBuffer): Promise<LoadResult> {
  const img = await vg.io.readNifti(image);
  const lab = labels ? await vg.io.readNifti(labels, { dtype: 'i32' }) : null;
  if (img.tensor.ndim !== 3) fail(`${name} must be a 3-D volume, got shape [${img.tensor.shape.join(', ')}]`);
  if (lab && lab.tensor.shape.join() !== img.tensor.shape.join()) fail(`labels must have the image's shape [${img.tensor.shape.join(', ')}], got [${lab.tensor.shape.join(', ')}]`);
  volume?.image.dispose();
  volume?.labels?.dispose();
  segmentation?.dispose();
  segmentation = null;
  volume = { image: img.tensor, labels: lab?.tensor ?? null, affine: img.affine, spacing: img.spacing };
  return { shape: [...img.tensor.shape], spacing: img.spacing, hasLabels: Boolean(lab) };
}

function fail(message: string): never {
  throw new Error(message);
}
const loaded = () => volume ?? fail('load a NIfTI volume first');

async function segment(id: number): Promise<SegmentResult> {
  const { image, labels, affine, spacing } = loaded();
  const net = await loadModel();
  net.eval();
  const t0 = performance.now();
  const slices = modelSlices(image);
  const Z = image.shape[2];
  const predictions: vg.Tensor[] = [];
  for (let z = 0; z < Z; z++) {
    checkCancel();
    predictions.push(vg.noGrad(() => vg.tidy(() => vg.argmax(net.call(slices.slice(0, z, z + 1)), { dim: 1 }))));
    await predictions[z].data();
    progress(id, `segmenting slice ${z + 1} of ${Z}`, (z + 1) / Z);
    await yieldToMessages();
  }
  const [X, Y] = image.shape;
  const small = vg.cat(predictions, 0);
  predictions.forEach((p) => p.dispose());
  slices.dispose();
  // back to the volume's grid and layout [X, Y, Z]
  const volumeLabels = vg.tidy(() => {
    const sized = X === MODEL.size && Y === MODEL.size ? small.to('f32') : vg.interpolate(small.unsqueeze(1).to('f32'), { size: [X, Y], mode: 'nearest' }).squeeze(1);
    return vg.permute(sized, [1, 2, 0]).round().to('i32');
  });
  small.dispose();
  const ms = performance.now() - t0;
  let dice: Record<string, number> | null = null;
  if (labels) {
    const d = (await vg.metrics.dice(volumeLabels, labels, { labels: [1, 2, 3] })) as { perLabel: Record<number, number> };
    dice = Object.fromEntries(Object.entries(STRUCTURES).map(([l, name]) => [name, d.perLabel[Number(l)]]));
  }
  const bytes = await vg.io.encodeNifti({ tensor: volumeLabels, affine, spacing }, { gzip: true });
  segmentation?.dispose();
  segmentation = volumeLabels;
  return { labels: bytes.slice().buffer, dice, ms };
}

/** A tensor as a picture for the page (grayscale windowed to its range, or RGB [H, W, 3]). */
async function picture(title: string, t: vg.Tensor, opts: vg.io.ImageDataOptions = {}): Promise<Picture> {
  const px = await vg.io.toImageData(t, opts);
  return { title, width: px.width, height: px.height, rgba: px.data };
}

/** Up to four slices of the loaded volume, evenly spaced along Z, with the segmentation (or the labels) drawn over. */
async function view(): Promise<Picture[]> {
  const { image, labels } = loaded();
  const overlay = segmentation ?? labels;
  const Z = image.shape[2];
  const picks = [...new Set(Array.from({ length: Math.min(4, Z) }, (_, i) => Math.round(((i + 0.5) * Z) / Math.min(4, Z) - 0.5)))];
  const pictures: Picture[] = [];
  for (const z of picks) {
    const [slice, labelSlice] = vg.tidy(() => [image.slice(2, z, z + 1).squeeze(2), overlay ? overlay.slice(2, z, z + 1).squeeze(2) : null]);
    pictures.push(await picture(`slice ${z}`, slice, labelSlice ? { overlay: labelSlice, alpha: 0.4 } : {}));
    slice.dispose();
    labelSlice?.dispose();
  }
  return pictures;
}

/**
 * Registration of two slices of the loaded volume, moving onto fixed, resized to size × size: VoxelMorph or one of
 * the three registration papers' methods (web/register-step.mjs) optimised on the pair for `steps` steps.
 */
async function register(id: number, { fixed: fixedIndex, moving: movingIndex, steps, method, size }: RegisterRequest): Promise<RegisterResult> {
  const { image, affine, spacing } = loaded();
  const Z = image.shape[2];
  for (const [name, z] of [['fixed', fixedIndex], ['moving', movingIndex]] as const)
    if (!(Number.isInteger(z) && z >= 0 && z < Z)) fail(`${name} slice must be an integer in [0, ${Z - 1}], got ${z}`);
  if (!(Number.isInteger(steps) && steps >= 1)) fail(`registration steps must be a positive integer, got ${steps}`);
  // the VoxelMorph UNet halves the slice four times
  if (!(Number.isInteger(size) && size >= 16 && size % 16 === 0)) fail(`registration size must be a multiple of 16, got ${size}`);
  const nets = registrationNets(vg, method, size);
  const all = modelSlices(image, size);
  const fixed = all.slice(0, fixedIndex, fixedIndex + 1);
  const moving = all.slice(0, movingIndex, movingIndex + 1);
  all.dispose();
  const optimizer = new vg.optim.Adam(nets.parameters, { lr: 0.003 });
  const losses: number[] = [];
  let firstStepMs = 0;
  const t0 = performance.now();
  try {
    for (let step = 0; step < steps; step++) {
      checkCancel();
      const s0 = performance.now();
      losses.push(await registrationStep(vg, nets, moving, fixed, optimizer));
      if (step === 0) firstStepMs = performance.now() - s0;
      progress(id, `registration step ${step + 1} of ${steps}`, (step + 1) / steps, losses[step]);
      await yieldToMessages();
    }
    const msPerStep = steps > 1 ? (performance.now() - t0 - firstStepMs) / (steps - 1) : firstStepMs;
    const out = vg.noGrad(() => nets.backbone.run(moving, fixed));
    const flow = out.flow.squeeze(0);
    const pictures = [
      await picture('fixed', fixed),
      await picture('moving', moving),
      await picture('warped', out.warped),
      await picture('deformation grid', vg.tidy(() => vg.io.deformationGrid(flow, { image: out.warped.reshape([size, size]) }))),
      await picture('Jacobian determinant', vg.tidy(() => vg.io.jacobianMap(flow))),
      await picture('flow', vg.tidy(() => vg.io.flowColor(flow))),
    ];
    const map = auxiliaryPicture(vg, nets, out.warped, fixed);
    if (map) {
      pictures.push(await picture(map.title, map.image));
      map.image.dispose();
    }
    // the slice is resized: its voxels are larger by the resize factor
    const zoom = [image.shape[0] / size, image.shape[1] / size, 1];
    const warpedVolume = vg.tidy(() => out.warped.reshape([size, size, 1]));
    const warpedAffine = affine.map((row, r) => row.map((v, c) => (r < 3 && c < 3 ? v * zoom[c] : v)));
    const warped = await vg.io.encodeNifti({ tensor: warpedVolume, affine: warpedAffine, spacing: spacing.map((s, i) => s * zoom[i]) }, { gzip: true });
    for (const t of [out.warped, out.flow, out.regFlow, out.mask, flow, warpedVolume]) t.dispose();
    return { pictures, warped: warped.slice().buffer, losses, firstStepMs, msPerStep };
  } finally {
    optimizer.dispose();
    nets.backbone.module.dispose();
    nets.aux?.dispose();
    fixed.dispose();
    moving.dispose();
  }
}

/** Supervised fine-tuning of the shipped UNet on the loaded image and labels (every slice), 0.5·(CE + Dice), Adam. */
async function finetune(id: number, steps: number): Promise<FinetuneResult> {
  const { image, labels } = loaded();
  if (!labels) fail('fine-tuning needs labels: load a label volume with the image');
  const net = await loadModel();
  net.train();
  const x = modelSlices(image);
  const y = modelLabels(labels);
  const optimizer = new vg.optim.Adam(net.parameters(), { lr: 0.0005 });
  const losses: number[] = [];
  let firstStepMs = 0;
  const t0 = performance.now();
  try {
    for (let step = 0; step < steps; step++) {
      checkCancel();
      const s0 = performance.now();
      losses.push(await finetuneStep(vg, net, x, y, optimizer));
      if (step === 0) firstStepMs = performance.now() - s0;
      progress(id, `fine-tuning step ${step + 1} of ${steps}`, (step + 1) / steps, losses[step]);
      await yieldToMessages();
    }
  } finally {
    net.eval();
    optimizer.dispose();
    x.dispose();
    y.dispose();
  }
  const later = losses.length > 1 ? (performance.now() - t0 - firstStepMs) / (losses.length - 1) : firstStepMs;
  return { losses, msPerStep: later, firstStepMs };
}

/** The current model weights as model-only safetensors bytes. */
async function weights(): Promise<ArrayBuffer> {
  const net = await loadModel();
  const state = net.stateDict();
  const bytes = await vg.io.encodeSafetensors(state, { metadata: { features: JSON.stringify(features) } });
  return bytes.slice().buffer;
}

/** Per-kernel GPU time of one segmentation forward pass (needs the timestamp-query feature). */
async function profileForward(): Promise<{ name: string; count: number; totalUs: number }[]> {
  const net = await loadModel();
  const x = vg.zeros([1, 1, MODEL.size, MODEL.size]);
  try {
    const { result, report } = await vg.profile(() => vg.noGrad(() => vg.tidy(() => net.call(x))));
    result.dispose();
    return report.summary.slice(0, 12).map(({ name, count, totalUs }) => ({ name, count, totalUs }));
  } finally {
    x.dispose();
  }
}

self.onmessage = async (event: MessageEvent<Request>) => {
  const request = event.data;
  if (request.kind === 'cancel') {
    cancelled = true;
    return;
  }
  cancelled = false;
  const { id } = request;
  try {
    let result: unknown;
    const transfer: Transferable[] = [];
    if (request.kind === 'init') result = await init(id);
    else if (request.kind === 'load') result = await load(request.image, request.name, request.labels);
    else if (request.kind === 'segment') {
      const r = await segment(id);
      result = r;
      transfer.push(r.labels);
    } else if (request.kind === 'register') {
      const r = await register(id, request);
      result = r;
      transfer.push(r.warped, ...r.pictures.map((p) => p.rgba.buffer));
    } else if (request.kind === 'finetune') result = await finetune(id, request.steps);
    else if (request.kind === 'weights') {
      const w = await weights();
      result = w;
      transfer.push(w);
    } else if (request.kind === 'profile') result = await profileForward();
    else if (request.kind === 'view') {
      const pictures = await view();
      result = pictures;
      transfer.push(...pictures.map((p) => p.rgba.buffer));
    } else fail(`unknown request ${(request as { kind: string }).kind}`);
    post({ id, kind: 'done', result, memory: memory() }, transfer);
  } catch (e) {
    post({ id, kind: 'error', message: e instanceof Cancelled ? 'cancelled' : (e as Error).message });
  }
};
