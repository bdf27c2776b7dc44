/**
 * `npx voxgrad <command>`: info, list, train, eval, bench. Training goes through vg.train, which writes the run
 * folder (config.json, metrics.json, loss.png, checkpoint.safetensors); Ctrl-C saves a checkpoint and exits cleanly
 * (a second Ctrl-C exits at once).
 */
import * as vg from '../node.js';
import { files } from '../io/files.js';
import { recipes } from '../methods/index.js';
import { unknownSettings, type Config, type Recipe } from '../train/recipe.js';
import { resultJson, RUN_FILES, writeJson } from '../train/run-folder.js';
import { runBench } from './bench.js';
import { runProfile } from './profile.js';

const USAGE = `usage: voxgrad <command> [options]

commands:
  info                                 the WebGPU adapter: vendor, architecture, limits, features
  list                                 the training recipes
  train <recipe> [options]             train; writes a run folder
      --steps N                        number of steps (overrides the recipe's default)
      --config file.json               settings that override the recipe's defaults
      --set key=value                  one setting (repeatable; numbers and true/false are parsed)
      --<setting> value                the same (e.g. voxgrad train reg --backbone voxelmorph --method hetero)
                                       train seg --method morse|itl|castformer runs that paper's own recipe
      --out dir                        run folder (default runs/<recipe>-<date>-<time>)
      --resume checkpoint.safetensors  continue a run from its checkpoint
  eval <recipe> --checkpoint file [--out dir] [--set key=value]
                                       evaluate a checkpoint on the recipe's held-out data
  eval <recipe> --compare dirA,dirB,... [--baseline dirA] [--out dir]
                                       compare run folders evaluated on the same test set (their pairs.csv): mean
                                       of every metric, and a paired t-test of each run's Dice against the baseline
                                       (default the first); --out writes comparison.md and comparison.csv
  bench                                time the main kernels on this adapter (GPU time per call)
  profile <recipe> [--steps N] [--out dir] [settings as for train]
                                       per-kernel GPU time, FLOPs, bytes and fraction of the adapter's ceilings over
                                       N training steps (default 3); writes summary.md, summary.json, trace.json.gz
`;

class UsageError extends Error {}

/** Options of the commands themselves; any other --name must be a setting of the recipe. */
const COMMAND_OPTIONS = ['help', 'steps', 'config', 'set', 'out', 'resume', 'checkpoint', 'compare', 'baseline'];

function parseArgs(argv: string[]): { positional: string[]; flags: Map<string, string[]> } {
  const positional: string[] = [];
  const flags = new Map<string, string[]>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-h' || a === '--help') flags.set('help', ['']);
    else if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const [name, value] = eq > 0 ? [a.slice(2, eq), a.slice(eq + 1)] : [a.slice(2), argv[++i]];
      if (value === undefined) throw new UsageError(`--${name} needs a value`);
      flags.set(name, [...(flags.get(name) ?? []), value]);
    } else positional.push(a);
  }
  return { positional, flags };
}

const one = (flags: Map<string, string[]>, name: string) => flags.get(name)?.at(-1);

function parseValue(raw: string): Config[string] {
  if (raw === 'true' || raw === 'false') return raw === 'true';
  if (raw.trim() !== '' && Number.isFinite(Number(raw))) return Number(raw);
  if (/^\[.*\]$/.test(raw)) return JSON.parse(raw) as number[];
  return raw;
}

