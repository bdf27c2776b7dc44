// vg.data.WaterbirdsDataset and CelebADataset on tiny folders in their published layouts, written here: splits,
// labels, spurious attributes, groups (2·y + a), paths, the image preprocessing (shorter side to `size`, centre crop,
// CLIP normalisation) through a `decode` option, and errors naming file, line and option. The image files hold a tiny
// raw format (width, height, then RGB bytes) that the test's decoder reads: voxgrad has no JPEG decoder.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { assertThrowsWith, setup, vg } from './helpers.mjs';

test.before(setup);

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'voxgrad-groups-'));
const MEAN = [0.48145466, 0.4578275, 0.40821073];
const STD = [0.26862954, 0.26130258, 0.27577711];

/** Writes a raw image: [width, height] then width·height RGB bytes, pixel (x, y) from rgb(x, y). */
function writeImage(file, width, height, rgb) {
  const b = new Uint8Array(2 + width * height * 3);
  b[0] = width;
  b[1] = height;
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) b.set(rgb(x, y), 2 + (y * width + x) * 3);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, b);
}
const decode = (bytes) => ({ width: bytes[0], height: bytes[1], channels: 3, data: bytes.subarray(2) });

async function rejects(promise, fragments) {
  let err = null;
  await promise.catch((e) => (err = e));
  assertThrowsWith(() => {
    if (err) throw err;
  }, fragments);
}

// Waterbirds: 6 rows, split 0/1/2; y = bird, place = background
const wb = path.join(root, 'waterbirds');
const WB_ROWS = [
  ['001.Black_footed_Albatross/a.jpg', 1, 0, 1],
  ['001.Black_footed_Albatross/b.jpg', 1, 0, 0],
  ['002.Laysan/c.jpg', 0, 0, 0],
  ['002.Laysan/d.jpg', 0, 1, 1],
  ['003.Sooty/e.jpg', 1, 2, 1],
  ['003.Sooty/f.jpg', 0, 2, 1],
];
fs.mkdirSync(wb, { recursive: true });
fs.writeFileSync(
  path.join(wb, 'metadata.csv'),
  ['img_id,img_filename,y,split,place,place_filename', ...WB_ROWS.map(([f, y, s, p], i) => `${i + 1},${f},${y},${s},${p},/x/y.jpg`)].join('\n') + '\n',
);
// a 4 × 6 (W × H) image: pixel (x, y) = (10x, 20y, 7); the others constant
writeImage(path.join(wb, WB_ROWS[0][0]), 4, 6, (x, y) => [10 * x, 20 * y, 7]);
for (const [f] of WB_ROWS.slice(1)) writeImage(path.join(wb, f), 8, 4, () => [200, 100, 50]);

test('WaterbirdsDataset: split rows, labels, places, groups, paths', async () => {
  const train = await vg.data.WaterbirdsDataset.open(wb, { decode });
  assert.is(train.length, 3);
  assert.equal([...train.labels], [1, 1, 0]);
  assert.equal([...train.attributes], [1, 0, 0]);
  assert.equal([...train.groups], [3, 2, 0]);
  assert.equal(train.groupCounts(), [1, 0, 1, 1]);
  assert.equal(train.paths, WB_ROWS.slice(0, 3).map(([f]) => `${wb}/${f}`));
  const val = await vg.data.WaterbirdsDataset.open(wb + '/', { split: 'val', decode });
  assert.equal([...val.groups], [1]);
  const t = await vg.data.WaterbirdsDataset.open(wb, { split: 'test', decode });
  assert.equal([...t.groups], [3, 1]);
});

test('WaterbirdsDataset.get: centre crop of the shorter side, CLIP normalisation; resize of a wider image', async () => {
  const ds = await vg.data.WaterbirdsDataset.open(wb, { decode, size: 4 });
  const item = await ds.get(0);
  assert.is(item.label, 1);
  assert.is(item.group, 3);
  assert.equal(item.image.shape, [3, 4, 4]);
  const v = await item.image.data();
  // no resize (the shorter side is 4); the crop keeps rows 1..4 of 6
  for (let c = 0; c < 3; c++)
    for (let y = 0; y < 4; y++)
      for (let x = 0; x < 4; x++) {
        const raw = [10 * x, 20 * (y + 1), 7][c] / 255;
        const want = (raw - MEAN[c]) / STD[c];
        assert.ok(Math.abs(v[(c * 4 + y) * 4 + x] - want) < 1e-5, `[${c}, ${y}, ${x}]: ${v[(c * 4 + y) * 4 + x]} vs ${want}`);
      }
  item.image.dispose();
  // 8 × 4 → shorter side 2: 4 × 2, cropped to 2 × 2; a constant image stays constant
  const small = await (await vg.data.WaterbirdsDataset.open(wb, { decode, size: 2, mean: [0, 0, 0], std: [1, 1, 1] })).get(1);
  assert.equal(small.image.shape, [3, 2, 2]);
  const s = await small.image.data();
  [200, 100, 50].forEach((c, k) => s.subarray(k * 4, k * 4 + 4).forEach((x) => assert.ok(Math.abs(x - c / 255) < 1e-6, `channel ${k}: ${x}`)));
  small.image.dispose();
});

