// Exact Euclidean distance transform, one pass per axis (vg.metrics.distanceTransform; src/metrics/edt.ts).
// The tensor is contiguous and viewed as [outer, L, inner] for the axis being processed; a line is (o, i) and its
// element k sits at o * L * inner + k * inner + i. Line t = o * inner + i, so neighbouring invocations read
// neighbouring addresses on every axis except the last.
// Each pass computes, per line, D(q) = min_p f(p) + w * (q - p)^2 with w = spacing^2 of the axis:
//   FIRST: f comes from the mask (0 at foreground voxels, no site elsewhere: bits of f32 or integer, sign ignored
//     for f32 so that -0.0 is background); later passes: f = the previous pass's squared distances (no site = +inf).
//   LAST: writes sqrt(D) (distances), otherwise D (squared distances). A line with no site writes +inf.
// Default variant (Felzenszwalb-Huttenlocher lower envelope of parabolas, O(L) per line): one invocation per line;
//   the envelope (site positions v, boundaries z) lives in scratch buffers laid out [k][line] (coalesced).
// BRUTE variant (method "scan"): one invocation per voxel, min over its whole line (O(L) per voxel, no scratch).
// Bindings: 1 dst f32 bits [outer, L, inner], 2 src (u32 mask bits when FIRST, else f32), 3 v u32 [L * lines],
//   4 z f32 [(L + 1) * lines] (3-4 only in the default variant). 2-D workgroup grid (flat_workgroup).
// Infinity never enters arithmetic: sites are tested by bit pattern, as WGSL lets compilers assume inf away.
struct Params {
  lines: u32,
  total: u32,
  L: u32,
  inner: u32,
  w: f32,
  maskFloat: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
// dst is written as u32 words so that +inf can be stored by its bits (a const bitcast to inf does not compile)
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;
#if FIRST
@group(0) @binding(2) var<storage, read> src: array<u32>;
#else
@group(0) @binding(2) var<storage, read> src: array<f32>;
#endif
#if !BRUTE
@group(0) @binding(3) var<storage, read_write> vbuf: array<u32>;
@group(0) @binding(4) var<storage, read_write> zbuf: array<f32>;
#endif

const INF_BITS = 0x7f800000u;

// Whether element at `idx` is a site, and its height f.
fn site(idx: u32) -> bool {
#if FIRST
  let b = src[idx];
  return select(b != 0u, (b & 0x7fffffffu) != 0u, p.maskFloat != 0u);
#else
  return bitcast<u32>(src[idx]) != INF_BITS;
#endif
}

fn height(idx: u32) -> f32 {
#if FIRST
  return 0.0;
#else
  return src[idx];
#endif
}

fn store(idx: u32, d: f32) {
#if LAST
  dst[idx] = bitcast<u32>(sqrt(d));
#else
  dst[idx] = bitcast<u32>(d);
#endif
}

@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = flat_workgroup(wid, nwg) * {{WG}}u + lid;
#if BRUTE
  if (t >= p.total) {
    return;
  }
  let i = t % p.inner;
  let q = (t / p.inner) % p.L;
  let base = (t / (p.inner * p.L)) * p.L * p.inner + i;
  var best = 0.0;
  var found = false;
  for (var k = 0u; k < p.L; k++) {
    let idx = base + k * p.inner;
    if (site(idx)) {
      let dq = f32(i32(q) - i32(k));
      let d = height(idx) + p.w * dq * dq;
      if (!found || d < best) {
        best = d;
        found = true;
      }
    }
  }
  if (found) {
    store(t, best);
  } else {
    dst[t] = INF_BITS;
  }
#else
  if (t >= p.lines) {
    return;
  }
  let base = (t / p.inner) * p.L * p.inner + t % p.inner;
  let n = p.lines;
  // lower envelope: parabola j (site position vbuf[j]) is lowest on [zbuf[j], zbuf[j + 1]); k = last parabola
  var k = -1;
  for (var q = 0u; q < p.L; q++) {
    let iq = base + q * p.inner;
    if (!site(iq)) {
      continue;
    }
    let fq = height(iq);
    if (k < 0) {
      k = 0;
      vbuf[t] = q;
      continue;
    }
    // intersection with the last parabola, written (f_q - f_v) / (2 w (q - v)) + (q + v) / 2 so that no
    // large w * q^2 terms cancel in f32; pop parabolas that the new one hides completely
    var s = 0.0;
    loop {
      let vk = vbuf[u32(k) * n + t];
      s = (fq - height(base + vk * p.inner)) / (2.0 * p.w * f32(q - vk)) + 0.5 * f32(q + vk);
      if (k == 0 || s > zbuf[u32(k) * n + t]) {
        break;
      }
      k--;
    }
    k++;
    vbuf[u32(k) * n + t] = q;
    zbuf[u32(k) * n + t] = s;
  }
  if (k < 0) {
    for (var q = 0u; q < p.L; q++) {
      dst[base + q * p.inner] = INF_BITS;
    }
    return;
  }
  var j = 0;
  for (var q = 0u; q < p.L; q++) {
    // advance while the next parabola's interval starts at or before q
    while (j < k && zbuf[u32(j + 1) * n + t] <= f32(q)) {
      j++;
    }
    let vj = vbuf[u32(j) * n + t];
    let dq = f32(i32(q) - i32(vj));
    store(base + q * p.inner, height(base + vj * p.inner) + p.w * dq * dq);
  }
#endif
}
