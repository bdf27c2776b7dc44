/**
 * Kernel runtime: compiles WGSL (layouts read from its declarations, layouts.ts), caches pipelines, records dispatches into batches
 * and submits them in groups; reads flush.
 *
 * Life of a dispatch: `dispatch()` appends a record (kernel, buffers, packed uniforms, grid) to the open batch.
 * A batch is submitted when it holds `batchSize` dispatches, when its uniform area fills, or when someone reads.
 * Pipelines are created with createComputePipelineAsync; a batch whose pipelines are still compiling waits for
 * them, and later batches queue behind it so submission order is program order.
 */
import commonWgsl from '../../shaders/common.wgsl';
import { assertBuffer, assertsPending, takeAsserts } from './device-asserts.js';
import type { BufferRange } from './binding.js';
import { gpu, onDeviceReset } from './device.js';
import { readLayout, type BindingDeclaration, type KernelLayout, type UniformMemberDeclaration } from './layouts.js';
import { VoxgradError, currentUserOp } from './errors.js';
import { allocationsSettled, bufferId, onBeforeDestroy, onSubmitNeeded, returnToPool, takeReleased } from './pool.js';
import { profilerHooks } from './profiler-hooks.js';

type ScalarKind = 'u32' | 'i32' | 'f32';

interface UniformMember {
  offset: number;
  kind: ScalarKind;
  /** Scalars in the member: 1, 4 (vec4) or 4*n (array<vec4, n>). */
  count: number;
}

export interface Kernel {
  name: string;
  /** Small integer naming the kernel in bind-group cache keys. */
  id: number;
  source: string;
  /** The layout as read from the source (kept for kernelLayouts()). */
  declared: KernelLayout;
  bindings: BindingDeclaration[];
  uniform: { binding: number; size: number; members: Map<string, UniformMember> } | null;
  layout: GPUBindGroupLayout;
  pipeline: GPUComputePipeline | null;
  ready: Promise<GPUComputePipeline>;
  descriptor: GPUComputePipelineDescriptor;
  workgroupSize: number;
}

export type UniformValues = Record<string, number | readonly number[]>;

/** What a storage binding binds: a whole buffer, or a byte range of one (see binding.ts). */
export type BindTarget = GPUBuffer | BufferRange;

interface DispatchRecord {
  kernel: Kernel;
  buffers: BindTarget[];
  uniformOffset: number;
  grid: readonly number[];
  label: string;
}

const kernelCache = new Map<string, Kernel>();

/**
 * Returns the kernel for `key`, building it from `build()` on first use. `build` returns WGSL; `{{WG}}` in it
 * is the workgroup size chosen for this device (<= maxComputeInvocationsPerWorkgroup), and `#if NAME` /
 * `#else` / `#endif` lines keep or drop code by `opts.defines`.
 */
