// Bundle sizes a web developer gets (minified, then gzip -9), for a built package folder (default: this one):
// the whole library, and a page that imports init, tensor, conv2d and readNifti, bundled by esbuild as an app's
// bundler would (browser export conditions, the package's `sideEffects`).
//   node bench/bundle-size.mjs [packageDir]
// A package without the `voxgrad/io` entry (before it existed) is measured with `io.readNifti` from the main entry.
import { mkdtempSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import * as esbuild from 'esbuild';

const packageDir = resolve(process.argv[2] ?? '.');
const pkg = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8'));
const hasIoEntry = Boolean(pkg.exports?.['./io']);
const project = mkdtempSync(join(tmpdir(), 'voxgrad-bundle-'));
mkdirSync(join(project, 'node_modules'));
symlinkSync(packageDir, join(project, 'node_modules', 'voxgrad'));

const pages = {
  library: "import * as vg from 'voxgrad';\nglobalThis.vg = vg;\n",
  'page (init, tensor, conv2d, readNifti)': hasIoEntry
    ? "import { init, tensor, conv2d } from 'voxgrad';\nimport { readNifti } from 'voxgrad/io';\nglobalThis.page = { init, tensor, conv2d, readNifti };\n"
    : "import { init, tensor, conv2d, io } from 'voxgrad';\nglobalThis.page = { init, tensor, conv2d, readNifti: io.readNifti };\n",
};
const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;
try {
  console.log(`${pkg.name} at ${packageDir}${hasIoEntry ? '' : ' (no voxgrad/io entry: io.readNifti)'}`);
  for (const [name, source] of Object.entries(pages)) {
    writeFileSync(join(project, 'page.mjs'), source);
    const r = await esbuild.build({
      absWorkingDir: project,
      entryPoints: ['page.mjs'],
      bundle: true,
      minify: true,
      write: false,
      format: 'esm',
      target: 'es2022',
      platform: 'browser',
      logLevel: 'error',
    });
    const js = r.outputFiles[0].contents;
    console.log(`${name}: ${kib(js.length)} minified, ${kib(gzipSync(js, { level: 9 }).length)} gzipped`);
  }
} finally {
  rmSync(project, { recursive: true, force: true });
}
