/**
 * Registration evaluation as the papers report it, on a test set of pairs: the moving label map warped with the
 * predicted displacement (nearest, so labels stay labels) against the fixed one — Dice per structure, HD95, HD and
 * ASD (medpy's definitions, in pixels as the papers report them; ASD from the fixed surface, as the papers' code), the fraction of folded pixels (|J| ≤ 0) — plus the
 * unregistered Dice. Writes per-pair rows (pairs.csv), a figure of the first 2-D pair, and for pairs with an affine
 * (volumes) the first pair's warped image, labels and displacement field as NIfTI, to the run folder. Pairs that
 * know their deformation (ch2) also get the displacement error before and after (epe0, epe, voxels).
 */
import { noGrad } from '../../engine/autograd.js';
import { Tensor, tidy } from '../../engine/tensor.js';
import type { Dataset } from '../../data/dataset.js';
import type { RegistrationPair } from '../../data/registration.js';
import { deformationGrid, figureGrid, flowColor, heatmap, jacobianMap, overlay, type HeatmapOptions } from '../../io/figures.js';
import { writeDisplacementNifti } from '../../io/displacement.js';
import { writeNifti } from '../../io/nifti.js';
import { writePng } from '../../io/png.js';
import type { Affine } from '../../io/volume.js';
import { writeCsv, type Row } from '../../io/tables.js';
import { dice } from '../../metrics/overlap.js';
import { asd, hausdorff, hd95 } from '../../metrics/surface.js';
import { jacobianFoldingFraction } from '../../metrics/registration.js';
import { auroc, pearsonCorrelation } from '../../metrics/stats.js';
import { abs, add, mul, sqrt, sub } from '../../kernels/math.js';
import { sum } from '../../kernels/reduce.js';
import { spatialTransform } from '../../kernels/spatial.js';
import { stack } from '../../kernels/shape.js';
import { warpLabels, type Backbone } from './backbones.js';

/** ACDC's labels, which the phantom uses. */
export const CARDIAC_STRUCTURES: Record<number, string> = { 1: 'RV', 2: 'Myo', 3: 'LV' };

/** A method's own per-pixel map for the figure (the variance network's σ², AdaCS's correspondence score). */
export interface AuxiliaryMap {
  title: string;
  /** [B, 1, ...spatial] from the batch's moving and fixed images and the moving image warped to the fixed one. */
  compute: (moving: Tensor, fixed: Tensor, warped: Tensor) => Tensor;
  range?: HeatmapOptions;
  /**
   * What the map claims, checked where the pairs carry the truth: 'score' against `missing` (the pixels without
   * correspondence: mean score inside and outside, AUROC of 1 − score), 'logVariance' against `noiseVariance` (Pearson's
   * r of the predicted and the true log variance). Both within the pair's background mask.
   */
  checks?: 'score' | 'logVariance';
}

