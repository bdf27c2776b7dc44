// First-use pipeline compile time per kernel in headless Chromium (SwiftShader where there is no GPU): the page runs
// the app's work (segmentation forward, a registration step per size, a fine-tuning step) to collect the kernels it
// builds on this adapter (their WGSL can depend on it), then compiles each one alone on a fresh device, with a unique
// comment so that no cache answers. Prints one line per kernel as it finishes.
//   node bench/web-compile.mjs [pattern] [sizes]   pattern: a regular expression the kernel names must match
//   (default all); sizes: registration slice sizes, comma-separated (default 32; 64 takes a weight-gradient kernel
//   that SwiftShader does not compile in 5 minutes, after which the device is lost)
// Env: VOXGRAD_CHROMIUM (default /usr/bin/chromium).
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { chromium } from 'playwright-core';
import { pageBundle } from '../test/browser/page-bundle.mjs';

const pattern = new RegExp(process.argv[2] ?? '');
const sizes = (process.argv[3] ?? '32').split(',').map(Number);
const bundle = await pageBundle('bench/web-compile-page.mjs');
const files = {
  '/': ['text/html', '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><script type="module" src="/page.js"></script>'],
  '/page.js': ['text/javascript', bundle],
  '/unet-phantom.safetensors': ['application/octet-stream', readFileSync(new URL('../web/weights/unet-phantom.safetensors', import.meta.url))],
};
const server = http.createServer((req, res) => {
  const file = files[req.url];
  if (!file) res.writeHead(404).end();
  else res.writeHead(200, { 'content-type': file[0] }).end(file[1]);
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const browser = await chromium.launch({ executablePath: process.env.VOXGRAD_CHROMIUM ?? '/usr/bin/chromium', headless: true, args: ['--headless=new', '--no-sandbox', '--enable-unsafe-webgpu'] });
const page = await browser.newPage();
page.on('pageerror', (e) => console.error(`page error: ${e.message}`));
await page.exposeFunction('__report', (line) => console.log(line));
await page.goto(`http://127.0.0.1:${server.address().port}/`);
await page.waitForFunction(() => window.__compile);
const { adapter, kernels } = await page.evaluate((s) => window.__collect(s), sizes);
const chosen = kernels.filter((k) => pattern.test(k.name));
console.log(`${adapter}: ${chosen.length} of the ${kernels.length} kernels, one at a time`);
const total = await page.evaluate((list) => window.__compile(list), chosen);
console.log(`${(total / 1000).toFixed(1)} s in all`);
await browser.close();
server.close();
