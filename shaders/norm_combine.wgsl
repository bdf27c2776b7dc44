// Merges the partials of norm_reduce.wgsl (merge() and wt() from norm_common.wgsl) when a group spans several units.
// Members of target t are part[a * sa + t * st + b] for a < nA, b < nB. One invocation per target, 2-D grid.
// Statistics: invocation c handles the groups q = rep * nT + c, rep < reps: mean[q] and the biased var[q] = M2 / n.
//   RUNNING then updates runningMean[c] and runningVar[c] in place, as PyTorch: r = (1 - momentum) r + momentum v
//   with v averaged over the reps (instanceNorm's batch; reps = 1 otherwise) and the unbiased variance M2 / (n - 1).
// GRAD: invocations t < nChan write a channel's totals dB[t] = sum g, dW[t] = sum g xhat (CHAN); invocations
//   t = nChan + q write group q's sums A = ab[q], B = ab[nGroup + q] over the members (gnA, gsa, gst, gnB), each
//   scaled by weight[(idx / wDiv) % wMod] with WEIGHT (partials summed before the affine weight).
// Bindings: part; statistics: mean, var (written), runningMean, runningVar (RUNNING, read and written in place);
// GRAD: dw, db (CHAN), ab (GROUPS), weight (norm_common.wgsl).
struct Params {
  nT: u32,
  reps: u32,
  nA: u32,
  sa: u32,
  st: u32,
  nB: u32,
  nChan: u32,
  nGroup: u32,
  gnA: u32,
  gsa: u32,
  gst: u32,
  gnB: u32,
  wDiv: u32,
  wMod: u32,
  momentum: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> part: array<vec4<f32>>;
#if GRAD
#if CHAN
@group(0) @binding(2) var<storage, read_write> dw: array<f32>;
@group(0) @binding(3) var<storage, read_write> db: array<f32>;
#endif
#if GROUPS
@group(0) @binding(4) var<storage, read_write> ab: array<f32>;
#endif
#else
@group(0) @binding(2) var<storage, read_write> mean: array<f32>;
@group(0) @binding(3) var<storage, read_write> vari: array<f32>;
#if RUNNING
@group(0) @binding(7) var<storage, read_write> runningMean: array<f32>;
@group(0) @binding(8) var<storage, read_write> runningVar: array<f32>;
#endif
#endif

fn members(t: u32, nA: u32, sa: u32, st: u32, nB: u32) -> vec4<f32> {
  var acc = vec4<f32>(0.0);
  for (var a = 0u; a < nA; a++) {
    for (var b = 0u; b < nB; b++) {
      acc = merge(acc, part[a * sa + t * st + b]);
    }
  }
  return acc;
}

@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = flat_workgroup(wid, nwg) * {{WG}}u + lid;
#if GRAD
#if CHAN
  if (t < p.nChan) {
    let s = members(t, p.nA, p.sa, p.st, p.nB);
    db[t] = s.x;
    dw[t] = s.y;
    return;
  }
#endif
#if GROUPS
  let q = t - p.nChan;
  if (t < p.nChan || q >= p.nGroup) {
    return;
  }
  var s = vec2<f32>(0.0);
  for (var a = 0u; a < p.gnA; a++) {
    for (var b = 0u; b < p.gnB; b++) {
      let idx = a * p.gsa + q * p.gst + b;
      s += part[idx].xy * wt((idx / p.wDiv) % p.wMod);
    }
  }
  ab[q] = s.x;
  ab[p.nGroup + q] = s.y;
#endif
#else
  if (t >= p.nT) {
    return;
  }
  var sumMean = 0.0;
  var sumVar = 0.0;
  for (var rep = 0u; rep < p.reps; rep++) {
    let q = rep * p.nT + t;
    let w = members(q, p.nA, p.sa, p.st, p.nB);
    mean[q] = w.y;
    vari[q] = w.z / w.x;
    sumMean += w.y;
    sumVar += w.z / (w.x - 1.0);
  }
#if RUNNING
  let f = p.momentum / f32(p.reps);
  runningMean[t] = (1.0 - p.momentum) * runningMean[t] + f * sumMean;
  runningVar[t] = (1.0 - p.momentum) * runningVar[t] + f * sumVar;
#endif
#endif
}
