/**
 * Batching datasets: DataLoader (seeded shuffling, batching, prefetch), the default collate, TensorDataset, Subset
 * and randomSplit.
 *
 * Ownership: a Dataset's get() hands its tensors to the caller. The DataLoader disposes every sample tensor once
 * the batch is collated (except any tensor the collate returns as part of the batch), and the consumer owns each
 * batch it receives: dispose it (or let a vg.tidy scope do it) after use. Batches prefetched but never consumed
 * (a `break` out of `for await`) are disposed by the loader.
 */
import { fail } from '../engine/errors.js';
import { Tensor, tidy } from '../engine/tensor.js';
import { describe } from '../kernels/common.js';
import { reshape, slice, stack } from '../kernels/shape.js';
import type { Dataset } from './dataset.js';
import { Rng, deriveSeed } from './random.js';

/** The default collate's result for samples of type S: tensors stacked on a new dim 0, other leaves gathered in arrays. */
export type Collated<S> = S extends Tensor
  ? Tensor
  : S extends readonly unknown[]
    ? { [K in keyof S]: Collated<S[K]> }
    : S extends Record<string, unknown>
      ? { [K in keyof S]: Collated<S[K]> }
      : S[];

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype;
}

/**
 * PyTorch's default_collate, field by field: tensors are stacked along a new dim 0 (vg.stack: equal shapes and
 * dtypes required), arrays (tuples) and plain objects are collated per position / key, and any other value
 * (number, string, ...) is gathered into an array.
 */
export function defaultCollate<S>(samples: readonly S[]): Collated<S> {
  if (samples.length === 0) fail('defaultCollate', 'needs at least one sample, got an empty list');
  const first = samples[0] as unknown;
  if (first instanceof Tensor) return stack(samples as unknown as Tensor[]) as Collated<S>;
  if (Array.isArray(first)) return first.map((_, i) => defaultCollate(samples.map((s) => (s as unknown[])[i]))) as Collated<S>;
  if (isPlainObject(first))
    return Object.fromEntries(Object.keys(first).map((k) => [k, defaultCollate(samples.map((s) => (s as Record<string, unknown>)[k]))])) as Collated<S>;
  return [...samples] as Collated<S>;
}

function collectTensors(v: unknown, out: Set<Tensor>, depth = 0): Set<Tensor> {
  if (v instanceof Tensor) out.add(v);
  else if (depth < 8 && Array.isArray(v)) for (const x of v) collectTensors(x, out, depth + 1);
  else if (depth < 8 && isPlainObject(v)) for (const x of Object.values(v)) collectTensors(x, out, depth + 1);
  return out;
}

function disposeAll(v: unknown): void {
  for (const t of collectTensors(v, new Set())) t.dispose();
}

function checkSeed(op: string, seed: unknown): number {
  if (!Number.isSafeInteger(seed) || (seed as number) < 0) fail(op, `seed must be an integer in [0, 2^53 - 1], got ${describe(seed)}`);
  return seed as number;
}

export interface DataLoaderOptions<S, B> {
  /** Samples per batch (PyTorch's default 1). */
  batchSize?: number;
  /** Reshuffle every epoch (default false: dataset order). */
  shuffle?: boolean;
  /** Base seed of the shuffling; epoch e uses a permutation derived from (seed, e), so runs reproduce. Default 0. */
  seed?: number;
  /** Drop the last, incomplete batch (default false). */
  dropLast?: boolean;
  /** Turns a list of samples into a batch (default: defaultCollate). */
  collate?: (samples: S[]) => B;
  /**
   * Batches produced ahead of the one being consumed (default 1): while the consumer works on batch k, the
   * dataset's get, the collate and the uploads of batch k + 1 are already under way. 0 loads on demand.
   */
  prefetch?: number;
}

/**
 * torch.utils.data.DataLoader for voxgrad: `for await (const batch of loader) { ...; dispose batch }`. Each
 * `for await` runs one epoch: it takes the permutation of `loader.epoch` and advances `loader.epoch` by one
 * (`setEpoch(e)` resumes at epoch e with that epoch's order).
 */
export class DataLoader<S, B = Collated<S>> implements AsyncIterable<B> {
  readonly dataset: Dataset<S>;
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly seed: number;
  readonly dropLast: boolean;
  readonly prefetch: number;
  private readonly collateFn: (samples: S[]) => B;
  /** The epoch the next `for await` runs. */
  epoch = 0;