export function kernel(
  key: string,
  build: () => string,
  opts: { workgroupSize?: number; defines?: Record<string, boolean> } = {},
): Kernel {
  const hit = kernelCache.get(key);
  if (hit) return hit;
  const st = gpu();
  const wg = Math.min(opts.workgroupSize ?? 256, st.maxWorkgroupSize);
  const body = preprocess(build(), opts.defines ?? {}).replaceAll('{{WG}}', String(wg));
  // WGSL wants its directives (enable, diagnostic) before any declaration, so they move above the shared helpers
  const directive = (l: string) => l.startsWith('enable ') || l.startsWith('diagnostic(');
  const lines = body.split('\n');
  const source = [...lines.filter(directive), commonWgsl, lines.filter((l) => !directive(l)).join('\n')].join('\n');
  const declared = readLayout(key, source);
  const bindings = declared.bindings;
  let uniform: Kernel['uniform'] = null;
  if (declared.uniform) {
    const members = new Map(declared.uniform.members.map((m) => [m.name, memberLayout(m)]));
    uniform = { binding: declared.uniform.binding, size: Math.ceil(declared.uniform.size / 16) * 16, members };
  }
  const device = st.device;
  const layout = device.createBindGroupLayout({
    label: key,
    entries: bindings.map((b) => ({
      binding: b.binding,
      visibility: 4 /* GPUShaderStage.COMPUTE */,
      // the uniform block moves within one shared buffer per batch: a dynamic offset keeps bind groups reusable
      buffer: { type: b.kind, hasDynamicOffset: b.kind === 'uniform' },
    })),
  });
  const module = device.createShaderModule({ label: key, code: source });
  const k: Kernel = {
    name: key,
    id: kernelCache.size + 1,
    source,
    declared,
    bindings,
    uniform,
    layout,
    pipeline: null,
    ready: null as unknown as Promise<GPUComputePipeline>,
    descriptor: null as unknown as GPUComputePipelineDescriptor,
    workgroupSize: wg,
  };
  k.descriptor = {
    label: key,
    layout: device.createPipelineLayout({ bindGroupLayouts: [layout] }),
    compute: { module, entryPoint: 'main' },
  };
  k.ready = device
    .createComputePipelineAsync(k.descriptor)
    .then(
      (p) => (k.pipeline ??= p),
      async (e) => {
        const info = await module.getCompilationInfo();
        const msgs = info.messages.map((m) => `${m.type} at ${m.lineNum}:${m.linePos}: ${m.message}`).join('\n');
        throw new VoxgradError(`voxgrad internal: kernel ${key} failed to compile: ${e.message}\n${msgs}\n${numbered(source)}`);
      },
    );
  kernelCache.set(key, k);
  return k;
}

/** Line-based `#if NAME` / `#else` / `#endif` (nestable) over WGSL text. */
function preprocess(src: string, defines: Record<string, boolean>): string {
  const out: string[] = [];
  const stack: { keep: boolean; parentKeep: boolean }[] = [];
  let keep = true;
  for (const line of src.split('\n')) {
    const t = line.trim();
    if (t.startsWith('#if ')) {
      const name = t.slice(4).trim();
      const neg = name.startsWith('!');
      const v = Boolean(defines[neg ? name.slice(1) : name]) !== neg;
      stack.push({ keep: v, parentKeep: keep });
      keep = keep && v;
    } else if (t === '#else') {
      const top = stack[stack.length - 1];
      top.keep = !top.keep;
      keep = top.parentKeep && top.keep;
    } else if (t === '#endif') {
      keep = stack.pop()!.parentKeep;
    } else if (keep) out.push(line);
  }
  return out.join('\n');
}

/** Synchronous fallback when a batch must be submitted before its async compile finished. */
function buildPipelineNow(k: Kernel): void {
  k.pipeline = gpu().device.createComputePipeline(k.descriptor);
}

/** How dispatch() packs a uniform member: u32/i32/f32, vec4 of them, or array<vec4<T>, N>. */
function memberLayout(m: UniformMemberDeclaration): UniformMember {
  const scalar = /^(u32|i32|f32)$/.exec(m.type);
  if (scalar) return { offset: m.offset, kind: scalar[1] as ScalarKind, count: 1 };
  const vec4 = /^vec4<(u32|i32|f32)>$/.exec(m.type);
  if (vec4) return { offset: m.offset, kind: vec4[1] as ScalarKind, count: 4 };
  const array = /^array<vec4<(u32|i32|f32)>,([0-9]+)u?>$/.exec(m.type);
  if (array) return { offset: m.offset, kind: array[1] as ScalarKind, count: 4 * Number(array[2]) };
  throw new VoxgradError(`voxgrad internal: uniform member ${m.name} has type ${m.type}; dispatch packs scalars, vec4 and array<vec4<T>, N>`);
}

function numbered(src: string): string {
  return src
    .split('\n')
    .map((l, i) => `${String(i + 1).padStart(4)}| ${l}`)
    .join('\n');
}

