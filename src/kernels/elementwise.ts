/**
 * Elementwise ops from one table: each entry gives the WGSL forward expression and, per input, the WGSL expression
 * of its gradient (in terms of g = upstream gradient, the inputs a/b/c and y = output). One generator turns an
 * expression into a broadcasting kernel, so forward and backward of every entry are single fused dispatches.
 */
import elementwiseWgsl from '../../shaders/elementwise.wgsl';
import fnsWgsl from '../../shaders/elementwise_fns.wgsl';
import { fail } from '../engine/errors.js';
import { ALL_DTYPES, NOT_DIFFERENTIABLE, defineOp, type BackwardRule } from '../engine/op.js';
import { alignElements, fitsBinding, requireBindable, window, windowElements } from '../engine/binding.js';
import { dispatch, grid1d, kernel } from '../engine/runtime.js';
import { broadcastShapes, broadcastStrides, coalesce, pad8, sameShape } from '../engine/shape.js';
import { Storage, Tensor, arrayTypeOf, cpuForwardThreshold, shapeSize, type DType } from '../engine/tensor.js';
import { ceilDiv, describe, emptyTensor } from './common.js';
import * as host from './host-math.js';
import { sumToShape } from './base.js';

export type Operand = Tensor | number;

interface MapInput {
  name: string;
  value: Operand;
}

const scalarBits = new DataView(new ArrayBuffer(4));

function bitsOf(v: number, ct: DType): number {
  if (ct === 'f32') scalarBits.setFloat32(0, v, true);
  else if (ct === 'i32') scalarBits.setInt32(0, v, true);
  else scalarBits.setUint32(0, v, true);
  return scalarBits.getUint32(0, true);
}

/**
 * out = expr(inputs) with broadcasting. `ct` is the type inputs are converted to before `expr`; `ot` the output type.
 * Scalars (numbers) travel as uniforms, so a new learning rate or constant does not build a new pipeline.
 */
export function mapExpr(
  op: string,
  expr: string,
  inputs: readonly MapInput[],
  ct: DType,
  ot: DType,
  /** Broadcast the result to (at least) this shape. */
  toShape?: readonly number[],
): Tensor {
  const tensors = inputs.filter((i) => i.value instanceof Tensor) as { name: string; value: Tensor }[];
  if (tensors.length > 4) fail(op, 'internal: at most 4 tensor inputs per elementwise kernel');
  const shapes = tensors.map((t) => t.value.shape);
  const outShape = broadcastShapes(op, toShape ? [...shapes, toShape] : shapes);
  const out = emptyTensor(op, outShape, ot);
  const n = out.size;
  if (n === 0) return out;
  const kinds = tensors.map((t) => (t.value.size === 1 ? 'one' : sameShape(t.value.shape, outShape) ? 'same' : 'bcast'));
  let sig = '';
  let ti = 0;
  for (const i of inputs) sig += i.value instanceof Tensor ? `${i.name}:${i.value.dtype}:${kinds[ti++]},` : `${i.name}:s,`;
  const vec4 = n % 4 === 0 && !kinds.includes('bcast');
  const bcast = tensors.flatMap((t, j) => (kinds[j] === 'bcast' ? [j] : []));
  const merged = coalesce(outShape, bcast.map((j) => broadcastStrides(tensors[j].value.shape, outShape)));
  const rank = bcast.length ? merged.shape.length : 0;
  const k = kernel(`map[${expr}]${ct}>${ot}(${sig})${vec4 ? 'v4' : ''}${rank ? `r${rank}` : ''}`, () => buildMapSource(expr, inputs, kinds, ct, ot, vec4, rank), {
    defines: { VEC4: vec4 },
  });
  const uniforms: Record<string, number | number[]> = { n, rank, shape: pad8(merged.shape) };
  const scalars: number[] = [];
  for (const i of inputs) if (typeof i.value === 'number') scalars.push(bitsOf(i.value, ct));
  if (scalars.length) uniforms.scalars = scalars;
  bcast.forEach((j, b) => (uniforms[`s${j}`] = pad8(merged.strides[b])));
  const perInvocation = vec4 ? 4 : 1;
  if (fitsBinding(out, ...tensors.map((t) => t.value))) {
    dispatch(k, [out.buffer(op), ...tensors.map((t) => t.value.buffer(op))], uniforms, grid1d(ceilDiv(n / perInvocation, k.workgroupSize)));
    return out;
  }
  // past one binding: runs of whole alignment units of the output, each input of the same shape bound over the same
  // run; broadcast inputs are bound whole and indexed from the run's first element (p.runStart)
  requireBindable(
    op,
    Object.fromEntries(tensors.filter((_, j) => kinds[j] === 'bcast').map((t) => [`broadcast input ${t.name}`, t.value])),
    'Expand the smaller input to the full shape first, or split the data.',
  );
  const run = Math.floor(windowElements() / alignElements()) * alignElements();
  for (let base = 0; base < n; base += run) {
    const end = Math.min(n, base + run);
    const targets = tensors.map((t, j) => (kinds[j] === 'same' ? window(op, t.value, base, end).range : t.value.buffer(op)));
    const runUniforms = { ...uniforms, n: end - base, runStart: base };
    dispatch(k, [window(op, out, base, end).range, ...targets], runUniforms, grid1d(ceilDiv((end - base) / perInvocation, k.workgroupSize)));
  }
  return out;
}

