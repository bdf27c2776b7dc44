// The fuzzing harness: mutated NIfTI (.nii/.nii.gz, NIfTI-1/2), safetensors, NRRD, checkpoint and CLI-config files,
// each case run in a child process (scripts/fuzz/worker.mjs) under a time and memory limit, NIfTI cases also read by
// nibabel (scripts/fuzz/nibabel_oracle.py). Outcomes: accepted (and, for NIfTI, identical to nibabel or a documented
// class of disagreement), a typed error (VoxgradError / the CLI's usage error), or a DEFECT: a crash, a hang, an
// exception of another type, a silent difference from the oracle, a leak, a polluted prototype, memory over the limit.
//   npm run fuzz -- --cases N [--format nifti,safetensors,nrrd,checkpoint,config] [--seed S] [--batch B]
//                   [--timeout seconds per case] [--memory MiB per child] [--keep dir] [--case i] [--dist dir]
// --keep copies each defect's file into dir; --case i runs case i alone (with the same seed, the same bytes);
// --dist dir fuzzes another build of voxgrad (default this checkout's dist/).
// Cases run in batches per child for speed; a case during which the child dies, hangs or exceeds the memory limit is
// re-run alone in a fresh child, so the outcome is attributed to exactly that case. Exit status 1 when any defect.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { nrrdBytes } from './bytes.mjs';
import { makeCase } from './mutate.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.join(here, '..', '..');
const PYTHON = '/usr/bin/python3';
export const FORMATS = ['nifti', 'safetensors', 'nrrd', 'checkpoint', 'config'];
const ORACLE = { nifti: 'nibabel', safetensors: 'the reference reader (scripts/fuzz/safetensors_reference.py)' };
const EXT = { nifti: '', safetensors: '.safetensors', nrrd: '.nrrd', checkpoint: '.safetensors', config: '.json' };

/**
 * NIfTI disagreements with nibabel accepted as voxgrad being stricter, each matched on voxgrad's error: nibabel reads
 * the file, voxgrad refuses it with a typed error naming the reason. docs/reliability.md gives the reasons.
 */
export const NIBABEL_DISAGREEMENTS = [
  ['vox_offset 0 (nibabel reads the header bytes as voxels)', /vox_offset 0 too low/],
  ['sizeof_hdr not 348/540 (nibabel repairs it; it is what tells the version and byte order)', /sizeof_hdr is/],
  ["magic 'ni1'/'ni2' of a header-only file in a single file (nibabel goes by the file name)", /two-file \.hdr\/\.img pair/],
  ['gzip data beyond what the header implies (bomb check)', /decompresses to more than/],
  ['corrupt gzip stream after the voxel data', /does not decompress after/],
  ['datatype voxgrad does not read (complex, RGB, float128, bit)', /which voxgrad does not read/],
  ['a dim of 0 (nibabel returns an empty array)', /invalid dims/],
  ['dim[0] = 0 (nibabel reads a 0-d array)', /dim\[0\] = 0;/],
  ['a NaN qform quaternion where the qform is the affine (nibabel returns an all-NaN rotation)', /not a rotation \(b² \+ c² \+ d² = NaN\)/],
  ['more than 64 MiB of extensions in a .nii.gz', /bytes of extensions before the voxels/],
  ['volume larger than the adapter\'s maxBufferSize', /maxBufferSize/],
  ['scl_slope set with a non-finite scl_inter', /non-finite scl_inter/],
];

function parseArgs(argv) {
  const opts = { cases: 100, formats: FORMATS, seed: 1, batch: 50, timeout: 30, memory: 1024, keep: null, quiet: false, only: null, dist: path.join(root, 'dist') };
  for (let i = 0; i < argv.length; i++) {
    const [k, v] = [argv[i], argv[i + 1]];
    if (k === '--cases') opts.cases = Number(v);
    else if (k === '--format') opts.formats = v.split(',');
    else if (k === '--seed') opts.seed = Number(v);
    else if (k === '--batch') opts.batch = Number(v);
    else if (k === '--timeout') opts.timeout = Number(v);
    else if (k === '--memory') opts.memory = Number(v);
    else if (k === '--keep') opts.keep = v;
    else if (k === '--case') opts.only = Number(v);
    else if (k === '--dist') opts.dist = path.resolve(v);
    else if (k === '--quiet') {
      opts.quiet = true;
      continue;
    } else throw new Error(`unknown option ${k}; see the head of scripts/fuzz/run.mjs`);
    i++;
  }
  for (const f of opts.formats) if (!FORMATS.includes(f)) throw new Error(`unknown format '${f}'; formats: ${FORMATS.join(', ')}`);
  if (!(opts.cases >= 1)) throw new Error('--cases must be a positive number');
  return opts;
}

