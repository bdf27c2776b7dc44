// One seeded training step of a small model, shared by the resume and device-loss tests (Node only: it returns the
// parameters as one Buffer so runs compare bit for bit).
import { vg } from './helpers.mjs';

/**
 * One step on data that depend only on the step (dropout draws from the global generator, saved in checkpoints).
 * `beforeBackward` runs between the forward and the backward (the device-loss test loses the device there).
 */
export async function trainStep({ model, optimizer, scheduler }, step, { beforeBackward } = {}) {
  optimizer.zeroGrad();
  const x = vg.randn([8, 6], { seed: 1000 + step });
  const y = vg.randn([8, 2], { seed: 2000 + step });
  const loss = vg.mseLoss(model.call(x), y);
  beforeBackward?.();
  loss.backward();
  optimizer.step();
  scheduler.step();
  const value = await loss.item();
  for (const t of [x, y, loss]) t.dispose();
  const params = await Promise.all(model.parameters().map(async (p) => Buffer.from((await p.data()).buffer)));
  return { value, params: Buffer.concat(params) };
}
