// CLIP ViT-B/32 image forward (issue 16): batch 32 of 224² images through the image tower (224², patch 32, width
// 768, 12 layers, 12 heads, output 512; 87.8M parameters, random weights), voxgrad beside onnxruntime-node's WebGPU EP
// on the same adapter in the same process (bench/ort.mjs: disable_cpu_ep_fallback, so no node may run on ORT's CPU EP).
// Both engines get the same computation: bench/models/gen_clip_vit.py exports test/fixtures/gen_clip.py's PyTorch ViT
// to ONNX and writes its weights as safetensors with OpenAI's keys (visual.*), which voxgrad reads into
// vg.models.VisionTransformer; the input is the same seeded array; the outputs are compared. The two ~350 MB files are
// generated on the first run into bench/models/cache/ (gitignored, about a minute), then reused.
//
// What a number includes:
// - wall ms: from the call to the [32, 512] result read back on the host. voxgrad: input already on the device, the
//   forward under noGrad; ORT: session.run with the input on the host (so its 19 MB upload too). Median of the samples,
//   engines alternating sample by sample after one untimed warm-up run each (made when the engine is set up: ORT,
//   then voxgrad). images/s = 32 / wall s.
// - % FMA: the forward's matmul/conv flops (2·MACs of the patch conv, q/k/v/out projections, attention scores and
//   weighted sums, MLPs, final projection) / wall time / the adapter's FMA ceiling (bench/ceilings.mjs).
// - peak: voxgrad's vg.memory().peakBytes over its runs (weights included), and its part above the bytes held
//   before the first run (activations). ORT does not report its device memory, so for both engines the growth of the
//   process's resident set (RSS) from before the engine loaded the model to after its warm-up run is printed: on a
//   software adapter (lavapipe) device buffers live in host memory, so it counts the weights, the buffers and the
//   engine's host-side copies alike. It is a current value after the run, not a peak, and freed memory that the
//   allocator keeps still counts.
//
// Then the contrastive pretraining step of the CLIP recipe (vg.methods.recipes.clip defaults: ViT 28², patch 7, width
// 64, 2 layers; text width 64, 1 layer, context 16; embedding 32; 4 heads each; batch 256; AdamW lr 1e-3, weight decay
// 0.1): forward of both towers, CLIP's symmetric cross-entropy (vg.methods.clip.clipContrastiveLoss), backward, AdamW,
// the loss read back. PyTorch CPU (Debian torch, 2 threads) runs the same step with test/fixtures/gen_clip.py's CLIP
// as a persistent child process (bench/torch_clip_step.py) that also writes its initial weights and batch, which
// voxgrad loads (vg.models.loadClip): both engines start from the same values and train on the same fixed batch, and
// the losses of every step are compared. The engines alternate step by step (the one going first alternates too),
// so that load from other jobs hits both alike; one untimed warm-up step each.
// VOXGRAD_BENCH_CLIP_SAMPLES sets the timed samples per engine of the forward (default 3), VOXGRAD_BENCH_CLIP_BATCH
// its batch (default 32), VOXGRAD_BENCH_CLIP_STEPS the timed pretraining steps (default 5).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as vg from 'voxgrad';
import { exp1, f1, maxRelDiff, randomData, ratio, row } from './harness.mjs';
import { ORT_SESSION_OPTIONS } from './ort.mjs';
import { median } from './stats.mjs';
import { torchServer } from './torchref.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const PYTHON = process.env.VOXGRAD_BENCH_PYTHON ?? '/usr/bin/python3';
const CACHE = join(HERE, 'models', 'cache');
const GENERATOR = join(HERE, 'models', 'gen_clip_vit.py');
const SAMPLES = process.env.VOXGRAD_BENCH_CLIP_SAMPLES ? Number(process.env.VOXGRAD_BENCH_CLIP_SAMPLES) : 3;
// VOXGRAD_BENCH_CLIP_BATCH: another batch for slow adapters (the ONNX export is made for it)
const BATCH = process.env.VOXGRAD_BENCH_CLIP_BATCH ? Number(process.env.VOXGRAD_BENCH_CLIP_BATCH) : 32;
const STEPS = process.env.VOXGRAD_BENCH_CLIP_STEPS ? Number(process.env.VOXGRAD_BENCH_CLIP_STEPS) : 5;
const INPUT_SEED = 1601;
// f32 sums in different orders over 12 blocks of width 768: ~1e-5 here; above this the engines disagree
const TOLERANCE = 1e-3;

