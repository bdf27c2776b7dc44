/**
 * Storage bindings past the adapter's maxStorageBufferBindingSize. A tensor may live in a buffer up to maxBufferSize,
 * but a kernel can bind at most `bindingLimit()` bytes of it at once. Ops over larger tensors bind windows (a byte
 * range starting at an offset aligned to minStorageBufferOffsetAlignment; the kernel adds the element `shift` between
 * that offset and the range it wants) or split their work into pieces whose windows fit.
 */
import { gpu } from './device.js';
import { fail } from './errors.js';
import type { Tensor } from './tensor.js';

/** A byte range of a buffer, bound in place of the whole buffer. */
export interface BufferRange {
  buffer: GPUBuffer;
  offset: number;
  size: number;
}

let limitOverride: number | null = null;

/**
 * For tests: lowers the binding limit ops plan with to `bytes` (never above the adapter's), so small tensors take the
 * split paths; `null` restores the adapter's limit.
 */
export function setBindingLimit(bytes: number | null): void {
  if (bytes !== null && (!Number.isInteger(bytes) || bytes < 4096 || bytes % 4 !== 0))
    fail('debug.setBindingLimit', `bytes must be null or an integer multiple of 4 of at least 4096, got ${String(bytes)}`);
  limitOverride = bytes;
}

/** The most bytes one storage binding may cover: the adapter's limit, or the test override when lower. */
export function bindingLimit(): number {
  const hw = gpu().limits.maxStorageBufferBindingSize;
  return limitOverride === null ? hw : Math.min(hw, limitOverride);
}

/** Elements per alignment unit: windows start at multiples of this many 4-byte elements. */
export function alignElements(): number {
  return gpu().limits.minStorageBufferOffsetAlignment / 4;
}

/** The most elements a window may cover wherever it starts (the aligned-down start can add up to one unit). */
export function windowElements(): number {
  return Math.floor(bindingLimit() / 4) - alignElements();
}

export const bytesOf = (t: Tensor): number => t.size * 4;

/** True when every tensor can be bound whole. */
export function fitsBinding(...tensors: readonly (Tensor | null | undefined)[]): boolean {
  const limit = bindingLimit();
  return tensors.every((t) => !t || bytesOf(t) <= limit);
}

/**
 * A binding of elements [start, end) of `t`: bound from the aligned-down start; the kernel finds element `start` at
 * index `shift` of the binding.
 */
export function window(op: string, t: Tensor, start: number, end: number): { range: BufferRange; shift: number } {
  const align = alignElements();
  const from = Math.floor(start / align) * align;
  return { range: { buffer: t.buffer(op), offset: from * 4, size: Math.max(1, end - from) * 4 }, shift: start - from };
}

/**
 * Fails before any GPU work when a tensor `op` cannot split is larger than one binding: names the op, the tensor,
 * its bytes, the limit and `workaround`.
 */
export function requireBindable(op: string, tensors: Record<string, Tensor | null | undefined>, workaround: string): void {
  const limit = bindingLimit();
  for (const [name, t] of Object.entries(tensors))
    if (t && bytesOf(t) > limit)
      fail(
        op,
        `${name} (shape [${t.shape.join(', ')}]) holds ${bytesOf(t)} bytes, more than one storage binding on this adapter ` +
          `(maxStorageBufferBindingSize ${limit} bytes), and ${op} cannot split it. ${workaround}`,
      );
}
