// vg.models.ResNet (18/34/50, torchvision's layout): state-dict keys and shapes identical to a torchvision-layout
// PyTorch reference, and the eval-mode forward (ITL's five encoder maps and the fc logits) against it, with
// deterministic weights both sides compute (test/fixtures/gen_resnet.py; the forward for 18 and 50, 32x32 input).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fixtureRef, loadFixtures } from './fixtures.mjs';
import { Ref, assertClose, assertThrowsWith, setup, vg } from './helpers.mjs';

test.before(setup);

const CASES = loadFixtures('resnet');

/** gen_resnet.py's weight_value: the content of state-dict tensor `key`, k its index among the float keys. */
function weightValue(key, k, shape) {
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    const s = Math.sin(0.731 * (j % 9973) + 0.917 * k + 0.3);
    if (key.endsWith('running_var')) out[j] = 1 + 0.25 * (s + 1);
    else if (key.endsWith('running_mean') || key.endsWith('bias')) out[j] = 0.1 * s;
    else if (shape.length === 1) out[j] = 1 + 0.1 * s;
    else out[j] = s * Math.sqrt(2 / Math.floor(n / shape[0]));
  }
  return new Ref(Float32Array.from(out), shape);
}

for (const c of CASES)
  test(`ResNet-${c.depth}: torchvision's state-dict keys and shapes${c.x ? '; forward (encoder maps, logits) matches PyTorch' : ''}`, async () => {
    const model = new vg.models.ResNet(c.depth);
    const sd = model.stateDict();
    assert.equal(Object.keys(sd).sort(), c.keys, 'state-dict keys');
    c.keys.forEach((k, i) => assert.equal([...sd[k].shape], c.shapes[i], `shape of ${k}`));
    if (!c.x) return model.dispose();
    const floatKeys = c.keys.filter((k) => sd[k].dtype === 'f32');
    const dict = Object.fromEntries(floatKeys.map((k, i) => [k, weightValue(k, i, c.shapes[c.keys.indexOf(k)]).toTensor()]));
    model.loadStateDict(dict, { strict: false });
    model.eval();
    const x = fixtureRef(c.x).toTensor();
    const maps = vg.noGrad(() => model.encode(x));
    assert.equal(model.skipChannels, c.maps.map((m) => m.shape[1]), 'skip channels');
    for (const [i, m] of maps.entries()) {
      assert.equal([...m.shape], c.maps[i].shape, `map ${i} shape`);
      const every = vg.noGrad(() => vg.slice(m.reshape([-1]), 0, 0, null, 31));
      const want = fixtureRef(c.maps[i].every31);
      const scale = Math.max(...want.data.map(Math.abs));
      await assertClose(every, want, { rtol: 1e-4, atol: 1e-5 * scale, msg: `map ${i}` });
      every.dispose();
    }
    const logits = vg.noGrad(() => model.call(x));
    const want = fixtureRef(c.logits);
    await assertClose(logits, want, { rtol: 1e-4, atol: 1e-5 * Math.max(...want.data.map(Math.abs)), msg: 'logits' });
    for (const t of [x, logits, ...maps, ...Object.values(dict)]) t.dispose();
    model.dispose();
  });

test('ResNet: a clear error for an unsupported depth', () => {
  assertThrowsWith(() => new vg.models.ResNet(101), ['ResNet', 'depth must be 18, 34 or 50', '101']);
});

test.run();
