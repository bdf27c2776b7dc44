// checkNumerics (engine/numerics.ts): flags a tensor holding NaN or ±Infinity in the device-side assertion buffer.
// For an op's output, the op's call number p.seq is folded into asserts[p.base] by atomicMin (the earliest call to
// produce a non-finite value wins); for one of its inputs, bit p.seq of the bitmap from asserts[p.base + 1] is set
// (calls numbered p.calls and above are not tracked). Mapping: one invocation per element, 2-D workgroup grid.
struct Params {
  n: u32,
  seq: u32,
  input: u32,
  base: u32,
  calls: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> asserts: array<atomic<u32>>;

@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = flat_workgroup(wid, nwg) * {{WG}}u + lid;
  // by bit pattern: compilers may assume NaN and Infinity away in float comparisons
  if (i >= p.n || (bitcast<u32>(x[i]) & 0x7fffffffu) < 0x7f800000u) {
    return;
  }
  if (p.input == 0u) {
    // the load skips the atomic in the common case of a whole tensor of NaN after an earlier op already won
    if (atomicLoad(&asserts[p.base]) > p.seq) {
      atomicMin(&asserts[p.base], p.seq);
    }
  } else if (p.seq < p.calls) {
    atomicOr(&asserts[p.base + 1u + p.seq / 32u], 1u << (p.seq % 32u));
  }
}
