// Range check of an index tensor with no kernel of its own to do it (nllLoss's targets): every value outside
// [p.lo, p.hi), other than p.ignore, is reported as a device-side assertion (index_assert.wgsl, binding 2).
// Mapping: one invocation per index element, 2-D workgroup grid.
struct Params {
  n: u32,
  lo: i32,
  hi: i32,
  ignore: i32,
  assertSlot: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> index: array<{{I}}>;

@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = flat_workgroup(wid, nwg) * {{WG}}u + lid;
  if (i >= p.n) {
    return;
  }
  let v = i32(index[i]);
  if ((v < p.lo || v >= p.hi) && v != p.ignore) {
    report_bad_index(p.assertSlot, i, bitcast<u32>(index[i]));
  }
}
