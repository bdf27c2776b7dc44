// Shared pieces of the benchmark sections: deterministic inputs, host-side layout changes, result comparison and the
// interleaved sampler (engines take turns sample by sample, so load from other processes falls on all of them alike).
import { median } from './stats.mjs';

/** Deterministic inputs shared by every engine (mulberry32, values in [-1, 1)); bench/models/gen_models.py has the same. */
export function randomData(n, seed) {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  }
  return out;
}

/** Host transpose: out[..] = data permuted so that out's axis i is data's axis perm[i]. Returns { data, shape }. */
export function permute(data, shape, perm) {
  const nd = shape.length;
  const outShape = perm.map((p) => shape[p]);
  const inStrides = new Array(nd);
  let s = 1;
  for (let i = nd - 1; i >= 0; i--) {
    inStrides[i] = s;
    s *= shape[i];
  }
  const strides = perm.map((p) => inStrides[p]);
  const out = new Float32Array(data.length);
  // innermost axis in a tight loop, the rest by an odometer
  const inner = outShape[nd - 1];
  const innerStride = strides[nd - 1];
  const idx = new Array(nd - 1).fill(0);
  let src = 0;
  for (let o = 0; o < out.length; o += inner) {
    for (let j = 0, k = src; j < inner; j++, k += innerStride) out[o + j] = data[k];
    for (let a = nd - 2; a >= 0; a--) {
      idx[a]++;
      src += strides[a];
      if (idx[a] < outShape[a]) break;
      src -= strides[a] * outShape[a];
      idx[a] = 0;
    }
  }
  return { data: out, shape: outShape };
}

/** max |a - b| / max |b| (0 when both are all zeros); Infinity when lengths differ or a value is not finite. */
export function maxRelDiff(a, b) {
  if (a.length !== b.length) return Infinity;
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= diff)) diff = d; // also catches NaN
    scale = Math.max(scale, Math.abs(b[i]));
  }
  if (Number.isNaN(diff)) return Infinity;
  return scale === 0 ? diff : diff / scale;
}

/** The largest of maxRelDiff over matching lists of arrays (several outputs, e.g. two gradients). */
export function maxRelDiffAll(as, bs) {
  if (as.length !== bs.length) return Infinity;
  return Math.max(...as.map((a, i) => maxRelDiff(a, bs[i])));
}

/**
 * Interleaved sampling. Each engine is { name, run(keep) → { wallMs, gpuMs?, kernels?, outputs? } } (outputs only
 * when keep is true, for the cross-check). Every engine first warms up (pipelines compiled, caches filled; not timed):
 * by one full run, whose outputs are kept, or, where the engine has `prewarm()`, by that instead: the same op on a
 * small problem meant to compile the same pipelines, with `pipelines()` counting the engine's compiled pipelines; a
 * timed run during which that count grows compiled something after all, so it is discarded (as a warm-up run) and
 * run again. The first kept run also keeps the outputs. Then the engines take turns, `samples` timed runs each. An
 * engine whose warm-up (or, prewarmed, first run) took longer than `slowMs` takes only `slowSamples` timed samples,
 * to keep the whole benchmark within minutes; counts are reported.
 */
export async function interleaved(engines, { samples = 3, slowMs = Infinity, slowSamples = 1 } = {}) {
  const res = new Map();
  for (const e of engines) {
    const r = { warmMs: null, outputs: null, target: samples, wall: [], gpu: [], kernels: [], prewarmed: false, pipelines: null, discarded: 0 };
    if (e.prewarm) {
      await e.prewarm();
      r.prewarmed = true;
      r.pipelines = e.pipelines();
    } else {
      const warm = await e.run(true);
      r.warmMs = warm.wallMs;
      r.outputs = warm.outputs ?? null;
      if (warm.wallMs > slowMs) r.target = Math.min(samples, slowSamples);
    }
    res.set(e.name, r);
  }
  for (let round = 0; round < samples + 2; round++)
    for (const e of engines) {
      const r = res.get(e.name);
      if (r.wall.length >= r.target) continue;
      const first = r.outputs === null;
      const t = await e.run(first);
      if (first) {
        r.outputs = t.outputs ?? null;
        if (t.wallMs > slowMs) r.target = Math.min(samples, slowSamples);
      }
      if (r.pipelines != null) {
        const now = e.pipelines();
        if (now !== r.pipelines) {
          r.pipelines = now;
          r.discarded++;
          r.warmMs = t.wallMs;
          continue;
        }
      }
      r.wall.push(t.wallMs);
      if (t.gpuMs != null) r.gpu.push(t.gpuMs);
      if (t.kernels) r.kernels.push(t.kernels);
    }
  const out = {};
  for (const [name, r] of res)
    out[name] = {
      n: r.wall.length,
      wallMs: median(r.wall),
      gpuMs: r.gpu.length ? median(r.gpu) : null,
      samplesMs: r.wall,
      gpuSamplesMs: r.gpu,
      warmup: r.prewarmed ? (r.discarded ? `small problem, then ${r.discarded} full run(s) that compiled pipelines` : 'small problem') : 'full run',
      warmupMs: r.warmMs,
      discardedRuns: r.discarded,
      kernels: mergeKernels(r.kernels),
      outputs: r.outputs,
    };
  return out;
}

/** Per-kernel GPU ms (median over samples) from a list of { name: ms } maps. */
function mergeKernels(list) {
  if (!list.length) return null;
  const names = new Set(list.flatMap((k) => Object.keys(k)));
  const out = {};
  for (const n of names) out[n] = median(list.map((k) => k[n] ?? 0));
  return out;
}

/** { kernel name: total ms } from a vg.profile report, kernels with the same name summed. */
export function kernelsOf(report) {
  const out = {};
  for (const s of report.summary) out[s.name] = s.totalUs / 1000;
  return out;
}

export const f1 = (x) => (x == null || !Number.isFinite(x) ? '-' : x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
export const exp1 = (x) => (x == null ? '-' : Number.isFinite(x) ? x.toExponential(1) : 'MISMATCH');
export const row = (cells, widths) => cells.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  ');

/** "2.41x faster" / "0.52x (slower)": how many times faster voxgrad is than `peerMs`. */
export function ratio(vgMs, peerMs) {
  if (vgMs == null || peerMs == null) return '-';
  const r = peerMs / vgMs;
  return r >= 1 ? `${r.toFixed(2)}x faster` : `${r.toFixed(2)}x (slower)`;
}
