// A float64 host convolution for the conv tests' references (PyTorch semantics: cross-correlation, zero padding).
import { Ref, size } from './helpers.mjs';

/** float64 conv of x [N, Cin, ...S] with w [Cout, Cin/groups, ...k] (nd = 1..3), bias, stride, padding, dilation. */
export function convRef(x, w, b, { stride = 1, padding = 0, dilation = 1, groups = 1 } = {}) {
  const nd = x.shape.length - 2;
  const per = (v) => (Array.isArray(v) ? v : Array(nd).fill(v));
  const [s, p, d] = [per(stride), per(padding), per(dilation)];
  const [N, Cin, ...S] = x.shape;
  const [Cout, Cg, ...K] = w.shape;
  const O = S.map((n, i) => Math.floor((n + 2 * p[i] - d[i] * (K[i] - 1) - 1) / s[i]) + 1);
  const out = new Float64Array(N * Cout * size(O));
  const rows = Cout / groups;
  const taps = size(K);
  const coord = (i, dims) => dims.map((_, j) => Math.floor(i / size(dims.slice(j + 1))) % dims[j]);
  const offset = (c, dims) => c.reduce((o, v, j) => o * dims[j] + v, 0);
  let at = 0;
  for (let n = 0; n < N; n++)
    for (let co = 0; co < Cout; co++)
      for (let o = 0; o < size(O); o++, at++) {
        const oc = coord(o, O);
        let acc = b ? b.data[co] : 0;
        const g = Math.floor(co / rows);
        for (let c = 0; c < Cg; c++)
          for (let t = 0; t < taps; t++) {
            const kc = coord(t, K);
            const ic = oc.map((q, i) => q * s[i] - p[i] + kc[i] * d[i]);
            if (ic.some((v, i) => v < 0 || v >= S[i])) continue;
            acc += x.data[(n * Cin + g * Cg + c) * size(S) + offset(ic, S)] * w.data[(co * Cg + c) * taps + t];
          }
        out[at] = acc;
      }
  return new Ref(out, [N, Cout, ...O]);
}