  constructor(dataset: Dataset<S>, opts: DataLoaderOptions<S, B> = {}) {
    const op = 'DataLoader';
    if (!dataset || typeof dataset.get !== 'function' || !Number.isInteger(dataset.length) || dataset.length < 0)
      fail(op, `dataset must have an integer length and a get(index) method, got ${describe(dataset)}`);
    const { batchSize = 1, shuffle = false, seed = 0, dropLast = false, prefetch = 1 } = opts;
    if (!Number.isInteger(batchSize) || batchSize < 1) fail(op, `batchSize must be a positive integer, got ${describe(batchSize)}`);
    if (!Number.isInteger(prefetch) || prefetch < 0) fail(op, `prefetch must be a non-negative integer, got ${describe(prefetch)}`);
    if (opts.collate !== undefined && typeof opts.collate !== 'function') fail(op, `collate must be a function, got ${describe(opts.collate)}`);
    this.dataset = dataset;
    this.batchSize = batchSize;
    this.shuffle = Boolean(shuffle);
    this.seed = checkSeed(op, seed);
    this.dropLast = Boolean(dropLast);
    this.prefetch = prefetch;
    this.collateFn = opts.collate ?? ((samples: S[]) => defaultCollate(samples) as unknown as B);
  }

  /** Batches per epoch. */
  get length(): number {
    const n = this.dataset.length;
    return this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  /** Makes the next `for await` run epoch `epoch` (to resume a run). */
  setEpoch(epoch: number): void {
    if (!Number.isInteger(epoch) || epoch < 0) fail('DataLoader.setEpoch', `epoch must be a non-negative integer, got ${describe(epoch)}`);
    this.epoch = epoch;
  }

  /** The sample order of an epoch: identity without shuffle, else a permutation that depends only on (seed, epoch). */
  order(epoch = this.epoch): number[] {
    const n = this.dataset.length;
    if (!this.shuffle) return Array.from({ length: n }, (_, i) => i);
    return new Rng(deriveSeed(this.seed, epoch)).permutation(n);
  }

  private async load(indices: number[]): Promise<B> {
    const samples = await Promise.all(indices.map((i) => this.dataset.get(i)));
    let batch: B;
    try {
      batch = this.collateFn(samples);
    } catch (e) {
      disposeAll(samples);
      throw e;
    }
    const kept = collectTensors(batch, new Set());
    for (const t of collectTensors(samples, new Set())) if (!kept.has(t)) t.dispose();
    return batch;
  }

  [Symbol.asyncIterator](): AsyncIterator<B> {
    const order = this.order(this.epoch);
    this.epoch++;
    const batches: number[][] = [];
    for (let i = 0; i < order.length; i += this.batchSize) {
      const b = order.slice(i, i + this.batchSize);
      if (b.length < this.batchSize && this.dropLast) break;
      batches.push(b);
    }
    let next = 0;
    const pending: Promise<B>[] = [];
    const start = () => {
      const p = this.load(batches[next++]);
      p.catch(() => {}); // surfaced when awaited; a batch abandoned by return() must not raise an unhandled rejection
      pending.push(p);
    };
    // dispose everything produced but not handed out (early exit or a failed batch)
    const drain = async () => {
      next = batches.length;
      const left = pending.splice(0);
      for (const p of left) disposeAll(await p.catch(() => null));
    };
    return {
      next: async (): Promise<IteratorResult<B>> => {
        if (pending.length === 0 && next < batches.length) start();
        const current = pending.shift();
        if (!current) return { done: true, value: undefined };
        while (pending.length < this.prefetch && next < batches.length) start();
        try {
          return { done: false, value: await current };
        } catch (e) {
          await drain();
          throw e;
        }
      },
      return: async (): Promise<IteratorResult<B>> => {
        await drain();
        return { done: true, value: undefined };
      },
    };
  }
}

/**
 * torch.utils.data.TensorDataset: sample i is entry i along dim 0 of each tensor (a fresh tensor the caller owns).
 * `new TensorDataset(a, b)` yields [a[i], b[i]]; `new TensorDataset({ image, label })` yields { image, label }.
 */
export class TensorDataset<S> implements Dataset<S> {
  readonly length: number;
  private readonly tensors: Record<string, Tensor> | Tensor[];