export interface RegistrationEvaluation {
  rows: Row[];
  summary: Record<string, number>;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

export async function evaluateRegistration(
  backbone: Backbone,
  test: Dataset<RegistrationPair>,
  opts: { outDir?: string | null; batch?: number; log?: (m: string) => void; structures?: Record<number, string>; auxiliaryMap?: AuxiliaryMap } = {},
): Promise<RegistrationEvaluation> {
  const model = backbone.module;
  const wasTraining = model.training;
  model.eval();
  const STRUCTURES = opts.structures ?? CARDIAC_STRUCTURES;
  const labels = Object.keys(STRUCTURES).map(Number);
  const rows: Row[] = [];
  const batch = opts.batch ?? 8;
  for (let start = 0; start < test.length; start += batch) {
    const items: RegistrationPair[] = [];
    for (let i = start; i < Math.min(test.length, start + batch); i++) items.push(await test.get(i));
    const [src, tgt, srcLab, tgtLab] = tidy(() => ['moving', 'fixed', 'movingLabel', 'fixedLabel'].map((k) => stack(items.map((p) => p[k as keyof RegistrationPair]))));
    const { flow, warpedLab, warped } = noGrad(() =>
      tidy(() => {
        const o = backbone.run(src, tgt);
        return { flow: o.flow, warped: o.warped, warpedLab: warpLabels(srcLab, o.flow) };
      }),
    );
    const aux = opts.auxiliaryMap;
    const auxMap = aux?.checks ? noGrad(() => tidy(() => aux.compute(src, tgt, warped))) : null;
    const auxValues = auxMap ? ((await auxMap.data()) as Float32Array) : null;
    for (let b = 0; b < items.length; b++) {
      const [w, f, m, fl] = tidy(() => [warpedLab, tgtLab, srcLab, flow].map((t, i) => (i < 3 ? t.narrow(0, b, 1).squeeze(0) : t.narrow(0, b, 1))));
      const d = await dice(w, f, { labels });
      const d0 = await dice(m, f, { labels });
      const h95 = await hd95(w, f, { labels });
      const h = await hausdorff(w, f, { labels });
      // the papers' medpy asd(fixed, warped): one-directional, from the fixed (ground-truth) surface
      const a = await asd(f, w, { labels });
      const row: Row = { pair: start + b };
      for (const l of labels) {
        row[`dice_${STRUCTURES[l]}`] = d.perLabel[l];
        row[`hd95_${STRUCTURES[l]}`] = h95.perLabel[l];
        row[`hd_${STRUCTURES[l]}`] = h.perLabel[l];
        row[`asd_${STRUCTURES[l]}`] = a.perLabel[l];
        row[`dice0_${STRUCTURES[l]}`] = d0.perLabel[l];
      }
      row.dice = d.mean;
      row.dice0 = d0.mean;
      row.folding = await jacobianFoldingFraction(fl);
      const trueFlow = (items[b] as RegistrationPair & { trueFlow?: Tensor }).trueFlow;
      if (trueFlow) Object.assign(row, await displacementError(fl, trueFlow, items[b].mask));
      if (auxValues) Object.assign(row, await auxiliaryChecks(aux!.checks!, items[b], auxValues.subarray(b * auxValues.length / items.length, (b + 1) * auxValues.length / items.length)));
      rows.push(row);
      for (const t of [w, f, m, fl]) t.dispose();
    }
    if (start === 0 && opts.outDir) {
      const auxPanel = aux && src.ndim === 4 ? { title: aux.title, range: aux.range, map: auxMap ?? noGrad(() => tidy(() => aux.compute(src, tgt, warped))) } : undefined;
      await writeFigure(opts.outDir, src, tgt, warped, srcLab, warpedLab, tgtLab, flow, auxPanel);
      if (auxPanel && auxPanel.map !== auxMap) auxPanel.map.dispose();
      const affine = (items[0] as RegistrationPair & { affine?: Affine }).affine;
      if (affine) await writeVolumes(opts.outDir, affine, warped, warpedLab, flow);
    }
    for (const t of [src, tgt, srcLab, tgtLab, flow, warpedLab, warped]) t.dispose();
    auxMap?.dispose();
    for (const p of items) for (const t of Object.values(p)) if (t instanceof Tensor) t.dispose();
  }
  if (wasTraining) model.train();
  const summary: Record<string, number> = { pairs: rows.length };
  for (const key of Object.keys(rows[0]).filter((k) => k !== 'pair')) summary[key] = mean(rows.map((r) => r[key] as number));
  if (opts.outDir) await writeCsv(`${opts.outDir}/pairs.csv`, rows);
  opts.log?.(`evaluated ${rows.length} test pairs: Dice ${summary.dice.toFixed(4)} (unregistered ${summary.dice0.toFixed(4)}), folding ${(100 * summary.folding).toFixed(3)} %`);
  return { rows, summary };
}

/**
 * Where a pair knows its deformation (trueFlow: moving = fixed ∘ (id + trueFlow)), how far the predicted map is from
 * the exact inverse, in voxels, without inverting anything: the prediction is right where
 * flow(x) + trueFlow(x + flow(x)) = 0, so epe is the mean length of that composition over the mask, and epe0 the
 * same for no registration (the mean |trueFlow|).
 */
async function displacementError(flow: Tensor, trueFlow: Tensor, mask: Tensor): Promise<Row> {
  const [epe, epe0, count] = tidy(() => {
    const truth = trueFlow.unsqueeze(0);
    const m = mask.unsqueeze(0);
    const composed = add(flow, spatialTransform(truth, flow, { paddingMode: 'border' }));
    const length = (v: Tensor) => sqrt(sum(mul(v, v), { dim: 1, keepdim: true }));
    return [sum(mul(length(composed), m)), sum(mul(length(truth), m)), sum(m)];
  });
  const [e, e0, n] = [await epe.item(), await epe0.item(), await count.item()];
  for (const t of [epe, epe0, count]) t.dispose();
  return { epe: e / n, epe0: e0 / n };
}

/**
 * The auxiliary map of one pair against the truth the pair carries (NaN where it carries none, or none applies):
 * score_missing / score_kept (mean score on and off the pixels without correspondence) and auroc_missing; or
 * corr_logvar, Pearson's r between the predicted and the true log noise variance.
 */
async function auxiliaryChecks(checks: 'score' | 'logVariance', pair: RegistrationPair, map: Float32Array): Promise<Row> {
  const extra = pair as RegistrationPair & { missing?: Tensor; noiseVariance?: Tensor };
  const mask = await pair.mask.data();
  const inMask = Array.from(mask.keys()).filter((i) => mask[i] > 0);
  if (checks === 'score') {
    const missing = extra.missing ? await extra.missing.data() : null;
    const on = missing ? inMask.filter((i) => missing[i] > 0.5) : [];
    const off = missing ? inMask.filter((i) => !(missing[i] > 0.5)) : inMask;
    const meanAt = (idx: number[]) => (idx.length ? idx.reduce((a, i) => a + map[i], 0) / idx.length : NaN);
    return {
      score_missing: meanAt(on),
      score_kept: meanAt(off),
      auroc_missing: on.length && off.length ? auroc(inMask.map((i) => 1 - map[i]), inMask.map((i) => (missing![i] > 0.5 ? 1 : 0))) : NaN,
    };
  }
  const nv = extra.noiseVariance ? await extra.noiseVariance.data() : null;
  const valid = nv ? inMask.filter((i) => nv[i] > 0) : [];
  return { corr_logvar: valid.length > 1 ? pearsonCorrelation(valid.map((i) => map[i]), valid.map((i) => Math.log(nv![i]))) : NaN };
}

/**
 * The first pair's results in its source geometry: the warped image and labels as NIfTI, the displacement as a vector
 * NIfTI in ITK/ANTs's convention (LPS millimetres, intent 1007; docs/registration-outputs.md).
 */
async function writeVolumes(outDir: string, affine: Affine, warped: Tensor, warpedLab: Tensor, flow: Tensor): Promise<void> {
  const [img, lab, f] = tidy(() => [warped.narrow(0, 0, 1).squeeze(0).squeeze(0), warpedLab.narrow(0, 0, 1).squeeze(0), flow.narrow(0, 0, 1)]);
  await writeNifti(`${outDir}/warped.nii.gz`, img, { affine });
  await writeNifti(`${outDir}/warped_labels.nii.gz`, lab, { affine });
  await writeDisplacementNifti(`${outDir}/displacement.nii.gz`, f, { affine, convention: 'itk' });
  for (const t of [img, lab, f]) t.dispose();
}

/**
 * The first pair: fixed | moving | warped (each with labels) | |fixed − warped|, then the displacement's grid, colour
 * and Jacobian, and the method's own map where it has one.
 */
async function writeFigure(
  outDir: string, src: Tensor, tgt: Tensor, warped: Tensor, srcLab: Tensor, warpedLab: Tensor, tgtLab: Tensor, flow: Tensor,
  aux?: { title: string; map: Tensor; range?: HeatmapOptions },
): Promise<void> {
  if (src.ndim !== 4) return; // 2-D pairs only; 3-D volumes are written as NIfTI by the caller
  const fig = tidy(() => {
    const img = (t: Tensor) => t.narrow(0, 0, 1).squeeze(0).squeeze(0);
    const lab = (t: Tensor) => t.narrow(0, 0, 1).squeeze(0);
    const f = flow.narrow(0, 0, 1);
    return figureGrid([
      [
        { title: 'fixed', rgb: overlay(img(tgt), lab(tgtLab), { min: 0, max: 1 }) },
        { title: 'moving', rgb: overlay(img(src), lab(srcLab), { min: 0, max: 1 }) },
        { title: 'warped', rgb: overlay(img(warped), lab(warpedLab), { min: 0, max: 1 }) },
        { title: 'residual', rgb: heatmap(abs(sub(img(tgt), img(warped))), { min: 0, max: 0.5, colormap: 'magma' }) },
      ],
      [
        { title: 'grid', rgb: deformationGrid(f) },
        { title: 'flow', rgb: flowColor(f) },
        { title: 'jacobian', rgb: jacobianMap(f) },
        aux ? { title: aux.title, rgb: heatmap(img(aux.map), aux.range) } : null,
      ],
    ]);
  });
  await writePng(`${outDir}/figure.png`, fig, { min: 0, max: 255 });
  fig.dispose();
}
