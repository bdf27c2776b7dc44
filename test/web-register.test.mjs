// The app's pairwise registration (web/register-step.mjs), run in Node on the phantom sample's two slices at 32x32 as
// the page runs it: every method's loss falls over 3 steps, the two uncertainty papers' maps come out at the slice's
// size, and an unknown method is refused with the choices named. (The page itself runs the heteroscedastic method in
// test/browser/app.mjs.)
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { auxiliaryPicture, registrationNets, registrationStep, REG_METHODS } from '../web/register-step.mjs';
import { assertThrowsWith, setup, vg } from './helpers.mjs';

test.before(setup);
const SIZE = 32;
const MAPS = { voxelmorph: null, hetero: 'variance (log σ²)', adacs: 'correspondence score', bim: null };

/** Slices 0 and 1 of the phantom sample, intensities scaled to [0, 1] and resized as the worker does. */
async function pair() {
  const image = await vg.io.readNifti(new URL('../web/samples/phantom.nii.gz', import.meta.url));
  const slices = vg.tidy(() => {
    const s = vg.permute(image.tensor, [2, 0, 1]).unsqueeze(1);
    const lo = vg.min(image.tensor);
    return vg.interpolate(s.sub(lo).div(vg.max(image.tensor).sub(lo).add(1e-6)), { size: [SIZE, SIZE], mode: 'bilinear' });
  });
  image.tensor.dispose();
  return { fixed: slices.slice(0, 0, 1), moving: slices.slice(0, 1, 2) };
}

for (const method of REG_METHODS)
  test(`${method}: the loss falls over 3 steps; its own map (${MAPS[method] ?? 'none'})`, async () => {
    const { fixed, moving } = await pair();
    const nets = registrationNets(vg, method, SIZE);
    const optimizer = new vg.optim.Adam(nets.parameters, { lr: 0.003 });
    const losses = [];
    for (let i = 0; i < 3; i++) losses.push(await registrationStep(vg, nets, moving, fixed, optimizer));
    assert.ok(losses.every(Number.isFinite) && losses[2] < losses[0], `losses ${losses}`);
    const out = vg.noGrad(() => nets.backbone.run(moving, fixed));
    const map = auxiliaryPicture(vg, nets, out.warped, fixed);
    assert.is(map?.title ?? null, MAPS[method]);
    if (map) {
      assert.equal(map.image.shape, [SIZE, SIZE, 3]);
      // a map, not a constant: the RGB values spread
      const rgb = await map.image.data();
      assert.ok(Math.max(...rgb) - Math.min(...rgb) > 10, `${method} map range ${Math.min(...rgb)}..${Math.max(...rgb)}`);
      map.image.dispose();
    }
    for (const t of [out.warped, out.flow, out.regFlow, out.mask, fixed, moving]) t.dispose();
    optimizer.dispose();
    nets.backbone.module.dispose();
    nets.aux?.dispose();
  });

test('an unknown method is refused, naming the choices', () => {
  assertThrowsWith(() => registrationNets(vg, 'ncc', SIZE), ['registration', 'method', 'voxelmorph, hetero, adacs, bim', '"ncc"']);
});

test.run();