/** `rank` > 0: the (coalesced) rank of the broadcast index math, unrolled with constant indices. */
function buildMapSource(expr: string, inputs: readonly MapInput[], kinds: string[], ct: DType, ot: DType, vec4: boolean, rank: number): string {
  const bindings: string[] = [];
  const offsets: string[] = [];
  const loads: string[] = [];
  const strided: number[] = [];
  /** per-component reads for VEC4: name → WGSL expression of one component (`#` stands for x/y/z/w) */
  const parts: [string, string][] = [];
  let ti = 0;
  let si = 0;
  for (const inp of inputs) {
    if (inp.value instanceof Tensor) {
      const j = ti++;
      const t = inp.value.dtype;
      const wide = vec4 && kinds[j] === 'same';
      bindings.push(`@group(0) @binding(${j + 2}) var<storage, read> in${j}: array<${wide ? `vec4<${t}>` : t}>;`);
      if (vec4) {
        loads.push(`  let v${j} = ${kinds[j] === 'same' ? `in${j}[i]` : `in${j}[0]`};`);
        parts.push([inp.name, kinds[j] === 'same' ? `${ct}(v${j}.#)` : `${ct}(v${j})`]);
        continue;
      }
      const off = kinds[j] === 'same' ? 'i' : kinds[j] === 'one' ? '0u' : `o${j}`;
      if (kinds[j] === 'bcast') strided.push(j);
      loads.push(`  let ${inp.name} = ${ct}(in${j}[${off}]);`);
    } else {
      loads.push(`  let ${inp.name} = bitcast<${ct}>(p.scalars[${si++}]);`);
    }
  }
  const body = expr.replaceAll('CT', ct);
  const components = ['x', 'y', 'z', 'w']
    .map((c) => `  {\n${parts.map(([n, e]) => `    let ${n} = ${e.replace('#', c)};\n`).join('')}    r.${c} = ${ot}(${body});\n  }`)
    .join('\n');
  if (strided.length) {
    // innermost dim first; uniform arrays indexed by constants (a dynamic loop over p.rank was ~10x slower on lavapipe)
    offsets.push(`  var rem = p.runStart + i;`);
    for (const j of strided) offsets.push(`  var o${j} = 0u;`);
    for (let d = rank - 1; d >= 0; d--) {
      const at = `[${d >> 2}u][${d & 3}u]`;
      if (d > 0) offsets.push(`  { let c = rem % p.shape${at}; rem = rem / p.shape${at};`);
      else offsets.push(`  { let c = rem;`);
      for (const j of strided) offsets.push(`    o${j} += c * p.s${j}${at};`);
      offsets.push(`  }`);
    }
  }
  return (
    fnsWgsl +
    elementwiseWgsl
      .replace('{{INPUT_BINDINGS}}', bindings.join('\n'))
      .replace('{{OFFSETS}}', offsets.join('\n'))
      .replaceAll('{{LOADS}}', loads.join('\n'))
      .replace('{{COMPONENTS}}', components)
      .replace('{{OUT_ELEM}}', vec4 ? `vec4<${ot}>` : ot)
      .replaceAll('{{OUT_T}}', ot)
      .replace('{{EXPR}}', body)
  );
}

