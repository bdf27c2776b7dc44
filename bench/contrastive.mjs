// Contrastive kernels: the fused infoNCE (shaders/info_nce.wgsl) beside the same loss written with generic voxgrad
// ops, forward + backward, on the sizes of issue 14:
//   indexed   4,096 anchors × 512 indexed negatives × 128 dims over a 12,288-entry bank (ACTION's anatomical
//             contrast): fused gathers the bank rows in the kernel; generic = indexSelect of the [Q·J, D] negatives,
//             bmm, cat of the positive logit, crossEntropy.
//   dense     a 4,096 × 12,288 × 128 cosine-similarity softmax (every bank row a negative): fused = normalize +
//             infoNCE without an index (online softmax, the [Q, K] logits never stored); generic = normalize,
//             cosineSimilarityMatrix ([Q, K] materialised), cat, crossEntropy.
// Inputs are the same for both (seeded), the loss and the three gradients are cross-checked. GPU ms: summed kernel
// time from timestamp queries (vg.profile), median of the samples, engines interleaved sample by sample. Peak: the
// growth of vg.memory().peakBytes over the inputs during one forward + backward (vg.emptyCache() restarts the peak).
// `--scale s` (bench/run.mjs passes it through) divides the anchors and the bank by s for slow adapters.
import * as vg from 'voxgrad';
import { f1, exp1, interleaved, kernelsOf, maxRelDiffAll, ratio, row } from './harness.mjs';

const SAMPLES = 3;
// an engine whose warm-up run took longer than this takes one timed sample (full sizes on a software adapter)
const SLOW_MS = 60_000;

function inputs({ Q, K, D, J }) {
  const make = (shape, seed) => {
    const t = vg.randn(shape, { seed });
    t.requiresGrad = true;
    return t;
  };
  return { q: make([Q, D], 101), bank: make([K, D], 102), pos: make([Q, D], 103), index: J ? vg.randint(0, K, [Q, J], { seed: 104 }) : null };
}

const TAU = 0.1;

/** The loss of one case written both ways; each returns the scalar loss (the caller runs backward). */
const LOSSES = {
  indexed: {
    fused: ({ q, bank, pos, index }) => vg.infoNCE(q, bank, pos, { temperature: TAU, negativeIndex: index }),
    generic: ({ q, bank, pos, index }) =>
      vg.tidy(() => {
        const [Q, D] = q.shape;
        const negs = vg.reshape(vg.indexSelect(bank, 0, vg.reshape(index, [-1])), [Q, -1, D]);
        const lneg = vg.squeeze(vg.bmm(negs, vg.unsqueeze(q, 2)), 2);
        const lpos = vg.sum(vg.mul(q, pos), { dim: 1, keepdim: true });
        return vg.crossEntropy(vg.div(vg.cat([lpos, lneg], 1), TAU), vg.zeros([Q], { dtype: 'i32' }));
      }),
  },
  dense: {
    fused: ({ q, bank, pos }) =>
      vg.tidy(() => vg.infoNCE(vg.normalize(q, { dim: 1 }), vg.normalize(bank, { dim: 1 }), vg.normalize(pos, { dim: 1 }), { temperature: TAU })),
    generic: ({ q, bank, pos }) =>
      vg.tidy(() => {
        const lpos = vg.cosineSimilarity(q, pos, { dim: 1 });
        const lneg = vg.cosineSimilarityMatrix(q, bank);
        const logits = vg.div(vg.cat([vg.unsqueeze(lpos, 1), lneg], 1), TAU);
        return vg.crossEntropy(logits, vg.zeros([q.shape[0]], { dtype: 'i32' }));
      }),
  },
};

/** One engine: forward + backward under vg.profile; outputs (loss, then the gradients) kept on request. */
function engine(name, data, lossFn) {
  return {
    name,
    async run(keep) {
      for (const t of [data.q, data.bank, data.pos]) {
        t.grad?.dispose();
        t.grad = null;
      }
      await vg.sync();
      vg.emptyCache();
      const base = vg.memory().bytesInUse;
      const { result, report } = await vg.profile(async () => {
        const loss = lossFn(data);
        loss.backward();
        await vg.sync();
        return loss;
      });
      const peakBytes = vg.memory().peakBytes - base;
      const outputs = keep ? [await result.data(), await data.q.grad.data(), await data.bank.grad.data(), await data.pos.grad.data()] : undefined;
      result.dispose();
      return { wallMs: report.totalUs / 1000, gpuMs: report.totalUs / 1000, kernels: kernelsOf(report), outputs, peakBytes };
    },
  };
}

