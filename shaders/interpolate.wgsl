// Forward of interpolate (nearest, linear, bilinear, trilinear), f32. The host computes the coordinate maps with
// PyTorch's rules (src/kernels/interpolate.ts) into small per-axis tables, so this kernel only gathers.
// Bindings: out [B, OD, OH, OW] (rw), x [B, D, H, W], taps: per axis (x, y, z = D, H, W; an axis the input lacks is
//   1 -> 1), from entry p.tapOffset[axis] on, one vec4 per destination index o: (i0, i1, w0 bits, w1 bits).
//   out = sum over the 2 x 2 x 2 taps of the weight products times x; NEAREST: one tap per axis (i0, weight 1).
// Mapping: flat invocation index over a 1-D or 2-D grid of {{WG}}-wide workgroups (flat_workgroup); each invocation
//   computes a run of {{RUN}} consecutive outputs along W (total = B * OD * OH * ceil(OW / {{RUN}})), sharing the
//   row's index arithmetic and depth/height taps.
struct Params {
  total: u32,
  inSize: vec4<u32>,
  outSize: vec4<u32>,
  tapOffset: vec4<u32>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> taps: array<vec4<u32>>;

@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = flat_workgroup(wid, nwg) * {{WG}}u + lid;
  if (t >= p.total) {
    return;
  }
  let os = p.outSize.xyz;
  let is = p.inSize.xyz;
  let runs = (os.z + {{RUN}}u - 1u) / {{RUN}}u;
  let row = t / runs;
  let ow0 = (t % runs) * {{RUN}}u;
  let oh = row % os.y;
  let od = (row / os.y) % os.x;
  let base = (row / (os.x * os.y)) * is.x * is.y * is.z;
  let td = taps[p.tapOffset.x + od];
  let th = taps[p.tapOffset.y + oh];
  let r00 = base + (td.x * is.y + th.x) * is.z;
#if !NEAREST
  let wd = bitcast<vec2<f32>>(td.zw);
  let wh = bitcast<vec2<f32>>(th.zw);
  let r01 = base + (td.x * is.y + th.y) * is.z;
  let r10 = base + (td.y * is.y + th.x) * is.z;
  let r11 = base + (td.y * is.y + th.y) * is.z;
#endif
  for (var ow = ow0; ow < min(ow0 + {{RUN}}u, os.z); ow++) {
    let tw = taps[p.tapOffset.z + ow];
#if NEAREST
    out[row * os.z + ow] = x[r00 + tw.x];
#else
    let ww = bitcast<vec2<f32>>(tw.zw);
    // PyTorch's nesting: width innermost, then height, then depth
    let d0 = wh.x * (ww.x * x[r00 + tw.x] + ww.y * x[r00 + tw.y]) + wh.y * (ww.x * x[r01 + tw.x] + ww.y * x[r01 + tw.y]);
    let d1 = wh.x * (ww.x * x[r10 + tw.x] + ww.y * x[r10 + tw.y]) + wh.y * (ww.x * x[r11 + tw.x] + ww.y * x[r11 + tw.y]);
    out[row * os.z + ow] = wd.x * d0 + wd.y * d1;
#endif
  }
}
