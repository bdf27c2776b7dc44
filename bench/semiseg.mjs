// One ACTION fine-tuning step (issue 14) at the `seg` recipe's defaults (2 + 2 images of 32², UNet widths 4…64,
// 16-dim dense head, 64 queries × 128 negatives per class): voxgrad's wall time per step as the recipe runs it (teacher
// pseudo-labels, strong view, student features, L_sup + L_unsup + 0.01·L_anco through the fused infoNCE, backward,
// SGD, EMA; the step awaits its loss terms), and the same step in PyTorch CPU (bench/torch_action_step.py: the
// official code's materialised [Q, 1 + J, D] logits). Alternating blocks of steps, so both see the same machine load.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as vg from 'voxgrad';
import { f1, row } from './harness.mjs';
import { median } from './stats.mjs';

const PYTHON = process.env.VOXGRAD_BENCH_PYTHON ?? '/usr/bin/python3';
const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'torch_action_step.py');
const BLOCK = 3;
const ROUNDS = 2;

async function voxgradBlock() {
  const times = [];
  let last = 0;
  // BLOCK + 1 steps: the first compiles pipelines and is left out
  await vg.methods.seg.train({
    config: { method: 'action', pretrainSteps: 0, steps: BLOCK + 1 },
    onStep: (s) => {
      const now = performance.now();
      if (s > 0) times.push(now - last);
      last = now;
    },
  });
  return times;
}

function torchBlock(threads) {
  if (!existsSync(PYTHON)) return { error: `${PYTHON} not found` };
  const d = vg.methods.seg.defaults;
  const spec = { size: d.size, batch: d.batchSize, features: d.features, rep: d.repDim, queries: d.queries, negatives: d.negatives, repeats: BLOCK, threads };
  const r = spawnSync(PYTHON, [SCRIPT, JSON.stringify(spec)], { encoding: 'utf8', timeout: 600_000 });
  const line = r.stdout?.trim().split('\n').at(-1);
  if (r.status !== 0 || !line?.startsWith('{')) return { error: `torch step failed (exit ${r.status}): ${(r.stderr || '').trim().split('\n').at(-1)}` };
  return JSON.parse(line);
}

export async function benchSemiseg() {
  const v = [];
  const t = [];
  let torchInfo = null;
  for (let round = 0; round < ROUNDS; round++) {
    v.push(...(await voxgradBlock()));
    const tb = torchBlock(1);
    if (tb.error) return { error: tb.error };
    torchInfo = tb;
    t.push(...tb.stepMs);
  }
  const [vm, tm] = [median(v), median(t)];
  console.log(`\nACTION fine-tuning step at the seg recipe's defaults (wall ms, median of ${v.length}; PyTorch CPU ${torchInfo.threads} thread, ${torchInfo.torch})`);
  const widths = [16, 12, 12, 22];
  console.log(row(['step', 'voxgrad ms', 'torch ms', 'voxgrad vs torch'], widths));
  console.log(row(['ACTION fine-tune', f1(vm), f1(tm), tm / vm >= 1 ? `${(tm / vm).toFixed(2)}x faster` : `${(tm / vm).toFixed(2)}x (slower)`], widths));
  return { voxgradMs: v, torchMs: t, voxgradMedian: vm, torchMedian: tm, torch: torchInfo.torch, threads: torchInfo.threads };
}

// `node bench/semiseg.mjs` runs this section alone
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await vg.init();
  console.log(JSON.stringify(await benchSemiseg()));
}
