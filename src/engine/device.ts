/**
 * The device contract: one adapter and device for the whole library. Everything that talks to WebGPU
 * directly (buffers, pipelines, queues) goes through the object returned by `gpu()`.
 */
import { VoxgradError } from './errors.js';

/** How a platform entry point (Node, browser) hands us a `GPU` object. */
export type GpuProvider = () => Promise<GPU | undefined>;

export interface InitOptions {
  /** 'high-performance' or 'low-power', passed to requestAdapter. */
  powerPreference?: GPUPowerPreference;
  /** Ask for timestamp queries when the adapter has them (needed by vg.profile). Default true. */
  timestamps?: boolean;
  /**
   * Use subgroup operations where the adapter has them (the conv kernels broadcast weights across lanes: on CPU
   * adapters one load then serves 8 lanes' rows). Default true; false runs the kernels that do without.
   */
  subgroups?: boolean;
}

export interface BackendInfo {
  vendor: string;
  architecture: string;
  description: string;
  isFallbackAdapter: boolean;
  platform: 'node' | 'browser';
  features: string[];
  limits: Record<string, number>;
  /** Subgroup lanes the kernels count on (the adapter's smallest subgroup size), 0 when they use no subgroups. */
  subgroupLanes: number;
}

export interface DeviceState {
  device: GPUDevice;
  generation: number;
  adapter: GPUAdapter;
  info: BackendInfo;
  limits: GPUSupportedLimits;
  hasTimestamps: boolean;
  /**
   * Subgroup lanes every kernel may count on: the adapter's smallest subgroup size when the device has the
   * `subgroups` feature, else 0. Kernels that broadcast values across lanes (the conv's weights) need 8.
   */
  subgroupLanes: number;
  /** The adapter's largest subgroup size where subgroupLanes > 0 (a subgroup never spans more lanes), else 0. */
  subgroupMaxLanes: number;
  /** Largest 1-D workgroup this device accepts; kernels size themselves from it. */
  maxWorkgroupSize: number;
  /** The adapter's kind (adapterKind()), read once at init. */
  kind: AdapterKind;
  lost: string | null;
}

let provider: GpuProvider | null = null;
/** Increments with every device created; storages remember theirs, so stale tensors fail clearly. */
let generation = 0;
let platform: 'node' | 'browser' = 'browser';
let state: DeviceState | null = null;
/** vg.destroy() ran and no init since: errors then say so instead of "no device yet". */
let destroyed = false;
let initPromise: Promise<BackendInfo> | null = null;
const resetHooks: (() => void)[] = [];

export function setGpuProvider(p: GpuProvider, kind: 'node' | 'browser'): void {
  provider = p;
  platform = kind;
}

/** Modules holding device-bound caches (pipelines, pools) register here to be cleared when the device goes. */
export function onDeviceReset(hook: () => void): void {
  resetHooks.push(hook);
}

const NODE_HELP =
  'No WebGPU adapter was found. In Node, voxgrad uses Dawn from the `webgpu` npm package, which needs a Vulkan driver: ' +
  'on Debian bookworm install Mesa 25 from bookworm-backports (`apt-get install -t bookworm-backports mesa-vulkan-drivers libvulkan1`), ' +
  'or run `npm run setup`, which does this when no adapter is found. A GPU vendor driver (NVIDIA, AMD, Intel) works too.';
const BROWSER_HELP =
  'No WebGPU adapter was found: `navigator.gpu` is missing or returned no adapter. Use a browser with WebGPU ' +
  '(Chrome/Edge 113+, Safari 26+, Firefox 141+), serve the page from https or localhost, and in headless Chromium pass ' +
  '`--enable-unsafe-webgpu`.';

export async function init(opts: InitOptions = {}): Promise<BackendInfo> {
  for (const key of ['timestamps', 'subgroups'] as const)
    if (opts[key] !== undefined && typeof opts[key] !== 'boolean')
      throw new VoxgradError(`vg.init: ${key} must be true or false, got ${JSON.stringify(opts[key])}`);
  if (state && !state.lost) {
    // an existing device keeps its features: asking it to do without one it uses would be silently ignored
    const off = (['timestamps', 'subgroups'] as const).filter(
      (key) => opts[key] === false && (key === 'timestamps' ? state!.hasTimestamps : state!.subgroupLanes > 0),
    );
    if (off.length)
      throw new VoxgradError(
        `vg.init: a device already exists and uses ${off.join(' and ')}; call vg.destroy() before vg.init({ ${off.map((k) => `${k}: false`).join(', ')} })`,
      );
    return state.info;
  }
  if (initPromise) return initPromise;
  initPromise = createDevice(opts).finally(() => {
    initPromise = null;
  });
  return initPromise;
}

