// The reduction of the normalisation layers over x read as [P, C, S] (contiguous; element e = (p * C + c) * S + s);
// merge(), the index walk and the element type V come from norm_common.wgsl. With VEC4 every index below counts
// vec4s (S, chunk, qS, affDiv: element counts / 4), with one affine channel per vec4 or, with AFF_VEC, four.
// Default: Welford statistics of x, accumulated as (count, mean, M2) and merged pairwise (Chan et al.), so a variance
// never comes from E[x^2] - E[x]^2, which loses every digit when |mean| >> std.
// GRAD: the gradient sums (sum gw, sum gw * xhat) with xhat = (x - mean[q]) * inverseSqrt(var[q] + eps), q the
// statistics group of e ((e / qS) % qQ), and gw = g, or g * weight[ch] with WEIGHT, ch = (e / affDiv) % affMod
// walked along each lane's elements (stride tpr: cStepQ = tpr / affDiv, cStepR = tpr % affDiv).
// Layouts (one partial per unit, vec4: (count, mean, M2, 0) or (sum gw, sum gw xhat, 0, 0)):
//  ROWS (long rows): unit u = r * K + k is chunk k (elements [k * chunk, k * chunk + chunk) of the row) of row
//    r = p * C + c. The {{WG}} invocations form {{WG}} / tpr slots of tpr lanes (tpr a power of two); slot s of
//    workgroup w takes unit w * slots + s; its lanes stride over the chunk (adjacent lanes, adjacent elements), then
//    tree-merge in workgroup memory. A row lies inside one statistics group, so q is fixed per unit.
//    FUSED (P = 1, K = 1: a unit is a whole statistics group, q = r) finishes the group in the same workgroup:
//    statistics: writes mean[r], var[r] (biased) and y = (x - mean) * inverseSqrt(var + eps) * weight[ch] + bias[ch];
//    GRAD: writes dx = rstd * (gw - (A + xhat * B) * invM) with A, B the row's two sums and invM = 1 / (row length).
//  COLS (short rows, many p): invocation i = kp * J + j (J = C * S) reduces the elements p * J + j for p in
//    [kp * pc, kp * pc + pc) ∩ [0, P); the statistics group steps by qStep = J / qS per p (mod qQ). GRAD may read
//    vec4s (VEC4: four columns of one group), keeping one partial per column: part[4 i + component].
// Bindings: x; GRAD: g, smean, svar; weight and bias (WEIGHT, BIAS) from norm_common.wgsl; part, or FUSED: out (y or
// dx) and, for statistics, omean and ovar.
struct Params {
  P: u32,
  C: u32,
  S: u32,
  K: u32,
  chunk: u32,
  tpr: u32,
  units: u32,
  J: u32,
  pc: u32,
  qS: u32,
  qQ: u32,
  qStep: u32,
  affDiv: u32,
  affMod: u32,
  cStepQ: u32,
  cStepR: u32,
  eps: f32,
  invM: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<V>;
#if GRAD
@group(0) @binding(2) var<storage, read> g: array<V>;
@group(0) @binding(3) var<storage, read> smean: array<f32>;
@group(0) @binding(4) var<storage, read> svar: array<f32>;
#endif
#if FUSED
@group(0) @binding(7) var<storage, read_write> out: array<V>;
#if !GRAD
@group(0) @binding(8) var<storage, read_write> omean: array<f32>;
@group(0) @binding(9) var<storage, read_write> ovar: array<f32>;
#endif
#else
@group(0) @binding(7) var<storage, read_write> part: array<vec4<f32>>;
#endif

// One element (or vec4) added to a partial: GRAD with its weight, group mean and rstd; else a Welford step
// (for a vec4, a merge with the vec4's own statistics).
fn take(acc: vec4<f32>, e: u32, w: V, m: f32, rs: f32) -> vec4<f32> {
  let v = x[e];
#if GRAD
  let gw = g[e] * w;
  return acc + vec4<f32>(hsum(gw), hdot(gw, (v - m) * rs), 0.0, 0.0);
#else
#if VEC4
  let m4 = hsum(v) * 0.25;
  let d = v - m4;
  return merge(acc, vec4<f32>(4.0, m4, dot(d, d), 0.0));
#else
  let n = acc.x + 1.0;
  let d = v - acc.y;
  let mean = acc.y + d / n;
  return vec4<f32>(n, mean, acc.z + d * (v - mean), 0.0);
#endif
#endif
}

fn lane_step(w: Walk) -> Walk {
  return walk_step(w, p.cStepQ, p.cStepR, p.affDiv, p.affMod);
}

#if ROWS
var<workgroup> red: array<vec4<f32>, {{WG}}>;
#endif

@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
#if ROWS
  let slots = {{WG}}u / p.tpr;
  let slot = lid / p.tpr;
  let lane = lid % p.tpr;
  let u = flat_workgroup(wid, nwg) * slots + slot;
  let live = slot < slots && u < p.units;
  let r = u / p.K;
  let k = u % p.K;
  let rowStart = r * p.S;
  let start = rowStart + k * p.chunk;
  let end = rowStart + min(k * p.chunk + p.chunk, p.S);
  var m = 0.0;
  var rs = 0.0;
  var acc = vec4<f32>(0.0);
  if (live) {
#if GRAD
    let q = (rowStart / p.qS) % p.qQ;
    m = smean[q];
    rs = inverseSqrt(svar[q] + p.eps);
#endif
    var w = walk_at(start + lane, p.affDiv, p.affMod);
    for (var e = start + lane; e < end; e += p.tpr) {
      acc = take(acc, e, wt(w.idx), m, rs);
      w = lane_step(w);
    }
  }
  red[lid] = acc;
  workgroupBarrier();
  for (var s = p.tpr / 2u; s > 0u; s = s / 2u) {
    if (lane < s && slot < slots) {
      red[lid] = merge(red[lid], red[lid + s]);
    }
    workgroupBarrier();
  }
  if (!live) {
    return;
  }
  let total = red[slot * p.tpr];
#if FUSED
#if GRAD
  var w = walk_at(start + lane, p.affDiv, p.affMod);
  for (var e = start + lane; e < end; e += p.tpr) {
    let gw = g[e] * wt(w.idx);
    let xh = (x[e] - m) * rs;
    out[e] = rs * (gw - (total.x + xh * total.y) * p.invM);
    w = lane_step(w);
  }
#else
  let mean = total.y;
  let v = total.z / total.x;
  if (lane == 0u) {
    omean[r] = mean;
    ovar[r] = v;
  }
  let rstd = inverseSqrt(v + p.eps);
  var w = walk_at(start + lane, p.affDiv, p.affMod);
  for (var e = start + lane; e < end; e += p.tpr) {
    out[e] = (x[e] - mean) * rstd * wt(w.idx) + bt(w.idx);
    w = lane_step(w);
  }
#endif
#else
  if (lane == 0u) {
    part[u] = total;
  }
#endif
#else
  let i = flat_workgroup(wid, nwg) * {{WG}}u + lid;
  if (i >= p.units) {
    return;
  }
  let j = i % p.J;
  let p0 = (i / p.J) * p.pc;
  let p1 = min(p0 + p.pc, p.P);
#if GRAD
  // per-component sums: with VEC4 the four elements of a vec4 are four columns
  var sg = V(0.0);
  var sgx = V(0.0);
  var q = ((p0 * p.J + j) / p.qS) % p.qQ;
  for (var pp = p0; pp < p1; pp++) {
    let e = pp * p.J + j;
    let gv = g[e];
    sg += gv;
    sgx += gv * (x[e] - smean[q]) * inverseSqrt(svar[q] + p.eps);
    q += p.qStep;
    if (q >= p.qQ) {
      q -= p.qQ;
    }
  }
#if VEC4
  for (var c = 0u; c < 4u; c++) {
    part[4u * i + c] = vec4<f32>(sg[c], sgx[c], 0.0, 0.0);
  }
#else
  part[i] = vec4<f32>(sg, sgx, 0.0, 0.0);
#endif
#else
  var acc = vec4<f32>(0.0);
  for (var pp = p0; pp < p1; pp++) {
    acc = take(acc, pp * p.J + j, 1.0, 0.0, 0.0);
  }
  part[i] = acc;
#endif
#endif
}
