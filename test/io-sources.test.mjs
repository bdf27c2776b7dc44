// vg.io in web pages, checked in Node (Blob, File and Response exist in Node 20): every reader takes a path, a file:
// or http: URL, a File, a Blob, a Response, an ArrayBuffer or a Uint8Array and reads the same image; errors for bad
// responses and sources; without a file system (the browser build, dist/esm) strings are URLs resolved against the
// location and writers name the encoder and vg.io.download; download's error outside a page; toImageData against a
// float64 windowing and overlay reference.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { assertThrowsWith, markReferenceComparison, rng, setup, vg } from './helpers.mjs';
import { rejectsWith } from './io-helpers.mjs';

test.before(setup);

const here = path.dirname(fileURLToPath(import.meta.url));
const niftiPath = path.join(here, 'fixtures', 'nifti', 'dtype_float32.nii.gz');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-sources-'));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Serves `bytes` at /image.nii.gz (404 elsewhere) on 127.0.0.1 while `fn(origin)` runs. */
async function serving(bytes, fn) {
  const server = http.createServer((req, res) => {
    if (req.url === '/image.nii.gz') res.writeHead(200, { 'content-type': 'application/gzip' }).end(bytes);
    else res.writeHead(404).end();
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    return await fn(`http://127.0.0.1:${server.address().port}`);
  } finally {
    server.close();
  }
}

async function image(source) {
  const img = await vg.io.readNifti(source);
  const out = { shape: [...img.tensor.shape], data: Array.from(await img.tensor.data()), affine: img.affine };
  img.tensor.dispose();
  return out;
}

test('readNifti reads the same image from a path, file: URL, http URL, File, Blob, Response, ArrayBuffer and Uint8Array', async () => {
  const bytes = new Uint8Array(fs.readFileSync(niftiPath));
  const expected = await image(niftiPath);
  assert.ok(expected.data.length > 1);
  await serving(bytes, async (origin) => {
    const sources = {
      'file: URL': pathToFileURL(niftiPath),
      'file: URL string': pathToFileURL(niftiPath).href,
      'http URL': new URL('/image.nii.gz', origin),
      'http URL string': `${origin}/image.nii.gz`,
      File: new File([bytes], 'brain.nii.gz'),
      Blob: new Blob([bytes]),
      Response: await fetch(`${origin}/image.nii.gz`),
      ArrayBuffer: bytes.slice().buffer,
      Uint8Array: bytes,
    };
    for (const [kind, source] of Object.entries(sources)) assert.equal(await image(source), expected, kind);
    await rejectsWith(vg.io.readNifti(await fetch(`${origin}/missing.nii`)), ['readNifti', 'missing.nii', 'HTTP 404']);
    const used = await fetch(`${origin}/image.nii.gz`);
    await used.arrayBuffer();
    await rejectsWith(vg.io.readNifti(used), ['readNifti', 'already read', 'clone()']);
    await rejectsWith(vg.io.readNifti(`${origin}/missing.nii`), ['readNifti', 'HTTP 404']);
  });
  // a File's name names it in errors
  await rejectsWith(vg.io.readNifti(new File([new Uint8Array(10)], 'scan.nii')), ['readNifti', 'scan.nii']);
  await rejectsWith(vg.io.readNifti(42), ['readNifti', 'path, URL, File, Blob, Response, Uint8Array or ArrayBuffer', '[object Number]']);
});

test('readSafetensors and readCsv take the same sources', async () => {
  const t = vg.tensor([[1, 2, 3], [4, 5, 6]]);
  const st = await vg.io.encodeSafetensors({ w: t });
  for (const source of [new Blob([st]), new File([st], 'w.safetensors'), new Response(st), st.slice().buffer]) {
    const read = await vg.io.readSafetensors(source);
    assert.equal(Array.from(await read.w.data()), [1, 2, 3, 4, 5, 6]);
    read.w.dispose();
  }
  t.dispose();
  const csv = 'case,dice\na,0.5\nb,0.75\n';
  const file = path.join(tmp, 'rows.csv');
  fs.writeFileSync(file, csv);
  for (const source of [file, new Blob([csv]), new Response(csv), new TextEncoder().encode(csv)])
    assert.equal(await vg.io.readCsv(source), [{ case: 'a', dice: 0.5 }, { case: 'b', dice: 0.75 }]);
});

/** The message of the VoxgradError `fn` throws or rejects with (the dist/esm copy has its own VoxgradError class). */
async function messageOf(fn) {
  try {
    await fn();
  } catch (e) {
    assert.is(e.name, 'VoxgradError', String(e));
    return e.message;
  }
  assert.unreachable('expected an error, none was thrown');
}
const includesAll = (message, fragments) => fragments.forEach((f) => assert.ok(message.includes(f), `error message lacks "${f}": ${message}`));

test('without a file system (the browser build): strings are URLs against the location, writers name the encoder', async () => {
  // dist/esm is the module graph browsers get; its files module has no file system registered
  const { files, readBytes } = await import('../dist/esm/io/files.js');
  const bytes = fs.readFileSync(niftiPath);
  await serving(bytes, async (origin) => {
    const saved = Object.getOwnPropertyDescriptor(globalThis, 'location');
    Object.defineProperty(globalThis, 'location', { value: new URL(`${origin}/app/index.html`), configurable: true });
    try {
      assert.equal(await readBytes('readNifti', '../image.nii.gz'), new Uint8Array(bytes), 'relative URL against the location');
      includesAll(await messageOf(() => readBytes('readNifti', 'scans/none.nii')), ['readNifti', `${origin}/app/scans/none.nii`, 'HTTP 404']);
    } finally {
      if (saved) Object.defineProperty(globalThis, 'location', saved);
      else delete globalThis.location;
    }
  });
  includesAll(await messageOf(() => readBytes('readNifti', 'scans/a.nii')), ['readNifti', 'scans/a.nii is a relative path', 'no page or worker location', 'File or Blob']);
  includesAll(await messageOf(() => files('writeNifti', 'vg.io.encodeNifti')), ['writeNifti', 'vg.io.encodeNifti(...)', 'vg.io.download(name, bytes)']);
  includesAll(await messageOf(() => files('readCsv')), ['readCsv', 'file paths need Node', 'a URL, a File or Blob']);
});

test('download outside a page says what to do instead; bad arguments are named', () => {
  assertThrowsWith(() => vg.io.download('a.nii', new Uint8Array(4)), ['download', 'needs a page', 'Worker', 'writeNifti']);
  assertThrowsWith(() => vg.io.download('', new Uint8Array(4)), ['download', 'name must be a non-empty file name']);
  assertThrowsWith(() => vg.io.download('a.nii', [1, 2]), ['download', 'data must be a Uint8Array, ArrayBuffer, Blob or string']);
});

test('toImageData: windowed grayscale, label overlay and RGB slices match a float64 reference', async () => {
  const r = rng(17);
  const [H, W] = [5, 7];
  const values = Array.from({ length: H * W }, () => r.uniform(-2, 3));
  const labels = Array.from({ length: H * W }, () => r.int(0, 4));
  const slice = vg.tensor(values, [1, H, W]);
  const label = vg.tensor(labels, [H, W], { dtype: 'i32' });
  const gray = (v, lo, hi) => Math.min(1, Math.max(0, (v - lo) / (hi - lo))) * 255;
  const lo = Math.min(...values.map(Math.fround));
  const hi = Math.max(...values.map(Math.fround));
  /** Every pixel within 1 (rounding) of `want(i)` = [r, g, b], alpha 255. */
  const check = (px, want, msg) => {
    assert.equal([px.width, px.height, px.data.length], [W, H, 4 * H * W], msg);
    for (let i = 0; i < H * W; i++) {
      const w = want(i);
      for (let c = 0; c < 3; c++) assert.ok(Math.abs(px.data[4 * i + c] - w[c]) <= 1, `${msg}: pixel ${i} channel ${c} = ${px.data[4 * i + c]}, expected ${w[c]}`);
      assert.is(px.data[4 * i + 3], 255, `${msg}: alpha`);
    }
  };
  markReferenceComparison();
  check(await vg.io.toImageData(slice), (i) => Array(3).fill(gray(values[i], lo, hi)), 'own window');
  check(await vg.io.toImageData(slice, { window: [0, 1] }), (i) => Array(3).fill(gray(values[i], 0, 1)), 'window [0, 1]');
  const alpha = 0.25;
  const tinted = (i) => {
    const g = gray(values[i], -1, 2);
    const l = labels[i];
    return l > 0 ? vg.io.PNG_PALETTE[(l - 1) % vg.io.PNG_PALETTE.length].map((c) => g + (c - g) * alpha) : [g, g, g];
  };
  check(await vg.io.toImageData(slice, { overlay: label, alpha, window: [-1, 2] }), tinted, 'overlay');
  const rgbValues = Array.from({ length: H * W * 3 }, () => r.int(0, 256));
  check(await vg.io.toImageData(vg.tensor(rgbValues, [H, W, 3])), (i) => rgbValues.slice(3 * i, 3 * i + 3), 'RGB');
  await rejectsWith(vg.io.toImageData(vg.zeros([2, H, W])), ['toImageData', 'slice must be a 2-D image', '[2, 5, 7]']);
  await rejectsWith(vg.io.toImageData(slice, { window: [1, 1] }), ['toImageData', 'window must be [min, max] with min < max']);
  await rejectsWith(vg.io.toImageData(vg.zeros([H, W, 3]), { overlay: label }), ['toImageData', 'overlay needs a grayscale slice']);
  await rejectsWith(vg.io.drawToCanvas({}, slice), ['drawToCanvas', 'canvas must be an HTMLCanvasElement or OffscreenCanvas']);
  for (const t of [slice, label]) t.dispose();
});

test.run();