/** The cached model files, generated first when missing or made for another batch. */
function ensureModel() {
  if (!(Number.isInteger(BATCH) && BATCH >= 1)) throw new Error(`VOXGRAD_BENCH_CLIP_BATCH must be a positive integer, got ${process.env.VOXGRAD_BENCH_CLIP_BATCH}`);
  const manifestPath = join(CACHE, `clip_vit_b32_n${BATCH}.json`);
  const read = () => (existsSync(manifestPath) ? JSON.parse(readFileSync(manifestPath, 'utf8')) : null);
  let m = read();
  const ok = (x) => x && x.batch === BATCH && existsSync(join(CACHE, x.onnx)) && existsSync(join(CACHE, x.safetensors));
  let generated = false;
  if (!ok(m)) {
    if (!existsSync(PYTHON)) throw new Error(`${PYTHON} not found: it exports the ONNX model (bench/models/gen_clip_vit.py)`);
    console.log(`  generating CLIP ViT-B/32 (ONNX + safetensors, ~700 MB) into ${CACHE} with ${PYTHON} ...`);
    const r = spawnSync(PYTHON, [GENERATOR, CACHE, String(BATCH)], { encoding: 'utf8', timeout: 900_000, maxBuffer: 16 << 20 });
    if (r.status !== 0) throw new Error(`bench/models/gen_clip_vit.py failed (exit ${r.status}): ${(r.stderr || r.error?.message || '').trim().split('\n').slice(-3).join(' | ')}`);
    m = read();
    if (!ok(m)) throw new Error(`bench/models/gen_clip_vit.py ran but ${manifestPath} does not describe batch ${BATCH}`);
    generated = true;
  }
  return { ...m, generated, onnxPath: join(CACHE, m.onnx), safetensorsPath: join(CACHE, m.safetensors) };
}

/** Multiply-adds × 2 of the ViT forward (the matmuls and the patch conv; norms, softmax and GELU not counted). */
function vitFlops({ resolution, patch, width: D, layers, out }, N) {
  const grid = (resolution / patch) ** 2;
  const T = grid + 1;
  const patchConv = grid * D * 3 * patch * patch;
  const block = T * D * 3 * D + 2 * T * T * D + T * D * D + 2 * T * D * 4 * D;
  return 2 * N * (patchConv + layers * block + D * out);
}

const rssMb = () => process.memoryUsage().rss / 2 ** 20;

async function voxgradEngine(m, X) {
  const rss0 = rssMb();
  const raw = await vg.io.readSafetensors(m.safetensorsPath);
  const c = m.config;
  const vit = new vg.models.VisionTransformer(c.resolution, c.patch, c.width, c.layers, c.heads, c.out);
  const sd = {};
  for (const [k, t] of Object.entries(raw)) {
    if (!k.startsWith('visual.')) throw new Error(`${m.safetensors}: unexpected key '${k}' (visual.* expected)`);
    sd[k.slice('visual.'.length)] = t;
  }
  vit.loadStateDict(sd);
  for (const t of Object.values(raw)) t.dispose();
  vit.eval();
  const x = vg.tensor(X, [BATCH, 3, c.resolution, c.resolution]);
  vg.emptyCache(); // frees the pooled buffers of the load and restarts the peak
  const held = vg.memory().bytesInUse;
  const run = async () => {
    const t0 = performance.now();
    const y = vg.noGrad(() => vit.call(x));
    const data = await y.data();
    const wallMs = performance.now() - t0;
    y.dispose();
    return { wallMs, output: data };
  };
  const warm = await run();
  const rssGrowthMb = rssMb() - rss0;
  return {
    name: 'voxgrad',
    run,
    warm,
    memory: () => ({ peakBytes: vg.memory().peakBytes, heldBytes: held, rssGrowthMb }),
    dispose() {
      x.dispose();
      vit.dispose();
    },
  };
}

