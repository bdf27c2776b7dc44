// Dropout (philox() and unit() come from philox.wgsl, prepended with PHILOX_FUNCTIONS_ONLY):
// out[e] = x[e] * scale where u(e / group) >= drop, else 0. u(m) is element m of vg.rand(shape, { seed }) for the same
// key and offset (word m % 4 of the Philox block (m / 4, offset)), so a mask is a pure function of (seed, offset) and
// backward regenerates it rather than storing it. group = 1 for dropout; the size of one channel's slice for
// dropout2d / dropout3d (CHANNELS: one draw per channel).
// Mapping: one invocation per 4 consecutive elements, 2-D grid; with VEC4 (n and group divisible by 4, or group = 1)
// they move as one vec4 and share one Philox block (or, with CHANNELS, one draw).
struct Params {
  n: u32,
  seedLo: u32,
  seedHi: u32,
  offset: u32,
  group: u32,
  drop: f32,
  scale: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
#if VEC4
@group(0) @binding(1) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> x: array<vec4<f32>>;
#else
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
#endif

fn draw(m: u32) -> bool {
  let r = philox(vec4<u32>(m / 4u, p.offset, 0u, 0u), vec2<u32>(p.seedLo, p.seedHi));
  return unit(r[m % 4u]) >= p.drop;
}

@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = flat_workgroup(wid, nwg) * {{WG}}u + lid;
  let e0 = i * 4u;
  if (e0 >= p.n) {
    return;
  }
#if VEC4
#if CHANNELS
  let keep = vec4<bool>(draw(e0 / p.group));
#else
  let r = philox(vec4<u32>(i, p.offset, 0u, 0u), vec2<u32>(p.seedLo, p.seedHi));
  let keep = vec4<f32>(unit(r.x), unit(r.y), unit(r.z), unit(r.w)) >= vec4<f32>(p.drop);
#endif
  out[i] = select(vec4<f32>(0.0), x[i] * p.scale, keep);
#else
  for (var e = e0; e < min(e0 + 4u, p.n); e++) {
    out[e] = select(0.0, x[e] * p.scale, draw(e / p.group));
  }
#endif
}
