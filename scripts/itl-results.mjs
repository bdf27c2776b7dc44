#!/usr/bin/env node
// ITL vs naive sequential fine-tuning vs joint training over the five phantom sites: the `itl` recipe with each
// method and several training seeds (same data, model initialisation, optimiser and schedule per seed); writes
// docs/results/itl-phantom.md with the per-site Dice matrix R[stage][site] (mean ± sd over seeds) of each method,
// backward transfer, the final average Dice and the final per-site Jaccard/HD95/ASD, each gain beside the naive
// baseline's seed spread.
//   node scripts/itl-results.mjs [--first-steps 220] [--steps 20] [--batch 8] [--size 32] [--train-subjects 8] [--test-subjects 4]
//     [--seeds 0,1,2] [--methods naive,itl,joint] [--out runs/itl-bench]
//   --report: no training; tabulate the finished run folders under --out (runs can be trained by separate processes)
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import * as vg from 'voxgrad';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const firstSteps = Number(arg('first-steps', 220));
const steps = Number(arg('steps', 20));
const batchSize = Number(arg('batch', 8));
const size = Number(arg('size', 32));
const trainSubjects = Number(arg('train-subjects', 8));
const testSubjects = Number(arg('test-subjects', 4));
const seeds = arg('seeds', '0,1,2').split(',').map(Number);
const methods = arg('methods', 'naive,itl,joint').split(',');
const outRoot = arg('out', 'runs/itl-bench');
const results = arg('results', 'docs/results');
const reportOnly = process.argv.includes('--report');
mkdirSync(results, { recursive: true });

const info = await vg.init();
const recipe = vg.methods.recipes.itl;
const d = recipe.defaults;
const common = { firstSteps, steps, batchSize, size, trainSubjects, testSubjects, checkpointEvery: firstSteps + 4 * steps };
const log = (m) => console.log(`  ${m}`);
const finished = async (dir) => (await vg.train.readMetrics(dir))?.finished === true;
// naive and ITL are the same computation on the first site (λ_1 = 0, same initial weights, batches and dropout
// stream), so the first stage is trained once per seed and both resume from its checkpoint
async function firstStage(seed) {
  const shared = `${outRoot}/stage1-seed${seed}`;
  if (existsSync(`${shared}/checkpoint.safetensors`)) return shared;
  console.log(`stage 1 (site A) seed ${seed}, shared by naive and itl`);
  let done = 0;
  await recipe.train({ config: { ...d, ...common, method: 'naive', seed }, outDir: shared, log, onStep: (s) => (done = s), shouldStop: () => done >= firstSteps });
  return shared;
}
const runs = [];
for (const seed of seeds)
  for (const method of ['naive', 'itl', 'joint']) {
    const outDir = `${outRoot}/${method}-seed${seed}`;
    const config = { ...d, ...common, method, seed };
    if (!reportOnly && methods.includes(method) && !(await finished(outDir))) {
      console.log(`${method} seed ${seed}`);
      if (method === 'joint') await recipe.train({ config, outDir, log });
      else {
        const shared = await firstStage(seed);
        // the resumed run keeps the first stage's history and time from the shared run folder
        mkdirSync(outDir, { recursive: true });
        copyFileSync(`${shared}/metrics.json`, `${outDir}/metrics.json`);
        await recipe.train({ config, outDir, log, resume: `${shared}/checkpoint.safetensors` });
      }
    }
    const m = await vg.train.readMetrics(outDir);
    if (m?.finished && Object.entries(common).every(([k, v]) => m.config[k] === v)) runs.push({ method, seed, seconds: m.seconds, evaluation: m.evaluation });
  }

const stats = (xs) => {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1)) : NaN;
  return { mean, sd, n: xs.length };
};
const fmt = (s, dp) => `${s.mean.toFixed(dp)} ± ${Number.isNaN(s.sd) ? '–' : s.sd.toFixed(dp)}`;
const of = (method) => runs.filter((r) => r.method === method).map((r) => r.evaluation);
const present = ['naive', 'itl', 'joint'].filter((m) => of(m).length);
const sites = vg.data.PHANTOM_SITES.map((s) => s.name);
const NAMES = { naive: 'naive sequential fine-tuning', itl: 'ITL (site-level distillation)', joint: 'joint training (all sites)' };
const lines = [];

for (const method of present) {
  const ev = of(method);
  lines.push(`### ${NAMES[method]}: mean Dice on each site's test frames after each stage (${ev.length} seeds)`, '');
  lines.push(`| after stage | ${sites.map((s) => `site ${s}`).join(' | ')} | mean |`);
  lines.push(`| --- | ${sites.map(() => '---').join(' | ')} | --- |`);
  for (let i = 0; i < sites.length; i++) {
    const cells = sites.map((_, j) => fmt(stats(ev.map((e) => e.diceMatrix[i][j])), 3));
    const rowMean = fmt(stats(ev.map((e) => e.diceMatrix[i].reduce((a, b) => a + b, 0) / sites.length)), 3);
    lines.push(`| ${i + 1} (${method === 'joint' ? 'all sites' : `site ${sites[i]}`}) | ${cells.join(' | ')} | ${rowMean} |`);
  }
  lines.push('');
}

