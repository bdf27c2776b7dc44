/** Shape rules shared by the op definitions: broadcasting, dim normalisation, strides. */
import { fail, fmtShape } from './errors.js';

export const MAX_RANK = 8;

export function checkRank(op: string, shape: readonly number[]): void {
  if (shape.length > MAX_RANK) fail(op, `tensors of rank ${shape.length} are not supported (at most ${MAX_RANK} dims)`);
}

export function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** NumPy broadcasting of any number of shapes, with an error naming the op and the clashing dims. */
export function broadcastShapes(op: string, shapes: readonly (readonly number[])[]): number[] {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out = new Array<number>(rank).fill(1);
  for (const s of shapes) {
    for (let i = 0; i < s.length; i++) {
      const o = rank - s.length + i;
      const d = s[i];
      if (d === out[o] || d === 1) continue;
      if (out[o] === 1) out[o] = d;
      else
        fail(
          op,
          `shapes ${shapes.map(fmtShape).join(' and ')} cannot be broadcast together: dimension ${i - s.length} is ` +
            `${out[o]} in one and ${d} in another (sizes must match or be 1). Reshape or expand one of them.`,
        );
    }
  }
  return out;
}

/** Strides to read a tensor of `shape` as if broadcast to `outShape` (0 on broadcast dims). */
export function broadcastStrides(shape: readonly number[], outShape: readonly number[]): number[] {
  const st = stridesOf(shape);
  const out = new Array<number>(outShape.length).fill(0);
  const off = outShape.length - shape.length;
  for (let i = 0; i < shape.length; i++) out[off + i] = shape[i] === 1 ? 0 : st[i];
  return out;
}

export function normDim(op: string, dim: number, rank: number, arg = 'dim'): number {
  if (!Number.isInteger(dim)) fail(op, `${arg} must be an integer, got ${dim}`);
  const r = Math.max(rank, 1);
  if (dim < -r || dim >= r)
    fail(op, `${arg}=${dim} is out of range for a tensor of rank ${rank} (expected ${-r} <= ${arg} < ${r})`);
  return dim < 0 ? dim + r : dim;
}

/** dim option → sorted unique non-negative dims; undefined means all dims. */
export function normDims(op: string, dim: number | readonly number[] | undefined | null, rank: number): number[] {
  if (dim === undefined || dim === null) return [...Array(rank).keys()];
  const list = typeof dim === 'number' ? [dim] : [...dim];
  const out = [...new Set(list.map((d) => normDim(op, d, rank)))].sort((a, b) => a - b);
  if (out.length !== list.length) fail(op, `dim ${JSON.stringify(dim)} names a dimension twice`);
  return out;
}

export function checkShapeArg(op: string, shape: readonly number[], arg = 'shape'): void {
  if (!Array.isArray(shape)) fail(op, `${arg} must be an array of non-negative integers, got ${String(shape)}`);
  for (const d of shape)
    if (!Number.isInteger(d) || d < 0) fail(op, `${arg} must hold non-negative integers, got ${fmtShape(shape)}`);
  checkRank(op, shape);
}

/** Pads a shape/stride list to 8 entries for the rank-8 uniform layout. */
export function pad8(v: readonly number[]): number[] {
  const o = [...v];
  while (o.length < MAX_RANK) o.push(0);
  return o;
}

/**
 * A shape's dims with size-1 dims dropped and neighbours merged wherever every strided view of it reads them as
 * one contiguous run (stride[d] = stride[d + 1] · size[d + 1], or both 0): a [8, 1, 128, 128] output read by a
 * [8, 1, 1, 1] operand becomes [8, 16384] with operand strides [1, 0]. Fewer dims, fewer integer divisions per element.
 */
export function coalesce(dims: readonly number[], strides: number[][]): { shape: number[]; strides: number[][] } {
  const shape: number[] = [];
  const out: number[][] = strides.map(() => []);
  dims.forEach((size, d) => {
    if (size === 1) return;
    const last = shape.length - 1;
    if (last >= 0 && strides.every((st, b) => out[b][last] === st[d] * size)) {
      shape[last] *= size;
      strides.forEach((st, b) => (out[b][last] = st[d]));
    } else {
      shape.push(size);
      strides.forEach((st, b) => out[b].push(st[d]));
    }
  });
  if (!shape.length) return { shape: [1], strides: strides.map(() => [0]) };
  return { shape, strides: out };
}