/** Workgroup grid for `groups` workgroups: (x, y) with x within the per-dimension limit. */
export function grid1d(groups: number): [number, number] {
  const max = gpu().limits.maxComputeWorkgroupsPerDimension;
  if (groups <= max) return [Math.max(1, groups), 1];
  const y = Math.ceil(groups / max);
  return [Math.ceil(groups / y), y];
}

// ---- batching -------------------------------------------------------------------------------------------------

const UNIFORM_AREA = 1 << 18;
let batchSize = 64;
let records: DispatchRecord[] = [];
let uniformStaging = new ArrayBuffer(UNIFORM_AREA);
let stagingU32 = new Uint32Array(uniformStaging);
let stagingI32 = new Int32Array(uniformStaging);
let stagingF32 = new Float32Array(uniformStaging);
let uniformUsed = 0;
/** One uniform buffer reused by every batch: queue order puts each writeBuffer after the previous batch's use. */
let uniformBuffer: GPUBuffer | null = null;
/** Closed batches not yet submitted, in program order (they wait for pipelines still compiling, or for room). */
const pending: Batch[] = [];
/**
 * Submissions whose completion has not been observed. Dawn on lavapipe crashes (segfault) after ~1000 submits that
 * the event loop never got to retire, so past this many, batches wait in `pending` until the program awaits.
 */
const MAX_IN_FLIGHT = 256;
let inFlight = 0;
let dispatchCount = 0;

interface Batch {
  records: DispatchRecord[];
  uniformData: ArrayBuffer | null;
  /** Buffers released while this batch was open: reusable once it is submitted. */
  released: GPUBuffer[];
}

export function setBatchSize(n: number): void {
  batchSize = Math.max(1, n | 0);
}

/** Total dispatches recorded since the device was created (tests and benchmarks read it). */
export function dispatches(): number {
  return dispatchCount;
}

/**
 * Records one dispatch. `buffers` are bound in the kernel's storage-binding order (binding number order,
 * uniform excluded), each a whole buffer or a byte range; `uniforms` are packed by the reflected member layout.
 */
export function dispatch(k: Kernel, buffers: BindTarget[], uniforms: UniformValues | null, grid: readonly number[]): void {
  const maxBinding = gpu().limits.maxStorageBufferBindingSize;
  const align = gpu().limits.minStorageBufferOffsetAlignment;
  for (const b of buffers) {
    const range = 'buffer' in b ? b : null;
    if (range && (range.offset % align !== 0 || range.offset + range.size > range.buffer.size))
      throw new VoxgradError(
        `voxgrad internal: ${k.name} binds bytes [${range.offset}, ${range.offset + range.size}) of a ${range.buffer.size}-byte buffer ` +
          `(offsets must be multiples of ${align})`,
      );
    const bytes = range ? range.size : (b as GPUBuffer).size;
    if (bytes > maxBinding)
      throw new VoxgradError(
        `${currentUserOp() ?? k.name.split(/[.[]/)[0]}: a tensor of ${bytes} bytes is larger than this adapter's maxStorageBufferBindingSize ` +
          `(${maxBinding} bytes), so no kernel can bind it whole. Process the data in chunks (e.g. slabs along the depth ` +
          'axis or a sliding window), or use an adapter with a larger limit (vg.backendInfo().limits).',
      );
  }
  let uniformOffset = -1;
  if (k.uniform) {
    const align = gpu().limits.minUniformBufferOffsetAlignment;
    uniformOffset = Math.ceil(uniformUsed / align) * align;
    if (uniformOffset + k.uniform.size > UNIFORM_AREA) {
      submitNow();
      uniformOffset = 0;
    }
    packUniforms(k, uniforms ?? {}, uniformOffset);
    uniformUsed = uniformOffset + k.uniform.size;
  }
  records.push({ kernel: k, buffers, uniformOffset, grid, label: k.name });
  profilerHooks.active?.dispatched(k.name, buffers.reduce((sum, b) => sum + b.size, 0), uniforms, grid);
  dispatchCount++;
  if (records.length >= batchSize) submitNow();
}