async function ortEngine(ort, m, X) {
  const rss0 = rssMb();
  const session = await ort.InferenceSession.create(m.onnxPath, ORT_SESSION_OPTIONS);
  const c = m.config;
  const x = new ort.Tensor('float32', X, [BATCH, 3, c.resolution, c.resolution]);
  const run = async () => {
    const t0 = performance.now();
    const r = await session.run({ x });
    const data = r.y.data;
    return { wallMs: performance.now() - t0, output: data };
  };
  const warm = await run();
  const rssGrowthMb = rssMb() - rss0;
  return {
    name: 'ort',
    run,
    warm,
    memory: () => ({ rssGrowthMb }),
    dispose: () => session.release(),
  };
}

export async function benchClip({ ort, ortStatus, fma }) {
  return { forward: await benchForward({ ort, ortStatus, fma }), pretrain: await benchPretrain() };
}

export async function benchForward({ ort, ortStatus, fma }) {
  const m = ensureModel();
  const c = m.config;
  const X = randomData(BATCH * 3 * c.resolution * c.resolution, INPUT_SEED);
  const flops = vitFlops(c, BATCH);
  console.log(`\nCLIP ViT-B/32 image forward, batch ${BATCH}, ${c.resolution}², random weights (${(m.params / 1e6).toFixed(1)}M parameters, ${(flops / 1e9).toFixed(0)} GFLOP)${m.generated ? '' : `; model files from ${CACHE}`}`);
  console.log(`  wall ms: call to result on the host, median of ${SAMPLES}, engines alternating run by run after a warm-up run each; % FMA: GFLOP/s / FMA ceiling (${f1(fma.gflops)} GFLOP/s)`);
  // ORT first: its RSS growth is then measured before voxgrad's buffers come and go
  let ortSide = null;
  let ortError = ortStatus?.errors?.[0] ?? null;
  if (!ort) ortError ??= 'onnxruntime-node not loaded';
  else if (ortStatus?.probe && !ortStatus.probe.ok) ortError = `ORT probe: ${ortStatus.probe.error ?? 'nodes not placed on WebGPU'}`;
  if (!ortError)
    try {
      ortSide = await ortEngine(ort, m, X);
    } catch (e) {
      ortError = String(e?.message ?? e).split('\n')[0];
    }
  const vgSide = await voxgradEngine(m, X);
  // each engine's warm-up run happened as it was made (its RSS growth spans its load and that run); then the timed
  // runs alternate, the engine going first alternating too
  const engines = [vgSide, ...(ortSide ? [ortSide] : [])];
  const r = Object.fromEntries(engines.map((e) => [e.name, { samplesMs: [], output: e.warm.output, warmupMs: e.warm.wallMs }]));
  for (let i = 0; i < SAMPLES; i++)
    for (const e of i % 2 ? [...engines].reverse() : engines) r[e.name].samplesMs.push((await e.run()).wallMs);
  for (const e of engines) r[e.name].wallMs = median(r[e.name].samplesMs);
  const vmem = vgSide.memory();
  const omem = ortSide?.memory();
  vgSide.dispose();
  await ortSide?.dispose();
  const side = (name) => {
    const s = r[name];
    if (!s) return null;
    const gflops = flops / s.wallMs / 1e6;
    return { wallMs: s.wallMs, samplesMs: s.samplesMs, warmupMs: s.warmupMs, imagesPerS: BATCH / (s.wallMs / 1000), gflops, fmaFraction: gflops / fma.gflops };
  };
  const v = side('voxgrad');
  const o = side('ort');
  const diff = o ? maxRelDiff(r.voxgrad.output, r.ort.output) : null;
  const w = [14, 10, 10, 9, 8, 15, 14];
  console.log('  ' + row(['engine', 'wall ms', 'images/s', 'GFLOP/s', '% FMA', 'peak MB', 'RSS growth MB'], w));
  const pct = (x) => `${(100 * x).toFixed(1)}%`;
  console.log('  ' + row(['voxgrad', f1(v.wallMs), f1(v.imagesPerS), f1(v.gflops), pct(v.fmaFraction), `${f1(vmem.peakBytes / 2 ** 20)}`, f1(vmem.rssGrowthMb)], w));
  if (o) console.log('  ' + row(['ORT WebGPU EP', f1(o.wallMs), f1(o.imagesPerS), f1(o.gflops), pct(o.fmaFraction), '-', f1(omem.rssGrowthMb)], w));
  else console.log(`  ORT WebGPU EP: not run (${ortError})`);
  console.log(`  voxgrad peak: ${f1(vmem.peakBytes / 2 ** 20)} MB (vg.memory().peakBytes over the runs; ${f1(vmem.heldBytes / 2 ** 20)} MB of it weights and input held before the first run, ${f1((vmem.peakBytes - vmem.heldBytes) / 2 ** 20)} MB above)`);
  console.log(`  RSS growth: process resident set after the engine's warm-up run minus before it loaded the model (weights, device buffers on a software adapter, host copies); ORT reports no device peak`);
  if (o) {
    console.log(`  voxgrad vs ORT: ${ratio(v.wallMs, o.wallMs)}; samples ms voxgrad ${v.samplesMs.map(f1).join(', ')}, ORT ${o.samplesMs.map(f1).join(', ')}`);
    console.log(`  outputs agree: max |voxgrad - ORT| / max |ORT| = ${exp1(diff)}${diff > TOLERANCE ? `  ** above ${TOLERANCE}: not the same computation **` : ''}`);
    if (diff > TOLERANCE) process.exitCode = 1;
  }
  return {
    batch: BATCH,
    resolution: c.resolution,
    params: m.params,
    flops,
    voxgrad: { ...v, peakBytes: vmem.peakBytes, heldBytes: vmem.heldBytes, rssGrowthMb: vmem.rssGrowthMb },
    ort: o ? { ...o, rssGrowthMb: omem.rssGrowthMb } : { error: ortError },
    maxRelDiff: diff,
    ratio: o ? o.wallMs / v.wallMs : null,
  };
}

