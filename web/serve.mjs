#!/usr/bin/env node
// The app's build and server (`npm run web`): esbuild bundles web/main.ts (the page, with NiiVue) and web/worker.ts
// (the module Worker doing the GPU work) against the package's browser build (dist/esm, so `npm run build` first), in
// memory; a small HTTP server on 127.0.0.1 (a secure context, as WebGPU requires) serves them with index.html, the
// shipped weights, and the ch2 brain sample where Debian's mricron-data provides it.
//   node web/serve.mjs [--port 8017]
// esbuild rather than Vite: it is already the library's bundler (no new dependency tree), builds both entries in well
// under a second, and the app needs no dev-server features (hot reload, plugins) beyond serving files.
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
const web = (name) => fileURLToPath(new URL(name, import.meta.url));
const CH2 = '/usr/share/mricron/templates/ch2.nii.gz';

/** Bundles the page and the worker; returns url path → [content type, bytes]. */
export async function buildApp({ minify = true } = {}) {
  if (!existsSync(`${root}/dist/esm/index.js`)) throw new Error('dist/esm is missing: run `npm run build` first');
  const result = await esbuild.build({
    absWorkingDir: root,
    entryPoints: { main: 'web/main.ts', worker: 'web/worker.ts' },
    bundle: true,
    write: false,
    outdir: 'web/out',
    format: 'esm',
    target: 'es2022',
    platform: 'browser',
    minify,
    sourcemap: 'linked',
    alias: { voxgrad: './dist/esm/index.js' },
    logLevel: 'warning',
    metafile: true,
  });
  const files = new Map([
    ['/', ['text/html', readFileSync(web('index.html'))]],
    ['/app.css', ['text/css', readFileSync(web('app.css'))]],
    ['/unet-phantom.safetensors', ['application/octet-stream', readFileSync(web('weights/unet-phantom.safetensors'))]],
    ['/samples/phantom.nii.gz', ['application/gzip', readFileSync(web('samples/phantom.nii.gz'))]],
    ['/samples/phantom-labels.nii.gz', ['application/gzip', readFileSync(web('samples/phantom-labels.nii.gz'))]],
  ]);
  for (const f of result.outputFiles) {
    const name = f.path.slice(f.path.lastIndexOf('/'));
    files.set(name, [name.endsWith('.map') ? 'application/json' : 'text/javascript', f.contents]);
  }
  if (existsSync(CH2)) files.set('/samples/ch2.nii.gz', ['application/gzip', readFileSync(CH2)]);
  return { files, metafile: result.metafile };
}

/** Serves the built app on 127.0.0.1:`port` (0: any free port); resolves with the server and its URL. */
export async function serve(files, port = 0) {
  const server = http.createServer((req, res) => {
    const path = new URL(req.url, 'http://127.0.0.1').pathname;
    const file = files.get(path === '/index.html' ? '/' : path);
    if (!file) res.writeHead(404).end();
    else res.writeHead(200, { 'content-type': file[0], 'cache-control': 'no-store', 'content-length': file[1].length }).end(req.method === 'HEAD' ? undefined : file[1]);
  });
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${server.address().port}/` };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const at = process.argv.indexOf('--port');
  const port = at > 0 ? Number(process.argv[at + 1]) : Number(process.env.PORT ?? 8017);
  const { files } = await buildApp();
  const { url } = await serve(files, port);
  console.log(`voxgrad app at ${url} (Ctrl-C stops it)`);
}
