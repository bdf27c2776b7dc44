/**
 * vg.profile(fn): runs fn with one compute pass per dispatch, each bracketed by timestamp queries, and reports
 * per-kernel GPU time, and the FLOPs and bytes of each dispatch where its kernel family declared a cost model
 * (declareCost). The result can be written as a Chrome trace (chrome://tracing, Perfetto).
 */
import { gpu } from './device.js';
import { VoxgradError } from './errors.js';
import { costOf, profilerHooks, type ProfilerHook } from './profiler-hooks.js';
import { sync } from './runtime.js';

export interface KernelTiming {
  name: string;
  /** GPU start, microseconds from the first recorded kernel. */
  startUs: number;
  durationUs: number;
  /** FLOPs of the dispatch from its kernel's cost model; null where none is declared. */
  flops: number | null;
  /** Bytes from the cost model, else the bytes of the storage it binds (an upper bound of its traffic). */
  bytes: number;
}

export interface KernelSummary {
  name: string;
  count: number;
  totalUs: number;
  meanUs: number;
  /** Summed over the dispatches; flops null when the kernel has no cost model. */
  flops: number | null;
  bytes: number;
}

/** A point in the sequence of dispatches, set by the `mark` function fn receives: `index` kernels came before it. */
export interface ProfileMark {
  name: string;
  index: number;
}

export interface ProfileReport {
  kernels: KernelTiming[];
  /** Total GPU time, count and work per kernel name, largest time first. */
  summary: KernelSummary[];
  totalUs: number;
  marks: ProfileMark[];
  /** Chrome trace-event JSON (load in chrome://tracing or ui.perfetto.dev). */
  chromeTrace(): string;
}

const QUERY_CAP = 4096;

/** Per-kernel GPU times of kernels from a report's list (for instance those between two marks). */
export function summarize(kernels: readonly KernelTiming[]): { summary: KernelSummary[]; totalUs: number } {
  const by = new Map<string, KernelSummary>();
  for (const k of kernels) {
    const e = by.get(k.name) ?? { name: k.name, count: 0, totalUs: 0, meanUs: 0, flops: 0, bytes: 0 };
    e.count++;
    e.totalUs += k.durationUs;
    e.flops = e.flops === null || k.flops === null ? null : e.flops + k.flops;
    e.bytes += k.bytes;
    by.set(k.name, e);
  }
  const summary = [...by.values()].map((e) => ({ ...e, meanUs: e.totalUs / e.count })).sort((a, b) => b.totalUs - a.totalUs);
  return { summary, totalUs: kernels.reduce((s, k) => s + k.durationUs, 0) };
}

/**
 * Runs fn and times every dispatch it makes. fn receives `mark(name)`, which records how many dispatches came before
 * it (report.marks), so a caller can cut the kernels into phases such as training steps.
 */
