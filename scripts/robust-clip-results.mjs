// docs/results/robust-clip.md from one command (after `npm run build`):
//   nice -n 10 node scripts/robust-clip-results.mjs [--seeds 0,1,2] [--methods zeroshot,erm,dfr,jtt,cfr] [--ablation 1]
//     [--figure 1] [--resume 0] [--out docs/results/robust-clip.md] [--rows 0,1,2,3] [--<setting> value ...]
// One CLIP is pretrained (pretrainSeed 0) and cached with its frozen features under runs/robust-clip-cache; every
// method's head is then trained with each seed. Then (--ablation 1, the default) the CFR ablation with cfrRegularCe 1:
// the full objective and the objective without TSC, without the InfoNCE term, and with neither (the two
// cross-entropies alone), each beside ERM on the same seeds. The figure (--figure 1, the default; needs cfr in the
// methods and the ablation): the test embeddings of the first seed's ERM head (CFR's starting point), CFR head and CFR +
// regular-CE head in 2-D (PCA), by group, written to docs/results/robust-clip-embeddings.png. The page is rewritten
// after every run, so an interrupted run leaves the rows it finished, marked partial; --resume 1 reuses the runs the
// existing page lists (its JSON lines) when its settings equal this invocation's (settings it lacks count as their
// defaults), and the figure runs' folders when their settings.json equals them too; --resume a.md,b.md reuses the runs
// of those pages (seeds run in parallel processes, each with --seeds s --figure 0 --out its own page).
import fs from 'node:fs';
import * as vg from '../dist/node.js';

const SCRIPT_OPTIONS = ['seeds', 'methods', 'ablation', 'figure', 'resume', 'out', 'rows'];
// cfrRegularCe 1 in every row: without it CFR keeps its start (see the table), so there is no gain to attribute
const ABLATION = [
  { row: 'CFR + regular CE (full)', config: {} },
  { row: 'without TSC', config: { cfrTscWeight: 0 } },
  { row: 'without InfoNCE', config: { cfrContrastWeight: 0 } },
  { row: 'the two CEs only (JTT-like)', config: { cfrTscWeight: 0, cfrContrastWeight: 0 } },
];
const FIGURE = 'docs/results/robust-clip-embeddings.png';

const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const seeds = opt('seeds', '0,1,2').split(',').map(Number);
const methods = opt('methods', 'zeroshot,erm,dfr,jtt,cfr').split(',');
const ablation = opt('ablation', '1') !== '0';
const figure = opt('figure', '1') !== '0';
// --rows 2,3: only those ablation rows (0-based, in ABLATION's order), for splitting the work across processes
const rows = opt('rows', ABLATION.map((_, i) => i).join(',')).split(',').map((i) => ABLATION[Number(i)]);
if (rows.some((r) => !r)) throw new Error(`--rows: indices 0..${ABLATION.length - 1}, got ${opt('rows')}`);
// --resume 1: the output page; --resume a.md,b.md: those pages (e.g. of seeds run in parallel with --out)
const resumeArg = opt('resume', '0');
const config = { cache: 'runs/robust-clip-cache' };
for (let i = 0; i < args.length; i += 2) {
  const key = args[i].slice(2);
  if (SCRIPT_OPTIONS.includes(key)) continue;
  const v = args[i + 1];
  config[key] = /^-?[\d.]+$/.test(v) ? Number(v) : v;
}
const out = opt('out', 'docs/results/robust-clip.md');
const resumeFrom = resumeArg === '0' ? [] : resumeArg === '1' ? [out] : resumeArg.split(',');
const resume = resumeFrom.length > 0;
// the page names the command that makes it from scratch: --resume only saves time (its pages may be temporary files)
const shownArgs = args.filter((a, i) => a !== '--resume' && args[i - 1] !== '--resume');
const command = `nice -n 10 node scripts/robust-clip-results.mjs ${shownArgs.join(' ')}`.trim();

await vg.init();
const results = [];
const ablationResults = [];
// ERM runs made for the ablation's baseline when erm is not among the methods
const ermBaseline = [];
let figureWritten = false;
let pretrainLosses = null;
const started = Date.now();

/** Every setting the recipe sees but method and seed, defaults filled in. */
function settingsOf(c) {
  const settings = { ...vg.methods.recipes.clip.defaults, ...c };
  delete settings.method;
  delete settings.seed;
  return settings;
}
const sameSettings = (a, b) => JSON.stringify(Object.entries(settingsOf(a)).sort()) === JSON.stringify(Object.entries(settingsOf(b)).sort());

/** With --resume: the runs of the existing page, if it was made with these settings. */
function previousRuns() {
  const runs = [];
  for (const file of resumeFrom) {
    if (!fs.existsSync(file)) continue;
    const text = fs.readFileSync(file, 'utf8');
    const block = /Settings:\n\n```json\n([\s\S]*?)\n```/.exec(text);
    if (!block || !sameSettings(JSON.parse(block[1]), config)) {
      console.error(`--resume: ${file} was made with other settings; its runs are not reused`);
      continue;
    }
    const lines = /Per run \(JSON lines\):\n\n```\n([\s\S]*?)```/.exec(text)?.[1] ?? '';
    runs.push(...lines.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l)));
  }
  return runs;
}

