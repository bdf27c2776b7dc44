/**
 * Host (JS) versions of the WGSL helpers in shaders/elementwise_fns.wgsl, for elementwise ops on tiny host-resident
 * tensors. Same formulas, evaluated in float64 and rounded to f32 on store, so they agree with the GPU to f32
 * round-off.
 */
export function sigmoid(x: number): number {
  const e = Math.exp(-Math.abs(x));
  return x >= 0 ? 1 / (1 + e) : e / (1 + e);
}

export function erf(x: number): number {
  const ax = Math.abs(x);
  const t = 1 / (1 + 0.3275911 * ax);
  const poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  return Math.sign(x) * (1 - poly * Math.exp(-ax * ax));
}

export function gelu(x: number): number {
  return 0.5 * x * (1 + erf(x * Math.SQRT1_2));
}

export function geluTanh(x: number): number {
  return 0.5 * x * (1 + Math.tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
}

export function softplus(x: number): number {
  return Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
}

/** pow with PyTorch's meaning for negative bases (NaN for a fractional exponent). */
export function pow(a: number, b: number): number {
  if (Number.isInteger(b) || a >= 0) return a ** b;
  return NaN;
}

/** Rounds halves to the even neighbour: WGSL's round(), numpy's round (which MONAI's geometry uses). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
