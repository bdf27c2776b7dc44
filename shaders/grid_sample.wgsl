// torch.nn.functional.grid_sample on [N, C, H, W] (ND = 2) and [N, C, D, H, W] (ND = 3) input: forward, backward
// (BACKWARD), and the passes of the input gradient: the samples ordered by cell (ORDER, PLACE) and the gather per
// input element (GATHER). With FLOW it is VoxelMorph's spatial transformer instead: the sample positions come from a
// displacement field in voxels (see below).
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
// BACKWARD bindings: 1 gOut, 2 coords, 3 inp and 4 gCoords (GRID_GRAD), 5 counts, 6 slots and 7 keys (INPUT_GRAD).
//   gCoords (same layout as coords) is analytic per output location: no atomics. NEAREST has zero grid gradient.
// The input gradient is a gather, without float atomics, deterministic (PyTorch's CUDA kernel is not, pytorch#68959):
//   cells: a sample's cell is its interpolation cell (base voxel b, b + 1 along each axis; NEAREST: the voxel it
//     reads), numbered with b + 1 in a (W + 1) x (H + 1) x (D + 1) grid per batch element (2-D: (W + 1) x (H + 1)) so
//     b = -1 counts; a sample whose cell touches no input voxel (or whose position is not finite) has none.
//   BACKWARD with INPUT_GRAD counts each sample t (flat index n * outSpatial + o) into its cell c (over the batch):
//     keys[t] = c (NO_CELL if none), slots[t] = atomicAdd(counts[1 + c], 1) (counts[0] stays 0). The host scans
//     counts into ends (inclusive), so cell c's samples go to [ends[c], ends[c + 1]).
//   ORDER (one invocation per sample; bindings 1 keys, 2 slots, 3 ends, 4 order) writes t to order[ends[c] + slot]:
//     the cell's samples in the order the atomics landed.
//   PLACE (per sample; bindings 1 coords, 2 keys, 3 slots, 4 ends, 5 order, 6 gOut, 7 records) puts the sample's
//     record at place j = ends[c] + its rank by t among its cell's samples, so every run sees a cell's samples in one
//     order: records[j * (FRACS + groups) ..] = its fraction within the cell (a vec4; none for NEAREST), then its
//     upstream gradients, a vec4 per four channels (one vec4 load each in GATHER: cheaper on CPU adapters than the
//     scalars). A cell of more than RANK_LIMIT samples keeps the atomics' order (ranking costs a load per sample of
//     the cell) and is summed exactly instead, see below.
//   GATHER (bindings 1 out (ACC: read and added to), 2 ends, 3 records): NEAREST one invocation per input element
//     (n, i), adding its own cell's samples; the linear modes one per 2x2(x2) block of input elements, adding for
//     each the samples of the cells having it as a corner, weight * g, in f32, rows of three cells along x in a fixed
//     order, each cell's samples in its order, four channels at a time. A cell touching several of the block's
//     elements is read once for all. A cell of more than RANK_LIMIT samples is summed exactly:
//     each contribution scaled by 2^e and rounded to a 64-bit integer, e = 62 - ceil(log2 samples) - exponent of
//     the cell's largest |contribution| (so the sum cannot overflow; integer addition does not depend on the order),
//     then rounded once to f32; a non-finite contribution makes that cell's sum NaN.
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
  // flat index, in the whole output, of this dispatch's first output location (outputs in slabs; 0 otherwise):
  // FLOW mode's voxel positions count from it (outSize is the whole output's)
  outStart: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
