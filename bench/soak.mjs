#!/usr/bin/env node
// npm run soak [-- --steps N] [-- --every N] [-- --warmup N] [-- --json samples.json]   (default runs/soak.json)
// The long-run memory check (issue 12): the demo's UNet recipe (unet-phantom) at reduced width and size, with its
// real data pipeline (DataLoader, GPU augmentations) and a checkpoint every 1,000 steps through vg.train, sampled
// every 500 steps: live tensors, bytes in use, pooled bytes (vg.memory()), RSS, step time, V8 heap and the bind-group cache. After warm-up, live
// tensors and bytes in use must be exactly constant, pooled bytes bounded and RSS growth under a stated bound (the
// slope of a least-squares fit, MB per 1,000 steps). Prints a table, writes the samples as JSON, exits 1 on growth.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import * as vg from 'voxgrad';

/**
 * The soak's recipe settings. 20 subjects × 2 frames / batch 4 = 10 batches per epoch, a divisor of every sample
 * interval used here: each sample falls on an epoch's last batch, when the loader has no batch prefetched, so live
 * tensors are comparable sample to sample.
 */
export const SOAK_CONFIG = { features: [4, 8, 16, 32, 64], size: 32, batchSize: 4, trainSubjects: 20, testSubjects: 2 };
const BATCHES_PER_EPOCH = (SOAK_CONFIG.trainSubjects * 2) / SOAK_CONFIG.batchSize;

/** RSS may grow at most this much per 1,000 steps after warm-up (the run folder's loss history alone adds ~0.1 MB). */
export const RSS_SLOPE_LIMIT_MB = 2;

/**
 * Trains unet-phantom for `steps` steps with checkpoints every `checkpointEvery` into a temporary run folder and
 * samples memory every `every` steps. Returns the samples ({ step, liveTensors, bytesInUse, bytesPooled, rssMB,
 * msPerStep, heapMB / heapTotalMB / externalMB: V8's heap in use, committed and external, bindGroups: the runtime's bind-group cache entries, bindGroupsCreated: since the previous sample })
 * and the wall time.
 */
export async function soak({ steps, every, checkpointEvery, log = () => {} }) {
  if (every % BATCHES_PER_EPOCH !== 0) throw new Error(`soak: the sample interval must be a multiple of the ${BATCHES_PER_EPOCH} batches per epoch, got ${every}`);
  const outDir = mkdtempSync(join(tmpdir(), 'voxgrad-soak-'));
  const samples = [];
  let last = performance.now();
  const t0 = last;
  let cache = vg.debug.cacheStats();
  try {
    await vg.methods.unetPhantom.train({
      outDir,
      config: { ...SOAK_CONFIG, steps, checkpointEvery },
      onStep: (done) => {
        if (done % every !== 0) return;
        const now = performance.now();
        const m = vg.memory();
        const sample = {
          step: done,
          liveTensors: m.liveTensors,
          bytesInUse: m.bytesInUse,
          bytesPooled: m.bytesPooled,
          rssMB: process.memoryUsage().rss / 2 ** 20,
          msPerStep: (now - last) / every,
          ...heapSample(),
          ...bindGroupsSince(cache),
        };
        cache = vg.debug.cacheStats();
        last = now;
        samples.push(sample);
        log(sample);
      },
    });
  } finally {
    rmSync(outDir, { recursive: true, force: true });
  }
  return { samples, seconds: (performance.now() - t0) / 1000 };
}

/** V8's own share of RSS: the JS heap in use and committed, and the ArrayBuffer/external memory it tracks (MB). */
function heapSample() {
  const m = process.memoryUsage();
  return { heapMB: m.heapUsed / 2 ** 20, heapTotalMB: m.heapTotal / 2 ** 20, externalMB: m.external / 2 ** 20 };
}

/** The bind-group cache now (entries) and its misses (bind groups created) since the `before` stats. */
function bindGroupsSince(before) {
  const now = vg.debug.cacheStats();
  return { bindGroups: now.bindGroups, bindGroupsCreated: now.bindGroupMisses - before.bindGroupMisses };
}

/** Least-squares slope of y over x. */
function slope(xs, ys) {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i] - mx) * (ys[i] - my);
    den += (xs[i] - mx) ** 2;
  }
  return num / den;
}

/**
 * The verdict on samples taken after `warmup` steps: live tensors and bytes in use exactly those of the first such
 * sample, pooled bytes at most twice theirs (+64 KiB), RSS slope under `rssSlopeLimitMB` per 1,000 steps. Returns the
 * measured figures and the list of failures (empty: flat).
 */
