/** Messages between the page (main.ts) and the module Worker (worker.ts) that does all GPU work. */

/** Page → worker. Every request carries an id; the worker answers it with 'done' or 'error' (after any 'progress'). */
export type Request =
  | { id: number; kind: 'init' }
  | { id: number; kind: 'load'; image: ArrayBuffer; name: string; labels?: ArrayBuffer }
  | { id: number; kind: 'segment' }
  | RegisterRequest
  | { id: number; kind: 'finetune'; steps: number }
  | { id: number; kind: 'weights' }
  | { id: number; kind: 'profile' }
  | { id: number; kind: 'view' }
  | { id: number; kind: 'cancel' };

/** Registration of slice `moving` onto slice `fixed`, both resized to size × size (web/register-step.mjs's methods). */
export interface RegisterRequest {
  id: number;
  kind: 'register';
  fixed: number;
  moving: number;
  steps: number;
  method: 'voxelmorph' | 'hetero' | 'adacs' | 'bim';
  size: number;
}

/** An RGBA picture for a canvas (the buffer is transferred). */
export interface Picture {
  title: string;
  width: number;
  height: number;
  rgba: Uint8ClampedArray;
}

/** Worker → page. */
export type Reply =
  | { id: number; kind: 'progress'; stage: string; fraction: number; loss?: number; memory: MemoryLine }
  | { id: number; kind: 'done'; result: unknown; memory: MemoryLine }
  | { id: number; kind: 'error'; message: string };

export interface MemoryLine {
  liveTensors: number;
  bytesInUse: number;
  peakBytes: number;
}

export interface InitResult {
  adapter: string;
  fallback: boolean;
  features: string[];
  warmupMs: number;
}

export interface LoadResult {
  shape: number[];
  spacing: number[];
  hasLabels: boolean;
}

export interface SegmentResult {
  /** The label volume as .nii.gz bytes (shown as NiiVue's overlay, offered as a download). */
  labels: ArrayBuffer;
  /** Dice per structure against the loaded labels, when labels were loaded. */
  dice: Record<string, number> | null;
  ms: number;
}

export interface RegisterResult {
  /** fixed, moving, warped, deformation grid, Jacobian, flow, and the method's variance or score map if it has one. */
  pictures: Picture[];
  warped: ArrayBuffer;
  losses: number[];
  /** The first step (compiling the registration kernels on first use) and the mean of the later steps. */
  firstStepMs: number;
  msPerStep: number;
}

export interface FinetuneResult {
  losses: number[];
  msPerStep: number;
  firstStepMs: number;
}
