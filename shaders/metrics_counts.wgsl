// Overlap counts for Dice/Jaccard (vg.metrics), one pass over a pair of masks or label maps:
//   counts[3j] = #{pred in bin j}, counts[3j + 1] = #{target in bin j}, counts[3j + 2] = #{both in bin j}.
// Bins: BINARY has one bin, value != 0 (f32 sign bit ignored, so -0.0 is background); otherwise bin j is the label
// labels[j] (sorted ascending, found by binary search). f32 values match a label only if they are that integer.
// Each workgroup accumulates a private histogram of {{BINS}} counters in workgroup memory over its {{PER}} x {{WG}}
// voxels, then adds its non-zero counters to the global ones (so global atomics scale with workgroups x bins).
// Bindings: 1 counts atomic u32 [3 * nBins], 2 pred u32 bits, 3 tgt (target) u32 bits, 4 labels i32 [nBins].
// 2-D workgroup grid (flat_workgroup); invocation lid of workgroup w reads voxels (w * PER + r) * WG + lid.
struct Params {
  total: u32,
  nBins: u32,
  predFloat: u32,
  targetFloat: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> counts: array<atomic<u32>>;
@group(0) @binding(2) var<storage, read> pred: array<u32>;
@group(0) @binding(3) var<storage, read> tgt: array<u32>;
@group(0) @binding(4) var<storage, read> labels: array<i32>;

var<workgroup> hist: array<atomic<u32>, {{BINS}}>;

const NONE = 0xffffffffu;

fn bin_of(b: u32, isFloat: u32) -> u32 {
#if BINARY
  return select(NONE, 0u, select(b != 0u, (b & 0x7fffffffu) != 0u, isFloat != 0u));
#else
  var v: i32;
  if (isFloat != 0u) {
    let f = bitcast<f32>(b);
    // integers only (this also rejects NaN and inf); |f| < 2^31 keeps the conversion exact
    if (!(abs(f) < 2147483648.0) || floor(f) != f) {
      return NONE;
    }
    v = i32(f);
  } else {
    v = bitcast<i32>(b);
  }
  var lo = 0u;
  var hi = p.nBins;
  while (lo < hi) {
    let mid = (lo + hi) / 2u;
    if (labels[mid] < v) {
      lo = mid + 1u;
    } else {
      hi = mid;
    }
  }
  return select(NONE, lo, lo < p.nBins && labels[lo] == v);
#endif
}

@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let nb = 3u * p.nBins;
  for (var j = lid; j < nb; j += {{WG}}u) {
    atomicStore(&hist[j], 0u);
  }
  workgroupBarrier();
  let w = flat_workgroup(wid, nwg);
  for (var r = 0u; r < {{PER}}u; r++) {
    let i = (w * {{PER}}u + r) * {{WG}}u + lid;
    if (i >= p.total) {
      break;
    }
    let bp = bin_of(pred[i], p.predFloat);
    let bt = bin_of(tgt[i], p.targetFloat);
    if (bp != NONE) {
      atomicAdd(&hist[3u * bp], 1u);
    }
    if (bt != NONE) {
      atomicAdd(&hist[3u * bt + 1u], 1u);
      if (bt == bp) {
        atomicAdd(&hist[3u * bt + 2u], 1u);
      }
    }
  }
  workgroupBarrier();
  for (var j = lid; j < nb; j += {{WG}}u) {
    let c = atomicLoad(&hist[j]);
    if (c != 0u) {
      atomicAdd(&counts[j], c);
    }
  }
}
