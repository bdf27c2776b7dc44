// vg.models against PyTorch: the UNet2D's state-dict keys are SSL4MIS's, and with the same weights its logits match a
// float64 PyTorch forward in eval mode (running statistics) and train mode (batch statistics).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fixtureRef, loadFixtures } from './fixtures.mjs';
import { Ref, assertClose, assertThrowsWith, setup, vg } from './helpers.mjs';

test.before(setup);

for (const c of loadFixtures('models')) {
  const name = `UNet2D (${c.bilinear ? 'bilinear' : 'transposed-conv'} up) `;
  const make = () => new vg.models.UNet2D({ inChannels: 1, numClasses: 4, features: [4, 8, 8, 16, 16], bilinear: c.bilinear, dropout: [0, 0, 0, 0, 0] });

  test(`${name}state-dict keys are PyTorch's, in PyTorch's order`, () => {
    const net = make();
    assert.equal(Object.keys(net.stateDict()), c.keys);
    net.dispose();
  });

  test(`${name}logits match PyTorch in eval and train mode`, async () => {
    const net = make();
    const state = Object.fromEntries(Object.entries(c.state).map(([k, e]) => [k, fixtureRef(e).toTensor()]));
    net.loadStateDict(state, { strict: false });
    for (const t of Object.values(state)) t.dispose();
    const x = fixtureRef(c.x).toTensor();
    // 18 conv layers deep in f32: round-off grows with depth, hence 1e-4 rather than the op-level 1e-5
    const tol = { rtol: 1e-4, atol: 1e-5 };
    net.eval();
    const outEval = vg.noGrad(() => net.call(x));
    await assertClose(outEval, fixtureRef(c.eval), { ...tol, msg: 'eval' });
    net.train();
    const outTrain = vg.noGrad(() => net.call(x));
    await assertClose(outTrain, fixtureRef(c.train), { ...tol, msg: 'train' });
    for (const t of [x, outEval, outTrain]) t.dispose();
    net.dispose();
  });
}

test('UNet2D takes any size: forward pads to a multiple of 16 and crops the logits back; encode names the multiple', async () => {
  const net = new vg.models.UNet2D({ features: [2, 4, 4, 4, 4], numClasses: 3, seed: 2 }).eval();
  const x = vg.randn([2, 1, 24, 37], { seed: 5 });
  const out = vg.noGrad(() => net.call(x));
  assert.equal(out.shape, [2, 3, 24, 37]);
  // the same as running the padded input (24 -> 32: 4 + 4 rows; 37 -> 48: 5 + 6 columns of zeros) and cropping
  const padded = vg.pad(x, [5, 6, 4, 4]);
  const full = vg.noGrad(() => net.call(padded));
  const want = full.narrow(2, 4, 24).narrow(3, 5, 37);
  await assertClose(out, new Ref(Float64Array.from(await want.data()), want.shape), { rtol: 0, atol: 0 });
  assertThrowsWith(() => net.encode(x), ['UNet2D', 'multiples of 16', '[2, 1, 24, 37]', 'padToMultiple']);
  for (const t of [x, out, padded, full, want]) t.dispose();
  net.dispose();
});

test.run();
