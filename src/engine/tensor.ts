/**
 * Tensors, their storage and the memory scopes. A Tensor is a handle (shape, dtype, autodiff node) onto a
 * reference-counted Storage that owns one pooled GPU buffer; views such as reshape share the storage.
 * GPU memory never waits for the garbage collector: it is returned by dispose(), tidy() or the autodiff
 * engine once backward no longer needs it.
 */
import { gpu, isCurrentGeneration } from './device.js';
import { VoxgradError, fail, fmtShape } from './errors.js';
import { acquire, release } from './pool.js';
import { checkAsserts, readBuffer, writeBuffer } from './runtime.js';
import type { Node } from './autograd.js';

export type DType = 'f32' | 'i32' | 'u32';
export const DTYPES: readonly DType[] = ['f32', 'i32', 'u32'];
export type TypedArray = Float32Array | Int32Array | Uint32Array;
export type NestedArray = number | NestedArray[];

export function arrayTypeOf(dtype: DType): Float32ArrayConstructor | Int32ArrayConstructor | Uint32ArrayConstructor {
  return dtype === 'f32' ? Float32Array : dtype === 'i32' ? Int32Array : Uint32Array;
}

/**
 * The memory behind a tensor: a pooled GPU buffer, or — for tensors of at most `cpuForwardThreshold()` elements
 * made on the host — a host array that is uploaded on first GPU use. Tiny host tensors let elementwise ops run in
 * JS without a GPU round trip (as tfjs-webgpu does); any GPU use drops the host copy, since a kernel may write.
 */
export class Storage {
  refs = 1;
  /** The device this memory belongs to (see gpu().generation). */
  readonly generation = gpu().generation;
  private _buffer: GPUBuffer | null;
  private _host: TypedArray | null;

  constructor(
    buffer: GPUBuffer | null,
    /** Bytes the tensor data occupies (the buffer may be larger: pool size classes). */
    readonly bytes: number,
    host: TypedArray | null = null,
  ) {
    this._buffer = buffer;
    this._host = host;
  }

  static allocate(bytes: number, op: string): Storage {
    return new Storage(acquire(bytes, op), bytes);
  }

  static onHost(data: TypedArray): Storage {
    return new Storage(null, data.byteLength, data);
  }

  /** Host values when the tensor lives on the host (never mutate them). */
  get host(): TypedArray | null {
    return this._host;
  }

  /** The GPU buffer, uploading host data first if needed. */
  gpuBuffer(op: string): GPUBuffer {
    if (!this._buffer) {
      this._buffer = acquire(this.bytes, op);
      if (this._host!.length) writeBuffer(this._buffer, this._host!);
    }
    this._host = null;
    return this._buffer;
  }

  retain(): void {
    this.refs++;
  }

  release(): void {
    // a buffer of a destroyed device is gone with it; only live ones go back to the pool
    if (--this.refs === 0 && this._buffer && isCurrentGeneration(this.generation)) release(this._buffer);
  }
}

let cpuForwardMax = 128;

/** Largest tensor (in elements) kept on the host and computed in JS by elementwise ops; 0 disables. */
export function setCpuForwardThreshold(elements: number): void {
  cpuForwardMax = Math.max(0, Math.floor(elements));
}

export function cpuForwardThreshold(): number {
  return cpuForwardMax;
}

let liveTensors = 0;
let nextId = 1;
const scopes: Set<Tensor>[] = [];

export function liveTensorCount(): number {
  return liveTensors;
}

