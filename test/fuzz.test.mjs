// The fuzzing harness (scripts/fuzz/run.mjs) at test size: seeded cases of every format, each in a child process
// with a time and memory limit, NIfTI against nibabel. Fails on any defect (crash, hang, exception other than a
// VoxgradError/usage error, silent difference from nibabel, leak, prototype pollution, memory over the limit).
// Long runs: npm run fuzz -- --cases 10000.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fuzz, table, FORMATS } from '../scripts/fuzz/run.mjs';

const CASES = { nifti: 120, safetensors: 60, nrrd: 60, checkpoint: 40, config: 40 };

for (const format of FORMATS)
  test(`fuzz ${format}: ${CASES[format]} seeded cases, no defect`, async () => {
    const [stats] = await fuzz({ formats: [format], cases: CASES[format], seed: 12, batch: 40, quiet: true });
    console.log(`\n${table([stats])}`);
    assert.is(stats.cases, CASES[format]);
    // the run must exercise both sides: files read and files refused
    assert.ok(stats.accepted > 0 && stats.typed > 0, `accepted ${stats.accepted}, typed errors ${stats.typed}`);
    if (format === 'nifti') assert.ok(stats.identical > 0, 'no case compared identical with nibabel');
    assert.equal(stats.defects.map((d) => `case ${d.case} (${d.what}): ${d.defect}`), []);
  });

test.run();
