// Point sampling and a MORSE point-head training step: voxgrad's point ops beside the same computation written with
// generic ops, engines interleaved sample by sample. GPU time from timestamp queries (vg.profile, median of SAMPLES),
// peak bytes = the highest bytes in use during one run above what was in use before it (vg.memory().peakBytes after
// vg.emptyCache()). Rows:
// - pointSample (forward + backward to the map and the points) of a [B, 32, S, S] map at 2048 points per image
//   (MORSE's training point count): the composite (affine of the coordinates + gridSample), gridSample alone on a
//   grid made in advance (the floor for a dedicated point kernel: the same gather, minus the affine), and bilinear
//   interpolation written with generic ops (floor, four gathers of the flattened map, weights, masks).
// - the inference-time choice of the 8192 most uncertain cells of [B, 4, S, S] logits: uncertainGridPoints
//   (topk selection) against argsort of the whole map and a narrow.
// - a MORSE point-head training step at S² (pointLoss forward + backward: uncertainPoints, pointSample of the fine
//   map and the logits, the standard point head, cross-entropy) with the point reads through pointSample and through
//   the generic-ops bilinear.
//   node bench/points.mjs  (POINTS_BATCH=4 POINTS_SIZE=256 for the paper's training size)
import * as vg from 'voxgrad';
import { interleaved, f1, row, ratio, maxRelDiffAll } from './harness.mjs';

const SAMPLES = 3;
// batch and map side: MORSE trains at 256² with batch 4; 128² and batch 2 keep a software adapter's run short
const B = Number(process.env.POINTS_BATCH ?? 2);
const S = Number(process.env.POINTS_SIZE ?? 128);
const info = await vg.init();

/** detectron2's point_sample (zero padding, alignCorners false) from generic ops: x [B, C, H, W], p [B, N, 2] → [B, C, N]. */
function genericPointSample(x, p) {
  return vg.tidy(() => {
    const [b, c, h, w] = x.shape;
    const n = p.shape[1];
    const px = vg.sub(vg.mul(vg.slice(p, 2, 0, 1).squeeze(2), w), 0.5);
    const py = vg.sub(vg.mul(vg.slice(p, 2, 1, 2).squeeze(2), h), 0.5);
    const x0 = vg.floor(px);
    const y0 = vg.floor(py);
    const fx = vg.sub(px, x0);
    const fy = vg.sub(py, y0);
    const flat = x.reshape([b, c, h * w]);
    let out = null;
    for (const [dy, dx] of [[0, 0], [0, 1], [1, 0], [1, 1]]) {
      const xi = vg.add(x0, dx);
      const yi = vg.add(y0, dy);
      const inside = vg.mul(vg.mul(vg.ge(xi, 0), vg.le(xi, w - 1)), vg.mul(vg.ge(yi, 0), vg.le(yi, h - 1)));
      const wgt = vg.mul(vg.mul(dx ? fx : vg.sub(1, fx), dy ? fy : vg.sub(1, fy)), inside.to('f32'));
      const idx = vg.add(vg.mul(vg.clamp(yi, 0, h - 1), w), vg.clamp(xi, 0, w - 1)).to('i32');
      const v = vg.gather(flat, 2, vg.expand(idx.unsqueeze(1), [b, c, n]));
      const term = vg.mul(v, wgt.unsqueeze(1));
      out = out ? vg.add(out, term) : term;
    }
    return out;
  });
}

/** An engine: GPU time of fn() (which returns the tensors to read and dispose) and its peak bytes. */
function engine(name, fn) {
  return {
    name,
    async run(keep) {
      await vg.sync();
      vg.emptyCache();
      const before = vg.memory().bytesInUse;
      const { result, report } = await vg.profile(fn);
      const peak = vg.memory().peakBytes - before;
      const outputs = keep ? [await result[0].data()] : undefined;
      for (const t of result) t.dispose();
      peaks[name] = Math.max(peaks[name] ?? 0, peak);
      return { wallMs: report.totalUs / 1000, gpuMs: report.totalUs / 1000, outputs };
    },
  };
}
const peaks = {};

/** Forward + backward of sum(sample(x, p) * g): returns [the output, x's gradient, p's gradient]. */
const withBackward = (sample, x, p, g) => () => {
  const xs = x.detach().requiresGrad_();
  const ps = p.detach().requiresGrad_();
  const out = sample(xs, ps);
  const loss = vg.sum(vg.mul(out, g));
  loss.backward();
  const res = [out, xs.grad, ps.grad];
  loss.dispose();
  xs.dispose();
  ps.dispose();
  return res;
};