/** The seed files of a format: written by voxgrad (a worker), nibabel, or here (NRRD), and configs' settings. */
async function makeSeeds(format, dir, dist) {
  const read = (files) => files.map((p) => ({ name: path.basename(p), bytes: new Uint8Array(fs.readFileSync(p)) }));
  if (format === 'nrrd') {
    const v = (n) => Array.from({ length: n }, (_, i) => (i * 37) % 11);
    return [
      ['lps_float_raw', { type: 'float', dimension: 3, space: 'left-posterior-superior', sizes: '2 3 2', 'space directions': '(1,0,0) (0,2,0) (0,0,3)', 'space origin': '(5,6,7)', endian: 'little', encoding: 'raw' }],
      ['ras_short_gzip', { type: 'short', dimension: 3, space: 'RAS', sizes: '3 2 2', 'space directions': '(0,1,0) (2,0,0) (0,0,1)', endian: 'big', encoding: 'gzip' }],
      ['uchar_ascii', { type: 'uchar', dimension: 2, sizes: '4 3', spacings: '0.5 2', encoding: 'ascii' }],
      ['vector_double_raw', { type: 'double', dimension: 4, space: 'LPS', sizes: '2 2 2 2', 'space directions': 'none (1,0,0) (0,1,0) (0,0,1)', kinds: 'vector domain domain domain', endian: 'little', encoding: 'raw' }],
      ['int_gzip_kv', { type: 'int', dimension: 2, sizes: '3 3', endian: 'little', encoding: 'gzip' }],
    ].map(([name, fields]) => ({ name, bytes: nrrdBytes(fields, v(fields.sizes.split(' ').reduce((a, b) => a * b, 1)), { lines: ['note:=fuzz seed'] }) }));
  }
  if (format === 'config') {
    // each recipe's settings, from the CLI's own error for an unknown one
    const { spawnSync: run } = await import('node:child_process');
    return ['unet-phantom', 'reg'].map((recipe) => {
      const r = run(process.execPath, [path.join(dist, 'cli.js'), 'eval', recipe, '--checkpoint', 'x', '--set', 'zzUnknown=1'], { encoding: 'utf8' });
      const settings = /its settings: (.*)/.exec(r.stderr)?.[1].split(', ');
      if (!settings) throw new Error(`cannot read recipe ${recipe}'s settings from the CLI: ${r.stderr.slice(0, 300)}`);
      return { name: recipe, recipe, settings, defaults: Object.fromEntries(settings.map((k) => [k, undefined])) };
    });
  }
  const r = spawnSync(process.execPath, [path.join(here, 'worker.mjs'), 'seeds', dist, dir], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`seed worker failed: ${r.stderr}`);
  const mine = JSON.parse(r.stdout.trim().split('\n').at(-1));
  const pick = (re) => read(mine.filter((p) => re.test(path.basename(p))));
  if (format === 'safetensors') return pick(/^(weights|single)\.safetensors$/);
  if (format === 'checkpoint') return pick(/\.ckpt\.safetensors$/);
  const nib = spawnSync(PYTHON, [path.join(here, 'nibabel_oracle.py'), 'seeds', dir], { encoding: 'utf8' });
  if (nib.status !== 0) throw new Error(`nibabel seeds failed: ${nib.stderr}`);
  return [...pick(/\.nii(\.gz)?$/), ...read(JSON.parse(nib.stdout))];
}

/** A persistent oracle process (a Python script and its arguments): one path in, one JSON answer out. */
function oracleProcess(...args) {
  const child = spawn(PYTHON, [...args], { stdio: ['pipe', 'pipe', 'ignore'] });
  const lines = readline.createInterface({ input: child.stdout });
  const waiting = [];
  lines.on('line', (l) => waiting.shift()?.(JSON.parse(l)));
  return {
    ask: (file) => new Promise((resolve) => {
      waiting.push(resolve);
      child.stdin.write(`${file}\n`);
    }),
    close: () => child.stdin.end(),
  };
}

const rssOf = (pid) => {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;
  } catch {
    return 0;
  }
};

/**
 * Runs cases in one child; returns results by case index. The case running when the child died, hung (over
 * `timeout` s) or grew past `memory` MiB gets { outcome: 'died', reason }; cases never started are left out.
 */
