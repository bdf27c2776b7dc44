// End-to-end tests of the app in web/ (run by run.mjs in the same Chromium): warm-up and adapter banner, a NIfTI
// through the file input segmented with the shipped weights (Dice against its labels), a short registration, a short
// fine-tune with its loss curve, and the downloads read back here in Node (NIfTI and safetensors parsed from their
// bytes; the segmentation's Dice recomputed from the downloaded file).
// VOXGRAD_SCREENSHOT_DIR=<dir> saves screenshots of the page after segmentation and after registration.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import * as assert from 'uvu/assert';
import { buildApp, serve } from '../../web/serve.mjs';

const samples = fileURLToPath(new URL('../../web/samples/', import.meta.url));
const WARMUP_MS = 240_000;
const TASK_MS = 120_000;
/** Registration and fine-tuning compile their backward kernels first: minutes on SwiftShader when the machine is busy. */
const TRAIN_MS = 420_000;

/** A single-file NIfTI-1 (little-endian; .gz or not): dims and voxel values (uint8, int16, int32 or float32). */
export function parseNifti(bytes) {
  const b = bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipSync(bytes) : bytes;
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  assert.is(view.getInt32(0, true), 348, 'NIfTI-1 sizeof_hdr');
  const dims = Array.from({ length: view.getInt16(40, true) }, (_, i) => view.getInt16(42 + 2 * i, true));
  const datatype = view.getInt16(70, true);
  const offset = view.getFloat32(108, true);
  const count = dims.reduce((a, d) => a * d, 1);
  const readers = { 2: [1, (o) => view.getUint8(o)], 4: [2, (o) => view.getInt16(o, true)], 8: [4, (o) => view.getInt32(o, true)], 16: [4, (o) => view.getFloat32(o, true)] };
  assert.ok(readers[datatype], `datatype ${datatype}`);
  const [size, read] = readers[datatype];
  const slope = view.getFloat32(112, true) || 1;
  const inter = view.getFloat32(116, true);
  return { dims, values: Float64Array.from({ length: count }, (_, i) => read(offset + size * i) * slope + inter) };
}

/** Dice of label `l` between two label arrays. */
function dice(a, b, l) {
  let both = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    na += a[i] === l;
    nb += b[i] === l;
    both += a[i] === l && b[i] === l;
  }
  return (2 * both) / (na + nb);
}

/** Waits until the page's current task ends and checks its stage line (which says 'stopped: ...' on an error). */
async function expectStage(page, expected, timeout = TASK_MS) {
  await page.waitForFunction(() => document.body.dataset.busy === 'false', null, { timeout });
  const stage = await page.textContent('#stage');
  assert.is(stage, expected, `stage after the task: ${stage}`);
}

/** Clicks a download button and returns the downloaded bytes. */
async function download(page, button) {
  const [d] = await Promise.all([page.waitForEvent('download', { timeout: TASK_MS }), page.click(button)]);
  return { name: d.suggestedFilename(), bytes: readFileSync(await d.path()) };
}

