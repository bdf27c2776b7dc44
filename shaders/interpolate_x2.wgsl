// Forward of PyTorch's linear x2 without alignCorners, one axis per pass (the host chains the doubled axes, last axis
// first, and checked their taps are these): out[2r] = 0.25 x[r - 1] + 0.75 x[r], out[2r + 1] = 0.75 x[r] +
// 0.25 x[r + 1], x's indices clamped to the axis. Separable passes write more than one fused kernel but each moves
// whole vec4s: a load or store site costs CPU adapters a loop over the lanes.
// Bindings: dst [outer, 2 nSrc, inner / 4] and src [outer, nSrc, inner / 4] of vec4s (a strided axis: inner, the
// element count after the axis, is a multiple of 4); LAST: dst [outer, 2 nSrc / 4] and src [outer, nSrc / 4] (the
// last axis, nSrc a multiple of 4).
// Mapping: one invocation per src vec4: it writes the two dst vec4s that vec4 feeds (rows 2r and 2r + 1; along the
// last axis outputs 8c .. 8c + 7), flat over a 1-D or 2-D grid of {{WG}}-wide workgroups.
struct Params {
  total: u32,
  inner: u32,
  nSrc: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
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
  let runs = p.nSrc / 4u;
  let c = t % runs;
  let v = src[t];
  // the neighbours of this vec4 along the row, clamped at its ends
  let left = select(src[max(t, 1u) - 1u].w, v.x, c == 0u);
  let right = select(src[min(t + 1u, p.total - 1u)].x, v.w, c + 1u == runs);
  let near = vec4<f32>(v.x, v.x, v.y, v.y);
  let far = vec4<f32>(left, v.y, v.x, v.z);
  let near2 = vec4<f32>(v.z, v.z, v.w, v.w);
  let far2 = vec4<f32>(v.y, v.w, v.z, right);
  dst[2u * t] = 0.75 * near + 0.25 * far;
  dst[2u * t + 1u] = 0.75 * near2 + 0.25 * far2;
#else
  let runs = p.inner / 4u;
  let c = t % runs;
  let r = (t / runs) % p.nSrc;
  let a = t / (runs * p.nSrc);
  let base = a * p.nSrc * runs + c;
  let v = src[t];
  let up = src[base + (max(r, 1u) - 1u) * runs];
  let down = src[base + min(r + 1u, p.nSrc - 1u) * runs];
  let o = (a * 2u * p.nSrc + 2u * r) * runs + c;
  dst[o] = 0.75 * v + 0.25 * up;
  dst[o + runs] = 0.75 * v + 0.25 * down;
#endif
}
