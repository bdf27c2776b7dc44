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
#if X2
// X2: the adjoint of PyTorch's linear x2 without alignCorners along a strided axis (inner a multiple of 4): dst
// [outer, nDst, inner / 4] and src [outer, nSrc = 2 nDst, inner / 4] of vec4s; one invocation per dst vec4:
// dst[a, r] = 0.25 src[a, 2r - 1] + 0.75 src[a, 2r] + 0.75 src[a, 2r + 1] + 0.25 src[a, 2r + 2], src rows clamped to
// [0, nSrc) (the host checked the axis' taps are these). Four loads per four outputs: a load site costs CPU adapters
// a loop over the lanes, and the table walk took six per output. X2 LAST: the same along the last axis (below).
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> src: array<vec4<f32>>;

@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = flat_workgroup(wid, nwg) * {{WG}}u + lid;
  if (t >= p.total) {
    return;
  }
#if LAST
  // along the last axis (inner = 1, nDst a multiple of 4): dst vec4 c of row a holds outputs 4c .. 4c + 3, which read
  // src 8c - 1 .. 8c + 8: src vec4s 2c and 2c + 1, and one value of each neighbour (clamped at the row's ends)
  let runs = p.nDst / 4u;
  let c = t % runs;
  let rb = (t / runs) * (p.nSrc / 4u);
  let v1 = src[rb + 2u * c];
  let v2 = src[rb + 2u * c + 1u];
  let left = select(src[rb + max(2u * c, 1u) - 1u].w, v1.x, c == 0u);
  let right = select(src[rb + min(2u * c + 2u, p.nSrc / 4u - 1u)].x, v2.w, c + 1u == runs);
  let near = vec4<f32>(v1.x + v1.y, v1.z + v1.w, v2.x + v2.y, v2.z + v2.w);
  let far = vec4<f32>(left + v1.z, v1.y + v2.x, v1.w + v2.z, v2.y + right);
  dst[t] = 0.75 * near + 0.25 * far;
#else
  let runs = p.inner / 4u;
  let c = t % runs;
  let r = (t / runs) % p.nDst;
  let a = t / (runs * p.nDst);
  let base = a * p.nSrc * runs + c;
  let last = p.nSrc - 1u;
  let f0 = src[base + (max(2u * r, 1u) - 1u) * runs];
  let f1 = src[base + 2u * r * runs];
  let f2 = src[base + (2u * r + 1u) * runs];
  let f3 = src[base + min(2u * r + 2u, last) * runs];
  dst[t] = 0.75 * (f1 + f2) + 0.25 * (f0 + f3);
#endif
}
#else
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
#endif
