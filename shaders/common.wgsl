// Prepended to every kernel. Large 1-D launches are split over a 2-D grid of workgroups
// (maxComputeWorkgroupsPerDimension is often 65535); this recovers the flat workgroup index.
fn flat_workgroup(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return wid.x + wid.y * nwg.x;
}

// Component k of a rank-8 shape or stride packed as two vec4 (uniform arrays need 16-byte elements).
fn dim_of(v: array<vec4<u32>, 2>, k: u32) -> u32 {
  return v[k / 4u][k % 4u];
}

fn sdim_of(v: array<vec4<i32>, 2>, k: u32) -> i32 {
  return v[k / 4u][k % 4u];
}

// NaN by its bit pattern, not v != v: WGSL lets compilers assume NaNs away in float comparisons.
fn is_nan_f32(v: f32) -> bool {
  return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}
