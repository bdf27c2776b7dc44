/**
 * The backward pass: walks the tape that defineOp recorded (engine/autograd.ts) from an output back to the leaves and
 * accumulates their `.grad`; grad/valueAndGrad are its functional form. It sits above the engine because it uses
 * ops itself (onesLike seeds the pass, add accumulates gradients that meet).
 */
import { Node, enableGrad, noGrad, type BackwardRule } from '../engine/autograd.js';
import { VoxgradError, enterUserOp, fmtShape, leaveUserOp } from '../engine/errors.js';
import { checkOpNumerics, numericsChecked } from '../engine/numerics.js';
import { Tensor, keep, tidy } from '../engine/tensor.js';
import { onesLike, zerosLike } from './creation.js';
import { add } from './math.js';

/**
 * Accumulates d(out)/d(leaf) into every leaf's `.grad`. `grad` seeds the backward pass; it is required
 * for non-scalar outputs, as in PyTorch.
 */
export function backward(out: Tensor, grad?: Tensor): void {
  out.storageFor('backward');
  if (!out.requiresGrad)
    throw new VoxgradError(
      `backward: the tensor (shape ${fmtShape(out.shape)}) does not require grad: no input of the computation that made it ` +
        'has requiresGrad set, or it was computed inside vg.noGrad. Set requiresGrad on the parameters first.',
    );
  if (grad === undefined && out.size !== 1)
    throw new VoxgradError(
      `backward: called on a tensor of shape ${fmtShape(out.shape)} without a gradient; backward() without arguments ` +
        'needs a scalar (one element). Reduce it first (e.g. loss.mean()) or pass the gradient: out.backward(gradOfOut).',
    );
  if (grad && grad.shape.join(',') !== out.shape.join(','))
    throw new VoxgradError(`backward: gradient shape ${fmtShape(grad.shape)} does not match the output shape ${fmtShape(out.shape)}`);
  noGrad(() => runBackward(out, grad));
}

function runBackward(out: Tensor, seed?: Tensor): void {
  const seedGrad = seed ? seed.shareStorage() : onesLike(out);
  keep(seedGrad);
  if (!out.node) {
    accumulateLeaf(out, seedGrad);
    return;
  }
  const order = topoOrder(out.node);
  const grads = new Map<Node, Tensor>([[out.node, seedGrad]]);
  for (let i = order.length - 1; i >= 0; i--) {
    const node = order[i];
    const g = grads.get(node);
    if (!g) continue;
    grads.delete(node);
    if (node.consumed)
      throw new VoxgradError(
        `backward: tried to go through the ${node.op.name} op a second time, but its saved tensors were already freed ` +
          'by the first backward. Recompute the forward pass before calling backward again.',
      );
    const rule = node.op.backward as BackwardRule<unknown>;
    const needsGrad = node.inputs.map((x) => x !== null);
    node.op.backwardCalls++;
    const outermost = enterUserOp(`${node.op.name}.backward`);
    let inputGrads: (Tensor | null)[];
    try {
      // @mutation-point: a backward rule's gradients are produced here
      inputGrads = tidy(() =>
        rule(g, {
          saved: node.saved ?? [],
          attrs: node.attrs,
          inputShapes: node.inputShapes,
          inputDtypes: node.inputDtypes,
          needsGrad,
          output: node.output,
        }),
      );
      // the rule's own kernels (not only the ops it calls) are covered: its gradients are checked under its name
      if (numericsChecked()) checkOpNumerics(`${node.op.name}.backward`, [g], inputGrads);
    } finally {
      if (outermost) leaveUserOp();
    }
    g.dispose();
    node.freeSaved();
    node.consumed = true;
    node.inputs.forEach((inp, k) => {
      const gi = inputGrads[k];
      if (!inp || !gi) {
        gi?.dispose();
        return;
      }
      if (gi.shape.join(',') !== node.inputShapes[k].join(','))
        throw new VoxgradError(
          `voxgrad internal: backward of ${node.op.name} returned a gradient of shape ${fmtShape(gi.shape)} for input ${k} ` +
            `of shape ${fmtShape(node.inputShapes[k])}`,
        );
      if (inp instanceof Node) {
        const prev = grads.get(inp);
        if (prev) {
          grads.set(inp, keep(add(prev, gi)));
          prev.dispose();
          gi.dispose();
        } else grads.set(inp, keep(gi));
      } else accumulateLeaf(inp, gi);
    });
  }
  for (const g of grads.values()) g.dispose();
}

