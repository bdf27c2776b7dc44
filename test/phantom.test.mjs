// The embedded cardiac phantom: bit-exact per seed, distinct subjects, plausible anatomy (label fractions, a closed
// myocardial ring, ED->ES contraction, intensity ordering), the ES index, and PhantomDataset for both tasks.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { assertThrowsWith, setup, vg } from './helpers.mjs';

test.before(setup);

const D = () => vg.data;

const count = (label, t, H, W, cls) => {
  let n = 0;
  for (let i = t * H * W; i < (t + 1) * H * W; i++) n += label[i] === cls;
  return n;
};

test('cardiacPhantom: shapes, dtypes, bit-exact per seed (arrays and tensors), different seeds differ', async () => {
  const p = D().cardiacPhantom({ seed: 3, size: 64, frames: 6 });
  assert.equal(p.image.shape, [6, 64, 64]);
  assert.is(p.image.dtype, 'f32');
  assert.equal(p.label.shape, [6, 64, 64]);
  assert.is(p.label.dtype, 'i32');
  assert.is(p.ed, 0);
  assert.equal(p.spacing, [2.5, 2.5]);
  const again = D().cardiacPhantomArrays({ seed: 3, size: 64, frames: 6 });
  assert.equal(new Uint32Array((await p.image.data()).buffer), new Uint32Array(again.image.buffer), 'image bits');
  assert.equal([...(await p.label.data())], [...again.label]);
  const other = D().cardiacPhantomArrays({ seed: 4, size: 64, frames: 6 });
  let diff = 0;
  for (let i = 0; i < other.label.length; i++) diff += other.label[i] !== again.label[i];
  assert.ok(diff > 200, `another seed is another subject (${diff} label pixels differ)`);
  p.image.dispose();
  p.label.dispose();
});

test('cardiacPhantom anatomy over 10 subjects: label set, closed myocardial ring, LV cavity shrinks 20-60% ED->ES at the ES frame, blood brighter than myocardium', () => {
  const [S, T] = [96, 10];
  for (let seed = 0; seed < 10; seed++) {
    const p = D().cardiacPhantomArrays({ seed, size: S, frames: T });
    assert.is(p.es, 4, 'ES at round(0.35 T)');
    assert.ok(p.label.every((v) => v >= 0 && v <= 3));
    const areas = Array.from({ length: T }, (_, t) => count(p.label, t, S, S, 3));
    for (let t = 0; t < T; t++) {
      for (const cls of [1, 2, 3]) {
        const f = count(p.label, t, S, S, cls) / (S * S);
        assert.ok(f > 0.005 && f < 0.15, `seed ${seed} frame ${t} class ${cls} covers ${f}`);
      }
      // every LV-cavity pixel's 4-neighbours are cavity or myocardium: the ring closes
      for (let i = 1; i < S - 1; i++)
        for (let j = 1; j < S - 1; j++) {
          const o = t * S * S + i * S + j;
          if (p.label[o] !== 3) continue;
          for (const q of [o - 1, o + 1, o - S, o + S]) assert.ok(p.label[q] === 3 || p.label[q] === 2, `seed ${seed} frame ${t} (${i}, ${j})`);
        }
    }
    const shrink = 1 - areas[p.es] / areas[0];
    assert.ok(shrink >= 0.2 && shrink <= 0.6, `seed ${seed}: LV cavity shrinks by ${shrink}`);
    assert.is(areas.indexOf(Math.min(...areas)), p.es, `seed ${seed}: smallest cavity at ES (${areas})`);
    // myocardium thickens: about the same area around a smaller cavity
    const myo = [0, p.es].map((t) => count(p.label, t, S, S, 2));
    assert.ok(myo[1] > 0.85 * myo[0], `seed ${seed}: myocardial area kept ${myo}`);
    const meanOf = (cls) => {
      let s = 0;
      let n = 0;
      for (let i = 0; i < S * S; i++)
        if (p.label[i] === cls) {
          s += p.image[i];
          n++;
        }
      return s / n;
    };
    assert.ok(meanOf(3) > meanOf(2) + 0.3, `seed ${seed}: LV blood ${meanOf(3)} vs myocardium ${meanOf(2)}`);
    assert.ok(meanOf(1) > meanOf(2) + 0.3, `seed ${seed}: RV blood vs myocardium`);
  }
  assert.is(D().cardiacPhantomArrays({ frames: 2, size: 32 }).es, 1);
  assertThrowsWith(() => D().cardiacPhantomArrays({ frames: 1 }), ['cardiacPhantom', 'frames', '[2, 50]']);
  assertThrowsWith(() => D().cardiacPhantomArrays({ frames: 4, es: 4 }), ['cardiacPhantom', 'es', '[1, 3]']);
});

test('PhantomDataset: segmentation (ed-es and all) and registration samples, subjects, loader batches', async () => {
  const seg = new (D().PhantomDataset)({ subjects: 3, seed: 10, size: 48 });
  assert.is(seg.length, 6);
  assert.equal([0, 1, 2, 3, 4, 5].map((i) => seg.subjectOf(i)), [10, 10, 11, 11, 12, 12]);
  const ref = D().cardiacPhantomArrays({ seed: 11, size: 48, frames: 2 });
  const s = seg.get(3);
  assert.equal(s.image.shape, [1, 48, 48]);
  assert.equal(s.label.shape, [48, 48]);
  assert.equal([s.subject, s.frame], [11, 1]);
  assert.equal([...(await s.label.data())], [...ref.label.subarray(48 * 48)], 'sample 3 is subject 11 at ES');
  assert.equal([...(await s.image.data())], [...ref.image.subarray(48 * 48)]);
  s.image.dispose();
  s.label.dispose();
  const all = new (D().PhantomDataset)({ subjects: [5, 9], frames: 'all', cineFrames: 4, size: 32 });
  assert.is(all.length, 8);
  assert.equal([all.subjectOf(7), all.get(7).frame], [9, 3]);
  const reg = new (D().PhantomDataset)({ subjects: 2, task: 'registration', size: 32 });
  assert.is(reg.length, 2);
  const r = reg.get(1);
  assert.equal(Object.keys(r).sort(), ['fixed', 'fixedLabel', 'movingFrame', 'moving', 'movingLabel', 'subject'].sort());
  const ra = D().cardiacPhantomArrays({ seed: 1, size: 32, frames: 2 });
  assert.equal([...(await r.fixedLabel.data())], [...ra.label.subarray(0, 1024)], 'ED fixed');
  assert.equal([...(await r.movingLabel.data())], [...ra.label.subarray(1024)], 'ES moving');
  const before = vg.memory().liveTensors;
  for await (const b of new (D().DataLoader)(seg, { batchSize: 4, shuffle: true })) {
    assert.equal(b.image.shape, [b.subject.length, 1, 48, 48]);
    assert.equal(b.label.shape, [b.subject.length, 48, 48]);
    b.image.dispose();
    b.label.dispose();
  }
  assert.is(vg.memory().liveTensors, before);
  const [train, held] = D().randomSplit(seg, [2, 1], { groupBy: (i) => seg.subjectOf(i) });
  assert.is(train.length + held.length, 6);
  assertThrowsWith(() => new (D().PhantomDataset)({ task: 'classification' }), ['PhantomDataset', 'task']);
});

test.run();
