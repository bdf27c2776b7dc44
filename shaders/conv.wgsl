// Convolution as an implicit GEMM, one kernel for 1-D, 2-D and 3-D (1-D/2-D run as 3-D with size-1 leading
// spatial dims) and for both directions:
//   dst[n, g*R + r, q*dstStep + dstPhase] = sum_{c, taps j} A[g*R + r, (c, jd, jh, jw)] * src[n, g*C + c, q*qA + qB + j*tapStep]
// per dim, with the window geometry along W fixed at compile time (conv.ts generates the {{...}} blocks).
// A conv forward is one phase (dstStep 1, qA = stride, qB = -pad, tapStep = dilation, all taps). Its input
// gradient, and a transposed conv's forward, gather per output element through the transposed geometry: conv.ts
// splits the output by position modulo the stride (one phase each), and within a phase only the taps whose offset
// divides exactly take part, each at a fixed src offset. Each dst element is one invocation's sum: no atomics,
// so results are deterministic.
// A phase's reduction over kernel rows (c, jd, jh) is cut into slices that fit workgroup memory, one dispatch each,
// in order: the first writes acc + bias, the others add acc to dst. The last applies the fused activation
// (p.act = 1: v < 0 becomes v * p.slope, ReLU being slope 0), so a conv + bias + (Leaky)ReLU block writes its
// output once instead of running a second pass over it.
// Bindings: dst [N, dstC, D, H, W] (p.dst); src [N, srcC, sD, sH, sW] (p.src); a = the phase's weights as
// [G, rowBlocks, (c, jd, jh, jw), {{TM}} rows] (rows past R zero), one {{WT}} per tap; bias [G*R] (read when
// p.hasBias). vec4 uniforms hold (d, h, w, -).
// Mapping: workgroup (flat index) = column block + colBlocks * (group, block of {{TM}} rows). Invocation lid.x owns
// {{TN}} consecutive phase positions along W of one (n, qz, qy) line and all {{TM}} rows: accumulators a<row>_<q>,
// vec4s over voxels 4q .. 4q+3. A tap's {{TM}} weights reach every invocation in one of two ways. With SUBGROUPS
// (subgroups of 8 or more lanes), lane i of each subgroup loads row i (and i + 8) of the tap from a (an f32 array:
// packed as above, or for the forward the weights as stored) and subgroupBroadcast hands row m to all lanes; the
// whole reduction is one dispatch. Otherwise the workgroup first stages its slice of weights in workgroup memory, one
// {{WT}} per tap, and a tap's weights are one load. Per kernel row each invocation holds a window of src values in
// registers (x<i>: voxel t at tap 0 reads x<t*{{XS}}>), so every src value is loaded once per kernel row. The taps
// block is either a loop over the p.nk.z taps, each shifting the window by {{XT}} and loading the values that enter
// it, or (windows of up to 3 taps, conv.ts) the taps unrolled over a window of the whole kernel row, each
// accumulator taking all its taps in a row.
// Why this shape: on CPU adapters (llvmpipe) every load site is a loop over the SIMD lanes, far dearer than an
// fma, and each pipeline is compiled on first use; a barrier is a coroutine switch that saves every live value,
// so the only barrier comes before the accumulators exist. A 16x16 tile's accumulators do not fit the CPU's
// registers: taken accumulator by accumulator, each is loaded and stored once per kernel row, not once per tap.
// Loads inside a loop cost that much even when every lane reads the same address (llvmpipe cannot prove lane 0
// active there), so a tap's 16 weight loads cost more than its 128 fmas; the subgroup path makes them 2 loads and
// 16 lane broadcasts (register moves). A cached vec4 load costs about two scalar ones, so where rows are a multiple
// of 4 the tile's window positions load as vec4s (VEC4_WINDOW, binding 5: src viewed as vec4s) and rows store as
// vec4s (VEC4_STORE: dst itself as vec4s).
#if SUBGROUPS
enable subgroups;
#endif
struct Params {
  rows: u32,
  rowBlocks: u32,
  blocks: u32,
  colBlocks: u32,
  nCols: u32,
  wBlocks: u32,
  C: u32,
  srcC: u32,
  dstC: u32,
  aRow: u32,
  wGroup: u32,
  wBlock: u32,
  wM: u32,
  wOff: u32,
  wC: i32,
  wK: i32,
  u0: u32,
  units: u32,
  c0: u32,
  jd0: u32,
  jh0: u32,
  accumulate: u32,
  hasBias: u32,
  act: u32,
  slope: f32,
  src: vec4<u32>,
  dst: vec4<u32>,
  nq: vec4<u32>,
  dstStep: vec4<u32>,
  dstPhase: vec4<u32>,
  nk: vec4<u32>,
  qA: vec4<i32>,
  qB: vec4<i32>,
  tapStep: vec4<i32>,
}

@group(0) @binding(0) var<uniform> p: Params;
#if VEC4_STORE
// rows of a multiple of 4 along W, written 4 voxels at a time (conv.ts)
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<f32>>;
#else
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
#endif
@group(0) @binding(2) var<storage, read> src: array<f32>;
#if SUBGROUPS
@group(0) @binding(3) var<storage, read> a: array<f32>;
#else
@group(0) @binding(3) var<storage, read> a: array<{{WT}}>;
#endif
// without a bias (p.hasBias = 0) any buffer is bound here and never read
@group(0) @binding(4) var<storage, read> bias: array<f32>;
#if VEC4_WINDOW
// src again, as vec4s: the window's tile positions load four at a time (conv.ts, vec4WindowPad)
@group(0) @binding(5) var<storage, read> src4: array<vec4<f32>>;

