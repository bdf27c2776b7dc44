/** Segmentation scores the phantom recipes report (MORSE, CASTformer, ITL). */
import { type Tensor, tidy } from '../engine/tensor.js';
import { dice, jaccard } from '../metrics/overlap.js';
import { asd, hd95 } from '../metrics/surface.js';

const meanOf = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/**
 * Dice, Jaccard (whole test set per structure), HD95 and ASD (per frame or volume, then averaged; medpy's definitions
 * in the units of spacing, which the keys call Mm: the 2-D phantoms' frames are in mm; a structure predicted empty
 * scores the image diagonal) of a prediction [F, ...spatial] against labels [F, ...spatial], per structure
 * (`structures`: label value → name) and their means.
 */
export async function scorePrediction(pred: Tensor, label: Tensor, spacing: readonly number[], structures: Record<number, string>): Promise<Record<string, unknown>> {
  const labels = Object.keys(structures).map(Number);
  const overlap = await dice(pred, label, { labels });
  const iou = await jaccard(pred, label, { labels });
  const hd: number[][] = labels.map(() => []);
  const sd: number[][] = labels.map(() => []);
  for (let f = 0; f < pred.shape[0]; f++) {
    const [p, t] = tidy(() => [pred.slice(0, f, f + 1).squeeze(0), label.slice(0, f, f + 1).squeeze(0)]);
    const h = await hd95(p, t, { labels, spacing, empty: 'worst' });
    const a = await asd(p, t, { labels, spacing, empty: 'worst' });
    labels.forEach((l, i) => (hd[i].push(h.perLabel[l]), sd[i].push(a.perLabel[l])));
    p.dispose();
    t.dispose();
  }
  const per = (vals: number[][]) => Object.fromEntries(labels.map((l, i) => [structures[l], meanOf(vals[i])]));
  return {
    dice: Object.fromEntries(labels.map((l) => [structures[l], overlap.perLabel[l]])),
    meanDice: overlap.mean,
    jaccard: Object.fromEntries(labels.map((l) => [structures[l], iou.perLabel[l]])),
    meanJaccard: iou.mean,
    hd95Mm: per(hd),
    meanHd95Mm: meanOf(hd.map(meanOf)),
    asdMm: per(sd),
    meanAsdMm: meanOf(sd.map(meanOf)),
  };
}
