/**
 * GPU buffer pool. Buffers are bucketed into size classes (at most 1/8 larger than asked, so a class fits many
 * nearby sizes and the pool does not fragment by exact shape), and the bytes kept idle are capped.
 * A released buffer waits until the commands recorded before its release have been submitted, so that a reuse
 * (and any queue.writeBuffer into it) is ordered after every earlier use.
 *
 * The pool must not hold much more than the tensors need. Models with many distinct shapes (VoxelMorph's encoder,
 * decoder and integration at five resolutions) free buffers of one class while asking for another, so an exact-class
 * pool kept 2.3x the live peak at 64^3. Hence a request first takes the smallest idle buffer of up to twice its size;
 * failing that, when a buffer released since the last submit would fit, the open batch is submitted (a batch holds up
 * to 64 dispatches, and a backward pass can release hundreds of MB within one). Destroying idle buffers before
 * creating new ones was tried and dropped: Dawn frees a destroyed buffer only once the work recorded before the
 * destroy has run, and a step is recorded far ahead of its execution, so at 96^3 the trimmed buffers and their
 * replacements overlapped (max RSS 2,014 MB with the trim, 1,790 MB without).
 */
import { recordAsyncError } from './device-asserts.js';
import { gpu, onDeviceReset } from './device.js';
import { VoxgradError, currentUserOp } from './errors.js';

const USAGE_STORAGE = 0x80 | 0x04 | 0x08; // STORAGE | COPY_SRC | COPY_DST (GPUBufferUsage, not yet defined at import time in Node)

export function sizeClass(bytes: number): number {
  const b = Math.max(16, bytes);
  if (b <= 4096) return 2 ** Math.ceil(Math.log2(b));
  const step = 2 ** (Math.floor(Math.log2(b)) - 3);
  return Math.ceil(b / step) * step;
}

/**
 * Idle buffers per size class, ordered by creation (newest first, so pop() hands out the oldest). Handing out the oldest
 * idle buffer, rather than the last released, makes a repeated step bind the same buffers each time even when the steps
 * around it allocate and release different numbers of tensors, so its bind groups are found in the cache instead of
 * created (a last-in-first-out pool made the soak create ~490 bind groups per 627-dispatch step).
 */
const free = new Map<number, GPUBuffer[]>();
const bufferIds = new WeakMap<GPUBuffer, number>();
let nextBufferId = 1;

/**
 * A buffer's number: given at creation to the pool's buffers (so it orders them by age), at first use to any other
 * (the runtime keys its bind-group cache by these numbers).
 */
export function bufferId(b: GPUBuffer): number {
  let id = bufferIds.get(b);
  if (id === undefined) bufferIds.set(b, (id = nextBufferId++));
  return id;
}
/** Caches holding buffers (the dispatch queue's bind groups) drop them before the pool destroys any. */
const beforeDestroy: (() => void)[] = [];
let awaitingSubmit: GPUBuffer[] = [];
let pooledBytes = 0;
let inUseBytes = 0;
let peakBytes = 0;
let poolCap = 1 << 30;
/** Allocations whose out-of-memory error scope has not resolved yet: a read back waits for them before reporting. */
const unsettled = new Set<Promise<void>>();
/** Buffers the device refused (invalid): destroyed when released, never pooled. */
const refused = new WeakSet<GPUBuffer>();
let simulatedFailures = 0;

export interface PoolStats {
  bytesInUse: number;
  bytesPooled: number;
  peakBytes: number;
  poolCapBytes: number;
}

export function poolStats(): PoolStats {
  return { bytesInUse: inUseBytes, bytesPooled: pooledBytes, peakBytes, poolCapBytes: poolCap };
}

/** Caps the bytes kept in idle buffers; excess buffers are destroyed. */
export function setPoolCap(bytes: number): void {
  poolCap = bytes;
  trimTo(poolCap);
}

/** Submits the dispatches recorded so far (runtime.ts registers it), so that the buffers released meanwhile pool. */
let submitOpenBatch: () => void = () => undefined;

export function onSubmitNeeded(fn: () => void): void {
  submitOpenBatch = fn;
}

/** Registers a cache that must forget its buffers before idle buffers are destroyed (runtime.ts's bind groups). */
export function onBeforeDestroy(fn: () => void): void {
  beforeDestroy.push(fn);
}

function forgetCachedBuffers(): void {
  for (const fn of beforeDestroy) fn();
}

export function resetPeak(): void {
  peakBytes = inUseBytes;
}

export function acquire(bytes: number, op: string): GPUBuffer {
  const { device, limits } = gpu();
  // a tensor that fits one binding must not be pushed past the limit by its size class
  const maxBinding = limits.maxStorageBufferBindingSize;
  const size = bytes <= maxBinding ? Math.min(sizeClass(bytes), maxBinding) : sizeClass(bytes);
  if (size > limits.maxBufferSize)
    throw new VoxgradError(
      `${currentUserOp() ?? op}: a tensor of ${bytes} bytes exceeds this adapter's maxBufferSize (${limits.maxBufferSize} bytes). ` +
        'Split the data into smaller tensors (e.g. process the volume in chunks).',
    );
  const maxSize = bytes <= maxBinding ? maxBinding : limits.maxBufferSize;
  let buf = takeIdle(size, maxSize);
  if (!buf && awaitingSubmit.some((b) => b.size >= size && b.size <= Math.min(2 * size, maxSize))) {
    // a released buffer would fit but waits for the open batch: submitting it now beats creating another buffer
    submitOpenBatch();
    buf = takeIdle(size, maxSize);
  }
  buf ??= createWatched(device, size, currentUserOp() ?? op);
  inUseBytes += buf.size;
  if (inUseBytes > peakBytes) peakBytes = inUseBytes;
  return buf;
}

