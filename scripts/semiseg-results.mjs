#!/usr/bin/env node
// The semi-supervised segmentation table of issue 14 on the embedded phantom: labelled-only, fully supervised, mean
// teacher, ACTION, ACTION++ and MONA at --labeled training subjects (default 3), each trained with --seeds training
// seeds (same split), evaluated on the 20 held-out test subjects; plus the 3-D row (VNet on the left-atrium phantom:
// labelled-only vs ACTION). Writes docs/results/semisupervised-phantom.md: per class Dice and ASD (voxels),
// mean ± sd over seeds, and beside every gain the labelled-only baseline's seed spread.
//   node scripts/semiseg-results.mjs [--seeds 0,1,2] [--labeled 3] [--out runs/semiseg] [--workers 1 --worker 0]
//   --rows 2d|3d: train only the 2-D or only the 3-D rows (the table still shows every finished run)
//   --report: no training; tabulate the finished run folders under --out (also what an interrupted run left)
// Finished runs (metrics.json with an evaluation and the same config) are reused, so the command can be resumed.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import * as vg from 'voxgrad';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const seeds = arg('seeds', '0,1,2').split(',').map(Number);
const labeled = Number(arg('labeled', 3));
const outRoot = arg('out', 'runs/semiseg');
const workers = Number(arg('workers', 1));
const worker = Number(arg('worker', 0));
const reportOnly = process.argv.includes('--report');
const recipe = vg.methods.recipes.seg;

// rows of the table: name, settings
const ROWS = [
  ['labelled only', { method: 'supervised', labeled }],
  ['fully supervised (70 subjects)', { method: 'supervised', labeled: 70 }],
  ['mean teacher', { method: 'mean-teacher', labeled }],
  ['ACTION', { method: 'action', labeled }],
  ['ACTION++', { method: 'actionpp', labeled }],
  ['MONA', { method: 'mona', labeled }],
];
const ROWS3D = [
  ['VNet labelled only', { method: 'supervised', labeled: 2, data: 'phantom3d' }],
  ['VNet ACTION', { method: 'action', labeled: 2, data: 'phantom3d' }],
];
const slug = (cfg, seed) => `${cfg.data ?? 'phantom'}-${cfg.method}-l${cfg.labeled}-s${seed}`;
// seed-major order, so an interrupted run leaves whole seeds
const jobs = seeds.flatMap((seed) => [...ROWS, ...ROWS3D].map(([name, cfg]) => ({ name, cfg, seed })));
const onlyRows = arg('rows', 'all');
const trains = (job) => onlyRows === 'all' || (onlyRows === '3d') === (job.cfg.data === 'phantom3d');

const info = await vg.init();
if (!reportOnly) {
  mkdirSync(outRoot, { recursive: true });
  for (const [i, job] of jobs.entries()) {
    if (i % workers !== worker || !trains(job)) continue;
    const outDir = `${outRoot}/${slug(job.cfg, job.seed)}`;
    const config = { ...job.cfg, seed: job.seed };
    const prev = await vg.train.readMetrics(outDir);
    // the other dimensionality's network settings (VNet filters for 2-D data, UNet widths for 3-D) do not change a run
    const unused = new Set(config.data === 'phantom3d' ? ['features'] : ['vnetFilters']);
    const full = (x) => JSON.stringify(Object.entries({ ...recipe.defaults, ...x }).filter(([k]) => !unused.has(k)).sort());
    if (prev?.evaluation && prev.finished !== false && full(prev.config) === full(config)) continue;
    const t0 = Date.now();
    console.log(`${new Date().toISOString()} ${outDir}`);
    const r = await recipe.train({ config, outDir });
    console.log(`  ${((Date.now() - t0) / 1000).toFixed(0)} s, mean Dice ${r.evaluation.meanDice.toFixed(4)}`);
  }
  if (workers > 1) process.exit(0);
}

