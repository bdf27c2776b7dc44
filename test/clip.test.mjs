// vg.models.CLIP against PyTorch (test/fixtures/gen_clip.py: OpenAI CLIP's architecture written out in float64, tiny
// random ViT and ModifiedResNet configurations, BN running statistics random): state-dict keys and shapes, the
// configuration inferred from the weights, image/text features and logits in eval mode with the fixture's weights
// (read through vg.io.readSafetensors, OpenAI keys and Hugging Face CLIPModel keys), parameter gradients of a
// weighted sum of the logits, and the errors of bad input.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fileURLToPath } from 'node:url';
import { fixtureRef, loadFixtures } from './fixtures.mjs';
import { assertClose, assertThrowsWith, setup, vg } from './helpers.mjs';
import { rejectsWith } from './io-helpers.mjs';

test.before(setup);

const cases = Object.fromEntries(loadFixtures('clip').map((c) => [c.name, c]));
const weightsPath = fileURLToPath(new URL('./fixtures/clip.safetensors', import.meta.url));
let all;
const weights = async (prefix) => {
  all ??= await vg.io.readSafetensors(weightsPath);
  return Object.fromEntries(Object.entries(all).filter(([k]) => k.startsWith(prefix)).map(([k, t]) => [k.slice(prefix.length), t]));
};
test.after(() => Object.values(all ?? {}).forEach((t) => t.dispose()));

/** The fixture's snake_case config as vg's ClipConfig. */
const configOf = (c) => ({
  embedDim: c.embed_dim,
  imageResolution: c.image_resolution,
  visionLayers: c.vision_layers,
  visionWidth: c.vision_width,
  visionPatchSize: c.vision_patch_size,
  visionHeads: c.vision_heads,
  contextLength: c.context_length,
  vocabSize: c.vocab_size,
  transformerWidth: c.transformer_width,
  transformerHeads: c.transformer_heads,
  transformerLayers: c.transformer_layers,
});
// a dozen layers in f32 against float64 (LayerNorm, attention, BN in eval)
const TOL = { rtol: 2e-4, atol: 2e-5 };

async function checkOutputs(model, c, msg) {
  const image = fixtureRef(c.image).toTensor();
  const text = fixtureRef(c.text).toTensor();
  const [im, tx, [li, lt]] = vg.noGrad(() => [model.encodeImage(image), model.encodeText(text), model.call(image, text)]);
  await assertClose(im, fixtureRef(c.image_features), { ...TOL, msg: `${msg} image features` });
  await assertClose(tx, fixtureRef(c.text_features), { ...TOL, msg: `${msg} text features` });
  const ref = fixtureRef(c.logits_per_image);
  await assertClose(li, ref, { ...TOL, msg: `${msg} logits per image` });
  const [n, m] = ref.shape;
  const refT = Array.from({ length: n * m }, (_, i) => ref.data[(i % n) * m + Math.floor(i / n)]);
  assert.equal([...lt.shape], [m, n]);
  const got = await lt.data();
  refT.forEach((v, i) => assert.ok(Math.abs(got[i] - v) <= 2e-5 + 2e-4 * Math.abs(v), `${msg} logits per text [${i}]`));
  [image, text, im, tx, li, lt].forEach((t) => t.dispose());
}

for (const name of ['vit', 'resnet']) {
  test(`CLIP (${name}) has OpenAI's state-dict keys and shapes`, () => {
    const c = cases[name];
    const model = new vg.models.CLIP(configOf(c.config), { seed: 3 });
    const got = Object.entries(model.stateDict()).map(([k, t]) => [k, [...t.shape]]);
    const sortKeys = (a) => [...a].sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
    assert.equal(sortKeys(got), sortKeys(c.keys));
    model.dispose();
  });

  test(`CLIP (${name}) matches PyTorch with the fixture's weights`, async () => {
    const c = cases[name];
    const sd = await weights(`${name}/`);
    assert.equal(vg.models.clipConfigFromStateDict(sd), inferred(c));
    const model = new vg.models.CLIP(configOf(c.config));
    model.loadStateDict(sd);
    model.eval();
    await checkOutputs(model, c, name);
    model.dispose();
  });
}

/** What clipConfigFromStateDict can know: everything but the heads (OpenAI's rule width / 64 stands in). */
function inferred(c) {
  const cfg = configOf(c.config);
  delete cfg.visionHeads;
  if (Array.isArray(cfg.visionLayers)) delete cfg.visionPatchSize;
  return { ...cfg, transformerHeads: cfg.transformerWidth / 64 };
}

