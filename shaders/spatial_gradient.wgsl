// Finite differences along one axis of a contiguous tensor viewed as [outer, L, inner] (spatialGradient).
//   forward differences:  y[k] = x[k + 1] - x[k], k < L - 1 (Lout = L - 1)
//   CENTRAL (np.gradient): y[0] = x[1] - x[0], y[L - 1] = x[L - 1] - x[L - 2], else y[k] = (x[k + 1] - x[k - 1]) / 2
//     (Lout = L, L >= 2)
// Forward bindings: 1 y [outer, Lout, inner], 2 x [outer, L, inner]; one invocation per element of y.
// BACKWARD bindings: 1 gx [outer, L, inner], 2 gy [outer, Lout, inner]; one invocation per element of gx, which
//   gathers the (at most four) gy terms whose stencil reads it: the adjoint, deterministic and atomic-free.
// 2-D workgroup grid (flat_workgroup).
struct Params {
  n: u32,
  L: u32,
  Lout: u32,
  inner: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<storage, read> src: array<f32>;

@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = flat_workgroup(wid, nwg) * {{WG}}u + lid;
  if (t >= p.n) {
    return;
  }
  let i = t % p.inner;
#if BACKWARD
  // t indexes gx: position j along the axis; gy rows of this (outer, inner) line start at `row`
  let j = (t / p.inner) % p.L;
  let row = (t / (p.inner * p.L)) * p.Lout * p.inner + i;
  let L = p.L;
  var s = 0.0;
#if CENTRAL
  if (j == 0u) {
    s -= src[row];
  }
  if (j == 1u) {
    s += src[row];
  }
  if (j == L - 1u) {
    s += src[row + (L - 1u) * p.inner];
  }
  if (j == L - 2u) {
    s -= src[row + (L - 1u) * p.inner];
  }
  // interior rows k = j - 1 and k = j + 1 (1 <= k <= L - 2)
  if (j >= 2u && j <= L - 1u) {
    s += 0.5 * src[row + (j - 1u) * p.inner];
  }
  if (j + 1u <= L - 2u) {
    s -= 0.5 * src[row + (j + 1u) * p.inner];
  }
#else
  if (j >= 1u) {
    s += src[row + (j - 1u) * p.inner];
  }
  if (j < p.Lout) {
    s -= src[row + j * p.inner];
  }
#endif
  dst[t] = s;
#else
  let k = (t / p.inner) % p.Lout;
  let row = (t / (p.inner * p.Lout)) * p.L * p.inner + i;
#if CENTRAL
  let L = p.L;
  var v: f32;
  if (k == 0u) {
    v = src[row + p.inner] - src[row];
  } else if (k == L - 1u) {
    v = src[row + k * p.inner] - src[row + (k - 1u) * p.inner];
  } else {
    v = (src[row + (k + 1u) * p.inner] - src[row + (k - 1u) * p.inner]) * 0.5;
  }
  dst[t] = v;
#else
  dst[t] = src[row + (k + 1u) * p.inner] - src[row + k * p.inner];
#endif
#endif
}