// ---- the table -----------------------------------------------------------------------------------------------------
const runs = {};
for (const job of jobs) {
  const file = `${outRoot}/${slug(job.cfg, job.seed)}/metrics.json`;
  if (!existsSync(file)) continue;
  const m = JSON.parse(readFileSync(file, 'utf8'));
  if (!m.evaluation) continue;
  (runs[job.name] ??= []).push({ seed: job.seed, ev: m.evaluation, seconds: m.seconds });
}
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const sd = (xs) => (xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean(xs)) ** 2, 0) / (xs.length - 1)) : NaN);
const fmt = (xs, scale, digits) => (xs.length ? `${(mean(xs) * scale).toFixed(digits)} ± ${xs.length > 1 ? (sd(xs) * scale).toFixed(digits) : '–'}` : '–');
const table = (rows, classes, baseName) => {
  const base = runs[baseName] ?? [];
  const baseDice = base.map((r) => r.ev.meanDice);
  const head = ['method', 'seeds', ...classes.map((c) => `${c} Dice %`), 'mean Dice %', `Δ mean Dice vs labelled only (baseline sd ${baseDice.length > 1 ? (sd(baseDice) * 100).toFixed(1) : '–'})`, ...classes.map((c) => `${c} ASD`), 'mean ASD', 'train s / run'];
  const lines = [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`];
  for (const [name] of rows) {
    const rs = runs[name] ?? [];
    if (!rs.length) {
      lines.push(`| ${name} | 0 | ${head.slice(2).map(() => 'not run').join(' | ')} |`);
      continue;
    }
    const dice = rs.map((r) => r.ev.meanDice);
    const gain = name === baseName || !baseDice.length ? '–' : `${((mean(dice) - mean(baseDice)) * 100).toFixed(1)}`;
    lines.push(
      `| ${name} | ${rs.map((r) => r.seed).join(',')} | ${classes.map((c) => fmt(rs.map((r) => r.ev.dice[c]), 100, 1)).join(' | ')} | ${fmt(dice, 100, 1)} | ${gain} | ` +
        `${classes.map((c) => fmt(rs.map((r) => r.ev.asd[c]), 1, 2)).join(' | ')} | ${fmt(rs.map((r) => r.ev.meanAsd), 1, 2)} | ${mean(rs.map((r) => r.seconds)).toFixed(0)} |`,
    );
  }
  return lines.join('\n');
};
const complete = jobs.every((j) => existsSync(`${outRoot}/${slug(j.cfg, j.seed)}/metrics.json`));
const d = recipe.defaults;
const doc = `# Semi-supervised segmentation on the embedded phantom (ACTION, ACTION++, MONA)

${complete ? '' : '**PARTIAL: not every run of the command finished; rows show the seeds that did.**\n\n'}**This is not the papers' data.** 2-D: the procedural cardiac phantom (\`vg.data.cardiacPhantomSplit\`), subjects split
70 / 10 / 20 (train / validation / test) as ACDC's patients, ${d.frames} frames (ED, ES) per subject, ${d.size}×${d.size} pixels, classes
RV, myocardium, LV; ${labeled} labelled training subjects, the other ${70 - labeled} unlabelled. 3-D: the procedural left-atrium phantom
(\`vg.data.leftAtriumPhantoms\`), ${d.size}³ voxels, 2 of 35 training volumes labelled, 33 unlabelled, 15 held-out volumes.

Made by \`node scripts/semiseg-results.mjs --seeds ${seeds.join(',')} --labeled ${labeled}\` (${new Date().toISOString().slice(0, 10)}) on ${info.description || info.vendor},
${os.cpus().length} CPU cores shared with other jobs (timings are indicative only).

Protocol (\`voxgrad train seg\` defaults): UNet widths [${d.features}] (the papers: 16…256), ${d.batchSize} labelled + ${d.batchSize} unlabelled
images per step, ${d.steps} fine-tuning steps, ${d.pretrainSteps} pre-training steps for ACTION, ACTION++ and MONA (the papers:
10k–30k iterations per stage), SGD lr ${d.lr} (the papers: 0.01; raised for the short schedule) with poly decay per stage, EMA teacher m = ${d.emaDecay}, pixel contrasts with ${d.queries} queries per class
and ${d.negatives} negatives (the papers: 256 and 512), embedding sizes ${d.globalDim} (global) and ${d.repDim} (dense). The labelled-only
and fully supervised rows train the same ${d.steps} steps. Metrics per class on each test image, then averaged: Dice (%) and
ASD in pixels (medpy's asd: prediction surface to truth surface; an empty prediction scores the image diagonal).
Each row: mean ± sd over the training seeds listed (same split, different initialisation and sampling). Δ: the row's mean
Dice minus the labelled-only mean, in points; the labelled-only seed sd is in the column header for scale.

## 2-D cardiac phantom, ${labeled} labelled subjects

${table(ROWS, ['RV', 'Myo', 'LV'], 'labelled only')}

## 3-D left-atrium phantom (VNet, ${d.vnetFilters} base filters)

${table(ROWS3D, ['LA'], 'VNet labelled only')}
`;
const marker = '<!-- ANALYSIS -->';
const path = 'docs/results/semisupervised-phantom.md';
const kept = existsSync(path) && readFileSync(path, 'utf8').includes(marker) ? readFileSync(path, 'utf8').split(marker)[1] : '\n\nReading of the numbers: (to be written after the runs)\n';
mkdirSync('docs/results', { recursive: true });
writeFileSync(path, `${doc}\n${marker}${kept}`);
console.log(`wrote ${path}${complete ? '' : ' (partial)'}`);
