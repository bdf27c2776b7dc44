/** vg.memory() and the pool controls. */
import { emptyPool, poolStats, resetPeak, setPoolCap } from './pool.js';
import { liveTensorCount } from './tensor.js';

export interface MemoryInfo {
  /** Tensor handles not yet disposed (including those the autodiff tape holds for backward). */
  liveTensors: number;
  /** Bytes of GPU buffers held by live tensors. */
  bytesInUse: number;
  /** Bytes of idle buffers kept in the pool for reuse. */
  bytesPooled: number;
  /** Highest bytesInUse since the device was created (or resetPeak). */
  peakBytes: number;
  poolLimitBytes: number;
}

export function memory(): MemoryInfo {
  const p = poolStats();
  return {
    liveTensors: liveTensorCount(),
    bytesInUse: p.bytesInUse,
    bytesPooled: p.bytesPooled,
    peakBytes: p.peakBytes,
    poolLimitBytes: p.poolCapBytes,
  };
}

/** Caps the idle bytes the pool keeps (default 1 GiB). */
export function setPoolLimit(bytes: number): void {
  setPoolCap(bytes);
}

/** Releases every idle pooled buffer and resets the peak counter. */
export function emptyCache(): void {
  emptyPool();
  resetPeak();
}