function runBatch(format, cases, dist, opts) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--max-old-space-size=1024', '--expose-gc', path.join(here, 'worker.mjs'), format, dist], { stdio: ['pipe', 'pipe', 'pipe'] });
    const results = new Map();
    let current = null;
    let reason = null;
    let timer = null;
    let maxRss = 0;
    let stderr = '';
    child.stderr.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
    const kill = (why) => {
      reason ??= why;
      child.kill('SIGKILL');
    };
    const meter = setInterval(() => {
      const rss = rssOf(child.pid);
      maxRss = Math.max(maxRss, rss);
      if (rss > opts.memory * 2 ** 20) kill(`RSS ${(rss / 2 ** 20).toFixed(0)} MiB over the ${opts.memory} MiB limit`);
    }, 100);
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      let msg;
      try {
        msg = JSON.parse(line);
      } catch {
        return; // stray output of a reader (none expected): not a protocol line
      }
      if (msg.start !== undefined) {
        current = msg.start;
        clearTimeout(timer);
        timer = setTimeout(() => kill(`no answer after ${opts.timeout} s (hang)`), opts.timeout * 1000);
      } else if (msg.i !== undefined) {
        results.set(msg.i, msg);
        current = null;
        clearTimeout(timer);
      }
    });
    child.on('exit', (code, signal) => {
      clearInterval(meter);
      clearTimeout(timer);
      if (current !== null && !results.has(current))
        results.set(current, { i: current, outcome: 'died', reason: reason ?? `child exited (${signal ?? `code ${code}`}): ${stderr.trim().split('\n').slice(-3).join(' | ')}`, peak: maxRss });
      resolve(results);
    });
    child.stdin.on('error', () => {});
    for (const c of cases) child.stdin.write(`${JSON.stringify(c)}\n`);
    child.stdin.end();
  });
}

const median = (xs) => {
  if (!xs.length) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};
/** Affines equal within f32 rounding of the stored fields; non-finite entries must match exactly. */
const sameAffine = (a, b) =>
  a.every((row, r) => row.every((v, c) => {
    const w = Number(b[r][c]);
    const u = Number(v);
    return Object.is(u, w) || (Number.isNaN(u) && Number.isNaN(w)) || Math.abs(u - w) <= 1e-5 * Math.max(1, Math.abs(w));
  }));

/** Compares an accepted/typed voxgrad outcome with nibabel's answer; returns [class, detail] with class 'identical', 'both rejected', 'no oracle', 'disagreement', or 'defect'. */
function judgeNifti(res, nib) {
  if (nib.ok === null) return ['no oracle', nib.error];
  if (res.outcome === 'accepted' && nib.ok) {
    const s = res.summary;
    if (JSON.stringify(s.shape) !== JSON.stringify(nib.shape)) return ['defect', `shape ${JSON.stringify(s.shape)}, nibabel ${JSON.stringify(nib.shape)}`];
    if (s.sha !== nib.sha) return ['defect', 'voxel values differ from nibabel'];
    if (!sameAffine(s.affine, nib.affine)) return ['defect', `affine ${JSON.stringify(s.affine)}, nibabel ${JSON.stringify(nib.affine)}`];
    return ['identical'];
  }
  if (res.outcome === 'typed' && !nib.ok) return ['both rejected'];
  if (res.outcome === 'typed') {
    const known = NIBABEL_DISAGREEMENTS.find(([, re]) => re.test(res.detail));
    return known ? ['disagreement', known[0]] : ['defect', `voxgrad rejects what nibabel reads: ${res.detail}`];
  }
  return ['defect', `voxgrad accepts what nibabel rejects (${nib.error})`];
}

/** voxgrad's dtype for each safetensors dtype it reads (floats to f32, integers and BOOL to i32, U32 kept). */
const VOXGRAD_DTYPE = { F32: 'f32', F16: 'f32', BF16: 'f32', F64: 'f32', U32: 'u32', I32: 'i32', I16: 'i32', U16: 'i32', I8: 'i32', U8: 'i32', BOOL: 'i32', I64: 'i32', U64: 'i32' };

/**
 * safetensors disagreements with the reference reader accepted as voxgrad being stricter: the file is valid, but its
 * contents do not fit voxgrad's tensors (rank, 8-bit floats, 64-bit integers beyond i32, f64 beyond f32).
 */