/** The idle buffer of the smallest class that holds `size` bytes, at most twice as large and at most `maxSize`. */
function takeIdle(size: number, maxSize: number): GPUBuffer | undefined {
  let best = free.get(size)?.length ? size : 0;
  if (!best) {
    const limit = Math.min(2 * size, maxSize);
    for (const [s, list] of free) if (s > size && s <= limit && list.length && (!best || s < best)) best = s;
  }
  if (!best) return undefined;
  pooledBytes -= best;
  return free.get(best)!.pop();
}

/**
 * Creates a buffer inside an out-of-memory error scope. WebGPU answers through a promise, so the allocation cannot be
 * retried in place: when the device refuses, the pool's idle buffers are destroyed at once (later allocations fit
 * where they can), the refused buffer is never pooled, and the error, naming the op and the size, is thrown by the
 * next read back (data/item/array/sync), which waits for every pending scope.
 */
function createWatched(device: GPUDevice, size: number, op: string): GPUBuffer {
  const simulated = simulatedFailures > 0;
  if (simulated) simulatedFailures--;
  device.pushErrorScope('out-of-memory');
  const buf = device.createBuffer({ size, usage: USAGE_STORAGE });
  bufferId(buf);
  const settled: Promise<void> = device
    .popErrorScope()
    .then((e) => {
      const reason = e?.message ?? (simulated ? 'simulated by vg.debug.simulateOutOfMemory' : null);
      if (reason === null) return;
      refused.add(buf);
      emptyPool();
      recordAsyncError(
        new VoxgradError(
          `${op}: the GPU ran out of memory allocating ${size} bytes (${reason}). WebGPU reports this asynchronously, so ` +
            'results computed since the previous read back may be invalid. Idle pooled buffers were released, so the engine ' +
            'stays usable: dispose tensors you no longer need (vg.tidy), or use a smaller batch, patch or volume, and retry.',
        ),
      );
    })
    .catch(() => undefined) // a lost device rejects its scopes; the read back reports the loss itself
    .finally(() => unsettled.delete(settled));
  unsettled.add(settled);
  return buf;
}

/** Resolves once every allocation made so far is known to have succeeded or been reported (read backs wait on it). */
export async function allocationsSettled(): Promise<void> {
  if (unsettled.size) await Promise.all([...unsettled]);
}

/** Fault injection for tests: the next `count` new buffer allocations are reported as out of memory (they still work). */
export function simulateOutOfMemory(count = 1): void {
  simulatedFailures = Math.max(0, Math.floor(count));
}

/** Returns a buffer; it becomes reusable once the commands recorded so far are submitted. */
export function release(buf: GPUBuffer): void {
  inUseBytes -= buf.size;
  awaitingSubmit.push(buf);
}

/** The dispatch queue takes the buffers released while a batch was open, to pool them after that batch's submit. */
export function takeReleased(): GPUBuffer[] {
  const bufs = awaitingSubmit;
  awaitingSubmit = [];
  return bufs;
}

export function returnToPool(bufs: GPUBuffer[]): void {
  for (const b of bufs) {
    if (refused.has(b)) {
      forgetCachedBuffers();
      b.destroy();
      continue;
    }
    if (pooledBytes + b.size > poolCap) trimTo(poolCap - b.size);
    if (pooledBytes + b.size > poolCap) {
      forgetCachedBuffers();
      b.destroy();
      continue;
    }
    let list = free.get(b.size);
    if (!list) free.set(b.size, (list = []));
    insertByAge(list, b);
    pooledBytes += b.size;
  }
}

/** Inserts `buf` into a newest-first list (binary search on the creation-ordered ids). */
function insertByAge(list: GPUBuffer[], buf: GPUBuffer): void {
  const order = bufferId(buf);
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (bufferId(list[mid]) > order) lo = mid + 1;
    else hi = mid;
  }
  list.splice(lo, 0, buf);
}

/** Destroys idle buffers, largest classes first, until at most `target` bytes stay pooled. */
function trimTo(target: number): void {
  if (pooledBytes <= target) return;
  forgetCachedBuffers();
  const sizes = [...free.keys()].sort((a, b) => b - a);
  for (const s of sizes) {
    const list = free.get(s)!;
    while (list.length && pooledBytes > target) {
      list.pop()!.destroy();
      pooledBytes -= s;
    }
    if (pooledBytes <= target) break;
  }
}

/** Destroys every idle buffer (vg.emptyCache). */
export function emptyPool(): void {
  trimTo(0);
}

onDeviceReset(() => {
  free.clear();
  unsettled.clear();
  simulatedFailures = 0;
  awaitingSubmit = [];
  pooledBytes = 0;
  inUseBytes = 0;
  peakBytes = 0;
});
