// PyTorch's linear x2 without alignCorners (NEAREST: its nearest x2), one axis per pass (the host chains the doubled
// axes and checked their taps are these), forward and adjoint, on whole vec4s (a load or store site costs CPU adapters
// a loop over the lanes; the fused forward and the backward's table walk scattered theirs).
// Forward: out[2r] = 0.25 x[r - 1] + 0.75 x[r], out[2r + 1] = 0.75 x[r] + 0.25 x[r + 1]; ADJOINT (the backward):
// x[r] = 0.25 out[2r - 1] + 0.75 out[2r] + 0.75 out[2r + 1] + 0.25 out[2r + 2]; indices clamped to the axis.
// NEAREST: out[2r] = out[2r + 1] = x[r]; ADJOINT x[r] = out[2r] + out[2r + 1].
// Bindings: dst and src of vec4s. Along a strided axis (inner, the element count after the axis, a multiple of 4):
// [outer, rows, inner / 4], src with p.nSrc rows; LAST (the last axis, its lengths multiples of 4): [outer, row / 4].
// Mapping: flat over a 1-D or 2-D grid of {{WG}}-wide workgroups. Forward: along a strided axis one invocation per
// ROWS src vec4s of a column, writing the two dst vec4s each feeds (rows 2r and 2r + 1); along the last axis one per
// src vec4 (outputs 8c .. 8c + 7); DH (a 3-D volume doubled along D and H, WX: and W, in one pass) one per column of
// ROWS rows x 2 planes, writing their 4 (WX: 8) dst vec4s each. ADJOINT: along a strided
// axis one invocation per ROWS dst vec4s of a column (rows r0 .. r0 + ROWS - 1 from src rows 2 r0 - 1 .. 2 r0 + 2 ROWS),
// along the last axis one per ROWS dst vec4s of a row (dst vec4 c: outputs 4c .. 4c + 3 from src 8c - 1 .. 8c + 8).
struct Params {
  total: u32,
  inner: u32,
  nSrc: u32,
  // DH: src planes (the D axis; nSrc counts the H rows; with WX inner is the src row's length)
  nPlanes: u32,
}

// rows per invocation along a strided axis (src rows forward, dst rows ADJOINT; ADJOINT along the last axis dst vec4s)
const ROWS = {{ROWS}}u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> src: array<vec4<f32>>;

#if DH
#if WX
// WX: the W axis doubled in the same pass: a src vec4 becomes two (lo, hi), as the last-axis pass computes them
const WV = 2u;
#else
const WV = 1u;
#endif

// Row r of the src plane at base (vec4 column c of runs), doubled along W with WX
fn wLoad(base: u32, r: u32, c: u32, runs: u32) -> array<vec4<f32>, WV> {
  let v = src[base + r * runs];
#if WX
  let row = base - c + r * runs;
  let left = select(src[row + max(c, 1u) - 1u].w, v.x, c == 0u);
  let right = select(src[row + min(c + 1u, runs - 1u)].x, v.w, c + 1u == runs);
#if NEAREST
  return array<vec4<f32>, WV>(v.xxyy, v.zzww);
#else
  return array<vec4<f32>, WV>(0.75 * v.xxyy + 0.25 * vec4<f32>(left, v.y, v.x, v.z),
                              0.75 * v.zzww + 0.25 * vec4<f32>(v.y, v.w, v.z, right));
#endif
#else
  return array<vec4<f32>, WV>(v);
#endif
}

// The H-doubled rows 2 h0 .. 2 h0 + 2 ROWS - 1 of src plane clamp(d - 1 + off) (off 0, 1, 2: the plane before, at,
// after d) at column c, as the H pass computes them (WV vec4s each: row i's j-th at i * WV + j)
fn hRows(a: u32, d: u32, off: u32, h0: u32, c: u32, runs: u32) -> array<vec4<f32>, 2u * ROWS * WV> {
  let plane = min(max(d + off, 1u) - 1u, p.nPlanes - 1u);
  let base = (a * p.nPlanes + plane) * p.nSrc * runs + c;
  var out: array<vec4<f32>, 2u * ROWS * WV>;
  var up = wLoad(base, max(h0, 1u) - 1u, c, runs);
  var v = wLoad(base, h0, c, runs);
  for (var k = 0u; k < ROWS; k++) {
    let down = wLoad(base, min(h0 + k + 1u, p.nSrc - 1u), c, runs);
    for (var j = 0u; j < WV; j++) {
#if NEAREST
      out[2u * k * WV + j] = v[j];
      out[(2u * k + 1u) * WV + j] = v[j];
#else
      out[2u * k * WV + j] = 0.75 * v[j] + 0.25 * up[j];
      out[(2u * k + 1u) * WV + j] = 0.75 * v[j] + 0.25 * down[j];
#endif
    }
    up = v;
    v = down;
  }
  return out;
}