async function createDevice(opts: InitOptions): Promise<BackendInfo> {
  if (state) destroyDevice();
  const gpuObj = provider ? await provider() : (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
  const help = platform === 'node' ? NODE_HELP : BROWSER_HELP;
  if (!gpuObj) throw new VoxgradError(`vg.init: ${help}`);
  const adapter = await gpuObj.requestAdapter({ powerPreference: opts.powerPreference });
  if (!adapter) throw new VoxgradError(`vg.init: ${help}`);
  const wantTimestamps = opts.timestamps !== false && adapter.features.has('timestamp-query');
  const requiredFeatures: GPUFeatureName[] = wantTimestamps ? ['timestamp-query'] : [];
  // older implementations have the feature but not the size in adapter.info: without the size, no subgroups
  const subgroupMin = (adapter.info as { subgroupMinSize?: number } | undefined)?.subgroupMinSize ?? 0;
  const useSubgroups = opts.subgroups !== false && adapter.features.has('subgroups' as GPUFeatureName) && subgroupMin > 0;
  if (useSubgroups) requiredFeatures.push('subgroups' as GPUFeatureName);
  // Ask for the adapter's own limits: the defaults (e.g. 128 MiB bindings, 256 invocations) undersell real GPUs.
  const requiredLimits: Record<string, number> = {};
  for (const key of LIMIT_KEYS) {
    const v = (adapter.limits as unknown as Record<string, number>)[key];
    if (typeof v === 'number') requiredLimits[key] = v;
  }
  const device = await adapter.requestDevice({ requiredFeatures, requiredLimits });
  const limits: Record<string, number> = {};
  for (const key of LIMIT_KEYS) limits[key] = (device.limits as unknown as Record<string, number>)[key];
  const ai = adapter.info;
  const info: BackendInfo = {
    vendor: ai?.vendor ?? '',
    architecture: ai?.architecture ?? '',
    description: ai?.description ?? '',
    isFallbackAdapter: Boolean((ai as { isFallbackAdapter?: boolean } | undefined)?.isFallbackAdapter),
    platform,
    features: [...adapter.features].sort(),
    limits,
    subgroupLanes: useSubgroups ? subgroupMin : 0,
  };
  const s: DeviceState = {
    device,
    generation: ++generation,
    adapter,
    info,
    limits: device.limits,
    hasTimestamps: wantTimestamps,
    subgroupLanes: info.subgroupLanes,
    subgroupMaxLanes: useSubgroups ? Math.max(subgroupMin, (adapter.info as { subgroupMaxSize?: number } | undefined)?.subgroupMaxSize ?? 0) : 0,
    maxWorkgroupSize: Math.min(device.limits.maxComputeInvocationsPerWorkgroup, device.limits.maxComputeWorkgroupSizeX),
    kind: kindOf(info),
    lost: null,
  };
  // vg.destroy() detaches the state before destroying, so a loss seen here came from elsewhere (a driver reset, or
  // device.destroy() called on the device directly): every later call then fails with a message saying so
  device.lost.then((l) => {
    if (state === s) s.lost = `${l.reason}: ${l.message || 'no message'}`;
  });
  device.addEventListener?.('uncapturederror', (e: Event) => {
    console.error('voxgrad: uncaptured WebGPU error:', (e as GPUUncapturedErrorEvent).error?.message);
  });
  state = s;
  destroyed = false;
  return info;
}

const LIMIT_KEYS = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxStorageBuffersPerShaderStage',
  'maxUniformBufferBindingSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxComputeWorkgroupsPerDimension',
  'minUniformBufferOffsetAlignment',
  'minStorageBufferOffsetAlignment',
  'maxBindGroups',
] as const;

export type AdapterKind = 'gpu' | 'llvmpipe' | 'cpu';

function kindOf(info: BackendInfo): AdapterKind {
  const text = `${info.vendor} ${info.architecture} ${info.description}`;
  if (/llvmpipe|lavapipe/i.test(text)) return 'llvmpipe';
  return info.isFallbackAdapter || /software|cpu|swiftshader/i.test(text) ? 'cpu' : 'gpu';
}

/**
 * The adapter's kind. CPU adapters (llvmpipe/lavapipe, SwiftShader) run invocations as SIMD lanes on CPU threads: a
 * load from memory is a per-lane loop costing ~100x an fma and a barrier switches every SIMD group of the workgroup,
 * so kernels shape their work differently there (more work per invocation, fewer barriers).
 */
export function adapterKind(): AdapterKind {
  return gpu().kind;
}

/** The live device; throws a clear error before init and after a device loss. */
export function gpu(): DeviceState {
  if (!state)
    throw new VoxgradError(
      destroyed
        ? 'voxgrad: the GPU device was destroyed (vg.destroy()); its tensors are gone. Call `await vg.init()` to acquire a new device.'
        : 'voxgrad: no device yet. Call `await vg.init()` before creating tensors.',
    );
  if (state.lost)
    throw new VoxgradError(
      `voxgrad: the GPU device was lost (${state.lost}). Call \`await vg.init()\` to create a new device; ` +
        'tensors created on the lost device cannot be used and must be recreated.',
    );
  return state;
}

export function backendInfo(): BackendInfo {
  return gpu().info;
}

export function isCurrentGeneration(g: number): boolean {
  return state !== null && state.generation === g;
}

/**
 * Fault injection for tests: destroys the GPUDevice behind the library's back, as a driver reset would; later calls
 * fail with the device-lost error until `vg.init()` acquires a new device.
 */
export function loseDevice(): void {
  state?.device.destroy();
}

/** Destroys the device (Dawn keeps a Node process alive while a device exists). */
export function destroyDevice(): void {
  if (!state) return;
  for (const hook of resetHooks) hook();
  const d = state.device;
  state = null;
  destroyed = true;
  d.destroy();
}