/** The CLIP recipe's pretraining setup (its defaults), in gen_clip.py's config keys for the PyTorch side. */
function recipeSetup() {
  const d = vg.methods.recipes.clip.defaults;
  const torchConfig = {
    embed_dim: d.embedDim,
    image_resolution: 28,
    vision_layers: d.visionLayers,
    vision_width: d.visionWidth,
    vision_patch_size: d.patchSize,
    vision_heads: 4,
    context_length: 16,
    vocab_size: new vg.io.WordTokenizer(vg.data.SPURIOUS_CAPTION_WORDS).vocabSize,
    transformer_width: d.textWidth,
    transformer_heads: 4,
    transformer_layers: d.textLayers,
  };
  return { batch: d.pretrainBatch, lr: d.pretrainLr, weightDecay: 0.1, torchConfig };
}

/** voxgrad's side of the step, from the weights and batch PyTorch wrote to `file`. */
async function voxgradPretrainStepper(file, s) {
  const raw = await vg.io.readSafetensors(file);
  const { 'input.image': image, 'input.text': text, ...sd } = raw;
  // a state dict does not record head counts (loadClip infers width / 64, OpenAI's); the recipe uses 4
  const model = await vg.models.loadClip(sd, { config: { visionHeads: s.torchConfig.vision_heads, transformerHeads: s.torchConfig.transformer_heads } });
  for (const t of Object.values(sd)) t.dispose();
  model.train();
  // the recipe's optimiser (src/methods/clip/recipe.ts pretrain)
  const opt = new vg.optim.AdamW(model.parameters(), { lr: s.lr, weightDecay: s.weightDecay });
  vg.emptyCache();
  const step = async () => {
    const t0 = performance.now();
    const loss = vg.tidy(() => vg.methods.clip.clipContrastiveLoss(model.call(image, text)[0]));
    opt.zeroGrad();
    loss.backward();
    opt.step();
    const value = await loss.item();
    loss.dispose();
    return { ms: performance.now() - t0, loss: value };
  };
  const dispose = () => {
    opt.dispose();
    model.dispose();
    image.dispose();
    text.dispose();
  };
  return { step, dispose };
}