// ---- dtype promotion ----------------------------------------------------------------------------------------------

export function promote(values: readonly Operand[]): DType {
  let hasTensorInt: DType | null = null;
  let hasFloat = false;
  let allTensorU32 = true;
  for (const v of values) {
    if (v instanceof Tensor) {
      if (v.dtype === 'f32') hasFloat = true;
      else hasTensorInt = hasTensorInt === 'i32' || v.dtype === 'i32' ? 'i32' : 'u32';
      if (v.dtype !== 'u32') allTensorU32 = false;
    } else if (!Number.isInteger(v)) hasFloat = true;
  }
  if (hasFloat || !hasTensorInt) return 'f32';
  return allTensorU32 ? 'u32' : 'i32';
}

// ---- the table ----------------------------------------------------------------------------------------------------

type HostFn = (a: number, b: number, c: number, int: boolean) => number | boolean;

interface EwSpec {
  /** WGSL expression over a, b, c; CT is replaced by the compute type. */
  expr: string;
  /** The same function in JS, for tiny host-resident tensors (int: the compute type is an integer type). */
  js: HostFn;
  /** Computes in f32 whatever the input types (exp of an int tensor is a float tensor, as in PyTorch). */
  float?: boolean;
  /** Output is u32 0/1 (comparisons). */
  bool?: boolean;
  /** Gradient expression per input (g, a, b, c, y), or NOT_DIFFERENTIABLE. */
  grads: readonly (string | null)[] | typeof NOT_DIFFERENTIABLE;
}

const TIE = (cmp: string) => `select(select(0.0, 0.5, a == b), 1.0, ${cmp})`;

