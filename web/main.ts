/**
 * The page: file loading (picker, drag and drop, samples), NiiVue for the volume and its labels, canvases for the
 * registration pictures and the loss curve, and the controls. All tensor work runs in worker.ts; results come back as
 * NIfTI/safetensors bytes and RGBA pictures, and downloads go through vg.io.download.
 */
import { Niivue } from '@niivue/niivue';
import { io } from 'voxgrad';
import type { FinetuneResult, InitResult, LoadResult, MemoryLine, Picture, RegisterResult, Reply, Request, SegmentResult } from './protocol.js';

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
let nextId = 1;
const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; onProgress?: (r: Extract<Reply, { kind: 'progress' }>) => void }>();

// a worker that fails to load or throws outside a request: every waiting request fails with its message
worker.onerror = (event) => {
  const error = new Error(`the worker failed: ${event.message || 'could not load worker.js'}`);
  for (const w of waiting.values()) w.reject(error);
  waiting.clear();
};

worker.onmessage = (event: MessageEvent<Reply>) => {
  const reply = event.data;
  const w = waiting.get(reply.id);
  if (!w) return;
  if (reply.kind === 'progress') {
    showMemory(reply.memory);
    $('stage').textContent = reply.stage;
    $<HTMLProgressElement>('progress').value = reply.fraction;
    w.onProgress?.(reply);
    return;
  }
  waiting.delete(reply.id);
  if (reply.kind === 'done') {
    showMemory(reply.memory);
    w.resolve(reply.result);
  } else w.reject(new Error(reply.message));
};


/** Sends a request; resolves with its result. One long task at a time: the controls are disabled meanwhile. */
function call<R>(kind: Request['kind'], body: Record<string, unknown> = {}, onProgress?: (r: Extract<Reply, { kind: 'progress' }>) => void, transfer: Transferable[] = []): Promise<R> {
  const id = nextId++;
  return new Promise<R>((resolve, reject) => {
    waiting.set(id, { resolve: resolve as (v: unknown) => void, reject, onProgress });
    worker.postMessage({ id, kind, ...body } as Request, transfer);
  });
}

function showMemory(m: MemoryLine): void {
  $('memory').textContent = `GPU memory in use ${(m.bytesInUse / 2 ** 20).toFixed(1)} MiB (peak ${(m.peakBytes / 2 ** 20).toFixed(1)} MiB), ${m.liveTensors} tensors`;
}

const ACTIONS = ['segment', 'register', 'finetune', 'profile', 'sample-phantom', 'sample-ch2'];
let loaded = false;
let hasLabels = false;
function busy(on: boolean): void {
  for (const id of ACTIONS) $<HTMLButtonElement>(id).disabled = on || (!loaded && !id.startsWith('sample'));
  $<HTMLButtonElement>('finetune').disabled = on || !hasLabels;
  $<HTMLButtonElement>('cancel').disabled = !on;
  document.body.dataset.busy = String(on);
}

/** Runs a task with the controls disabled and its error (or 'cancelled') shown as the stage. */
async function task<R>(run: () => Promise<R>): Promise<R | undefined> {
  busy(true);
  try {
    const result = await run();
    $('stage').textContent = 'ready';
    return result;
  } catch (e) {
    $('stage').textContent = `stopped: ${(e as Error).message}`;
    return undefined;
  } finally {
    busy(false);
  }
}

// ---- display --------------------------------------------------------------------------------------------------

/**
 * NiiVue is attached at the first volume, after the worker's warm-up: on a software adapter (SwiftShader) WebGL and
 * WebGPU share the GPU process, and WebGL calls on the page would wait for the worker's pipeline compiles.
 */
let viewer: Niivue | null = null;
async function niivue(): Promise<Niivue> {
  if (!viewer) {
    viewer = new Niivue({ backColor: [0, 0, 0, 1], show3Dcrosshair: false });
    await viewer.attachToCanvas($<HTMLCanvasElement>('niivue'));
  }
  return viewer;
}
const blobUrls: string[] = [];
const blobUrl = (bytes: ArrayBuffer) => {
  const url = URL.createObjectURL(new Blob([bytes]));
  blobUrls.push(url);
  return url;
};

