// Convolution weight gradient, one kernel for 1-D, 2-D and 3-D (run as 3-D with size-1 leading spatial dims):
//   partial[s, g*R + r, (c, kd, kh, kw)] = sum over the output voxels o of split s of
//                                          gy[n, g*R + r, o] * x[n, g*C + c, o*stride - pad + (kd, kh, kw)*dil]
// (the weight's own layout [G*R, C, Kd, Kh, Kw]). The batch and output voxels are cut into p.nSplit ranges; the
// FINISH entry then adds the partials of each weight in split order, so every result comes from the same
// additions in the same order: deterministic, no atomics.
// Bindings: partial [nSplit, yC, K]; x [N, xC, D, H, W] (p.x = D, H, W); gt = gy as [G, rowBlocks, N, Do, Ho, Wo]
// of {{GT}} ({{TM}} rows per voxel, rows past R zero; p.y = Do, Ho, Wo), or with SUBGROUPS gy as stored (below).
// FINISH bindings: out [total] = sum_s partial[s * total + i].
// PACK bindings: gt [G, rowBlocks, N, S] of {{GT}} from gy [N, yC, S] (S = p.y.x*p.y.y*p.y.z voxels; without
// subgroups conv.ts packs the forward's weights [1, G*R, C*kv] the same way); one invocation per element of gt
// (p.total of them).
// Mapping: workgroup (flat index) = column block + colBlocks * ((group, block of {{TM}} rows) + rowBlocksTotal * split
// group). With fewer kernel rows than invocations (small Cin: p.subs > 1, one column block), a workgroup's invocations
// take p.subs consecutive splits side by side (invocation i: kernel row i % p.lanes of split group * p.subs +
// i / p.lanes) instead of idling; p.nSplit counts the splits, p.wgSplits the split groups.
// Invocation lid.x owns {{KH}} kernel rows (c, kd, kh0 .. kh0 + {{KH}} - 1) and all {{TM}} rows: {{TM}}x{{KH}}x{{KW}}
// scalar accumulators a<row>_<kh>_<kw>. The split's voxels are walked as units (n, oz, oy, block of p.wb voxels
// along W); per voxel one load brings the gy values of all {{TM}} rows (gt). Along the unit each invocation holds,
// per kernel row, the x window its {{KW}} taps read in registers (tap kw reads x<kh>_<kw*{{DW}}>). The voxels block
// (conv.ts) walks a few voxels per step, each accumulator taking their fmas in a row (the tile's accumulators do not
// fit a CPU's registers: a spilled one is loaded and stored once per step), moves the window by the step's voxels
// times {{SW}} and loads only the values that enter; a unit's last voxels go one at a time.
// With SUBGROUPS (subgroups of 8 or more lanes; with p.subs splits only where each subgroup walks one of them),
// gt is gy itself, [N, yC, Do, Ho, Wo] (no PACK pass), and lane i loads row i (and i + 8) of the voxel's block,
// which subgroupBroadcast hands to every lane: loads in a loop cost llvmpipe a per-lane loop each even at one
// address.
// Why this shape: on CPU adapters (llvmpipe) every load site is a loop over the SIMD lanes, far dearer than an fma,
// and each pipeline is compiled on first use; a workgroup barrier is a coroutine switch that saves every live
// value (slow to compile with this many accumulators), so gy arrives row-blocked from the PACK entry instead of
// through workgroup memory. A cached vec4 load costs about two scalar ones: with VEC4 (rows of a multiple of 4,
// 4-voxel steps) a step's gy row and each kernel row's incoming x values are one vec4 each (bindings 4, 5).
#if SUBGROUPS
enable subgroups;
// the loops' bounds depend on the invocation's split, which is uniform per subgroup (above), not per workgroup
diagnostic(off, subgroup_uniformity);
#endif
struct Params {
  rows: u32,
  rowBlocks: u32,
  blocks: u32,
  colBlocks: u32,
  lanes: u32,
  khGroups: u32,
  C: u32,
  xC: u32,
  yC: u32,
  K: u32,
  units: u32,
  unitsPerSplit: u32,
  owBlocks: u32,
  wb: u32,
  total: u32,
  nSplit: u32,
  subs: u32,
  wgSplits: u32,
  N: u32,
  x: vec4<u32>,
  y: vec4<u32>,
  kern: vec4<u32>,
  stride: vec4<u32>,
  pad: vec4<i32>,
  dil: vec4<i32>,
}

@group(0) @binding(0) var<uniform> p: Params;

#if PACK
@group(0) @binding(1) var<storage, read_write> gt: array<{{GT}}>;
@group(0) @binding(2) var<storage, read> gy: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = flat_workgroup(wid, nwg) * 64u + lid.x;
  if (i >= p.total) {
    return;
  }
  let S = p.y.x * p.y.y * p.y.z;
  let s = i % S;
  let t = i / S;
  let n = t % p.N;
  let rb = t / p.N;
  let r0 = (rb % p.rowBlocks) * {{TM}}u;
  let base = (n * p.yC + rb / p.rowBlocks * p.rows) * S + s;
{{PACK}}
}
#else
@group(0) @binding(1) var<storage, read_write> partial: array<f32>;

#if FINISH
@group(0) @binding(2) var<storage, read> parts: array<f32>;

