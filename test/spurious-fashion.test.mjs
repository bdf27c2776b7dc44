// vg.data's Waterbirds-like Fashion-MNIST set: labels from classes, the attribute agreeing with the label in exactly
// round(p · n_y) samples per label, groups, the rendering formula, captions, determinism by seed, and the four splits
// from Debian's dataset-fashion-mnist files.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { assertThrowsWith, setup, vg } from './helpers.mjs';
import { rejectsWith } from './io-helpers.mjs';

test.before(setup);

const LABEL = { 0: 0, 2: 0, 4: 0, 6: 0, 5: 1, 7: 1, 9: 1 };

function synthetic(n) {
  const classes = Uint8Array.from({ length: n }, (_, i) => i % 10);
  const pixels = new Uint8Array(n * 784);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 37) % 256;
  return { classes, pixels };
}

test('makeSpuriousSplit: labels, exact agreement per label, groups, captions, rendering', () => {
  const { classes, pixels } = synthetic(400);
  const idx = Array.from({ length: 400 }, (_, i) => i);
  const s = vg.data.makeSpuriousSplit(pixels, classes, idx, { agreement: 0.95, seed: 4 });
  const kept = idx.filter((i) => LABEL[classes[i]] !== undefined);
  assert.is(s.length, kept.length);
  assert.equal(Array.from(s.sourceIndex), kept);
  assert.equal(Array.from(s.labels), kept.map((i) => LABEL[classes[i]]));
  for (const y of [0, 1]) {
    const members = [...s.labels.keys()].filter((k) => s.labels[k] === y);
    const agree = members.filter((k) => s.attributes[k] === y).length;
    assert.is(agree, Math.round(0.95 * members.length), `label ${y}`);
  }
  s.groups.forEach((g, k) => assert.is(g, 2 * s.labels[k] + s.attributes[k]));
  const words = { 0: 'land', 1: 'water' };
  s.captions.forEach((c, k) => {
    assert.ok(c.split(' ').every((w) => w === ',' || vg.data.SPURIOUS_CAPTION_WORDS.includes(w)), c);
    if (/ on /.test(c)) assert.ok(c.endsWith(words[s.attributes[k]]), `${c} names the background`);
  });
  // a pixel of intensity g on background colour b renders as 2 (g + (1 - g) b) - 1; a full-intensity pixel is 1
  const k = 0;
  const src = s.sourceIndex[k];
  for (let px = 0; px < 784; px++) {
    const g = pixels[src * 784 + px] / 255;
    if (g !== 1) continue;
    for (let c = 0; c < 3; c++) assert.ok(Math.abs(s.images[(k * 3 + c) * 784 + px] - 1) < 1e-6);
  }
  // the background colour separates the attribute: blue minus red is positive on water
  const blueMinusRed = (k) => s.images[(k * 3 + 2) * 784] - s.images[k * 3 * 784];
  const zeroPixel = [...s.labels.keys()].filter((k) => pixels[s.sourceIndex[k] * 784] === 0);
  for (const k of zeroPixel) assert.is(blueMinusRed(k) > 0, s.attributes[k] === 1);
  const again = vg.data.makeSpuriousSplit(pixels, classes, idx, { agreement: 0.95, seed: 4 });
  assert.equal(Array.from(again.attributes), Array.from(s.attributes));
  assert.equal(again.captions, s.captions);
  const other = vg.data.makeSpuriousSplit(pixels, classes, idx, { agreement: 0.95, seed: 5 });
  assert.not.equal(Array.from(other.attributes), Array.from(s.attributes));
  assertThrowsWith(() => vg.data.makeSpuriousSplit(pixels, classes, idx, { agreement: 1.5, seed: 1 }), ['makeSpuriousSplit', 'agreement']);
  assertThrowsWith(() => vg.data.makeSpuriousSplit(pixels.subarray(1), classes, idx, { agreement: 0.5, seed: 1 }), ['makeSpuriousSplit', '28 × 28 bytes']);
});

test('loadSpuriousFashion: four disjoint splits from Debian dataset-fashion-mnist, 95% / 50% agreement', async () => {
  const d = await vg.data.loadSpuriousFashion({ pretrain: 1000, train: 1000, val: 1000, test: 1000, seed: 2 });
  const sources = [d.pretrain, d.train, d.val].map((s) => new Set(s.sourceIndex));
  assert.ok([...sources[1]].every((i) => i >= 1000 && i < 2000 && !sources[0].has(i)));
  assert.ok([...sources[2]].every((i) => i >= 2000 && i < 3000));
  const agreement = (s) => s.attributes.reduce((n, a, k) => n + (a === s.labels[k] ? 1 : 0), 0) / s.length;
  assert.ok(Math.abs(agreement(d.train) - 0.95) < 0.01, `train ${agreement(d.train)}`);
  assert.ok(Math.abs(agreement(d.val) - 0.5) < 0.01, `val ${agreement(d.val)}`);
  assert.ok(Math.abs(agreement(d.test) - 0.5) < 0.01, `test ${agreement(d.test)}`);
  // 7 of 10 classes kept
  assert.ok(d.test.length > 650 && d.test.length < 750, `test kept ${d.test.length}`);
  await rejectsWith(vg.data.loadSpuriousFashion({ pretrain: 60000, train: 1 }), ['loadSpuriousFashion', 'at most the 60000']);
});

test.run();
