// Integer draws from the Philox4x32-10 stream of philox.wgsl (prepended with PHILOX_FUNCTIONS_ONLY): word j of
// block (i, p.offset, p.stream, 0) under the key (p.seedLo, p.seedHi) serves element 4i + j, so results depend
// only on (seed, offset, index). Variants (uniform at binding 0, then):
//   RANDINT   out (i32): low + ⌊word · range / 2^32⌋, the high word of the 64-bit product (no division; each value
//             gets ⌊2^32 / range⌋ or one more of the 2^32 words, a relative bias below range / 2^32).
//   SEARCH    out (i32, [rows, samples]), cdf (f32, [rows, C], inclusive prefix sums of the weights): the first
//             category whose cdf exceeds u · total, u uniform in [0, 1) (multinomial with replacement; categories
//             of zero weight have cdf equal to their predecessor's and are never chosen).
//   KEYS      out (f32, [rows, C]), weights (f32): log(u) / w with u in (0, 1] (Efraimidis–Spirakis: the categories
//             with the largest keys are a draw without replacement, in the order of successive draws); weight ≤ 0
//             gets the lowest key.
// Mapping: one invocation per 4 elements, 2-D grid.
struct Params {
  n: u32,
  seedLo: u32,
  seedHi: u32,
  offset: u32,
  stream: u32,
  low: i32,
  range: u32,
  C: u32,
  samples: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
#if RANDINT
@group(0) @binding(1) var<storage, read_write> out: array<i32>;
#endif
#if SEARCH
@group(0) @binding(1) var<storage, read_write> out: array<i32>;
@group(0) @binding(2) var<storage, read> cdf: array<f32>;
#endif
#if KEYS
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> weights: array<f32>;
#endif

#if SEARCH
fn search(e: u32, u: f32) -> i32 {
  let row = (e / p.samples) * p.C;
  let goal = u * cdf[row + p.C - 1u];
  var lo = 0u;
  var hi = p.C - 1u;
  while (lo < hi) {
    let mid = (lo + hi) / 2u;
    if (cdf[row + mid] > goal) {
      hi = mid;
    } else {
      lo = mid + 1u;
    }
  }
  return i32(lo);
}
#endif

@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = flat_workgroup(wid, nwg) * {{WG}}u + lid;
  let base = i * 4u;
  if (base >= p.n) {
    return;
  }
  let r = philox(vec4<u32>(i, p.offset, p.stream, 0u), vec2<u32>(p.seedLo, p.seedHi));
  for (var j = 0u; j < 4u; j++) {
    let e = base + j;
    if (e >= p.n) {
      break;
    }
#if RANDINT
    out[e] = p.low + bitcast<i32>(mulhilo(r[j], p.range).x);
#endif
#if SEARCH
    out[e] = search(e, unit(r[j]));
#endif
#if KEYS
    let w = weights[e];
    // u in (0, 1]: log(u) is finite and ≤ 0; tiny weights are clamped above the zero-weight key
    let u = f32((r[j] >> 8u) + 1u) * 5.9604644775390625e-8;
    out[e] = select(-3.4e38, max(log(u) / w, -3.0e38), w > 0.0);
#endif
  }
}