// one of FORWARD, BACKWARD, ORDER, PLACE, GATHER is set
#if FORWARD
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> inp: array<f32>;
@group(0) @binding(3) var<storage, read> coords: array<f32>;
#endif
#if BACKWARD
@group(0) @binding(1) var<storage, read> gOut: array<f32>;
@group(0) @binding(2) var<storage, read> coords: array<f32>;
#if GRID_GRAD
@group(0) @binding(3) var<storage, read> inp: array<f32>;
@group(0) @binding(4) var<storage, read_write> gCoords: array<f32>;
#endif
#if INPUT_GRAD
@group(0) @binding(5) var<storage, read_write> counts: array<atomic<u32>>;
@group(0) @binding(6) var<storage, read_write> slots: array<u32>;
@group(0) @binding(7) var<storage, read_write> keys: array<u32>;
#endif
#endif
#if ORDER
@group(0) @binding(1) var<storage, read> keys: array<u32>;
@group(0) @binding(2) var<storage, read> slots: array<u32>;
@group(0) @binding(3) var<storage, read> ends: array<u32>;
@group(0) @binding(4) var<storage, read_write> order: array<u32>;
#endif
#if PLACE
@group(0) @binding(1) var<storage, read> coords: array<f32>;
@group(0) @binding(2) var<storage, read> keys: array<u32>;
@group(0) @binding(3) var<storage, read> slots: array<u32>;
@group(0) @binding(4) var<storage, read> ends: array<u32>;
@group(0) @binding(5) var<storage, read> order: array<u32>;
@group(0) @binding(6) var<storage, read> gOut: array<f32>;
@group(0) @binding(7) var<storage, read_write> records: array<vec4<f32>>;
#endif
#if GATHER
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> ends: array<u32>;
@group(0) @binding(3) var<storage, read> records: array<vec4<f32>>;
#endif

const NO_CELL = 0xffffffffu;
const RANK_LIMIT = 16u;

// vec4s of a sample's record before its upstream gradients: its fraction (none for NEAREST)
#if NEAREST
const FRACS = 0u;
#else
const FRACS = 1u;
#endif
#if DIM3
const ND = 3u;
const CORNERS = 8u;
// a cell's coordinates are its base voxel's + CELL_PAD (2-D: one layer of cells along z)
const CELL_PAD = vec3<u32>(1u, 1u, 1u);
#else
const ND = 2u;
const CORNERS = 4u;
const CELL_PAD = vec3<u32>(1u, 1u, 0u);
#endif

// Cells per batch element: (W + 1) (H + 1) (D + 1) (2-D: (W + 1) (H + 1)), base voxels -1 .. size - 1 along each axis.
fn cells_per_batch() -> u32 {
  let cs = p.inSize.xyz + CELL_PAD;
  return cs.x * cs.y * cs.z;
}

#if !GATHER
#if !ORDER
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

// The 8 corners of the interpolation cell as vectors, PyTorch's nw, ne, sw, se order (bit 0 of the corner's index:
// x + 1, bit 1: y + 1, bit 2: z + 1): corners 0-3 (z) in *0, 4-7 (z + 1) in *1; offsets clamped into the plane where
// the corner lies outside (inside false), weights the products of the axes' (1 - frac) or frac.
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

// The voxel NEAREST reads: round half to even, as std::nearbyint.
fn nearest_voxel(s: Source) -> vec3<i32> {
  let odd = (vec3<i32>(s.base) & vec3<i32>(1)) != vec3<i32>(0);
  let up = (s.frac > vec3<f32>(0.5)) | ((s.frac == vec3<f32>(0.5)) & odd);
  return vec3<i32>(s.base) + vec3<i32>(up);
}

fn nearest_offset(s: Source) -> i32 {
  return voxel_offset(nearest_voxel(s));
}

// The sample's cell within its batch element's cell grid, or -1 where it touches no input voxel (see the header).
fn cell_key(s: Source) -> i32 {
#if NEAREST
  if (nearest_offset(s) < 0) {
    return -1;
  }
  let c = vec3<u32>(nearest_voxel(s)) + CELL_PAD;
#else
  // on floats first: a far or non-finite position never reaches an integer conversion
  let size = vec3<f32>(p.inSize.xyz);
  if (!all((s.base >= vec3<f32>(-1.0)) & (s.base <= size - vec3<f32>(1.0)))) {
    return -1;
  }
  let c = vec3<u32>(vec3<i32>(s.base) + vec3<i32>(CELL_PAD));
#endif
  let cs = p.inSize.xyz + CELL_PAD;
  return i32((c.z * cs.y + c.y) * cs.x + c.x);
}
#endif
#endif

