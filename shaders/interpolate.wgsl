// Forward of interpolate (nearest, linear, bilinear, trilinear), f32. The host computes the coordinate maps with
// PyTorch's rules (src/kernels/interpolate.ts) into small per-axis tables, so this kernel only gathers.
// Bindings: out [B, OD, OH, OW] (rw), x [B, D, H, W], taps: per axis (x, y, z = D, H, W; an axis the input lacks is
//   one of size 1), from entry p.tapOffset[axis] on, one vec4 per destination index o: (i0, i1, w0 bits, w1 bits).
//   out = sum over the 2 x 2 x 2 taps of the weight products times x; NEAREST: one tap per axis (i0, weight 1).
// Mapping (generic): flat invocation index over a 1-D or 2-D grid of {{WG}}-wide workgroups (flat_workgroup); each
//   invocation computes a run of {{RUN}} consecutive outputs along W (total = B * OD * OH * ceil(OW / {{RUN}})),
//   sharing the row's index arithmetic and depth/height taps.
// X2 (linear modes; H and W, and D with DOUBLE_D, else D copied, upsampled x2 with taps next to the output's half
//   position: output o along a doubled axis reads input taps i0, i1 within {o/2 - 1, o/2, o/2 + 1}, as PyTorch's x2
//   maps do with align_corners false and true; src/kernels/interpolate.ts checks the tables before it picks this
//   entry). The generic entry loads 8 inputs per output; here an invocation loads the 4 x 3 x 3 inputs around a
//   block of 4 (W) x 2 (H) x 2 (D) outputs once: 2.25 loads per output.
// Arithmetic: W first (per input row, each output column w0 x[i0] + w1 x[i1], as a dot product with a weight vector
//   that is zero off the two taps), then H, then D, as PyTorch nests them; the extra zero-weight terms add exact zeros,
//   so results match the generic entry to rounding of its fused multiply-adds.
// X2 mapping: flat invocation index over a 1-D or 2-D grid of {{WG}}-wide workgroups (flat_workgroup): invocation t
//   owns input columns 2 wb, 2 wb + 1 (output columns 4 wb .. 4 wb + 3), input row h (output rows 2h, 2h + 1) and input
//   plane d (output planes 2d, 2d + 1; without DOUBLE_D output plane d alone) of batch row b: t = ((b * dBlocks + d) *
//   H + h) * wBlocks + wb, total = B * dBlocks * H * ceil(W / 2).
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

#if X2
// Weights of the three inputs first - 1, first, first + 1 for the output at destination index o along one axis.
fn weights3(entry: u32, first: i32) -> vec3<f32> {
  let t = taps[entry];
  let w = bitcast<vec2<f32>>(t.zw);
  let k = vec3<i32>(0, 1, 2);
  return select(vec3<f32>(0.0), vec3<f32>(w.x), k == vec3<i32>(i32(t.x) - first + 1)) +
    select(vec3<f32>(0.0), vec3<f32>(w.y), k == vec3<i32>(i32(t.y) - first + 1));
}

// Weights of the four inputs 2 wb - 1 .. 2 wb + 2 for output column o.
fn weights4(entry: u32, first: i32) -> vec4<f32> {
  let t = taps[entry];
  let w = bitcast<vec2<f32>>(t.zw);
  let k = vec4<i32>(0, 1, 2, 3);
  return select(vec4<f32>(0.0), vec4<f32>(w.x), k == vec4<i32>(i32(t.x) - first + 1)) +
    select(vec4<f32>(0.0), vec4<f32>(w.y), k == vec4<i32>(i32(t.y) - first + 1));
}

fn store_row(at: u32, v: vec4<f32>, n: u32) {
  for (var c = 0u; c < n; c++) {
    out[at + c] = v[c];
  }
}

@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = flat_workgroup(wid, nwg) * {{WG}}u + lid;
  if (t >= p.total) {
    return;
  }
  let is = p.inSize.xyz;
  let os = p.outSize.xyz;
  let wBlocks = (is.z + 1u) / 2u;