function page(done) {
  const rows = methods
    .map((m) => {
      const rs = results.filter((r) => r.method === m);
      if (!rs.length) return null;
      const cell = (f) => vg.io.meanSd(rs.map(f), { digits: 3 });
      return {
        method: m,
        seeds: rs.map((r) => r.seed).join(','),
        'test average': cell((r) => r.test.average),
        'test worst-group': cell((r) => r.test.worst),
        'val worst-group': cell((r) => r.val.worst),
        ...Object.fromEntries([0, 1, 2, 3].map((g) => [`test g${g}`, cell((r) => r.test.perGroup[g] ?? NaN)])),
      };
    })
    .filter(Boolean);
  const settings = settingsOf(config);
  return [
    '# Robust CLIP on Waterbirds-like Fashion-MNIST',
    '',
    done ? '' : '**Partial**: the command was still running (or was stopped) when this page was written; rows list the seeds finished.',
    '',
    `Command: \`${command}\` (after \`npm run build\`). Machine: lavapipe (CPU Vulkan) shared with other jobs; ${((Date.now() - started) / 60000).toFixed(1)} min${reused ? ` for the runs made by this invocation; ${reused} runs reused through --resume from pages made with these settings (e.g. seeds run in parallel processes)` : ''}.`,
    '',
    'Groups: g = 2·label + background; label 0 = top, 1 = footwear; background 0 = land, 1 = water. Training and',
    'pretraining splits: the background agrees with the label in 95% of each label (g0 and g3 are the majority groups);',
    'validation and test: 50%. Each cell is mean ± sd over the seeds listed (the seed of the head training; the CLIP',
    'is pretrained once, pretrainSeed 0, so the spread does not include pretraining variation).',
    '',
    rows.length ? vg.io.markdownTable(rows) : '(no run finished)',
    '',
    ...ablationSection(),
    ...(figureWritten
      ? [
          `![Test embeddings in 2-D](${FIGURE.replace('docs/results/', '')})`,
          '',
          `\`${FIGURE}\`: the test split's embeddings (normalised z·proj, the vectors the zero-shot text head compares with) of`,
          `seed ${seeds[0]}'s heads: the ERM head that picks CFR's calibration set (CFR's "before"), the CFR head (default`,
          'settings) and the CFR head with cfrRegularCe 1; each panel is its own PCA (vg.metrics.pca; the share of variance',
          'its two axes hold in the title), points coloured by group. Blues: top, oranges: footwear; dark: land, light: water.',
          '',
        ]
      : []),
    'Settings:',
    '',
    '```json',
    JSON.stringify(settings, null, 1),
    '```',
    '',
    pretrainLosses ? `Pretraining loss (CLIP contrastive, batch ${settings.pretrainBatch}): first ${pretrainLosses[0].toFixed(3)}, last ${pretrainLosses[pretrainLosses.length - 1].toFixed(3)} over ${pretrainLosses.length} steps (chance: ln(batch) = ${Math.log(settings.pretrainBatch).toFixed(3)}).` : '',
    '',
    'Per run (JSON lines):',
    '',
    '```',
    ...results.map((r) => JSON.stringify(r)),
    ...ablationResults.map((r) => JSON.stringify(r)),
    '```',
    '',
  ].join('\n');
}

const ermOf = (seed) => [...results, ...ermBaseline].find((r) => r.method === 'erm' && r.seed === seed);

/** The ablation table: each row's worst-group accuracy beside ERM's on the same seeds, and their per-seed difference. */
function ablationSection() {
  if (!ablationResults.length) return [];
  const rows = [];
  const baseSeeds = seeds.filter((sd) => ermOf(sd));
  if (baseSeeds.length) {
    const erm = baseSeeds.map(ermOf);
    rows.push({ row: 'ERM (baseline)', seeds: baseSeeds.join(','), 'test average': vg.io.meanSd(erm.map((r) => r.test.average), { digits: 3 }), 'test worst-group': vg.io.meanSd(erm.map((r) => r.test.worst), { digits: 3 }), 'worst-group − ERM (paired by seed)': '-', 'val worst-group': vg.io.meanSd(erm.map((r) => r.val.worst), { digits: 3 }) });
  }
  for (const a of ABLATION) {
    const rs = ablationResults.filter((r) => r.row === a.row);
    if (!rs.length) continue;
    const paired = rs.filter((r) => ermOf(r.seed));
    rows.push({
      row: a.row,
      seeds: rs.map((r) => r.seed).join(','),
      'test average': vg.io.meanSd(rs.map((r) => r.test.average), { digits: 3 }),
      'test worst-group': vg.io.meanSd(rs.map((r) => r.test.worst), { digits: 3 }),
      'worst-group − ERM (paired by seed)': paired.length ? vg.io.meanSd(paired.map((r) => r.test.worst - ermOf(r.seed).test.worst), { digits: 3 }) : '-',
      'val worst-group': vg.io.meanSd(rs.map((r) => r.val.worst), { digits: 3 }),
    });
  }
  return [
    '## CFR ablation (cfrRegularCe 1)',
    '',
    'Which term carries CFR\'s gain once the regular batch keeps its cross-entropy: every row trains CFR\'s head with',
    'cfrRegularCe 1 and the settings above, leaving out the TSC term (cfrTscWeight 0), the calibration InfoNCE',
    '(cfrContrastWeight 0), or both (what remains is a(e)·CE on the calibration set + CE on the regular batch: JTT\'s',
    'up-weighting of the error set in another form). Mean ± sd over the seeds listed; the difference to ERM is taken per',
    'seed (the same seed trains both heads) before the mean ± sd.',
    '',
    vg.io.markdownTable(rows),
    '',
  ];
}

