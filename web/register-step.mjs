// The app's pairwise registration: VoxelMorph (2-D, diffeomorphic, 7 integration steps) optimised on one pair of
// slices with MSE + λ·Grad-l2, and the three registration papers' methods on top of it, with the losses that
// src/methods/registration/recipe.ts trains on data sets:
//   hetero  heteroscedastic uncertainty: a variance network (log σ²) on [warped, fixed] trained with β-NLL on the
//           detached warped image; the MSE weighted by its stop-gradient relative-SNR map;
//   adacs   adaptive correspondence scoring: a scoring network on the fixed image trained with its weighted MSE, the
//           (S−1)² prior and the momentum-weighted TV; the MSE weighted by the detached score;
//   bim     biomechanics-informed: + λ_BIM·linear-elastic strain energy (ν = 0.4) of the flow.
// Unlike the recipe's warm start (epochs of motion only, then of the auxiliary network only), both networks train
// from the first step, in one backward pass: the stop-gradients keep each loss on its own network.
// Shared by the app's worker and bench/web-step.mjs, so that the page and Node time the same work.

export const REG_METHODS = ['voxelmorph', 'hetero', 'adacs', 'bim'];
const LAMBDA = 0.01;
const BIM_LAMBDA = 0.02;
const ALPHA = 0.02;

/** The networks of `method` for size × size slices: the VoxelMorph backbone, and the variance or scoring network. */
export function registrationNets(vg, method, size) {
  if (!REG_METHODS.includes(method)) throw new vg.VoxgradError(`registration: method must be one of ${REG_METHODS.join(', ')}, got ${JSON.stringify(method)}`);
  const shape = [size, size];
  const backbone = vg.methods.registration.makeBackbone('voxelmorph', shape, { bidir: false, intSteps: 7, intDownsize: 2, seed: 0 });
  const aux =
    method === 'hetero' ? new vg.models.VarianceEstimator(shape, { seed: 1000 }) : method === 'adacs' ? new vg.models.ScoringNet(shape, { seed: 1000 }) : null;
  const parameters = [...backbone.module.parameters(), ...(aux ? aux.parameters() : [])];
  return { method, backbone, aux, parameters, momentum: new vg.methods.registration.MomentumWeight() };
}

/**
 * One Adam step of `nets` on moving → fixed ([1, 1, S, S] each). Resolves with the displacement network's loss (the
 * curve the page draws).
 */
export async function registrationStep(vg, nets, moving, fixed, optimizer) {
  const reg = vg.methods.registration;
  const { method, backbone, aux, momentum } = nets;
  const [loss, data] = vg.tidy(() => {
    const out = backbone.run(moving, fixed);
    const warpedStop = out.warped.detach();
    let data;
    let auxLoss = null;
    if (method === 'hetero') {
      const logVar = aux.call(vg.cat([warpedStop, fixed], 1));
      data = reg.weightedMSE(fixed, out.warped, reg.snrWeight(fixed, logVar, null, { variant: 'paper' }));
      auxLoss = reg.betaNLL(fixed, warpedStop, logVar, { beta: 0.5 });
    } else if (method === 'adacs') {
      const score = aux.call(fixed);
      data = reg.weightedMSE(fixed, out.warped, score);
      auxLoss = reg.scoringWeightedMSE(fixed, warpedStop, score).add(reg.scoringPrior(score).mul(ALPHA)).add(reg.scoringTV(score).mul(momentum.value));
    } else data = reg.mse(out.warped, fixed);
    let l = data.add(reg.gradL2(out.regFlow).mul(LAMBDA * backbone.gradMult));
    if (method === 'bim') l = l.add(reg.linearElasticEnergy(out.flow, { nu: 0.4 }).mul(BIM_LAMBDA));
    (auxLoss ? l.add(auxLoss) : l).backward();
    return [l, data];
  });
  optimizer.step();
  optimizer.zeroGrad();
  const value = await loss.item();
  // AdaCS's TV weight follows the data term (one pair: a single epoch)
  if (method === 'adacs') momentum.observe(await data.item(), 0);
  loss.dispose();
  data.dispose();
  return value;
}

/** The method's own map of the pair after training, as a picture for vg.io.toImageData: log σ² or the score. */
export function auxiliaryPicture(vg, nets, warped, fixed) {
  const { method, aux } = nets;
  if (!aux) return null;
  const [, , H, W] = fixed.shape;
  return vg.noGrad(() =>
    vg.tidy(() =>
      method === 'hetero'
        ? { title: 'variance (log σ²)', image: vg.io.heatmap(aux.call(vg.cat([warped, fixed], 1)).reshape([H, W]), { colormap: 'magma' }) }
        : { title: 'correspondence score', image: vg.io.heatmap(aux.call(fixed).reshape([H, W]), { min: 0, max: 1 }) },
    ),
  );
}
