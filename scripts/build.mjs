// Builds dist/node.js (Dawn provider, for Node), dist/browser.js (navigator.gpu) and dist/cli.js (`npx voxgrad`, a
// self-contained bundle: its recipes import library internals, which must share one engine instance) with esbuild.
// WGSL sources are inlined as strings; wgsl_reflect is bundled, `webgpu` stays an external Node dependency.
import * as esbuild from 'esbuild';

const common = {
  bundle: true,
  format: 'esm',
  target: 'es2022',
  sourcemap: true,
  loader: { '.wgsl': 'text' },
  logLevel: 'warning',
};

await Promise.all([
  esbuild.build({ ...common, entryPoints: ['src/node.ts'], outfile: 'dist/node.js', platform: 'node', external: ['webgpu'] }),
  esbuild.build({ ...common, entryPoints: ['src/index.ts'], outfile: 'dist/browser.js', platform: 'browser' }),
  esbuild.build({
    ...common,
    entryPoints: ['src/cli/main.ts'],
    outfile: 'dist/cli.js',
    platform: 'node',
    external: ['webgpu'],
    banner: { js: '#!/usr/bin/env node' },
  }),
]);
