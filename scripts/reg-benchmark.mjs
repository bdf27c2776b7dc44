#!/usr/bin/env node
// The registration benchmark of issue 5 on the embedded phantom: VoxelMorph trained with the MSE baseline and with
// each paper's method (heteroscedastic uncertainty, AdaCS, BIM) on each nuisance variant of the phantom's ED→ES
// pairs, evaluated on held-out pairs; writes docs/results/registration-phantom.md (+ .csv) with paired t-tests of
// each method against the MSE baseline on per-pair Dice. Every method gets the same number of displacement-network
// steps (--steps); the two-network methods add their auxiliary-only warm-start epoch on top. Text after the
// ANALYSIS marker line of an existing results file is kept (the hand-written reading of the numbers).
//   node scripts/reg-benchmark.mjs [--steps 200] [--batch 4] [--test 100] [--variants clean,speckle] [--out runs/reg-bench]
//   --seeds 1 --seed-variants clean: the MSE baseline retrained with these training seeds (same data), for scale
//   --results DIR: where the tables and figures go (default docs/results)
//   --report: no training; tabulate the run folders already under --out (e.g. after an interrupted benchmark)
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import * as vg from 'voxgrad';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const steps = Number(arg('steps', 200));
const batchSize = Number(arg('batch', 4));
const testPairs = Number(arg('test', 100));
const variants = arg('variants', vg.data.PHANTOM_VARIANTS.join(',')).split(',');
const methods = arg('methods', 'mse,hetero,adacs,bim').split(',');
// the baseline retrained with these training seeds on these variants: how far training noise alone moves the numbers
const extraSeeds = arg('seeds', '1').split(',').filter((x) => x !== '').map(Number);
const seedVariants = arg('seed-variants', 'clean').split(',').filter((x) => x !== '');
const outRoot = arg('out', 'runs/reg-bench');
const reportOnly = process.argv.includes('--report');
const results = arg('results', 'docs/results');
mkdirSync(results, { recursive: true });

const info = await vg.init();
const recipe = vg.methods.recipes.reg;
const common = { backbone: 'voxelmorph', size: 64, steps, batchSize, testPairs, trainPairs: 200, stepsPerEpoch: 50, warmStartEpochs: 1 };
const rows = [];
const perPair = {};
const done = [];
const reused = [];
// a setting a run's recorded config lacks had its default (settings added later default to the earlier behaviour)
const sameConfig = (a, b) => {
  const full = (x) => JSON.stringify(Object.entries({ ...recipe.defaults, ...x }).sort());
  return a !== undefined && full(a) === full(b);
};
/** Trains one run (or evaluates its checkpoint when a finished run with this config is there); its per-pair rows. */
async function runOne(variant, method, trainSeed) {
  const name = trainSeed === undefined ? `${variant}-${method}` : `${variant}-${method}-seed${trainSeed}`;
  const outDir = `${outRoot}/${name}`;
  let evaluation;
  let seconds;
  if (reportOnly) {
    if (!existsSync(`${outDir}/pairs.csv`)) return null;
    // the evaluation is the mean of the per-pair rows; the time only where a metrics.json recorded it
    seconds = (await vg.train.readMetrics(outDir))?.seconds ?? NaN;
  } else {
    const config = { ...recipe.defaults, ...common, variant, method, ...(trainSeed === undefined ? {} : { trainSeed }) };
    const log = (m) => console.log(`  ${m}`);
    const previous = await vg.train.readMetrics(outDir);
    // (run folders of earlier versions of this script have no `finished`: only they and finished runs are reused)
    if (previous && previous.finished !== false && sameConfig(previous.config, config) && existsSync(`${outDir}/checkpoint.safetensors`)) {
      // trained by an earlier invocation with exactly this config: its checkpoint is evaluated again (the current
      // evaluation code, bit-identical Dice), not retrained
      evaluation = await recipe.evaluate({ config, outDir, checkpoint: `${outDir}/checkpoint.safetensors`, log });
      seconds = previous.seconds;
      await vg.train.writeMetrics(outDir, { ...previous, evaluation });
      reused.push(name);
    } else {
      // the recipe writes the run folder (config.json, metrics.json, loss.png, checkpoint, pairs.csv, figure.png)
      const r = await recipe.train({ config, outDir, log });
      seconds = r.seconds;
      evaluation = r.evaluation;
    }
  }
  const pairs = await vg.io.readCsv(`${outDir}/pairs.csv`);
  evaluation ??= vg.metrics.compareRuns([{ name, rows: pairs }], { tested: [] })[0];
  console.log(`${name}: Dice ${evaluation.dice.toFixed(4)} Myo ${evaluation.dice_Myo.toFixed(4)} (unregistered ${evaluation.dice0.toFixed(4)}) in ${seconds.toFixed(0)} s`);
  return { outDir, pairs, evaluation, seconds };
}

