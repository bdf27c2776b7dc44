/**
 * Dice and Jaccard on the GPU: one pass (shaders/metrics_counts.wgsl) counts, per label, the voxels of pred, of
 * target and of both; only those counts are read back. Conventions: docs/metrics.md.
 */
import countsWgsl from '../../shaders/metrics_counts.wgsl';
import { fail } from '../engine/errors.js';
import { gpu } from '../engine/device.js';
import { dispatch, grid1d, kernel } from '../engine/runtime.js';
import { Tensor } from '../engine/tensor.js';
import { ceilDiv, describe, emptyTensor } from '../kernels/common.js';
import { fillInto } from '../kernels/base.js';
import { tensor } from '../kernels/creation.js';
import { expectChoice, expectPair, isFloat, labelsOf, perLabelResult, type Binary, type LabelOptions, type Multi, type PerLabelResult } from './common.js';

export interface OverlapOptions extends LabelOptions {
  /**
   * Both masks empty (0/0): 'one' (default, medpy >= 0.5: nothing to find, nothing found), 'zero' (medpy <= 0.4's dc),
   * 'nan', 'skip' (NaN, left out of a per-label mean), or 'error'.
   */
  empty?: 'one' | 'zero' | 'nan' | 'skip' | 'error';
}

/** Voxels each invocation of the counting pass reads. */
const PER = 16;

/** Per-bin [pred, target, both] counts of binary masks (labels null) or of the given labels. */
export async function overlapCounts(op: string, pred: Tensor, target: Tensor, labels: number[] | null): Promise<Uint32Array> {
  const nBins = labels ? labels.length : 1;
  let bins = 4;
  while (bins < 3 * nBins) bins *= 2;
  const cap = gpu().limits.maxComputeWorkgroupStorageSize / 4;
  if (bins > cap)
    fail(op, `${nBins} labels need ${3 * nBins} counters, more than this adapter's workgroup memory holds (${cap}); evaluate the labels in groups of at most ${Math.floor(cap / 6)}`);
  const sorted = labels ? [...labels].sort((a, b) => a - b) : [0];
  const counts = emptyTensor(op, [3 * nBins], 'u32');
  const lab = tensor(sorted, [nBins], { dtype: 'i32' });
  try {
    fillInto(counts, 0);
    const k = kernel(`metrics.counts.${labels ? 'labels' : 'binary'}.${bins}`, () => countsWgsl.replaceAll('{{BINS}}', String(bins)).replaceAll('{{PER}}', String(PER)), {
      defines: { BINARY: !labels },
    });
    if (pred.size > 0)
      dispatch(
        k,
        [counts.buffer(op), pred.buffer(op), target.buffer(op), lab.buffer(op)],
        { total: pred.size, nBins, predFloat: isFloat(pred), targetFloat: isFloat(target) },
        grid1d(ceilDiv(pred.size, k.workgroupSize * PER)),
      );
    const raw = (await counts.data()) as Uint32Array;
    if (!labels) return raw;
    // back to the caller's label order
    const out = new Uint32Array(3 * nBins);
    labels.forEach((l, i) => out.set(raw.subarray(3 * sorted.indexOf(l), 3 * sorted.indexOf(l) + 3), 3 * i));
    return out;
  } finally {
    counts.dispose();
    lab.dispose();
  }
}

async function overlapMetric(op: string, pred: Tensor, target: Tensor, opts: OverlapOptions, score: (p: number, t: number, both: number) => number): Promise<number | PerLabelResult> {
  if (opts === null || typeof opts !== 'object') fail(op, `options must be an object like { numClasses: 4 }, got ${describe(opts)}`);
  const [p, t] = expectPair(op, pred, target);
  const empty = expectChoice(op, 'empty', opts.empty, ['one', 'zero', 'nan', 'skip', 'error'] as const, 'one');
  const labels = labelsOf(op, opts);
  const c = await overlapCounts(op, p, t, labels);
  const values: number[] = [];
  const skip: boolean[] = [];
  for (let i = 0; i < c.length / 3; i++) {
    const [np, nt, both] = [c[3 * i], c[3 * i + 1], c[3 * i + 2]];
    if (np + nt === 0) {
      if (empty === 'error')
        fail(op, `pred and target ${labels ? `have no voxel of label ${labels[i]}` : 'are both empty'}, so the score is 0/0; choose a value with empty: 'one' | 'zero' | 'nan' | 'skip'`);
      values.push(empty === 'one' ? 1 : empty === 'zero' ? 0 : NaN);
      skip.push(empty === 'skip');
    } else {
      values.push(score(np, nt, both));
      skip.push(false);
    }
  }
  return labels ? perLabelResult(labels, values, skip) : values[0];
}

/** Dice coefficient 2|P∩T| / (|P| + |T|) of binary masks (nonzero = foreground) or per label of label maps. */
export function dice(pred: Tensor, target: Tensor, opts?: Binary<OverlapOptions>): Promise<number>;
export function dice(pred: Tensor, target: Tensor, opts: Multi<OverlapOptions>): Promise<PerLabelResult>;
export function dice(pred: Tensor, target: Tensor, opts: OverlapOptions = {}): Promise<number | PerLabelResult> {
  return overlapMetric('dice', pred, target, opts, (p, t, both) => (2 * both) / (p + t));
}

/** Jaccard index |P∩T| / |P∪T| of binary masks (nonzero = foreground) or per label of label maps. */
export function jaccard(pred: Tensor, target: Tensor, opts?: Binary<OverlapOptions>): Promise<number>;
export function jaccard(pred: Tensor, target: Tensor, opts: Multi<OverlapOptions>): Promise<PerLabelResult>;
export function jaccard(pred: Tensor, target: Tensor, opts: OverlapOptions = {}): Promise<number | PerLabelResult> {
  return overlapMetric('jaccard', pred, target, opts, (p, t, both) => both / (p + t - both));
}
