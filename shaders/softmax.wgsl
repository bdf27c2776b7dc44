// Softmax (or log-softmax with LOG) over the last dim of a contiguous [rows, L] tensor.
// ROW layout: one workgroup per row; {{WG}} invocations stride over it for the max, then for the sum of
// exp(x - max) (both tree-reduced in workgroup memory), then write. THREAD layout: one invocation per row.
struct Params {
  rows: u32,
  L: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;

var<workgroup> red: array<f32, {{WG}}>;

fn finish(v: f32, m: f32, s: f32) -> f32 {
#if LOG
  return v - m - log(s);
#else
  return exp(v - m) / s;
#endif
}

@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
#if ROW
  let row = flat_workgroup(wid, nwg);
  if (row >= p.rows) {
    return;
  }
  let base = row * p.L;
  var m = -3.4028234663852886e38;
  for (var j = lid; j < p.L; j += {{WG}}u) {
    m = max(m, x[base + j]);
  }
  red[lid] = m;
  workgroupBarrier();
  for (var s = {{WG}}u / 2u; s > 0u; s = s / 2u) {
    if (lid < s) {
      red[lid] = max(red[lid], red[lid + s]);
    }
    workgroupBarrier();
  }
  m = red[0];
  workgroupBarrier();
  var acc = 0.0;
  for (var j = lid; j < p.L; j += {{WG}}u) {
    acc += exp(x[base + j] - m);
  }
  red[lid] = acc;
  workgroupBarrier();
  for (var s = {{WG}}u / 2u; s > 0u; s = s / 2u) {
    if (lid < s) {
      red[lid] = red[lid] + red[lid + s];
    }
    workgroupBarrier();
  }
  let total = red[0];
  for (var j = lid; j < p.L; j += {{WG}}u) {
    out[base + j] = finish(x[base + j], m, total);
  }
#else
  let row = flat_workgroup(wid, nwg) * {{WG}}u + lid;
  if (row >= p.rows) {
    return;
  }
  let base = row * p.L;
  var m = -3.4028234663852886e38;
  for (var j = 0u; j < p.L; j++) {
    m = max(m, x[base + j]);
  }
  var total = 0.0;
  for (var j = 0u; j < p.L; j++) {
    total += exp(x[base + j] - m);
  }
  for (var j = 0u; j < p.L; j++) {
    out[base + j] = finish(x[base + j], m, total);
  }
#endif
}
