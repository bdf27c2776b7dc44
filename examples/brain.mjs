// The 3-D example data: the Colin27 brain T1 (ch2.nii.gz) and its AAL atlas labels, from Debian's mricron-data
// (installed by scripts/setup.sh). Reads both with their affine, resamples to 2 mm, normalises the intensities, warps
// image and labels together with one random elastic deformation on the GPU (labels with nearest), measures how much
// the warp moved the atlas labels (Dice, HD95 in mm), and writes NIfTI files that overlay the originals in a viewer,
// plus PNG slices with the labels on top.
//   node examples/brain.mjs [out-dir]        (default runs/brain)
import { mkdirSync } from 'node:fs';
import * as vg from 'voxgrad';

const out = process.argv[2] ?? 'runs/brain';
mkdirSync(out, { recursive: true });
const templates = '/usr/share/mricron/templates';
await vg.init();

const t1 = await vg.io.readNifti(`${templates}/ch2.nii.gz`);
const atlas = await vg.io.readNifti(`${templates}/aal.nii.gz`, { dtype: 'i32' });
console.log(`ch2: ${t1.tensor.shape.join('x')} voxels of ${t1.spacing.join('x')} mm, ${vg.io.orientation(t1.affine)}; aal: ${atlas.tensor.shape.join('x')}`);

const image = vg.io.resampleVolume(t1, { spacing: [2, 2, 2] });
const labels = vg.io.resampleVolume(atlas, { spacing: [2, 2, 2] }, { mode: 'nearest' });
console.log(`resampled to ${image.tensor.shape.join('x')} at 2 mm (affine kept: voxel 0 at ${image.affine.map((r) => r[3]).slice(0, 3).join(', ')} mm)`);

// batch layout for the GPU augmentations: [1, 1, X, Y, Z] image, [1, X, Y, Z] labels
const [warpedImage, warpedLabels] = vg.tidy(() => {
  const x = vg.data.normalizeZScore(image.tensor.unsqueeze(0).unsqueeze(0), { nonzero: true });
  return vg.data.randomElastic([x, labels.tensor.unsqueeze(0)], { magnitude: 3, controlPoints: 6, seed: 7 }).map((t) => t.squeeze(0));
});

const spacing = image.spacing;
for (const [name, label] of [['left hippocampus', 37], ['right putamen', 74]]) {
  const [a, b] = vg.tidy(() => [labels.tensor.eq(label), warpedLabels.eq(label)]);
  const dice = await vg.metrics.dice(a, b);
  const hd95 = await vg.metrics.hd95(a, b, { spacing });
  console.log(`${name} (AAL ${label}): Dice ${dice.toFixed(3)}, HD95 ${hd95.toFixed(2)} mm between the atlas and its warped copy`);
}

await vg.io.writeNifti(`${out}/ch2_2mm.nii.gz`, image);
await vg.io.writeNifti(`${out}/ch2_2mm_warped.nii.gz`, vg.io.withTensor(image, warpedImage.squeeze(0)));
await vg.io.writeNifti(`${out}/aal_2mm_warped.nii.gz`, vg.io.withTensor(labels, warpedLabels));
const z = Math.floor(image.tensor.shape[2] / 2);
const slice = (t) => vg.tidy(() => vg.transpose(t.narrow(-1, z, 1).squeeze(-1), 0, 1).flip([0]));
await vg.io.writePng(`${out}/axial.png`, slice(image.tensor), { overlay: slice(labels.tensor) });
await vg.io.writePng(`${out}/axial_warped.png`, slice(warpedImage.squeeze(0)), { overlay: slice(warpedLabels) });
console.log(`wrote ${out}/{ch2_2mm,ch2_2mm_warped,aal_2mm_warped}.nii.gz and axial{,_warped}.png`);