function accumulateLeaf(leaf: Tensor, g: Tensor): void {
  if (leaf.isDisposed) {
    g.dispose();
    return;
  }
  if (leaf.grad) {
    const sum = keep(add(leaf.grad, g));
    leaf.grad.dispose();
    g.dispose();
    leaf.grad = sum;
  } else leaf.grad = keep(g);
}

/** Nodes reachable from `root`, inputs before the nodes that use them (each shared node once). */
function topoOrder(root: Node): Node[] {
  const order: Node[] = [];
  const seen = new Set<Node>([root]);
  const stack: { node: Node; next: number }[] = [{ node: root, next: 0 }];
  while (stack.length) {
    const top = stack[stack.length - 1];
    const inputs = top.node.inputs;
    let pushed = false;
    while (top.next < inputs.length) {
      const child = inputs[top.next++];
      if (child instanceof Node && !seen.has(child)) {
        seen.add(child);
        stack.push({ node: child, next: 0 });
        pushed = true;
        break;
      }
    }
    if (!pushed) {
      order.push(top.node);
      stack.pop();
    }
  }
  return order;
}

export interface GradOptions {
  /** Which positional arguments to differentiate with respect to (default 0). */
  argnums?: number | number[];
}

/** Functional gradient: grad(f)(x, ...) returns df/dx (an array when argnums is a list). f must return a scalar. */
export function grad(fn: (...args: Tensor[]) => Tensor, opts: GradOptions = {}): (...args: Tensor[]) => Tensor | Tensor[] {
  const vg = valueAndGrad(fn, opts);
  return (...args) => {
    const [value, grads] = vg(...args);
    value.dispose();
    return grads;
  };
}

/** Like grad, but also returns f's value: valueAndGrad(f)(x) → [value, grads]. */
export function valueAndGrad(
  fn: (...args: Tensor[]) => Tensor,
  opts: GradOptions = {},
): (...args: Tensor[]) => [Tensor, Tensor | Tensor[]] {
  const argnums = opts.argnums ?? 0;
  const list = Array.isArray(argnums) ? argnums : [argnums];
  return (...args) => {
    for (const a of list)
      if (!(args[a] instanceof Tensor))
        throw new VoxgradError(`vg.grad: argument ${a} must be a Tensor to differentiate with respect to it`);
    const leaves = new Map<number, Tensor>();
    const callArgs = args.map((t, i) => {
      if (!list.includes(i)) return t;
      const leaf = t.shareStorage();
      leaf.requiresGrad = true;
      leaves.set(i, leaf);
      return leaf;
    });
    let value!: Tensor;
    let grads: Tensor[];
    try {
      grads = tidy(() => {
        const out = enableGrad(() => fn(...callArgs));
        if (!(out instanceof Tensor) || out.size !== 1)
          throw new VoxgradError('vg.grad: the function must return a scalar Tensor (one element)');
        // an output that does not depend on the arguments has zero gradient (as jax.grad), not an error
        if (out.requiresGrad) backward(out);
        value = keep(out.shareStorage());
        return list.map((i) => {
          const leaf = leaves.get(i)!;
          const g = leaf.grad ?? zerosFor(leaf);
          leaf.grad = null;
          return g;
        });
      });
    } finally {
      for (const l of leaves.values()) l.dispose();
    }
    return [value, Array.isArray(argnums) ? grads : grads[0]];
  };
}

function zerosFor(t: Tensor): Tensor {
  return zerosLike(t);
}
