// Exponential moving average of a parameter (mean teacher), in place:
//   shadow[e] = alpha * shadow[e] + oneMinusAlpha * param[e]
// as torch's ema.mul_(alpha).add_(param, alpha=1 - alpha), with 1 - alpha computed on the host in float64.
// Layout: shadow and param are contiguous f32 arrays of n elements (n counts F's: vec4 with VEC4, n divisible by 4).
// Bindings: 0 uniform Params; 1 shadow (read_write); 2 param (read).
// Workgroup mapping: 1-D over elements on a 2-D grid (flat_workgroup); each invocation updates one element or vec4.
struct Params {
  n: u32,
  alpha: f32,
  oneMinusAlpha: f32,
}

#if VEC4
alias F = vec4<f32>;
#else
alias F = f32;
#endif

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> shadow: array<F>;
@group(0) @binding(2) var<storage, read> param: array<F>;

@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let e = flat_workgroup(wid, nwg) * {{WG}}u + lid;
  if (e >= p.n) {
    return;
  }
  shadow[e] = p.alpha * shadow[e] + p.oneMinusAlpha * param[e];
}