#endif
@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = flat_workgroup(wid, nwg) * {{WG}}u + lid;
  if (t >= p.total) {
    return;
  }
#if ADJOINT
#if LAST
  // ROWS dst vec4s of a row from c0 on (those that exist), each src vec4 loaded once: 2 + 2 / ROWS loads per output
  let runs = p.nSrc / 8u;
  let groups = (runs + ROWS - 1u) / ROWS;
  let row = t / groups;
  let c0 = (t % groups) * ROWS;
  let rb = row * (p.nSrc / 4u);
#if NEAREST
  for (var k = 0u; k < ROWS; k++) {
    let c = c0 + k;
    if (c >= runs) {
      break;
    }
    let v1 = src[rb + 2u * c];
    let v2 = src[rb + 2u * c + 1u];
    dst[row * runs + c] = vec4<f32>(v1.x + v1.y, v1.z + v1.w, v2.x + v2.y, v2.z + v2.w);
  }
#else
  var v1 = src[rb + 2u * c0];
  // one value of each neighbouring vec4, clamped at the row's ends
  var left = select(src[rb + max(2u * c0, 1u) - 1u].w, v1.x, c0 == 0u);
  for (var k = 0u; k < ROWS; k++) {
    let c = c0 + k;
    if (c >= runs) {
      break;
    }
    let v2 = src[rb + 2u * c + 1u];
    let after = src[rb + min(2u * c + 2u, p.nSrc / 4u - 1u)];
    let right = select(after.x, v2.w, c + 1u == runs);
    let near = vec4<f32>(v1.x + v1.y, v1.z + v1.w, v2.x + v2.y, v2.z + v2.w);
    let far = vec4<f32>(left + v1.z, v1.y + v2.x, v1.w + v2.z, v2.y + right);
    dst[row * runs + c] = 0.75 * near + 0.25 * far;
    left = v2.w;
    v1 = after;
  }
#endif
#else
  // ROWS dst rows from ROWS q on (those that exist) from src rows 2 ROWS q - 1 .. 2 ROWS q + 2 ROWS: each src row
  // loaded once, 2 + 2 / ROWS loads per output
  let nDst = p.nSrc / 2u;
  let groups = (nDst + ROWS - 1u) / ROWS;
  let runs = p.inner / 4u;
  let c = t % runs;
  let r0 = ((t / runs) % groups) * ROWS;
  let a = t / (runs * groups);
  let base = a * p.nSrc * runs + c;
#if NEAREST
  for (var k = 0u; k < ROWS; k++) {
    let r = r0 + k;
    if (r >= nDst) {
      break;
    }
    dst[(a * nDst + r) * runs + c] = src[base + 2u * r * runs] + src[base + (2u * r + 1u) * runs];
  }
#else
  let last = p.nSrc - 1u;
  var before = src[base + (max(2u * r0, 1u) - 1u) * runs];
  var even = src[base + 2u * r0 * runs];
  var odd = src[base + (2u * r0 + 1u) * runs];
  for (var k = 0u; k < ROWS; k++) {
    let r = r0 + k;
    if (r >= nDst) {
      break;
    }
    let after = src[base + min(2u * r + 2u, last) * runs];
    dst[(a * nDst + r) * runs + c] = 0.75 * (even + odd) + 0.25 * (before + after);
    before = odd;
    even = after;
    odd = src[base + min(2u * r + 3u, last) * runs];
  }
