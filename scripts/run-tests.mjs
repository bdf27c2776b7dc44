// Runs the Node test files (uvu, each in its own process so a crash names its file) and the browser tests,
// then prints one summary line. Optional arguments filter test files by substring. A full run (no filter) also
// checks op coverage: every op in vg.listOps() must be compared with a reference in some test file and, if
// differentiable, have its gradient checked (test/helpers.mjs records both per file from the library's op counters).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as vg from 'voxgrad';

const filters = process.argv.slice(2);
const files = readdirSync('test')
  .filter((f) => f.endsWith('.test.mjs'))
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort();
let passed = 0;
let failed = 0;
const broken = [];
const t0 = Date.now();
const coverageDir = filters.length === 0 && typeof vg.listOps === 'function' ? mkdtempSync(join(tmpdir(), 'voxgrad-coverage-')) : null;
const testEnv = { ...process.env, FORCE_COLOR: '0', ...(coverageDir ? { VG_COVERAGE_DIR: coverageDir } : {}) };
for (const f of files) {
  const started = Date.now();
  const r = spawnSync(process.execPath, [`test/${f}`], { encoding: 'utf8', env: testEnv });
  const out = (r.stdout ?? '') + (r.stderr ?? '');
  const total = Number(/Total:\s+(\d+)/.exec(out)?.[1] ?? 0);
  const ok = Number(/Passed:\s+(\d+)/.exec(out)?.[1] ?? 0);
  passed += ok;
  failed += total - ok;
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  if (r.status !== 0 || total === 0 || ok !== total) {
    broken.push(f);
    if (total === 0) failed++;
    console.log(`✘ ${f}: ${ok}/${total} passed (${secs} s, exit ${r.status})`);
    console.log(out.split('\n').filter((l) => !l.includes('artificially reduced')).join('\n'));
  } else console.log(`✔ ${f}: ${ok} passed (${secs} s)`);
}
if (coverageDir) {
  const uncovered = opCoverageGaps(coverageDir);
  rmSync(coverageDir, { recursive: true, force: true });
  if (uncovered.length) {
    broken.push('op coverage');
    failed++;
    console.log(`✘ op coverage: ${uncovered.length} ops lack a test:\n${uncovered.map((u) => `    ${u}`).join('\n')}`);
  } else console.log(`✔ op coverage: every op in vg.listOps() has a reference test, and a gradient check if differentiable`);
} else if (filters.length === 0) console.log('op coverage not checked: this build has no vg.listOps()');
if (filters.length === 0 || filters.includes('browser')) {
  const r = spawnSync(process.execPath, ['test/browser/run.mjs'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const out = r.stdout ?? '';
  process.stdout.write(out);
  const m = /^(\d+) passed, (\d+) failed/m.exec(out);
  passed += Number(m?.[1] ?? 0);
  failed += Number(m?.[2] ?? 0);
  if (r.status !== 0 || !m) {
    broken.push('browser');
    if (!m) failed++;
  }
}
console.log(`\n${((Date.now() - t0) / 1000).toFixed(0)} s${broken.length ? `; failing: ${broken.join(', ')}` : ''}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed || broken.length ? 1 : 0);

/** Ops of vg.listOps() that no test file compared with a reference, or whose gradient none checked. */
function opCoverageGaps(dir) {
  const referenced = new Set();
  const gradForward = new Set();
  const gradBackward = new Set();
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.json'))) {
    const rec = JSON.parse(readFileSync(join(dir, f), 'utf8'));
    rec.referenced.forEach((n) => referenced.add(n));
    rec.gradForward.forEach((n) => gradForward.add(n));
    rec.gradBackward.forEach((n) => gradBackward.add(n));
  }
  const gaps = [];
  for (const op of vg.listOps()) {
    const missing = [];
    if (!referenced.has(op.name)) missing.push('no reference comparison');
    // a primitive's own backward rule must run in a gradient check; a composite's gradient comes from the ops it calls
    if (op.differentiable && !(op.composite ? gradForward : gradBackward).has(op.name)) missing.push('no gradient check');
    if (missing.length) gaps.push(`${op.name}${op.via ? ` (vg.${op.via})` : ''}: ${missing.join(', ')}`);
  }
  return gaps;
}
