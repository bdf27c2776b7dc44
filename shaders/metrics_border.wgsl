// Surface (border) voxels of a mask, as medpy: border = mask XOR binary_erosion(mask, structure), with scipy's
// structure generate_binary_structure(nd, connectivity) (offsets with at most `connectivity` non-zero components)
// and scipy's border_value 0 (a foreground voxel on the volume's edge is a border voxel).
// The mask is read as raw 32-bit words: LABEL selects value == label, otherwise value != 0 (f32 sign bit ignored so
// that -0.0 is background; NaN counts as foreground, as numpy's bool()).
// Layout: contiguous [D, H, W] (2-D masks pass D = 1 and nd = 2, which never looks along D).
// Bindings: 1 out u32 [D*H*W] (1 = border voxel), 2 src u32 bits. One invocation per voxel, 2-D workgroup grid.
struct Params {
  total: u32,
  D: u32,
  H: u32,
  W: u32,
  nd: u32,
  connectivity: u32,
  isFloat: u32,
  labelI: i32,
  labelF: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@group(0) @binding(2) var<storage, read> src: array<u32>;

fn inside(idx: u32) -> bool {
  let b = src[idx];
#if LABEL
  if (p.isFloat != 0u) {
    return bitcast<f32>(b) == p.labelF;
  }
  return bitcast<i32>(b) == p.labelI;
#else
  return select(b != 0u, (b & 0x7fffffffu) != 0u, p.isFloat != 0u);
#endif
}

@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = flat_workgroup(wid, nwg) * {{WG}}u + lid;
  if (t >= p.total) {
    return;
  }
  if (!inside(t)) {
    out[t] = 0u;
    return;
  }
  let x = i32(t % p.W);
  let y = i32((t / p.W) % p.H);
  let z = i32(t / (p.W * p.H));
  let dz0 = select(0, -1, p.nd == 3u);
  var border = 0u;
  for (var dz = dz0; dz <= -dz0; dz++) {
    for (var dy = -1; dy <= 1; dy++) {
      for (var dx = -1; dx <= 1; dx++) {
        let nz = u32(dz != 0) + u32(dy != 0) + u32(dx != 0);
        if (nz == 0u || nz > p.connectivity) {
          continue;
        }
        let zz = z + dz;
        let yy = y + dy;
        let xx = x + dx;
        if (zz < 0 || yy < 0 || xx < 0 || zz >= i32(p.D) || yy >= i32(p.H) || xx >= i32(p.W)) {
          border = 1u;
        } else if (!inside((u32(zz) * p.H + u32(yy)) * p.W + u32(xx))) {
          border = 1u;
        }
      }
    }
  }
  out[t] = border;
}