#if FORWARD
fn sample_forward(t: u32) {
  let n = t / p.outSpatial;
  let o = t % p.outSpatial;
  let s = source(n, o);
  let inBase = n * p.channels * p.inSpatial;
  let outBase = n * p.channels * p.outSpatial + o;
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
}
#endif

#if BACKWARD
fn sample_backward(t: u32) {
  let n = t / p.outSpatial;
  let o = t % p.outSpatial;
  let s = source(n, o);
#if INPUT_GRAD
  let key = cell_key(s);
  var at = NO_CELL;
  if (key >= 0) {
    at = n * cells_per_batch() + u32(key);
    slots[t] = atomicAdd(&counts[1u + at], 1u);
  }
  keys[t] = at;
#endif
#if GRID_GRAD
  let inBase = n * p.channels * p.inSpatial;
  let outBase = n * p.channels * p.outSpatial + o;
  // the corners in registers as in the forward (corners 0-3 at z, 4-7 at z + 1; bit 0 x + 1, bit 1 y + 1): d weight
  // / d position along x is sgnX * wy * wz, along y sgnY * wx * wz, along z -+ wx * wy
  let cell = cell_of(s);
  let lo = 1.0 - s.frac;
  let hi = s.frac;
  let wx = vec4<f32>(lo.x, hi.x, lo.x, hi.x);
  let wy = vec4<f32>(lo.y, lo.y, hi.y, hi.y);
  let dx = vec4<f32>(-1.0, 1.0, -1.0, 1.0) * wy;
  let dy = vec4<f32>(-1.0, -1.0, 1.0, 1.0) * wx;
  let dz = wx * wy;
  var gpos = vec3<f32>(0.0);
  for (var c = 0u; c < p.channels; c++) {
    let plane = inBase + c * p.inSpatial;
    let v0 = select(vec4<f32>(0.0), vec4<f32>(inp[plane + cell.off0.x], inp[plane + cell.off0.y], inp[plane + cell.off0.z], inp[plane + cell.off0.w]), cell.in0);
#if DIM3
    let v1 = select(vec4<f32>(0.0), vec4<f32>(inp[plane + cell.off1.x], inp[plane + cell.off1.y], inp[plane + cell.off1.z], inp[plane + cell.off1.w]), cell.in1);
    let d = vec3<f32>(dot(v0, dx) * lo.z + dot(v1, dx) * hi.z, dot(v0, dy) * lo.z + dot(v1, dy) * hi.z, dot(v1 - v0, dz));
#else
    let d = vec3<f32>(dot(v0, dx), dot(v0, dy), 0.0);
#endif
    gpos += gOut[outBase + c * p.outSpatial] * d;
  }
  gpos *= s.mult;
  for (var a = 0u; a < ND; a++) {
#if FLOW
    gCoords[(n * ND + (ND - 1u - a)) * p.outSpatial + o] = gpos[a];
#else
    gCoords[(n * p.outSpatial + o) * ND + a] = gpos[a];
#endif
  }
#endif
}
#endif

#if ORDER
fn order_sample(t: u32) {
  let cell = keys[t];
  if (cell != NO_CELL) {
    order[ends[cell] + slots[t]] = t;
  }
}
#endif

