// Fused optimizer updates: one dispatch per parameter tensor reads the gradient and the optimizer state and writes
// the parameter and the state in place, in f32, following torch.optim's single-tensor formulas.
// Layout: param, grad and every state buffer are contiguous f32 arrays of n elements, all indexed by the same e.
// Bindings: 0 uniform Params; 1 param (read_write); 2 grad (read); SGD: 3 momentum buffer (with MOMENTUM);
// ADAM: 3 exp_avg, 4 exp_avg_sq, 5 max_exp_avg_sq (with AMSGRAD); SCALE: 1 grad (read_write), 2 scale (read, 1 elt).
// Workgroup mapping: 1-D over elements on a 2-D grid (flat_workgroup); each invocation updates one element e, or with
// VEC4 (n divisible by 4) one vec4 of elements: same formulas, F is the element type, n counts F's.
// Per-step scalars (bias corrections, step size) are computed on the host in float64 and passed as uniforms.
struct Params {
  n: u32,
  // SGD: 1 on the first step (momentum buffer := d_p, as PyTorch clones the first gradient)
  first: u32,
  lr: f32,
  weightDecay: f32,
  momentum: f32,
  dampening: f32,
  beta1: f32,
  beta2: f32,
  eps: f32,
  // lr / (1 - beta1^t)
  stepSize: f32,
  // sqrt(1 - beta2^t)
  bc2Sqrt: f32,
}

#if VEC4
alias F = vec4<f32>;
#else
alias F = f32;
#endif

@group(0) @binding(0) var<uniform> p: Params;
#if SCALE
@group(0) @binding(1) var<storage, read_write> g: array<F>;
@group(0) @binding(2) var<storage, read> s: array<f32>;
#else
@group(0) @binding(1) var<storage, read_write> w: array<F>;
@group(0) @binding(2) var<storage, read> g: array<F>;
#endif
#if SGD
#if MOMENTUM
@group(0) @binding(3) var<storage, read_write> buf: array<F>;
#endif
#endif
#if ADAM
@group(0) @binding(3) var<storage, read_write> m: array<F>;
@group(0) @binding(4) var<storage, read_write> v: array<F>;
#if AMSGRAD
@group(0) @binding(5) var<storage, read_write> vmax: array<F>;
#endif
#endif

@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let e = flat_workgroup(wid, nwg) * {{WG}}u + lid;
  if (e >= p.n) {
    return;
  }
#if SCALE
  // clip_grad_norm_: grad *= min(maxNorm / (total + 1e-6), 1), the factor computed on the GPU
  g[e] = g[e] * s[0];
#endif
#if SGD
  var d = g[e] + p.weightDecay * w[e];
#if MOMENTUM
  var b = d;
  if (p.first == 0u) {
    b = p.momentum * buf[e] + (1.0 - p.dampening) * d;
  }
  buf[e] = b;
#if NESTEROV
  d = d + p.momentum * b;
#else
  d = b;
#endif
#endif
  w[e] = w[e] - p.lr * d;
#endif
#if ADAM
  var x = w[e];
  var gr = g[e];
#if DECOUPLED
  // AdamW: decay the weight before the Adam step, independently of the gradient statistics
  x = x * (1.0 - p.lr * p.weightDecay);
#else
  gr = gr + p.weightDecay * x;
#endif
  let mm = p.beta1 * m[e] + (1.0 - p.beta1) * gr;
  let vv = p.beta2 * v[e] + (1.0 - p.beta2) * gr * gr;
  m[e] = mm;
  v[e] = vv;
#if AMSGRAD
  let vm = max(vmax[e], vv);
  vmax[e] = vm;
  let denom = sqrt(vm) / p.bc2Sqrt + p.eps;
#else
  let denom = sqrt(vv) / p.bc2Sqrt + p.eps;
#endif
  w[e] = x - p.stepSize * mm / denom;
#endif
}
