/**
 * The op contract. `defineOp` owns an op: its name, the dtypes it accepts, its forward (argument checks, shape and
 * dtype rule, dispatch), its backward rule (a required field: an op without one does not compile; ops without a
 * gradient say `NOT_DIFFERENTIABLE`), what it saves for backward and, for ops with several outputs, which output the
 * tape differentiates. It returns the callable op, and calling it is what records it on the tape, so a forward that
 * forgets to record cannot exist. Every op is registered: `listOps()` describes them, `opStats()` counts their
 * forward and backward calls.
 */
import { NOT_DIFFERENTIABLE, needsRecording, recordNode, type BackwardRule, type OpDef } from './autograd.js';
import { enterUserOp, fail, leaveUserOp } from './errors.js';
import { checkOpNumerics, numericsChecked } from './numerics.js';
import { Tensor, type DType } from './tensor.js';

export { NOT_DIFFERENTIABLE, type BackwardContext, type BackwardRule } from './autograd.js';

export const ALL_DTYPES: readonly DType[] = ['f32', 'i32', 'u32'];
export const FLOAT: readonly DType[] = ['f32'];

/** The outputs of an op with several: named tensors such as `{ values, indices }` (null: an output not asked for). */
export type NamedOutputs = { readonly [name: string]: Tensor | null };

/** What a primitive forward returns: its output(s), the attributes backward reads, and what backward needs saved. */
export interface Forward<R, A> {
  out: R;
  attrs: A;
  /** Called only when the op is recorded; the tensors it returns are kept (sharing storage) until backward. */
  save?: () => readonly Tensor[];
  /** Temporaries the forward made (for `save`): disposed once the op is recorded (or not), never returned. */
  release?: readonly Tensor[];
}

const COMPOSED = Symbol('composed');

/** A forward result produced by other (registered) ops, which recorded themselves: nothing more to record. */
export interface Composed<R> {
  readonly [COMPOSED]: R;
}

/** Marks a result made by calling other ops (e.g. the identity cases that reuse reshape). */
export function composed<R>(out: R): Composed<R> {
  return { [COMPOSED]: out };
}

interface CommonSpec {
  /** The name the user calls (vg.<name>), also used in errors and the tape's messages. */
  readonly name: string;
  /** Dtypes the op accepts for its first tensor input (checked before the forward runs). */
  readonly dtypes: readonly DType[];
  /** For ops the user reaches through a public function of another name (geluTanh through vg.gelu). */
  readonly via?: string;
}

interface RecordedSpec<Args extends unknown[], A> extends CommonSpec {
  /**
   * The tensors the tape tracks, in the order backward returns their gradients (null/undefined: absent), picked from
   * the call's arguments: `inputs: ([x, , index]) => [x, index]`.
   */
  readonly inputs: (args: NoInfer<Args>) => readonly (Tensor | null | undefined)[];
  readonly backward: BackwardRule<A> | typeof NOT_DIFFERENTIABLE;
}

/** An op with one output, computed by its own kernels. */
export interface PrimitiveSpec<Args extends unknown[], A> extends RecordedSpec<Args, A> {
  readonly forward: (...args: Args) => Forward<Tensor, A> | Composed<Tensor>;
}

/** An op with named outputs, of which the tape differentiates one (the others are constants, e.g. indices). */
export interface MultiOutputSpec<Args extends unknown[], A, R extends NamedOutputs> extends RecordedSpec<Args, A> {
  readonly differentiableOutput: keyof R & string;
  readonly forward: (...args: Args) => Forward<R, A>;
}

/** An op built only from other ops: their rules give its gradient, so it has no backward of its own. */
export interface CompositeSpec<Args extends unknown[], R> extends CommonSpec {
  readonly composite: true;
  readonly forward: (...args: Args) => R;
}

export interface OpInfo {
  name: string;
  dtypes: readonly DType[];
  differentiable: boolean;
  composite: boolean;
  via?: string;
}

interface Entry {
  info: OpInfo;
  def: OpDef<unknown>;
}

const registry = new Map<string, Entry>();

function register(spec: CommonSpec, def: OpDef<unknown>, differentiable: boolean, composite: boolean): void {
  if (registry.has(spec.name)) throw new Error(`voxgrad internal: two ops are named ${spec.name}`);
  const info: OpInfo = { name: spec.name, dtypes: spec.dtypes, differentiable, composite };
  if (spec.via) info.via = spec.via;
  registry.set(spec.name, { info, def });
}

const DTYPE_HINT: Record<DType, string> = {
  f32: "Convert with x.to('f32').",
  i32: "Convert with x.to('i32').",
  u32: "Convert with x.to('u32').",
};