export function judge(samples, { warmup, rssSlopeLimitMB = RSS_SLOPE_LIMIT_MB }) {
  const after = samples.filter((s) => s.step >= warmup);
  if (after.length < 2) throw new Error(`soak: need at least 2 samples at or after step ${warmup}, got ${after.length}`);
  const [first] = after;
  const failures = [];
  for (const s of after) {
    if (s.liveTensors !== first.liveTensors) failures.push(`live tensors ${first.liveTensors} at step ${first.step} but ${s.liveTensors} at step ${s.step}`);
    if (s.bytesInUse !== first.bytesInUse) failures.push(`bytes in use ${first.bytesInUse} at step ${first.step} but ${s.bytesInUse} at step ${s.step}`);
  }
  const pooledLimit = first.bytesPooled * 2 + 65536;
  const pooledMax = Math.max(...after.map((s) => s.bytesPooled));
  if (pooledMax > pooledLimit) failures.push(`pooled bytes reached ${pooledMax}, over twice the ${first.bytesPooled} at step ${first.step}`);
  const rssSlopeMBPer1000 = slope(after.map((s) => s.step), after.map((s) => s.rssMB)) * 1000;
  if (rssSlopeMBPer1000 > rssSlopeLimitMB) failures.push(`RSS grows ${rssSlopeMBPer1000.toFixed(2)} MB per 1,000 steps (limit ${rssSlopeLimitMB})`);
  const rss = after.map((s) => s.rssMB);
  return {
    warmup,
    liveTensors: first.liveTensors,
    bytesInUse: first.bytesInUse,
    pooledBytes: { min: Math.min(...after.map((s) => s.bytesPooled)), max: pooledMax, limit: pooledLimit },
    rssMB: { min: Math.min(...rss), max: Math.max(...rss) },
    rssSlopeMBPer1000,
    rssSlopeLimitMB,
    failures,
  };
}

function printRow(s) {
  const cells = [s.step, s.liveTensors, s.bytesInUse, s.bytesPooled, s.rssMB.toFixed(1), s.msPerStep.toFixed(1), s.bindGroups, s.bindGroupsCreated, s.heapMB.toFixed(1), s.heapTotalMB.toFixed(1), s.externalMB.toFixed(1)];
  console.log(cells.map((c, i) => String(c).padStart([7, 7, 12, 12, 8, 8, 11, 8, 7, 8, 8][i])).join(' '));
}

async function main() {
  const arg = (name, fallback) => {
    const at = process.argv.indexOf(name);
    if (at < 0) return fallback;
    if (!process.argv[at + 1]) throw new Error(`${name} needs a value`);
    return process.argv[at + 1];
  };
  const steps = Number(arg('--steps', 10_000));
  const every = Number(arg('--every', 500));
  const warmup = Number(arg('--warmup', 1000));
  const jsonPath = arg('--json', 'runs/soak.json');
  for (const [name, v] of [['--steps', steps], ['--every', every], ['--warmup', warmup]])
    if (!(Number.isInteger(v) && v > 0)) throw new Error(`${name} must be a positive integer, got ${v}`);
  await vg.init();
  const info = vg.backendInfo();
  console.log(`soak: unet-phantom ${JSON.stringify(SOAK_CONFIG)}, ${steps} steps, checkpoint every 1000, sample every ${every}, warm-up ${warmup}`);
  console.log(`adapter: ${info.vendor} ${info.architecture} ${info.description}; node ${process.version}`);
  console.log('   step    live  bytesInUse bytesPooled   rssMB  ms/step  bindGroups  created  heapMB heapTot extrnMB');
  const { samples, seconds } = await soak({ steps, every, checkpointEvery: 1000, log: printRow });
  const verdict = judge(samples, { warmup });
  console.log(`wall time ${seconds.toFixed(0)} s; after step ${warmup}: live tensors ${verdict.liveTensors}, bytes in use ${verdict.bytesInUse}, ` +
    `pooled ${verdict.pooledBytes.min}..${verdict.pooledBytes.max} (limit ${verdict.pooledBytes.limit}), ` +
    `RSS ${verdict.rssMB.min.toFixed(1)}..${verdict.rssMB.max.toFixed(1)} MB, slope ${verdict.rssSlopeMBPer1000.toFixed(3)} MB per 1,000 steps (limit ${verdict.rssSlopeLimitMB})`);
  mkdirSync(dirname(jsonPath), { recursive: true });
  writeFileSync(jsonPath, `${JSON.stringify({ config: SOAK_CONFIG, steps, every, adapter: info, seconds, verdict, samples }, null, 2)}\n`);
  console.log(`samples written to ${jsonPath}`);
  if (verdict.failures.length) {
    console.log(`NOT FLAT:\n  ${verdict.failures.join('\n  ')}`);
    process.exitCode = 1;
  } else console.log('flat: every series holds after warm-up');
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
