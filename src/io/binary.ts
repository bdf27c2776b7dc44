/** Typed views of voxel bytes as stored in image files (NIfTI, NRRD): either byte order, 64-bit integers as doubles. */
import { fail } from '../engine/errors.js';
import { gpu } from '../engine/device.js';

export type ElementArrayType = new (buffer: ArrayBuffer) => ArrayLike<number> | BigInt64Array | BigUint64Array;

export const PLATFORM_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Reverses the byte order of each `size`-byte element in place. */
export function swapBytes(bytes: Uint8Array, size: number): void {
  if (size === 1) return;
  for (let i = 0; i < bytes.length; i += size)
    for (let lo = i, hi = i + size - 1; lo < hi; lo++, hi--) {
      const t = bytes[lo];
      bytes[lo] = bytes[hi];
      bytes[hi] = t;
    }
}

/** `count` elements of `elemBytes` bytes from `offset`, decoded in the file's byte order (a copy; int64 → double). */
export function decodeElements(
  bytes: Uint8Array, offset: number, count: number, elemBytes: number, Ctor: ElementArrayType, littleEndian: boolean,
): ArrayLike<number> {
  const copy = bytes.slice(offset, offset + count * elemBytes);
  if (littleEndian !== PLATFORM_LE) swapBytes(copy, elemBytes);
  const arr = new Ctor(copy.buffer);
  return arr instanceof BigInt64Array || arr instanceof BigUint64Array ? Float64Array.from(arr, Number) : arr;
}

/**
 * Rejects a volume whose 4-byte tensor could not exist on this adapter (over maxBufferSize) before any voxel is read
 * or decompressed, so a header claiming a huge size costs nothing. `what` describes the size as the file states it.
 */
export function checkTensorFits(op: string, name: string, what: string, count: number): void {
  const max = gpu().limits.maxBufferSize;
  if (count * 4 > max)
    fail(op, `${name} has ${what}: ${count} voxels, ${count * 4} bytes as a tensor, more than this adapter's maxBufferSize (${max} bytes)`);
}
