/** The seam between the dispatch queue and the profiler: set while `vg.profile` runs. */
export interface ProfilerHook {
  timestampWrites(label: string): GPUComputePassTimestampWrites;
  resolve(enc: GPUCommandEncoder): void;
  afterSubmit(): void;
}

export const profilerHooks: { active: ProfilerHook | null } = { active: null };
