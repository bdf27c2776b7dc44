#!/usr/bin/env node
// The app's phantom sample (also the browser tests' input): the ED and ES frames of a held-out subject of the embedded
// cardiac phantom (seed 4242; the shipped weights were trained on seeds 0-31) at the model's 64 x 64, as an image and
// a label volume [64, 64, 2] (ACDC labels: 1 RV, 2 myocardium, 3 LV) in web/samples/.
//   node web/make-samples.mjs
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as vg from 'voxgrad';

const dir = fileURLToPath(new URL('samples/', import.meta.url));
mkdirSync(dir, { recursive: true });
await vg.init();
const p = vg.data.cardiacPhantom({ size: 64, frames: 10, seed: 4242 });
const frames = vg.tensor([p.ed, p.es], [2], { dtype: 'i32' });
// voxgrad's phantom is [T, H, W]; NIfTI volumes are [X, Y, Z]: H, W and the frames as slices
const volume = (t) => vg.tidy(() => vg.permute(vg.indexSelect(t, 0, frames), [1, 2, 0]));
const spacing = [p.spacing[0], p.spacing[1], 8];
const affine = [[spacing[0], 0, 0, 0], [0, spacing[1], 0, 0], [0, 0, spacing[2], 0], [0, 0, 0, 1]];
await vg.io.writeNifti(`${dir}phantom.nii.gz`, { tensor: volume(p.image), affine, spacing });
await vg.io.writeNifti(`${dir}phantom-labels.nii.gz`, { tensor: volume(p.label), affine, spacing });
console.log(`wrote ${dir}phantom.nii.gz and phantom-labels.nii.gz (ED frame ${p.ed}, ES frame ${p.es})`);
vg.destroy();
