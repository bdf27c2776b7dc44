// ITL pieces: ResILNet's two decoders over one shared ResNet encoder (shapes, the student is the forward), the
// site-level distillation loss against a float64 reference and by finite differences, the stage weight, backward
// transfer, and the five phantom sites' renderings.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Ref, assertClose, assertThrowsWith, gradcheck, rng, setup, vg } from './helpers.mjs';

test.before(setup);

function refDistill(s, t, tau) {
  const [n, c, ...sp] = s.shape;
  const m = sp.reduce((a, b) => a * b, 1);
  let total = 0;
  for (let b = 0; b < n; b++)
    for (let p = 0; p < m; p++) {
      const at = (x, k) => x.data[(b * c + k) * m + p] / tau;
      const lse = (x) => {
        const mx = Math.max(...Array.from({ length: c }, (_, k) => at(x, k)));
        return mx + Math.log(Array.from({ length: c }, (_, k) => Math.exp(at(x, k) - mx)).reduce((a, v) => a + v, 0));
      };
      const [ls, lt] = [lse(s), lse(t)];
      for (let k = 0; k < c; k++) {
        const logPt = at(t, k) - lt;
        total += Math.exp(logPt) * (logPt - (at(s, k) - ls));
      }
    }
  return new Ref([(total / (n * m)) * tau * tau], []);
}

test('siteDistillationLoss: τ² · mean KL(teacher ‖ student), against float64 and by finite differences; teacher detached', async () => {
  const r = rng(1);
  const s = Ref.random([2, 3, 4, 5], r, -2, 2).f32();
  const t = Ref.random([2, 3, 4, 5], r, -2, 2).f32();
  const [st, tt] = [s.toTensor({ requiresGrad: true }), t.toTensor({ requiresGrad: true })];
  const loss = vg.methods.siteDistillationLoss(st, tt, { temperature: 2 });
  await assertClose(loss, refDistill(s, t, 2), { rtol: 1e-5, atol: 1e-7 });
  loss.backward();
  assert.ok(st.grad, 'the student gets a gradient');
  assert.ok(!tt.grad, 'no gradient reaches the teacher');
  const same = vg.methods.siteDistillationLoss(st, st.detach());
  assert.ok(Math.abs(await same.item()) < 1e-6, 'zero when student equals teacher');
  await gradcheck((a) => vg.methods.siteDistillationLoss(a, tt, { temperature: 2 }).reshape([1]), [s], { eps: 1e-2 });
  for (const x of [st, tt, loss, same]) x.dispose();
  assertThrowsWith(() => vg.methods.siteDistillationLoss(vg.zeros([1, 2, 3]), vg.zeros([1, 3, 3])), ['siteDistillationLoss', 'same']);
});

test('siteWeight and backwardTransfer', () => {
  assert.is(vg.methods.siteWeight(1, 1), 0);
  assert.is(vg.methods.siteWeight(1, 4), 0.75);
  // R[i][j]: Dice on site j after stage i
  const R = [
    [0.8, 0.1, 0.2],
    [0.6, 0.9, 0.3],
    [0.5, 0.7, 0.85],
  ];
  assert.ok(Math.abs(vg.methods.backwardTransfer(R) - ((0.5 - 0.8 + (0.7 - 0.9)) / 2)) < 1e-12);
  assertThrowsWith(() => vg.methods.backwardTransfer([[1]]), ['backwardTransfer', 'at least 2']);
});

test('ResILNet: a shared ResNet-18 encoder, teacher and student decoders at full resolution; forward is the student', async () => {
  const net = new vg.models.ResILNet({ depth: 18, inChannels: 1, numClasses: 4, featureBase: 8 });
  net.eval();
  const x = vg.randn([1, 1, 64, 64], { seed: 3 });
  const [t, s] = vg.noGrad(() => net.both(x));
  const f = vg.noGrad(() => net.call(x));
  assert.equal([...t.shape], [1, 4, 64, 64]);
  assert.equal([...s.shape], [1, 4, 64, 64]);
  await assertClose(f, new Ref(await s.data(), s.shape), { rtol: 0, atol: 0, msg: 'forward = student' });
  const keys = Object.keys(net.stateDict());
  assert.ok(keys.includes('encoder.layer4.1.conv2.weight') && keys.some((k) => k.startsWith('teacher_decoder.')) && keys.some((k) => k.startsWith('student_decoder.')));
  for (const z of [x, t, s, f]) z.dispose();
  net.dispose();
});

test('phantom sites: one subject rendered differently per site (intensity curve, noise, bias, resolution, field of view)', async () => {
  const a = vg.data.siteFrames(vg.data.PHANTOM_SITES[0], 5, 1, 32);
  const e = vg.data.siteFrames(vg.data.PHANTOM_SITES[4], 5, 1, 32);
  assert.equal([...a.image.shape], [2, 1, 32, 32]);
  const [ia, ie] = [await a.image.data(), await e.image.data()];
  let diff = 0;
  for (let i = 0; i < ia.length; i++) diff += Math.abs(ia[i] - ie[i]);
  assert.ok(diff / ia.length > 0.05, `sites A and E render alike (mean |difference| ${diff / ia.length})`);
  assert.ok(ia.every((v) => v >= 0 && v <= 1) && ie.every((v) => v >= 0 && v <= 1), 'images stay in [0, 1]');
  for (const t of [a.image, a.label, e.image, e.label]) t.dispose();
});

test.run();
