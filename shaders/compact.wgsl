// Stream compaction for maskedSelect and nonzero (src/kernels/indexing.ts). `ends` is the inclusive prefix sum of
// the 0/1 flags of the n elements, so element i is selected when ends[i] differs from ends[i − 1] (or from 0), and
// then goes to output slot ends[i] − 1: the selected elements keep their row-major order.
// Variants (uniform at binding 0, then):
//   SELECT    out ({{T}}, the selected values), x ({{T}}), ends
//   NONZERO   out (i32, [count, rank]: the coordinates of each selected element), ends
//   SCATTER   dx (f32, every element: its slot's gradient, or 0), g (f32, per slot), ends — maskedSelect's backward
// Mapping: one invocation per element, 2-D workgroup grid.
struct Params {
  n: u32,
  rank: u32,
  shape: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<uniform> p: Params;
#if SELECT
@group(0) @binding(1) var<storage, read_write> out: array<{{T}}>;
@group(0) @binding(2) var<storage, read> x: array<{{T}}>;
@group(0) @binding(3) var<storage, read> ends: array<i32>;
#endif
#if NONZERO
@group(0) @binding(1) var<storage, read_write> out: array<i32>;
@group(0) @binding(2) var<storage, read> ends: array<i32>;
#endif
#if SCATTER
@group(0) @binding(1) var<storage, read_write> dx: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read> ends: array<i32>;
#endif

@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = flat_workgroup(wid, nwg) * {{WG}}u + lid;
  if (i >= p.n) {
    return;
  }
  let before = select(0, ends[i - 1u], i > 0u);
  let selected = ends[i] != before;
  let slot = u32(before);
#if SELECT
  if (selected) {
    out[slot] = x[i];
  }
#endif
#if NONZERO
  if (selected) {
    var rem = i;
    for (var d = i32(p.rank) - 1; d >= 0; d--) {
      let size = dim_of(p.shape, u32(d));
      out[slot * p.rank + u32(d)] = i32(rem % size);
      rem = rem / size;
    }
  }
#endif
#if SCATTER
  dx[i] = select(0.0, g[slot], selected);
#endif
}