export const SAFETENSORS_DISAGREEMENTS = [
  ['rank above 8', /has rank \d+ .*at most 8 dims/],
  ['8-bit float dtypes', /8-bit floats/],
  ['I64/U64 values outside i32', /does not fit in i32/],
  ['F64 values beyond f32', /overflows f32/],
];

/** Compares voxgrad's outcome with the reference reader's, as judgeNifti does with nibabel's. */
function judgeSafetensors(res, ref) {
  if (res.outcome === 'accepted' && ref.ok) {
    const mine = [...res.summary].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    const want = ref.tensors.map(([name, dtype, shape]) => [name, VOXGRAD_DTYPE[dtype], shape]);
    return JSON.stringify(mine) === JSON.stringify(want) ? ['identical'] : ['defect', `read ${JSON.stringify(mine)}, the reference ${JSON.stringify(want)}`];
  }
  if (res.outcome === 'typed' && !ref.ok) return ['both rejected'];
  if (res.outcome === 'typed') {
    const known = SAFETENSORS_DISAGREEMENTS.find(([, re]) => re.test(res.detail));
    return known ? ['disagreement', known[0]] : ['defect', `voxgrad rejects what the reference reads: ${res.detail}`];
  }
  return ['defect', `voxgrad accepts what the reference rejects (${ref.error})`];
}

