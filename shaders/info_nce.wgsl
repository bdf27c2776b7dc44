// InfoNCE over indexed negatives without materialising them (src/kernels/contrastive.ts; negatives that are all
// the keys take matmul tiles there instead). Row q of the logits has C = 1 + J columns: column 0 is
// ⟨query[q], positive[q]⟩ · invTau, column 1 + j is ⟨query[q], keys[r]⟩ · invTau with r = index[q·J + j]. The loss of row q is
// lse_q − logit_0 (cross-entropy with target 0); the backward weight of column c is
// w = g_q · (exp(logit_c − lse_q) − [c = 0]) · invTau, so dquery[q] = Σ_c w_c · row_c, dpositive[q] = w_0 · query[q]
// and dkeys[r] = Σ w · query over the (q, c) that read row r.
// DOTS marks the variants that compute logits, STAGED those that stage weights in workgroup memory.
// Variants (one #if each; the uniform is binding 0, the storage bindings follow in the order listed):
//   FORWARD     query, keys, positives, index, lse (out), losses (out), asserts. One workgroup per query:
//               invocations stride over the columns keeping an online (max, sum of exp) pair, then a tree reduction.
//   QUERY_GRAD  query, keys, positives, index, lse, g, dquery (out), dpositive (out), coef (out). One
//               workgroup per query: {{WG}} columns at a time, their weights in workgroup memory, then invocations
//               stride over the D features of the gradient (coalesced row reads). The weights are also stored as
//               coef[q·C + c] for KEY_INDEXED.
//   COUNT       index, counts (atomic): how many (q, j) read each key row.
//   PLACE       index, ends, counts, cursor (atomic), order (out): the (q, j) of each key row grouped in
//               order[ends[r] − counts[r] .. ends[r]) (ends = inclusive prefix sum of counts). The order inside a
//               group follows the atomics, so the last bits of a bank row's gradient sum can vary run to run.
//   KEY_INDEXED query, coef, order, ends, counts, dkeys (out). One workgroup per key row, its group {{WG}} at a time.
// An index outside [0, K) is reported by FORWARD (index_assert.wgsl) and contributes nothing anywhere.
// VEC4 (D a multiple of 4): feature vectors are read and written as vec4, p.D counting vec4s.
#if VEC4
alias V = vec4<f32>;
fn vdot(a: V, b: V) -> f32 {
  return dot(a, b);
}
#else
alias V = f32;
fn vdot(a: V, b: V) -> f32 {
  return a * b;
}
#endif

struct Params {
  Q: u32,
  K: u32,
  // the row length in V units
  D: u32,
  J: u32,
  // D, or 0 when one positive serves every query
  posStride: u32,
  invTau: f32,
  // 1: one upstream gradient per query (reduction 'none'), 0: one for all
  gStride: u32,
  gScale: f32,
  n: u32,
  assertSlot: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

#if FORWARD
@group(0) @binding(1) var<storage, read> query: array<V>;
@group(0) @binding(2) var<storage, read> keys: array<V>;
@group(0) @binding(3) var<storage, read> positives: array<V>;
@group(0) @binding(4) var<storage, read> index: array<{{I}}>;
@group(0) @binding(5) var<storage, read_write> lse: array<f32>;
@group(0) @binding(6) var<storage, read_write> losses: array<f32>;
#endif

#if QUERY_GRAD
@group(0) @binding(1) var<storage, read> query: array<V>;
@group(0) @binding(2) var<storage, read> keys: array<V>;
@group(0) @binding(3) var<storage, read> positives: array<V>;
@group(0) @binding(4) var<storage, read> index: array<{{I}}>;
@group(0) @binding(5) var<storage, read> lse: array<f32>;
@group(0) @binding(6) var<storage, read> g: array<f32>;
@group(0) @binding(7) var<storage, read_write> dquery: array<V>;
@group(0) @binding(8) var<storage, read_write> dpositive: array<V>;
@group(0) @binding(9) var<storage, read_write> coef: array<f32>;
#endif

#if COUNT
@group(0) @binding(1) var<storage, read> index: array<{{I}}>;
@group(0) @binding(2) var<storage, read_write> counts: array<atomic<u32>>;
#endif

#if PLACE
@group(0) @binding(1) var<storage, read> index: array<{{I}}>;
@group(0) @binding(2) var<storage, read> ends: array<u32>;
@group(0) @binding(3) var<storage, read> counts: array<u32>;
@group(0) @binding(4) var<storage, read_write> cursor: array<atomic<u32>>;
@group(0) @binding(5) var<storage, read_write> order: array<u32>;
#endif

#if KEY_INDEXED
@group(0) @binding(1) var<storage, read> query: array<V>;
@group(0) @binding(2) var<storage, read> coef: array<f32>;
@group(0) @binding(3) var<storage, read> order: array<u32>;
@group(0) @binding(4) var<storage, read> ends: array<u32>;
@group(0) @binding(5) var<storage, read> counts: array<u32>;
@group(0) @binding(6) var<storage, read_write> dkeys: array<V>;
#endif

// below every finite logit and still finite, so that exp(NONE - m) is 0 or 1 instead of NaN
const NONE = -3.0e38;


#if DOTS
// key row of negative j of query q (offset in V units), or -1 for an index outside [0, K)
fn key_row(q: u32, j: u32) -> i32 {
  let r = i32(index[q * p.J + j]);
  return select(-1, r * i32(p.D), r >= 0 && u32(r) < p.K);
}

// ⟨query row at qo, key row at ko⟩
fn dot_key(qo: u32, ko: u32) -> f32 {
  var acc = 0.0;
  for (var d = 0u; d < p.D; d++) {
    acc += vdot(query[qo + d], keys[ko + d]);
  }
  return acc;
}
fn dot_positive(qo: u32, po: u32) -> f32 {
  var acc = 0.0;
  for (var d = 0u; d < p.D; d++) {
    acc += vdot(query[qo + d], positives[po + d]);
  }
  return acc;
}
#endif

#if FORWARD
var<workgroup> maxes: array<f32, {{WG}}>;
var<workgroup> sums: array<f32, {{WG}}>;

@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let q = flat_workgroup(wid, nwg);
  if (q >= p.Q) {
    return;
  }
  let qo = q * p.D;
  var m = NONE;
  var s = 0.0;
  var positive = 0.0;
  for (var c = lid; c < p.J + 1u; c += {{WG}}u) {
    var l: f32;
    if (c == 0u) {
      l = dot_positive(qo, q * p.posStride) * p.invTau;
      positive = l;
    } else {
      let r = key_row(q, c - 1u);
      if (r < 0) {
        report_bad_index(p.assertSlot, q * p.J + c - 1u, bitcast<u32>(index[q * p.J + c - 1u]));
        continue;
      }
      l = dot_key(qo, u32(r)) * p.invTau;
    }
    if (l > m) {
      s = s * exp(m - l) + 1.0;
      m = l;
    } else {
      s += exp(l - m);
    }
  }
  maxes[lid] = m;
  sums[lid] = s;
  workgroupBarrier();
  for (var half = {{WG}}u / 2u; half > 0u; half /= 2u) {
    if (lid < half) {
      let m2 = maxes[lid + half];
      let top = max(m, m2);
      s = s * exp(m - top) + sums[lid + half] * exp(m2 - top);
      m = top;
      maxes[lid] = m;
      sums[lid] = s;
    }
    workgroupBarrier();
  }
  // invocation 0 handled column 0, so it holds the positive logit
  if (lid == 0u) {
    let total = m + log(s);
    lse[q] = total;
    losses[q] = total - positive;
  }
}
#endif