#if PLACE
fn place(t: u32) {
  let cell = keys[t];
  if (cell == NO_CELL) {
    return;
  }
  let start = ends[cell];
  let end = ends[cell + 1u];
  var rank = slots[t];
  if (end - start <= RANK_LIMIT) {
    rank = 0u;
    for (var j = start; j < end; j++) {
      rank += select(0u, 1u, order[j] < t);
    }
  }
  let groups = (p.channels + 3u) / 4u;
  let at = (start + rank) * (FRACS + groups);
  let n = t / p.outSpatial;
  let o = t % p.outSpatial;
#if !NEAREST
  records[at] = vec4<f32>(source(n, o).frac, 0.0);
#endif
  for (var c0 = 0u; c0 < p.channels; c0 += 4u) {
    let plane = (n * p.channels + c0) * p.outSpatial + o;
    // channels past the last read 0 (uniform branches: no load)
    var g = vec4<f32>(gOut[plane], 0.0, 0.0, 0.0);
    if (c0 + 1u < p.channels) {
      g.y = gOut[plane + p.outSpatial];
    }
    if (c0 + 2u < p.channels) {
      g.z = gOut[plane + 2u * p.outSpatial];
    }
    if (c0 + 3u < p.channels) {
      g.w = gOut[plane + 3u * p.outSpatial];
    }
    records[at + FRACS + c0 / 4u] = g;
  }
}
#endif

#if GATHER
// A 64-bit two's-complement integer per lane of four channels.
struct Fixed4 {
  lo: vec4<u32>,
  hi: vec4<u32>,
}

// sum += round(v) as 64-bit integers; |v| < 2^62. round(v) = hi 2^32 + lo exactly, hi = round(v 2^-32) and lo the
// remainder in [-2^31, 2^31] (exact in f32: it is made of round(v)'s low bits); lo = 2^31 moves to -2^31 with hi + 1.
// Both then convert to i32, and the signed lo adds to the low word with its sign extension (-1 or 0) to the high word.
fn fixed_add(sum: ptr<function, Fixed4>, v: vec4<f32>) {
  let m = round(v);
  var hiF = round(m * 2.3283064365386963e-10);
  var loF = m - hiF * 4294967296.0;
  let top = loF >= vec4<f32>(2147483648.0);
  hiF = select(hiF, hiF + 1.0, top);
  loF = select(loF, loF - 4294967296.0, top);
  let lo = vec4<i32>(loF);
  let low = (*sum).lo + bitcast<vec4<u32>>(lo);
  let carry = select(vec4<u32>(0u), vec4<u32>(1u), low < (*sum).lo);
  (*sum).hi += bitcast<vec4<u32>>(vec4<i32>(hiF) + (lo >> vec4<u32>(31u))) + carry;
  (*sum).lo = low;
}

// The value of a 64-bit sum per lane, nearest f32.
fn fixed_value(sum: Fixed4) -> vec4<f32> {
  let neg = (sum.hi >> vec4<u32>(31u)) != vec4<u32>(0u);
  // |sum| = (hi, lo) negated where negative
  let lo = select(sum.lo, ~sum.lo + vec4<u32>(1u), neg);
  let hi = select(sum.hi, ~sum.hi + select(vec4<u32>(0u), vec4<u32>(1u), sum.lo == vec4<u32>(0u)), neg);
  let mag = vec4<f32>(hi) * 4294967296.0 + vec4<f32>(lo);
  return select(mag, -mag, neg);
}

// Sample j's upstream gradients for channels c0 .. c0 + 3 (0 past the last channel).
fn grads(j: u32, c0: u32) -> vec4<f32> {
  return records[j * (FRACS + (p.channels + 3u) / 4u) + FRACS + c0 / 4u];
}

#if !NEAREST
// Sample j's fraction within its cell (z = 0 in 2-D).
fn frac(j: u32) -> vec3<f32> {
  return records[j * (FRACS + (p.channels + 3u) / 4u)].xyz;
}
#endif

// Sample j's contribution: its weight for the corner the gathering voxel is (up: along which axes the voxel is the
// cell's upper corner) times its upstream gradients.
fn contribution(j: u32, up: vec3<bool>, c0: u32) -> vec4<f32> {
#if NEAREST
  return grads(j, c0);
#else
  let f = frac(j);
  let w = select(vec3<f32>(1.0) - f, f, up);
  return (w.x * w.y * w.z) * grads(j, c0);
#endif
}

