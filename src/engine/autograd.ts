/**
 * The autodiff tape: grad mode, the nodes and how they are recorded. Ops are defined with `defineOp` (engine/op.ts),
 * which is the only caller of `recordNode`; the backward pass that walks the tape lives in kernels/backward.ts
 * because it needs ops (add, onesLike). Recording keeps only what the rule asks to save; a node frees its saved
 * tensors as soon as backward has used them, or when nothing can reach it any more (reference-counted).
 */
import { keep, type DType, type Tensor } from './tensor.js';

export interface BackwardContext<A> {
  /** Tensors the forward saved (shared storage, not copies). */
  saved: readonly Tensor[];
  attrs: A;
  inputShapes: readonly (readonly number[])[];
  inputDtypes: readonly DType[];
  /** needsGrad[i]: input i requires a gradient; rules may return null for the others. */
  needsGrad: readonly boolean[];
  output: { shape: readonly number[]; dtype: DType };
}

/** Returns one gradient per input (null where none flows), each with that input's shape. */
export type BackwardRule<A> = (grad: Tensor, ctx: BackwardContext<A>) => (Tensor | null)[];

export const NOT_DIFFERENTIABLE = 'not-differentiable' as const;

/** What the tape knows of an op (defineOp makes it): its name, its rule and its call counters. */
export interface OpDef<A> {
  readonly name: string;
  readonly backward: BackwardRule<A> | typeof NOT_DIFFERENTIABLE;
  forwardCalls: number;
  backwardCalls: number;
}

let gradEnabled = true;

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs fn without recording (inference, optimiser updates). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

export function enableGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = true;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

type Input = Node | Tensor | null;

export class Node {
  refs = 1;
  saved: Tensor[] | null;
  consumed = false;
  constructor(
    readonly op: OpDef<unknown>,
    readonly attrs: unknown,
    readonly inputs: Input[],
    readonly inputShapes: (readonly number[])[],
    readonly inputDtypes: DType[],
    readonly output: { shape: readonly number[]; dtype: DType },
    saved: Tensor[],
  ) {
    this.saved = saved;
  }

  releaseRef(): void {
    if (--this.refs > 0) return;
    this.freeSaved();
    for (const i of this.inputs) if (i instanceof Node) i.releaseRef();
  }

  freeSaved(): void {
    if (this.saved) for (const t of this.saved) t.dispose();
    this.saved = null;
  }
}

/** True when an op on these inputs must be recorded. */
export function needsRecording(inputs: readonly (Tensor | null | undefined)[]): boolean {
  if (!gradEnabled) return false;
  for (const t of inputs) if (t?.requiresGrad) return true;
  return false;
}

/**
 * Records `out = op(inputs)` on the tape; defineOp calls it when `needsRecording(inputs)` holds (kernels never do).
 * `save` is called only then; the tensors it returns are kept (sharing storage) until backward uses them.
 */
export function recordNode<A>(
  op: OpDef<A>,
  inputs: readonly (Tensor | null | undefined)[],
  out: Tensor,
  attrs: A,
  save?: () => readonly Tensor[],
): Tensor {
  const nodeInputs: Input[] = inputs.map((t) => {
    if (!t || !t.requiresGrad) return null;
    if (t.node) {
      t.node.refs++;
      return t.node;
    }
    return t;
  });
  const saved = save ? save().map((t) => t.shareStorage()) : [];
  for (const s of saved) keep(s);
  out.node = new Node(
    op as OpDef<unknown>,
    attrs,
    nodeInputs,
    inputs.map((t) => (t ? t.shape : [])),
    inputs.map((t) => (t ? t.dtype : 'f32')),
    { shape: out.shape, dtype: out.dtype },
    saved,
  );
  out.requiresGrad = true;
  return out;
}

