// torch.nn.functional.grid_sample on [N, C, H, W] (ND = 2) and [N, C, D, H, W] (ND = 3) input: forward, backward
// (BACKWARD), and the two helper passes of the input gradient: max |gOut| (GMAX) and fixed point to f32 (FINALIZE).
// With FLOW it is VoxelMorph's spatial transformer instead: the sample positions come from a displacement field in
// voxels (see below).
//
// Layout (all contiguous, row-major): input [N, C, inSpatial]; output and gOut [N, C, outSpatial].
//   grid mode: coords = grid [N, outSpatial, ND] holding (x, y[, z]) = (W, H[, D] axis), normalised to [-1, 1] and
//     unnormalised with p.alignCorners as PyTorch does.
//   FLOW mode: coords = flow [N, ND, outSpatial] in voxels, channel i displacing along spatial axis i (D, H, W
//     order); output voxel v samples input position v + flow(v) (align_corners=True semantics: voxel centres at
//     integer positions, so no normalisation round trip); output spatial shape = input spatial shape.
//   ADD_SELF (FLOW, forward, input = flow): output = input(v) + the sample, a squaring step of integrateVelocity.
//   Axis a = 0, 1, 2 below is x (W), y (H), z (D); a 2-D problem runs as 3-D with D = 1 and z = 0 (weight 1).
// Padding (p.padding): 0 zeros (out-of-range corners read 0), 1 border (clip), 2 reflection (reflect, then clip), with
//   PyTorch's gradient rules: the clip derivative is 0 on and beyond the border, reflection flips the sign.
// Mapping: one invocation per output location (n, o), 2-D workgroup grid (flat_workgroup). It computes the source
//   position, the corner offsets and weights once and loops over the C channels.
// Forward bindings: 1 out, 2 inp, 3 coords.
// BACKWARD bindings: 1 gOut, 2 coords, 3 inp and 4 gCoords (GRID_GRAD), 5 acc and 6 gmax (INPUT_GRAD).
//   gCoords (same layout as coords) is analytic per output location: no atomics. NEAREST has zero grid gradient.
//   Input gradient, deterministic (PyTorch's CUDA kernel is not, pytorch#68959): each contribution w * g is scaled by
//   2^e, rounded to an integer and added to a 64-bit two's-complement accumulator acc[2i] (low word), acc[2i + 1]
//   (high word) with two u32 atomicAdds, the low word's carry going into the high word. Integer addition is
//   associative, so the final sums are bit-identical whatever order the atomics land in (a gather formulation
//   would have to invert an arbitrary grid, i.e. sort the samples by input voxel). e = 62 - fixedBits -
//   exponent(max|gOut|), fixedBits = ceil(log2 outSpatial): an input element receives contributions from at most
//   outSpatial output locations of its (n, c) plane, whose corner weights sum to 1, so |sum| < 2^62 (plus at most
//   half a unit of rounding per contribution) and the accumulator cannot overflow. The quantum is max|gOut| * 2^-(62 - fixedBits), 2^-41 of the largest upstream
//   gradient at 128^3 outputs: far below f32 round-off. Non-finite upstream gradients make the whole result NaN.
// GMAX bindings: 1 gmax (u32 [1], zeroed), 2 gOut [total]: gmax = bits of max |gOut| (for non-negative floats,
//   and NaN above them, the bit patterns order as the values, so atomicMax on them is exact and order-free). Each
//   invocation reads GMAX_PER elements, a workgroup atomic combines them, one global atomic per workgroup.
// FINALIZE bindings: 1 out (f32 [total]), 2 acc (as above), 3 gmax; one invocation per input element.
struct Params {
  total: u32,
  outSpatial: u32,
  channels: u32,
  inSpatial: u32,
  // (W, H, D, 1) of the input and of the output; D = 1 in 2-D
  inSize: vec4<u32>,
  outSize: vec4<u32>,
  padding: u32,
  alignCorners: u32,
  fixedBits: u32,
  // flat index, in the whole output, of this dispatch's first output location (outputs in slabs; 0 otherwise):
  // FLOW mode's voxel positions count from it (outSize is the whole output's)
  outStart: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
#if GMAX
@group(0) @binding(1) var<storage, read_write> gmaxBits: array<atomic<u32>>;
@group(0) @binding(2) var<storage, read> gOut: array<f32>;
var<workgroup> wmax: atomic<u32>;
const GMAX_PER = {{GMAX_PER}}u;
#else
#if FINALIZE
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> acc: array<u32>;
@group(0) @binding(3) var<storage, read> gmax: array<f32>;
#else
#if BACKWARD
@group(0) @binding(1) var<storage, read> gOut: array<f32>;
@group(0) @binding(2) var<storage, read> coords: array<f32>;
#if GRID_GRAD
@group(0) @binding(3) var<storage, read> inp: array<f32>;
@group(0) @binding(4) var<storage, read_write> gCoords: array<f32>;
#endif
#if INPUT_GRAD
@group(0) @binding(5) var<storage, read_write> acc: array<atomic<u32>>;
@group(0) @binding(6) var<storage, read> gmax: array<f32>;
#endif
#else
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> inp: array<f32>;
@group(0) @binding(3) var<storage, read> coords: array<f32>;
#endif
#endif
#endif

#if DIM3
const ND = 3u;
const CORNERS = 8u;
#else
const ND = 2u;
const CORNERS = 4u;
#endif

// ---- fixed point ------------------------------------------------------------------------------------------------

fn is_finite(x: f32) -> bool {
  // on the bits: WGSL lets compilers assume floats are finite, so x == x style tests may be folded away
  return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u;
}

// The scale exponent e (see the header); 0 for an all-zero or non-finite gradient.
fn fixed_exponent(m: f32) -> i32 {
  if (!is_finite(m) || m == 0.0) {
    return 0;
  }
  // m < 2^k with k = biased exponent - 126 (denormals: m < 2^-126)
  let k = i32((bitcast<u32>(m) >> 23u) & 0xffu) - 126;
  return 62 - i32(p.fixedBits) - k;
}

// x * 2^e in two steps: e spans about [-98, 188], beyond one ldexp's exponent range.
fn scale2(x: f32, e: i32) -> f32 {
  let h = e / 2;
  return ldexp(ldexp(x, h), e - h);
}

#if GMAX
fn max_pass(wg: u32, lid: u32) {
  if (lid == 0u) {
    atomicStore(&wmax, 0u);
  }
  workgroupBarrier();
  var m = 0u;
  for (var k = 0u; k < GMAX_PER; k++) {
    let i = (wg * GMAX_PER + k) * {{WG}}u + lid;
    if (i < p.total) {
      m = max(m, bitcast<u32>(gOut[i]) & 0x7fffffffu);
    }
  }
  atomicMax(&wmax, m);
  workgroupBarrier();
  if (lid == 0u) {
    atomicMax(&gmaxBits[0], atomicLoad(&wmax));
  }
}
#endif

#if !FINALIZE
#if !GMAX
#if BACKWARD
#if INPUT_GRAD
// acc[i] += round(v) as a 64-bit integer; |v| < 2^62.
fn acc_add(i: u32, v: f32) {
  let m = round(abs(v));
  if (m == 0.0) {
    return;
  }
  // m = hi * 2^32 + lo exactly: m is an integer, and m - hi * 2^32 < 2^32 is a multiple of m's ulp
  let hiF = floor(m * 2.3283064365386963e-10);
  var lo = u32(m - hiF * 4294967296.0);
  var hi = u32(hiF);
  if (v < 0.0) {
    // two's-complement negation of (hi, lo)
    hi = ~hi + select(0u, 1u, lo == 0u);
    lo = ~lo + 1u;
  }
  let old = atomicAdd(&acc[2u * i], lo);
  hi += select(0u, 1u, old + lo < old);
  if (hi != 0u) {
    atomicAdd(&acc[2u * i + 1u], hi);
  }
}
#endif
#endif

// ---- source positions ---------------------------------------------------------------------------------------------

// Along one axis: the sample position split into its whole part and fraction, and d position / d raw coordinate.
// The weights come from the fraction computed without forming the position in f32 first (that would round it to
// the position's ulp, 4e-6 voxel at 64 voxels: 1e-4 relative in the grid gradient); in FLOW mode and for
// power-of-two sizes it is exact. `c` is a normalised grid coordinate, or in FLOW mode the displacement of voxel `vox`.
fn source_axis(c: f32, size: u32, vox: u32) -> vec3<f32> {
  let s = f32(size);
#if FLOW
  let off = f32(vox);
  let mult = 1.0;
  let t = c;
#else
  // PyTorch's ((c + 1) / 2) (s - 1) and ((c + 1) s - 1) / 2, written as c * mult + off
  let off = 0.5 * (s - 1.0);
  let mult = select(0.5 * s, off, p.alignCorners != 0u);
  let t = c * mult;
#endif
  let pos = t + off;
  // inside (0, size - 1) border and reflection padding change nothing (and have derivative 1)
  if (p.padding == 0u || (pos > 0.0 && pos < s - 1.0)) {
    let tf = floor(t);
    let r = t - tf;
    let whole = floor(off);
    let half = off - whole;
    if (half != 0.0 && r >= 0.5) {
      return vec3<f32>(tf + whole + 1.0, r - 0.5, mult);
    }
    return vec3<f32>(tf + whole, r + half, mult);
  }
  var q: vec2<f32>;
  if (p.padding == 1u) {
    q = clip_coord(pos, size);
  } else {
    var f: vec2<f32>;
    if (p.alignCorners != 0u) {
      f = reflect_coord(pos, 0, 2 * (i32(size) - 1));
    } else {
      f = reflect_coord(pos, -1, 2 * i32(size) - 1);
    }
    let k = clip_coord(f.x, size);
    q = vec2<f32>(k.x, f.y * k.y);
  }
  let b = floor(q.x);
  return vec3<f32>(b, q.x - b, mult * q.y);
}

// Clamp to [0, size - 1] with (value, derivative); the derivative is 0 on the borders too (PyTorch's
// clip_coordinates_set_grad).
fn clip_coord(x: f32, size: u32) -> vec2<f32> {
  let hi = f32(size - 1u);
  if (x <= 0.0) {
    return vec2<f32>(0.0, 0.0);
  }
  if (x >= hi) {
    return vec2<f32>(hi, 0.0);
  }
  return vec2<f32>(x, 1.0);
}

// Reflect x into [twiceLow / 2, twiceHigh / 2] with (value, derivative) (PyTorch's reflect_coordinates_set_grad).
fn reflect_coord(x: f32, twiceLow: i32, twiceHigh: i32) -> vec2<f32> {
  if (twiceLow == twiceHigh) {
    return vec2<f32>(0.0, 0.0);
  }
  let lo = f32(twiceLow) * 0.5;
  let span = f32(twiceHigh - twiceLow) * 0.5;
  var v = x - lo;
  var sgn = 1.0;
  if (v < 0.0) {
    sgn = -1.0;
    v = -v;
  }
  let flips = floor(v / span);
  let extra = v - flips * span;
  if ((i32(flips) & 1) == 0) {
    return vec2<f32>(extra + lo, sgn);
  }
  return vec2<f32>(span - extra + lo, -sgn);
}

// Sample position along (x, y, z) = base + frac in input voxels, and d position / d coords.
struct Source {
  base: vec3<f32>,
  frac: vec3<f32>,
  mult: vec3<f32>,
}

fn source(n: u32, o: u32) -> Source {
  var s: Source;
  s.base = vec3<f32>(0.0);
  s.frac = vec3<f32>(0.0);
  s.mult = vec3<f32>(0.0);
  let ow = o + p.outStart;
  let vox = vec3<u32>(ow % p.outSize.x, (ow / p.outSize.x) % p.outSize.y, ow / (p.outSize.x * p.outSize.y));
  for (var a = 0u; a < ND; a++) {
#if FLOW
    let c = coords[(n * ND + (ND - 1u - a)) * p.outSpatial + o];
#else
    let c = coords[(n * p.outSpatial + o) * ND + a];
#endif
    let r = source_axis(c, p.inSize[a], vox[a]);
    s.base[a] = r.x;
    s.frac[a] = r.y;
    s.mult[a] = r.z;
  }
  return s;
}

// Flat offset of voxel v within one (n, c) plane, or -1 outside the input.
fn voxel_offset(v: vec3<i32>) -> i32 {
  let size = vec3<i32>(p.inSize.xyz);
  if (any(v < vec3<i32>(0)) || any(v >= size)) {
    return -1;
  }
  return (v.z * size.y + v.y) * size.x + v.x;
}

// Corner k of the interpolation cell (bit 0: x + 1, bit 1: y + 1, bit 2: z + 1): PyTorch's nw, ne, sw, se order.
struct Corner {
  offset: i32,
  weight: f32,
  // d weight / d position
  dw: vec3<f32>,
}

fn corner(s: Source, k: u32) -> Corner {
  let up = vec3<bool>((k & 1u) != 0u, (k & 2u) != 0u, (k & 4u) != 0u);
  let w = select(1.0 - s.frac, s.frac, up);
  let sgn = select(vec3<f32>(-1.0), vec3<f32>(1.0), up);
  var c: Corner;
  c.offset = voxel_offset(vec3<i32>(s.base) + vec3<i32>(up));
  c.weight = w.x * w.y * w.z;
  c.dw = sgn * vec3<f32>(w.y * w.z, w.x * w.z, w.x * w.y);
  return c;
}

// The 8 corners of the interpolation cell as vectors, in corner() order: corners 0-3 (z) in *0, 4-7 (z + 1) in *1;
// offsets clamped into the plane where the corner lies outside (inside false), weights as corner() computes them.
struct Cell {
  off0: vec4<u32>,
  off1: vec4<u32>,
  w0: vec4<f32>,
  w1: vec4<f32>,
  in0: vec4<bool>,
  in1: vec4<bool>,
}

fn cell_of(s: Source) -> Cell {
  let size = vec3<i32>(p.inSize.xyz);
  let b = vec3<i32>(s.base);
  let okLo = (b >= vec3<i32>(0)) & (b < size);
  let okHi = (b + vec3<i32>(1) >= vec3<i32>(0)) & (b + vec3<i32>(1) < size);
  let lo = 1.0 - s.frac;
  let hi = s.frac;
  let sy = size.x;
  let sz = size.x * size.y;
  let o = (b.z * size.y + b.y) * size.x + b.x;
  let dxy = vec4<i32>(0, 1, sy, sy + 1);
  var c: Cell;
  c.in0 = vec4<bool>(okLo.x, okHi.x, okLo.x, okHi.x) & vec4<bool>(okLo.y, okLo.y, okHi.y, okHi.y) & vec4<bool>(okLo.z);
  c.in1 = vec4<bool>(okLo.x, okHi.x, okLo.x, okHi.x) & vec4<bool>(okLo.y, okLo.y, okHi.y, okHi.y) & vec4<bool>(okHi.z);
  c.off0 = vec4<u32>(select(vec4<i32>(0), vec4<i32>(o) + dxy, c.in0));
  c.off1 = vec4<u32>(select(vec4<i32>(0), vec4<i32>(o + sz) + dxy, c.in1));
  let wx = vec4<f32>(lo.x, hi.x, lo.x, hi.x);
  let wy = vec4<f32>(lo.y, lo.y, hi.y, hi.y);
  c.w0 = wx * wy * lo.z;
  c.w1 = wx * wy * hi.z;
  return c;
}

fn nearest_offset(s: Source) -> i32 {
  // round half to even, as std::nearbyint
  let odd = (vec3<i32>(s.base) & vec3<i32>(1)) != vec3<i32>(0);
  let up = (s.frac > vec3<f32>(0.5)) | ((s.frac == vec3<f32>(0.5)) & odd);
  return voxel_offset(vec3<i32>(s.base) + vec3<i32>(up));
}
#endif
#endif

@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
#if GMAX
  // before any early return: the barriers inside need the whole workgroup
  max_pass(flat_workgroup(wid, nwg), lid);
#else
  let t = flat_workgroup(wid, nwg) * {{WG}}u + lid;
  if (t >= p.total) {
    return;
  }
#if FINALIZE
  let m = gmax[0];
  if (!is_finite(m)) {
    // a quiet NaN built from a runtime value (a NaN constant does not compile)
    out[t] = bitcast<f32>(bitcast<u32>(m) | 0x7fc00000u);
    return;
  }
  var lo = acc[2u * t];
  var hi = acc[2u * t + 1u];
  let neg = (hi >> 31u) != 0u;
  if (neg) {
    hi = ~hi + select(0u, 1u, lo == 0u);
    lo = ~lo + 1u;
  }
  let mag = f32(hi) * 4294967296.0 + f32(lo);
  out[t] = scale2(select(mag, -mag, neg), -fixed_exponent(m));
#else
  let n = t / p.outSpatial;
  let o = t % p.outSpatial;
  let s = source(n, o);
  let inBase = n * p.channels * p.inSpatial;
  let outBase = n * p.channels * p.outSpatial + o;
#if !BACKWARD
#if NEAREST
  let off = nearest_offset(s);
  for (var c = 0u; c < p.channels; c++) {
    var v = 0.0;
    if (off >= 0) {
      v = inp[inBase + c * p.inSpatial + u32(off)];
    }
    out[outBase + c * p.outSpatial] = v;
  }
#else
  // the corners in registers (a local array of them is per-lane scratch memory on CPU adapters); a corner outside
  // the input reads a clamped, valid address and adds 0, as skipping it would
  let cell = cell_of(s);
  for (var c = 0u; c < p.channels; c++) {
    let plane = inBase + c * p.inSpatial;
    var v = 0.0;
    v += select(0.0, inp[plane + cell.off0.x] * cell.w0.x, cell.in0.x);
    v += select(0.0, inp[plane + cell.off0.y] * cell.w0.y, cell.in0.y);
    v += select(0.0, inp[plane + cell.off0.z] * cell.w0.z, cell.in0.z);
    v += select(0.0, inp[plane + cell.off0.w] * cell.w0.w, cell.in0.w);
#if DIM3
    v += select(0.0, inp[plane + cell.off1.x] * cell.w1.x, cell.in1.x);
    v += select(0.0, inp[plane + cell.off1.y] * cell.w1.y, cell.in1.y);
    v += select(0.0, inp[plane + cell.off1.z] * cell.w1.z, cell.in1.z);
    v += select(0.0, inp[plane + cell.off1.w] * cell.w1.w, cell.in1.w);
#endif
#if ADD_SELF
    v = inp[plane + o + p.outStart] + v;
#endif
    out[outBase + c * p.outSpatial] = v;
  }
#endif
#else
#if INPUT_GRAD
  let e = fixed_exponent(gmax[0]);
#endif
  var gpos = vec3<f32>(0.0);
#if NEAREST
#if INPUT_GRAD
  let off = nearest_offset(s);
  if (off >= 0) {
    for (var c = 0u; c < p.channels; c++) {
      acc_add(inBase + c * p.inSpatial + u32(off), scale2(gOut[outBase + c * p.outSpatial], e));
    }
  }
#endif
#else
  var corners: array<Corner, CORNERS>;
  for (var k = 0u; k < CORNERS; k++) {
    corners[k] = corner(s, k);
  }
  for (var c = 0u; c < p.channels; c++) {
    let g = gOut[outBase + c * p.outSpatial];
    let plane = inBase + c * p.inSpatial;
    for (var k = 0u; k < CORNERS; k++) {
      if (corners[k].offset < 0) {
        continue;
      }
      let i = plane + u32(corners[k].offset);
#if GRID_GRAD
      gpos += (inp[i] * g) * corners[k].dw;
#endif
#if INPUT_GRAD
      acc_add(i, scale2(corners[k].weight * g, e));
#endif
    }
  }
#endif
#if GRID_GRAD
  gpos *= s.mult;
  for (var a = 0u; a < ND; a++) {
#if FLOW
    gCoords[(n * ND + (ND - 1u - a)) * p.outSpatial + o] = gpos[a];
#else
    gCoords[(n * p.outSpatial + o) * ND + a] = gpos[a];
#endif
  }
#endif
#endif
#endif
#endif
}
