// Backward of interpolate (every mode), f32: one gather pass along one axis; the host chains a pass per resampled
// axis (the weights are separable) and builds each pass's sparse table from PyTorch's taps (src/kernels/interpolate.ts).
// Bindings: dst [outer, nDst, inner] (rw, the gradient with this axis at its input size), src [outer, nSrc, inner]
//   (with this axis at its output size), csr: row r (an input index) reads the (col = destination index, weight bits)
//   pairs k = start[r] .. start[r + 1] (start = csr[0 .. nDst], pairs from csr[nDst + 1] on), i.e. the destinations
//   that read r, in increasing order: dst[a, r, c] = sum over k of weight_k * src[a, col_k, c]. Deterministic, no
//   atomics.
// Mapping: flat invocation index over a 1-D or 2-D grid of {{WG}}-wide workgroups (flat_workgroup). Each invocation
//   computes up to {{RUN}} elements of dst that share row r, so they share the table walk: consecutive c (INNER_RUN,
//   when inner > 1), else the same r in consecutive a (inner = 1: a pass along the last axis).
struct Params {
  total: u32,
  outer: u32,
  inner: u32,
  nSrc: u32,
  nDst: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<storage, read> src: array<f32>;
@group(0) @binding(3) var<storage, read> csr: array<u32>;

@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = flat_workgroup(wid, nwg) * {{WG}}u + lid;
  if (t >= p.total) {
    return;
  }
#if INNER_RUN
  let runs = (p.inner + {{RUN}}u - 1u) / {{RUN}}u;
  let c0 = (t % runs) * {{RUN}}u;
  let r = (t / runs) % p.nDst;
  let a = t / (runs * p.nDst);
  let n = min({{RUN}}u, p.inner - c0);
  let dstBase = (a * p.nDst + r) * p.inner + c0;
  let srcBase = a * p.nSrc * p.inner + c0;
  let step = 1u;
  let dstStep = 1u;
#else
  let r = t % p.nDst;
  let a0 = (t / p.nDst) * {{RUN}}u;
  let n = min({{RUN}}u, p.outer - a0);
  let dstBase = a0 * p.nDst + r;
  let srcBase = a0 * p.nSrc;
  let step = p.nSrc;
  let dstStep = p.nDst;
#endif
  let pairs = p.nDst + 1u;
  var acc: array<f32, {{RUN}}>;
  for (var k = csr[r]; k < csr[r + 1u]; k++) {
    let w = bitcast<f32>(csr[pairs + 2u * k + 1u]);
    let at = srcBase + csr[pairs + 2u * k] * p.inner;
    for (var j = 0u; j < n; j++) {
      acc[j] += w * src[at + j * step];
    }
  }
  for (var j = 0u; j < n; j++) {
    dst[dstBase + j * dstStep] = acc[j];
  }
}
