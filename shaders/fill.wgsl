// Fill: out[i] = value (bit pattern), or out[i] = start + i * step: ARANGE_FLOAT in f32, ARANGE_INT exactly in
// 32-bit wrapping integer arithmetic on the two's-complement bits (so i32 and u32 share it; f32 uniforms would
// round integers above 2^24).
// Mapping: one invocation per element, 2-D workgroup grid; value fills one per 4 elements (p.n counts them), as a
// vec4 (VEC4, a multiple of 4 elements) or four guarded stores (QUAD, any count): an invocation's fixed cost (its
// index, its bounds check) is most of a one-store kernel's on CPU adapters.
struct Params {
  n: u32,
  bits: u32,
  start: f32,
  step: f32,
  istart: u32,
  istep: u32,
  // QUAD: the element count (p.n counts invocations)
  total: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
#if VEC4
@group(0) @binding(1) var<storage, read_write> out: array<vec4<{{T}}>>;
#else
@group(0) @binding(1) var<storage, read_write> out: array<{{T}}>;
#endif

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
  out[i] = {{T}}(p.istart + i * p.istep);
#else
#if VEC4
  out[i] = vec4<{{T}}>(bitcast<{{T}}>(p.bits));
#else
#if QUAD
  for (var k = 0u; k < 4u; k++) {
    if (4u * i + k < p.total) {
      out[4u * i + k] = bitcast<{{T}}>(p.bits);
    }
  }
#else
  out[i] = bitcast<{{T}}>(p.bits);
#endif
#endif
#endif
#endif
}
