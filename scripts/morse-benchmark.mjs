#!/usr/bin/env node
// MORSE against its backbone alone: the `morse` recipe with --method unet (the baseline) and --method morse, each with
// several training seeds, the same data, augmentation, optimiser and schedule, on the embedded cardiac phantom (UNet2D;
// writes docs/results/morse-phantom.md) or with --data phantom3d on the left-atrium phantom (VNet; writes
// docs/results/morse-phantom3d.md): mean ± sd over seeds of Dice, Jaccard, HD95 and ASD of the coarse output and, for
// MORSE, of the refined output, and each difference beside the baseline's seed spread.
//   node scripts/morse-benchmark.mjs [--data phantom|phantom3d] [--steps 120] [--batch 4] [--size 64]
//     [--train-subjects 32] [--test-subjects 8] [--seeds 0,1,2] [--methods unet,morse] [--out runs/morse-bench]
//   --report: no training; tabulate the finished run folders under --out (runs can be trained by separate processes)
import { existsSync, mkdirSync } from 'node:fs';
import * as vg from 'voxgrad';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const data = arg('data', 'phantom');
const is3d = data === 'phantom3d';
const steps = Number(arg('steps', 120));
const batchSize = Number(arg('batch', 4));
const size = Number(arg('size', 64));
const trainSubjects = Number(arg('train-subjects', 32));
const testSubjects = Number(arg('test-subjects', 8));
const seeds = arg('seeds', '0,1,2').split(',').map(Number);
const methods = arg('methods', 'unet,morse').split(',');
const outRoot = arg('out', `runs/morse-bench${is3d ? '-3d' : ''}`);
const results = arg('results', 'docs/results');
const reportOnly = process.argv.includes('--report');
mkdirSync(results, { recursive: true });

const info = await vg.init();
const recipe = vg.methods.recipes.morse;
// PointRend's 2048 training and 8192 subdivision points at 256², scaled by the pixel (voxel) count
const scale = size ** (is3d ? 3 : 2) / 256 ** 2;
// the 3-D heads are as wide as VNet's finest maps allow at 4 base filters (the MoE's 3×3×3 gate is most of a step)
const heads3d = is3d ? { moeWidth: 16, moeOut: 16 } : {};
const common = { data, steps, batchSize, size, trainSubjects, testSubjects, trainPoints: Math.round(2048 * scale), subdivisionPoints: Math.round(8192 * scale), checkpointEvery: steps, ...heads3d };
const cfg = { ...recipe.defaults, ...common };
const backboneName = is3d ? `VNet (${cfg.vnetFilters} base filters)` : 'UNet2D';
const unit = is3d ? 'voxels' : 'mm';
const runs = [];
for (const method of ['unet', 'morse', 'morse-implicit'])
  for (const seed of seeds) {
    const outDir = `${outRoot}/${method}-seed${seed}`;
    const config = { ...cfg, method: method === 'unet' ? 'unet' : 'morse', implicit: method === 'morse-implicit', seed };
    if (!reportOnly && methods.includes(method) && !existsSync(`${outDir}/metrics.json`)) {
      console.log(`${method} seed ${seed}`);
      await recipe.train({ config, outDir, log: (m) => console.log(`  ${m}`) });
    }
    const m = await vg.train.readMetrics(outDir);
    if (m?.finished && Object.entries(common).every(([k, v]) => m.config[k] === v)) runs.push({ method, seed, seconds: m.seconds, evaluation: m.evaluation });
  }

const KEYS = [
  ['meanDice', 'Dice', 4],
  ['meanJaccard', 'Jaccard', 4],
  ['meanHd95Mm', `HD95 (${unit})`, 2],
  ['meanAsdMm', `ASD (${unit})`, 2],
];
const stats = (xs) => {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1)) : NaN;
  return { mean, sd, n: xs.length };
};
const fmt = (s, d) => `${s.mean.toFixed(d)} ± ${Number.isNaN(s.sd) ? '–' : s.sd.toFixed(d)}`;
const rowsOf = (method, output) => runs.filter((r) => r.method === method && r.evaluation?.[output]).map((r) => r.evaluation[output]);
const base = rowsOf('unet', 'coarse');
const lines = [];
const table = (title, pick) => {
  lines.push(`| model | output | seeds | ${KEYS.map(([, n]) => `${title === 'mean' ? '' : `${title} `}${n}`).join(' | ')} |`);
  lines.push(`| --- | --- | --- | ${KEYS.map(() => '---').join(' | ')} |`);
  for (const [method, output] of [
    ['unet', 'coarse'],
    ['morse', 'coarse'],
    ['morse', 'refined'],
    ['morse-implicit', 'coarse'],
    ['morse-implicit', 'refined'],
  ]) {
    const rows = rowsOf(method, output);
    if (!rows.length) continue;
    const cells = KEYS.map(([k, , d]) => {
      const s = stats(rows.map((r) => pick(r, k)));
      if (method === 'unet') return fmt(s, d);
      const b = stats(base.map((r) => pick(r, k)));
      const delta = s.mean - b.mean;
      return `${fmt(s, d)} (Δ ${delta >= 0 ? '+' : ''}${delta.toFixed(d)})`;
    });
    lines.push(`| ${method === 'unet' ? `${backboneName} (backbone alone)` : method === 'morse' ? 'MORSE, standard head' : 'MORSE, implicit head'} | ${output} | ${rows.length} | ${cells.join(' | ')} |`);
  }
  lines.push('');
};
const myo = { meanDice: 'dice', meanJaccard: 'jaccard', meanHd95Mm: 'hd95Mm', meanAsdMm: 'asdMm' };
table('mean', (r, k) => r[k]);
if (!is3d) {
  lines.push('Myocardium only (the thin structure, where boundary refinement should matter most):', '');
  table('Myo', (r, k) => r[myo[k]].myocardium);
}
const secs = (method) => stats(runs.filter((r) => r.method === method).map((r) => r.seconds));
const timing = ['unet', 'morse', 'morse-implicit']
  .filter((m) => runs.some((r) => r.method === m))
  .map((m) => `${m} ${secs(m).mean.toFixed(0)} s`)
  .join(', ');