// summary: BWT, final mean Dice and the final per-site means of Jaccard, HD95, ASD; gains against naive
const SUMMARY = [
  ['backward transfer (Dice)', (e) => e.backwardTransfer, 3],
  ['final mean Dice', (e) => e.finalMeanDice, 3],
  ['final mean Jaccard', (e) => meanOver(e, 'meanJaccard'), 3],
  ['final HD95 (mm)', (e) => meanOver(e, 'meanHd95Mm'), 2],
  ['final ASD (mm)', (e) => meanOver(e, 'meanAsdMm'), 2],
];
function meanOver(e, key) {
  return sites.reduce((a, s) => a + e.perSite[s][key], 0) / sites.length;
}
const base = of('naive');
lines.push('### Summary (mean ± sd over seeds; Δ: difference of means from naive, whose ± is its own seed spread)', '');
lines.push(`| method | seeds | ${SUMMARY.map(([n]) => n).join(' | ')} |`);
lines.push(`| --- | --- | ${SUMMARY.map(() => '---').join(' | ')} |`);
for (const method of present) {
  const ev = of(method);
  const cells = SUMMARY.map(([, pick, dp]) => {
    const s = stats(ev.map(pick));
    if (method === 'naive' || !base.length) return fmt(s, dp);
    const delta = s.mean - stats(base.map(pick)).mean;
    return `${fmt(s, dp)} (Δ ${delta >= 0 ? '+' : ''}${delta.toFixed(dp)})`;
  });
  lines.push(`| ${NAMES[method]} | ${ev.length} | ${cells.join(' | ')} |`);
}
lines.push('');
lines.push('Final model, per site (mean ± sd over seeds): Dice / HD95 (mm)', '');
lines.push(`| method | ${sites.map((s) => `site ${s}`).join(' | ')} |`);
lines.push(`| --- | ${sites.map(() => '---').join(' | ')} |`);
for (const method of present) {
  const ev = of(method);
  const cells = sites.map((s) => `${fmt(stats(ev.map((e) => e.perSite[s].meanDice)), 3)} / ${fmt(stats(ev.map((e) => e.perSite[s].meanHd95Mm)), 1)}`);
  lines.push(`| ${method} | ${cells.join(' | ')} |`);
}
lines.push('');

const secs = present.map((m) => `${m} ${stats(runs.filter((r) => r.method === m).map((r) => r.seconds)).mean.toFixed(0)} s`).join(', ');
const expected = methods.length * seeds.length;
const partial = runs.length < expected ? `\n**Partial:** ${runs.length} of the ${expected} runs asked for finished; the missing ones are absent from the tables.\n` : '';
const siteList = vg.data.PHANTOM_SITES.map((s) => `${s.name} (γ ${s.gamma}, noise ${s.noise}, bias ${s.biasField}, fov ${s.fov} mm, blur ${s.blur})`).join(', ');
const md = `# ITL vs naive sequential fine-tuning vs joint training on five phantom sites

**This is not the paper's data.** No prostate MRI was used: the five "sites" are renderings of the procedural cardiac
phantom (vg.data.PHANTOM_SITES: ${siteList}); labels RV, myocardium, LV; ${size}×${size} pixels.
${partial}
Made by \`node scripts/itl-results.mjs --first-steps ${firstSteps} --steps ${steps} --batch ${batchSize} --size ${size} --train-subjects ${trainSubjects} --test-subjects ${testSubjects} --seeds ${seeds.join(',')} --methods ${methods.join(',')}${reportOnly ? ' --report' : ''}\`${reportOnly ? ' over run folders trained by the same command with one --seeds value each (three processes side by side)' : ''}
on ${info.description}, under load from other jobs (mean training + evaluation time per run: ${secs}).

Protocol: the \`itl\` recipe (src/methods/itl-recipe.ts). ResILNet: ResNet-18's layout (torchvision's blocks and keys)
at base width ${d.width} instead of 64 (channels ${[d.width, d.width, 2 * d.width, 4 * d.width, 8 * d.width].join(', ')}) and decoder featureBase ${d.featureBase},
from its own initialisation (no pretrained weights), the same initial weights for every method of a seed. Five stages of batch
${batchSize}: ${firstSteps} steps on the first (site A, from scratch), ${steps} on each later one (${firstSteps + 4 * steps} steps in all), Adam lr ${d.lr} with a poly
decay (power 0.9) restarted at each stage, no augmentation. naive and ITL share the first stage (identical computation:
λ_1 = 0): it is trained once per seed and both resume from its checkpoint; its time counts in both.
Per site ${trainSubjects} training subjects (${2 * trainSubjects} ED/ES frames) and ${testSubjects} held-out test subjects (${2 * testSubjects} frames), disjoint
subject seeds per site. naive: stage k trains on site k with 0.5 (CE + Dice). ITL: the same plus λ_k · τ² · KL(teacher ‖
student) with λ_k = ${d.lambda} · (k − 1)/k, τ = ${d.temperature}, the teacher decoder a frozen copy of the student taken at the start of
stage k (docs/methods/itl.md). joint: every stage draws its batches from all five sites' frames. After each stage the
student is scored on every site's test frames: Dice over the test set per structure, averaged over RV, myocardium and
LV. Backward transfer = mean over sites A..D of (R[5][j] − R[j][j]) (negative = forgetting; for joint, R[j][j] is not
a "just trained" score, so its BWT only measures drift). HD95 and ASD per frame (a structure predicted empty scores
the image diagonal), averaged over structures, frames and sites.

${lines.join('\n')}`;
await vg.train.writeFile(`${results}/itl-phantom.md`, md);
console.log(md);
process.exit(0);
