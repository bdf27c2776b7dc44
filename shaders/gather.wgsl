// torch.gather along one dim: out[c] = x[c with c[dim] replaced by index[c]] for every coordinate c of index.
// Layout: index and out share p.shape (contiguous); x is contiguous with strides p.xStrides.
// SELECT: torch.index_select instead: out [outer, n, inner] = x [outer, dimSize, inner] with the rows along the
// middle dim picked by index [n]; elements {{T}} are scalars, or vec4s when inner is a multiple of 4 (p.inner then
// counts vec4s). Two integer divisions per element, where gather over a broadcast index pays two per dim (and a
// copy of the broadcast index).
// An out-of-range index gives 0 and is reported as a device-side assertion (index_assert.wgsl, binding 4) at its
// position in index. Mapping: one invocation per output element, 2-D workgroup grid.
#if SELECT
struct Params {
  n: u32,
  inner: u32,
  dimSize: u32,
  assertSlot: u32,
  total: u32,
}
#else
struct Params {
  n: u32,
  rank: u32,
  dim: u32,
  dimSize: u32,
  shape: array<vec4<u32>, 2>,
  xStrides: array<vec4<u32>, 2>,
  assertSlot: u32,
}
#endif

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<{{T}}>;
@group(0) @binding(2) var<storage, read> x: array<{{T}}>;
@group(0) @binding(3) var<storage, read> index: array<{{I}}>;

@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = flat_workgroup(wid, nwg) * {{WG}}u + lid;
#if SELECT
  if (i >= p.total) {
    return;
  }
  let row = i / p.inner;
  let c = i - row * p.inner;
  let o = row / p.n;
  // k: the element's position in index
  let k = row - o * p.n;
#else
  if (i >= p.n) {
    return;
  }
  let k = i;
#endif
  let j = i32(index[k]);
  if (j < 0 || u32(j) >= p.dimSize) {
    report_bad_index(p.assertSlot, k, bitcast<u32>(index[k]));
    out[i] = {{T}}(0);
    return;
  }
#if SELECT
  out[i] = x[(o * p.dimSize + u32(j)) * p.inner + c];
#else
  var rem = i;
  var off = 0u;
  for (var d = i32(p.rank) - 1; d >= 0; d--) {
    let dk = u32(d);
    let sz = dim_of(p.shape, dk);
    var cd = rem % sz;
    rem = rem / sz;
    if (dk == p.dim) {
      cd = u32(j);
    }
    off += cd * dim_of(p.xStrides, dk);
  }
  out[i] = x[off];
#endif
}