export async function profile<T>(fn: (mark: (name: string) => void) => T | Promise<T>): Promise<{ result: T; report: ProfileReport }> {
  const st = gpu();
  if (!st.hasTimestamps)
    throw new VoxgradError(
      'vg.profile: this adapter has no timestamp-query feature, so per-kernel GPU times cannot be measured ' +
        `(adapter: ${st.info.vendor} ${st.info.architecture}). In Chromium pass --enable-dawn-features=allow_unsafe_apis.`,
    );
  if (profilerHooks.active) throw new VoxgradError('vg.profile: already profiling; profiles cannot nest');
  await sync();
  const device = st.device;
  const pending: Promise<void>[] = [];
  let toMap: (() => Promise<void>)[] = [];
  const timings: RawTiming[] = [];
  // per dispatch, in recording order: its kernel and cost; the n-th timestamped pass is the n-th dispatch
  const costs: DispatchCost[] = [];
  const marks: ProfileMark[] = [];
  let encoded = 0;
  let set: GPUQuerySet | null = null;
  let labels: string[] = [];
  let seqs: number[] = [];
  const hook: ProfilerHook = {
    dispatched(name, boundBytes, uniforms, grid) {
      const c = costOf(name, uniforms, grid, boundBytes);
      costs.push({ name, flops: c?.flops ?? null, bytes: c?.bytes ?? boundBytes });
    },
    timestampWrites(label) {
      if (!set) set = device.createQuerySet({ type: 'timestamp', count: QUERY_CAP });
      if (labels.length * 2 + 2 > QUERY_CAP) throw new VoxgradError('vg.profile: internal batch exceeded the query cap');
      if (costs[encoded]?.name !== label)
        throw new VoxgradError(`voxgrad internal: vg.profile saw pass ${encoded} as ${label}, but dispatch ${encoded} was ${costs[encoded]?.name}`);
      const i = labels.length;
      labels.push(label);
      seqs.push(encoded++);
      return { querySet: set, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 };
    },
    resolve(enc) {
      if (!set || labels.length === 0) return;
      const n = labels.length * 2;
      const resolveBuf = device.createBuffer({ size: n * 8, usage: 0x200 | 0x04 /* QUERY_RESOLVE | COPY_SRC */ });
      const readBuf = device.createBuffer({ size: n * 8, usage: 0x01 | 0x08 });
      enc.resolveQuerySet(set, 0, n, resolveBuf, 0);
      enc.copyBufferToBuffer(resolveBuf, 0, readBuf, 0, n * 8);
      const names = labels;
      const order = seqs;
      labels = [];
      seqs = [];
      const usedSet = set;
      set = null;
      // mapping must wait until the command buffer that fills readBuf has been submitted
      toMap.push(() =>
        readBuf.mapAsync(1).then(() => {
          const t = new BigUint64Array(readBuf.getMappedRange().slice(0));
          for (let i = 0; i < names.length; i++) timings.push({ seq: order[i], name: names[i], start: t[2 * i], end: t[2 * i + 1] });
          readBuf.destroy();
          resolveBuf.destroy();
          usedSet.destroy();
        }),
      );
    },
    afterSubmit() {
      for (const start of toMap) pending.push(start());
      toMap = [];
    },
  };
  profilerHooks.active = hook;
  let result: T;
  try {
    result = await fn((name) => marks.push({ name, index: costs.length }));
    await sync();
  } finally {
    profilerHooks.active = null;
  }
  await Promise.all(pending);
  return { result, report: buildReport(timings, costs, marks) };
}

interface RawTiming {
  /** Index of the dispatch in recording order. */
  seq: number;
  name: string;
  start: bigint;
  end: bigint;
}

interface DispatchCost {
  name: string;
  flops: number | null;
  bytes: number;
}

function buildReport(raw: RawTiming[], costs: DispatchCost[], marks: ProfileMark[]): ProfileReport {
  // read-backs of different submits may complete in any order; the dispatch order is the queue's order
  raw.sort((a, b) => a.seq - b.seq);
  const t0 = raw.length ? raw.reduce((m, r) => (r.start < m ? r.start : m), raw[0].start) : 0n;
  const kernels = raw.map((r) => ({
    name: r.name,
    startUs: Number(r.start - t0) / 1000,
    durationUs: Number(r.end - r.start) / 1000,
    flops: costs[r.seq].flops,
    bytes: costs[r.seq].bytes,
  }));
  const { summary, totalUs } = summarize(kernels);
  const last = kernels.at(-1);
  const markTime = (index: number) => (index < kernels.length ? kernels[index].startUs : last ? last.startUs + last.durationUs : 0);
  return {
    kernels,
    summary,
    totalUs,
    marks,
    chromeTrace: () =>
      JSON.stringify({
        traceEvents: [
          ...kernels.map((k) => ({
            name: k.name,
            ph: 'X',
            ts: k.startUs,
            dur: k.durationUs,
            pid: 1,
            tid: 1,
            cat: 'gpu',
            args: k.flops === null ? {} : { flops: k.flops, bytes: k.bytes },
          })),
          // marks as instant events at the start of the kernel that follows them
          ...marks.map((m) => ({ name: m.name, ph: 'i', s: 'g', ts: markTime(m.index), pid: 1, tid: 1 })),
        ],
      }),
  };
}
