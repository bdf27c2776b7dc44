// Mutation check of the backward rules: does a test notice when one rule's gradients are 1% wrong?
//
// Works in a temporary copy of the repository (the working tree is never touched): the statement under the
// `@mutation-point` marker (in the tape's backward loop, one file under src/) is wrapped so that a hook, preloaded
// into every test process through NODE_OPTIONS, sees each backward rule's gradients. One build serves every run:
//   - a coverage run (no mutation) records which op backward rules each test file executes, and how long it takes;
//   - then, per rule, VG_MUTATE=<op name> multiplies that rule's gradients by 1.01 and the files covering the rule
//     run fastest first until one fails (caught) or none does (not caught);
//   - a rule whose gradients are all zero (sign, floor: scaling changes nothing) is perturbed additively instead: its
//     derivative is made 0.01 where it is 0 (gradient + 0.01 x the upstream gradient, where their shapes agree).
// Usage: node scripts/mutation-check.mjs [--ops a,b] [--files substr,...] [--jobs 1|2] [--keep]
// (--files limits the test files to those whose name contains a substring: a quicker, partial check)
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const MARKER = "// @mutation-point: a backward rule's gradients are produced here";
const FACTOR = 1.01;
/** The additive form for all-zero rules: derivative 0 becomes this (1% of a unit slope). */
const OFFSET = 0.01;

function parseArgs(argv) {
  const opts = { ops: null, files: null, jobs: 1, keep: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--ops') opts.ops = argv[++i].split(',').map((s) => s.trim()).filter(Boolean);
    else if (a === '--files') opts.files = argv[++i].split(',').map((s) => s.trim()).filter(Boolean);
    else if (a === '--jobs') opts.jobs = Number(argv[++i]);
    else if (a === '--keep') opts.keep = true;
    else throw new Error(`mutation-check: unknown argument ${a} (known: --ops a,b, --files substr,..., --jobs 1|2, --keep)`);
  }
  if (opts.jobs !== 1 && opts.jobs !== 2) throw new Error(`mutation-check: --jobs must be 1 or 2, got ${opts.jobs}`);
  return opts;
}

/** The tracked and untracked-but-not-ignored files of the working tree, copied as they are now. */
function copyRepository(repo, dest) {
  const list = spawnSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: repo, encoding: 'utf8' });
  if (list.status !== 0) throw new Error(`mutation-check: git ls-files failed: ${list.stderr}`);
  for (const f of list.stdout.split('\0').filter(Boolean)) {
    if (f === 'node_modules') continue;
    const from = join(repo, f);
    if (!existsSync(from)) continue; // deleted in the working tree
    mkdirSync(dirname(join(dest, f)), { recursive: true });
    cpSync(from, join(dest, f));
  }
  symlinkSync(realpathSync(join(repo, 'node_modules')), join(dest, 'node_modules'));
}

/** Index just past the statement starting at `from` (the first `;` outside brackets). */
function statementEnd(src, from) {
  let depth = 0;
  for (let i = from; i < src.length; i++) {
    const c = src[i];
    if (c === '(' || c === '[' || c === '{') depth++;
    else if (c === ')' || c === ']' || c === '}') depth--;
    else if (c === ';' && depth === 0) return i + 1;
  }
  throw new Error('mutation-check: no end found for the statement under the marker');
}

/** The one source file under src/ holding the marker (the tape's backward loop). */
function markedFile(work) {
  const found = [];
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts') && readFileSync(p, 'utf8').includes(MARKER)) found.push(p);
    }
  };
  walk(join(work, 'src'));
  if (found.length !== 1) throw new Error(`mutation-check: expected the marker "${MARKER}" in one file under src/, found it in ${found.length}`);
  return found[0];
}

/**
 * Wraps `[const] grads = <expr>;` under the marker as `[const] grads = mutationProbe(node.op.name, <expr>, g);`, where
 * g is the upstream gradient: the first argument of the rule call in <expr>.
 */