const expected = methods.length * seeds.length;
const partial = runs.length < expected ? `\n**Partial:** ${runs.length} of the ${expected} runs asked for finished; the missing ones are absent from the table.\n` : '';
const command = `node scripts/morse-benchmark.mjs${is3d ? ' --data phantom3d' : ''} --steps ${steps} --batch ${batchSize} --size ${size} --train-subjects ${trainSubjects} --test-subjects ${testSubjects} --seeds ${seeds.join(',')} --methods ${methods.join(',')}`;
const data2d = `**This is not the paper's data.** Images are the procedural cardiac phantom (vg.data.cardiacPhantom: RV, myocardium,
LV; ED and ES frames), ${size}×${size} pixels of ${160 / size} mm; no ACDC, LiTS or LA image was used.`;
const data3d = `**This is not the paper's data.** Volumes are the procedural left-atrium phantom (vg.data.leftAtriumPhantoms: the
atrium body with four pulmonary-vein stubs and an appendage, an unlabelled aorta-like tube, bias field, Rician noise),
${size}³ voxels, one volume per subject; no LA 2018 image was used. Distances are in voxels (the phantom has no
physical spacing).`;
const model2d = `UNet2D with features [${cfg.features}], ${trainSubjects} training
subjects (${2 * trainSubjects} frames), ${steps} steps of batch ${batchSize}, Adam lr ${cfg.lr} with poly decay (power 0.9), the
phantom augmentation of unet-phantom, loss 0.5 (CE + Dice). MORSE adds the MoE head (width ${cfg.moeWidth}, output ${cfg.moeOut}
channels, stochastic dropping of r ~ U{0..${cfg.dropExperts}} of the 5 experts: the bottleneck and the four up levels)`;
const model3d = `VNet with ${cfg.vnetFilters} base filters (the paper's code: 16), ${trainSubjects} training
volumes, ${steps} steps of batch ${batchSize}, Adam lr ${cfg.lr} with poly decay (power 0.9), random flips along each axis and
intensity jitter, loss 0.5 (CE + Dice). MORSE adds the 3-D MoE head (Conv3d/BatchNorm3d/Dropout3d; width ${cfg.moeWidth},
output ${cfg.moeOut} channels) over three decoder scales (¼, ½ and full resolution; the released 3-D code feeds the
last decoder map three times) with stochastic dropping of r ~ U{0..2} of the 3 experts`;
const md = `# MORSE vs its ${is3d ? 'VNet' : 'UNet'} backbone on the embedded ${is3d ? 'left-atrium' : 'cardiac'} phantom

${is3d ? data3d : data2d}
${partial}
Made by \`${command}${reportOnly ? ' --report' : ''}\`${reportOnly ? ` over run folders trained by the same command without --report (several processes side by side, each with some of the seeds)` : ''}
on ${info.description}, 2 CPU cores shared with other jobs (mean training + evaluation time per run: ${timing}).

Protocol: the \`morse\` recipe (src/methods/morse.ts). ${is3d ? model3d : model2d} and the point head (3 hidden Conv1d of width
${cfg.pointFc}), trained with ${common.trainPoints} points per ${is3d ? 'volume' : 'image'} (oversample 3, importance 0.75), point-loss weight 0 in the first
half and (t − T/2)/T after; refinement: ${cfg.subdivisionSteps} steps of the ${common.subdivisionPoints} most uncertain ${is3d ? 'voxels' : 'pixels'} (PointRend's 2048 and 8192 at 256², scaled by the ${is3d ? 'voxel' : 'pixel'} count). The backbone of a
seed has the same initial weights in both methods. Test: ${testSubjects} held-out subjects (${is3d ? testSubjects : 2 * testSubjects} ${is3d ? 'volumes' : 'frames'});
Dice and Jaccard over the test set per structure, HD95 and ASD per ${is3d ? 'volume' : 'frame'} (medpy's definitions, in ${unit}; a structure
predicted empty scores the image diagonal)${is3d ? '' : ', then averaged over RV, myocardium and LV'}. Values are mean ± sample sd
over training seeds; Δ is the difference of means from the backbone row, whose ± is the baseline's own seed spread.

${lines.join('\n')}`;
await vg.train.writeFile(`${results}/morse-phantom${is3d ? '3d' : ''}.md`, md);
console.log(md);
process.exit(0);