#endif
#endif
#else
#if DH
  // D and H (WX: and W) doubled in one pass over [outer, nPlanes, nSrc rows, inner / 4]: ROWS src rows x 2 src planes
  // per invocation (a column c), each src vec4 loaded once for them; per plane the W and H rows first, then D
  // combines planes: the same sums in the same order as the separate passes
  let runs = p.inner / 4u;
  let hGroups = (p.nSrc + ROWS - 1u) / ROWS;
  let dGroups = (p.nPlanes + 1u) / 2u;
  let c = t % runs;
  let h0 = ((t / runs) % hGroups) * ROWS;
  let d0 = ((t / (runs * hGroups)) % dGroups) * 2u;
  let a = t / (runs * hGroups * dGroups);
  let oRuns = WV * runs;
  var prev = hRows(a, d0, 0u, h0, c, runs);
  var cur = hRows(a, d0, 1u, h0, c, runs);
  // fixed trip counts, guarded stores (no breaks): the loops unroll and the rows stay in registers
  for (var k = 0u; k < 2u; k++) {
    let d = d0 + k;
    let next = hRows(a, d, 2u, h0, c, runs);
    let o0 = ((a * 2u * p.nPlanes + 2u * d) * 2u * p.nSrc) * oRuns + WV * c;
    let o1 = o0 + 2u * p.nSrc * oRuns;
    for (var i = 0u; i < 2u * ROWS; i++) {
      let r = 2u * h0 + i;
      for (var j = 0u; j < WV; j++) {
        let e = i * WV + j;
        if (d < p.nPlanes && r < 2u * p.nSrc) {
#if NEAREST
          dst[o0 + r * oRuns + j] = cur[e];
          dst[o1 + r * oRuns + j] = cur[e];
#else
          dst[o0 + r * oRuns + j] = 0.75 * cur[e] + 0.25 * prev[e];
          dst[o1 + r * oRuns + j] = 0.75 * cur[e] + 0.25 * next[e];
#endif
        }
      }
    }
    prev = cur;
    cur = next;
  }
#else
#if LAST
#if NEAREST
  let v = src[t];
  dst[2u * t] = v.xxyy;
  dst[2u * t + 1u] = v.zzww;
#else
  let runs = p.nSrc / 4u;
  let c = t % runs;
  let v = src[t];
  // the neighbours of this vec4 along the row, clamped at its ends
  let left = select(src[max(t, 1u) - 1u].w, v.x, c == 0u);
  let right = select(src[min(t + 1u, p.total - 1u)].x, v.w, c + 1u == runs);
  let near = vec4<f32>(v.x, v.x, v.y, v.y);
  let far = vec4<f32>(left, v.y, v.x, v.z);
  let near2 = vec4<f32>(v.z, v.z, v.w, v.w);
  let far2 = vec4<f32>(v.y, v.w, v.z, right);
  dst[2u * t] = 0.75 * near + 0.25 * far;
  dst[2u * t + 1u] = 0.75 * near2 + 0.25 * far2;
#endif
#else
  // ROWS src rows of a column from ROWS q on (those that exist), each loaded once with its two neighbours: 1 + 2 / ROWS
  // loads per src row instead of 3
  let runs = p.inner / 4u;
  let groups = (p.nSrc + ROWS - 1u) / ROWS;
  let c = t % runs;
  let r0 = ((t / runs) % groups) * ROWS;
  let a = t / (runs * groups);
  let base = a * p.nSrc * runs + c;
  let obase = a * 2u * p.nSrc * runs + c;
#if NEAREST
  for (var k = 0u; k < ROWS; k++) {
    let r = r0 + k;
    if (r >= p.nSrc) {
      break;
    }
    let v = src[base + r * runs];
    dst[obase + 2u * r * runs] = v;
    dst[obase + (2u * r + 1u) * runs] = v;
  }
#else
  var up = src[base + (max(r0, 1u) - 1u) * runs];
  var v = src[base + r0 * runs];
  for (var k = 0u; k < ROWS; k++) {
    let r = r0 + k;
    if (r >= p.nSrc) {
      break;
    }
    let down = src[base + min(r + 1u, p.nSrc - 1u) * runs];
    dst[obase + 2u * r * runs] = 0.75 * v + 0.25 * up;
    dst[obase + (2u * r + 1u) * runs] = 0.75 * v + 0.25 * down;
    up = v;
    v = down;
  }
#endif
#endif
#endif
#endif
}
