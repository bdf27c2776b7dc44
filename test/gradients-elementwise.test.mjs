// The backward of every differentiable elementwise op against its analytic derivative in float64.
// Each op runs forward and backward on the GPU over thousands of points spanning its domain (with the kinks, ties
// and boundary cases listed per op), with tensor, broadcast and scalar operands; the reference is
// sum over broadcast positions of g * f'(inputs), evaluated in float64 at the f32 inputs. The tolerance is 2e-5
// relative plus 1e-6 |g| (1 + |y|) absolute per point, far below the 1% error the test exists to catch (and each
// op asserts that its own gradients scaled by 1.01 would fail it).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Ref, assertClose, broadcastShape, erf, markGradientCheck, rng, setup, size, stridesOf, unravel, vg } from './helpers.mjs';

test.before(setup);

const f32 = Math.fround;
const sigmoid = (x) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));
const normalPdf = (x) => Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);
const GELU_K = Math.sqrt(2 / Math.PI);
const GELU_C = 0.044715;
const geluTanhGrad = (x) => {
  const t = Math.tanh(GELU_K * (x + GELU_C * x ** 3));
  return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * GELU_K * (1 + 3 * GELU_C * x * x);
};
const roundHalfEvenRef = (x) => {
  const fl = Math.floor(x);
  const frac = x - fl;
  if (frac < 0.5) return fl;
  if (frac > 0.5) return fl + 1;
  return fl % 2 === 0 ? fl : fl + 1;
};
// PyTorch's pow gradients: the base's is 0 where the exponent is 0; the exponent's is 0 where a == 0 and b >= 0
const powGradBase = (a, b) => (b === 0 ? 0 : b * powRef(a, b - 1));
const powGradExp = (a, b) => (a === 0 && b >= 0 ? 0 : powRef(a, b) * Math.log(a));
const powRef = (a, b) => (Number.isInteger(b) || a >= 0 ? a ** b : NaN);

// Samplers: a value of an op's domain from a random source r.
const uniform = (lo, hi) => (r) => r.uniform(lo, hi);
const logUniform = (lo, hi) => (r) => Math.exp(r.uniform(Math.log(lo), Math.log(hi)));
const signedLog = (lo, hi) => (r) => (r.next() < 0.5 ? -1 : 1) * logUniform(lo, hi)(r);
const integers = (lo, hi) => (r) => r.int(lo, hi + 1);
/** Half of the points on a coarse grid, so that ties between independently drawn operands occur often. */
const tieProne = (lo, hi) => (r) => (r.next() < 0.5 ? Math.round(r.uniform(lo, hi) * 4) / 4 : r.uniform(lo, hi));

/**
 * name of the table entry → {
 *   call(...operands): the public function computing it (operands are tensors or numbers),
 *   domain: one sampler per operand,
 *   d: the float64 derivative with respect to each operand (null: no gradient flows to it),
 *   special: operand tuples the sampled points might miss (kinks, ties, zeros, boundaries),
 *   tensorOnly: operand positions that must be tensors (the rest are also tried as numbers),
 *   scalarOnly: operand positions the public function takes only as numbers,
 *   zero: the derivative is zero everywhere (step functions): the gradient must be exactly 0,
 *   atol: the absolute tolerance per unit of |g| (1 + |y|) where f32 cancellation needs more than ATOL,
 * }
 */