function patchBackwardLoop(path) {
  const src = readFileSync(path, 'utf8');
  const at = src.indexOf(MARKER);
  const start = src.indexOf('\n', at) + 1;
  const end = statementEnd(src, start);
  const m = /^(\s*(?:(?:const|let)\s+)?[A-Za-z_$][\w$]*\s*=\s*)([\s\S]*);$/.exec(src.slice(start, end));
  if (!m) throw new Error(`mutation-check: the statement under the marker is not \`[const|let] name = expression;\`:\n${src.slice(start, end)}`);
  const upstream = /\brule\(\s*([A-Za-z_$][\w$]*)\s*,/.exec(m[2]);
  if (!upstream) throw new Error(`mutation-check: no \`rule(<gradient>, ...)\` call in the statement under the marker:\n${m[2]}`);
  const patched = `${m[1]}mutationProbe(node.op.name, ${m[2]}, ${upstream[1]});`;
  const probe = `
function mutationProbe(opName: string, grads: any, upstream: any): any {
  const hook = (globalThis as any).__vgBackwardProbe;
  return hook ? hook(opName, grads, upstream) : grads;
}
`;
  writeFileSync(path, src.slice(0, start) + patched + src.slice(end) + probe);
}

/** Preloaded into every test process (and its children) through NODE_OPTIONS. */
const HOOK = `
import { appendFileSync } from 'node:fs';
const log = process.env.VG_BACKWARD_LOG;
const target = process.env.VG_MUTATE;
const seen = new Set();
const zeroCheck = process.env.VG_ZERO_CHECK === '1';
const additive = process.env.VG_MUTATE_ADD === '1';
let mutated = 0;
let nonzero = 0;
let failedEarly = false;
const pending = [];
const sameShape = (a, b) => a.shape.length === b.shape.length && a.shape.every((d, i) => d === b.shape[i]);
const scale = (t, upstream) => {
  if (!t || typeof t.mul !== 'function') return t;
  if (additive) {
    if (!upstream || !sameShape(t, upstream)) return t;
    const m = t.add(upstream.mul(${OFFSET}));
    t.dispose();
    mutated++;
    return m;
  }
  if (zeroCheck) {
    // a rule whose gradients are all zero is unchanged by scaling: the run then perturbs it additively
    const peak = t.abs().max();
    pending.push(peak.data().then((d) => { if (d[0] !== 0) nonzero++; peak.dispose(); }, () => nonzero++));
  }
  const m = t.mul(${FACTOR});
  t.dispose();
  mutated++;
  return m;
};
globalThis.__vgBackwardProbe = (opName, grads, upstream) => {
  seen.add(opName);
  if (opName !== target) return grads;
  return Array.isArray(grads) ? grads.map((t) => scale(t, upstream)) : scale(grads, upstream);
};
// with a mutation active, the first failing test decides: uvu writes its ✘ mark as the test fails, so exit there
// instead of running the rest of the file
if (target) {
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = (chunk, ...rest) => {
    const done = write(chunk, ...rest);
    if (String(chunk).includes('\u2718')) {
      failedEarly = true;
      process.exit(1);
    }
    return done;
  };
}
let settled = false;
process.on('beforeExit', async () => {
  if (settled || !pending.length) return;
  settled = true;
  await Promise.all(pending);
});
process.on('exit', () => {
  const lines = [...seen, ...(target ? ['mutated ' + mutated] : []), ...(zeroCheck ? ['nonzero ' + nonzero] : []), ...(failedEarly ? ['failed'] : [])];
  if (log) appendFileSync(log, lines.map((l) => l + '\\n').join(''));
});
`;

function run(cmd, args, { cwd, env, timeoutMs }) {
  return new Promise((resolvePromise) => {
    const started = Date.now();
    const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolvePromise({ code, out, timedOut, seconds: (Date.now() - started) / 1000 });
    });
  });
}