// The sum of cell samples [j0, j1)'s contributions: in order in f32, or exactly for a cell past RANK_LIMIT.
fn cell_sum(j0: u32, j1: u32, up: vec3<bool>, c0: u32) -> vec4<f32> {
  if (j1 - j0 <= RANK_LIMIT) {
    var plain = vec4<f32>(0.0);
    for (var j = j0; j < j1; j++) {
      plain += contribution(j, up, c0);
    }
    return plain;
  }
  var big = vec4<u32>(0u);
  for (var j = j0; j < j1; j++) {
    // |c|'s bits order as the values, NaN above infinity
    big = max(big, bitcast<vec4<u32>>(contribution(j, up, c0)) & vec4<u32>(0x7fffffffu));
  }
  // big < 2^k with k = biased exponent - 126; the sum of count contributions < 2^(k + ceil(log2 count))
  let k = vec4<i32>((big >> vec4<u32>(23u)) & vec4<u32>(0xffu)) - vec4<i32>(126);
  let e = vec4<i32>(62 - i32(firstLeadingBit(j1 - j0 - 1u)) - 1) - k;
  // 2^e in two factors: e spans about [-71, 188]
  let h = e / vec4<i32>(2);
  let first = ldexp(vec4<f32>(1.0), h);
  let second = ldexp(vec4<f32>(1.0), e - h);
  var sum = Fixed4(vec4<u32>(0u), vec4<u32>(0u));
  for (var j = j0; j < j1; j++) {
    fixed_add(&sum, contribution(j, up, c0) * first * second);
  }
  let exact = fixed_value(sum) * ldexp(vec4<f32>(1.0), -h) * ldexp(vec4<f32>(1.0), h - e);
  // a non-finite contribution (big's exponent all ones): NaN, built from a runtime value (a NaN constant does not
  // compile); the sum's order would decide between inf and NaN
  let nan = bitcast<vec4<f32>>(big | vec4<u32>(0x7fc00000u));
  return select(exact, nan, big >= vec4<u32>(0x7f800000u));
}

#if NEAREST
// The input gradient of element (n, i), NEAREST: the samples of voxel i's own cell, four channels at a time.
fn gather(t: u32) {
  let n = t / p.inSpatial;
  let i = t % p.inSpatial;
  let size = p.inSize.xyz;
  let v = vec3<u32>(i % size.x, (i / size.x) % size.y, i / (size.x * size.y));
  let cs = size + CELL_PAD;
  let cell = n * cells_per_batch() + ((v.z + CELL_PAD.z) * cs.y + v.y + CELL_PAD.y) * cs.x + v.x + CELL_PAD.x;
  for (var c0 = 0u; c0 < p.channels; c0 += 4u) {
    put4((n * p.channels + c0) * p.inSpatial + i, c0, cell_sum(ends[cell], ends[cell + 1u], vec3<bool>(false), c0));
  }
}
#else
// A row of three cells along x (bases b - 1, b, b + 1 for the block's first voxel b): the sums for the block's
// voxels b (first) and b + 1 (next) along x, with up.yz saying along which of y, z the voxels are the cells' upper
// corner. e holds the row's range ends: cell b - 1's samples are [e.x, e.y), b's [e.y, e.z), b + 1's [e.z, e.w).
struct RowSums {
  first: vec4<f32>,
  next: vec4<f32>,
}

// One row's sums cell by cell (the path for rows holding a cell past RANK_LIMIT, summed exactly).
fn row_sums(e: vec4<u32>, upYZ: vec2<bool>, c0: u32) -> RowSums {
  var r: RowSums;
  r.first = cell_sum(e.x, e.y, vec3<bool>(true, upYZ), c0) + cell_sum(e.y, e.z, vec3<bool>(false, upYZ), c0);
  r.next = cell_sum(e.y, e.z, vec3<bool>(true, upYZ), c0) + cell_sum(e.z, e.w, vec3<bool>(false, upYZ), c0);
  return r;
}