/** Runs `opts.cases` cases of one format; returns its statistics and defects. */
async function fuzzFormat(format, dist, opts, work) {
  const dir = fs.mkdtempSync(path.join(work, `${format}-`));
  const seeds = await makeSeeds(format, dir, dist);
  const oracle =
    format === 'nifti' ? oracleProcess(path.join(here, 'nibabel_oracle.py'), 'serve')
      : format === 'safetensors' ? oracleProcess(path.join(here, 'safetensors_reference.py'))
        : null;
  const stats = { format, cases: 0, accepted: 0, typed: 0, identical: 0, bothRejected: 0, noOracle: 0, disagreements: {}, defects: [], growth: [], peak: 0, bombPeak: null, reruns: 0, seconds: 0 };
  const t0 = Date.now();
  const caseInfo = new Map();
  let next = opts.only ?? 0;
  const last = opts.only === null ? opts.cases : opts.only + 1;
  const pending = [];
  const build = async (i) => {
    const m = await makeCase(format, seeds, opts.seed, i);
    const file = path.join(dir, `case${i}${EXT[format] || (m.bytes && m.bytes[0] === 0x1f ? '.nii.gz' : '.nii')}`);
    if (format === 'config') fs.writeFileSync(file, m.config);
    else fs.writeFileSync(file, m.bytes);
    const c = { i, file, ...(format === 'config' ? { recipe: m.recipe ?? seeds.find((s) => m.seed === s.name).recipe, settings: seeds.find((s) => m.seed === s.name).settings, config: m.config, set: m.set } : {}) };
    caseInfo.set(i, { what: m.what, bomb: !!m.bomb, file });
    return c;
  };
  const record = async (c, res) => {
    const info = caseInfo.get(c.i);
    stats.cases++;
    stats.growth.push(res.growth ?? 0);
    stats.peak = Math.max(stats.peak, res.peak ?? 0);
    if (info.bomb) stats.bombPeak = Math.max(stats.bombPeak ?? 0, res.growth ?? 0);
    let verdict = res.outcome === 'died' ? ['defect', res.reason] : res.outcome === 'defect' ? ['defect', res.detail] : null;
    if (!verdict && oracle) verdict = (format === 'nifti' ? judgeNifti : judgeSafetensors)(res, await oracle.ask(c.file));
    if (res.outcome === 'accepted') stats.accepted++;
    if (res.outcome === 'typed') stats.typed++;
    if (verdict?.[0] === 'identical') stats.identical++;
    if (verdict?.[0] === 'both rejected') stats.bothRejected++;
    if (verdict?.[0] === 'no oracle') stats.noOracle++;
    if (verdict?.[0] === 'disagreement') stats.disagreements[verdict[1]] = (stats.disagreements[verdict[1]] ?? 0) + 1;
    if (verdict?.[0] === 'defect') {
      stats.defects.push({ case: c.i, what: info.what, defect: verdict[1] });
      if (opts.keep) {
        fs.mkdirSync(opts.keep, { recursive: true });
        fs.copyFileSync(info.file, path.join(opts.keep, `${format}-seed${opts.seed}-${path.basename(info.file)}`));
      }
      if (!opts.quiet) console.error(`DEFECT ${format} case ${c.i} (${info.what}): ${verdict[1]}`);
    }
    fs.rmSync(info.file, { force: true });
  };
  while (next < last || pending.length) {
    while (pending.length < opts.batch && next < last) pending.push(await build(next++));
    const batch = pending.splice(0, opts.batch);
    const results = await runBatch(format, batch, dist, opts);
    for (const c of batch) {
      let res = results.get(c.i);
      if (!res) {
        pending.unshift(c); // never started: back in the queue, in order
        continue;
      }
      if (res.outcome === 'died' && batch.length > 1) {
        // attributed exactly: the case alone, in a fresh child
        stats.reruns++;
        res = (await runBatch(format, [c], dist, opts)).get(c.i) ?? { outcome: 'died', reason: 'the child died before starting it' };
      }
      await record(c, res);
    }
    pending.sort((a, b) => a.i - b.i);
    if (!opts.quiet && stats.cases % 500 < opts.batch) console.error(`${format}: ${stats.cases}/${opts.cases} cases, ${stats.defects.length} defects, ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  }
  oracle?.close();
  fs.rmSync(dir, { recursive: true, force: true });
  stats.seconds = (Date.now() - t0) / 1000;
  return stats;
}

const MiB = (b) => (b / 2 ** 20).toFixed(1);

/** The table the harness prints: one row per format. */
export function table(all) {
  const rows = [['format', 'cases', 'accepted', 'typed errors', 'oracle-identical', 'both rejected', 'accepted disagreements', 'defects', 'RSS growth/case max, median (MiB)', 'peak RSS (MiB)', 'gzip bomb growth (MiB)', 'reruns', 'wall (s)']];
  for (const s of all)
    rows.push([
      s.format, s.cases, s.accepted, s.typed, ...(ORACLE[s.format] ? [s.identical, s.bothRejected, Object.values(s.disagreements).reduce((a, b) => a + b, 0)] : ['–', '–', '–']), s.defects.length,
      `${MiB(Math.max(...s.growth))}, ${MiB(median(s.growth))}`, MiB(s.peak), s.bombPeak === null ? '–' : MiB(s.bombPeak), s.reruns, s.seconds.toFixed(0),
    ]);
  const lines = rows.map((r) => `| ${r.join(' | ')} |`);
  lines.splice(1, 0, `|${rows[0].map(() => '---').join('|')}|`);
  for (const s of all)
    if (Object.keys(s.disagreements).length)
      lines.push('', `${s.format} disagreements with ${ORACLE[s.format]} (voxgrad stricter, typed error):`, ...Object.entries(s.disagreements).map(([k, n]) => `- ${k}: ${n}`));
  const nifti = all.find((s) => s.format === 'nifti');
  if (nifti?.noOracle) lines.push(`- nibabel not asked (volume over its 16M-voxel budget): ${nifti.noOracle}`);
  return lines.join('\n');
}

/** Runs the harness; resolves to one statistics object per format. */
export async function fuzz(options = {}) {
  const opts = { ...parseArgs([]), ...options };
  const dist = opts.dist;
  if (!fs.existsSync(path.join(dist, 'node.js'))) throw new Error('dist/ is missing: run npm run build first');
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-fuzz-'));
  try {
    const all = [];
    for (const format of opts.formats) all.push(await fuzzFormat(format, dist, opts, work));
    return all;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const opts = parseArgs(process.argv.slice(2));
  const t0 = Date.now();
  const all = await fuzz(opts);
  console.log(table(all));
  const defects = all.flatMap((s) => s.defects.map((d) => ({ format: s.format, ...d })));
  // defects grouped by kind (the message up to its first parenthesis or quote, numbers masked), then the first 50
  const kinds = new Map();
  for (const d of defects) {
    const kind = `${d.format}: ${d.defect.split(/[('"]/)[0].replace(/\d+/g, 'N').trim()}`;
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
  }
  for (const [kind, n] of [...kinds].sort((a, b) => b[1] - a[1])) console.log(`${String(n).padStart(6)} × ${kind}`);
  for (const d of defects.slice(0, 50)) console.log(`DEFECT ${d.format} case ${d.case}: ${d.what}: ${d.defect}`);
  console.log(`\nseed ${opts.seed}, ${opts.cases} cases per format, ${((Date.now() - t0) / 1000).toFixed(0)} s in all; ${defects.length} defects`);
  process.exit(defects.length ? 1 : 0);
}
