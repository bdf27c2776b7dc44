// The adapter's own ceilings, measured with raw WebGPU on a device of our own: an FMA-bound kernel (GFLOP/s)
// and a copy kernel (GB/s). Each run is one dispatch in its own compute pass, bracketed by timestamp queries
// (GPU time only: no submit or readback); without timestamp-query the wall time of submit → onSubmittedWorkDone.
import { median } from './stats.mjs';

// FMA-bound kernel: CHAINS independent scalar fma chains per invocation and no memory traffic in the loop. Scalar
// chains, not vec4: on llvmpipe (lanes = invocations, 8 per AVX2 register) vec4 arithmetic ran 2.5x slower than the
// same number of scalar fmas, and 16 scalar chains cover fma latency on any SIMD width.
const CHAINS = 16;
const FMA_ITERS = 512;
const UNROLL = 4;
const chain = Array.from({ length: CHAINS }, (_, i) => `a${i}`);
const FMA_WGSL = /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let s = f32(gid.x) * 1e-9;
  let m = 0.9999 + s;
  let d = 1e-4;
  ${chain.map((n, i) => `var ${n} = s + ${i}.0;`).join(' ')}
  for (var i = 0u; i < ${FMA_ITERS}u; i++) {
${Array.from({ length: UNROLL }, () => '    ' + chain.map((n) => `${n} = fma(${n}, m, d);`).join(' ')).join('\n')}
  }
  // the store keeps every chain live
  out[gid.x] = ${chain.join(' + ')};
}`;
const FMA_FLOPS_PER_INVOCATION = FMA_ITERS * UNROLL * CHAINS * 2;

const COPY_WGSL = /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> dst: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> src: array<vec4<f32>>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.y * nwg.x * 64u + gid.x;
  if (i < arrayLength(&dst)) { dst[i] = src[i]; }
}`;

/** Times `runs` single dispatches of `pipeline`; returns the median in ms. */
async function timeDispatch(device, pipeline, bindGroup, grid, runs) {
  const ts = device.features.has('timestamp-query');
  const times = [];
  for (let r = 0; r < runs; r++) {
    const enc = device.createCommandEncoder();
    let qs, resolve, read;
    if (ts) {
      qs = device.createQuerySet({ type: 'timestamp', count: 2 });
      resolve = device.createBuffer({ size: 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
      read = device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    }
    const pass = enc.beginComputePass(ts ? { timestampWrites: { querySet: qs, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } } : {});
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(...grid);
    pass.end();
    if (ts) {
      enc.resolveQuerySet(qs, 0, 2, resolve, 0);
      enc.copyBufferToBuffer(resolve, 0, read, 0, 16);
    }
    const t0 = performance.now();
    device.queue.submit([enc.finish()]);
    await device.queue.onSubmittedWorkDone();
    let ms = performance.now() - t0;
    if (ts) {
      await read.mapAsync(GPUMapMode.READ);
      const [a, b] = new BigUint64Array(read.getMappedRange());
      ms = Number(b - a) / 1e6;
      read.unmap();
      for (const x of [qs, resolve, read]) x.destroy();
    }
    times.push(ms);
  }
  return { ms: median(times), times, timer: ts ? 'timestamp queries' : 'wall (submit → done)' };
}

function pipelineFor(device, code) {
  return device.createComputePipelineAsync({ layout: 'auto', compute: { module: device.createShaderModule({ code }), entryPoint: 'main' } });
}

/** FMA ceiling: `groups` workgroups of 64 invocations (many per core, so every core stays busy). */
export async function fmaCeiling(device, { groups = 256, runs = 5 } = {}) {
  const pipeline = await pipelineFor(device, FMA_WGSL);
  const out = device.createBuffer({ size: groups * 64 * 4, usage: GPUBufferUsage.STORAGE });
  const bg = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: out } }] });
  await timeDispatch(device, pipeline, bg, [groups], 1); // warm-up
  const t = await timeDispatch(device, pipeline, bg, [groups], runs);
  out.destroy();
  const flops = groups * 64 * FMA_FLOPS_PER_INVOCATION;
  return { ...t, gflops: flops / t.ms / 1e6, flops, invocations: groups * 64, chains: CHAINS };
}

/** Copy bandwidth: read + write of a `bytes`-sized buffer, vec4 per invocation. */
export async function copyCeiling(device, { bytes = 64 << 20, runs = 5 } = {}) {
  const pipeline = await pipelineFor(device, COPY_WGSL);
  const usage = GPUBufferUsage.STORAGE;
  const src = device.createBuffer({ size: bytes, usage });
  const dst = device.createBuffer({ size: bytes, usage });
  const bg = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [{ binding: 0, resource: { buffer: dst } }, { binding: 1, resource: { buffer: src } }],
  });
  const groups = bytes / 16 / 64;
  const maxX = device.limits.maxComputeWorkgroupsPerDimension;
  const y = Math.ceil(groups / maxX);
  const grid = [Math.ceil(groups / y), y];
  await timeDispatch(device, pipeline, bg, grid, 1);
  const t = await timeDispatch(device, pipeline, bg, grid, runs);
  src.destroy();
  dst.destroy();
  return { ...t, gbps: (2 * bytes) / t.ms / 1e6, bytes };
}
