/**
 * vg.nn.Module: PyTorch's module tree. Parameters are leaf f32 tensors with requiresGrad, buffers are state that is
 * not trained (running statistics), children are modules. They register by property assignment (a Module, or a
 * Tensor with requiresGrad, assigned to a property) or explicitly (registerParameter / registerBuffer /
 * registerModule, which also take the PyTorch state-dict name where it differs from the camelCase property, e.g.
 * 'running_mean'). Keys follow PyTorch: own parameters, own buffers, then children recursively, in registration order.
 */
import { noGrad } from '../engine/autograd.js';
import { fail, fmtShape } from '../engine/errors.js';
import { Tensor } from '../engine/tensor.js';
import { stridesOf } from '../engine/shape.js';
import { stridedCopy } from '../kernels/base.js';

/** Copies src's values into dst's storage (same shape and dtype), outside autodiff. */
export function copyInto(op: string, dst: Tensor, src: Tensor): void {
  const st = stridesOf(dst.shape);
  stridedCopy(op, dst, src, dst.shape, { offset: 0, strides: st }, { offset: 0, strides: st });
}

interface Slot {
  key: string;
  prop: string;
  kind: 'parameter' | 'buffer';
}

export class Module {
  /** Training mode (PyTorch's module.training); set recursively by train() / eval(). */
  training = true;
  private readonly _slots = new Map<string, Slot>();
  private readonly _modules = new Map<string, Module>();

  /** Registers t (or null, an absent optional parameter) under the state-dict key `key`, readable as this[prop]. */
  registerParameter(key: string, t: Tensor | null, prop: string = key): void {
    if (t !== null) {
      if (!(t instanceof Tensor)) fail('registerParameter', `'${key}' must be a Tensor or null, got ${typeof t}`);
      if (t.dtype !== 'f32') fail('registerParameter', `'${key}' must be an f32 tensor, got ${t.dtype}`);
      if (!t.isLeaf) fail('registerParameter', `'${key}' must be a leaf tensor (not the result of an op with grad); detach it first`);
      t.requiresGrad = true;
    }
    this.register(key, t, prop, 'parameter');
  }

  /** Registers a buffer (state saved in stateDict but not trained). */
  registerBuffer(key: string, t: Tensor | null, prop: string = key): void {
    if (t !== null && !(t instanceof Tensor)) fail('registerBuffer', `'${key}' must be a Tensor or null, got ${typeof t}`);
    this.register(key, t, prop, 'buffer');
  }

  /** Registers a child module under `key` (Sequential uses '0', '1', ...). */
  registerModule(key: string, m: Module): void {
    if (!(m instanceof Module)) fail('registerModule', `'${key}' must be a vg.nn.Module, got ${typeof m}`);
    this._modules.set(key, m);
  }

  private register(key: string, t: Tensor | null, prop: string, kind: Slot['kind']): void {
    this._slots.set(key, { key, prop, kind });
    // non-enumerable, so the property scan below does not see it twice
    Object.defineProperty(this, prop, { value: t, writable: true, configurable: true, enumerable: false });
  }

