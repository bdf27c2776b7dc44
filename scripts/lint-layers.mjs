// npm run lint:layers: the import graph of src/ (from esbuild's metafile of the three entries, so exactly the runtime
// imports; type-only imports are erased) must have no cycle and no import that runs up the layer order:
//
//   engine ← kernels ← ops ← io ← nn, optim, data, metrics, inference ← models ← train ← methods ← cli
//
// A file may import its own layer (without a cycle) and any layer below. The entries src/index.ts and src/node.ts
// sit with cli (src/cli/main.ts is the third entry and builds on node.ts): they may import anything. Prints "N cycles, M upward imports", then each offender; exits 1 if there is any.
import * as esbuild from 'esbuild';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const ENTRIES = ['src/node.ts', 'src/index.ts', 'src/cli/main.ts'];

/** Layer order, lowest first; a path matches the first prefix that starts it. */
const LAYERS = [
  ['engine', ['src/engine/']],
  ['kernels', ['src/kernels/']],
  ['ops', ['src/ops.ts', 'src/tensor-methods.ts']],
  ['io', ['src/io/']],
  ['nn/optim/data/metrics/inference', ['src/nn/', 'src/optim/', 'src/data/', 'src/metrics/', 'src/inference/']],
  ['models', ['src/models/']],
  ['train', ['src/train/']],
  ['methods', ['src/methods/']],
  ['cli and entries', ['src/cli/', 'src/index.ts', 'src/node.ts']],
];

function layerOf(file) {
  const i = LAYERS.findIndex(([, prefixes]) => prefixes.some((p) => file === p || (p.endsWith('/') && file.startsWith(p))));
  if (i < 0) throw new Error(`lint-layers: ${file} belongs to no layer; add its folder to LAYERS in scripts/lint-layers.mjs`);
  return i;
}

const result = await esbuild.build({
  absWorkingDir: root,
  entryPoints: ENTRIES,
  bundle: true,
  write: false,
  metafile: true,
  format: 'esm',
  platform: 'node',
  outdir: 'lint-layers-out',
  loader: { '.wgsl': 'text' },
  packages: 'external',
  logLevel: 'error',
});

/** file → the src/ files it imports at run time */
const graph = new Map();
for (const [file, info] of Object.entries(result.metafile.inputs)) {
  if (!file.startsWith('src/') || !file.endsWith('.ts')) continue;
  graph.set(file, info.imports.map((i) => i.path).filter((p) => p.startsWith('src/') && p.endsWith('.ts')));
}

const upward = [];
for (const [file, deps] of graph) {
  const from = layerOf(file);
  for (const dep of deps) {
    const to = layerOf(dep);
    if (to > from) upward.push(`${file} (${LAYERS[from][0]}) imports ${dep} (${LAYERS[to][0]})`);
  }
}

// Tarjan's strongly connected components: every component of more than one file (or a file importing itself) is a cycle
const index = new Map();
const low = new Map();
const stack = [];
const onStack = new Set();
const cycles = [];
let counter = 0;
function connect(v) {
  index.set(v, counter);
  low.set(v, counter++);
  stack.push(v);
  onStack.add(v);
  for (const w of graph.get(v) ?? []) {
    if (!index.has(w)) {
      connect(w);
      low.set(v, Math.min(low.get(v), low.get(w)));
    } else if (onStack.has(w)) low.set(v, Math.min(low.get(v), index.get(w)));
  }
  if (low.get(v) !== index.get(v)) return;
  const component = [];
  let w;
  do {
    w = stack.pop();
    onStack.delete(w);
    component.push(w);
  } while (w !== v);
  if (component.length > 1 || (graph.get(v) ?? []).includes(v)) cycles.push(component.sort());
}
for (const v of [...graph.keys()].sort()) if (!index.has(v)) connect(v);

console.log(`${cycles.length} cycles, ${upward.length} upward imports (${graph.size} files)`);
for (const c of cycles) console.log(`  cycle: ${c.join(' ↔ ')}`);
for (const u of upward.sort()) console.log(`  upward: ${u}`);
process.exit(cycles.length || upward.length ? 1 : 0);