let image: { bytes: ArrayBuffer; name: string } | null = null;
let labels: ArrayBuffer | null = null;
let segmentation: ArrayBuffer | null = null;
let warped: ArrayBuffer | null = null;

/**
 * How volumes are shown: NiiVue, or slices drawn by the worker (vg.io.toImageData with the labels over them). The
 * default is NiiVue on a hardware adapter and slices on a software fallback, where WebGL competes with the worker for
 * the one software GPU process and can hold the page for seconds; `?viewer=niivue` or `?viewer=slices` chooses.
 */
let viewerMode: 'niivue' | 'slices' = 'niivue';

/** Shows the image with the segmentation (or else the loaded labels) as a translucent overlay. */
async function showVolumes(): Promise<void> {
  if (!image) return;
  if (viewerMode === 'slices') {
    drawPictures('slices', await call<Picture[]>('view'));
    return;
  }
  while (blobUrls.length) URL.revokeObjectURL(blobUrls.pop()!);
  const overlay = segmentation ?? labels;
  const list = [{ url: blobUrl(image.bytes), name: image.name.endsWith('.gz') || image.name.endsWith('.nii') ? image.name : `${image.name}.nii` }];
  if (overlay) list.push({ url: blobUrl(overlay), name: 'labels.nii.gz', colormap: 'warm', opacity: 0.45 } as (typeof list)[number]);
  const nv = await niivue();
  await nv.loadVolumes(list);
  // what NiiVue holds, for the end-to-end test: each volume's dims and its overlay's colormap
  document.body.dataset.niivue = JSON.stringify(nv.volumes.map((v) => ({ dims: v.hdr?.dims.slice(1, 4), colormap: v.colormap })));
}

function drawPictures(boxId: string, pictures: Picture[]): void {
  const box = $(boxId);
  box.replaceChildren();
  for (const p of pictures) {
    const figure = document.createElement('figure');
    const canvas = document.createElement('canvas');
    canvas.width = p.width;
    canvas.height = p.height;
    canvas.getContext('2d')!.putImageData(new ImageData(p.rgba as Uint8ClampedArray<ArrayBuffer>, p.width, p.height), 0, 0);
    const caption = document.createElement('figcaption');
    caption.textContent = p.title;
    figure.append(canvas, caption);
    box.append(figure);
  }
}

/** The loss curve so far (log scale when it spans more than a decade). */
function drawLoss(losses: number[], title: string): void {
  const canvas = $<HTMLCanvasElement>('loss');
  canvas.dataset.losses = JSON.stringify(losses);
  const g = canvas.getContext('2d')!;
  g.clearRect(0, 0, canvas.width, canvas.height);
  g.fillStyle = '#222';
  g.fillText(`${title}: ${losses.length} steps, last ${losses.at(-1)?.toFixed(4) ?? '-'}`, 8, 14);
  if (losses.length < 2) return;
  const lo = Math.min(...losses);
  const hi = Math.max(...losses);
  const log = hi / Math.max(lo, 1e-12) > 10;
  const f = (v: number) => (log ? Math.log(Math.max(v, 1e-12)) : v);
  const [a, b] = [f(lo), f(hi)];
  g.strokeStyle = '#c33';
  g.beginPath();
  losses.forEach((v, i) => {
    const x = 8 + (i / (losses.length - 1)) * (canvas.width - 16);
    const y = canvas.height - 8 - ((f(v) - a) / (b - a || 1)) * (canvas.height - 30);
    if (i === 0) g.moveTo(x, y);
    else g.lineTo(x, y);
  });
  g.stroke();
}

// ---- loading --------------------------------------------------------------------------------------------------