const DERIVATIVES = {
  neg: { call: (a) => vg.neg(a), domain: [uniform(-50, 50)], d: [() => -1] },
  abs: { call: (a) => vg.abs(a), domain: [uniform(-5, 5)], d: [(a) => Math.sign(a)], special: [[0], [-0.5], [1e-30], [-1e-30]] },
  sign: { call: (a) => vg.sign(a), domain: [uniform(-5, 5)], d: [() => 0], zero: true, special: [[0]] },
  square: { call: (a) => vg.square(a), domain: [uniform(-30, 30)], d: [(a) => 2 * a] },
  exp: { call: (a) => vg.exp(a), domain: [uniform(-20, 20)], d: [(a) => Math.exp(a)] },
  log: { call: (a) => vg.log(a), domain: [logUniform(1e-4, 1e4)], d: [(a) => 1 / a] },
  log1p: { call: (a) => vg.log1p(a), domain: [uniform(-0.999, 50)], d: [(a) => 1 / (1 + a)], special: [[1e-7], [-1e-7], [0]] },
  sqrt: { call: (a) => vg.sqrt(a), domain: [logUniform(1e-6, 1e6)], d: [(a) => 0.5 / Math.sqrt(a)] },
  rsqrt: { call: (a) => vg.rsqrt(a), domain: [logUniform(1e-4, 1e4)], d: [(a) => -0.5 * a ** -1.5] },
  reciprocal: { call: (a) => vg.reciprocal(a), domain: [signedLog(1e-3, 1e3)], d: [(a) => -1 / (a * a)] },
  sin: { call: (a) => vg.sin(a), domain: [uniform(-10, 10)], d: [(a) => Math.cos(a)], special: [[0], [Math.PI / 2], [-Math.PI]] },
  cos: { call: (a) => vg.cos(a), domain: [uniform(-10, 10)], d: [(a) => -Math.sin(a)], special: [[0], [Math.PI / 2], [-Math.PI]] },
  tanh: { call: (a) => vg.tanh(a), domain: [uniform(-10, 10)], d: [(a) => 1 - Math.tanh(a) ** 2], special: [[0], [20], [-20]] },
  sigmoid: { call: (a) => vg.sigmoid(a), domain: [uniform(-20, 20)], d: [(a) => sigmoid(a) * (1 - sigmoid(a))], special: [[0], [80], [-80]] },
  relu: { call: (a) => vg.relu(a), domain: [uniform(-5, 5)], d: [(a) => (a > 0 ? 1 : 0)], special: [[0], [1e-30], [-1e-30]] },
  gelu: {
    call: (a) => vg.gelu(a),
    domain: [uniform(-8, 8)],
    d: [(a) => 0.5 * (1 + erf(a / Math.SQRT2)) + a * normalPdf(a)],
    special: [[0], [12], [-12]],
  },
  geluTanh: {
    call: (a) => vg.gelu(a, { approximate: 'tanh' }),
    domain: [uniform(-8, 8)],
    d: [geluTanhGrad],
    special: [[0], [12], [-12]],
    // for a < -4 the f32 tanh saturates to -1, so 1 + tanh and 1 - tanh^2 cancel to 0 while the true derivative is
    // still up to 2e-6 in size
    atol: 3e-6,
  },
  silu: { call: (a) => vg.silu(a), domain: [uniform(-20, 20)], d: [(a) => sigmoid(a) * (1 + a * (1 - sigmoid(a)))], special: [[0]] },
  softplus: { call: (a) => vg.softplus(a), domain: [uniform(-30, 30)], d: [sigmoid], special: [[0], [90], [-90]] },
  floor: { call: (a) => vg.floor(a), domain: [uniform(-5, 5)], d: [() => 0], zero: true, special: [[2], [-2]] },
  ceil: { call: (a) => vg.ceil(a), domain: [uniform(-5, 5)], d: [() => 0], zero: true, special: [[2], [-2]] },
  round: { call: (a) => vg.round(a), domain: [uniform(-5, 5)], d: [() => 0], zero: true, special: [[2.5], [-0.5]] },
  add: { call: (a, b) => vg.add(a, b), domain: [uniform(-10, 10), uniform(-10, 10)], d: [() => 1, () => 1] },
  sub: { call: (a, b) => vg.sub(a, b), domain: [uniform(-10, 10), uniform(-10, 10)], d: [() => 1, () => -1] },
  mul: { call: (a, b) => vg.mul(a, b), domain: [uniform(-10, 10), uniform(-10, 10)], d: [(a, b) => b, (a) => a], special: [[0, 3], [3, 0]] },
  div: {
    call: (a, b) => vg.div(a, b),
    domain: [uniform(-10, 10), signedLog(1e-2, 1e2)],
    d: [(a, b) => 1 / b, (a, b) => -a / (b * b)],
    special: [[0, 3], [3, -1e-2]],
  },
  pow: {
    call: (a, b) => vg.pow(a, b),
    domain: [logUniform(1e-2, 10), uniform(-3, 3)],
    d: [powGradBase, powGradExp],
    // a = 0 with integral b (1, 0, 0 and -inf for the base; 0 or -inf for the exponent), with b = 0 (base gradient
    // 0 as PyTorch masks it, not 0 * 0^-1) and with fractional b (WGSL's own pow is undefined at 0: 0^-2.5 = inf,
    // base gradient inf at b = 0.5), negative bases with integral exponents, integral exponents (computed by
    // repeated squaring).
    special: [[0, 1], [0, 2], [0, 3], [0, -1], [0, 0], [0, 0.5], [0, 2.5], [0, -2.5], [-2, 3], [-1.5, 2], [-3, -2], [1, 2.5], [2, 1], [-4, 1], [5, 2], [3, 0]],
  },
  maximum: {
    call: (a, b) => vg.maximum(a, b),
    domain: [tieProne(-3, 3), tieProne(-3, 3)],
    d: [(a, b) => (a > b ? 1 : a === b ? 0.5 : 0), (a, b) => (b > a ? 1 : a === b ? 0.5 : 0)],
    // one-ulp apart: the comparison, not a tolerance, decides
    special: [[1, f32(1 + 2 ** -23)], [f32(1 + 2 ** -23), 1], [-0.75, -0.75], [0, -0]],
  },
  minimum: {
    call: (a, b) => vg.minimum(a, b),
    domain: [tieProne(-3, 3), tieProne(-3, 3)],
    d: [(a, b) => (a < b ? 1 : a === b ? 0.5 : 0), (a, b) => (b < a ? 1 : a === b ? 0.5 : 0)],
    special: [[1, f32(1 + 2 ** -23)], [f32(1 + 2 ** -23), 1], [-0.75, -0.75]],
  },
  leakyRelu: {
    call: (a, slope) => vg.leakyRelu(a, { negativeSlope: slope }),
    domain: [uniform(-5, 5), uniform(0, 0.5)],
    d: [(a, slope) => (a > 0 ? 1 : slope), null],
    special: [[0, 0.1], [1e-30, 0.2], [-1e-30, 0.2]],
    tensorOnly: [0],
    scalarOnly: [1],
  },
  clampMin: {
    call: (a, lo) => vg.clamp(a, lo),
    domain: [tieProne(-3, 3), tieProne(-3, 3)],
    d: [(a, lo) => (a >= lo ? 1 : 0), null],
    special: [[1, 1], [1, f32(1 + 2 ** -23)]],
    tensorOnly: [0],
  },
  clampMax: {
    call: (a, hi) => vg.clamp(a, { max: hi }),
    domain: [tieProne(-3, 3), tieProne(-3, 3)],
    d: [(a, hi) => (a <= hi ? 1 : 0), null],
    special: [[1, 1], [f32(1 + 2 ** -23), 1]],
    tensorOnly: [0],
  },
  clamp: {
    call: (a, lo, hi) => vg.clamp(a, lo, hi),
    domain: [tieProne(-3, 3), tieProne(-3, -0.5), tieProne(0.5, 3)],
    d: [(a, lo, hi) => (a >= lo && a <= hi ? 1 : 0), null, null],
    special: [[-1, -1, 1], [1, -1, 1], [-2, -1, 1], [2, -1, 1]],
    tensorOnly: [0],
  },
  where: {
    call: (cond, x, y) => vg.where(cond, x, y),
    domain: [integers(0, 1), uniform(-5, 5), uniform(-5, 5)],
    d: [null, (c) => (c !== 0 ? 1 : 0), (c) => (c !== 0 ? 0 : 1)],
    tensorOnly: [0],
  },
};

