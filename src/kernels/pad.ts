/**
 * torch.nn.functional.pad. Constant padding (and cropping) is one fill and one strided copy; the reflect, replicate
 * and circular modes gather with indexSelect, so this file sits above both shape.ts and indexing.ts.
 */
import { fail, fmtShape } from '../engine/errors.js';
import { ALL_DTYPES, composed, defineOp, type Composed, type Forward } from '../engine/op.js';
import { stridesOf } from '../engine/shape.js';
import { Tensor, tidy } from '../engine/tensor.js';
import { fillInto, stridedCopy } from './base.js';
import { emptyTensor, expectTensor } from './common.js';
import { tensor } from './creation.js';
import { indexSelect } from './indexing.js';
import { clone } from './shape.js';

interface PadAttrs {
  /** (before, after) per dim of the input, possibly negative (cropping). */
  widths: [number, number][];
}

/** Copies the overlap of x into out, where out = x grown by `widths` (before, after) per dim. */
function copyOverlap(op: string, out: Tensor, x: Tensor, widths: [number, number][]): void {
  const ist = stridesOf(x.shape);
  const ost = stridesOf(out.shape);
  let srcOff = 0;
  let dstOff = 0;
  const block = x.shape.map((n, i) => {
    const [lo] = widths[i];
    const srcStart = Math.max(0, -lo);
    const dstStart = Math.max(0, lo);
    srcOff += srcStart * ist[i];
    dstOff += dstStart * ost[i];
    return Math.max(0, Math.min(n - srcStart, out.shape[i] - dstStart));
  });
  stridedCopy(op, out, x, block, { offset: srcOff, strides: ist }, { offset: dstOff, strides: ost });
}

export type PadMode = 'constant' | 'reflect' | 'replicate' | 'circular';

export interface PadOptions {
  /** torch.nn.functional.pad's modes: 'constant' (value), 'reflect' (mirror, border not repeated), 'replicate', 'circular'. */
  mode?: PadMode;
  value?: number;
}

/** Source index along one dim of n for each of the n + before + after padded positions (non-constant modes). */
function padSourceIndices(n: number, before: number, after: number, mode: Exclude<PadMode, 'constant'>): Int32Array {
  const idx = new Int32Array(n + before + after);
  for (let j = 0; j < idx.length; j++) {
    const i = j - before;
    if (mode === 'replicate') idx[j] = Math.min(n - 1, Math.max(0, i));
    else if (mode === 'circular') idx[j] = ((i % n) + n) % n;
    else idx[j] = i < 0 ? -i : i >= n ? 2 * (n - 1) - i : i;
  }
  return idx;
}

/**
 * torch.nn.functional.pad: `pad` lists (before, after) pairs starting from the last dim; negative values crop
 * (constant mode). The other modes gather along each padded dim with host-computed indices (indexSelect), so their
 * gradient is indexSelect's scatter-add; like PyTorch, reflect needs padding < size and circular padding <= size.
 */
export const pad = defineOp({
  name: 'pad',
  dtypes: ALL_DTYPES,
  inputs: ([x]) => [x],
  forward: padForward,
  backward: (g, ctx) => {
    const inShape = ctx.inputShapes[0];
    const out = emptyTensor('pad.backward', inShape, g.dtype);
    fillInto(out, 0);
    copyOverlap('pad.backward', out, g, ctx.attrs.widths.map(([lo, hi]) => [-lo, -hi] as [number, number]));
    return [out];
  },
});

function padForward(x: Tensor, padding: readonly number[], opts: PadOptions = {}): Forward<Tensor, PadAttrs> | Composed<Tensor> {
  expectTensor('pad', 'input', x);
  const mode = opts.mode ?? 'constant';
  if (!['constant', 'reflect', 'replicate', 'circular'].includes(mode))
    fail('pad', `mode must be 'constant', 'reflect', 'replicate' or 'circular', got '${String(mode)}'`);
  if (!Array.isArray(padding) || padding.length % 2 !== 0 || padding.length / 2 > x.ndim || !padding.every(Number.isInteger))
    fail('pad', `padding must be an even-length list of integers (before, after) for up to ${x.ndim} trailing dims, got ${JSON.stringify(padding)}`);
  const widths: [number, number][] = x.shape.map(() => [0, 0]);
  for (let i = 0; i < padding.length / 2; i++) widths[x.ndim - 1 - i] = [padding[2 * i], padding[2 * i + 1]];
  const outShape = x.shape.map((n, i) => n + widths[i][0] + widths[i][1]);
  if (outShape.some((n) => n < 0)) fail('pad', `padding ${JSON.stringify(padding)} crops shape ${fmtShape(x.shape)} below zero`);
  if (mode !== 'constant') {
    widths.forEach(([before, after], d) => {
      const n = x.shape[d];
      if (before < 0 || after < 0) fail('pad', `${mode} padding must be non-negative, got (${before}, ${after}) for dim ${d}`);
      if (mode === 'reflect' && (before >= n || after >= n) && before + after > 0)
        fail('pad', `reflect padding (${before}, ${after}) of dim ${d} must be smaller than its size ${n}; use 'replicate' or 'constant'`);
      if (mode === 'circular' && (before > n || after > n))
        fail('pad', `circular padding (${before}, ${after}) of dim ${d} must not exceed its size ${n}`);
    });
    return composed(tidy(() => {
      let y = x;
      widths.forEach(([before, after], d) => {
        if (before + after === 0) return;
        const idx = padSourceIndices(x.shape[d], before, after, mode);
        y = indexSelect(y, d, tensor(idx, [idx.length], { dtype: 'i32' }));
      });
      return y === x ? clone(x) : y;
    }));
  }
  const out = emptyTensor('pad', outShape, x.dtype);
  fillInto(out, opts.value ?? 0);
  copyOverlap('pad', out, x, widths);
  return { out, attrs: { widths } };
}

