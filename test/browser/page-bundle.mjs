// One ES module for a page, bundled in memory from the library's sources (src/, WGSL as text), as
// scripts/build.mjs bundles dist/: the browser tests and bench/web-compile.mjs serve their pages with it.
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** Bundles `entry` (a path relative to the repository root) for the browser; resolves to the module's bytes. */
export async function pageBundle(entry) {
  const out = await esbuild.build({
    absWorkingDir: root,
    entryPoints: [entry],
    bundle: true,
    write: false,
    format: 'esm',
    target: 'es2022',
    platform: 'browser',
    loader: { '.wgsl': 'text' },
    alias: { voxgrad: './src/index.ts' },
    logLevel: 'warning',
  });
  return out.outputFiles[0].contents;
}
