/** The seam between the dispatch queue and the profiler: set while `vg.profile` runs. */
export interface ProfilerHook {
  /** Called by `dispatch` for every dispatch recorded, in order (the profiler prices it with the kernel's cost). */
  dispatched(kernelName: string, boundBytes: number, uniforms: Readonly<Record<string, number | readonly number[]>> | null, grid: readonly number[]): void;
  timestampWrites(label: string): GPUComputePassTimestampWrites;
  resolve(enc: GPUCommandEncoder): void;
  afterSubmit(): void;
}

export const profilerHooks: { active: ProfilerHook | null } = { active: null };

/** Work of one dispatch: floating-point operations (an fma counts 2) and bytes moved to or from memory. */
export interface KernelCost {
  flops: number;
  bytes: number;
}

/**
 * A kernel family's cost model: from one dispatch's uniforms, grid and the bytes of its bound storage (an upper bound
 * of its traffic) to its work, or null when the uniforms do not say (the profile then shows no rate for it).
 */
export type CostModel = (
  uniforms: Readonly<Record<string, number | readonly number[]>>,
  grid: readonly number[],
  boundBytes: number,
  kernelName: string,
) => KernelCost | null;

/** Cost models by kernel-name prefix ('conv.forward', 'gridSample.3d', ...): the longest declared prefix applies. */
const costModels = new Map<string, CostModel>();

/** Declares the cost model of every kernel whose name starts with `prefix` (kernels declare theirs where they are defined). */
export function declareCost(prefix: string, model: CostModel): void {
  costModels.set(prefix, model);
}

/** The cost of one dispatch of kernel `name`, or null when no model covers it. */
export function costOf(name: string, uniforms: Readonly<Record<string, number | readonly number[]>> | null, grid: readonly number[], boundBytes: number): KernelCost | null {
  let best: string | null = null;
  for (const prefix of costModels.keys()) if (name.startsWith(prefix) && (best === null || prefix.length > best.length)) best = prefix;
  return best === null ? null : costModels.get(best)!(uniforms ?? {}, grid, boundBytes, name);
}