function checkDtype(name: string, dtypes: readonly DType[], first: unknown): void {
  if (!(first instanceof Tensor) || dtypes.includes(first.dtype)) return;
  if (dtypes.length === 1 && dtypes[0] === 'f32')
    fail(name, `input must be a floating-point (f32) tensor, got ${first.dtype}. ${DTYPE_HINT.f32}`);
  if (!dtypes.includes('f32'))
    fail(name, `input must be an integer tensor (${dtypes.join(' or ')}), got ${first.dtype}. ${DTYPE_HINT[dtypes[0]]}`);
  fail(name, `input must have dtype ${dtypes.join(' or ')}, got ${first.dtype}. ${DTYPE_HINT[dtypes[0]]}`);
}

/**
 * Defines and registers an op; returns the function users call. A primitive (`inputs`, `forward`, `backward`) is
 * recorded on the tape by that function whenever grad mode is on and a tracked input requires grad; a composite
 * (`composite: true`) only calls other ops, which record themselves.
 */
export function defineOp<Args extends unknown[], A>(spec: PrimitiveSpec<Args, A>): (...args: Args) => Tensor;
export function defineOp<Args extends unknown[], R>(spec: CompositeSpec<Args, R>): (...args: Args) => R;
export function defineOp<Args extends unknown[], A, R>(spec: PrimitiveSpec<Args, A> | CompositeSpec<Args, R>): (...args: Args) => Tensor | R {
  if ('composite' in spec) return defineComposite(spec);
  return defineRecorded(spec, (out) => out);
}

/** defineOp for ops with named outputs (`{ values, indices }`): the tape differentiates `differentiableOutput`. */
export function defineMultiOutputOp<Args extends unknown[], A, R extends NamedOutputs>(spec: MultiOutputSpec<Args, A, R>): (...args: Args) => R {
  const key = spec.differentiableOutput;
  return defineRecorded(spec, (out) => out[key]);
}

function defineComposite<Args extends unknown[], R>(spec: CompositeSpec<Args, R>): (...args: Args) => R {
  const { name, dtypes, forward } = spec;
  const def: OpDef<unknown> = { name, backward: NOT_DIFFERENTIABLE, forwardCalls: 0, backwardCalls: 0 };
  register(spec, def, true, true);
  return (...args: Args): R => {
    def.forwardCalls++;
    const outermost = enterUserOp(name);
    try {
      checkDtype(name, dtypes, args[0]);
      return forward(...args);
    } finally {
      if (outermost) leaveUserOp();
    }
  };
}

function defineRecorded<Args extends unknown[], A, R>(
  spec: RecordedSpec<Args, A> & { readonly forward: (...args: Args) => Forward<R, A> | Composed<R> },
  tracked: (out: R) => Tensor | null,
): (...args: Args) => R {
  const { name, dtypes, inputs, forward } = spec;
  const def: OpDef<A> = { name, backward: spec.backward, forwardCalls: 0, backwardCalls: 0 };
  register(spec, def as OpDef<unknown>, spec.backward !== NOT_DIFFERENTIABLE, false);
  return (...args: Args): R => {
    def.forwardCalls++;
    const outermost = enterUserOp(name);
    try {
      return run(args);
    } finally {
      if (outermost) leaveUserOp();
    }
  };

  function run(args: Args): R {
    const ins = inputs(args);
    checkDtype(name, dtypes, ins[0]);
    const result = forward(...args);
    if (COMPOSED in result) return result[COMPOSED];
    const { out, attrs, save, release } = result;
    if (numericsChecked()) checkOpNumerics(name, ins, out instanceof Tensor ? [out] : Object.values(out as NamedOutputs));
    if (def.backward !== NOT_DIFFERENTIABLE && needsRecording(ins)) {
      const y = tracked(out);
      // only floating-point tensors carry gradients: an integer result (argmax, a cast to i32) is a constant
      if (y && y.dtype === 'f32') recordNode(def, ins, y, attrs, save);
    }
    if (release) for (const t of release) t.dispose();
    return out;
  }
}

/** Every registered op, sorted by name. */
export function listOps(): OpInfo[] {
  return [...registry.values()].map((e) => ({ ...e.info, dtypes: [...e.info.dtypes] })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export interface OpStat {
  name: string;
  forward: number;
  backward: number;
}

/** How often each op ran forward and backward since the start (or the last resetOpStats). */
export function opStats(): OpStat[] {
  return [...registry.values()]
    .map((e) => ({ name: e.info.name, forward: e.def.forwardCalls, backward: e.def.backwardCalls }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export function resetOpStats(): void {
  for (const e of registry.values()) {
    e.def.forwardCalls = 0;
    e.def.backwardCalls = 0;
  }
}
