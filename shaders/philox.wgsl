// Counter-based random numbers: Philox4x32-10 (Salmon et al., SC'11). Invocation i encrypts the counter
// (i, p.offset, 0, 0) under the key (p.seedLo, p.seedHi) and writes 4 outputs, elements 4i..4i+3:
// uniform [0, 1) from the top 24 bits, or normal pairs by Box-Muller (NORMAL; radius from words x and z,
// angle in [-pi, pi) from y and w). Results depend only on (seed, offset, index), never on the device or
// launch shape. Mapping: one invocation per 4 elements, 2-D grid. A tensor past one storage binding is filled in
// windows: `out` binds the window, whose first element is 4 * p.firstBlock of the tensor, and p.n counts the window's
// elements; invocation i then uses counter block p.firstBlock + i, as one launch over the whole tensor would.
// With PHILOX_FUNCTIONS_ONLY only the generator functions remain, for other kernels to prepend (dropout.wgsl).
#if !PHILOX_FUNCTIONS_ONLY
struct Params {
  n: u32,
  seedLo: u32,
  seedHi: u32,
  offset: u32,
  low: f32,
  high: f32,
  firstBlock: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
#endif

// 32x32 -> 64-bit product as (hi, lo), from 16-bit halves (WGSL has no 64-bit integers).
fn mulhilo(a: u32, b: u32) -> vec2<u32> {
  let al = a & 0xffffu;
  let ah = a >> 16u;
  let bl = b & 0xffffu;
  let bh = b >> 16u;
  let ll = al * bl;
  let hl = ah * bl;
  let lh = al * bh;
  let hh = ah * bh;
  let cross = (ll >> 16u) + (hl & 0xffffu) + lh;
  return vec2<u32>(hh + (hl >> 16u) + (cross >> 16u), (cross << 16u) | (ll & 0xffffu));
}

fn philox(counter: vec4<u32>, key0: vec2<u32>) -> vec4<u32> {
  var c = counter;
  var k = key0;
  for (var r = 0u; r < 10u; r++) {
    let p0 = mulhilo(0xD2511F53u, c.x);
    let p1 = mulhilo(0xCD9E8D57u, c.z);
    c = vec4<u32>(p1.x ^ c.y ^ k.x, p1.y, p0.x ^ c.w ^ k.y, p0.y);
    k = k + vec2<u32>(0x9E3779B9u, 0xBB67AE85u);
  }
  return c;
}

fn unit(x: u32) -> f32 {
  return f32(x >> 8u) * 5.9604644775390625e-8; // 2^-24
}

#if !PHILOX_FUNCTIONS_ONLY
@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = flat_workgroup(wid, nwg) * {{WG}}u + lid;
  let base = i * 4u;
  if (base >= p.n) {
    return;
  }
  let r = philox(vec4<u32>(p.firstBlock + i, p.offset, 0u, 0u), vec2<u32>(p.seedLo, p.seedHi));
#if NORMAL
  let u1 = f32((r.x >> 8u) + 1u) * 5.9604644775390625e-8; // (0, 1], so log is finite
  let u3 = f32((r.z >> 8u) + 1u) * 5.9604644775390625e-8;
  let rad1 = sqrt(-2.0 * log(u1));
  let rad2 = sqrt(-2.0 * log(u3));
  // angles in [-pi, pi): WGSL bounds the error of sin/cos only on that range
  let t1 = 6.283185307179586 * (unit(r.y) - 0.5);
  let t2 = 6.283185307179586 * (unit(r.w) - 0.5);
  let v = vec4<f32>(rad1 * cos(t1), rad1 * sin(t1), rad2 * cos(t2), rad2 * sin(t2)) * p.high + p.low;
#else
  let v = vec4<f32>(unit(r.x), unit(r.y), unit(r.z), unit(r.w)) * (p.high - p.low) + p.low;
#endif
  for (var j = 0u; j < 4u; j++) {
    if (base + j < p.n) {
      out[base + j] = v[j];
    }
  }
}
#endif