#if DOUBLE_D
  let dBlocks = is.x;
#else
  let dBlocks = os.x;
#endif
  let wb = t % wBlocks;
  let h = (t / wBlocks) % is.y;
  let d = (t / (wBlocks * is.y)) % dBlocks;
  let b = t / (wBlocks * is.y * dBlocks);

  // W: the 4 input columns (clamped at the borders) and each output column's weights on them
  let j = i32(2u * wb);
  let lastW = i32(is.z) - 1;
  let cols = vec4<u32>(clamp(vec4<i32>(j - 1, j, j + 1, j + 2), vec4<i32>(0), vec4<i32>(lastW)));
  let ow0 = 4u * wb;
  let nw = min(4u, os.z - ow0);
  let lastOw = os.z - 1u;
  let m0 = weights4(p.tapOffset.z + ow0, j);
  let m1 = weights4(p.tapOffset.z + min(ow0 + 1u, lastOw), j);
  let m2 = weights4(p.tapOffset.z + min(ow0 + 2u, lastOw), j);
  let m3 = weights4(p.tapOffset.z + min(ow0 + 3u, lastOw), j);
  // H: output rows 2h, 2h + 1 on input rows h - 1, h, h + 1
  let wh0 = weights3(p.tapOffset.y + 2u * h, i32(h));
  let wh1 = weights3(p.tapOffset.y + 2u * h + 1u, i32(h));
#if DOUBLE_D
  let wd0 = weights3(p.tapOffset.x + 2u * d, i32(d));
  let wd1 = weights3(p.tapOffset.x + 2u * d + 1u, i32(d));
  let planes = 3u;
#else
  let planes = 1u;
#endif

  // acc<od><oh>: the 4 output columns of output plane 2d + od (or d), row 2h + oh
  var acc00 = vec4<f32>(0.0);
  var acc01 = vec4<f32>(0.0);
#if DOUBLE_D
  var acc10 = vec4<f32>(0.0);
  var acc11 = vec4<f32>(0.0);
#endif
  for (var kd = 0u; kd < planes; kd++) {
#if DOUBLE_D
    let dIn = u32(clamp(i32(d + kd) - 1, 0, i32(is.x) - 1));
#else
    let dIn = d;
#endif
    var h0 = vec4<f32>(0.0);
    var h1 = vec4<f32>(0.0);
    for (var kh = 0u; kh < 3u; kh++) {
      let hIn = u32(clamp(i32(h + kh) - 1, 0, i32(is.y) - 1));
      let row = ((b * is.x + dIn) * is.y + hIn) * is.z;
      let xs = vec4<f32>(x[row + cols.x], x[row + cols.y], x[row + cols.z], x[row + cols.w]);
      let r = vec4<f32>(dot(m0, xs), dot(m1, xs), dot(m2, xs), dot(m3, xs));
      h0 += wh0[kh] * r;
      h1 += wh1[kh] * r;
    }
#if DOUBLE_D
    acc00 += wd0[kd] * h0;
    acc01 += wd0[kd] * h1;
    acc10 += wd1[kd] * h0;
    acc11 += wd1[kd] * h1;
#else
    acc00 = h0;
    acc01 = h1;
#endif
  }
#if DOUBLE_D
  let od = 2u * d;
#else
  let od = d;
#endif
  let oh = 2u * h;
  store_row(((b * os.x + od) * os.y + oh) * os.z + ow0, acc00, nw);
  store_row(((b * os.x + od) * os.y + oh + 1u) * os.z + ow0, acc01, nw);
#if DOUBLE_D
  store_row(((b * os.x + od + 1u) * os.y + oh) * os.z + ow0, acc10, nw);
  store_row(((b * os.x + od + 1u) * os.y + oh + 1u) * os.z + ow0, acc11, nw);
#endif
}
#else
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
#endif
