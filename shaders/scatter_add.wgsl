// torch.scatter_add (out already holds a copy of the base tensor): for every coordinate c of index,
//   out[c with c[dim] replaced by index[c]] += src[c]  (src read at c through p.srcStrides).
// OVERWRITE (torch.scatter): out[...] = src[c] instead, an atomic store of the bit pattern; where several c
// write one position, which of them lands is unspecified.
// Float adds use a compare-exchange loop on the bit pattern (WGSL has no float atomics), so the order of
// colliding adds, and the last bits of their sum, can vary run to run. Out-of-range indices are skipped and reported as a device-side
// assertion (index_assert.wgsl, binding 4).
// Mapping: one invocation per index element, 2-D workgroup grid.
struct Params {
  n: u32,
  rank: u32,
  dim: u32,
  dimSize: u32,
  shape: array<vec4<u32>, 2>,
  outStrides: array<vec4<u32>, 2>,
  srcStrides: array<vec4<u32>, 2>,
  assertSlot: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<atomic<{{A}}>>;
@group(0) @binding(2) var<storage, read> src: array<{{T}}>;
@group(0) @binding(3) var<storage, read> index: array<{{I}}>;

@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = flat_workgroup(wid, nwg) * {{WG}}u + lid;
  if (i >= p.n) {
    return;
  }
  let j = i32(index[i]);
  if (j < 0 || u32(j) >= p.dimSize) {
    report_bad_index(p.assertSlot, i, bitcast<u32>(index[i]));
    return;
  }
  var rem = i;
  var o = 0u;
  var s = 0u;
  for (var d = i32(p.rank) - 1; d >= 0; d--) {
    let k = u32(d);
    let sz = dim_of(p.shape, k);
    let c = rem % sz;
    rem = rem / sz;
    s += c * dim_of(p.srcStrides, k);
    o += select(c, u32(j), k == p.dim) * dim_of(p.outStrides, k);
  }
  let v = src[s];
#if OVERWRITE
  atomicStore(&out[o], bitcast<{{A}}>(v));
#else
#if FLOAT
  var old = atomicLoad(&out[o]);
  loop {
    let r = atomicCompareExchangeWeak(&out[o], old, bitcast<u32>(bitcast<f32>(old) + v));
    if (r.exchanged) {
      break;
    }
    old = r.old_value;
  }
#else
  atomicAdd(&out[o], v);
#endif
#endif
}
