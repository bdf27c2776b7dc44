// vg.models against PyTorch: the UNet2D's state-dict keys are SSL4MIS's, and with the same weights its logits match a
// float64 PyTorch forward in eval mode (running statistics) and train mode (batch statistics).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fixtureRef, loadFixtures } from './fixtures.mjs';
import { assertClose, assertThrowsWith, setup, vg } from './helpers.mjs';

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

test('UNet2D names the multiple an input must have', () => {
  const net = new vg.models.UNet2D({ features: [2, 2, 2, 2, 2] });
  const x = vg.zeros([1, 1, 24, 32]);
  assertThrowsWith(() => net.call(x), ['UNet2D', 'multiples of 16', '[1, 1, 24, 32]', 'padToMultiple']);
  x.dispose();
  net.dispose();
});

test.run();
