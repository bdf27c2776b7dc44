// one_hot: out[i * C + c] = (index[i] == c), i32. An index outside [0, C) gives a zero row and is reported as a
// device-side assertion (index_assert.wgsl, binding 3) by the row's first invocation. Mapping: one invocation per
// output element, 2-D grid.
struct Params {
  n: u32,
  classes: u32,
  assertSlot: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<i32>;
@group(0) @binding(2) var<storage, read> index: array<{{I}}>;

@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = flat_workgroup(wid, nwg) * {{WG}}u + lid;
  if (i >= p.n) {
    return;
  }
  let row = i / p.classes;
  let c = i % p.classes;
  let j = i32(index[row]);
  if (c == 0u && (j < 0 || j >= i32(p.classes))) {
    report_bad_index(p.assertSlot, row, bitcast<u32>(index[row]));
  }
  out[i] = select(0, 1, j == i32(c));
}