async function pool(items, jobs, fn) {
  let next = 0;
  const workers = Array.from({ length: Math.min(jobs, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]);
  });
  await Promise.all(workers);
}

/** Differentiable ops: the registry's list when the build has one, else every rule the coverage run saw. */
async function differentiableOps(work) {
  const probe = spawnSync(
    process.execPath,
    ['--input-type=module', '-e', "import * as vg from 'voxgrad'; console.log(JSON.stringify(typeof vg.listOps === 'function' ? vg.listOps() : null));"],
    { cwd: work, encoding: 'utf8', env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' } },
  );
  const listed = probe.status === 0 ? JSON.parse(probe.stdout.trim().split('\n').pop()) : null;
  return listed ? listed.filter((o) => o.differentiable && !o.composite).map((o) => o.name) : null;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const t0 = Date.now();
  const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
  const work = mkdtempSync(join(tmpdir(), 'voxgrad-mutation-'));
  const env = { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp', FORCE_COLOR: '0' };
  try {
    copyRepository(repo, work);
    patchBackwardLoop(markedFile(work));
    const hookPath = join(work, '.mutation-hook.mjs');
    writeFileSync(hookPath, HOOK);
    const build = spawnSync(process.execPath, ['scripts/build.mjs'], { cwd: work, encoding: 'utf8', env });
    if (build.status !== 0) throw new Error(`mutation-check: build of the patched copy failed:\n${build.stdout}${build.stderr}`);
    env.NODE_OPTIONS = `${env.NODE_OPTIONS ?? ''} --import ${hookPath}`.trim();
    const logs = join(work, '.mutation-logs');
    mkdirSync(logs);

    // coverage run: which rules each test file executes, how long it takes, and that it passes unmutated
    const files = readdirSync(join(work, 'test'))
      .filter((f) => f.endsWith('.test.mjs'))
      .filter((f) => !opts.files || opts.files.some((s) => f.includes(s)))
      .sort();
    const baseline = new Map();
    console.log(`coverage run over ${files.length} test files (jobs ${opts.jobs})`);
    await pool(files, opts.jobs, async (f) => {
      const log = join(logs, `cover-${f}.txt`);
      const r = await run(process.execPath, [`test/${f}`], { cwd: work, env: { ...env, VG_BACKWARD_LOG: log }, timeoutMs: 900_000 });
      const ops = existsSync(log) ? new Set(readFileSync(log, 'utf8').split('\n').filter(Boolean)) : new Set();
      baseline.set(f, { ok: r.code === 0 && !r.timedOut, seconds: r.seconds, ops });
      console.log(`  ${r.code === 0 ? '✔' : '✘'} ${f} ${r.seconds.toFixed(1)} s, ${ops.size} backward rules`);
      if (r.code !== 0) console.log(r.out.split('\n').filter((l) => !l.includes('artificially reduced')).slice(-40).join('\n'));
    });
    const failing = files.filter((f) => !baseline.get(f).ok);
    if (failing.length) console.log(`not used (fail without mutation): ${failing.join(', ')}`);
    const seenOps = new Set(files.flatMap((f) => (baseline.get(f).ok ? [...baseline.get(f).ops] : [])));
    const listed = await differentiableOps(work);
    let targets = listed ? [...new Set([...listed, ...seenOps])].sort() : [...seenOps].sort();
    if (opts.ops) {
      const unknown = opts.ops.filter((o) => !targets.includes(o));
      if (unknown.length) console.log(`no test executes the backward rule of: ${unknown.join(', ')}`);
      targets = opts.ops;
    }

    const results = new Map();
    console.log(`\nperturbing ${targets.length} backward rules by ${FACTOR}x, one at a time`);
    await pool(targets, opts.jobs, async (op) => {
      const covering = files.filter((f) => baseline.get(f).ok && baseline.get(f).ops.has(op)).sort((a, b) => baseline.get(a).seconds - baseline.get(b).seconds);
      const tried = [];
      /** Runs the covering files (fastest first) with the mutation until one fails: the catching file, or null. */
      const firstCatch = async (form, extraEnv) => {
        for (const f of covering) {
          const log = join(logs, `mutate-${form}-${op}-${f}.txt`);
          const limit = Math.max(60_000, baseline.get(f).seconds * 4000);
          const r = await run(process.execPath, [`test/${f}`], { cwd: work, env: { ...env, ...extraEnv, VG_MUTATE: op, VG_BACKWARD_LOG: log }, timeoutMs: limit });
          const fired = existsSync(log) && /mutated [1-9]/.test(readFileSync(log, 'utf8'));
          tried.push(f);
          if (r.timedOut) console.log(`  (${op}: ${f} ran past ${limit / 1000} s; not counted as a catch)`);
          else if (r.code !== 0 && !fired) console.log(`  (${op}: ${f} failed but the mutation never fired; not counted)`);
          else if (r.code !== 0) {
            // the test that failed is the one after the last passing mark (•) uvu printed
            const marks = r.out.match(/[\u2022\u2718]/g) ?? [];
            return { file: f, test: `its test number ${marks.length}`, form };
          }
        }
        return null;
      };
      let caughtBy = await firstCatch('scaled', {});
      // a rule whose gradients are all zero wherever it ran is unchanged by x 1.01: perturb its derivative additively
      let allZero = false;
      if (!caughtBy && covering.length) {
        const log = join(logs, `zero-${op}.txt`);
        await run(process.execPath, [`test/${covering[0]}`], { cwd: work, env: { ...env, VG_MUTATE: op, VG_ZERO_CHECK: '1', VG_BACKWARD_LOG: log }, timeoutMs: 900_000 });
        allZero = existsSync(log) && /nonzero 0\n/.test(readFileSync(log, 'utf8')) && /mutated [1-9]/.test(readFileSync(log, 'utf8'));
        if (allZero) caughtBy = await firstCatch('additive', { VG_MUTATE_ADD: '1' });
      }
      results.set(op, { covering, tried, caughtBy, allZero });
      const line = caughtBy
        ? `caught by ${caughtBy.file}${caughtBy.test ? `: ${caughtBy.test}` : ''}${caughtBy.form === 'additive' ? ` (all-zero rule: derivative 0 made ${OFFSET})` : ''}`
        : allZero
          ? `NOT caught: its gradients are all zero in ${covering[0]}, and making its derivative ${OFFSET} is not caught either`
          : covering.length
          ? `NOT caught (${covering.length} covering files passed: ${covering.join(', ')})`
          : 'NOT caught (no test file executes this rule)';
      console.log(`  ${caughtBy ? '✔' : '✘'} ${op}: ${line}`);
    });

    const caught = targets.filter((op) => results.get(op).caughtBy);
    const additiveOnly = caught.filter((op) => results.get(op).caughtBy.form === 'additive');
    const missed = targets.filter((op) => !results.get(op).caughtBy);
    const secs = (Date.now() - t0) / 1000;
    const share = (n, d) => `${((100 * n) / Math.max(1, d)).toFixed(1)} %`;
    console.log(`\nrules perturbed: ${targets.length}`);
    console.log(`caught: ${caught.length}`);
    console.log(`not caught: ${missed.length}${missed.length ? ` (${missed.join(', ')})` : ''}`);
    console.log(`of these, all-zero rules caught through the additive form: ${additiveOnly.length}${additiveOnly.length ? ` (${additiveOnly.join(', ')})` : ''}`);
    console.log(`share caught: ${share(caught.length, targets.length)}`);
    console.log(`wall time: ${(secs / 60).toFixed(1)} min`);
    if (opts.keep) console.log(`temporary copy kept at ${work}`);
    process.exitCode = missed.length ? 1 : 0;
  } finally {
    if (!opts.keep) rmSync(work, { recursive: true, force: true });
  }
}

await main();