async function buildConfig(recipe: Recipe, flags: Map<string, string[]>): Promise<Config> {
  // no prototype: a setting named __proto__ or constructor stays an own key, refused below as unknown
  const config: Config = Object.assign(Object.create(null) as Config, recipe.defaults);
  const file = one(flags, 'config');
  if (file) {
    const { readFile } = await import('node:fs/promises');
    let parsed: unknown;
    try {
      parsed = JSON.parse(await readFile(file, 'utf8'));
    } catch (e) {
      throw new UsageError(`--config ${file}: ${(e as Error).message}`);
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new UsageError(`--config ${file}: expected a JSON object of settings`);
    // a run folder's config.json names its recipe: accepted when it is this one
    const { recipe: named, ...settings } = parsed as Config;
    if (named !== undefined && named !== recipe.name) throw new UsageError(`--config ${file} is a config of recipe '${String(named)}', not '${recipe.name}'`);
    Object.assign(config, settings);
  }
  for (const kv of flags.get('set') ?? []) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new UsageError(`--set expects key=value, got '${kv}'`);
    config[kv.slice(0, eq)] = parseValue(kv.slice(eq + 1));
  }
  // a recipe's settings are also options of their own: --method hetero is --set method=hetero
  for (const [name, values] of flags) {
    if (COMMAND_OPTIONS.includes(name)) continue;
    if (!Object.hasOwn(recipe.defaults, name)) throw new UsageError(`unknown option --${name}; recipe ${recipe.name}'s settings: ${Object.keys(recipe.defaults).join(', ')}`);
    config[name] = parseValue(values[values.length - 1]);
  }
  const steps = one(flags, 'steps');
  if (steps !== undefined) {
    const n = Number(steps);
    if (!Number.isInteger(n) || n < 1) throw new UsageError(`--steps must be a positive integer, got '${steps}'`);
    config.steps = n;
  }
  const unknown = unknownSettings(recipe.defaults, config);
  if (unknown.length)
    throw new UsageError(`recipe ${recipe.name} has no setting ${unknown.map((k) => `'${k}'`).join(', ')}; its settings: ${Object.keys(recipe.defaults).join(', ')}`);
  return config;
}

function findRecipe(name: string | undefined): Recipe {
  if (!name) throw new UsageError(`name a recipe: ${Object.keys(recipes).join(', ')}`);
  const r = recipes[name];
  if (!r) throw new UsageError(`unknown recipe '${name}'; recipes: ${Object.keys(recipes).join(', ')}`);
  return r;
}

/**
 * The segmentation papers with recipes of their own, reachable as `seg --method <name>` too: the command runs that
 * recipe (its settings and defaults) with --method set to the recipe's name for the method, where it has one.
 */
const SEG_METHOD_RECIPES: Record<string, { recipe: string; method?: string }> = {
  morse: { recipe: 'morse', method: 'morse' },
  itl: { recipe: 'itl', method: 'itl' },
  castformer: { recipe: 'castformer' },
};

/** The recipe a command names; `seg --method morse|itl|castformer` resolves to that paper's recipe (flags rewritten). */
function recipeFor(name: string | undefined, flags: Map<string, string[]>): Recipe {
  const method = one(flags, 'method');
  const alias = name === 'seg' && method !== undefined ? SEG_METHOD_RECIPES[method] : undefined;
  if (!alias) return findRecipe(name);
  flags.delete('method');
  if (alias.method) flags.set('method', [alias.method]);
  return findRecipe(alias.recipe);
}

const stamp = () => new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);

async function train(recipe: Recipe, flags: Map<string, string[]>): Promise<number> {
  const config = await buildConfig(recipe, flags);
  const outDir = one(flags, 'out') ?? `runs/${recipe.name}-${stamp()}`;
  const info = await vg.init();
  console.error(`voxgrad ${recipe.name} on ${info.vendor} ${info.architecture} (${info.description}); run folder ${outDir}`);
  let stop = false;
  const onSigint = () => {
    if (stop) process.exit(130);
    stop = true;
    console.error('\ninterrupted: saving a checkpoint after this step (Ctrl-C again to quit at once)');
  };
  process.on('SIGINT', onSigint);
  const result = await recipe.train({ config, outDir, resume: one(flags, 'resume'), shouldStop: () => stop, progress: true, log: (m) => console.error(m) });
  process.off('SIGINT', onSigint);
  if (result.evaluation) console.log(resultJson(result.evaluation));
  console.error(
    result.finished
      ? `done: ${result.steps} steps in ${result.seconds.toFixed(1)} s; ${outDir}/{${Object.values(RUN_FILES).join(',')}}`
      : `stopped at step ${result.steps}; checkpoint ${result.checkpoint}. Resume with: voxgrad train ${recipe.name} --out ${outDir} --resume ${result.checkpoint}`,
  );
  return 0;
}

