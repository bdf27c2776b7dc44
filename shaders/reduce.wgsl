// Reduction of a contiguous row-major input over a set of dims ({{OP}} in {{T}}).
// Output o (kept dims, row-major) reduces input[base(o) + red(r)] for r in [0, p.redSize), where base() uses
// keepShape/keepStrides and red() uses redShape/redStrides (input strides of those dims).
// Mapping, ROW layout: workgroup w handles output w / p.nSplit over the r-chunk w % p.nSplit ({{WG}} invocations
// stride over it, then a tree reduction in workgroup memory); the output holds nOut * nSplit partials.
// THREAD layout: one invocation per output, looping over all r (for many short reductions).
struct Params {
  nOut: u32,
  redSize: u32,
  keepRank: u32,
  redRank: u32,
  nSplit: u32,
  chunk: u32,
  keepShape: array<vec4<u32>, 2>,
  keepStrides: array<vec4<u32>, 2>,
  redShape: array<vec4<u32>, 2>,
  redStrides: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<{{OUT_T}}>;
@group(0) @binding(2) var<storage, read> x: array<{{T}}>;

fn base_offset(o: u32) -> u32 {
  var rem = o;
  var off = 0u;
  for (var d = i32(p.keepRank) - 1; d >= 0; d--) {
    let k = u32(d);
    let sz = dim_of(p.keepShape, k);
    off += (rem % sz) * dim_of(p.keepStrides, k);
    rem = rem / sz;
  }
  return off;
}

fn red_offset(r: u32) -> u32 {
  var rem = r;
  var off = 0u;
  for (var d = i32(p.redRank) - 1; d >= 0; d--) {
    let k = u32(d);
    let sz = dim_of(p.redShape, k);
    off += (rem % sz) * dim_of(p.redStrides, k);
    rem = rem / sz;
  }
  return off;
}

// (value, index) pairs; `better(b, a)` says whether candidate b replaces a (ties keep the lower index).
fn combine_val(a: {{T}}, b: {{T}}) -> {{T}} {
  return {{COMBINE}};
}

fn better(av: {{T}}, ai: u32, bv: {{T}}, bi: u32) -> bool {
  return {{BETTER}};
}

var<workgroup> sv: array<{{T}}, {{WG}}>;
var<workgroup> si: array<u32, {{WG}}>;

@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
#if ROW
  let w = flat_workgroup(wid, nwg);
  let o = w / p.nSplit;
  if (o >= p.nOut) {
    return; // whole workgroup exits together: o is uniform across it
  }
  let start = (w % p.nSplit) * p.chunk;
  let end = min(start + p.chunk, p.redSize);
  let base = base_offset(o);
  var acc: {{T}} = {{INIT}};
  var ai = 0u;
  for (var r = start + lid; r < end; r += {{WG}}u) {
    let v = x[base + red_offset(r)];
    if ({{ARG}}) {
      if (better(acc, ai, v, r)) {
        acc = v;
        ai = r;
      }
    } else {
      acc = combine_val(acc, v);
    }
  }
  sv[lid] = acc;
  si[lid] = ai;
  workgroupBarrier();
  for (var s = {{WG}}u / 2u; s > 0u; s = s / 2u) {
    if (lid < s) {
      if ({{ARG}}) {
        if (better(sv[lid], si[lid], sv[lid + s], si[lid + s])) {
          sv[lid] = sv[lid + s];
          si[lid] = si[lid + s];
        }
      } else {
        sv[lid] = combine_val(sv[lid], sv[lid + s]);
      }
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    out[w] = {{RESULT}};
  }
#else
  let o = flat_workgroup(wid, nwg) * {{WG}}u + lid;
  if (o >= p.nOut) {
    return;
  }
  let base = base_offset(o);
  var acc: {{T}} = {{INIT}};
  var ai = 0u;
  for (var r = 0u; r < p.redSize; r++) {
    let v = x[base + red_offset(r)];
    if ({{ARG}}) {
      if (better(acc, ai, v, r)) {
        acc = v;
        ai = r;
      }
    } else {
      acc = combine_val(acc, v);
    }
  }
  let sv0 = acc;
  let si0 = ai;
  out[o] = {{RESULT_THREAD}};
#endif
}
