#!/usr/bin/env node
// Runs test/browser/tests.mjs inside headless Chromium with WebGPU: bundles it (with voxgrad from src/, as
// scripts/build.mjs bundles dist/voxgrad.min.js) in memory, serves it from 127.0.0.1 (WebGPU needs a secure context),
// streams each test's result here and exits non-zero on a failure, a page error, a missing WebGPU, or a timeout.
//   node test/browser/run.mjs [library | app]  (both by default)
// Then the app's end-to-end tests (test/browser/app.mjs) in the same browser.
// Env: VOXGRAD_CHROMIUM (default /usr/bin/chromium), VOXGRAD_BROWSER_TIMEOUT_S (default 900),
// VOXGRAD_SCREENSHOT_DIR (app screenshots).
import { existsSync } from 'node:fs';
import http from 'node:http';
import { stripVTControlCharacters } from 'node:util';
import { chromium } from 'playwright-core';
import { pageBundle } from './page-bundle.mjs';
import { appTests } from './app.mjs';

const executablePath = process.env.VOXGRAD_CHROMIUM ?? '/usr/bin/chromium';
const part = process.argv[2];
if (part !== undefined && part !== 'library' && part !== 'app') {
  console.error(`usage: node test/browser/run.mjs [library | app], got '${part}'`);
  process.exit(2);
}
const timeoutS = Number(process.env.VOXGRAD_BROWSER_TIMEOUT_S ?? 900);
const ARGS = [
  '--headless=new',
  '--no-sandbox',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
  '--enable-unsafe-webgpu',
];

const t0 = performance.now();
let passed = 0;
let failed = 0;
let current = null;
const pageErrors = [];
const during = () => (current ? ` while running "${current}"` : '');

/** Prints the summary (its last line: `N passed, M failed`) and exits; Playwright kills its browser on exit. */
function finish(reason) {
  if (reason) console.error(`\nbrowser tests aborted: ${reason}`);
  if (pageErrors.length) console.error(`\n${pageErrors.length} page error(s), listed above: they fail the run`);
  console.log(`\nbrowser tests took ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(reason || failed || pageErrors.length || passed === 0 ? 1 : 0);
}

const guard = setTimeout(() => finish(`timed out after ${timeoutS} s${during()} (VOXGRAD_BROWSER_TIMEOUT_S raises the limit)`), timeoutS * 1000);

if (!existsSync(executablePath))
  finish(
    `Chromium not found at ${executablePath}. Install it (Debian: \`apt-get install -y --no-install-recommends chromium\`, ` +
      'which `npm run setup` does), or set VOXGRAD_CHROMIUM to a Chromium or Chrome binary.',
  );

const bundle = await pageBundle('test/browser/tests.mjs').catch((e) => finish(`bundling test/browser/tests.mjs failed: ${e.message}`));
const files = {
  '/': ['text/html', '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><script type="module" src="/tests.js"></script>'],
  '/tests.js': ['text/javascript', bundle],
};
const server = http.createServer((req, res) => {
  const file = files[req.url];
  if (!file) res.writeHead(404).end();
  else res.writeHead(200, { 'content-type': file[0], 'cache-control': 'no-store' }).end(file[1]);
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const url = `http://127.0.0.1:${server.address().port}/`;

// Playwright gives the browser a fresh temporary profile (--user-data-dir) and deletes it on close
const browser = await chromium
  .launch({ executablePath, headless: true, args: ARGS })
  .catch((e) => finish(`Chromium at ${executablePath} failed to start: ${e.message}`));
const page = await browser.newPage();

/** An error outside a test's own assertions (uncaught exception, WebGPU validation error): fails the run. */
function pageError(text) {
  pageErrors.push(text);
  console.error(`page error${during()}: ${text}`);
}
page.on('pageerror', (e) => pageError(e.stack ?? String(e)));
page.on('crash', () => finish(`the page crashed${during()}`));
page.on('console', (msg) => {
  // voxgrad reports uncaptured WebGPU (validation) errors through console.error
  if (msg.type() === 'error') pageError(msg.text());
  else console.log(`[page ${msg.type()}] ${msg.text()}`);
});
await page.exposeFunction('__vgReport', (ev) => {
  if (ev.kind === 'start') current = ev.name;
  else if (ev.kind === 'info') console.log(`  ${ev.text}`);
  else if (ev.kind === 'pass') {
    passed++;
    console.log(`✓ ${ev.name} (${Math.round(ev.ms)} ms)`);
  } else {
    failed++;
    // uvu's diff is coloured for a terminal (kleur sees no `process` in the page): plain text for CI logs
    const error = stripVTControlCharacters(ev.error).trimEnd();
    console.log(`✗ ${ev.name} (${Math.round(ev.ms)} ms)\n    ${error.replace(/\n/g, '\n    ')}`);
  }
});

await page.goto(url);
const version = browser.version();
const noGpu = await page.evaluate(async () => {
  if (!window.isSecureContext) return `${location.origin} is not a secure context`;
  if (!navigator.gpu) return 'navigator.gpu is missing';
  return (await navigator.gpu.requestAdapter()) ? null : 'navigator.gpu.requestAdapter() returned null';
});
if (noGpu) finish(`WebGPU is unavailable in Chromium ${version}: ${noGpu} (flags: ${ARGS.join(' ')})`);
if (!(await page.evaluate(() => typeof window.__vgRun === 'function'))) finish('the test bundle did not load');
console.log(`Chromium ${version}, ${url}`);

if (part !== 'app') await page.evaluate(() => window.__vgRun()).catch((e) => finish(`the test run stopped: ${e.message}`));
current = null;

// the app in web/, driven through its page (test/browser/app.mjs)
if (part !== 'library') {
  await appTests(
    browser,
    async (name, fn) => {
      current = name;
      const started = performance.now();
      try {
        await fn();
        passed++;
        console.log(`✓ ${name} (${Math.round(performance.now() - started)} ms)`);
      } catch (e) {
        failed++;
        // uvu's assertions keep their diff in `details`, apart from the stack
        const text = [e?.stack ?? String(e), e?.details ? stripVTControlCharacters(e.details) : ''].join('\n').trimEnd();
        console.log(`✗ ${name} (${Math.round(performance.now() - started)} ms)\n    ${text.replace(/\n/g, '\n    ')}`);
      }
      current = null;
    },
    (text) => console.log(`  ${text}`),
  ).catch((e) => finish(`the app tests stopped: ${e.message}`));
}
clearTimeout(guard);
await browser.close();
server.close();
finish(null);
