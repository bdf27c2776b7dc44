// Pooling over the trailing three spatial dims of contiguous f32 tensors viewed as [B, D, H, W] (B = batch x
// channels; 2-D pooling runs with D = 1, kernel 1, stride 1, padding 0 on that axis), PyTorch's CPU semantics.
// Spatial vectors (inSize, outSize, ksize, stride, pad, dil) hold (D, H, W) in x, y, z.
// Variants (defines): MAX (max pooling; INDICES also writes the argmax), AVG (avg pooling), ADAPTIVE (adaptive avg
// pooling); BACKWARD selects the gradient kernel of that variant, SCATTER (with BACKWARD, MAX or AVG) its form for
// windows that do not overlap. WIN2 (MAX forward and scatter): every window is 2x2 (WIN2D: 2x2x2) at stride 2, no
// padding or dilation, inside the input; its taps are unrolled (the general loops, with their runtime bounds, cost
// llvmpipe more than the loads).
// Bindings, forward:  out [B, OD, OH, OW] (rw), idx [B, OD, OH, OW] i32 (rw, INDICES only), x [B, D, H, W].
// Bindings, backward: gin [B, D, H, W] (rw), g [B, OD, OH, OW], idx [B, OD, OH, OW] i32 (MAX only).
// Mapping: flat invocation index over a 1-D or 2-D grid of {{WG}}-wide workgroups (flat_workgroup). Forward: one
// invocation per output; it reduces its window. Backward, deterministic and without atomics: a gather, one invocation
// per input element summing the gradients of the outputs whose window covers it (MAX: those whose argmax it is),
// enumerated from the kernel offsets; or, with SCATTER (windows disjoint, so every input has at most one writer),
// one invocation per output writing its window's gradients (the host zero-fills first unless the windows tile the
// input).
struct Params {
  // invocations with work: outputs (forward, SCATTER) or inputs (gather backward)
  total: u32,
  // AVG: divisorOverride, or 0 = divide by the window's element count
  divisor: i32,
  // AVG: 1 = count padded elements in the divisor (countIncludePad)
  countPad: u32,
  inSize: vec4<i32>,
  outSize: vec4<i32>,
  ksize: vec4<i32>,
  stride: vec4<i32>,
  pad: vec4<i32>,
  dil: vec4<i32>,
}

@group(0) @binding(0) var<uniform> p: Params;
#if BACKWARD
@group(0) @binding(1) var<storage, read_write> gin: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
#if MAX
@group(0) @binding(3) var<storage, read> idx: array<i32>;
#endif
#else
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
#if INDICES
@group(0) @binding(2) var<storage, read_write> idx: array<i32>;
@group(0) @binding(3) var<storage, read> x: array<f32>;
#else
@group(0) @binding(2) var<storage, read> x: array<f32>;
#endif
#endif

// Flat index t of a [B, size.x, size.y, size.z] tensor → (d, h, w, b). Three divisions, each remainder from its
// quotient: a division by a runtime value costs llvmpipe a scalar divide per lane (~75 cycles per 8 lanes).
fn coords(t: u32, size: vec4<i32>) -> vec4<i32> {
  let s = vec3<u32>(size.xyz);
  let q1 = t / s.z;
  let q2 = q1 / s.y;
  let q3 = q2 / s.x;
  return vec4<i32>(i32(q2 - q3 * s.x), i32(q1 - q2 * s.y), i32(t - q1 * s.z), i32(q3));
}

fn spatial_index(c: vec3<i32>, size: vec4<i32>) -> i32 {
  return (c.x * size.y + c.y) * size.z + c.z;
}

fn volume(v: vec3<i32>) -> i32 {
  return v.x * v.y * v.z;
}

// AVG: the divisor of output o: PyTorch's pool_size is the window clipped to the padded input, the
// countIncludePad=false divisor the window clipped to the input itself.
fn avg_divisor(o: vec3<i32>) -> f32 {
  if (p.divisor != 0) {
    return f32(p.divisor);
  }
  let lo = o * p.stride.xyz - p.pad.xyz;
  let hi = min(lo + p.ksize.xyz, p.inSize.xyz + p.pad.xyz);
  if (p.countPad != 0u) {
    return f32(volume(hi - lo));
  }
  return f32(volume(min(hi, p.inSize.xyz) - max(lo, vec3<i32>(0))));
}