for (const variant of variants)
  for (const method of methods) {
    const r = await runOne(variant, method);
    if (!r) continue;
    perPair[`${variant}/${method}`] = r.pairs;
    rows.push({ variant, method, seconds: r.seconds, ...r.evaluation });
    done.push(`${variant}/${method}`);
    await vg.train.writeFile(`${results}/registration-phantom-${variant}-${method}.png`, readFileSync(`${r.outDir}/figure.png`));
  }

// training noise: the baseline retrained with other seeds (initialisation and batch order; the same data), compared
// with the seed of the main table as a method would be
const noise = [];
for (const variant of seedVariants) {
  const base = perPair[`${variant}/mse`];
  if (!base) continue;
  const runs = [{ name: `${steps} steps, seed 0 (the table's)`, rows: base }];
  for (const k of extraSeeds) {
    const r = await runOne(variant, 'mse', k);
    if (r) runs.push({ name: `seed ${k}`, rows: r.pairs });
  }
  for (const c of vg.metrics.compareRuns(runs, { tested: ['dice', 'dice_Myo'] }))
    noise.push({ variant, 'MSE baseline': c.run, Dice: c.dice.toFixed(4), 'Δ vs seed 0': c['Δ dice'] === undefined ? '' : c['Δ dice'].toFixed(4), p: c['p dice'] === undefined ? '' : c['p dice'].toExponential(1), 'Myo Dice': c.dice_Myo.toFixed(4) });
}