/** Wraps an engine so that its peak bytes are recorded per sample. */
function recording(e, peaks) {
  return {
    name: e.name,
    async run(keep) {
      const r = await e.run(keep);
      peaks.push(r.peakBytes);
      return r;
    },
  };
}

export async function benchContrastive({ scale = 1 } = {}) {
  const cases = [
    { name: 'indexed', Q: 4096 / scale, K: 12288 / scale, D: 128, J: 512 },
    { name: 'dense', Q: 4096 / scale, K: 12288 / scale, D: 128, J: 0 },
  ];
  const rows = [];
  for (const c of cases) {
    const data = inputs(c);
    const peaks = { fused: [], generic: [] };
    const result = { case: c, errors: {} };
    const engines = { generic: recording(engine('generic', data, LOSSES[c.name].generic), peaks.generic), fused: recording(engine('fused', data, LOSSES[c.name].fused), peaks.fused) };
    // an engine that cannot run the size (e.g. a tensor past the adapter's binding limit) fails on its warm-up run
    // (generic warms up first): it is reported and the other is timed alone
    let r = null;
    while (!r && Object.keys(engines).length)
      try {
        r = await interleaved(Object.values(engines), { samples: SAMPLES, slowMs: SLOW_MS, slowSamples: 1 });
      } catch (e) {
        const failed = engines.generic && peaks.generic.length === 0 ? 'generic' : 'fused';
        result.errors[failed] = String(e?.message ?? e).split('\n')[0];
        delete engines[failed];
        peaks.fused.length = 0;
        await vg.sync().catch(() => {});
      }
    if (r) {
      result.diff = r.fused && r.generic ? maxRelDiffAll(r.fused.outputs, r.generic.outputs) : null;
      for (const e of Object.values(r)) delete e.outputs;
      result.r = r;
      result.peakBytes = Object.fromEntries(Object.keys(r).map((k) => [k, Math.max(...peaks[k])]));
    }
    rows.push(result);
    for (const t of [data.q, data.bank, data.pos, data.index]) {
      t?.grad?.dispose();
      t?.dispose();
    }
  }
  console.log('\ncontrastive kernels: fused infoNCE vs the same loss from generic voxgrad ops (forward + backward, f32)');
  console.log(`  gpu ms: summed kernel time from timestamp queries (vg.profile), median of ${SAMPLES} after a warm-up, engines interleaved.`);
  console.log('  peak MB: growth of vg.memory().peakBytes over the inputs during one step. diff: max rel diff of loss and gradients.');
  const w = [9, 22, 10, 12, 11, 13, 16, 10];
  console.log('  ' + row(['case', 'Q × J|K × D', 'fused ms', 'generic ms', 'fused MB', 'generic MB', 'fused vs generic', 'diff'], w));
  for (const r of rows) {
    const { Q, K, D, J } = r.case;
    const shape = `${Q} × ${J ? `${J} of ${K}` : K} × ${D}`;
    const [f, g] = [r.r?.fused, r.r?.generic];
    const mb = (k) => (r.peakBytes?.[k] != null ? f1(r.peakBytes[k] / 2 ** 20) : 'failed');
    console.log(
      '  ' +
        row(
          [r.case.name, shape, f ? f1(f.gpuMs) : 'failed', g ? f1(g.gpuMs) : 'failed', mb('fused'), mb('generic'), f && g ? ratio(f.gpuMs, g.gpuMs) : '-', r.diff == null ? '-' : exp1(r.diff)],
          w,
        ),
    );
    for (const [name, err] of Object.entries(r.errors)) console.log(`    ${name} failed: ${err}`);
    if (r.r) for (const [name, e] of Object.entries(r.r)) if (e.n < SAMPLES) console.log(`    ${name}: ${e.n} timed sample(s) (warm-up took ${f1(e.warmupMs / 1000)} s)`);
  }
  return rows;
}
