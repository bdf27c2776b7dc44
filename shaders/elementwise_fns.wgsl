// Scalar helpers for elementwise expressions (numerically safe forms of the activations).
fn vg_sigmoid(x: f32) -> f32 {
  // exp of a non-positive argument only, so no overflow
  let e = exp(-abs(x));
  return select(e / (1.0 + e), 1.0 / (1.0 + e), x >= 0.0);
}

fn vg_tanh(x: f32) -> f32 {
  let t = exp(-2.0 * abs(x));
  return sign(x) * (1.0 - t) / (1.0 + t);
}

// erf by Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7).
fn vg_erf(x: f32) -> f32 {
  let ax = abs(x);
  let t = 1.0 / (1.0 + 0.3275911 * ax);
  let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  let y = 1.0 - poly * exp(-ax * ax);
  return sign(x) * y;
}

fn vg_gelu(x: f32) -> f32 {
  return 0.5 * x * (1.0 + vg_erf(x * 0.7071067811865476));
}

fn vg_gelu_grad(x: f32) -> f32 {
  let cdf = 0.5 * (1.0 + vg_erf(x * 0.7071067811865476));
  let pdf = 0.3989422804014327 * exp(-0.5 * x * x);
  return cdf + x * pdf;
}

fn vg_gelu_tanh(x: f32) -> f32 {
  return 0.5 * x * (1.0 + vg_tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
}

fn vg_gelu_tanh_grad(x: f32) -> f32 {
  let u = 0.7978845608028654 * (x + 0.044715 * x * x * x);
  let t = vg_tanh(u);
  let du = 0.7978845608028654 * (1.0 + 3.0 * 0.044715 * x * x);
  return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du;
}

fn vg_silu_grad(x: f32) -> f32 {
  let s = vg_sigmoid(x);
  return s * (1.0 + x * (1.0 - s));
}

// pow with PyTorch's meaning for negative bases; small integral exponents by repeated squaring, which is exact
// where the result is representable (x^2 must give x*x, not exp2(2 log2 x)).
fn vg_pow(a: f32, b: f32) -> f32 {
  if (fract(b) == 0.0 && abs(b) <= 64.0) {
    var e = u32(abs(b));
    var base = a;
    var r = 1.0;
    loop {
      if ((e & 1u) == 1u) {
        r *= base;
      }
      e = e >> 1u;
      if (e == 0u) {
        break;
      }
      base *= base;
    }
    return select(r, 1.0 / r, b < 0.0);
  }
  if (a == 0.0) {
    // WGSL's pow is undefined at a = 0 (lavapipe returns 0 for b < 0): 0^b is 0 for b > 0, +inf for b < 0
    return select(0.0, 1.0 / abs(a), b < 0.0);
  }
  if (a > 0.0) {
    return pow(a, b);
  }
  let z = a - a;
  return z / z; // NaN (negative base, fractional exponent), computed at run time
}

fn vg_log1p(x: f32) -> f32 {
  // log(1+x) loses digits for small x; the (x / (u - 1)) factor restores them
  let u = 1.0 + x;
  return select(log(u) * (x / (u - 1.0)), x, u == 1.0);
}

fn vg_softplus(x: f32) -> f32 {
  return max(x, 0.0) + vg_log1p(exp(-abs(x)));
}