fn ld4(i: u32, ok: bool) -> vec4<f32> {
  return select(vec4<f32>(0.0), src4[select(0u, i, ok)], ok);
}
#endif

const TM = {{TM}}u;
const THREADS = {{THREADS}}u;

#if !SUBGROUPS
var<workgroup> As: array<{{WT}}, {{AS_LEN}}>;
#endif

// One src value of the window: zero outside the volume (padding) or on a row that is out of range.
fn ld(rowOff: u32, pos: i32, rowOk: bool) -> f32 {
  let ok = rowOk && pos >= 0 && pos < i32(p.src.z);
  return select(0.0, src[select(0u, rowOff + u32(pos), ok)], ok);
}

#if SUBGROUPS
// Row r0 + lane + b of a tap (index i): zero past the conv's rows (the unpacked forward weights have no padding rows).
fn wload(i: u32, row: u32) -> f32 {
  let ok = row < p.rows;
  return select(0.0, a[select(0u, i, ok)], ok);
}

#endif
@compute @workgroup_size({{THREADS}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
#if SUBGROUPS
        @builtin(subgroup_invocation_id) sgid: u32,
#endif
        @builtin(local_invocation_id) lid: vec3<u32>) {
  let wg = flat_workgroup(wid, nwg);
  if (wg >= p.blocks) {
    return;
  }
  let colBlock = wg % p.colBlocks;
  let rb = wg / p.colBlocks;
  let grp = rb / p.rowBlocks;
  let r0 = (rb % p.rowBlocks) * TM;

  let col = colBlock * THREADS + lid.x;
  let colOk = col < p.nCols;
  let wb = col % p.wBlocks;
  var t = col / p.wBlocks;
  let qy = t % p.nq.y;
  t = t / p.nq.y;
  let qz = t % p.nq.x;
  let n = t / p.nq.x;
  let srcZ0 = i32(qz) * p.qA.x + p.qB.x;
  let srcY0 = i32(qy) * p.qA.y + p.qB.y;
  let srcW0 = i32(wb * {{TN}}u) * p.qA.z + p.qB.z;
  let srcBase = n * p.srcC + grp * p.C;

  let nkw = p.nk.z;
#if SUBGROUPS
  // this lane's row of each tap's block of TM (rows i and i + 8 for TM = 16). Weight (row, c, tap t) is at
  // grp * wGroup + row block * wBlock + row in block * wM + wOff + c * wC + t * wK, t = (jd * nk.y + jh) * nkw + jw:
  // a packed as above, the forward's weights as stored, or a transposed kernel flipped (wK = -1) as stored
  let lane = sgid & (min(TM, 8u) - 1u);
  let wBase = i32(grp * p.wGroup + (rb % p.rowBlocks) * p.wBlock + lane * p.wM + p.wOff);
#else
  // stage this slice's weights while no accumulator is live
  for (var j = lid.x; j < p.units * nkw; j += THREADS) {
    As[j] = a[rb * p.aRow + p.u0 * nkw + j];
  }
  workgroupBarrier();
#endif

{{ACC}}

  // kernel row (c, jd, jh) of the next unit
  var c = p.c0;
  var jd = p.jd0;
  var jh = p.jh0;
  for (var u = 0u; u < p.units; u++) {
    let iz = srcZ0 + i32(jd) * p.tapStep.x;
    let iy = srcY0 + i32(jh) * p.tapStep.y;
    let rowOk = colOk && iz >= 0 && iz < i32(p.src.x) && iy >= 0 && iy < i32(p.src.y);
    let rowOff = select(0u, (((srcBase + c) * p.src.x + u32(iz)) * p.src.y + u32(iy)) * p.src.z, rowOk);
{{WINDOW}}
#if SUBGROUPS
    let wRow = wBase + i32(c) * p.wC + i32((jd * p.nk.y + jh) * nkw) * p.wK;
#endif
{{TAPS}}
    jh++;
    if (jh == p.nk.y) {
      jh = 0u;
      jd++;
      if (jd == p.nk.x) {
        jd = 0u;
        c++;
      }
    }
  }

  if (!colOk) {
    return;
  }
  // one row per iteration, then the rows shift up: {{TN}} store sites instead of {{TM}}x{{TN}}
  let plane = p.dst.x * p.dst.y * p.dst.z;
  let q0 = wb * {{TN}}u;
  let o = (((n * p.dstC + grp * p.rows + r0) * p.dst.x + qz * p.dstStep.x + p.dstPhase.x) * p.dst.y
           + qy * p.dstStep.y + p.dstPhase.y) * p.dst.z + q0 * p.dstStep.z + p.dstPhase.z;
  let left = p.nq.z - q0;
  for (var i = 0u; i < TM; i++) {
    let r = r0 + i;
    if (r < p.rows) {
      let b = select(0.0, bias[select(0u, grp * p.rows + r, p.hasBias != 0u)], p.hasBias != 0u);
      let orow = o + i * plane;
      let acc = p.accumulate != 0u;
      let act = p.act != 0u;
{{STORE}}
    }
{{SHIFT}}
  }
}