export const ELEMENTWISE = {
  neg: { expr: '-a', js: (a) => -a, grads: ['-g'] },
  abs: { expr: 'abs(a)', js: (a) => Math.abs(a), grads: ['g * sign(a)'] },
  sign: { expr: 'sign(a)', js: (a) => Math.sign(a), grads: ['0.0 * g'] },
  square: { expr: 'a * a', js: (a, _b, _c, int) => (int ? Math.imul(a, a) : a * a), grads: ['2.0 * g * a'] },
  exp: { expr: 'exp(a)', js: (a) => Math.exp(a), float: true, grads: ['g * y'] },
  log: { expr: 'log(a)', js: (a) => Math.log(a), float: true, grads: ['g / a'] },
  log1p: { expr: 'vg_log1p(a)', js: (a) => Math.log1p(a), float: true, grads: ['g / (1.0 + a)'] },
  sqrt: { expr: 'sqrt(a)', js: (a) => Math.sqrt(a), float: true, grads: ['g * 0.5 / y'] },
  rsqrt: { expr: 'inverseSqrt(a)', js: (a) => 1 / Math.sqrt(a), float: true, grads: ['-0.5 * g * y * y * y'] },
  reciprocal: { expr: '1.0 / a', js: (a) => 1 / a, float: true, grads: ['-g * y * y'] },
  sin: { expr: 'sin(a)', js: (a) => Math.sin(a), float: true, grads: ['g * cos(a)'] },
  cos: { expr: 'cos(a)', js: (a) => Math.cos(a), float: true, grads: ['-g * sin(a)'] },
  tanh: { expr: 'vg_tanh(a)', js: (a) => Math.tanh(a), float: true, grads: ['g * (1.0 - y * y)'] },
  sigmoid: { expr: 'vg_sigmoid(a)', js: (a) => host.sigmoid(a), float: true, grads: ['g * y * (1.0 - y)'] },
  relu: { expr: 'max(a, CT(0))', js: (a) => Math.max(a, 0), grads: ['select(0.0, g, a > 0.0)'] },
  gelu: { expr: 'vg_gelu(a)', js: (a) => host.gelu(a), float: true, grads: ['g * vg_gelu_grad(a)'] },
  geluTanh: { expr: 'vg_gelu_tanh(a)', js: (a) => host.geluTanh(a), float: true, grads: ['g * vg_gelu_tanh_grad(a)'] },
  silu: { expr: 'a * vg_sigmoid(a)', js: (a) => a * host.sigmoid(a), float: true, grads: ['g * vg_silu_grad(a)'] },
  softplus: { expr: 'vg_softplus(a)', js: (a) => host.softplus(a), float: true, grads: ['g * vg_sigmoid(a)'] },
  floor: { expr: 'floor(a)', js: (a) => Math.floor(a), float: true, grads: ['0.0 * g'] },
  ceil: { expr: 'ceil(a)', js: (a) => Math.ceil(a), float: true, grads: ['0.0 * g'] },
  round: { expr: 'round(a)', js: (a) => host.roundHalfEven(a), float: true, grads: ['0.0 * g'] },
  add: { expr: 'a + b', js: (a, b) => a + b, grads: ['g', 'g'] },
  sub: { expr: 'a - b', js: (a, b) => a - b, grads: ['g', '-g'] },
  mul: { expr: 'a * b', js: (a, b, _c, int) => (int ? Math.imul(a, b) : a * b), grads: ['g * b', 'g * a'] },
  div: { expr: 'a / b', js: (a, b) => a / b, float: true, grads: ['g / b', '-g * y / b'] },
  pow: {
    expr: 'vg_pow(a, b)', js: (a, b) => host.pow(a, b),
    float: true,
    grads: ['select(g * b * vg_pow(a, b - 1.0), 0.0, b == 0.0)', 'select(g * y * log(a), 0.0, a == 0.0 && b >= 0.0)'],
  },
  maximum: { expr: 'max(a, b)', js: (a, b) => Math.max(a, b), grads: [`g * ${TIE('a > b')}`, `g * ${TIE('b > a')}`] },
  minimum: { expr: 'min(a, b)', js: (a, b) => Math.min(a, b), grads: [`g * ${TIE('a < b')}`, `g * ${TIE('b < a')}`] },
  leakyRelu: { expr: 'select(a * b, a, a > CT(0))', js: (a, b) => (a > 0 ? a : a * b), float: true, grads: ['select(g * b, g, a > 0.0)', null] },
  clampMin: { expr: 'max(a, b)', js: (a, b) => Math.max(a, b), grads: ['select(0.0, g, a >= b)', null] },
  clampMax: { expr: 'min(a, b)', js: (a, b) => Math.min(a, b), grads: ['select(0.0, g, a <= b)', null] },
  clamp: { expr: 'min(max(a, b), c)', js: (a, b, c) => Math.min(Math.max(a, b), c), grads: ['select(0.0, g, a >= b && a <= c)', null, null] },
  where: { expr: 'select(c, b, a != CT(0))', js: (a, b, c) => (a !== 0 ? b : c), grads: [null, 'select(0.0, g, a != 0.0)', 'select(g, 0.0, a != 0.0)'] },
  eq: { expr: 'a == b', js: (a, b) => a === b, bool: true, grads: NOT_DIFFERENTIABLE },
  ne: { expr: 'a != b', js: (a, b) => a !== b, bool: true, grads: NOT_DIFFERENTIABLE },
  lt: { expr: 'a < b', js: (a, b) => a < b, bool: true, grads: NOT_DIFFERENTIABLE },
  le: { expr: 'a <= b', js: (a, b) => a <= b, bool: true, grads: NOT_DIFFERENTIABLE },
  gt: { expr: 'a > b', js: (a, b) => a > b, bool: true, grads: NOT_DIFFERENTIABLE },
  ge: { expr: 'a >= b', js: (a, b) => a >= b, bool: true, grads: NOT_DIFFERENTIABLE },
  logicalAnd: { expr: '(a != CT(0)) && (b != CT(0))', js: (a, b) => a !== 0 && b !== 0, bool: true, grads: NOT_DIFFERENTIABLE },
  logicalOr: { expr: '(a != CT(0)) || (b != CT(0))', js: (a, b) => a !== 0 || b !== 0, bool: true, grads: NOT_DIFFERENTIABLE },
  logicalNot: { expr: 'a == CT(0)', js: (a) => a === 0, bool: true, grads: NOT_DIFFERENTIABLE },
} as const satisfies Record<string, EwSpec>;

