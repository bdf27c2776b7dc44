// Runs the Node test files (uvu, each in its own process so a crash names its file) and the browser tests,
// then prints one summary line. Optional arguments filter test files by substring.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';

const filters = process.argv.slice(2);
const files = readdirSync('test')
  .filter((f) => f.endsWith('.test.mjs'))
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort();
let passed = 0;
let failed = 0;
const broken = [];
const t0 = Date.now();
for (const f of files) {
  const started = Date.now();
  const r = spawnSync(process.execPath, [`test/${f}`], { encoding: 'utf8', env: { ...process.env, FORCE_COLOR: '0' } });
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