const RTOL = 2e-5;
const ATOL = 1e-6;

/** Runs the op forward and backward on the GPU with a random upstream gradient g; returns g, y and the gradients. */
async function runCase(name, operands, r) {
  const spec = DERIVATIVES[name];
  // gradients are taken for tensor operands with a derivative; where's condition is a 0/1 tensor, not differentiable
  const tensors = operands.map((o, k) =>
    o instanceof Ref ? vg.tensor(Array.from(o.data), o.shape, { requiresGrad: spec.d[k] !== null }) : o,
  );
  const y = spec.call(...tensors);
  const outShape = broadcastShape(...operands.filter((o) => o instanceof Ref).map((o) => o.shape));
  assert.equal([...y.shape], outShape, `${name}: output shape`);
  const g = Float32Array.from({ length: size(outShape) }, () => (r.next() < 0.05 ? 0 : r.uniform(-2, 2)));
  const yData = await y.data();
  y.backward(vg.tensor(Array.from(g), outShape));
  const results = [];
  for (let k = 0; k < operands.length; k++) {
    if (!(operands[k] instanceof Ref) || spec.d[k] === null) continue;
    assert.ok(tensors[k].grad, `${name}: no gradient reached operand ${k}`);
    results.push({ k, got: await tensors[k].grad.data() });
  }
  for (const t of [y, ...tensors]) if (t instanceof vg.Tensor) t.dispose();
  return { outShape, g, yData, results };
}