export type ElementwiseName = keyof typeof ELEMENTWISE;

const NAMES = ['a', 'b', 'c'] as const;

interface EwAttrs {
  scalars: (number | null)[];
}

function usesName(expr: string, name: string): boolean {
  return new RegExp(`\\b${name}\\b`).test(expr);
}

/** Table entries that are variants of a public op of another name. */
const VIA: Partial<Record<ElementwiseName, string>> = { geluTanh: 'gelu', clampMin: 'clamp', clampMax: 'clamp' };

/** The backward rule of a table entry: one fused kernel per gradient expression, summed back over broadcast dims. */
function backwardOf(name: ElementwiseName, grads: readonly (string | null)[]): BackwardRule<EwAttrs> {
  // saved = [y?, operand tensors in order]; scalars come from attrs
  const hasY = grads.some((e) => e !== null && usesName(e, 'y'));
  return (g, ctx) => {
    let si = hasY ? 1 : 0;
    const operands: MapInput[] = [];
    ctx.attrs.scalars.forEach((s, k) => {
      const v = s === null ? ctx.saved[si++] : s;
      operands.push({ name: NAMES[k], value: v });
    });
    return grads.map((e, k) => {
      if (e === null || !ctx.needsGrad[k]) return null;
      const used = operands.filter((o) => usesName(e, o.name));
      const ins: MapInput[] = [{ name: 'g', value: g }, ...used];
      if (hasY && usesName(e, 'y')) ins.push({ name: 'y', value: ctx.saved[0] });
      const full = mapExpr(`${name}.backward`, e, ins, 'f32', 'f32');
      return sumToShape(full, ctx.inputShapes[k]);
    });
  };
}

function defineEntry(name: ElementwiseName): (...operands: Operand[]) => Tensor {
  const spec: EwSpec = ELEMENTWISE[name];
  const grads = spec.grads;
  const hasY = grads !== NOT_DIFFERENTIABLE && grads.some((e) => e !== null && usesName(e, 'y'));
  return defineOp({
    name,
    dtypes: ALL_DTYPES,
    via: VIA[name],
    inputs: (operands) => operands.map((v) => (v instanceof Tensor ? v : null)),
    forward: (...operands: Operand[]) => {
      const out = elementwiseForward(name, spec, operands);
      const attrs: EwAttrs = { scalars: operands.map((v) => (typeof v === 'number' ? v : null)) };
      const save = () => {
        const saved: Tensor[] = hasY ? [out] : [];
        for (const v of operands) if (v instanceof Tensor) saved.push(v);
        return saved;
      };
      return { out, attrs, save };
    },
    backward: grads === NOT_DIFFERENTIABLE ? NOT_DIFFERENTIABLE : backwardOf(name, grads),
  });
}

