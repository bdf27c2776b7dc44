// onnxruntime-node (1.30) with its WebGPU execution provider, for the convolution rows. ORT's WebGPU EP has its own
// Dawn instance inside libonnxruntime, so it is a separate WebGPU device on the same adapter (lavapipe here).
//
// Two guards against a silent CPU fallback:
// - every session is created with session.disable_cpu_ep_fallback = 1: creating it fails if any node would be
//   assigned to the CPU EP instead of the WebGPU EP;
// - probeOrt() runs this file in a child process (`node bench/ort.mjs --probe`) with ORT's verbose log, which names
//   the EP each node is placed on and logs each WebGPU program it dispatches, and lists the threads of that process
//   (no other WebGPU user lives there) before and after ORT creates its WebGPU device: Mesa's llvmpipe starts threads
//   named llvmpipe-N when a device on it is opened, so their appearance shows ORT's Dawn is on the software adapter
//   (ORT's Dawn has no SwiftShader; lavapipe is the only Vulkan device on this machine).
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
export const MODELS_DIR = join(HERE, 'models');

/** bench/models/manifest.json, written by bench/models/gen_models.py. */
export function modelManifest() {
  return JSON.parse(readFileSync(join(MODELS_DIR, 'manifest.json'), 'utf8'));
}

export const ORT_SESSION_OPTIONS = {
  executionProviders: ['webgpu'],
  graphOptimizationLevel: 'all',
  logSeverityLevel: 3,
  extra: { session: { disable_cpu_ep_fallback: '1' } },
};

export async function loadOrt() {
  return await import('onnxruntime-node');
}

/** Runs the probe in a child process; returns { ok, placedOnWebGpu, placements, programs, llvmpipeThreads, error? }. */
export function probeOrt() {
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--probe'], {
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' },
    maxBuffer: 64 << 20,
  });
  const text = `${r.stdout}\n${r.stderr}`;
  const result = text.match(/^PROBE (.*)$/m);
  if (!result) return { ok: false, error: `probe failed (exit ${r.status}): ${text.split('\n').filter((l) => /error|fail/i.test(l)).slice(0, 3).join(' | ') || text.slice(-300)}` };
  const probe = JSON.parse(result[1]);
  // VerifyEachNodeIsAssignedToAnEp: " All nodes placed on [WebGpuExecutionProvider]. Number of nodes: 3"
  const placements = [...text.matchAll(/All nodes placed on \[(\w+)\]|Node\(s\) placed on \[(\w+)\]/g)].map((m) => m[1] ?? m[2]);
  const programs = [...new Set([...text.matchAll(/webgpu_context\.cc:\d+ Run\] Starting program "([A-Za-z0-9_]+)/g)].map((m) => m[1]))];
  const placedOnWebGpu = placements.length > 0 && placements.every((p) => p === 'WebGpuExecutionProvider');
  const onLlvmpipe = probe.llvmpipeThreads.before === 0 && probe.llvmpipeThreads.after > 0;
  return { ...probe, placements, placedOnWebGpu, programs, onLlvmpipe, ok: placedOnWebGpu && programs.length > 0 && probe.ran > 0 };
}

/** Threads of this process named llvmpipe-N (Mesa's software rasterizer/compute workers). */
function llvmpipeThreads() {
  let n = 0;
  for (const t of readdirSync('/proc/self/task')) {
    try {
      if (/^llvmpipe-\d+/.test(readFileSync(`/proc/self/task/${t}/comm`, 'utf8'))) n++;
    } catch {
      // the thread ended meanwhile
    }
  }
  return n;
}

async function probeMain() {
  const ort = await loadOrt();
  const manifest = modelManifest();
  const out = { models: 0, ran: 0, llvmpipeThreads: { before: llvmpipeThreads(), after: 0 } };
  // every model's placement is logged at session creation; the small ones (conv2d, conv3d 32³) also run, so that the
  // log names the WebGPU programs they dispatch
  for (const [name, m] of Object.entries(manifest)) {
    const session = await ort.InferenceSession.create(join(MODELS_DIR, m.file), { ...ORT_SESSION_OPTIONS, logSeverityLevel: 0, logVerbosityLevel: 0 });
    out.models++;
    const size = m.xShape.reduce((a, b) => a * b, 1);
    if (size <= 1 << 20) {
      const r = await session.run({ x: new ort.Tensor('float32', new Float32Array(size).fill(1), m.xShape) });
      if (r.y.dims.join(',') === m.xShape.map((d, i) => (i === 1 ? m.wShape[0] : d)).join(',')) out.ran++;
    }
    await session.release();
  }
  out.llvmpipeThreads.after = llvmpipeThreads();
  console.log(`PROBE ${JSON.stringify(out)}`);
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv[2] === '--probe')
  probeMain().then(
    () => process.exit(0),
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
