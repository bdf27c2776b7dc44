#!/usr/bin/env node
// The app's shipped weights: trains the unet-phantom recipe at reduced width in Node (the CLI), then keeps only the
// model's tensors (no optimizer state) in web/weights/unet-phantom.safetensors, with the settings the page needs to
// rebuild the network in its metadata.
//   node web/train-weights.mjs                 # train (200 steps) into runs/web-weights, then convert
//   node web/train-weights.mjs --from <run>    # convert the final checkpoint of an existing run folder
// Evaluate a run with: node dist/cli.js eval unet-phantom --checkpoint <run>/checkpoint.safetensors
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as vg from 'voxgrad';

const root = fileURLToPath(new URL('..', import.meta.url));
const SETTINGS = ['--features', '[4,8,16,32,64]', '--size', '64', '--steps', '200'];
const at = process.argv.indexOf('--from');
let run = at > 0 ? process.argv[at + 1] : `${root}runs/web-weights`;
if (at < 0) {
  const r = spawnSync(process.execPath, [`${root}dist/cli.js`, 'train', 'unet-phantom', ...SETTINGS, '--out', run], { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
const config = JSON.parse(readFileSync(`${run}/config.json`, 'utf8'));
await vg.init();
const model = new vg.models.UNet2D({ inChannels: 1, numClasses: 4, features: config.features });
const { step } = await vg.train.loadCheckpoint(`${run}/checkpoint.safetensors`, { model });
const out = `${root}web/weights/unet-phantom.safetensors`;
const metadata = { recipe: 'unet-phantom', features: JSON.stringify(config.features), size: String(config.size), steps: String(step) };
await vg.io.writeSafetensors(out, model.stateDict(), { metadata });
console.log(`wrote ${out} (step ${step}, features ${metadata.features}, ${model.parameters().reduce((n, p) => n + p.size, 0)} parameters)`);
model.dispose();
vg.destroy();