/** Run folders side by side: their per-pair rows (pairs.csv, written by the evaluation) through vg.metrics.compareRuns. */
async function compare(flags: Map<string, string[]>): Promise<number> {
  const dirs = (flags.get('compare') ?? []).flatMap((v) => v.split(',')).filter((d) => d !== '');
  if (dirs.length < 2) throw new UsageError('--compare needs two or more run folders (comma-separated or repeated)');
  const name = (d: string) => d.replace(/[\\/]+$/, '').split(/[\\/]/).at(-1) || d;
  const runs = [];
  for (const d of dirs) {
    const path = `${d}/pairs.csv`;
    if (!(await files('voxgrad').exists(path))) throw new vg.VoxgradError(`eval --compare: ${path} not found (run folders hold pairs.csv after training or eval --out)`);
    runs.push({ name: name(d), rows: await vg.io.readCsv(path) });
  }
  const baseline = one(flags, 'baseline');
  const table = vg.metrics.compareRuns(runs, { baseline: baseline === undefined ? undefined : name(baseline) });
  const md = vg.io.markdownTable(table, { format: (v, c) => (c.startsWith('p ') ? v.toExponential(1) : c === 'cases' ? String(v) : v.toFixed(4)) });
  console.log(md);
  const outDir = one(flags, 'out');
  if (outDir) {
    await files('voxgrad').mkdir(outDir);
    await files('voxgrad').writeFileAtomic(`${outDir}/comparison.md`, new TextEncoder().encode(md));
    await vg.io.writeCsv(`${outDir}/comparison.csv`, table);
  }
  return 0;
}

async function evaluate(recipe: Recipe, flags: Map<string, string[]>): Promise<number> {
  if (flags.has('compare')) return compare(flags);
  const checkpoint = one(flags, 'checkpoint');
  if (!checkpoint) throw new UsageError('eval needs --checkpoint <file.safetensors> (written by voxgrad train)');
  const config = await buildConfig(recipe, flags);
  await vg.init();
  const outDir = one(flags, 'out') ?? null;
  // the evaluation writes its tables, figures and volumes there
  if (outDir) await files('voxgrad').mkdir(outDir);
  const result = await recipe.evaluate({ config, outDir, checkpoint, log: (m) => console.error(m) });
  console.log(resultJson(result));
  if (outDir) await writeJson(`${outDir}/eval.json`, result);
  return 0;
}

async function info(): Promise<number> {
  const i = await vg.init();
  console.log(JSON.stringify(i, null, 2));
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  const { positional, flags } = parseArgs(argv);
  const [command, ...rest] = positional;
  if (flags.has('help') || !command) {
    console.log(USAGE);
    return command || flags.has('help') ? 0 : 2;
  }
  switch (command) {
    case 'info':
      return info();
    case 'list':
      for (const r of Object.values(recipes)) console.log(`${r.name.padEnd(16)} ${r.description}`);
      return 0;
    case 'train':
      return train(recipeFor(rest[0], flags), flags);
    case 'eval':
      return evaluate(recipeFor(rest[0], flags), flags);
    case 'bench':
      return runBench();
    case 'profile': {
      const recipe = recipeFor(rest[0], flags);
      return runProfile(recipe, await buildConfig(recipe, flags), { steps: one(flags, 'steps'), out: one(flags, 'out') });
    }
    default:
      throw new UsageError(`unknown command '${command}'`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    if (e instanceof UsageError) console.error(`voxgrad: ${e.message}\n\n${USAGE}`);
    else console.error(e instanceof vg.VoxgradError ? `voxgrad: ${e.message}` : e);
    process.exitCode = e instanceof UsageError ? 2 : 1;
  },
);
