/**
 * The registration backbones behind one interface, so the papers' losses are written once: every backbone warps the
 * source onto the target and reports its displacement in voxgrad's convention (voxels, channel i along spatial axis i,
 * docs/conventions.md) for the metrics, plus the field its smoothness prior acts on.
 */
import { fail } from '../../engine/errors.js';
import type { Tensor } from '../../engine/tensor.js';
import { tensor } from '../../kernels/creation.js';
import { add, mul } from '../../kernels/math.js';
import { flip } from '../../kernels/shape.js';
import { spatialTransform } from '../../kernels/spatial.js';
import { RegNet } from '../../models/regnet.js';
import { TransMorph } from '../../models/transmorph.js';
import { VxmDense } from '../../models/voxelmorph.js';
import type { Module } from '../../nn/module.js';

export type BackboneName = 'voxelmorph' | 'transmorph' | 'regnet';

export interface RegistrationOutput {
  /** source warped onto target: [N, 1, *spatial]. */
  warped: Tensor;
  /** target warped back by the inverse field (bidirectional VoxelMorph), else null. */
  inverseWarped: Tensor | null;
  /** Full-resolution displacement in voxels, voxgrad's convention: [N, nd, *spatial]. */
  flow: Tensor;
  /** The field the smoothness prior penalises (VoxelMorph: the half-resolution velocity; RegNet: its own output). */
  regFlow: Tensor;
  /** Background mask (source != 0) | (target != 0): [N, 1, *spatial]. */
  mask: Tensor;
}

export interface Backbone {
  readonly name: BackboneName;
  readonly module: Module;
  /** Multiplier of the Grad smoothness loss (VoxelMorph's loss_mult = int_downsize). */
  readonly gradMult: number;
  run(source: Tensor, target: Tensor): RegistrationOutput;
}

export interface BackboneOptions {
  bidir: boolean;
  intSteps: number;
  intDownsize: number;
  seed: number;
}

/** (source != 0) | (target != 0) as 0/1 f32. */
function backgroundMask(source: Tensor, target: Tensor): Tensor {
  return source.ne(0).to('f32').add(target.ne(0).to('f32')).gt(0).to('f32');
}

/**
 * RegNet's output u is added to normalised sampling positions (channel 0 along W) on an identity built with
 * linspace(-1, 1) but sampled with alignCorners false (the official code's choice). Along an axis of n voxels the
 * sample position of voxel i is (lin(i) + u + 1)·n/2 − 0.5, so its displacement in voxels is
 * i·(n/(n−1) − 1) − 0.5 + u·n/2.
 */
export function regnetVoxelFlow(flowNorm: Tensor): Tensor {
  const [, , h, w] = flowNorm.shape;
  const yx = flip(flowNorm, [1]); // channel 0 along H, 1 along W
  // identity term: (lin(i) + 1)·n/2 − 0.5 − i = i·(n/(n−1) − 1) − 0.5 per axis (n = 1: −0.5)
  const base = new Float32Array(2 * h * w);
  for (let i = 0; i < h; i++)
    for (let j = 0; j < w; j++) {
      base[i * w + j] = (h > 1 ? i * (h / (h - 1) - 1) : 0) - 0.5;
      base[h * w + i * w + j] = (w > 1 ? j * (w / (w - 1) - 1) : 0) - 0.5;
    }
  const scale = tensor([h / 2, w / 2], [1, 2, 1, 1]);
  return add(mul(yx, scale), tensor(base, [1, 2, h, w]));
}

export function makeBackbone(name: string, inshape: number[], opts: BackboneOptions): Backbone {
  if (name === 'voxelmorph') {
    const net = new VxmDense(inshape, { bidir: opts.bidir, intSteps: opts.intSteps, intDownsize: opts.intDownsize, seed: opts.seed });
    return {
      name,
      module: net,
      gradMult: opts.intSteps > 0 ? opts.intDownsize : 1,
      run(source, target) {
        const o = net.call(source, target);
        return { warped: o.ySource, inverseWarped: o.yTarget, flow: o.flow, regFlow: o.preintFlow, mask: o.maskBgd };
      },
    };
  }
  if (name === 'transmorph') {
    const config = inshape.length === 2 ? TransMorph.defaultConfig2D(inshape) : TransMorph.defaultConfig3D(inshape);
    const net = new TransMorph(config, { bidir: opts.bidir, seed: opts.seed });
    return {
      name,
      module: net,
      // the papers' code applies Grad with loss_mult = 2 to TransMorph's full-resolution displacement too
      gradMult: opts.intDownsize,
      run(source, target) {
        const o = net.call(source, target);
        return { warped: o.ySource, inverseWarped: o.yTarget, flow: o.flow, regFlow: o.flow, mask: o.maskBgd };
      },
    };
  }
  if (name === 'regnet') {
    if (inshape.length !== 2) fail('registration', `RegNet is 2-D; got an input of ${inshape.length} spatial dims`);
    const net = new RegNet({ seed: opts.seed });
    return {
      name,
      module: net,
      gradMult: 1,
      run(source, target) {
        const o = net.call(source, target);
        return { warped: o.warped, inverseWarped: null, flow: regnetVoxelFlow(o.flow), regFlow: flip(o.flow, [1]), mask: backgroundMask(source, target) };
      },
    };
  }
  return fail('registration', `backbone must be 'voxelmorph', 'transmorph' or 'regnet', got '${name}'`);
}

/** Warps integer label maps [N, *spatial] with a voxel displacement (nearest: labels stay labels). */
export function warpLabels(labels: Tensor, flow: Tensor): Tensor {
  return spatialTransform(labels.unsqueeze(1).to('f32'), flow, { mode: 'nearest' }).squeeze(1).to('i32');
}