async function load(imageBytes: ArrayBuffer, name: string, labelBytes: ArrayBuffer | null): Promise<void> {
  // the worker gets copies: the page keeps its bytes for NiiVue and downloads
  const info = await call<LoadResult>('load', { image: imageBytes.slice(0), name, labels: labelBytes?.slice(0) });
  image = { bytes: imageBytes, name };
  labels = labelBytes;
  segmentation = null;
  loaded = true;
  hasLabels = info.hasLabels;
  const spacing = info.spacing.map((s) => s.toFixed(2)).join(' × ');
  $('loaded').textContent = `${name}: [${info.shape.join(', ')}] voxels of ${spacing} mm${info.hasLabels ? ', with labels' : ''}`;
  $('loaded').dataset.shape = JSON.stringify(info.shape);
  const last = info.shape[2] - 1;
  $<HTMLInputElement>('fixed').max = $<HTMLInputElement>('moving').max = String(last);
  $<HTMLInputElement>('moving').value = String(Math.min(last, Number($<HTMLInputElement>('moving').value)));
  $<HTMLButtonElement>('dl-labels').disabled = true;
  await showVolumes();
}

const fileBytes = (file: File) => file.arrayBuffer();

$('image-input').addEventListener('change', () =>
  task(async () => {
    const file = $<HTMLInputElement>('image-input').files?.[0];
    const labelFile = $<HTMLInputElement>('labels-input').files?.[0];
    if (file) await load(await fileBytes(file), file.name, labelFile ? await fileBytes(labelFile) : null);
  }),
);
$('labels-input').addEventListener('change', () =>
  task(async () => {
    const labelFile = $<HTMLInputElement>('labels-input').files?.[0];
    if (image && labelFile) await load(image.bytes, image.name, await fileBytes(labelFile));
  }),
);
const drop = $('drop');
drop.addEventListener('dragover', (e) => (e.preventDefault(), drop.classList.add('over')));
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (e) => {
  e.preventDefault();
  drop.classList.remove('over');
  const files = [...(e.dataTransfer?.files ?? [])];
  // one file: an image; two: image and labels (a name containing "label" or "seg" marks the labels)
  const isLabel = (f: File) => /label|seg/i.test(f.name);
  const img = files.find((f) => !isLabel(f)) ?? files[0];
  const lab = files.find((f) => f !== img);
  if (img) void task(async () => load(await fileBytes(img), img.name, lab ? await fileBytes(lab) : null));
});
$('sample-phantom').addEventListener('click', () =>
  task(async () => {
    const [image, labels] = await Promise.all(['samples/phantom.nii.gz', 'samples/phantom-labels.nii.gz'].map(async (url) => (await fetch(url)).arrayBuffer()));
    await load(image, 'phantom.nii.gz', labels);
  }),
);
$('sample-ch2').addEventListener('click', () =>
  task(async () => {
    const response = await fetch('samples/ch2.nii.gz');
    await load(await response.arrayBuffer(), 'ch2.nii.gz', null);
  }),
);

// ---- work -----------------------------------------------------------------------------------------------------

$('segment').addEventListener('click', () =>
  task(async () => {
    const r = await call<SegmentResult>('segment');
    segmentation = r.labels;
    const diceText = r.dice ? `Dice ${Object.entries(r.dice).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(' · ')}` : 'no labels loaded: no Dice';
    $('dice').textContent = `${diceText} (${r.ms.toFixed(0)} ms)`;
    $('dice').dataset.values = JSON.stringify(r.dice);
    $<HTMLButtonElement>('dl-labels').disabled = false;
    await showVolumes();
  }),
);

