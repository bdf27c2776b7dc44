/**
 * vg.profile(fn): runs fn with one compute pass per dispatch, each bracketed by timestamp queries, and reports
 * per-kernel GPU time. The result can be written as a Chrome trace (chrome://tracing, Perfetto).
 */
import { gpu } from './device.js';
import { VoxgradError } from './errors.js';
import { profilerHooks, type ProfilerHook } from './profiler-hooks.js';
import { sync } from './runtime.js';

export interface KernelTiming {
  name: string;
  /** GPU start, microseconds from the first recorded kernel. */
  startUs: number;
  durationUs: number;
}

export interface ProfileReport {
  kernels: KernelTiming[];
  /** Total GPU time and count per kernel name, largest first. */
  summary: { name: string; count: number; totalUs: number; meanUs: number }[];
  totalUs: number;
  /** Chrome trace-event JSON (load in chrome://tracing or ui.perfetto.dev). */
  chromeTrace(): string;
}

const QUERY_CAP = 4096;

export async function profile<T>(fn: () => T | Promise<T>): Promise<{ result: T; report: ProfileReport }> {
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
  const timings: { name: string; start: bigint; end: bigint }[] = [];
  let set: GPUQuerySet | null = null;
  let labels: string[] = [];
  const hook: ProfilerHook = {
    timestampWrites(label) {
      if (!set) set = device.createQuerySet({ type: 'timestamp', count: QUERY_CAP });
      if (labels.length * 2 + 2 > QUERY_CAP) throw new VoxgradError('vg.profile: internal batch exceeded the query cap');
      const i = labels.length;
      labels.push(label);
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
      labels = [];
      const usedSet = set;
      set = null;
      // mapping must wait until the command buffer that fills readBuf has been submitted
      toMap.push(() =>
        readBuf.mapAsync(1).then(() => {
          const t = new BigUint64Array(readBuf.getMappedRange().slice(0));
          for (let i = 0; i < names.length; i++) timings.push({ name: names[i], start: t[2 * i], end: t[2 * i + 1] });
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
    result = await fn();
    await sync();
  } finally {
    profilerHooks.active = null;
  }
  await Promise.all(pending);
  return { result, report: buildReport(timings) };
}

function buildReport(raw: { name: string; start: bigint; end: bigint }[]): ProfileReport {
  const t0 = raw.length ? raw.reduce((m, r) => (r.start < m ? r.start : m), raw[0].start) : 0n;
  const kernels = raw.map((r) => ({
    name: r.name,
    startUs: Number(r.start - t0) / 1000,
    durationUs: Number(r.end - r.start) / 1000,
  }));
  const by = new Map<string, { count: number; totalUs: number }>();
  for (const k of kernels) {
    const e = by.get(k.name) ?? { count: 0, totalUs: 0 };
    e.count++;
    e.totalUs += k.durationUs;
    by.set(k.name, e);
  }
  const summary = [...by.entries()]
    .map(([name, e]) => ({ name, count: e.count, totalUs: e.totalUs, meanUs: e.totalUs / e.count }))
    .sort((a, b) => b.totalUs - a.totalUs);
  const totalUs = kernels.reduce((s, k) => s + k.durationUs, 0);
  return {
    kernels,
    summary,
    totalUs,
    chromeTrace: () =>
      JSON.stringify({
        traceEvents: kernels.map((k) => ({ name: k.name, ph: 'X', ts: k.startUs, dur: k.durationUs, pid: 1, tid: 1, cat: 'gpu' })),
      }),
  };
}