  /** [key, tensor] of this module's own parameters or buffers (null slots skipped, as PyTorch skips None). */
  private own(kind: Slot['kind']): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    const self = this as unknown as Record<string, unknown>;
    for (const s of this._slots.values()) {
      const t = self[s.prop];
      if (s.kind === kind && t instanceof Tensor) out.push([s.key, t]);
    }
    if (kind === 'parameter')
      for (const k of Object.keys(this)) {
        const v = self[k];
        if (v instanceof Tensor && v.requiresGrad && !this._slots.has(k)) out.push([k, v]);
      }
    return out;
  }

  /** [name, child] of the direct children: explicit registrations, then Module-valued properties. */
  namedChildren(): [string, Module][] {
    const out: [string, Module][] = [...this._modules];
    const self = this as unknown as Record<string, unknown>;
    for (const k of Object.keys(this)) if (self[k] instanceof Module && !this._modules.has(k)) out.push([k, self[k] as Module]);
    return out;
  }

  children(): Module[] {
    return this.namedChildren().map(([, m]) => m);
  }

  /** Every module of the tree with its dotted name ('' for this one), depth first, each once. */
  namedModules(prefix = '', seen: Set<Module> = new Set()): [string, Module][] {
    if (seen.has(this)) return [];
    seen.add(this);
    const out: [string, Module][] = [[prefix, this]];
    for (const [k, m] of this.namedChildren()) out.push(...m.namedModules(prefix ? `${prefix}.${k}` : k, seen));
    return out;
  }

  private collect(kind: Slot['kind']): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    const seen = new Set<Tensor>();
    for (const [name, m] of this.namedModules())
      for (const [k, t] of m.own(kind)) {
        if (seen.has(t)) continue; // shared tensors are listed once, as PyTorch does
        seen.add(t);
        out.push([name ? `${name}.${k}` : k, t]);
      }
    return out;
  }

  namedParameters(): [string, Tensor][] {
    return this.collect('parameter');
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  namedBuffers(): [string, Tensor][] {
    return this.collect('buffer');
  }

  buffers(): Tensor[] {
    return this.namedBuffers().map(([, t]) => t);
  }

  /** Sets training mode on this module and every descendant; returns this. */
  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /**
   * { key: Tensor } of every parameter and buffer, PyTorch's keys and order. The tensors are the module's own (as
   * PyTorch's state_dict returns shared, detached references): do not dispose them while the module is in use.
   */
  stateDict(): Record<string, Tensor> {
    const out: Record<string, Tensor> = {};
    for (const [name, m] of this.namedModules())
      for (const kind of ['parameter', 'buffer'] as const)
        for (const [k, t] of m.own(kind)) out[name ? `${name}.${k}` : k] = t;
    return out;
  }

  /**
   * Copies the values of `dict` into this module's parameters and buffers (in place; the module keeps its tensors).
   * strict: every key must match exactly. Shapes and dtypes must always match. Returns the keys not matched.
   */
  loadStateDict(dict: Record<string, Tensor>, opts: { strict?: boolean } = {}): { missingKeys: string[]; unexpectedKeys: string[] } {
    const op = 'loadStateDict';
    if (dict === null || typeof dict !== 'object') fail(op, `state dict must be an object of { key: Tensor }, got ${String(dict)}`);
    const own = this.stateDict();
    const missingKeys = Object.keys(own).filter((k) => !(k in dict));
    const unexpectedKeys = Object.keys(dict).filter((k) => !(k in own));
    if ((opts.strict ?? true) && (missingKeys.length || unexpectedKeys.length))
      fail(
        op,
        `state dict does not match the module: missing keys [${missingKeys.map((k) => `'${k}'`).join(', ')}], ` +
          `unexpected keys [${unexpectedKeys.map((k) => `'${k}'`).join(', ')}]. Rename the keys, or pass { strict: false } to load the matching ones.`,
      );
    const problems: string[] = [];
    for (const [k, t] of Object.entries(own)) {
      const src = dict[k];
      if (src === undefined) continue;
      if (!(src instanceof Tensor)) problems.push(`'${k}' is not a Tensor (${typeof src})`);
      else if (src.shape.length !== t.shape.length || src.shape.some((d, i) => d !== t.shape[i]))
        problems.push(`'${k}': checkpoint shape ${fmtShape(src.shape)}, module shape ${fmtShape(t.shape)}`);
      else if (src.dtype !== t.dtype) problems.push(`'${k}': checkpoint dtype ${src.dtype}, module dtype ${t.dtype}`);
    }
    if (problems.length) fail(op, `size mismatch: ${problems.join('; ')}. Nothing was loaded.`);
    noGrad(() => {
      for (const [k, t] of Object.entries(own)) if (dict[k] !== undefined && dict[k] !== t) copyInto(op, t, dict[k]);
    });
    return { missingKeys, unexpectedKeys };
  }

  /** Disposes every parameter (with its grad) and buffer of the tree, and the tensors its modules cache. */
  dispose(): void {
    for (const [, m] of this.namedModules()) m.freeCaches();
    for (const t of Object.values(this.stateDict())) t.dispose();
  }

  /** Modules that keep tensors outside the state dict (caches) free them here; dispose() calls it on the whole tree. */
  protected freeCaches(): void {}

  /** Subclasses compute their output here. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  forward(..._args: any[]): any {
    fail(this.constructor.name, 'forward is not implemented: subclasses of vg.nn.Module must define forward(...)');
  }

  /** PyTorch's module(...): runs forward. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  call(...args: any[]): any {
    return this.forward(...args);
  }
}
