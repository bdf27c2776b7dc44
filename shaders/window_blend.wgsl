// Sliding-window blending (vg.inference.slidingWindowInference). A dedicated kernel because the composite
// (pad the weighted window to the volume, add) would allocate and sweep two full-volume temporaries per window.
// The volume grid is [N, C, D, H, W] (2-D inputs use D = 1); a window is the box
// [z0, z0 + rd) x [y0, y0 + rh) x [x0, x0 + rw) of batch item b.
// Default (accumulate one window): for every (c, z, y, x) of the window,
//   w = max(taper[z] * taper[rd + y] * taper[rd + rh + x], minWeight)   (MONAI's separable Gaussian, clamped)
//   out[b, c, z0 + z, y0 + y, x0 + x] += w * pred[predOffset + ((c * rd + z) * rh + y) * rw + x]
//   and, when addWeight != 0 (windows of batch item 0 only: the weight map is the same for every item), the c = 0
//   invocation adds w to wsum[z0 + z, y0 + y, x0 + x].
//   One dispatch per window: windows overlap, so the dispatch boundary orders the read-modify-writes (no atomics,
//   deterministic). Every invocation of one dispatch writes a distinct element.
// NORMALIZE: out[i] /= wsum[i % (D * H * W)] over the whole output (one invocation per element).
// EXTRACT (the inverse gather, cutting a window out of the input for the predictor):
//   win[predOffset + ((c * rd + z) * rh + y) * rw + x] = src[b, c, z0 + z, y0 + y, x0 + x]
//   (the generic strided copy costs twice as much: it walks 8 dims with a div/mod each).
// Bindings: 1 out (read_write) [N, C, D, H, W], 2 wsum (read_write) [D, H, W], 3 pred [B, C, rd, rh, rw],
//   4 taper [rd + rh + rw] (1-D Gaussian tables, or ones in constant mode). EXTRACT: 1 win (read_write)
//   [B, C, rd, rh, rw], 2 src [N, C, D, H, W]. NORMALIZE: bindings 1 and 2 only.
// Mapping: one invocation per element, 2-D workgroup grid (flat_workgroup).
struct Params {
  n: u32,
  channels: u32,
  batch: u32,
  addWeight: u32,
  // window extent (rd, rh, rw) and output grid (D, H, W); .w unused
  roi: vec4<u32>,
  grid: vec4<u32>,
  // window start (z0, y0, x0)
  start: vec4<u32>,
  predOffset: u32,
  minWeight: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
#if EXTRACT
@group(0) @binding(1) var<storage, read_write> win: array<f32>;
@group(0) @binding(2) var<storage, read> src: array<f32>;
#else
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read_write> wsum: array<f32>;
#if !NORMALIZE
@group(0) @binding(3) var<storage, read> pred: array<f32>;
@group(0) @binding(4) var<storage, read> taper: array<f32>;
#endif
#endif

@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = flat_workgroup(wid, nwg) * {{WG}}u + lid;
  if (i >= p.n) {
    return;
  }
#if NORMALIZE
  out[i] = out[i] / wsum[i % (p.grid.x * p.grid.y * p.grid.z)];
#else
  let x = i % p.roi.z;
  let y = (i / p.roi.z) % p.roi.y;
  let z = (i / (p.roi.z * p.roi.y)) % p.roi.x;
  let c = i / (p.roi.z * p.roi.y * p.roi.x);
  let s = ((p.start.x + z) * p.grid.y + p.start.y + y) * p.grid.z + p.start.z + x;
  let o = (p.batch * p.channels + c) * (p.grid.x * p.grid.y * p.grid.z) + s;
#if EXTRACT
  win[p.predOffset + i] = src[o];
#else
  // the product in MONAI's order, (g_d * g_h) * g_w in f32
  let w = max(taper[z] * taper[p.roi.x + y] * taper[p.roi.x + p.roi.y + x], p.minWeight);
  out[o] = out[o] + w * pred[p.predOffset + i];
  if (p.addWeight != 0u && c == 0u) {
    wsum[s] = wsum[s] + w;
  }
#endif
#endif
}
