// Strided copy: for every coordinate c of p.shape (row-major index i),
//   out[p.outOffset + sum_k c_k * p.outStrides[k]] = x[p.inOffset + sum_k c_k * p.inStrides[k]].
// Strides may be 0 (expand) or negative (flip). Serves permute, expand, slice, flip, cat and pad for every dtype
// (data moves as raw 32-bit words). The host merges dims that are contiguous on both sides and drops size-1 dims, so
// p.shape has {{RANK}} dims; the index math below is unrolled for that rank with constant uniform indices (a dynamic
// loop over the rank ran ~3x slower on lavapipe). ELEM is u32, or vec4<u32> when the innermost dim is a contiguous
// run of whole vec4s on both sides (offsets, strides and that dim in units of 4 words).
// Mapping: one invocation per element (or vec4) of p.shape, {{WG}} invocations per workgroup, 2-D workgroup grid.
struct Params {
  n: u32,
  rank: u32,
  inOffset: i32,
  outOffset: i32,
  shape: array<vec4<u32>, 2>,
  inStrides: array<vec4<i32>, 2>,
  outStrides: array<vec4<i32>, 2>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<{{ELEM}}>;
@group(0) @binding(2) var<storage, read> x: array<{{ELEM}}>;

@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = flat_workgroup(wid, nwg) * {{WG}}u + lid;
  if (i >= p.n) {
    return;
  }
  var rem = i;
  var src = p.inOffset;
  var dst = p.outOffset;
{{OFFSETS}}
  out[u32(dst)] = x[u32(src)];
}