const sections = [];
{
  const x = vg.randn([B, 32, S, S], { seed: 1 });
  const p = vg.rand([B, 2048, 2], { seed: 2 });
  const g = vg.randn([B, 32, 2048], { seed: 3 });
  const grid = vg.sub(vg.mul(p, 2), 1).reshape([B, 2048, 1, 2]);
  const r = await interleaved(
    [
      engine('pointSample', withBackward((a, q) => vg.pointSample(a, q), x, p, g)),
      engine('gridSample on a ready grid', withBackward((a, q) => vg.gridSample(a, q).reshape([B, 32, 2048]), x, grid, g)),
      engine('generic ops', withBackward(genericPointSample, x, p, g)),
    ],
    { samples: SAMPLES },
  );
  sections.push({ title: `pointSample fwd+bwd, map [${B}, 32, ${S}, ${S}], 2048 points/image`, r, ref: 'pointSample' });
  for (const t of [x, p, g, grid]) t.dispose();
}
{
  const logits = vg.randn([B, 4, S, S], { seed: 4 });
  const r = await interleaved(
    [
      engine('uncertainGridPoints', () => {
        const { indices, coords } = vg.uncertainGridPoints(logits, 8192);
        return [indices.to('f32'), indices, coords];
      }),
      engine('argsort + narrow', () =>
        vg.tidy(() => {
          const idx = vg.narrow(vg.argsort(vg.pointUncertainty(logits).reshape([B, S * S]), { descending: true }), 1, 0, 8192);
          return [idx.to('f32')];
        }),
      ),
    ],
    { samples: SAMPLES },
  );
  sections.push({ title: `top-8192 uncertain cells of [${B}, 4, ${S}, ${S}] logits`, r, ref: 'uncertainGridPoints' });
  logits.dispose();
}
{
  const backbone = new vg.models.UNet2D({ numClasses: 4, features: [8, 16, 32, 64, 128] });
  const model = new vg.models.Morse(backbone, { numClasses: 4, mapChannels: [128, 64, 32, 16, 8], moe: { width: 64, outChannels: 64 } });
  const coarse = vg.randn([B, 4, S, S], { seed: 5 });
  const fine = vg.randn([B, 64, S, S], { seed: 6 });
  const label = vg.floor(vg.mul(vg.rand([B, S, S], { seed: 7 }), 4)).to('i32');
  const step = (generic) => () => {
    const c = coarse.detach().requiresGrad_();
    const f = fine.detach().requiresGrad_();
    const loss = vg.tidy(() => {
      if (!generic) return model.pointLoss(c, f, label, 9);
      const pts = vg.uncertainPoints(c, 2048, { seed: 9 });
      const target = vg.noGrad(() => vg.pointSample(label.to('f32').unsqueeze(1), pts, { mode: 'nearest' }).squeeze(1).to('i32'));
      return vg.crossEntropy(model.head.call(genericPointSample(f, pts), genericPointSample(c, pts), pts), target);
    });
    loss.backward();
    const res = [loss, f.grad, c.grad];
    c.dispose();
    f.dispose();
    return res;
  };
  const r = await interleaved([engine('pointLoss (pointSample)', step(false)), engine('pointLoss (generic ops)', step(true))], { samples: SAMPLES });
  sections.push({ title: `MORSE point-head training step (2048 points/image, B = ${B}, ${S}², fine map 64 ch)`, r, ref: 'pointLoss (pointSample)' });
  for (const t of [coarse, fine, label]) t.dispose();
  model.dispose();
}

console.log(`\npoint sampling (f32) on ${info.description}: GPU ms from timestamp queries, median of ${SAMPLES}, engines interleaved`);
const w = [30, 9, 14, 12, 14];
for (const s of sections) {
  console.log(`\n  ${s.title}`);
  console.log('  ' + row(['engine', 'gpu ms', 'first row is', 'peak MiB', 'max rel diff'], w));
  const first = s.r[s.ref];
  for (const [name, e] of Object.entries(s.r)) {
    const diff = name === s.ref ? '-' : (maxRelDiffAll(first.outputs ?? [], e.outputs ?? []) ?? NaN).toExponential(1);
    console.log('  ' + row([name, f1(e.gpuMs), name === s.ref ? '-' : ratio(first.gpuMs, e.gpuMs), (peaks[name] / 2 ** 20).toFixed(1), diff], w));
  }
}
process.exit(0);
