// Stable sort of {{T}} along one dim by a bitonic network over (key, index) pairs.
// Input x is contiguous, viewed as [outer, n, inner]: line l = (o, i), o = l / inner, i = l % inner, element j at
// (o·n + j)·inner + i. Each line is padded to p.padded = 2^m positions; the padded lines lie end to end, so global
// position g belongs to line g / p.padded. A pair is (key, index): key maps the value to a u32 whose unsigned order
// is the sort order (NaN largest, −0 == +0, inverted for descending), index is the position in the line. Pairs are
// compared by key, then by index, so equal values keep their input order (a stable sort), and padding — key and
// index 0xffffffff — sorts after every real element.
// Outputs (STORE): values/indices of shape [outer, p.kOut, inner], the first kOut positions of each sorted line
// (kOut = n for sort, k for topk); values are read back from x at the sorted index, so −0 and NaN payloads survive.
// Mapping, LOCAL layout: workgroup w owns the p.block (≤ {{B}}) consecutive positions starting at w·p.block, held
// in workgroup memory, and runs the network's stages k = p.kFirst … p.kLast (doubling), each with steps
// j = min(k, p.block) / 2 … 1; the {{WG}} invocations take the block's p.block / 2 compare-exchanges in turn.
// LOAD reads the block from x (else from the pairs buffer); STORE writes the outputs (else back to pairs).
// GLOBAL layout: one step (k = p.kFirst, j = p.j) of a stage whose pairs are farther apart than a block:
// one invocation per compare-exchange over all lines.
// HALVE layout (topk's selection): the lines hold sorted runs of p.kFirst pairs, ascending and descending in turn, so
// runs 2r and 2r + 1 form a bitonic sequence whose elementwise minimum (position i of both) holds its p.kFirst
// smallest pairs, as a bitonic sequence; one invocation per output position o < p.total writes that minimum to
// halved[o], so every line keeps half its length (the caller then sorts the surviving runs with stage k = p.kFirst).
struct Params {
  lines: u32,
  n: u32,
  inner: u32,
  padded: u32,
  block: u32,
  kFirst: u32,
  kLast: u32,
  j: u32,
  kOut: u32,
  descending: u32,
  total: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
#if GLOBAL
@group(0) @binding(1) var<storage, read_write> pairs: array<vec2<u32>>;
#else
#if HALVE
@group(0) @binding(1) var<storage, read> pairs: array<vec2<u32>>;
@group(0) @binding(2) var<storage, read_write> halved: array<vec2<u32>>;
#else
#if LOAD
@group(0) @binding(1) var<storage, read> x: array<{{T}}>;
#else
#if STORE
@group(0) @binding(1) var<storage, read> pairs: array<vec2<u32>>;
#else
@group(0) @binding(1) var<storage, read_write> pairs: array<vec2<u32>>;
#endif
#endif
#if STORE
#if !LOAD
@group(0) @binding(2) var<storage, read> x: array<{{T}}>;
#endif
@group(0) @binding(3) var<storage, read_write> values: array<{{T}}>;
@group(0) @binding(4) var<storage, read_write> indices: array<i32>;
#else
#if LOAD
@group(0) @binding(2) var<storage, read_write> pairs: array<vec2<u32>>;
#endif
#endif
#endif
#endif

const PAD = vec2<u32>(0xffffffffu, 0xffffffffu);

// Strict order of pairs: key, then index (all indices of a line differ, so the order is total).
fn before(a: vec2<u32>, b: vec2<u32>) -> bool {
  return a.x < b.x || (a.x == b.x && a.y < b.y);
}

// Position g of the padded lines and its partner g + j: swap so that the lower position gets the smaller pair in
// ascending runs ((g mod padded) & k == 0) and the larger one in descending runs.
fn ordered(g: u32, k: u32, a: vec2<u32>, b: vec2<u32>) -> bool {
  let up = ((g & (p.padded - 1u)) & k) == 0u;
  return select(before(b, a), before(a, b), up);
}

#if !GLOBAL
#if !HALVE
fn element_address(line: u32, j: u32) -> u32 {
  let o = line / p.inner;
  let i = line - o * p.inner;
  return (o * p.n + j) * p.inner + i;
}
#endif
#endif

#if LOAD
// Unsigned key whose order is the value order; NaN (any sign) is the largest, and both zeros compare equal.
fn sort_key(v: {{T}}) -> u32 {
  let b = bitcast<u32>(v);
#if FLOAT
  var k = select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
  if ((b & 0x7fffffffu) == 0u) {
    k = 0x80000000u;
  }
  if (is_nan_f32(bitcast<f32>(b))) {
    k = 0xffffffffu;
  }
#else
#if SIGNED
  let k = b ^ 0x80000000u;
#else
  let k = b;
#endif
#endif
  return select(k, ~k, p.descending != 0u);
}

fn load_pair(g: u32) -> vec2<u32> {
  let line = g / p.padded;
  let j = g - line * p.padded;
  if (line >= p.lines || j >= p.n) {
    return PAD;
  }
  return vec2<u32>(sort_key(x[element_address(line, j)]), j);
}
#endif

#if GLOBAL
@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let q = flat_workgroup(wid, nwg) * {{WG}}u + lid;
  if (q >= p.total / 2u) {
    return;
  }
  // the q-th compare-exchange: insert a zero bit at j's position to get the lower partner
  let g = ((q & ~(p.j - 1u)) << 1u) | (q & (p.j - 1u));
  let a = pairs[g];
  let b = pairs[g + p.j];
  if (!ordered(g, p.kFirst, a, b)) {
    pairs[g] = b;
    pairs[g + p.j] = a;
  }
}
#else
#if HALVE
@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let o = flat_workgroup(wid, nwg) * {{WG}}u + lid;
  if (o >= p.total) {
    return;
  }
  let run = p.kFirst;
  let a = (o / run) * 2u * run + o % run;
  let x = pairs[a];
  let y = pairs[a + run];
  halved[o] = select(x, y, before(y, x));
}
#else
var<workgroup> staged: array<vec2<u32>, {{B}}>;

@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let start = flat_workgroup(wid, nwg) * p.block;
  if (start >= p.total) {
    return; // the whole workgroup leaves together
  }
  for (var e = lid; e < p.block; e += {{WG}}u) {
#if LOAD
    staged[e] = load_pair(start + e);
#else
    staged[e] = pairs[start + e];
#endif
  }
  workgroupBarrier();
  for (var k = p.kFirst; k <= p.kLast; k = k * 2u) {
    for (var j = min(k, p.block) / 2u; j > 0u; j = j / 2u) {
      for (var q = lid; q < p.block / 2u; q += {{WG}}u) {
        let e = ((q & ~(j - 1u)) << 1u) | (q & (j - 1u));
        let a = staged[e];
        let b = staged[e + j];
        if (!ordered(start + e, k, a, b)) {
          staged[e] = b;
          staged[e + j] = a;
        }
      }
      workgroupBarrier();
    }
  }
  for (var e = lid; e < p.block; e += {{WG}}u) {
#if STORE
    let g = start + e;
    let line = g / p.padded;
    let j = g - line * p.padded;
    if (line < p.lines && j < p.kOut) {
      let src = staged[e].y;
      let o = line / p.inner;
      let i = line - o * p.inner;
      let dst = (o * p.kOut + j) * p.inner + i;
      values[dst] = x[element_address(line, src)];
      indices[dst] = i32(src);
    }
#else
    pairs[start + e] = staged[e];
#endif
  }
}
#endif
#endif