/** Sums g * f'(operands) into each operand position (broadcasting), in float64; returns value and error scale. */
function reference(name, operands, k, outShape, g, yData) {
  const spec = DERIVATIVES[name];
  const deriv = spec.d[k];
  const atol = spec.atol ?? ATOL;
  const target = operands[k];
  const value = new Float64Array(target.data.length);
  const scale = new Float64Array(target.data.length);
  const readers = operands.map((o) => {
    if (!(o instanceof Ref)) return () => o;
    const off = outShape.length - o.shape.length;
    const st = stridesOf(o.shape);
    return (coord) => o.data[o.shape.reduce((s, dim, i) => s + (dim === 1 ? 0 : coord[off + i]) * st[i], 0)];
  });
  const offset = (coord) => {
    const off = outShape.length - target.shape.length;
    const st = stridesOf(target.shape);
    return target.shape.reduce((s, dim, i) => s + (dim === 1 ? 0 : coord[off + i]) * st[i], 0);
  };
  for (let i = 0; i < g.length; i++) {
    const coord = unravel(i, outShape);
    const args = readers.map((read) => read(coord));
    const term = g[i] * deriv(...args);
    const o = offset(coord);
    value[o] += term;
    if (!spec.zero) scale[o] += RTOL * Math.abs(term) + atol * Math.abs(g[i]) * (1 + Math.abs(yData[i]));
  }
  return { value, scale };
}

/** Asserts the GPU gradient against the reference, and that the same gradient 1% off would not pass. */
function compare(name, label, got, { value, scale }) {
  let scaledFails = 0;
  for (let j = 0; j < got.length; j++) {
    const want = value[j];
    const pass = (v) => (Number.isNaN(want) ? Number.isNaN(v) : v === want || Math.abs(v - want) <= scale[j]);
    if (!pass(got[j]))
      assert.unreachable(`${name} ${label}: gradient at ${j} is ${got[j]}, the float64 derivative gives ${want} (tolerance ${scale[j]})`);
    if (Number.isFinite(want) && !pass(got[j] * 1.01)) scaledFails++;
  }
  return scaledFails;
}

/** The points of one op: sampled from its domain plus the special tuples, rounded to f32. */
function pointSet(spec, n, r) {
  const cols = spec.domain.map((sample) => Array.from({ length: n }, () => f32(sample(r))));
  for (const tuple of spec.special ?? []) tuple.forEach((v, k) => cols[k].push(f32(v)));
  return cols;
}

const POINTS = 4096;