// per variant, each method against the MSE baseline: means and paired t-tests on per-pair Dice (vg.metrics.compareRuns)
const fmt = (x, d = 4) => (Number.isFinite(x) ? x.toFixed(d) : String(x));
const NAMES = { mse: 'MSE (baseline)', hetero: 'heteroscedastic', adacs: 'AdaCS', bim: 'BIM', ncc: 'NCC' };
const table = [];
for (const variant of variants) {
  const mine = rows.filter((r) => r.variant === variant);
  if (mine.length === 0) continue;
  const hasBase = mine.some((r) => r.method === 'mse');
  const compared = vg.metrics.compareRuns(
    mine.map((r) => ({ name: r.method, rows: perPair[`${variant}/${r.method}`] })),
    { baseline: hasBase ? 'mse' : mine[0].method, tested: hasBase ? ['dice', 'dice_Myo'] : [] },
  );
  for (const [i, c] of compared.entries())
    table.push({
      variant,
      method: NAMES[c.run],
      'Dice (mean of RV, Myo, LV)': fmt(c.dice),
      'Δ vs MSE': c['Δ dice'] === undefined ? '' : fmt(c['Δ dice']),
      p: c['p dice'] === undefined ? '' : c['p dice'].toExponential(1),
      'Myo Dice': fmt(c.dice_Myo),
      'Myo p': c['p dice_Myo'] === undefined ? '' : c['p dice_Myo'].toExponential(1),
      'Myo HD95 (px)': fmt(c.hd95_Myo, 2),
      'Myo HD (px)': fmt(c.hd_Myo, 2),
      'Myo ASD (px)': fmt(c.asd_Myo, 2),
      'folding %': fmt(100 * c.folding, 3),
      'train s': fmt(mine[i].seconds, 0),
    });
}
// what the auxiliary networks learned, against the phantom's truth (pairs.csv columns of the evaluation's checks)
const finiteMean = (xs) => {
  const f = xs.filter(Number.isFinite);
  return f.length ? f.reduce((a, b) => a + b, 0) / f.length : NaN;
};
// '—': the variant has no ground truth for that check (no noise map, no pixels without correspondence)
const checkCell = (xs) => {
  const m = finiteMean(xs);
  return Number.isFinite(m) ? m.toFixed(3) : '—';
};
const checks = [];
for (const row of rows) {
  const p = perPair[`${row.variant}/${row.method}`];
  if (row.method === 'hetero')
    checks.push({ variant: row.variant, method: 'heteroscedastic', 'r(log σ² predicted, log σ² true)': checkCell(p.map((x) => x.corr_logvar)), 'score on missing': '', 'score elsewhere': '', 'AUROC missing': '' });
  if (row.method === 'adacs')
    checks.push({
      variant: row.variant,
      method: 'AdaCS',
      'r(log σ² predicted, log σ² true)': '',
      'score on missing': checkCell(p.map((x) => x.score_missing)),
      'score elsewhere': checkCell(p.map((x) => x.score_kept)),
      'AUROC missing': checkCell(p.map((x) => x.auroc_missing)),
    });
}
const shown = variants.filter((v) => rows.some((r) => r.variant === v));
const unreg = Object.fromEntries(shown.map((v) => [v, rows.find((r) => r.variant === v)?.dice0]));
const command = `node scripts/reg-benchmark.mjs --steps ${steps} --batch ${batchSize} --test ${testPairs} --variants ${variants.join(',')} --methods ${methods.join(',')} --seeds ${extraSeeds.join(',')} --seed-variants ${seedVariants.join(',')}`;
const md = `# Registration benchmark on the embedded phantom (VoxelMorph)

**This is not the papers' data.** The pairs are the procedural cardiac phantom's ED→ES frames (voxgrad's
\`vg.data.phantomPairs\`), 64×64 pixels (2.5 mm), in four seeded nuisance variants. No real ACDC or CAMUS images
were used.

| variant | nuisance |
| --- | --- |
| clean | the phantom as generated (mild Rician noise and bias field) |
| heteroscedastic | input-dependent noise σ ∝ (0.2 + I)·smooth field, independent in ED and ES |
| speckle | multiplicative Rayleigh speckle inside a sector field of view, zero outside |
| missing-correspondence | a structure present in one frame only, a dropout wedge, a different gain per frame |

Made by \`${command}\` (${new Date().toISOString().slice(0, 10)}; ${fmt(rows.reduce((a, r) => a + r.seconds, 0) / 60, 0)} min of training and evaluation) on
${info.vendor} ${info.architecture} (${info.description}), ${os.cpus().length} CPU cores.

Protocol: VoxelMorph (VxmDense, enc [16,32,32,32], dec [32,32,32,32,32,16,16], diffeomorphic, 7 steps at half
resolution, bidirectional), 200 training pairs, ${steps} displacement-network steps of batch ${batchSize} for every method, Adam lr 1e-3,
λ = 0.01 Grad (×2), masked losses. The two-network methods warm-start as the papers (50 steps motion only, 50
steps auxiliary only, then both every step) and run the auxiliary-only 50 steps on top, ${steps + common.stepsPerEpoch} steps in all, as AdaCS's
\`epochs + 2W\` schedule does; the papers' stop-gradients; γ = 0.5 with the paper's SNR form, β-NLL β = 0.5; AdaCS α = 0.02, β = 1.5, s = 50; BIM ν = 0.4,
λ = 0.02 on the mean per-pixel strain energy (voxel units). The papers train 150–300 epochs of 100 steps at lr 1e-4;
this is a short schedule for a software adapter. Evaluation: ${testPairs} held-out pairs per variant (other subjects), moving
labels warped with nearest, Dice per structure; HD95, HD and ASD of the myocardium in pixels (medpy's definitions; ASD
from the fixed surface to the warped one, as the papers' code), folding =
fraction of pixels with |J| ≤ 0. p: paired t-test (two-sided) of per-pair Dice against the MSE baseline of the same
variant. Unregistered Dice: ${shown.map((v) => `${v} ${fmt(unreg[v])}`).join(', ')}.${done.length < variants.length * methods.length ? `\n\n**Incomplete:** ${done.length} of ${variants.length * methods.length} runs (${done.join(', ')}); the others did not finish in the time this run had.` : ''}

${vg.io.markdownTable(table)}
${reused.length ? `\nRuns trained by an earlier invocation of the same command with the same settings and evaluated again from their checkpoints: ${reused.join(', ')}.\n` : ''}
What the auxiliary networks learned, on the same test pairs, against the phantom's ground truth: Pearson's r between
the variance network's log σ² (forward direction) and the true log noise variance of fixed − moving (heteroscedastic
variant only; within the background mask); the mean AdaCS score on the pixels without correspondence and elsewhere,
and the AUROC of 1 − score for finding them (missing-correspondence variant only). Means over the pairs where defined;
— where the variant has no such ground truth.

${checks.length ? vg.io.markdownTable(checks) : '(no two-network runs)'}

Training noise: the MSE baseline retrained with other training seeds (network initialisation and batch order; the same
training and test pairs), compared with the table's seed-0 baseline exactly as the methods are. A paired t-test over
test pairs holds the trained networks fixed, so it does not see this source of variation: a difference between two
methods is only evidence for a method when it is larger than these.

${noise.length ? vg.io.markdownTable(noise) : '(not run)'}

Per-pair rows: \`registration-phantom.csv\`. Figures of the first test pair, \`registration-phantom-<variant>-<method>.png\`:
fixed, moving and warped images with their labels and the residual |fixed − warped|; the warped grid, flow colours,
Jacobian determinant, and the variance network's log σ² or AdaCS's correspondence score.
`;
const MARKER = '<!-- ANALYSIS: hand-written, kept when the benchmark reruns -->';
const previous = existsSync(`${results}/registration-phantom.md`) ? readFileSync(`${results}/registration-phantom.md`, 'utf8') : '';
const analysis = previous.includes(MARKER) ? previous.slice(previous.indexOf(MARKER)) : `${MARKER}\n`;
await vg.train.writeFile(`${results}/registration-phantom.md`, `${md}\n${analysis}`);
const flat = rows.flatMap((r) => perPair[`${r.variant}/${r.method}`].map((p) => ({ variant: r.variant, method: r.method, ...p })));
await vg.io.writeCsv(`${results}/registration-phantom.csv`, flat);
console.log(md);
process.exit(0);