  constructor(...tensors: Tensor[] | [Record<string, Tensor>]) {
    const op = 'TensorDataset';
    const named = tensors.length === 1 && isPlainObject(tensors[0]);
    const list = named ? Object.entries(tensors[0] as Record<string, Tensor>) : (tensors as Tensor[]).map((t, i) => [String(i), t] as const);
    if (list.length === 0) fail(op, 'needs at least one tensor');
    for (const [k, t] of list) {
      if (!(t instanceof Tensor)) fail(op, `tensor ${k} must be a Tensor, got ${describe(t)}`);
      if (t.ndim === 0) fail(op, `tensor ${k} must have at least one dim (samples along dim 0), got a 0-d tensor`);
      if (t.shape[0] !== (list[0][1] as Tensor).shape[0])
        fail(op, `every tensor needs the same size along dim 0: tensor ${list[0][0]} has ${(list[0][1] as Tensor).shape[0]}, tensor ${k} has ${t.shape[0]}`);
    }
    this.tensors = named ? (tensors[0] as Record<string, Tensor>) : (tensors as Tensor[]);
    this.length = (list[0][1] as Tensor).shape[0];
  }

  get(index: number): S {
    if (!Number.isInteger(index) || index < 0 || index >= this.length)
      fail('TensorDataset.get', `index must be an integer in [0, ${this.length}), got ${describe(index)}`);
    const row = (t: Tensor) => tidy(() => reshape(slice(t, 0, index, index + 1), t.shape.slice(1)));
    if (Array.isArray(this.tensors)) return this.tensors.map(row) as S;
    return Object.fromEntries(Object.entries(this.tensors).map(([k, t]) => [k, row(t)])) as S;
  }
}

/** torch.utils.data.Subset: the samples of `dataset` at `indices`, in that order. */
export class Subset<S> implements Dataset<S> {
  constructor(
    readonly dataset: Dataset<S>,
    readonly indices: readonly number[],
  ) {
    for (const i of indices)
      if (!Number.isInteger(i) || i < 0 || i >= dataset.length) fail('Subset', `indices must be integers in [0, ${dataset.length}), got ${describe(i)}`);
  }

  get length(): number {
    return this.indices.length;
  }

  get(index: number): S | Promise<S> {
    if (!Number.isInteger(index) || index < 0 || index >= this.indices.length)
      fail('Subset.get', `index must be an integer in [0, ${this.indices.length}), got ${describe(index)}`);
    return this.dataset.get(this.indices[index]);
  }
}

export function subset<S>(dataset: Dataset<S>, indices: readonly number[]): Subset<S> {
  return new Subset(dataset, indices);
}

export interface RandomSplitOptions {
  /** Seed of the split's permutation (default 0). */
  seed?: number;
  /**
   * The group (patient, subject) of each sample: whole groups are assigned to one subset so no patient appears in
   * two, and `lengths` then count groups. Default: every sample its own group.
   */
  groupBy?: (index: number) => string | number;
}

/**
 * torch.utils.data.random_split: disjoint random subsets with the given lengths (counts summing to the number of
 * samples — or of groups with `groupBy` — or fractions summing to 1, floored with the remainder dealt round-robin
 * as PyTorch does). Samples keep dataset order inside each subset.
 */
export function randomSplit<S>(dataset: Dataset<S>, lengths: readonly number[], opts: RandomSplitOptions = {}): Subset<S>[] {
  const op = 'randomSplit';
  const seed = checkSeed(op, opts.seed ?? 0);
  const keys: (string | number)[] = [];
  const members = new Map<string | number, number[]>();
  for (let i = 0; i < dataset.length; i++) {
    const k = opts.groupBy ? opts.groupBy(i) : i;
    if (!members.has(k)) {
      members.set(k, []);
      keys.push(k);
    }
    members.get(k)!.push(i);
  }
  const n = keys.length;
  const unit = opts.groupBy ? 'groups' : 'samples';
  if (!Array.isArray(lengths) || lengths.length === 0 || !lengths.every((l) => typeof l === 'number' && l >= 0))
    fail(op, `lengths must be a non-empty list of non-negative numbers, got ${describe(lengths)}`);
  let counts = [...lengths];
  const total = lengths.reduce((a, b) => a + b, 0);
  // as PyTorch: counts when they sum to the size, else fractions summing to 1
  if (!(lengths.every(Number.isInteger) && total === n)) {
    if (Math.abs(total - 1) > 1e-9)
      fail(op, `lengths must be counts summing to the ${n} ${unit} or fractions summing to 1, got ${lengths.join(' + ')} = ${total}`);
    counts = lengths.map((f) => Math.floor(f * n));
    let rest = n - counts.reduce((a, b) => a + b, 0);
    for (let i = 0; rest > 0; i = (i + 1) % counts.length, rest--) counts[i]++;
  }
  const perm = new Rng(seed).permutation(n);
  const out: Subset<S>[] = [];
  let at = 0;
  for (const c of counts) {
    const idx = perm.slice(at, at + c).flatMap((g) => members.get(keys[g])!);
    out.push(new Subset(dataset, idx.sort((a, b) => a - b)));
    at += c;
  }
  return out;
}