for (const name of Object.keys(DERIVATIVES)) {
  test(`${name}: GPU backward matches the float64 derivative on ${POINTS}+ points, broadcast and scalar operands`, async () => {
    const spec = DERIVATIVES[name];
    const r = rng(name.length * 131 + name.charCodeAt(0));
    const arity = spec.domain.length;
    const scalarOnly = spec.scalarOnly ?? [];
    const tensorOnly = spec.tensorOnly ?? [];
    let discriminating = 0;
    const check = async (label, operands) => {
      const { outShape, g, yData, results } = await markGradientCheck(() => runCase(name, operands, r));
      for (const { k, got } of results)
        discriminating += compare(name, `${label}, operand ${k}`, got, reference(name, operands, k, outShape, g, yData));
    };

    // every operand a tensor of the same shape (numbers where the function takes only numbers: one per run)
    const cols = pointSet(spec, POINTS, r);
    const n = cols[0].length;
    if (scalarOnly.length) {
      for (const v of new Set(cols[scalarOnly[0]].slice(0, 4).concat(cols[scalarOnly[0]].slice(POINTS))))
        await check(`number operand ${v}`, cols.map((c, k) => (scalarOnly.includes(k) ? v : new Ref(c, [n]))));
    } else await check('same-shape tensors', cols.map((c) => new Ref(c, [n])));

    if (arity > 1) {
      // broadcasting: [37, 1] against [1, 29] (each operand in turn the row); the gradient sums over the other axis
      const shapes = Array.from({ length: arity }, (_, k) => (k % 2 === 0 ? [37, 1] : [1, 29]));
      const bcast = shapes.map((s, k) => (scalarOnly.includes(k) ? f32(spec.domain[k](r)) : new Ref(pointSet({ domain: [spec.domain[k]] }, size(s), r)[0], s)));
      await check('broadcast [37, 1] x [1, 29]', bcast);
      // a [1]-shaped operand broadcast over the others, and numbers in every position that accepts one
      for (let k = 0; k < arity; k++) {
        if (scalarOnly.includes(k)) continue;
        const one = cols.map((c, j) => (j === k ? new Ref([c[0]], [1]) : scalarOnly.includes(j) ? c[0] : new Ref(c.slice(0, 1000), [1000])));
        await check(`operand ${k} of shape [1]`, one);
        if (tensorOnly.includes(k)) continue;
        const number = cols.map((c, j) => (j === k || scalarOnly.includes(j) ? c[1] : new Ref(c.slice(0, 1000), [1000])));
        await check(`operand ${k} a number`, number);
      }
    }
    // an op whose derivative is zero everywhere is checked for exact zeros; the others must have many points
    // where the same gradient 1% off would fail
    if (!spec.zero) assert.ok(discriminating > 100, `${name}: only ${discriminating} points would catch a 1% wrong gradient`);
  });
}

test('every differentiable elementwise op of the public API has an analytic derivative above', async () => {
  // The elementwise public functions are found by behaviour (independent of how the library lists its ops): a
  // function that maps [6, 5] tensors to a [6, 5] tensor and commutes with splitting its inputs along either axis
  // is elementwise; if its output requires grad it is differentiable. Functions that change the library's state
  // are not called.
  const r = rng(99);
  const x = vg.tensor(Array.from(pointSet({ domain: [uniform(0.2, 0.9)] }, 30, r)[0]), [6, 5], { requiresGrad: true });
  const other = vg.tensor(Array.from(pointSet({ domain: [uniform(0.2, 0.9)] }, 30, r)[0]), [6, 5]);
  const stateful = new Set(['init', 'destroy', 'sync', 'emptyCache', 'setBatchSize', 'setCpuForwardThreshold', 'setPoolLimit', 'manualSeed', 'backward', 'noGrad', 'grad', 'valueAndGrad', 'tidy', 'keep', 'profile', 'tune', 'resetTuning']);
  const publicOps = Object.keys(vg).filter((k) => typeof vg[k] === 'function' && !stateful.has(k) && !/^[A-Z]/.test(k));
  const found = [];
  for (const name of publicOps) {
    for (const args of [[x], [x, other], [x, other, x]]) {
      let y;
      try {
        y = await vg[name](...args); // some ops are async (maskedSelect, nonzero): their argument errors reject
      } catch {
        continue;
      }
      if (!(y instanceof vg.Tensor) || y.shape.join() !== '6,5' || y.dtype !== 'f32') break;
      const whole = await y.data();
      let elementwise = true;
      for (const [dim, at] of [[0, 2], [1, 3]]) {
        const parts = args.map((a) => [vg.narrow(a, dim, 0, at), vg.narrow(a, dim, at, a.shape[dim] - at)]);
        const pieces = [0, 1].map((p) => vg.noGrad(() => vg[name](...parts.map((pp) => pp[p]))));
        const joined = await vg.cat(pieces, dim).data();
        if (joined.some((v, i) => !(v === whole[i] || (Number.isNaN(v) && Number.isNaN(whole[i]))))) elementwise = false;
      }
      if (elementwise && y.requiresGrad) found.push(name);
      break;
    }
  }
  // the public function name of each table entry (gelu's tanh form and clamp's one-sided forms share a function)
  const publicName = { geluTanh: 'gelu', clampMin: 'clamp', clampMax: 'clamp' };
  const covered = new Set(Object.keys(DERIVATIVES).map((n) => publicName[n] ?? n));
  // public functions that act as the identity on this probe (a copy, or a view that changes nothing on a [6, 5]
  // tensor): not entries of the elementwise table; their gradients are checked with the shape ops
  const copies = new Set(['clone', 'squeeze']);
  const missing = found.filter((n) => !covered.has(n) && !copies.has(n));
  assert.equal(missing, [], `elementwise ops without an analytic derivative in this file: ${missing.join(', ')}`);
  assert.ok(found.includes('where') && found.length >= 30, `the probe found only ${found.length} elementwise ops (${found.join(', ')}): it is not finding the table`);
  // the registry's list: every differentiable variant reached through one of these functions (gelu's tanh form,
  // clamp's one-sided forms) needs its own entry, and every entry names a registered differentiable op
  const listed = vg.listOps();
  const variants = listed.filter((o) => o.differentiable && o.via && found.includes(o.via) && !DERIVATIVES[o.name]).map((o) => `${o.name} (vg.${o.via})`);
  assert.equal(variants, [], `variants of elementwise ops without an analytic derivative here: ${variants.join(', ')}`);
  const differentiable = new Set(listed.filter((o) => o.differentiable).map((o) => o.name));
  const stale = Object.keys(DERIVATIVES).filter((n) => !differentiable.has(n));
  assert.equal(stale, [], `entries here that vg.listOps() does not list as differentiable ops: ${stale.join(', ')}`);
});