/** The figure from the two CFR runs of the first seed that wrote their embeddings. */
async function writeFigure(dirs) {
  const read = (d) => vg.io.readSafetensors(`${d}/embeddings.safetensors`);
  const [plain, regular] = [await read(dirs.cfr), await read(dirs.regular)];
  const groups = Int32Array.from(await plain.groups.data());
  const fig = await vg.methods.clip.embeddingFigure(
    [
      { title: 'ERM (before calibration)', z: plain.before },
      { title: 'CFR', z: plain.after },
      { title: 'CFR + regular CE', z: regular.after },
    ],
    groups,
  );
  await vg.io.writePng(FIGURE, fig, { min: 0, max: 255 });
  for (const t of [...Object.values(plain), ...Object.values(regular), fig]) t.dispose();
  figureWritten = true;
}

const figureDirs = { cfr: `${config.cache}/figure-cfr`, regular: `${config.cache}/figure-cfr-regular-ce` };
// embeddings of an earlier invocation must not enter this one's figure: a folder is kept (--resume) only when its
// settings.json holds this invocation's settings
const keptFigure = (d) => resume && fs.existsSync(`${d}/embeddings.safetensors`) && fs.existsSync(`${d}/settings.json`) && sameSettings(JSON.parse(fs.readFileSync(`${d}/settings.json`, 'utf8')), config);
for (const d of Object.values(figureDirs)) if (!keptFigure(d)) fs.rmSync(d, { recursive: true, force: true });
const outDirOf = (method, seed, dir) => (figure && method === 'cfr' && seed === seeds[0] && !fs.existsSync(dir) ? dir : undefined);
const previous = previousRuns();
let reused = 0;
const findPrevious = (row, method, seed) => previous.find((r) => r.row === row && r.method === method && r.seed === seed);

/** One recipe run, or its result from the existing page (--resume) unless it must write a figure folder. */
async function train(runConfig, row, figureDir) {
  const outDir = outDirOf(runConfig.method, runConfig.seed, figureDir);
  const old = findPrevious(row, runConfig.method, runConfig.seed);
  if (old && !outDir) {
    console.error(`--resume: ${row ?? runConfig.method} seed ${runConfig.seed} reused`);
    reused++;
    return { history: [], evaluation: Object.fromEntries(Object.entries(old).filter(([k]) => k !== 'row')) };
  }
  const r = await vg.methods.recipes.clip.train({ config: runConfig, outDir, log: (m) => console.error(m) });
  if (outDir) fs.writeFileSync(`${outDir}/settings.json`, JSON.stringify(settingsOf(config)));
  return r;
}

for (const method of methods)
  for (const seed of method === 'zeroshot' ? [seeds[0]] : seeds) {
    const r = await train({ ...config, method, seed }, undefined, figureDirs.cfr);
    if (r.history.length) pretrainLosses = r.history.map((h) => h.loss);
    // a cached CLIP: its losses were written beside it when it was pretrained
    const saved = vg.methods.clip.pretrainedCacheFile(config.cache, config).replace(/\.safetensors$/, '-losses.json');
    if (!pretrainLosses && fs.existsSync(saved)) pretrainLosses = JSON.parse(fs.readFileSync(saved, 'utf8'));
    results.push(r.evaluation);
    fs.mkdirSync('docs/results', { recursive: true });
    fs.writeFileSync(out, page(false));
  }
// seed by seed, so that an interrupted run has every row for the seeds it finished
if (ablation)
  for (const seed of seeds)
    for (const a of rows) {
      if (!ermOf(seed)) ermBaseline.push((await train({ ...config, method: 'erm', seed })).evaluation);
      const r = await train({ ...config, cfrRegularCe: 1, ...a.config, method: 'cfr', seed }, a.row, a === ABLATION[0] ? figureDirs.regular : undefined);
      ablationResults.push({ row: a.row, ...r.evaluation });
      fs.writeFileSync(out, page(false));
    }
if (figure && fs.existsSync(`${figureDirs.cfr}/embeddings.safetensors`) && fs.existsSync(`${figureDirs.regular}/embeddings.safetensors`)) await writeFigure(figureDirs);
fs.writeFileSync(out, page(true));
console.error(`wrote ${out}${figureWritten ? ` and ${FIGURE}` : ''}`);
