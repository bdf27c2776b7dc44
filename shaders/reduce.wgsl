// Reduction of a contiguous row-major input over a set of dims ({{OP}} in {{T}}).
// Output o (kept dims, row-major) reduces input[base(o) + red(r)] for r in [0, p.redSize), where base() uses
// keepShape/keepStrides and red() uses redShape/redStrides (input strides of those dims).
// Mapping, ROW layout: workgroup w handles output w / p.nSplit over the r-chunk w % p.nSplit ({{WG}} invocations
// stride over it, then a tree reduction in workgroup memory); the output holds nOut * nSplit partials.
// THREAD layout: one invocation per output, looping over all r (for many short reductions).
// Sums whose innermost reduced dim is contiguous and a multiple of 4 long (a conv's bias gradient: [N, C, H, W] over
// N, H, W) run the ROW layout over vec4s ({{T}} = vec4<f32>; every size, stride and offset in vec4s): a load site is
// a per-lane loop on CPU adapters, so one load of 4 values quarters them; RESULT adds the 4 lanes at the end.
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

// The outermost dim needs no division: what remains of the index there is already below its size. Integer
// division is the dominant cost per element on CPU adapters (the host merges contiguous dims for the same reason).
fn base_offset(o: u32) -> u32 {
  var rem = o;
  var off = 0u;
  for (var k = p.keepRank - 1u; k > 0u; k--) {
    let sz = dim_of(p.keepShape, k);
    let q = rem / sz;
    off += (rem - q * sz) * dim_of(p.keepStrides, k);
    rem = q;
  }
  return off + rem * dim_of(p.keepStrides, 0u);
}

// Offset of reduction index r over the reduced dims [0, rank): rank = p.redRank for a whole index, p.redRank − 1
// for an index over all but the innermost reduced dim.
fn red_offset(r: u32, rank: u32) -> u32 {
  if (rank == 0u) {
    return 0u;
  }
  var rem = r;
  var off = 0u;
  for (var k = rank - 1u; k > 0u; k--) {
    let sz = dim_of(p.redShape, k);
    let q = rem / sz;
    off += (rem - q * sz) * dim_of(p.redStrides, k);
    rem = q;
  }
  return off + rem * dim_of(p.redStrides, 0u);
}

// A partial result: value and the reduction index it came from. Accumulators start empty (i == NONE) rather than
// at an identity value, so that max over -inf stays -inf and no sentinel can win a comparison.
struct Acc {
  v: {{T}},
  i: u32,
}

const NONE = 0xffffffffu;

// Bit test, not v != v: WGSL lets compilers assume NaNs away in float comparisons.
fn is_nan(v: {{T}}) -> bool {
  return {{IS_NAN}};
}

fn fold(a: Acc, b: Acc) -> Acc {
  if (b.i == NONE) {
    return a;
  }
  if (a.i == NONE) {
    return b;
  }
#if SUM
  return Acc(a.v + b.v, min(a.i, b.i));
#else
  // NaN wins (propagates, as in PyTorch), then the extreme value; ties keep the lower index (first occurrence)
  let an = is_nan(a.v);
  let bn = is_nan(b.v);
  if (an || bn) {
    if (bn && (!an || b.i < a.i)) {
      return b;
    }
    return a;
  }
  if ({{BETTER}} || (b.v == a.v && b.i < a.i)) {
    return b;
  }
  return a;
#endif
}

var<workgroup> sacc: array<Acc, {{WG}}>;

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
  // r = row · inner + i over (the outer reduced dims, the innermost one): i steps by {{WG}} and the outer offset is
  // recomputed only when i leaves the row, so long inner rows cost no division per element
  let inner = dim_of(p.redShape, p.redRank - 1u);
  let innerStride = dim_of(p.redStrides, p.redRank - 1u);
  var r = start + lid;
  var row = r / inner;
  var i = r - row * inner;
  var rowBase = base + red_offset(row, p.redRank - 1u);
  var acc = Acc({{T}}(0), NONE);
  for (; r < end; r += {{WG}}u) {
    acc = fold(acc, Acc(x[rowBase + i * innerStride], r));
    i += {{WG}}u;
    if (i >= inner) {
      let next = r + {{WG}}u;
      row = next / inner;
      i = next - row * inner;
      rowBase = base + red_offset(row, p.redRank - 1u);
    }
  }
  sacc[lid] = acc;
  workgroupBarrier();
  for (var s = {{WG}}u / 2u; s > 0u; s = s / 2u) {
    if (lid < s) {
      sacc[lid] = fold(sacc[lid], sacc[lid + s]);
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    out[w] = {{RESULT}}(sacc[0]);
  }
#else
  let o = flat_workgroup(wid, nwg) * {{WG}}u + lid;
  if (o >= p.nOut) {
    return;
  }
  let base = base_offset(o);
  var acc = Acc({{T}}(0), NONE);
  for (var r = 0u; r < p.redSize; r++) {
    acc = fold(acc, Acc(x[base + red_offset(r, p.redRank)], r));
  }
  out[o] = {{RESULT}}(acc);
#endif
}

fn value_of(a: Acc) -> {{T}} {
  return a.v;
}

fn index_of(a: Acc) -> i32 {
  return i32(a.i);
}

#if VEC4
fn sum_of_lanes(a: Acc) -> f32 {
  return (a.v.x + a.v.y) + (a.v.z + a.v.w);
}
#endif