test('WaterbirdsDataset: errors name the file, line and option', async () => {
  await rejects(vg.data.WaterbirdsDataset.open(path.join(root, 'nowhere')), ['WaterbirdsDataset', 'metadata.csv', 'expected the layout']);
  const bad = path.join(root, 'wb-bad');
  fs.mkdirSync(bad, { recursive: true });
  fs.writeFileSync(path.join(bad, 'metadata.csv'), 'img_id,img_filename,y,split\n1,a.jpg,1,0\n');
  await rejects(vg.data.WaterbirdsDataset.open(bad), ['WaterbirdsDataset', 'the header lacks place']);
  fs.writeFileSync(path.join(bad, 'metadata.csv'), 'img_filename,y,split,place\na.jpg,1,0,0\nb.jpg,2,0,1\n');
  await rejects(vg.data.WaterbirdsDataset.open(bad), ['WaterbirdsDataset', 'line 3', 'y must be one of 0, 1', '2']);
  await rejects(vg.data.WaterbirdsDataset.open(wb, { split: 'dev' }), ['WaterbirdsDataset', "split must be 'train', 'val' or 'test'"]);
  await rejects(vg.data.WaterbirdsDataset.open(wb, { std: [1, 0, 1] }), ['WaterbirdsDataset', 'std must be three positive numbers']);
  // Node has no image decoder of its own: the error names the option
  const nodec = await vg.data.WaterbirdsDataset.open(wb);
  await rejects(nodec.get(0), ['WaterbirdsDataset', 'no JPEG decoder', 'decode:']);
  await rejects(nodec.get(3), ['WaterbirdsDataset', 'index must be an integer in [0, 3)']);
  const wrong = await vg.data.WaterbirdsDataset.open(wb, { decode: () => ({ width: 2, height: 2, channels: 3, data: new Uint8Array(5) }) });
  await rejects(wrong.get(0), ['WaterbirdsDataset', 'must return { width, height, channels']);
});

// CelebA: 5 images, 3 attributes (the target and spurious ones among them), irregular spacing as in the release
const ca = path.join(root, 'celeba');
fs.mkdirSync(path.join(ca, 'img_align_celeba'), { recursive: true });
const CA_ROWS = [
  ['000001.jpg', [-1, 1, 1], 0],
  ['000002.jpg', [1, 1, -1], 0],
  ['000003.jpg', [1, -1, 1], 0],
  ['000004.jpg', [-1, -1, -1], 1],
  ['000005.jpg', [1, 1, 1], 2],
];
const writeCeleba = (dir, rows, names = '5_o_Clock_Shadow Blond_Hair Male', count = rows.length) => {
  fs.mkdirSync(path.join(dir, 'img_align_celeba'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'list_attr_celeba.txt'), [`${count}`, names, ...rows.map(([f, a]) => `${f} ${a.map((v) => String(v).padStart(2)).join(' ')}`)].join('\n') + '\n');
  fs.writeFileSync(path.join(dir, 'list_eval_partition.txt'), rows.map(([f, , p]) => `${f} ${p}`).join('\n') + '\n');
};
writeCeleba(ca, CA_ROWS);
writeImage(path.join(ca, 'img_align_celeba', '000001.jpg'), 3, 3, () => [255, 0, 128]);

test('CelebADataset: Blond_Hair label, Male attribute, partitions, other attributes as options', async () => {
  const train = await vg.data.CelebADataset.open(ca, { decode, size: 3 });
  assert.is(train.length, 3);
  assert.equal([...train.labels], [1, 1, 0]);
  assert.equal([...train.attributes], [1, 0, 1]);
  assert.equal([...train.groups], [3, 2, 1]);
  assert.equal(train.paths, ['000001', '000002', '000003'].map((n) => `${ca}/img_align_celeba/${n}.jpg`));
  assert.equal([...(await vg.data.CelebADataset.open(ca, { split: 'test' })).groups], [3]);
  const other = await vg.data.CelebADataset.open(ca, { split: 'val', target: 'Male', spurious: '5_o_Clock_Shadow' });
  assert.equal([other.labels[0], other.attributes[0], other.groups[0]], [0, 0, 0]);
  const item = await train.get(0);
  assert.equal(item.image.shape, [3, 3, 3]);
  const v = await item.image.data();
  [255, 0, 128].forEach((c, k) => assert.ok(Math.abs(v[k * 9 + 4] - (c / 255 - MEAN[k]) / STD[k]) < 1e-5, `channel ${k}`));
  item.image.dispose();
});

test('CelebADataset: errors name the file, line and attribute', async () => {
  await rejects(vg.data.CelebADataset.open(path.join(root, 'none')), ['CelebADataset', 'list_attr_celeba.txt', 'expected the layout']);
  await rejects(vg.data.CelebADataset.open(ca, { target: 'Wavy_Hair' }), ['CelebADataset', "no attribute 'Wavy_Hair'"]);
  const bad = path.join(root, 'celeba-bad');
  writeCeleba(bad, CA_ROWS, undefined, 9);
  await rejects(vg.data.CelebADataset.open(bad), ['CelebADataset', 'the first line says 9 images but 5 rows follow']);
  writeCeleba(bad, [['000001.jpg', [1, 0, 1], 0]]);
  await rejects(vg.data.CelebADataset.open(bad), ['CelebADataset', 'line 3', 'Blond_Hair must be one of -1, 1']);
  writeCeleba(bad, [['000001.jpg', [1, 1, 1], 0]]);
  fs.writeFileSync(path.join(bad, 'list_eval_partition.txt'), '000009.jpg 0\n');
  await rejects(vg.data.CelebADataset.open(bad), ['CelebADataset', '000001.jpg', 'is not in']);
});

test.after(() => fs.rmSync(root, { recursive: true, force: true }));
test.run();