export function shapeSize(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export class Tensor {
  readonly id = nextId++;
  readonly shape: readonly number[];
  readonly dtype: DType;
  /** Autodiff node that produced this tensor (null for leaves and for tensors made without grad). */
  node: Node | null = null;
  grad: Tensor | null = null;
  private _storage: Storage | null;
  private _requiresGrad = false;

  /** Internal: wraps a storage (takes one reference) and registers the tensor in the current tidy scope. */
  constructor(storage: Storage, shape: readonly number[], dtype: DType) {
    this._storage = storage;
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
    liveTensors++;
    scopes[scopes.length - 1]?.add(this);
  }

  /** Whether gradients flow to this tensor: only f32 tensors can; a tensor an op produced cannot turn it off. */
  get requiresGrad(): boolean {
    return this._requiresGrad;
  }

  set requiresGrad(value: boolean) {
    if (value && this.dtype !== 'f32') fail('requiresGrad', `only f32 tensors can require gradients, this one is ${this.dtype}`);
    if (!value && this.node) fail('requiresGrad', 'cannot turn off requiresGrad on a non-leaf tensor; use detach()');
    this._requiresGrad = value;
  }

  get size(): number {
    return shapeSize(this.shape);
  }

  get ndim(): number {
    return this.shape.length;
  }

  get isDisposed(): boolean {
    return this._storage === null;
  }

  /** True for tensors that require grad and were not produced by a recorded op (parameters). */
  get isLeaf(): boolean {
    return this.node === null;
  }

  /** The storage; throws a clear error if the tensor was disposed. `op` names the caller in the message. */
  storageFor(op: string): Storage {
    if (!this._storage)
      throw new VoxgradError(
        `${op}: tensor #${this.id} (shape ${fmtShape(this.shape)}, ${this.dtype}) was already disposed. ` +
          'Keep it alive (do not dispose it, return it from vg.tidy, or vg.keep it) until its last use.',
      );
    if (this._storage.generation !== gpu().generation)
      throw new VoxgradError(
        `${op}: tensor #${this.id} (shape ${fmtShape(this.shape)}) was created on a GPU device that has since been ` +
          'destroyed or lost; its data is gone. Recreate it on the current device (keep a CPU copy via await t.data() ' +
          'if you need to survive device loss).',
      );
    return this._storage;
  }

  buffer(op: string): GPUBuffer {
    return this.storageFor(op).gpuBuffer(op);
  }

  /** A new handle on the same storage (shares memory; no autodiff history). */
  shareStorage(shape: readonly number[] = this.shape): Tensor {
    const s = this.storageFor('share');
    s.retain();
    return new Tensor(s, shape, this.dtype);
  }

  dispose(): void {
    if (!this._storage) return;
    this._storage.release();
    this._storage = null;
    liveTensors--;
    for (const s of scopes) s.delete(this);
    if (this.node) {
      const n = this.node;
      this.node = null;
      n.releaseRef();
    }
    if (this.grad) {
      this.grad.dispose();
      this.grad = null;
    }
  }

  /**
   * Typed array with the tensor's elements (row-major). Waits for the GPU, and throws the first device-side
   * assertion (an out-of-range index, checkNumerics) recorded since the last read back.
   */
  async data(): Promise<TypedArray> {
    const s = this.storageFor('data');
    const Ctor = arrayTypeOf(this.dtype);
    if (s.host) {
      const values = Ctor.from(s.host.subarray(0, this.size));
      await checkAsserts();
      return values;
    }
    const raw = await readBuffer(s.gpuBuffer('data'), this.size * 4);
    return new Ctor(raw);
  }

  /** Nested JS arrays (a number for 0-d tensors). */
  async array(): Promise<NestedArray> {
    const d = await this.data();
    return nest(d, this.shape);
  }

  /** The single value of a one-element tensor. */
  async item(): Promise<number> {
    if (this.size !== 1)
      throw new VoxgradError(`item: tensor has ${this.size} elements (shape ${fmtShape(this.shape)}); item() needs exactly one`);
    return (await this.data())[0];
  }

  toString(): string {
    return `Tensor(shape=${fmtShape(this.shape)}, dtype=${this.dtype}${this.requiresGrad ? ', requiresGrad' : ''})`;
  }
}

function nest(d: TypedArray, shape: readonly number[]): NestedArray {
  if (shape.length === 0) return d[0];
  const build = (dim: number, off: number): NestedArray[] => {
    const n = shape[dim];
    const inner = shapeSize(shape.slice(dim + 1));
    const out: NestedArray[] = [];
    for (let i = 0; i < n; i++) out.push(dim === shape.length - 1 ? d[off + i] : build(dim + 1, off + i * inner));
    return out;
  };
  return build(0, 0);
}

// ---- scopes -------------------------------------------------------------------------------------------------------

/** Runs fn and disposes every tensor created inside that is not part of its result. fn must be synchronous. */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Tensor>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    // a failed block's tensors are unreachable from the caller: free them rather than leak them
    scopes.pop();
    for (const t of scope) t.dispose();
    throw e;
  }
  scopes.pop();
  if (result instanceof Promise) {
    for (const t of scope) t.dispose();
    throw new VoxgradError('vg.tidy: the function returned a Promise; tidy scopes must be synchronous (await outside tidy)');
  }
  const keepSet = new Set<Tensor>();
  collectTensors(result, keepSet);
  const parent = scopes[scopes.length - 1];
  for (const t of scope) {
    if (keepSet.has(t)) parent?.add(t);
    else t.dispose();
  }
  return result;
}

/** Removes a tensor from every enclosing tidy scope so that it outlives them. */
export function keep<T extends Tensor>(t: T): T {
  for (const s of scopes) s.delete(t);
  return t;
}

function collectTensors(v: unknown, out: Set<Tensor>, depth = 0): void {
  if (depth > 6 || v === null || typeof v !== 'object') return;
  if (v instanceof Tensor) {
    out.add(v);
    return;
  }
  if (Array.isArray(v)) for (const x of v) collectTensors(x, out, depth + 1);
  else if (v instanceof Map) for (const x of v.values()) collectTensors(x, out, depth + 1);
  else if (Object.getPrototypeOf(v) === Object.prototype)
    for (const x of Object.values(v as Record<string, unknown>)) collectTensors(x, out, depth + 1);
}
