// Helpers of the normalisation kernels (prepended to norm_reduce, norm_combine and norm_apply).

// V: the unit of data one index addresses: f32, or vec4<f32> with VEC4 (rows whose length divides by 4).
#if VEC4
alias V = vec4<f32>;

fn hsum(v: V) -> f32 {
  return v.x + v.y + v.z + v.w;
}

fn hdot(a: V, b: V) -> f32 {
  return dot(a, b);
}
#else
alias V = f32;

fn hsum(v: V) -> f32 {
  return v;
}

fn hdot(a: V, b: V) -> f32 {
  return a * b;
}
#endif

// The affine parameters of channel (or, with AFF_VEC, of the four consecutive channels at vec4) i; 1 and 0 without.
#if WEIGHT
#if AFF_VEC
@group(0) @binding(5) var<storage, read> weight: array<V>;

fn wt(i: u32) -> V {
  return weight[i];
}
#else
@group(0) @binding(5) var<storage, read> weight: array<f32>;

fn wt(i: u32) -> V {
  return V(weight[i]);
}
#endif
#else
fn wt(i: u32) -> V {
  return V(1.0);
}
#endif

#if BIAS
#if AFF_VEC
@group(0) @binding(6) var<storage, read> bias: array<V>;

fn bt(i: u32) -> V {
  return bias[i];
}
#else
@group(0) @binding(6) var<storage, read> bias: array<f32>;

fn bt(i: u32) -> V {
  return V(bias[i]);
}
#endif
#else
fn bt(i: u32) -> V {
  return V(0.0);
}
#endif

// Merge of two reduction partials. Statistics partials are Welford triples (count, mean, M2, 0), merged by
// Chan et al.'s pairwise update; GRAD partials are plain sums.
fn merge(a: vec4<f32>, b: vec4<f32>) -> vec4<f32> {
#if GRAD
  return a + b;
#else
  if (b.x == 0.0) {
    return a;
  }
  let n = a.x + b.x;
  let d = b.y - a.y;
  let f = b.x / n;
  return vec4<f32>(n, a.y + d * f, a.z + b.z + d * d * a.x * f, 0.0);
#endif
}

// (e / div) % m and e % div for an index e that advances by a fixed stride: the walk is set up with two divisions
// and then stepped with additions (stride / div = dq, stride % div = dr), since integer division costs tens of
// cycles on many devices (and is emulated per lane on CPU adapters). idx is kept reduced mod m.
struct Walk {
  idx: u32,
  rem: u32,
}

fn walk_at(e: u32, div: u32, m: u32) -> Walk {
  return Walk((e / div) % m, e % div);
}

fn walk_step(w: Walk, dq: u32, dr: u32, div: u32, m: u32) -> Walk {
  var o = Walk(w.idx + dq, w.rem + dr);
  if (o.rem >= div) {
    o.rem -= div;
    o.idx += 1u;
  }
  if (o.idx >= m) {
    o.idx = o.idx % m;
  }
  return o;
}