function elementwiseForward(name: ElementwiseName, spec: EwSpec, operands: readonly Operand[]): Tensor {
  const tensors: Tensor[] = [];
  for (let i = 0; i < operands.length; i++) {
    const v = operands[i];
    if (v instanceof Tensor) {
      v.storageFor(name);
      tensors.push(v);
    } else if (typeof v !== 'number') fail(name, `argument ${i + 1} must be a Tensor or a number, got ${describe(v)}`);
  }
  if (tensors.length === 0) fail(name, 'needs at least one Tensor argument (all arguments were numbers)');
  let ct = promote(name === 'where' ? operands.slice(1) : operands);
  if (spec.float) ct = 'f32';
  const ot: DType = spec.bool ? 'u32' : ct;
  const inputs = operands.map((v, k) => ({ name: NAMES[k], value: v }));
  const outShape = broadcastShapes(name, tensors.map((t) => t.shape));
  if (onHost(tensors, outShape)) return hostMap(spec.js, operands, outShape, ct, ot);
  // where's condition is tested in its own type; cast it first when it differs from the value type
  if (name === 'where' && operands[0] instanceof Tensor && operands[0].dtype !== ct) {
    const cond = mapExpr('where', 'a != CT(0)', [inputs[0]], operands[0].dtype, ct);
    const out = mapExpr(name, spec.expr, [{ name: 'a', value: cond }, ...inputs.slice(1)], ct, ot);
    cond.dispose();
    return out;
  }
  return mapExpr(name, spec.expr, inputs, ct, ot);
}

const entryOps = new Map<ElementwiseName, (...operands: Operand[]) => Tensor>();
for (const name of Object.keys(ELEMENTWISE) as ElementwiseName[]) entryOps.set(name, defineEntry(name));

/** Applies a table op to tensors and numbers (at least one tensor). */
export function elementwise(name: ElementwiseName, operands: readonly Operand[]): Tensor {
  return entryOps.get(name)!(...operands);
}

/** Tiny outputs whose tensor inputs all live on the host are computed in JS: no dispatch, no GPU round trip. */
function onHost(tensors: readonly Tensor[], outShape: readonly number[]): boolean {
  if (shapeSize(outShape) > cpuForwardThreshold()) return false;
  for (const t of tensors) if (!t.storageFor('elementwise').host) return false;
  return true;
}

const toCompute: Record<DType, (v: number) => number> = {
  f32: Math.fround,
  i32: (v) => v | 0,
  u32: (v) => v >>> 0,
};

function hostMap(fn: HostFn, operands: readonly Operand[], outShape: readonly number[], ct: DType, ot: DType): Tensor {
  const n = shapeSize(outShape);
  const out = new (arrayTypeOf(ot))(n);
  const conv = toCompute[ct];
  const int = ct !== 'f32';
  const reads = operands.map((v) => {
    if (typeof v === 'number') {
      const c = conv(v);
      return () => c;
    }
    const data = v.storageFor('elementwise').host!;
    if (v.size === n) return (i: number) => conv(data[i]);
    const strides = broadcastStrides(v.shape, outShape);
    return (i: number) => {
      let off = 0;
      for (let d = outShape.length - 1, rem = i; d >= 0; d--) {
        off += (rem % outShape[d]) * strides[d];
        rem = Math.floor(rem / outShape[d]);
      }
      return conv(data[off]);
    };
  });
  const [ra, rb = () => 0, rc = () => 0] = reads;
  for (let i = 0; i < n; i++) out[i] = Number(fn(ra(i), rb(i), rc(i), int));
  return new Tensor(Storage.onHost(out), outShape, ot);
}

/** dtype conversion (truncation toward zero for float → int, as in PyTorch); x.to(dtype) as a method. */
export const cast = defineOp({
  name: 'cast',
  dtypes: ALL_DTYPES,
  inputs: ([x]) => [x],
  forward: (x: Tensor, dtype: DType) => {
    x.storageFor('to');
    if (dtype !== 'f32' && dtype !== 'i32' && dtype !== 'u32')
      fail('to', `dtype must be 'f32', 'i32' or 'u32', got ${String(dtype)}`);
    const out = x.dtype === dtype ? x.shareStorage() : mapExpr('to', 'a', [{ name: 'a', value: x }], x.dtype, dtype);
    return { out, attrs: { from: x.dtype } };
  },
  backward: (g, ctx) => [ctx.attrs.from === 'f32' ? g.shareStorage() : null],
});