test('loadClip reads OpenAI and Hugging Face key layouts to the same model', async () => {
  const c = cases.vit;
  const heads = { visionHeads: c.config.vision_heads, transformerHeads: c.config.transformer_heads };
  for (const prefix of ['vit/', 'vit_hf/']) {
    const model = await vg.models.loadClip(await weights(prefix), { config: heads });
    assert.equal(model.config, configOf(c.config), `${prefix} config`);
    model.eval();
    await checkOutputs(model, c, `loadClip ${prefix}`);
    model.dispose();
  }
  // Hugging Face keys mapped: q/k/v concatenated, projections transposed, position_ids dropped
  const mapped = vg.models.clipStateDictFromHuggingFace(await weights('vit_hf/'));
  const openai = await weights('vit/');
  assert.equal(Object.keys(mapped).sort(), Object.keys(openai).sort());
  for (const k of ['transformer.resblocks.1.attn.in_proj_bias', 'visual.transformer.resblocks.0.attn.in_proj_weight', 'text_projection', 'visual.proj'])
    assert.equal(Array.from(await mapped[k].data()), Array.from(await openai[k].data()), k);
  const given = new Set(Object.values(await weights('vit_hf/')));
  Object.values(mapped).forEach((t) => given.has(t) || t.dispose());
  await rejectsWith(vg.models.loadClip({ 'text_model.bogus': openai.logit_scale }), ['clipStateDictFromHuggingFace', "lacks 'text_projection.weight'"]);
});

test('CLIP (vit) parameter gradients match PyTorch', async () => {
  const c = cases.vit;
  const model = new vg.models.CLIP(configOf(c.config));
  model.loadStateDict(await weights('vit/'));
  model.eval();
  const image = fixtureRef(c.image).toTensor();
  const text = fixtureRef(c.text).toTensor();
  const w = fixtureRef(c.loss_weights).toTensor();
  const [logits, logitsT] = model.call(image, text);
  const loss = vg.sum(vg.mul(logits, w));
  loss.backward();
  const params = model.stateDict();
  for (const [k, e] of Object.entries(c.grads)) {
    const ref = fixtureRef(e);
    const scale = ref.data.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
    // fixture_io stores a 0-d tensor (logit_scale's gradient) as [1] (np.ascontiguousarray makes it 1-d)
    const grad = vg.reshape(params[k].grad, ref.shape);
    await assertClose(grad, ref, { rtol: 1e-3, atol: 1e-4 * scale, msg: `d/d ${k}` });
    grad.dispose();
  }
  [image, text, w, logits, logitsT, loss].forEach((t) => t.dispose());
  model.dispose();
});

test('CLIP rejects bad configurations and inputs with clear errors', () => {
  const cfg = configOf(cases.vit.config);
  assertThrowsWith(() => new vg.models.CLIP({ ...cfg, visionPatchSize: 5 }), ['VisionTransformer', 'multiple of the patch size']);
  assertThrowsWith(() => new vg.models.CLIP({ ...cfg, transformerHeads: 5 }), ['CLIP', 'divisible by transformerHeads']);
  assertThrowsWith(() => new vg.models.CLIP({ ...cfg, visionLayers: [1, 2, 3] }), ['CLIP', 'four ResNet stage depths']);
  assertThrowsWith(() => new vg.models.CLIP({ ...cfg, visionLayers: [1, 1, 1, 1], imageResolution: 40, visionWidth: 8, visionHeads: 4 }), ['ModifiedResNet', 'multiple of 32']);
  assertThrowsWith(() => new vg.models.CLIP({ ...cfg, vocabSize: 0 }), ['CLIP', 'config.vocabSize must be a positive integer']);
  const model = new vg.models.CLIP(cfg, { seed: 1 });
  const img = vg.zeros([2, 3, 8, 8]);
  assertThrowsWith(() => model.encodeImage(img), ['VisionTransformer', 'image must be [N, 3, 16, 16]', '[2, 3, 8, 8]']);
  const f = vg.zeros([2, 8]);
  assertThrowsWith(() => model.encodeText(f), ['CLIP.encodeText', 'i32 token ids [N, 8]', 'f32 [2, 8]']);
  const short = vg.zeros([2, 5], { dtype: 'i32' });
  assertThrowsWith(() => model.encodeText(short), ['CLIP.encodeText', 'i32 [2, 5]']);
  [img, f, short].forEach((t) => t.dispose());
  model.dispose();
});

test('CLIP: a seeded initialisation is reproducible in every tensor and follows OpenAI (bn3 gains zero, logit_scale log(1/0.07))', async () => {
  for (const kind of ['resnet', 'vit']) {
    const cfg = { ...configOf(cases[kind].config) };
    const a = new vg.models.CLIP(cfg, { seed: 5 });
    vg.randn([7]).dispose(); // a draw from the global generator in between must not matter
    const b = new vg.models.CLIP(cfg, { seed: 5 });
    const sa = a.stateDict();
    const sb = b.stateDict();
    for (const k of Object.keys(sa)) assert.equal(Array.from(await sa[k].data()), Array.from(await sb[k].data()), `${kind}: ${k}`);
    if (kind === 'resnet') assert.ok((await sa['visual.layer2.1.bn3.weight'].data()).every((v) => v === 0));
    assert.ok(Math.abs((await a.logitScale.data())[0] - Math.log(1 / 0.07)) < 1e-6);
    a.dispose();
    b.dispose();
  }
});

test.run();
