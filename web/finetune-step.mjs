// One supervised step of the segmentation UNet (0.5·(cross-entropy + Dice loss), then the optimizer), shared by the
// app's worker and bench/web-step.mjs so that the page and Node time the same work. Resolves with the loss value.
export async function finetuneStep(vg, net, x, y, optimizer) {
  const loss = vg.tidy(() => {
    const logits = net.call(x);
    const l = vg.crossEntropy(logits, y).add(vg.methods.diceLoss(logits, y)).mul(0.5);
    l.backward();
    return l;
  });
  optimizer.step();
  optimizer.zeroGrad();
  const value = await loss.item();
  loss.dispose();
  return value;
}