export async function benchPretrain() {
  const s = recipeSetup();
  const c = s.torchConfig;
  console.log(`
CLIP contrastive pretraining step, the clip recipe's model (ViT ${c.image_resolution}², patch ${c.vision_patch_size}, width ${c.vision_width}, ${c.vision_layers} layers; text width ${c.transformer_width}, ${c.transformer_layers} layer, context ${c.context_length}; embedding ${c.embed_dim}), batch ${s.batch}, AdamW`);
  console.log(`  engines alternating step by step, the same initial weights and batch; wall ms per step (loss read back), median of ${STEPS} after one warm-up step each; PyTorch CPU 2 threads`);
  const server = torchServer(join(HERE, 'torch_clip_step.py'));
  if (server.error) {
    console.log(`  not run: ${server.error}`);
    return { error: server.error };
  }
  const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'voxgrad-clip-'));
  try {
    const file = join(dir, 'clip_step.safetensors');
    const setup = await server.request({ cmd: 'setup', config: c, batch: s.batch, lr: s.lr, weightDecay: s.weightDecay, file });
    if (!setup.ok) throw new Error(`PyTorch setup failed: ${setup.error}`);
    const v = await voxgradPretrainStepper(file, s);
    const vMs = [];
    const tMs = [];
    const losses = { voxgrad: [], torch: [] };
    let peakRssMb = null;
    for (let i = 0; i <= STEPS; i++) {
      for (const engine of i % 2 === 0 ? ['vg', 'torch'] : ['torch', 'vg']) {
        if (engine === 'vg') {
          const r = await v.step();
          losses.voxgrad.push(r.loss);
          if (i > 0) vMs.push(r.ms);
        } else {
          const r = await server.request({ cmd: 'step' });
          if (!r.ok) throw new Error(`PyTorch step failed: ${r.error}`);
          losses.torch.push(r.loss);
          if (i > 0) tMs.push(r.ms);
          peakRssMb = r.peakRssMb;
        }
      }
    }
    const peak = vg.memory().peakBytes;
    v.dispose();
    const [vm, tm] = [median(vMs), median(tMs)];
    // per step: |voxgrad - torch| / |torch| (step 1 from identical weights; later steps after the same updates)
    const lossDiff = Math.max(...losses.torch.map((t, i) => Math.abs(losses.voxgrad[i] - t) / Math.abs(t)));
    const w = [12, 10, 14, 10, 14, 14, 20];
    const spread = (xs) => `${f1(Math.min(...xs))}–${f1(Math.max(...xs))}`;
    console.log('  ' + row(['engine', 'ms/step', 'min–max', 'images/s', 'peak MB', 'first loss', 'last loss'], w));
    console.log('  ' + row(['voxgrad', f1(vm), spread(vMs), f1(s.batch / (vm / 1000)), `${f1(peak / 2 ** 20)} GPU`, losses.voxgrad[0].toFixed(5), losses.voxgrad.at(-1).toFixed(5)], w));
    console.log('  ' + row([`torch ${setup.torch}`, f1(tm), spread(tMs), f1(s.batch / (tm / 1000)), `${f1(peakRssMb)} RSS`, losses.torch[0].toFixed(5), losses.torch.at(-1).toFixed(5)], w));
    console.log(`  voxgrad vs PyTorch CPU: ${ratio(vm, tm)}; losses agree over the ${losses.torch.length} steps: max |voxgrad - torch| / |torch| = ${exp1(lossDiff)}`);
    console.log('  peak: voxgrad vg.memory().peakBytes over the steps (weights, optimiser state, activations); PyTorch: the process\'s peak RSS (ru_maxrss)');
    if (!(lossDiff <= TOLERANCE)) process.exitCode = 1;
    return { batch: s.batch, config: c, voxgrad: { ms: vm, samplesMs: vMs, peakBytes: peak, losses: losses.voxgrad }, torch: { ms: tm, samplesMs: tMs, torch: setup.torch, threads: setup.threads, peakRssMb, losses: losses.torch }, ratio: tm / vm, maxLossRelDiff: lossDiff };
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
