/**
 * Kernel variants picked by measurement. A kernel family with several valid variants for a problem (tile shapes,
 * algorithms) asks `tuned(key, variants, fallback, makeTrial)`: it gets the variant measured fastest for that key on
 * this adapter if one is known, else its own heuristic `fallback` at once (the first step never waits on tuning),
 * and the key is remembered as pending. `tune()` (vg.tune) then measures every pending key: each variant of it runs
 * once to compile, then `runs` times on the trial's scratch inputs, timed by timestamp queries (vg.profile) where the
 * adapter has them, else by the wall time to completion; the fastest median wins.
 * Choices live in memory per adapter; a platform store (Node: src/engine/tuner-node.ts, a JSON file per adapter
 * under the user's cache dir) loads them on first use and saves them after each tune(). Browsers keep them in memory.
 */
import { gpu, onDeviceReset } from './device.js';
import { VoxgradError } from './errors.js';
import { profile } from './profiler.js';
import { sync } from './runtime.js';

/** One measurable problem: runs a variant's dispatches on scratch inputs it owns. */
export interface Trial {
  run(variant: string): void;
  dispose(): void;
}

/** Where choices persist between processes, per adapter (its key from adapterKey()). */
export interface TuningStore {
  load(adapter: string): Record<string, string> | null;
  save(adapter: string, choices: Record<string, string>, about: Record<string, string>): void;
  /** For messages: where the choices of `adapter` are kept. */
  where(adapter: string): string;
}

export interface TuneOptions {
  /** Timed runs per variant (after one that compiles it); the median counts. Default 3. */
  runs?: number;
  /** Tune only these keys (each must be pending or known). Default: every pending key. */
  keys?: readonly string[];
}

export interface TuneResult {
  key: string;
  chosen: string;
  /** Median ms per variant. */
  ms: Record<string, number>;
  timer: 'timestamp queries' | 'wall';
}

interface Pending {
  variants: readonly string[];
  makeTrial: () => Trial;
}

/** Keys met without a measured choice, oldest first; bounded so a stream of new shapes cannot grow it forever. */
const MAX_PENDING = 256;
let store: TuningStore | null = null;
let adapter: string | null = null;
/** adapterKey()'s value for the current device (every conv call asks for it). */
let deviceKey: string | null = null;
let choices = new Map<string, string>();
const pending = new Map<string, Pending>();

export function setTuningStore(s: TuningStore | null): void {
  store = s;
  adapter = null;
}

onDeviceReset(() => {
  // the next device may be another adapter: its choices load on first use
  adapter = null;
  deviceKey = null;
  choices = new Map();
  pending.clear();
});

/** FNV-1a over the adapter's identity and limits: tiles tuned on one adapter say nothing about another. */
export function adapterKey(): string {
  if (deviceKey) return deviceKey;
  const { info } = gpu();
  const text = JSON.stringify([info.vendor, info.architecture, info.description, info.limits]);
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  deviceKey = h.toString(16).padStart(8, '0');
  return deviceKey;
}

function loaded(): Map<string, string> {
  const key = adapterKey();
  if (adapter !== key) {
    adapter = key;
    choices = new Map(Object.entries(store?.load(key) ?? {}));
  }
  return choices;
}

/** The variant to run for `key`: the measured one when known (and still offered), else `fallback`. */
export function tuned(key: string, variants: readonly string[], fallback: string, makeTrial: () => Trial): string {
  const known = loaded().get(key);
  if (known !== undefined && variants.includes(known)) return known;
  if (variants.length > 1 && !pending.has(key)) {
    if (pending.size >= MAX_PENDING) pending.delete(pending.keys().next().value!);
    pending.set(key, { variants, makeTrial });
  }
  return fallback;
}

/** Measures the pending keys (or `opts.keys`), keeps the fastest variant of each, saves them; returns what it did. */
export async function tune(opts: TuneOptions = {}): Promise<TuneResult[]> {
  const runs = opts.runs ?? 3;
  if (!Number.isInteger(runs) || runs < 1) throw new VoxgradError(`vg.tune: runs must be a positive integer, got ${String(opts.runs)}`);
  loaded();
  const keys = opts.keys ?? [...pending.keys()];
  for (const k of keys)
    if (!pending.has(k))
      throw new VoxgradError(`vg.tune: no pending problem has the key ${JSON.stringify(k)}; pending: ${JSON.stringify([...pending.keys()])}`);
  const timer = gpu().hasTimestamps ? 'timestamp queries' : 'wall';
  const results: TuneResult[] = [];
  for (const key of keys) {
    const p = pending.get(key)!;
    const trial = p.makeTrial();
    const ms: Record<string, number> = {};
    try {
      for (const v of p.variants) {
        await time(trial, v, timer); // compiles
        const t: number[] = [];
        for (let r = 0; r < runs; r++) t.push(await time(trial, v, timer));
        t.sort((a, b) => a - b);
        ms[v] = t[(t.length - 1) >> 1];
      }
    } finally {
      trial.dispose();
    }
    const chosen = p.variants.reduce((best, v) => (ms[v] < ms[best] ? v : best));
    choices.set(key, chosen);
    pending.delete(key);
    results.push({ key, chosen, ms, timer });
  }
  if (store && results.length) {
    const { info } = gpu();
    store.save(adapter!, Object.fromEntries(choices), { vendor: info.vendor, architecture: info.architecture, description: info.description });
  }
  return results;
}

async function time(trial: Trial, variant: string, timer: TuneResult['timer']): Promise<number> {
  if (timer === 'timestamp queries') {
    const { report } = await profile(() => trial.run(variant));
    return report.totalUs / 1000;
  }
  await sync();
  const t0 = performance.now();
  trial.run(variant);
  await sync();
  return performance.now() - t0;
}

/** What the tuner holds now: this adapter's key, its store location, the known choices and the pending keys. */
export function tuningState(): { adapter: string; store: string | null; choices: Record<string, string>; pending: string[] } {
  const c = loaded();
  return { adapter: adapter!, store: store?.where(adapter!) ?? null, choices: Object.fromEntries(c), pending: [...pending.keys()] };
}

/** Forgets the in-memory choices and pending keys (the store keeps its file; the next use reloads it). */
export function resetTuning(): void {
  adapter = null;
  choices = new Map();
  pending.clear();
}
