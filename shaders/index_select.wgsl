// torch.index_select: out [outer, n, inner] = x [outer, dimSize, inner] with the rows along the middle dim picked
// by index [n]. Elements are {{T}}: scalars, or vec4s when inner is a multiple of 4 (p.inner then counts vec4s).
// An out-of-range index gives 0 and is reported as a device-side assertion (index_assert.wgsl, binding 4) at its
// position in index. Mapping: one invocation per output element, 2-D workgroup grid. Two integer divisions per
// element, where gather over a broadcast index pays two per dim (and a copy of the broadcast index).
struct Params {
  total: u32,
  n: u32,
  inner: u32,
  dimSize: u32,
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
  if (i >= p.total) {
    return;
  }
  let row = i / p.inner;
  let c = i - row * p.inner;
  let o = row / p.n;
  let k = row - o * p.n;
  let j = i32(index[k]);
  if (j < 0 || u32(j) >= p.dimSize) {
    report_bad_index(p.assertSlot, k, bitcast<u32>(index[k]));
    out[i] = {{T}}(0);
    return;
  }
  out[i] = x[(o * p.dimSize + u32(j)) * p.inner + c];
}