// ADAPTIVE: the window of output o along an axis of nIn -> nOut: [floor(o nIn / nOut), ceil((o + 1) nIn / nOut)).
fn adaptive_start(o: i32, nIn: i32, nOut: i32) -> i32 {
  return (o * nIn) / nOut;
}

fn adaptive_end(o: i32, nIn: i32, nOut: i32) -> i32 {
  return ((o + 1) * nIn + nOut - 1) / nOut;
}

fn adaptive_len(o: i32, nIn: i32, nOut: i32) -> i32 {
  return adaptive_end(o, nIn, nOut) - adaptive_start(o, nIn, nOut);
}

// MAX: taps of output o run from first_tap(lo) below max_end(lo), every dil, with lo = o * stride - pad. A window
// starting in the padding begins at its first tap inside the input (PyTorch steps by the dilation).
fn first_tap(lo: vec3<i32>) -> vec3<i32> {
  // the division only where some lane's window starts in the padding (a select would divide everywhere)
  var first = lo;
  if (any(lo < vec3<i32>(0))) {
    first = select(lo, lo + ((p.dil.xyz - 1 - lo) / p.dil.xyz) * p.dil.xyz, lo < vec3<i32>(0));
  }
  return first;
}

#if WIN2
#if WIN2D
const WIN2_TAPS = 8u;
#else
const WIN2_TAPS = 4u;
#endif
// WIN2: tap k of a window at offset (k >> 2, (k >> 1) & 1, k & 1) (d, h, w): PyTorch's order
fn win2_offset(k: u32, s: vec4<i32>) -> i32 {
  return i32(k >> 2u) * s.y * s.z + i32((k >> 1u) & 1u) * s.z + i32(k & 1u);
}

#endif
fn max_end(lo: vec3<i32>) -> vec3<i32> {
  return min(lo + (p.ksize.xyz - 1) * p.dil.xyz + 1, p.inSize.xyz);
}

@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = flat_workgroup(wid, nwg) * {{WG}}u + lid;
  if (t >= p.total) {
    return;
  }
  let s = p.inSize;
#if !BACKWARD
  let c = coords(t, p.outSize);
  let o = c.xyz;
  let base = u32(c.w) * u32(volume(s.xyz));
#if MAX
  let lo = o * p.stride.xyz - p.pad.xyz;
#if WIN2
  let at0 = spatial_index(lo, s);
  var best = x[base + u32(at0)];
  var bestAt = at0;
  for (var k = 1u; k < WIN2_TAPS; k++) {
    let at = at0 + win2_offset(k, s);
    let v = x[base + u32(at)];
    // PyTorch: (v > best) || isnan(v): the first maximum wins, a NaN always takes over
    if (is_nan_f32(v) || (!is_nan_f32(best) && v > best)) {
      best = v;
      bestAt = at;
    }
  }
#else
  let hi = max_end(lo);
  let first = first_tap(lo);
  // -inf (through a var: a constant bitcast to infinity is a WGSL error)
  var negInf = 0xff800000u;
  var best = bitcast<f32>(negInf);
  var bestAt = spatial_index(first, s);
  for (var d = first.x; d < hi.x; d += p.dil.x) {
    for (var h = first.y; h < hi.y; h += p.dil.y) {
      for (var w = first.z; w < hi.z; w += p.dil.z) {
        let at = spatial_index(vec3<i32>(d, h, w), s);
        let v = x[base + u32(at)];
        // PyTorch: (v > best) || isnan(v): the first maximum wins, a NaN always takes over
        if (is_nan_f32(v) || (!is_nan_f32(best) && v > best)) {
          best = v;
          bestAt = at;
        }
      }
    }
  }
#endif
  out[t] = best;
#if INDICES
  idx[t] = bestAt;
#endif
#else
#if AVG
  let lo = max(o * p.stride.xyz - p.pad.xyz, vec3<i32>(0));
  let hi = min(o * p.stride.xyz - p.pad.xyz + p.ksize.xyz, s.xyz);
#else
  let os = p.outSize;
  let lo = vec3<i32>(adaptive_start(o.x, s.x, os.x), adaptive_start(o.y, s.y, os.y), adaptive_start(o.z, s.z, os.z));
  let hi = vec3<i32>(adaptive_end(o.x, s.x, os.x), adaptive_end(o.y, s.y, os.y), adaptive_end(o.z, s.z, os.z));
#endif
  var acc = 0.0;
  for (var d = lo.x; d < hi.x; d++) {
    for (var h = lo.y; h < hi.y; h++) {
      let row = base + u32(spatial_index(vec3<i32>(d, h, 0), s));
      for (var w = lo.z; w < hi.z; w++) {
        acc += x[row + u32(w)];
      }
    }
  }
