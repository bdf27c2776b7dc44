// one_hot: out[i * C + c] = (index[i] == c), i32. Mapping: one invocation per output element, 2-D grid.
struct Params {
  n: u32,
  classes: u32,
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
  out[i] = select(0, 1, i32(index[i / p.classes]) == i32(i % p.classes));
}