function packUniforms(k: Kernel, values: UniformValues, base: number): void {
  const u = k.uniform!;
  const w = base >> 2;
  stagingU32.fill(0, w, w + (u.size >> 2));
  for (const name in values) {
    const m = u.members.get(name);
    if (!m) throw new VoxgradError(`voxgrad internal: kernel ${k.name} has no uniform member ${name}`);
    const v = values[name];
    const at = w + (m.offset >> 2);
    const view = m.kind === 'f32' ? stagingF32 : m.kind === 'i32' ? stagingI32 : stagingU32;
    if (typeof v === 'number') view[at] = v;
    else {
      if (v.length > m.count)
        throw new VoxgradError(`voxgrad internal: uniform ${name} of ${k.name} holds ${m.count} values, got ${v.length}`);
      for (let i = 0; i < v.length; i++) view[at + i] = v[i];
    }
  }
}

function closeBatch(): void {
  const released = takeReleased();
  if (records.length === 0 && uniformUsed === 0) {
    if (pending.length) pending[pending.length - 1].released.push(...released);
    else returnToPool(released);
    return;
  }
  pending.push({ records, uniformData: uniformUsed ? uniformStaging.slice(0, uniformUsed) : null, released });
  records = [];
  uniformUsed = 0;
}

/** Submits queued batches from the head while their pipelines are ready (or, with `force`, builds them now). */
function submitReady(force: boolean): boolean {
  while (pending.length) {
    if (inFlight >= MAX_IN_FLIGHT) return false;
    const b = pending[0];
    if (!b.records.every((r) => r.kernel.pipeline)) {
      if (!force) return false;
      for (const r of b.records) if (!r.kernel.pipeline) buildPipelineNow(r.kernel);
    }
    pending.shift();
    submitBatch(b);
  }
  return true;
}

/**
 * A full batch inside synchronous code: submit at once, compiling any pipeline still in flight synchronously,
 * because a loop that never yields would otherwise queue work (and hold its buffers) without bound.
 */
function submitNow(): void {
  closeBatch();
  submitReady(true);
}

// the pool asks for a submit when a buffer it could reuse waits for the open batch
onSubmitNeeded(submitNow);

/** Submits everything recorded so far; resolves once submitted (reads await this, so pipelines compile async). */
async function flush(): Promise<void> {
  closeBatch();
  while (!submitReady(false)) {
    if (inFlight >= MAX_IN_FLIGHT) await gpu().device.queue.onSubmittedWorkDone();
    else await Promise.all(pending[0].records.map((r) => r.kernel.ready));
  }
}

function submitBatch({ records: batch, uniformData, released }: Batch): void {
  const { device } = gpu();
  let ubuf: GPUBuffer | null = null;
  if (uniformData) {
    ubuf = uniformBuffer ??= device.createBuffer({ size: UNIFORM_AREA, usage: 0x40 | 0x08 /* UNIFORM|COPY_DST */ });
    device.queue.writeBuffer(ubuf, 0, uniformData);
  }
  const enc = device.createCommandEncoder();
  const prof = profilerHooks.active;
  let pass: GPUComputePassEncoder | null = null;
  let lastPipeline: GPUComputePipeline | null = null;
  for (let i = 0; i < batch.length; i++) {
    const r = batch[i];
    const k = r.kernel;
    if (prof) {
      pass = enc.beginComputePass({ timestampWrites: prof.timestampWrites(r.label) });
      lastPipeline = null;
    } else if (!pass) pass = enc.beginComputePass();
    if (k.pipeline !== lastPipeline) {
      pass.setPipeline(k.pipeline!);
      lastPipeline = k.pipeline;
    }
    const bg = bindGroupFor(device, k, r.buffers, ubuf);
    if (k.uniform) pass.setBindGroup(0, bg, [r.uniformOffset]);
    else pass.setBindGroup(0, bg);
    pass.dispatchWorkgroups(r.grid[0], r.grid[1] ?? 1, r.grid[2] ?? 1);
    if (prof) {
      pass.end();
      pass = null;
    }
  }
  pass?.end();
  if (prof) prof.resolve(enc);
  device.queue.submit([enc.finish()]);
  inFlight++;
  device.queue.onSubmittedWorkDone().then(() => (inFlight = Math.max(0, inFlight - 1)));
  returnToPool(released);
  if (prof) prof.afterSubmit();
}

