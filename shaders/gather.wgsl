// torch.gather along one dim: out[c] = x[c with c[dim] replaced by index[c]] for every coordinate c of index.
// Layout: index and out share p.shape (contiguous); x is contiguous with strides p.xStrides. An out-of-range index
// gives 0 and is reported as a device-side assertion (index_assert.wgsl, binding 4). Mapping: one invocation per output element, 2-D workgroup grid.
struct Params {
  n: u32,
  rank: u32,
  dim: u32,
  dimSize: u32,
  shape: array<vec4<u32>, 2>,
  xStrides: array<vec4<u32>, 2>,
  assertSlot: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<{{T}}>;
@group(0) @binding(2) var<storage, read> x: array<{{T}}>;
@group(0) @binding(3) var<storage, read> index: array<{{I}}>;

@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = flat_workgroup(wid, nwg) * {{WG}}u + lid;
  if (i >= p.n) {
    return;
  }
  let j = i32(index[i]);
  if (j < 0 || u32(j) >= p.dimSize) {
    report_bad_index(p.assertSlot, i, bitcast<u32>(index[i]));
    out[i] = {{T}}(0);
    return;
  }
  var rem = i;
  var off = 0u;
  for (var d = i32(p.rank) - 1; d >= 0; d--) {
    let k = u32(d);
    let sz = dim_of(p.shape, k);
    var c = rem % sz;
    rem = rem / sz;
    if (k == p.dim) {
      c = u32(j);
    }
    off += c * dim_of(p.xStrides, k);
  }
  out[i] = x[off];
}