@compute @workgroup_size({{THREADS}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
  let i = flat_workgroup(wid, nwg) * {{THREADS}}u + lid.x;
  if (i >= p.total) {
    return;
  }
  var s = 0.0;
  for (var k = 0u; k < p.nSplit; k++) {
    s += parts[k * p.total + i];
  }
  partial[i] = s;
}
#else
@group(0) @binding(2) var<storage, read> x: array<f32>;
#if SUBGROUPS
@group(0) @binding(3) var<storage, read> gt: array<f32>;
#else
@group(0) @binding(3) var<storage, read> gt: array<{{GT}}>;
#endif

const TM = {{TM}}u;
const THREADS = {{THREADS}}u;

#if SUBGROUPS
// gy of row `row` (rows past the conv's are zero) at index i
fn gload(i: u32, row: u32) -> f32 {
  let ok = row < p.rows;
  return select(0.0, gt[select(0u, i, ok)], ok);
}

#endif
#if VEC4
// x and gy again as vec4s (conv.ts: rows of a multiple of 4 along W, stride and dilation 1 there, 4-voxel steps)
@group(0) @binding(4) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> gt4: array<vec4<f32>>;

// gy of row `row` at 4 consecutive voxels, vec4 index i
fn gload4(i: u32, row: u32) -> vec4<f32> {
  let ok = row < p.rows;
  return select(vec4<f32>(0.0), gt4[select(0u, i, ok)], ok);
}

// x at positions pos .. pos + 3 of the row at rowOff (pos a multiple of 4): zero outside the row (padding)
fn ldx4(rowOff: u32, pos: i32, rowOk: bool) -> vec4<f32> {
  let ok = rowOk && pos >= 0 && pos < i32(p.x.z);
  return select(vec4<f32>(0.0), x4[select(0u, (rowOff + u32(pos)) / 4u, ok)], ok);
}

#endif
// One x value of a window: zero outside the volume (padding) or on a row that is out of range.
fn ld(rowOff: u32, pos: i32, rowOk: bool) -> f32 {
  let ok = rowOk && pos >= 0 && pos < i32(p.x.z);
  return select(0.0, x[select(0u, rowOff + u32(pos), ok)], ok);
}

@compute @workgroup_size({{THREADS}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
#if SUBGROUPS
        @builtin(subgroup_invocation_id) sgid: u32,
#endif
        @builtin(local_invocation_id) lid: vec3<u32>) {
  let wg = flat_workgroup(wid, nwg);
  if (wg >= p.blocks * p.wgSplits) {
    return;
  }
  let colBlock = wg % p.colBlocks;
  let rest = wg / p.colBlocks;
  let rowBlocksTotal = p.yC / p.rows * p.rowBlocks;
  let rb = rest % rowBlocksTotal;
  let grp = rb / p.rowBlocks;
  let r0 = (rb % p.rowBlocks) * TM;

  // this invocation's kernel rows: channel c, tap kd, taps kh0 .. kh0 + {{KH}} - 1, of split `split`
  let lane = colBlock * THREADS + lid.x;
  let sub = lane / p.lanes;
#if SUBGROUPS
  // p.subs = 1: every invocation walks the workgroup's split (those past the kernel rows add nothing); p.subs > 1
  // only where p.lanes is a multiple of the largest subgroup, so that each subgroup walks one split
  let split = select(rest / rowBlocksTotal, rest / rowBlocksTotal * p.subs + sub, p.subs > 1u);
  let gLane = sgid & (min(TM, 8u) - 1u);
  let gRow = r0 + gLane;
  let gS = p.y.x * p.y.y * p.y.z;
#else
  let split = rest / rowBlocksTotal * p.subs + sub;
#endif
  let col = lane % p.lanes;
  let colOk = sub < p.subs && split < p.nSplit;
  let kh0 = (col % p.khGroups) * {{KH}}u;
  let kd = (col / p.khGroups) % p.kern.x;
  let c = col / (p.khGroups * p.kern.x);
  let chan = grp * p.C + c;

{{ACC}}

  let u0 = split * p.unitsPerSplit;
  let u1 = min(p.units, u0 + p.unitsPerSplit);
  // unit u = ((n * Do + oz) * Ho + oy) * owBlocks + owb, advanced incrementally
  var owb = u0 % p.owBlocks;
  var t = u0 / p.owBlocks;
  var oy = t % p.y.y;
  t = t / p.y.y;
  var oz = t % p.y.x;
  var n = t / p.y.x;
  for (var u = u0; u < u1; u++) {
    let ow0 = owb * p.wb;
    let vb = min(p.wb, p.y.z - ow0);
#if SUBGROUPS
    let gBase = (n * p.yC + grp * p.rows + gRow) * gS + (oz * p.y.y + oy) * p.y.z + ow0;
#else
    let gBase = (((rb * p.N + n) * p.y.x + oz) * p.y.y + oy) * p.y.z + ow0;
#endif
    let iz = i32(oz * p.stride.x) - p.pad.x + i32(kd) * p.dil.x;
    let zOk = colOk && iz >= 0 && iz < i32(p.x.x);
    let zOff = ((n * p.xC + chan) * p.x.x + u32(iz)) * p.x.y;
{{ROWS}}
    let w0 = i32(ow0 * p.stride.z) - p.pad.z;
{{VOXELS}}
    owb++;
    if (owb == p.owBlocks) {
      owb = 0u;
      oy++;
      if (oy == p.y.y) {
        oy = 0u;
        oz++;
        if (oz == p.y.x) {
          oz = 0u;
          n++;
        }
      }
    }
  }

  if (!colOk) {
    return;
  }
  // one row per iteration, then the rows shift up: {{KH}}x{{KW}} store sites instead of {{TM}}x{{KH}}x{{KW}}
  let o = (split * p.yC + grp * p.rows + r0) * p.K + ((c * p.kern.x + kd) * p.kern.y + kh0) * p.kern.z;
  for (var i = 0u; i < TM; i++) {
    if (r0 + i < p.rows) {
      let orow = o + i * p.K;
{{STORE}}
    }
{{SHIFT}}
  }
}
#endif
#endif