#if AVG
  // an empty window (impossible under PyTorch's padding and ceilMode rules) would give 0
  out[t] = select(acc / avg_divisor(o), 0.0, any(hi <= lo));
#else
  out[t] = acc / f32(volume(hi - lo));
#endif
#endif
#else
#if SCATTER
  // windows that do not overlap: output o writes the gradient of every input in its window
  let c = coords(t, p.outSize);
  let o = c.xyz;
  let base = u32(c.w) * u32(volume(s.xyz));
  let lo = o * p.stride.xyz - p.pad.xyz;
#if WIN2
  let at0 = spatial_index(lo, s);
  let gv = g[t];
  let am = idx[t];
  for (var k = 0u; k < WIN2_TAPS; k++) {
    let at = at0 + win2_offset(k, s);
    gin[base + u32(at)] = select(0.0, gv, at == am);
  }
#else
#if MAX
  let first = first_tap(lo);
  let hi = max_end(lo);
  let dil = p.dil.xyz;
  let gv = g[t];
  let am = idx[t];
#else
  let first = max(lo, vec3<i32>(0));
  let hi = min(lo + p.ksize.xyz, s.xyz);
  let dil = vec3<i32>(1);
  let gv = g[t] / avg_divisor(o);
#endif
  for (var d = first.x; d < hi.x; d += dil.x) {
    for (var h = first.y; h < hi.y; h += dil.y) {
      for (var w = first.z; w < hi.z; w += dil.z) {
        let at = spatial_index(vec3<i32>(d, h, w), s);
#if MAX
        gin[base + u32(at)] = select(0.0, gv, at == am);
#else
        gin[base + u32(at)] = gv;
#endif
      }
    }
  }
#endif
#else
  let c = coords(t, s);
  let i = c.xyz;
  let os = p.outSize;
  let obase = u32(c.w) * u32(volume(os.xyz));
  var acc = 0.0;
#if ADAPTIVE
  // outputs whose window [floor(o I / O), ceil((o + 1) I / O)) contains i: o in [floor(i O / I), ceil((i + 1) O / I))
  let olo = (i * os.xyz) / s.xyz;
  let ohi = ((i + 1) * os.xyz + s.xyz - 1) / s.xyz;
  for (var od = olo.x; od < ohi.x; od++) {
    let nd = adaptive_len(od, s.x, os.x);
    for (var oh = olo.y; oh < ohi.y; oh++) {
      let ndh = nd * adaptive_len(oh, s.y, os.y);
      for (var ow = olo.z; ow < ohi.z; ow++) {
        acc += g[obase + u32(spatial_index(vec3<i32>(od, oh, ow), os))] / f32(ndh * adaptive_len(ow, s.z, os.z));
      }
    }
  }
#else
#if MAX
  let dil = p.dil.xyz;
  let at = spatial_index(i, s);
#else
  let dil = vec3<i32>(1);
#endif
  // tap k of output o sits at o * stride - pad + k * dil: the candidates are the o with (i + pad - k * dil) a
  // non-negative multiple of the stride below outSize (that numerator only falls as k grows)
  let num = i + p.pad.xyz;
  for (var kd = 0; kd < p.ksize.x; kd++) {
    let nd = num.x - kd * dil.x;
    if (nd < 0) {
      break;
    }
    let od = nd / p.stride.x;
    if (nd % p.stride.x != 0 || od >= os.x) {
      continue;
    }
    for (var kh = 0; kh < p.ksize.y; kh++) {
      let nh = num.y - kh * dil.y;
      if (nh < 0) {
        break;
      }
      let oh = nh / p.stride.y;
      if (nh % p.stride.y != 0 || oh >= os.y) {
        continue;
      }
      for (var kw = 0; kw < p.ksize.z; kw++) {
        let nw = num.z - kw * dil.z;
        if (nw < 0) {
          break;
        }
        let ow = nw / p.stride.z;
        if (nw % p.stride.z != 0 || ow >= os.z) {
          continue;
        }
        let o = vec3<i32>(od, oh, ow);
        let oi = obase + u32(spatial_index(o, os));
#if MAX
        if (idx[oi] == at) {
          acc += g[oi];
        }
#else
        acc += g[oi] / avg_divisor(o);
#endif
      }
    }
  }
#endif
  gin[t] = acc;
#endif
#endif
}