// ---- bind groups ---------------------------------------------------------------------------------------------
// createBindGroup costs ~40 µs in Dawn on lavapipe, ten times a whole small dispatch. Loops repeat their
// (kernel, buffers) combinations because the pool hands out its oldest idle buffer first, so bind groups are
// cached by that combination. Any destroyed buffer clears the cache (pool trims are rare). The cache is a
// least-recently-used list (a hit moves its entry to the end of the Map's order): a loop whose steps vary (random
// augmentations pair pool buffers differently) keeps its recurring groups while one-off pairings age out.
// 4096 entries: every cached group holds Dawn and driver memory, and an evicted one until the garbage collector
// finalises it. At 8192 the soak test's small UNet was still filling the cache 250 steps in (RSS rising ~40 MB
// over steps 100-300: 113-217 MB per 1,000 steps in repeated runs); at 4096 it fills within the warm-up (94-100), and
// the demo UNet step's time did not move (357/351 ms against 368/337, builds alternating).
const BIND_GROUP_CACHE_CAP = 4096;
const bindGroups = new Map<string, GPUBindGroup>();
let bindGroupHits = 0;
let bindGroupMisses = 0;

function bindGroupFor(device: GPUDevice, k: Kernel, buffers: BindTarget[], ubuf: GPUBuffer | null): GPUBindGroup {
  let key = String(k.id);
  for (const b of buffers) key += 'buffer' in b ? `,${bufferId(b.buffer)}@${b.offset}+${b.size}` : ',' + bufferId(b);
  let bg = bindGroups.get(key);
  if (bg) {
    bindGroupHits++;
    bindGroups.delete(key);
    bindGroups.set(key, bg);
    return bg;
  }
  bindGroupMisses++;
  const entries: GPUBindGroupEntry[] = [];
  let bi = 0;
  for (const b of k.bindings) {
    if (b.kind === 'uniform') entries.push({ binding: b.binding, resource: { buffer: ubuf!, offset: 0, size: k.uniform!.size } });
    else {
      const t = buffers[bi++];
      entries.push({ binding: b.binding, resource: 'buffer' in t ? t : { buffer: t } });
    }
  }
  bg = device.createBindGroup({ layout: k.layout, entries });
  if (bindGroups.size >= BIND_GROUP_CACHE_CAP) {
    let drop = BIND_GROUP_CACHE_CAP >> 2;
    for (const old of bindGroups.keys()) {
      bindGroups.delete(old);
      if (--drop === 0) break;
    }
  }
  bindGroups.set(key, bg);
  return bg;
}

// a cached bind group must not outlive a buffer it binds: the pool clears the cache before destroying idle buffers
onBeforeDestroy(() => bindGroups.clear());

export interface CacheStats {
  /** Compiled kernels (one pipeline each). */
  pipelines: number;
  /** Bind groups cached now (at most `bindGroupCap`). */
  bindGroups: number;
  bindGroupCap: number;
  /** Dispatches that found their bind group cached, and those that created one, since the device was created. */
  bindGroupHits: number;
  bindGroupMisses: number;
}

/** Sizes of the runtime's caches (vg.debug.cacheStats): long-run memory checks watch them. */
export function cacheStats(): CacheStats {
  return { pipelines: kernelCache.size, bindGroups: bindGroups.size, bindGroupCap: BIND_GROUP_CACHE_CAP, bindGroupHits, bindGroupMisses };
}