$('register').addEventListener('click', () =>
  task(async () => {
    const losses: number[] = [];
    const value = (id: string) => $<HTMLInputElement | HTMLSelectElement>(id).value;
    const body = { fixed: Number(value('fixed')), moving: Number(value('moving')), steps: Number(value('reg-steps')), method: value('reg-method'), size: Number(value('reg-size')) };
    const r = await call<RegisterResult>('register', body, (p) => {
      if (p.loss !== undefined) drawLoss((losses.push(p.loss), losses), 'registration loss');
    });
    drawLoss(r.losses, `registration loss (first step ${r.firstStepMs.toFixed(0)} ms, then ${r.msPerStep.toFixed(0)} ms/step)`);
    $<HTMLCanvasElement>('loss').dataset.msPerStep = String(r.msPerStep);
    $<HTMLCanvasElement>('loss').dataset.firstStepMs = String(r.firstStepMs);
    drawPictures('pictures', r.pictures);
    warped = r.warped;
    $<HTMLButtonElement>('dl-warped').disabled = false;
  }),
);

$('finetune').addEventListener('click', () =>
  task(async () => {
    const losses: number[] = [];
    const r = await call<FinetuneResult>('finetune', { steps: Number($<HTMLInputElement>('ft-steps').value) }, (p) => {
      if (p.loss !== undefined) drawLoss((losses.push(p.loss), losses), 'fine-tuning loss');
    });
    drawLoss(r.losses, `fine-tuning loss (first step ${r.firstStepMs.toFixed(0)} ms, then ${r.msPerStep.toFixed(0)} ms/step)`);
    $<HTMLCanvasElement>('loss').dataset.msPerStep = String(r.msPerStep);
    $<HTMLCanvasElement>('loss').dataset.firstStepMs = String(r.firstStepMs);
  }),
);

$('cancel').addEventListener('click', () => worker.postMessage({ id: 0, kind: 'cancel' } satisfies Request));

$('profile').addEventListener('click', () =>
  task(async () => {
    const rows = await call<{ name: string; count: number; totalUs: number }[]>('profile');
    const table = $('profile-table');
    table.replaceChildren();
    for (const r of rows) {
      const tr = document.createElement('tr');
      for (const cell of [r.name, `${r.count}×`, `${(r.totalUs / 1000).toFixed(2)} ms`]) tr.append(Object.assign(document.createElement('td'), { textContent: cell }));
      table.append(tr);
    }
  }),
);

$('dl-labels').addEventListener('click', () => segmentation && io.download('segmentation.nii.gz', segmentation));
$('dl-warped').addEventListener('click', () => warped && io.download('warped.nii.gz', warped));
$('dl-weights').addEventListener('click', () => task(async () => io.download('unet-phantom-finetuned.safetensors', await call<ArrayBuffer>('weights'))));

// ---- start ----------------------------------------------------------------------------------------------------

fetch('samples/ch2.nii.gz', { method: 'HEAD' }).then((r) => ($('sample-ch2').hidden = !r.ok), () => undefined);
busy(true);
$<HTMLButtonElement>('cancel').disabled = true;
try {
  const info = await call<InitResult>('init');
  $('adapter').textContent = `${info.adapter}${info.fallback ? ' (fallback adapter)' : ''} · warm-up ${(info.warmupMs / 1000).toFixed(1)} s`;
  $('adapter').dataset.warmupMs = String(info.warmupMs);
  $('fallback').hidden = !info.fallback;
  // at 64 x 64 registration takes a 16-row 3x3 weight-gradient kernel that SwiftShader did not compile in 5 minutes
  // (bench/web-compile.mjs); at 32 x 32 the weight gradients take 4-row kernels, which compile in under a second
  if (info.fallback) $<HTMLInputElement>('reg-size').value = '32';
  const asked = new URLSearchParams(location.search).get('viewer');
  viewerMode = asked === 'niivue' || asked === 'slices' ? asked : info.fallback ? 'slices' : 'niivue';
  $('viewer').hidden = viewerMode !== 'niivue';
  $('slices').hidden = viewerMode !== 'slices';
  document.body.dataset.viewer = viewerMode;
  $<HTMLButtonElement>('dl-weights').disabled = false;
  $('stage').textContent = 'ready';
  document.body.dataset.ready = 'true';
} catch (e) {
  $('nogpu').hidden = false;
  $('nogpu').textContent = (e as Error).message;
  $('stage').textContent = 'WebGPU is unavailable';
} finally {
  busy(false);
}
