/**
 * Spectral normalisation as torch.nn.utils.spectral_norm: the layer's weight W becomes a function of the parameter
 * weight_orig, W = weight_orig / σ, with σ ≈ the largest singular value of weight_orig reshaped to [out, -1]. σ is
 * estimated by power iteration with the persistent buffers weight_u [out] and weight_v [in·k…]: each training forward
 * runs nPowerIterations steps v ← normalize(Wᵀu), u ← normalize(Wv) (no gradient) and uses σ = uᵀ W v with u, v held
 * constant, so the gradient flows through W in both the numerator and σ; evaluation reuses the stored u and v.
 * State-dict keys are torch's: weight_orig, weight_u, weight_v (and the layer's bias).
 */
import { noGrad } from '../engine/autograd.js';
import { fail } from '../engine/errors.js';
import { Tensor, tidy } from '../engine/tensor.js';
import { describe } from '../kernels/common.js';
import { div, maximum, mul, sqrt, square } from '../kernels/math.js';
import { matmul } from '../kernels/matmul.js';
import { randn } from '../kernels/random.js';
import { sum } from '../kernels/reduce.js';
import { reshape } from '../kernels/shape.js';
import { ConvTranspose2d, ConvTranspose3d } from './layers.js';
import { Module, copyInto } from './module.js';

export interface SpectralNormOptions {
  /** Power-iteration steps per training forward (torch's n_power_iterations, default 1). */
  nPowerIterations?: number;
  /** Floor of the norms in the normalisation (torch's eps, default 1e-12). */
  eps?: number;
  /** Seed of u's and v's initial normal draws (default: the global generator). */
  seed?: number;
}

/** x / max(‖x‖, eps) for a vector (torch's F.normalize(dim=0)). */
function normalize(x: Tensor, eps: number): Tensor {
  return div(x, maximum(sqrt(sum(square(x))), eps));
}

/** σ = uᵀ W v for W [rows, cols], u [rows], v [cols]. */
function sigmaOf(mat: Tensor, u: Tensor, v: Tensor): Tensor {
  const [rows, cols] = mat.shape;
  return sum(mul(u, reshape(matmul(mat, reshape(v, [cols, 1])), [rows])));
}

/**
 * Reparametrises `module`'s weight in place with spectral normalisation (torch.nn.utils.spectral_norm with dim 0) and
 * returns the module. Works for layers whose forward reads `this.weight` with the output dimension first (Linear,
 * Conv1d/2d/3d); transposed convolutions (output dimension 1) are refused.
 */
export function spectralNorm<M extends Module>(module: M, opts: SpectralNormOptions = {}): M {
  const op = 'spectralNorm';
  if (!(module instanceof Module)) fail(op, `module must be a vg.nn.Module, got ${describe(module)}`);
  if (module instanceof ConvTranspose2d || module instanceof ConvTranspose3d)
    fail(op, 'transposed convolutions keep the output channels in dim 1; spectralNorm supports weights with the output dimension first (Linear, Conv1d/2d/3d)');
  const self = module as unknown as Record<string, unknown>;
  const weight = self.weight;
  if (!(weight instanceof Tensor) || !weight.requiresGrad || weight.ndim < 2)
    fail(op, `module must have a trainable 'weight' parameter of rank ≥ 2, got ${weight instanceof Tensor ? `shape [${weight.shape}]` : describe(weight)}`);
  if (module.namedParameters().some(([k]) => k === 'weight_orig')) fail(op, 'module already has spectral normalisation (weight_orig exists)');
  const iterations = opts.nPowerIterations ?? 1;
  const eps = opts.eps ?? 1e-12;
  if (!Number.isInteger(iterations) || iterations < 1) fail(op, `nPowerIterations must be a positive integer, got ${describe(opts.nPowerIterations)}`);
  if (typeof eps !== 'number' || !(eps > 0)) fail(op, `eps must be a positive number, got ${describe(opts.eps)}`);
  const rows = weight.shape[0];
  const cols = weight.size / rows;
  const seed = opts.seed;
  const u = noGrad(() => tidy(() => normalize(randn([rows], { seed }), eps)));
  const v = noGrad(() => tidy(() => normalize(randn([cols], { seed: seed === undefined ? undefined : seed + 1 }), eps)));
  // the slot 'weight' stays (empty) so the layer's forward reads the normalised weight from it during a call
  module.registerParameter('weight', null);
  module.registerParameter('weight_orig', weight, 'weightOrig');
  module.registerBuffer('weight_u', u, 'weightU');
  module.registerBuffer('weight_v', v, 'weightV');
  const inner = module.forward.bind(module);
  module.forward = (...args: unknown[]) =>
    tidy(() => {
      const orig = self.weightOrig as Tensor;
      const mat = reshape(orig, [rows, cols]);
      let uu = self.weightU as Tensor;
      let vv = self.weightV as Tensor;
      if (module.training) {
        // fresh tensors, so a backward after a later forward still sees this forward's u and v (torch clones them)
        noGrad(() => {
          for (let i = 0; i < iterations; i++) {
            vv = normalize(reshape(matmul(reshape(uu, [1, rows]), mat), [cols]), eps);
            uu = normalize(reshape(matmul(mat, reshape(vv, [cols, 1])), [rows]), eps);
          }
          copyInto(op, self.weightU as Tensor, uu);
          copyInto(op, self.weightV as Tensor, vv);
        });
      }
      const sigma = sigmaOf(mat, uu, vv);
      self.weight = div(orig, sigma);
      try {
        return inner(...args);
      } finally {
        self.weight = null;
      }
    });
  return module;
}

/** σ = uᵀ W v of a spectrally normalised module with its stored u and v (a host number; for inspection and tests). */
export async function spectralNormSigma(module: Module): Promise<number> {
  const self = module as unknown as Record<string, unknown>;
  if (!(self.weightOrig instanceof Tensor) || !(self.weightU instanceof Tensor) || !(self.weightV instanceof Tensor))
    fail('spectralNormSigma', 'module has no spectral normalisation (call vg.nn.spectralNorm(module) first)');
  const w = self.weightOrig as Tensor;
  const s = noGrad(() => tidy(() => sigmaOf(reshape(w, [w.shape[0], w.size / w.shape[0]]), self.weightU as Tensor, self.weightV as Tensor)));
  const value = await s.item();
  s.dispose();
  return value;
}
