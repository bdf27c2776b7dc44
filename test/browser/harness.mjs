// In-page test registry for the browser run: tests run one after another and each result is sent to the Node
// runner through the `__vgReport` binding (installed by run.mjs), so the console shows progress as it happens.
const tests = [];

export function test(name, fn) {
  tests.push({ name, fn });
}

/** Sends an event to run.mjs; awaited so that events arrive in order. */
export const report = (event) => globalThis.__vgReport(event);

/** Runs every registered test; run.mjs calls this (as window.__vgRun) after its WebGPU preflight. */
async function run() {
  for (const { name, fn } of tests) {
    await report({ kind: 'start', name });
    const t0 = performance.now();
    try {
      await fn();
      await report({ kind: 'pass', name, ms: performance.now() - t0 });
    } catch (e) {
      // uvu assertions carry an actual/expected diff in `details`
      const error = [e?.stack ?? String(e), e?.details].filter(Boolean).join('\n');
      await report({ kind: 'fail', name, ms: performance.now() - t0, error });
    }
  }
}

globalThis.__vgRun = run;
