// Shared test helpers: a seeded CPU random source, float64 reference arrays, comparisons and a
// finite-difference gradient check that runs the op itself on the GPU.
import * as vg from 'voxgrad';
import * as assert from 'uvu/assert';
import { layoutMismatches } from './wgsl-layouts.mjs';

export { vg };

let ready;
/** Initialises the real adapter once per process (lavapipe in CI). */
export function setup() {
  ready ??= vg.init();
  return ready;
}

/** Deterministic CPU random numbers (mulberry32) so failures reproduce. */
export function rng(seed = 1) {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    uniform: (lo = -1, hi = 1) => lo + (hi - lo) * next(),
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo)),
    array: (n, lo = -1, hi = 1) => Float64Array.from({ length: n }, () => lo + (hi - lo) * next()),
  };
}

export const size = (shape) => shape.reduce((a, b) => a * b, 1);

export function stridesOf(shape) {
  const s = new Array(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

/** A float64 CPU array with a shape: the reference side of every test. */
export class Ref {
  constructor(data, shape, dtype) {
    this.data = Float64Array.from(data);
    this.dtype = dtype;
    this.shape = [...shape];
    if (this.data.length !== size(shape)) throw new Error(`Ref: ${this.data.length} values for shape [${shape}]`);
  }
  static random(shape, r, lo = -1, hi = 1) {
    return new Ref(r.array(size(shape), lo, hi), shape);
  }
  /** The GPU tensor holding the same values (rounded to f32 / the integer dtype). */
  toTensor(opts = {}) {
    return vg.tensor(Array.from(this.data), this.shape, { dtype: this.dtype, ...opts });
  }
  /** Re-rounds the reference to f32 so that the GPU and CPU start from identical inputs. */
  f32() {
    return new Ref(Float32Array.from(this.data), this.shape);
  }
  get(idx) {
    const st = stridesOf(this.shape);
    return this.data[idx.reduce((o, v, i) => o + v * st[i], 0)];
  }
}

/** float64 erf: |error| < 1e-13 below 3; the asymptotic tail above 3 is within 5e-8 (at 3) and 1e-11 from 4 on. */
export function erf(x) {
  // Maclaurin series below 3, the asymptotic expansion of erfc above
  const t = Math.abs(x);
  if (t < 3) {
    let sum = t, term = t;
    for (let n = 1; n < 80; n++) {
      term *= (-t * t) / n;
      sum += term / (2 * n + 1);
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  return Math.sign(x) * (1 - Math.exp(-t * t) / (t * Math.sqrt(Math.PI)) * (1 - 1 / (2 * t * t) + 3 / (4 * t ** 4)));
}

/** Distinct values on a 0.05 grid, shuffled: no ties within a finite-difference step, so max-like ops stay smooth. */
export function distinct(shape, r) {
  const n = size(shape);
  const v = Array.from({ length: n }, (_, i) => (i - n / 2) * 0.05);
  for (let i = n - 1; i > 0; i--) {
    const j = r.int(0, i + 1);
    [v[i], v[j]] = [v[j], v[i]];
  }
  return new Ref(v, shape).f32();
}

export function broadcastShape(...shapes) {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out = new Array(rank).fill(1);
  for (const s of shapes)
    s.forEach((d, i) => {
      const o = rank - s.length + i;
      if (d !== 1) out[o] = d;
    });
  return out;
}

/** Unravels flat index i of `shape` into coordinates. */
export function unravel(i, shape) {
  const c = new Array(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    c[d] = i % shape[d];
    i = Math.floor(i / shape[d]);
  }
  return c;
}

/** Reads `ref` at coordinates of a broadcast shape. */
function readBroadcast(ref, coord) {
  const off = coord.length - ref.shape.length;
  const st = stridesOf(ref.shape);
  let o = 0;
  ref.shape.forEach((d, i) => (o += (d === 1 ? 0 : coord[off + i]) * st[i]));
  return ref.data[o];
}

/** Elementwise float64 reference with NumPy broadcasting. */
export function refMap(fn, ...refs) {
  const shape = broadcastShape(...refs.map((r) => r.shape));
  const n = size(shape);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const c = unravel(i, shape);
    out[i] = fn(...refs.map((r) => readBroadcast(r, c)));
  }
  return new Ref(out, shape);
}

/** Float64 reduction over dims (sorted, non-negative); init/combine define the reduction. */
export function refReduce(ref, dims, keepdim, combine, init, finish = (v) => v) {
  const outShapeKeep = ref.shape.map((d, i) => (dims.includes(i) ? 1 : d));
  const acc = new Float64Array(size(outShapeKeep)).fill(init);
  const cnt = new Float64Array(acc.length);
  const st = stridesOf(outShapeKeep);
  for (let i = 0; i < ref.data.length; i++) {
    const c = unravel(i, ref.shape);
    const o = c.reduce((s, v, k) => s + (dims.includes(k) ? 0 : v) * st[k], 0);
    acc[o] = combine(acc[o], ref.data[i], c, cnt[o]++);
  }
  const shape = keepdim ? outShapeKeep : ref.shape.filter((_, i) => !dims.includes(i));
  return new Ref(Array.from(acc, (v, i) => finish(v, cnt[i])), shape);
}

// ---- op coverage ---------------------------------------------------------------------------------------------------
// With VG_COVERAGE_DIR set (scripts/run-tests.mjs sets it), the library's per-op counters say which ops each test
// file compares against a reference and which it gradient-checks; the file's record is written there at exit and
// run-tests fails on ops that no file covers. Ops count as reference-compared when they ran since the previous
// comparison (assertClose, a gradient check); as gradient-checked when their backward (a composite: its forward) ran
// inside a gradient check, or their backward ran before an assertClose (a gradient compared with a fixture).

const coverageDir = globalThis.process?.env?.VG_COVERAGE_DIR;
const coverage = coverageDir ? { referenced: new Set(), gradForward: new Set(), gradBackward: new Set(), last: new Map() } : null;

function opCountsSinceLastMark() {
  const now = new Map(vg.debug.opStats().map((s) => [s.name, s]));
  const ran = { forward: [], backward: [] };
  for (const [name, s] of now) {
    const before = coverage.last.get(name);
    if (s.forward > (before?.forward ?? 0)) ran.forward.push(name);
    if (s.backward > (before?.backward ?? 0)) ran.backward.push(name);
  }
  coverage.last = now;
  return ran;
}

/** Marks the ops run since the previous comparison as compared with a reference (assertClose calls it; so may
 * comparisons written out by hand). */
export function markReferenceComparison() {
  if (!coverage) return;
  const ran = opCountsSinceLastMark();
  for (const n of ran.forward) coverage.referenced.add(n);
  for (const n of ran.backward) coverage.gradBackward.add(n);
}

/** Runs a gradient check (async fn) and marks the ops whose gradients it exercised. */
export async function markGradientCheck(fn) {
  if (!coverage) return fn();
  markReferenceComparison();
  const result = await fn();
  const ran = opCountsSinceLastMark();
  for (const n of ran.forward) (coverage.referenced.add(n), coverage.gradForward.add(n));
  for (const n of ran.backward) coverage.gradBackward.add(n);
  return result;
}

if (coverage)
  globalThis.process.on('exit', () => {
    const { writeFileSync, renameSync } = globalThis.process.getBuiltinModule('node:fs');
    const { basename, join } = globalThis.process.getBuiltinModule('node:path');
    const file = join(coverageDir, `${basename(globalThis.process.argv[1])}.json`);
    const record = { referenced: [...coverage.referenced], gradForward: [...coverage.gradForward], gradBackward: [...coverage.gradBackward] };
    writeFileSync(`${file}.tmp`, JSON.stringify(record));
    renameSync(`${file}.tmp`, file);
  });

// In Node, at exit: the layout the runtime read from each kernel it built (still cached) must equal wgsl_reflect's.
if (globalThis.process?.on)
  globalThis.process.on('exit', () => {
    const wrong = layoutMismatches(vg.debug.kernelLayouts());
    for (const w of wrong) console.error(`kernel ${w.name}: layout read by the runtime ${w.got}\n  differs from wgsl_reflect's ${w.expected}`);
    if (wrong.length) globalThis.process.exitCode = 1;
  });

/** Asserts the GPU tensor matches the reference: |a - b| <= atol + rtol |b| everywhere (NaN matches NaN). */
export async function assertClose(t, ref, { rtol = 1e-5, atol = 1e-6, msg = '' } = {}) {
  markReferenceComparison();
  assert.equal([...t.shape], [...ref.shape], `${msg} shape`);
  const got = await t.data();
  let worst = -1;
  let worstErr = 0;
  for (let i = 0; i < got.length; i++) {
    const a = got[i];
    const b = ref.data[i];
    if (Number.isNaN(b) && Number.isNaN(a)) continue;
    if (b === a) continue;
    const err = Math.abs(a - b) - (atol + rtol * Math.abs(b));
    if (!(err <= 0) && (worst < 0 || err > worstErr || Number.isNaN(err))) {
      worst = i;
      worstErr = err;
    }
  }
  if (worst >= 0)
    assert.unreachable(
      `${msg} mismatch at flat index ${worst} (coords [${unravel(worst, ref.shape)}]): got ${got[worst]}, expected ${ref.data[worst]} ` +
        `(rtol ${rtol}, atol ${atol}, shape [${ref.shape}])`,
    );
}

/**
 * The backward of the scalar probe L = sum(fn(...tensors) * R), R random of the output's shape: the gradients of the
 * inputs listed in `which`, and R (as a Ref and as a tensor, which the caller disposes).
 */
async function probeGradients(fn, tensors, which, r, msg) {
  const out = fn(...tensors);
  const R = Ref.random(out.shape, r).f32();
  const Rt = R.toTensor();
  const L = out.mul(Rt).sum();
  L.backward();
  const grads = [];
  for (const i of which) {
    assert.ok(tensors[i].grad, `${msg} no gradient reached input ${i}`);
    grads.push(Float64Array.from(await tensors[i].grad.data()));
  }
  out.dispose();
  L.dispose();
  return { grads, R, Rt };
}

/**
 * Finite-difference gradient check of fn(...inputs) → tensor. The scalar probe is L = sum(fn(x) * R) with a fixed
 * random R. For `directions` random unit directions v (and each input), the central difference
 * (L(x + eps v) - L(x - eps v)) / 2 eps is compared with <dL/dx, v> from backward. Perturbations run in float32 on the
 * GPU, so eps and the tolerance reflect f32 round-off; `elementwise: true` additionally checks every coordinate.
 */
export function gradcheck(fn, inputs, opts = {}) {
  return markGradientCheck(() => gradcheckF32(fn, inputs, opts));
}

async function gradcheckF32(fn, inputs, { eps = 1e-2, rtol = 2e-2, atol = 2e-3, directions = 3, seed = 7, wrt, msg = '' } = {}) {
  const r = rng(seed);
  const which = wrt ?? inputs.map((_, i) => i).filter((i) => inputs[i] instanceof Ref);
  const created = new Set();
  const toTensors = (refs, grad) =>
    refs.map((x, i) => {
      if (!(x instanceof Ref)) return x;
      const t = x.toTensor({ dtype: x.dtype ?? 'f32', requiresGrad: grad && which.includes(i) });
      created.add(t);
      return t;
    });
  // analytic
  const ts = toTensors(inputs, true);
  const { grads, Rt } = await probeGradients(fn, ts, which, r, msg);
  for (const t of ts.filter((t) => created.has(t))) t.dispose();
  const probe = async (refs) => {
    const xs = toTensors(refs, false);
    const y = vg.noGrad(() => fn(...xs));
    const v = vg.noGrad(() => y.mul(Rt).sum());
    const s = await v.item();
    for (const t of [y, v, ...xs.filter((t) => created.has(t))]) t.dispose();
    return s;
  };
  for (let w = 0; w < which.length; w++) {
    const i = which[w];
    const x = inputs[i];
    for (let d = 0; d < directions; d++) {
      const v = r.array(x.data.length);
      const norm = Math.hypot(...v) || 1;
      for (let k = 0; k < v.length; k++) v[k] /= norm;
      const plus = inputs.slice();
      const minus = inputs.slice();
      plus[i] = new Ref(x.data.map((val, k) => val + eps * v[k]), x.shape);
      minus[i] = new Ref(x.data.map((val, k) => val - eps * v[k]), x.shape);
      const numeric = ((await probe(plus)) - (await probe(minus))) / (2 * eps);
      const analytic = grads[w].reduce((s, g, k) => s + g * v[k], 0);
      const tol = atol + rtol * Math.max(Math.abs(numeric), Math.abs(analytic));
      assert.ok(
        Math.abs(numeric - analytic) <= tol,
        `${msg} gradient of input ${i}, direction ${d}: finite difference ${numeric}, backward ${analytic} (tol ${tol})`,
      );
    }
  }
  Rt.dispose();
}

/**
 * Gradient check against a float64 host reference: the GPU backward of fn(...inputs) is compared with central
 * differences of `reference(...inputs)` (the same op written in float64 JS over Refs), so f32 round-off does not
 * hide errors the way it does in `gradcheck`. The probe is L = sum(out * R) with a fixed random R. Checked: up to
 * `coords` coordinates of every differentiable input one by one (all when the input is smaller), and `directions`
 * random directions over all coordinates; tolerance |backward - fd| <= rtol |fd| + atol max|fd| (per coordinate)
 * and rtol |fd| + atol |v|_1 max|fd| (directions), so a gradient 1% off fails. Inputs that are Refs of dtype
 * i32/u32 (indices) and non-Ref arguments are passed through undifferentiated. Inputs are rounded to f32 first so
 * that the GPU and the reference see the same numbers.
 */
export function gradcheck64(fn, reference, inputs, opts = {}) {
  return markGradientCheck(() => gradcheckFloat64(fn, reference, inputs, opts));
}

async function gradcheckFloat64(fn, reference, inputs, { rtol = 1e-3, atol = 1e-4, eps = 1e-6, coords = 48, directions = 2, seed = 11, wrt, msg = '' } = {}) {
  const r = rng(seed);
  const isFloatRef = (x) => x instanceof Ref && (x.dtype ?? 'f32') === 'f32';
  const xs = inputs.map((x) => (isFloatRef(x) ? x.f32() : x));
  const which = wrt ?? xs.map((_, i) => i).filter((i) => isFloatRef(xs[i]));
  const tensors = xs.map((x, i) => (x instanceof Ref ? x.toTensor({ dtype: x.dtype ?? 'f32', requiresGrad: which.includes(i) }) : x));
  const { grads, R, Rt } = await probeGradients(fn, tensors, which, r, msg);
  for (const t of [Rt, ...tensors]) if (t instanceof vg.Tensor) t.dispose();
  const probe = (args) => {
    const y = reference(...args);
    assert.equal([...y.shape], [...R.shape], `${msg} reference output shape`);
    let s = 0;
    for (let k = 0; k < y.data.length; k++) s += y.data[k] * R.data[k];
    return s;
  };
  const along = (i, v) => {
    const x = xs[i];
    const shifted = (sign) => {
      const args = xs.slice();
      args[i] = new Ref(x.data.map((val, k) => val + sign * eps * v[k]), x.shape);
      return probe(args);
    };
    return (shifted(1) - shifted(-1)) / (2 * eps);
  };
  which.forEach((i, w) => {
    const n = xs[i].data.length;
    const picked = n <= coords ? [...Array(n).keys()] : Array.from({ length: coords }, () => r.int(0, n));
    const numeric = picked.map((k) => {
      const e = new Float64Array(n);
      e[k] = 1;
      return along(i, e);
    });
    const scale = Math.max(...numeric.map(Math.abs), Number.MIN_VALUE);
    picked.forEach((k, j) => {
      const [a, fd] = [grads[w][k], numeric[j]];
      assert.ok(
        Math.abs(a - fd) <= rtol * Math.abs(fd) + atol * scale,
        `${msg} d/d input ${i}[${k}]: backward ${a}, float64 finite difference ${fd} (tol ${rtol} rel + ${atol * scale} abs)`,
      );
    });
    for (let d = 0; d < directions; d++) {
      const v = r.array(n);
      const fd = along(i, v);
      const a = grads[w].reduce((s, g, k) => s + g * v[k], 0);
      const tol = rtol * Math.abs(fd) + atol * scale * v.reduce((s, x) => s + Math.abs(x), 0);
      assert.ok(Math.abs(a - fd) <= tol, `${msg} input ${i}, direction ${d}: backward ${a}, float64 finite difference ${fd} (tol ${tol})`);
    }
  });
}

/** Asserts that fn throws a VoxgradError whose message contains every fragment. */
export function assertThrowsWith(fn, fragments, msg = '') {
  let err;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  assert.ok(err, `${msg} expected an error, none was thrown`);
  assert.instance(err, vg.VoxgradError, `${msg} expected a VoxgradError, got ${err}`);
  for (const f of fragments) assert.ok(err.message.includes(f), `${msg} error message lacks "${f}": ${err.message}`);
}
