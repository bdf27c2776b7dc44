// Compaction of the distances at border voxels (surface distances of vg.metrics): for every voxel with
// border[i] != 0, dist[i] is appended to out, and counter[p.slot] counts them. Order within out is unspecified
// (the metrics only sort, sum or take the maximum).
// Invocation lid of workgroup w owns voxels (w * PER + r) * WG + lid, r < PER: it counts its hits, takes a range of
// the workgroup's block with one workgroup atomic, and the workgroup reserves its block of out with one global
// atomic (barriers and atomics per voxel divided by PER; the global counter sees one atomic per workgroup).
// Bindings: 1 out f32 [total], 2 counter atomic u32 [2], 3 border u32 [total], 4 dist f32 [total].
// 2-D workgroup grid (flat_workgroup).
struct Params {
  total: u32,
  slot: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read_write> counter: array<atomic<u32>>;
@group(0) @binding(3) var<storage, read> border: array<u32>;
@group(0) @binding(4) var<storage, read> dist: array<f32>;

var<workgroup> localCount: atomic<u32>;
var<workgroup> blockBase: u32;

@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let w = flat_workgroup(wid, nwg);
  if (lid == 0u) {
    atomicStore(&localCount, 0u);
  }
  workgroupBarrier();
  var hits = 0u;
  for (var r = 0u; r < {{PER}}u; r++) {
    let i = (w * {{PER}}u + r) * {{WG}}u + lid;
    if (i < p.total && border[i] != 0u) {
      hits++;
    }
  }
  var rank = 0u;
  if (hits > 0u) {
    rank = atomicAdd(&localCount, hits);
  }
  workgroupBarrier();
  if (lid == 0u) {
    let n = atomicLoad(&localCount);
    blockBase = select(0u, atomicAdd(&counter[p.slot], n), n > 0u);
  }
  var at = workgroupUniformLoad(&blockBase) + rank;
  for (var r = 0u; r < {{PER}}u && hits > 0u; r++) {
    let i = (w * {{PER}}u + r) * {{WG}}u + lid;
    if (i < p.total && border[i] != 0u) {
      out[at] = dist[i];
      at++;
    }
  }
}
