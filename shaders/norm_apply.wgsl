// Elementwise pass of the normalisation layers (the index walk, V, wt() and bt() come from norm_common.wgsl; with VEC4
// every index counts vec4s, each inside one statistics group). q = (e / S) % Q is the statistics group of element e,
// ch = (e / affDiv) % affMod its affine channel, rstd = inverseSqrt(var[q] + eps):
//   forward:  y = (x - mean[q]) * rstd * weight[ch] + bias[ch]   (WEIGHT, BIAS optional)
//   BACKWARD: dx = rstd * (gw - (A[q] + xhat * B[q]) * invM), gw = g * weight[ch], A = ab[q], B = ab[Q + q], with
//             batch statistics (AB); dx = gw * rstd with statistics that do not depend on x (running statistics).
// Mapping: workgroup w covers the 8 * {{WG}} elements from 8 * {{WG}} * w (2-D grid); invocation lid takes
// e = base + lid + t * {{WG}}, t < 8 (adjacent invocations, adjacent elements), walking q and ch by the stride
// {{WG}} (qStepQ = {{WG}} / S, qStepR = {{WG}} % S, and cStepQ, cStepR for affDiv) instead of dividing per element.
// Bindings: out; g (BACKWARD); x, mean (XMEAN); weight, bias (norm_common.wgsl); var; ab (AB).
struct Params {
  n: u32,
  S: u32,
  Q: u32,
  affDiv: u32,
  affMod: u32,
  qStepQ: u32,
  qStepR: u32,
  cStepQ: u32,
  cStepR: u32,
  eps: f32,
  invM: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<V>;
#if BACKWARD
@group(0) @binding(2) var<storage, read> g: array<V>;
#endif
#if XMEAN
@group(0) @binding(3) var<storage, read> x: array<V>;
@group(0) @binding(4) var<storage, read> mean: array<f32>;
#endif
@group(0) @binding(7) var<storage, read> vari: array<f32>;
#if AB
@group(0) @binding(8) var<storage, read> ab: array<f32>;
#endif

@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let first = flat_workgroup(wid, nwg) * (8u * {{WG}}u) + lid;
  if (first >= p.n) {
    return;
  }
  let last = min(first + 8u * {{WG}}u, p.n);
  var q = walk_at(first, p.S, p.Q);
  var ch = walk_at(first, p.affDiv, p.affMod);
  // a group's and a channel's parameters, reloaded only when the walk enters another one
  var cq = 0xffffffffu;
  var cc = 0xffffffffu;
  var rs = 0.0;
  var m = 0.0;
  var a = 0.0;
  var b = 0.0;
  var w = V(1.0);
  var bi = V(0.0);
  for (var e = first; e < last; e += {{WG}}u) {
    if (q.idx != cq) {
      cq = q.idx;
      rs = inverseSqrt(vari[cq] + p.eps);
#if XMEAN
      m = mean[cq];
#endif
#if AB
      a = ab[cq];
      b = ab[p.Q + cq];
#endif
    }
    if (ch.idx != cc) {
      cc = ch.idx;
      w = wt(cc);
      bi = bt(cc);
    }
#if BACKWARD
#if AB
    let xh = (x[e] - m) * rs;
    out[e] = rs * (g[e] * w - (a + xh * b) * p.invM);
#else
    out[e] = g[e] * w * rs;
#endif
#else
    out[e] = (x[e] - m) * rs * w + bi;
#endif
    q = walk_step(q, p.qStepQ, p.qStepR, p.S, p.Q);
    ch = walk_step(ch, p.cStepQ, p.cStepR, p.affDiv, p.affMod);
  }
}