test("cast to 'f32' (vg.cast, Tensor.to) passes the gradient through unchanged; from an integer tensor none flows", async () => {
  const r = rng(21);
  const values = Array.from({ length: 777 }, () => f32(r.uniform(-100, 100)));
  const upstream = Array.from({ length: 777 }, () => f32(r.uniform(-3, 3)));
  for (const cast of [(t) => vg.cast(t, 'f32'), (t) => t.to('f32'), (t) => vg.cast(vg.cast(t, 'f32'), 'f32')]) {
    const x = vg.tensor(values, [7, 111], { requiresGrad: true });
    const grad = await markGradientCheck(async () => {
      cast(x).backward(vg.tensor(upstream, [7, 111]));
      return x.grad.data();
    });
    assert.equal(Array.from(grad), upstream, 'the gradient of an f32 → f32 cast is the upstream gradient, bit for bit');
    x.dispose();
  }
  const ints = vg.tensor([1, 2, 3], null, { dtype: 'i32' });
  assert.not.ok(vg.cast(ints, 'f32').requiresGrad, 'an integer tensor has no gradient to receive');
});

test('round: halves to the even neighbour, negatives, large values, against float64', async () => {
  const r = rng(5);
  const values = [
    0.5, 1.5, 2.5, 3.5, -0.5, -1.5, -2.5, -3.5, 0.49999997, 0.50000006, -0.49999997, 1e7 + 0.5, -(1e7 + 0.5), 2 ** 23 - 0.5, 2 ** 23,
    2 ** 24 + 2, -(2 ** 24), 3e38, -3e38, 0, -0, 1e-30, 4.5, 5.5, -4.5, -5.5, 2.4999998, 2.5000002,
    ...Array.from({ length: 2000 }, () => r.uniform(-1000, 1000)),
    ...Array.from({ length: 500 }, () => r.int(-200, 200) + 0.5),
  ].map(f32);
  for (const threshold of [0, 1e9]) {
    // 0: the GPU kernel; a high threshold: the host path for small tensors
    vg.setCpuForwardThreshold(threshold);
    try {
      for (const chunk of threshold ? [values.slice(0, 30)] : [values])
        await assertClose(vg.round(vg.tensor(chunk)), new Ref(chunk.map(roundHalfEvenRef), [chunk.length]), { rtol: 0, atol: 0, msg: `threshold ${threshold}` });
    } finally {
      vg.setCpuForwardThreshold(128);
    }
  }
});

test.run();