/** Runs the app's tests with `test(name, fn)` (run.mjs's reporter); `info(text)` prints a measured line. */
export async function appTests(browser, test, info) {
  const { files } = await buildApp();
  const { server, url } = await serve(files);
  const page = await browser.newPage({ viewport: { width: 1280, height: 960 }, acceptDownloads: true });
  // on a software adapter under load the page's WebGL (NiiVue) can hold its main thread for many seconds
  page.setDefaultTimeout(TASK_MS);
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  const shots = process.env.VOXGRAD_SCREENSHOT_DIR;
  let labelsBytes;
  let pageDice;
  try {
    await test('app: warm-up with progress, then the adapter and a banner exactly when it is a software fallback', async () => {
      await page.goto(url);
      // the warm-up reports its stage while the worker compiles
      await page.waitForFunction(() => /compiling/.test(document.querySelector('#stage').textContent), null, { timeout: WARMUP_MS });
      await page.waitForFunction(() => document.body.dataset.ready === 'true', null, { timeout: WARMUP_MS });
      const adapter = await page.textContent('#adapter');
      const fallback = await page.evaluate(async () => Boolean((await navigator.gpu.requestAdapter()).info.isFallbackAdapter));
      assert.is(await page.isVisible('#fallback'), fallback, `fallback banner for "${adapter}"`);
      // a software adapter gets the worker-drawn slice view instead of NiiVue (whose WebGL would wait on the worker)
      assert.is(await page.getAttribute('body', 'data-viewer'), fallback ? 'slices' : 'niivue');
      info(`app adapter: ${adapter} (first-use warm-up ${(Number(await page.getAttribute('#adapter', 'data-warmup-ms')) / 1000).toFixed(1)} s)`);
    });

    await test('app: a NIfTI through the file input, segmented with the shipped weights: Dice against its labels', async () => {
      labelsBytes = readFileSync(join(samples, 'phantom-labels.nii.gz'));
      await page.setInputFiles('#labels-input', join(samples, 'phantom-labels.nii.gz'));
      await page.setInputFiles('#image-input', join(samples, 'phantom.nii.gz'));
      // the change event starts the load: wait for its result, then for the task (and the view) to finish
      await page.waitForFunction(() => document.querySelector('#loaded').dataset.shape, null, { timeout: TASK_MS });
      await expectStage(page, 'ready');
      assert.equal(JSON.parse(await page.getAttribute('#loaded', 'data-shape')), [64, 64, 2]);
      if ((await page.getAttribute('body', 'data-viewer')) === 'slices')
        assert.equal(await page.$$eval('#slices figcaption', (els) => els.map((e) => e.textContent)), ['slice 0', 'slice 1']);
      await page.click('#segment');
      await expectStage(page, 'ready');
      pageDice = JSON.parse(await page.getAttribute('#dice', 'data-values'));
      info(`app segmentation Dice: ${Object.entries(pageDice).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(', ')}`);
      // the shipped weights reach 0.87-0.90 per structure on held-out phantoms in Node (web/train-weights.mjs)
      for (const [structure, value] of Object.entries(pageDice)) assert.ok(value >= 0.8, `Dice ${structure} ${value}`);
      if (shots) await page.screenshot({ path: join(shots, 'browser-app-segmentation.png') });
    });

    await test('app: the segmentation download reads back as a NIfTI with the same Dice', async () => {
      const { name, bytes } = await download(page, '#dl-labels');
      assert.is(name, 'segmentation.nii.gz');
      const seg = parseNifti(bytes);
      const ref = parseNifti(labelsBytes);
      assert.equal(seg.dims, ref.dims);
      const names = { RV: 1, myocardium: 2, LV: 3 };
      for (const [structure, l] of Object.entries(names))
        assert.ok(Math.abs(dice(seg.values, ref.values, l) - pageDice[structure]) < 1e-9, `${structure}: file ${dice(seg.values, ref.values, l)}, page ${pageDice[structure]}`);
    });

    await test('app: registration with the heteroscedastic method (slice 1 onto 0, 32 x 32, 3 steps): loss falls; warped image, grid, Jacobian and variance map drawn; the warped NIfTI reads back', async () => {
      await page.selectOption('#reg-method', 'hetero');
      await page.fill('#fixed', '0');
      await page.fill('#moving', '1');
      await page.fill('#reg-size', '32');
      await page.fill('#reg-steps', '3');
      await page.click('#register');
      await expectStage(page, 'ready', TRAIN_MS);
      const losses = JSON.parse(await page.getAttribute('#loss', 'data-losses'));
      assert.is(losses.length, 3);
      assert.ok(losses.every(Number.isFinite) && losses.at(-1) < losses[0], `losses ${losses.map((v) => v.toFixed(4)).join(' ')}`);
      const first = Number(await page.getAttribute('#loss', 'data-first-step-ms'));
      const later = Number(await page.getAttribute('#loss', 'data-ms-per-step'));
      info(`app registration step (hetero, 32x32): first ${first.toFixed(0)} ms (compiles the registration kernels), then ${later.toFixed(0)} ms per step`);
      const figures = await page.$$eval('#pictures figure', (els) =>
        els.map((f) => {
          const c = f.querySelector('canvas');
          const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
          const colours = new Set();
          for (let i = 0; i < px.length; i += 4) colours.add((px[i] << 16) | (px[i + 1] << 8) | px[i + 2]);
          return { caption: f.querySelector('figcaption').textContent, width: c.width, colours: colours.size };
        }),
      );
      assert.equal(figures.map((f) => f.caption), ['fixed', 'moving', 'warped', 'deformation grid', 'Jacobian determinant', 'flow', 'variance (log σ²)']);
      // every picture is drawn at the registration's size, and the variance map is a map, not a constant
      assert.ok(figures.every((f) => f.width === 32), `widths ${figures.map((f) => f.width)}`);
      assert.ok(figures.at(-1).colours > 10, `the variance map has ${figures.at(-1).colours} colours`);
      const { name, bytes } = await download(page, '#dl-warped');
      assert.is(name, 'warped.nii.gz');
      const warped = parseNifti(bytes);
      assert.equal(warped.dims, [32, 32, 1]);
      assert.ok(warped.values.every(Number.isFinite));
      if (shots) await page.screenshot({ path: join(shots, 'browser-app-registration.png') });
    });

    await test('app: fine-tuning 3 steps draws the loss curve; cancel stops a long run; the weights download reads back', async () => {
      await page.fill('#ft-steps', '3');
      await page.click('#finetune');
      await expectStage(page, 'ready', TRAIN_MS);
      const losses = JSON.parse(await page.getAttribute('#loss', 'data-losses'));
      assert.is(losses.length, 3);
      assert.ok(losses.every((v) => Number.isFinite(v) && v > 0), `losses ${losses}`);
      const first = Number(await page.getAttribute('#loss', 'data-first-step-ms'));
      const later = Number(await page.getAttribute('#loss', 'data-ms-per-step'));
      info(`app fine-tuning step (2 slices 64x64): first ${first.toFixed(0)} ms (compiles the training kernels), then ${later.toFixed(0)} ms per step`);
      await page.fill('#ft-steps', '1000');
      await page.click('#finetune');
      await page.waitForFunction(() => JSON.parse(document.querySelector('#loss').dataset.losses ?? '[]').length >= 1, null, { timeout: TASK_MS });
      await page.click('#cancel');
      await expectStage(page, 'stopped: cancelled');
      const { name, bytes } = await download(page, '#dl-weights');
      assert.is(name, 'unet-phantom-finetuned.safetensors');
      const headerLength = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
      const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8'));
      assert.equal(JSON.parse(header.__metadata__.features), [4, 8, 16, 32, 64]);
      const shipped = readFileSync(fileURLToPath(new URL('../../web/weights/unet-phantom.safetensors', import.meta.url)));
      const shippedLength = Number(new DataView(shipped.buffer, shipped.byteOffset).getBigUint64(0, true));
      const shippedHeader = JSON.parse(shipped.subarray(8, 8 + shippedLength).toString('utf8'));
      const shapes = (h) => Object.fromEntries(Object.entries(h).filter(([k]) => k !== '__metadata__').map(([k, v]) => [k, [v.dtype, v.shape]]));
      assert.equal(shapes(header), shapes(shippedHeader));
      assert.is(bytes.length - 8 - headerLength, shipped.length - 8 - shippedLength, 'tensor data bytes');
      assert.equal(errors, [], 'page errors');
    });

    await test('app: NiiVue (?viewer=niivue, the hardware default) shows the loaded volume with its labels, then the segmentation, as overlays', async () => {
      await page.close(); // one page at a time: the software GPU process is shared
      const nvPage = await browser.newPage({ viewport: { width: 1280, height: 960 } });
      nvPage.setDefaultTimeout(TASK_MS);
      nvPage.on('pageerror', (e) => errors.push(e.message));
      try {
        await nvPage.goto(`${url}?viewer=niivue`);
        await nvPage.waitForFunction(() => document.body.dataset.ready === 'true', null, { timeout: WARMUP_MS });
        assert.is(await nvPage.getAttribute('body', 'data-viewer'), 'niivue');
        assert.ok(await nvPage.isVisible('#niivue'), 'the NiiVue canvas is shown');
        await nvPage.setInputFiles('#labels-input', join(samples, 'phantom-labels.nii.gz'));
        await nvPage.setInputFiles('#image-input', join(samples, 'phantom.nii.gz'));
        await nvPage.waitForFunction(() => document.body.dataset.niivue, null, { timeout: TASK_MS });
        await expectStage(nvPage, 'ready');
        const shown = () => nvPage.getAttribute('body', 'data-niivue').then(JSON.parse);
        const loaded = await shown();
        assert.equal(loaded.map((v) => v.dims), [[64, 64, 2], [64, 64, 2]], 'image and labels');
        assert.is(loaded[1].colormap, 'warm', 'the labels are an overlay');
        await nvPage.evaluate(() => delete document.body.dataset.niivue);
        await nvPage.click('#segment');
        await nvPage.waitForFunction(() => document.body.dataset.niivue, null, { timeout: TASK_MS });
        await expectStage(nvPage, 'ready');
        assert.equal((await shown()).map((v) => v.dims), [[64, 64, 2], [64, 64, 2]], 'image and segmentation');
        if (shots) await nvPage.screenshot({ path: join(shots, 'browser-app-niivue.png') });
        assert.equal(errors, [], 'page errors');
      } finally {
        await nvPage.close();
      }
    });
  } finally {
    if (!page.isClosed()) await page.close();
    server.close();
  }
}
