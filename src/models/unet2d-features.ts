/**
 * UNet2DFeatures: the UNet of ACTION, ACTION++ and MONA (their networks/unetWithArgs.py, SSL4MIS's UNet with
 * `bilinear: False`, i.e. 2x2 transposed-conv upsampling) with the extra output their representation heads read:
 * forwardFeatures returns the logits, the bottleneck and the multi-scale decoder maps [x4, up1, up2, up3, up4]
 * (256 + 128 + 64 + 32 + 16 = 496 channels at the default widths). Same state-dict keys as UNet2D.
 */
import type { Tensor } from '../engine/tensor.js';
import { fail } from '../engine/errors.js';
import { interpolate } from '../kernels/interpolate.js';
import { cat } from '../kernels/shape.js';
import type { Module } from '../nn/module.js';
import { UNet2D, type UNet2DOptions } from './unet.js';

export interface SegFeatures {
  logits: Tensor;
  /** The bottleneck x4 [N, 256, H/16, W/16] (the global heads pool it). */
  latent: Tensor;
  /** [x4, up1, up2, up3, up4], coarse to fine. */
  featureMaps: Tensor[];
}

/** A child of `m` by its state-dict name (the decoder's levels are registered under SSL4MIS's names). */
function child(m: Module, name: string): Module {
  const found = m.namedChildren().find(([k]) => k === name);
  if (!found) fail('UNet2DFeatures', `module has no child '${name}'`);
  return found[1];
}

export class UNet2DFeatures extends UNet2D {
  private readonly ups: Module[];
  private readonly head: Module;

  /** Defaults as the papers' code: widths [16, 32, 64, 128, 256], dropout [0.05, 0.1, 0.2, 0.3, 0.5], transposed-conv up. */
  constructor(opts: UNet2DOptions = {}) {
    super({ bilinear: false, ...opts });
    const decoder = child(this, 'decoder');
    this.ups = [1, 2, 3, 4].map((i) => child(decoder, `up${i}`));
    this.head = child(decoder, 'out_conv');
  }

  /** Logits, bottleneck and decoder maps in one pass; H and W must be multiples of 16 (the encoder's four poolings). */
  forwardFeatures(x: Tensor): SegFeatures {
    const enc = this.encode(x);
    const featureMaps = [enc[4]];
    let h = enc[4];
    this.ups.forEach((up, i) => featureMaps.push((h = up.call(h, enc[3 - i]))));
    const logits = this.head.call(h);
    return { logits, latent: enc[4], featureMaps };
  }
}

/**
 * The papers' dense representation input: every map upsampled (bilinear, or trilinear for 3-D maps, align_corners
 * true, as their RepresentationHead) to the finest map's size and concatenated along channels.
 */
export function concatFeatureMaps(maps: readonly Tensor[]): Tensor {
  if (!maps.length) fail('concatFeatureMaps', 'maps must list at least one [N, C, ...spatial] tensor, got none');
  const finest = maps.reduce((a, b) => (b.shape[2] > a.shape[2] ? b : a));
  const size = finest.shape.slice(2);
  const mode = size.length === 3 ? 'trilinear' : 'bilinear';
  const parts = maps.map((m) => (m.shape.slice(2).join() === size.join() ? m : interpolate(m, { size, mode, alignCorners: true })));
  const out = cat(parts, 1);
  parts.forEach((p, i) => p !== maps[i] && p.dispose());
  return out;
}
