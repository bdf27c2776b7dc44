// Builds dist/ with esbuild (the types come from `tsc -p tsconfig.types.json`, run after this by `npm run build`):
// - dist/node.js and dist/node-io.js (`voxgrad`, `voxgrad/io` in Node): the Dawn provider and `fs` registered, bundled
//   with shared chunks under dist/chunks/ so that both entries use one engine; `webgpu` stays an external (peer) import.
// - dist/cli.js (`npx voxgrad`): self-contained, its recipes import library internals that must share one engine.
// - dist/esm/ (`voxgrad`, `voxgrad/io` in browsers and bundlers): one ES module per source module of the browser
//   graph, imports kept, so that bundlers drop what a page does not use (package.json lists the modules with side
//   effects); each WGSL file becomes dist/shaders/<name>.wgsl.js exporting its text.
// - dist/voxgrad.min.js: the whole browser library in one minified file, for import maps and <script type="module">.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import * as esbuild from 'esbuild';

const common = { bundle: true, format: 'esm', target: 'es2022', loader: { '.wgsl': 'text' }, logLevel: 'warning' };

rmSync('dist', { recursive: true, force: true });

const [, , browser] = await Promise.all([
  esbuild.build({
    ...common,
    sourcemap: true,
    entryPoints: { node: 'src/node.ts', 'node-io': 'src/node-io.ts' },
    outdir: 'dist',
    splitting: true,
    chunkNames: 'chunks/[name]-[hash]',
    platform: 'node',
    external: ['webgpu'],
  }),
  esbuild.build({
    ...common,
    sourcemap: true,
    entryPoints: ['src/cli/main.ts'],
    outfile: 'dist/cli.js',
    platform: 'node',
    external: ['webgpu'],
    banner: { js: '#!/usr/bin/env node' },
  }),
  esbuild.build({ ...common, sourcemap: true, minify: true, metafile: true, entryPoints: ['src/index.ts'], outfile: 'dist/voxgrad.min.js', platform: 'browser' }),
]);

// The browser graph, as the bundle above resolved it: every source module and shader it reached.
const inputs = Object.keys(browser.metafile.inputs);
const modules = inputs.filter((f) => f.startsWith('src/') && f.endsWith('.ts'));
const shaders = inputs.filter((f) => f.endsWith('.wgsl'));

/** Keeps every import as written (a module each), pointing WGSL imports at their generated .wgsl.js modules. */
const keepImports = {
  name: 'keep-imports',
  setup(build) {
    build.onResolve({ filter: /.*/ }, (args) => {
      if (args.kind === 'entry-point') return undefined;
      return { path: args.path.endsWith('.wgsl') ? `${args.path}.js` : args.path, external: true };
    });
  },
};
await esbuild.build({ ...common, entryPoints: modules, outdir: 'dist/esm', outbase: 'src', platform: 'browser', plugins: [keepImports] });
mkdirSync('dist/shaders', { recursive: true });
for (const f of shaders) writeFileSync(`dist/shaders/${basename(f)}.js`, `export default ${JSON.stringify(readFileSync(f, 'utf8'))};\n`);