/**
 * Waits until every recorded dispatch has been submitted and finished on the GPU; throws the first device-side
 * assertion (bad index, checkNumerics) recorded since the last read back.
 */
export async function sync(): Promise<void> {
  await settle();
  if (assertsPending()) await checkAsserts();
  else await gpu().device.queue.onSubmittedWorkDone();
}

/**
 * Copies `bytes` bytes of `buf` (from `offset`) back to the CPU. Flushes first. When kernels checked something since
 * the last read back, the assertion buffer is copied in the same transfer and its first violation thrown.
 */
export async function readBuffer(buf: GPUBuffer, bytes: number, offset = 0): Promise<ArrayBuffer> {
  await settle();
  const { device } = gpu();
  const size = Math.ceil(Math.max(bytes, 4) / 4) * 4;
  const asserts = assertsPending() ? takeAsserts() : null;
  const staging = device.createBuffer({ size: size + (asserts?.bytes ?? 0), usage: 0x01 | 0x08 /* MAP_READ | COPY_DST */ });
  const enc = device.createCommandEncoder();
  enc.copyBufferToBuffer(buf, offset, staging, 0, size);
  if (asserts) enc.copyBufferToBuffer(assertBuffer(), 0, staging, size, asserts.bytes);
  device.queue.submit([enc.finish()]);
  asserts?.resetDevice();
  try {
    await staging.mapAsync(1 /* GPUMapMode.READ */);
  } catch (e) {
    gpu(); // throws the device-lost error if that is the cause
    throw e;
  }
  const mapped = staging.getMappedRange();
  const out = mapped.slice(0, bytes);
  const assertWords = asserts ? new Uint32Array(mapped.slice(size, size + asserts.bytes)) : null;
  staging.unmap();
  staging.destroy();
  if (asserts) asserts.check(assertWords!);
  return out;
}

/**
 * Submits everything recorded and waits for the out-of-memory scopes of new buffers. It goes round again when code
 * running during its awaits recorded more, so that the checks recorded so far are in submitted work when the
 * assertion buffer is copied (a check submitted after that copy would be lost with its epoch); a few rounds bound it
 * against concurrent loops that never stop recording.
 */
async function settle(): Promise<void> {
  for (let round = 0; round < 4; round++) {
    await flush();
    await allocationsSettled();
    if (records.length === 0 && pending.length === 0) return;
  }
}

/** Throws any device-side assertion pending (host-resident reads call it: they need no transfer of their own). */
export async function checkAsserts(): Promise<void> {
  await settle();
  if (assertsPending()) await readBuffer(assertBuffer(), 4);
}

/** Uploads bytes into a buffer through the queue (ordered after all submitted work). */
export function writeBuffer(buf: GPUBuffer, data: ArrayBufferView, offset = 0): void {
  gpu().device.queue.writeBuffer(buf, offset, data.buffer, data.byteOffset, data.byteLength);
}

/**
 * The kernels built on the current device: name, final WGSL and the layout read from it (tests compare that layout
 * with a full WGSL reflection of the same source).
 */
export function kernelLayouts(): { name: string; source: string; layout: KernelLayout }[] {
  return [...kernelCache.values()].map((k) => ({ name: k.name, source: k.source, layout: k.declared }));
}

/** Compiles every kernel built so far; resolves when all pipelines are ready (warm-up before timing). */
export async function pipelinesReady(): Promise<void> {
  await Promise.all([...kernelCache.values()].map((k) => k.ready));
}

onDeviceReset(() => {
  kernelCache.clear();
  bindGroups.clear();
  bindGroupHits = 0;
  bindGroupMisses = 0;
  records = [];
  uniformUsed = 0;
  uniformBuffer = null;
  pending.length = 0;
  inFlight = 0;
});
