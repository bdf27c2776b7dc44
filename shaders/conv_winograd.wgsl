// 2-D 3x3 convolution, stride 1, dilation 1, one group, by Winograd's minimal filtering F(2x2, 3x3): each 2x2 output
// tile is A^T [ sum_c (G g_c G^T) .* (B^T d_c B) ] A with d_c the 4x4 input patch of channel c, so a tile takes
// 16 multiplies per (output channel, input channel) instead of 36 (2.25x fewer), plus adds in the transforms:
//   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]   G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1]   A^T = [1 1 1 0; 0 1 -1 -1]
// conv.ts generates the unrolled blocks ({{...}}) for {{TM}} output channels per invocation.
// Main entry bindings: dst [N, dstC, Ho, Wo] (p.Ho, p.Wo); src [N, srcC, H, W] (p.H, p.W); u = the transformed
// weights as [rowBlocks, srcC, 16 points] of {{WT}} ({{TM}} output channels each, channels past p.rows zero);
// bias [dstC] (read when p.hasBias).
// Mapping: workgroup (flat index) = column block + colBlocks * row block. Invocation lid.x owns one 2x2 output tile
// (n, ty, tx) and the block's {{TM}} output channels: accumulators m<point>_<q>, vec4s over channels 4q .. 4q+3
// (16 points x {{TM}} channels). The workgroup first stages its channel slice's transformed weights in workgroup
// memory (one {{WT}} per (channel, point), so a point's weights are one load); channel slices past workgroup memory
// are separate dispatches, the first writing bias + result, the others adding to dst, the last applying the fused
// activation (p.act: v < 0 becomes v * p.slope), as in shaders/conv.wgsl.
// Why this shape: on CPU adapters (llvmpipe) loads are per-lane loops and a barrier saves every live value, so the
// only barrier comes before the accumulators exist and each input value is loaded once per tile and channel.
// TRANSFORM entry bindings: u (as above, read_write) from w; one invocation per (output channel, input channel).
// p.flip = 1 reads w as the weights of the conv's input gradient: w [srcC, dstC, 3, 3] transposed and rotated by 180
// degrees (then this kernel computes the input gradient of a stride-1 conv with padding 2 - p).
struct Params {
  rows: u32,
  rowBlocks: u32,
  blocks: u32,
  colBlocks: u32,
  nCols: u32,
  tilesH: u32,
  tilesW: u32,
  C: u32,
  c0: u32,
  srcC: u32,
  dstC: u32,
  H: u32,
  W: u32,
  Ho: u32,
  Wo: u32,
  padH: i32,
  padW: i32,
  accumulate: u32,
  hasBias: u32,
  act: u32,
  slope: f32,
  flip: u32,
  total: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

const TM = {{TM}}u;

#if TRANSFORM
@group(0) @binding(1) var<storage, read_write> u: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;

// g[i][j] of output channel r, input channel c (stored conv weights, or the input gradient's when p.flip = 1)
fn tap(r: u32, c: u32, i: u32, j: u32) -> f32 {
  if (p.flip != 0u) {
    return w[((c * p.dstC + r) * 3u + 2u - i) * 3u + 2u - j];
  }
  return w[((r * p.srcC + c) * 3u + i) * 3u + j];
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = flat_workgroup(wid, nwg) * 64u + lid.x;
  if (i >= p.total) {
    return;
  }
  let c = i % p.srcC;
  let r = i / p.srcC;
  // G g: 4x3, then (G g) G^T: 4x4
  var gg: array<array<f32, 3>, 4>;
  for (var j = 0u; j < 3u; j++) {
    let a = tap(r, c, 0u, j);
    let b = tap(r, c, 1u, j);
    let d = tap(r, c, 2u, j);
    gg[0][j] = a;
    gg[1][j] = 0.5 * (a + b + d);
    gg[2][j] = 0.5 * (a - b + d);
    gg[3][j] = d;
  }
  let base = ((r / TM) * p.srcC + c) * 16u * TM + r % TM;
  for (var k = 0u; k < 4u; k++) {
    let a = gg[k][0];
    let b = gg[k][1];
    let d = gg[k][2];
    u[base + (k * 4u + 0u) * TM] = a;
    u[base + (k * 4u + 1u) * TM] = 0.5 * (a + b + d);
    u[base + (k * 4u + 2u) * TM] = 0.5 * (a - b + d);
    u[base + (k * 4u + 3u) * TM] = d;
  }
}
#else
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<storage, read> src: array<f32>;
@group(0) @binding(3) var<storage, read> u: array<{{WT}}>;
// without a bias (p.hasBias = 0) any buffer is bound here and never read
@group(0) @binding(4) var<storage, read> bias: array<f32>;

const THREADS = {{THREADS}}u;

var<workgroup> Us: array<{{WT}}, {{US_LEN}}>;

// One input value of the patch: zero outside the image (padding) or for an invocation past the last tile.
fn ld(plane: u32, y: i32, x: i32, ok: bool) -> f32 {
  let inside = ok && y >= 0 && y < i32(p.H) && x >= 0 && x < i32(p.W);
  return select(0.0, src[select(0u, plane + u32(y) * p.W + u32(x), inside)], inside);
}

@compute @workgroup_size({{THREADS}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
  let wg = flat_workgroup(wid, nwg);
  if (wg >= p.blocks) {
    return;
  }
  let colBlock = wg % p.colBlocks;
  let rb = wg / p.colBlocks;
  let r0 = rb * TM;
  let col = colBlock * THREADS + lid.x;
  let colOk = col < p.nCols;
  let tx = col % p.tilesW;
  var t = col / p.tilesW;
  let ty = t % p.tilesH;
  let n = t / p.tilesH;
  let y0 = i32(ty * 2u) - p.padH;
  let x0 = i32(tx * 2u) - p.padW;

  // stage this slice's transformed weights while no accumulator is live
  for (var j = lid.x; j < p.C * 16u; j += THREADS) {
    Us[j] = u[(rb * p.srcC + p.c0) * 16u + j];
  }
  workgroupBarrier();

{{ACC}}

  for (var c = 0u; c < p.C; c++) {
    let plane = (n * p.srcC + p.c0 + c) * p.H * p.W;
{{PATCH}}
    let at = c * 16u;
{{POINTS}}
  }

  if (!colOk) {
    return;
  }
  let acc = p.accumulate != 0u;
  let act = p.act != 0u;
  let oy = ty * 2u;
  let ox = tx * 2u;
  let okY = oy + 1u < p.Ho;
  let okX = ox + 1u < p.Wo;
{{OUTPUT}}
}

#endif