#if STAGED
var<workgroup> weights: array<f32, {{WG}}>;
var<workgroup> rows: array<i32, {{WG}}>;
#endif

#if QUERY_GRAD
@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let q = flat_workgroup(wid, nwg);
  if (q >= p.Q) {
    return;
  }
  let qo = q * p.D;
  let po = q * p.posStride;
  let scale = g[q * p.gStride] * p.gScale * p.invTau;
  let total = lse[q];
  let C = p.J + 1u;
  for (var c0 = 0u; c0 < C; c0 += {{WG}}u) {
    let c = c0 + lid;
    var w = 0.0;
    var r = -1;
    if (c == 0u) {
      w = scale * (exp(dot_positive(qo, po) * p.invTau - total) - 1.0);
    } else if (c < C) {
      r = key_row(q, c - 1u);
      if (r >= 0) {
        w = scale * exp(dot_key(qo, u32(r)) * p.invTau - total);
      }
    }
    if (c < C) {
      coef[q * C + c] = w;
    }
    weights[lid] = w;
    rows[lid] = r;
    workgroupBarrier();
    let n = min({{WG}}u, C - c0);
    for (var d = lid; d < p.D; d += {{WG}}u) {
      var acc = V();
      var t = 0u;
      if (c0 == 0u) {
        acc = weights[0] * positives[po + d];
        dpositive[qo + d] = weights[0] * query[qo + d];
        t = 1u;
      }
      for (; t < n; t++) {
        if (rows[t] >= 0) {
          acc += weights[t] * keys[u32(rows[t]) + d];
        }
      }
      dquery[qo + d] = select(dquery[qo + d], V(), c0 == 0u) + acc;
    }
    workgroupBarrier();
  }
}
#endif

#if COUNT
@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let e = flat_workgroup(wid, nwg) * {{WG}}u + lid;
  if (e >= p.n) {
    return;
  }
  let r = i32(index[e]);
  if (r >= 0 && u32(r) < p.K) {
    atomicAdd(&counts[r], 1u);
  }
}
#endif

#if PLACE
@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let e = flat_workgroup(wid, nwg) * {{WG}}u + lid;
  if (e >= p.n) {
    return;
  }
  let r = i32(index[e]);
  if (r >= 0 && u32(r) < p.K) {
    order[ends[r] - counts[r] + atomicAdd(&cursor[r], 1u)] = e;
  }
}
#endif

#if KEY_INDEXED
@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let k = flat_workgroup(wid, nwg);
  if (k >= p.K) {
    return;
  }
  let ko = k * p.D;
  let end = ends[k];
  let start = end - counts[k];
  for (var d = lid; d < p.D; d += {{WG}}u) {
    dkeys[ko + d] = V();
  }
  for (var e0 = start; e0 < end; e0 += {{WG}}u) {
    let e = e0 + lid;
    if (e < end) {
      let entry = order[e];
      let q = entry / p.J;
      weights[lid] = coef[q * (p.J + 1u) + 1u + entry - q * p.J];
      rows[lid] = i32(q * p.D);
    }
    workgroupBarrier();
    let n = min({{WG}}u, end - e0);
    for (var d = lid; d < p.D; d += {{WG}}u) {
      var acc = V();
      for (var t = 0u; t < n; t++) {
        acc += weights[t] * query[u32(rows[t]) + d];
      }
      dkeys[ko + d] += acc;
    }
    workgroupBarrier();
  }
}
#endif