// The weights of a cell's samples for the block's two voxels along y (or z), the cell's base at offset d (-1, 0 or
// 1) from the block's first voxel: the first voxel is the upper corner at d = -1 (weight f), the lower at d = 0
// (1 - f); the second the upper at d = 0, the lower at d = 1. A voxel the cell does not touch (d = 1 for the first,
// -1 for the second) is left out by the caller, not weighted 0: 0 * inf would be NaN.
fn pair_weights(f: f32, d: i32) -> vec2<f32> {
  return vec2<f32>(select(1.0 - f, f, d == -1), select(1.0 - f, f, d == 0));
}

// A row's sample into the block's pair of voxels along x at one (y, z): weight w along y and z, g0 / g1 its weighted
// gradients for the first / second voxel along x.
fn add_pair(first: ptr<function, vec4<f32>>, next: ptr<function, vec4<f32>>, w: f32, g0: vec4<f32>, g1: vec4<f32>) {
  *first += w * g0;
  *next += w * g1;
}

// The input gradient of a 2x2(x2) block of input elements (n, v + (a, b, c)), v even along each axis (one
// invocation per block; elements past the input's end skipped): the samples of the 4^ND cells having one of them as
// a corner, cell rows along x (bases v + (-1 .. 1, dy, dz)) for dz, then dy, from -1 to 1, each row's samples in
// order, four channels at a time. A cell's samples are read once for every voxel of the block it touches, and a
// cell is read by 1.5^ND blocks on average (2^ND when gathering voxel by voxel).
fn gather(t: u32) {
  let size = p.inSize.xyz;
  let blocks = (size + vec3<u32>(1u)) / 2u;
  let perBatch = blocks.x * blocks.y * blocks.z;
  let n = t / perBatch;
  let r = t % perBatch;
  let v = 2u * vec3<u32>(r % blocks.x, (r / blocks.x) % blocks.y, r / (blocks.x * blocks.y));
  // whether the block's second voxel along each axis exists (2-D: never along z)
  let has = v + vec3<u32>(1u) < size;
  let cs = size + CELL_PAD;
  let cellBase = n * cells_per_batch();
  let i = (v.z * size.y + v.y) * size.x + v.x;
#if DIM3
  let dzEnd = select(0, 1, has.z);
  let dzStart = -1;
#else
  let dzEnd = 0;
  let dzStart = 0;
#endif
  for (var c0 = 0u; c0 < p.channels; c0 += 4u) {
    // a<x><y><z>: voxel v + (x, y, z)
    var a000 = vec4<f32>(0.0);
    var a100 = vec4<f32>(0.0);
    var a010 = vec4<f32>(0.0);
    var a110 = vec4<f32>(0.0);
#if DIM3
    var a001 = vec4<f32>(0.0);
    var a101 = vec4<f32>(0.0);
    var a011 = vec4<f32>(0.0);
    var a111 = vec4<f32>(0.0);
#endif
    for (var dz = dzStart; dz <= dzEnd; dz++) {
      for (var dy = -1; dy <= select(0, 1, has.y); dy++) {
        // the cell with base v + (0, dy, dz) (coordinates + CELL_PAD) and its neighbours along x
        let cell = cellBase + (u32(i32(v.z + CELL_PAD.z) + dz) * cs.y + u32(i32(v.y + CELL_PAD.y) + dy)) * cs.x + v.x + CELL_PAD.x;
        var e = vec4<u32>(ends[cell - 1u], ends[cell], ends[cell + 1u], 0u);
        // the cell after (base v + (1, dy, dz)) exists only with the second voxel
        e.w = e.z;
        if (has.x) {
          e.w = ends[cell + 2u];
        }
        if (all(e.yzw - e.xyz <= vec3<u32>(RANK_LIMIT))) {
          // which of the block's voxels along y (and z) the row's cells touch
          let ty = vec2<bool>(dy <= 0, dy >= 0);
#if DIM3
          let tz = vec2<bool>(dz <= 0, dz >= 0);
#else
          let tz = vec2<bool>(true, false);
#endif
          let zero = vec4<f32>(0.0);
          for (var j = e.x; j < e.w; j++) {
            let f = frac(j);
            let g = grads(j, c0);
            let wy = pair_weights(f.y, dy);
            // along x: the first voxel touches cells b - 1 (upper corner) and b, the second b and b + 1
            let g0 = select(zero, select(1.0 - f.x, f.x, j < e.y) * g, j < e.z);
            let g1 = select(zero, select(1.0 - f.x, f.x, j < e.z) * g, j >= e.y);
#if DIM3
            let wz = pair_weights(f.z, dz);
            let w0 = wy * wz.x;
            let w1 = wy * wz.y;
            if (ty.x && tz.y) {
              add_pair(&a001, &a101, w1.x, g0, g1);
            }
            if (ty.y && tz.y) {
              add_pair(&a011, &a111, w1.y, g0, g1);
            }
#else
            let w0 = wy;
#endif
            if (ty.x && tz.x) {
              add_pair(&a000, &a100, w0.x, g0, g1);
            }
            if (ty.y && tz.x) {
              add_pair(&a010, &a110, w0.y, g0, g1);
            }
          }
        } else {
          // voxel offset (y, z) touches the row when y - dy and z - dz are 0 or 1 (1: it is the upper corner)
          if (dy <= 0 && dz <= 0) {
            let s = row_sums(e, vec2<bool>(dy == -1, dz == -1), c0);
            a000 += s.first;
            a100 += s.next;
          }
          if (dy >= 0 && dz <= 0) {
            let s = row_sums(e, vec2<bool>(dy == 0, dz == -1), c0);
            a010 += s.first;
            a110 += s.next;
          }
#if DIM3
          if (dy <= 0 && dz >= 0) {
            let s = row_sums(e, vec2<bool>(dy == -1, dz == 0), c0);
            a001 += s.first;
            a101 += s.next;
          }
          if (dy >= 0 && dz >= 0) {
            let s = row_sums(e, vec2<bool>(dy == 0, dz == 0), c0);
            a011 += s.first;
            a111 += s.next;
          }
#endif
        }
      }
    }
    let at = (n * p.channels + c0) * p.inSpatial + i;
    let sy = size.x;
    put4(at, c0, a000);
    if (has.x) {
      put4(at + 1u, c0, a100);
    }
    if (has.y) {
      put4(at + sy, c0, a010);
      if (has.x) {
        put4(at + sy + 1u, c0, a110);
      }
    }
#if DIM3
    if (has.z) {
      let sz = size.x * size.y;
      put4(at + sz, c0, a001);
      if (has.x) {
        put4(at + sz + 1u, c0, a101);
      }
      if (has.y) {
        put4(at + sz + sy, c0, a011);
        if (has.x) {
          put4(at + sz + sy + 1u, c0, a111);
        }
      }
    }
#endif
  }
}
#endif

// Channels c0 .. c0 + 3 (those that exist) of input-gradient element `at` (of channel c0); the lanes one by one:
// indexing a vector with a variable moves it to memory on CPU adapters.
fn put4(at: u32, c0: u32, v: vec4<f32>) {
  put(at, v.x);
  if (c0 + 1u < p.channels) {
    put(at + p.inSpatial, v.y);
  }
  if (c0 + 2u < p.channels) {
    put(at + 2u * p.inSpatial, v.z);
  }
  if (c0 + 3u < p.channels) {
    put(at + 3u * p.inSpatial, v.w);
  }
}

// Element `at` of the input gradient (ACC: this piece's sum added to those of the pieces before).
fn put(at: u32, v: f32) {
#if ACC
  out[at] = out[at] + v;
#else
  out[at] = v;
#endif
}
#endif

@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = flat_workgroup(wid, nwg) * {{WG}}u + lid;
  if (t >= p.total) {
    return;
  }
#if FORWARD
  sample_forward(t);
#endif
#if BACKWARD
  sample_backward(t);
#endif
#if ORDER
  order_sample(t);
#endif
#if PLACE
  place(t);
#endif
#if GATHER
  gather(t);
#endif
}
