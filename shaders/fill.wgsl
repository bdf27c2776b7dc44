// Fill: out[i] = value (bit pattern), or out[i] = start + i * step (ARANGE_FLOAT; ARANGE_INT computes in i32).
// Mapping: one invocation per element, 2-D workgroup grid.
struct Params {
  n: u32,
  bits: u32,
  start: f32,
  step: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<{{T}}>;

@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = flat_workgroup(wid, nwg) * {{WG}}u + lid;
  if (i >= p.n) {
    return;
  }
#if ARANGE_FLOAT
  out[i] = p.start + f32(i) * p.step;
#else
#if ARANGE_INT
  out[i] = {{T}}(i32(p.start) + i32(i) * i32(p.step));
#else
  out[i] = bitcast<{{T}}>(p.bits);
#endif
#endif
}
