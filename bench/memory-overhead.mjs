// Where a process's memory goes beyond vg.memory()'s live bytes (issue 12): runs one VxmDense-3D training step
// (forward + backward, as bench/bindlimit-vxm.mjs) and counts, through wrappers on the WebGPU objects, the GPU buffers
// created and destroyed (read-back staging buffers also apart), the most alive at once and what the pool held then,
// the bytes uploaded with queue.writeBuffer (uniforms included), and the process RSS and max RSS (VmHWM), next to
// vg.memory()'s live, pooled and peak bytes. "recorded": the step's commands are recorded, most not yet run.
// Usage: [REPS=2] node bench/memory-overhead.mjs [D H W [poolLimitBytes [bindingLimitBytes]]]
import { readFileSync } from 'node:fs';
import * as vg from 'voxgrad';

const shape = process.argv.length >= 5 ? process.argv.slice(2, 5).map(Number) : [64, 64, 64];
const poolLimit = process.argv[5] !== undefined ? Number(process.argv[5]) : null;
const bindingLimit = process.argv[6] !== undefined ? Number(process.argv[6]) : null;
const MB = 1e6;
const rssMB = () => process.memoryUsage.rss() / MB;
const hwmMB = () => Number(/VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]) / 1e3;

await vg.init();
const counts = { created: 0, createdBytes: 0, destroyed: 0, destroyedBytes: 0, staging: 0, stagingBytes: 0, uploads: 0, uploadBytes: 0 };
let liveGpuBytes = 0;
let maxLiveGpuBytes = 0;
let atMax = '';
let maxRss = 0;
const destroyedSet = new WeakSet();
const D = globalThis.GPUDevice.prototype;
const createBuffer = D.createBuffer;
D.createBuffer = function (desc) {
  const b = createBuffer.call(this, desc);
  if (desc.usage & 0x01) { counts.staging++; counts.stagingBytes += desc.size; }
  counts.created++;
  counts.createdBytes += desc.size;
  liveGpuBytes += desc.size;
  if (liveGpuBytes > maxLiveGpuBytes) {
    maxLiveGpuBytes = liveGpuBytes;
    const m = vg.memory();
    atMax = `in use ${(m.bytesInUse / MB).toFixed(0)} MB, pooled ${(m.bytesPooled / MB).toFixed(0)} MB, this buffer ${(desc.size / MB).toFixed(1)} MB (usage ${desc.usage})`;
  }
  if (counts.created % 16 === 0) maxRss = Math.max(maxRss, rssMB());
  return b;
};
const B = globalThis.GPUBuffer.prototype;
const destroy = B.destroy;
B.destroy = function () {
  if (!destroyedSet.has(this)) {
    destroyedSet.add(this);
    counts.destroyed++;
    counts.destroyedBytes += this.size;
    liveGpuBytes -= this.size;
  }
  return destroy.call(this);
};
const Q = globalThis.GPUQueue.prototype;
const writeBuffer = Q.writeBuffer;
Q.writeBuffer = function (buf, off, data, dataOff, size) {
  counts.uploads++;
  counts.uploadBytes += size ?? data.byteLength;
  return writeBuffer.apply(this, arguments);
};

if (poolLimit !== null) vg.setPoolLimit(poolLimit);
if (bindingLimit !== null) vg.debug.setBindingLimit(bindingLimit);
const reg = vg.methods.registration;
const net = new vg.models.VxmDense(shape, { seed: 0 });
const src = vg.rand([1, 1, ...shape], { seed: 1 });
const tgt = vg.rand([1, 1, ...shape], { seed: 2 });
await vg.sync();
const report = (label) => {
  const m = vg.memory();
  console.log(
    `${label.padEnd(15)} rss ${rssMB().toFixed(0).padStart(6)} MB  hwm ${hwmMB().toFixed(0).padStart(6)} MB  live ${(m.bytesInUse / MB).toFixed(0).padStart(5)} MB  ` +
      `pooled ${(m.bytesPooled / MB).toFixed(0).padStart(5)} MB  peak ${(m.peakBytes / MB).toFixed(0).padStart(5)} MB  ` +
      `gpu buffers not destroyed ${(liveGpuBytes / MB).toFixed(0).padStart(5)} MB (max ${(maxLiveGpuBytes / MB).toFixed(0)})  ` +
      `created ${counts.created} (${(counts.createdBytes / MB).toFixed(0)} MB) destroyed ${counts.destroyed} (${(counts.destroyedBytes / MB).toFixed(0)} MB) ` +
      `staging ${counts.staging} (${(counts.stagingBytes / MB).toFixed(1)} MB) uploads ${counts.uploads} (${(counts.uploadBytes / MB).toFixed(1)} MB)`,
  );
};
report('after setup');
vg.emptyCache();
const t0 = performance.now();
const reps = Number(process.env.REPS ?? 2);
for (let rep = 0; rep < reps; rep++) {
  const kept = vg.tidy(() => {
    const o = net.call(src, tgt);
    const loss = vg.add(reg.mse(o.ySource, tgt), vg.mul(reg.gradL2(o.preintFlow, { lossMult: 2 }), 0.01));
    loss.backward();
    return [loss];
  });
  report(`step ${rep} recorded`);
  await kept[0].data();
  await vg.sync();
  kept.forEach((t) => t.dispose());
  for (const [, p] of net.namedParameters()) {
    p.grad?.dispose();
    p.grad = null;
  }
  report(`step ${rep} done`);
}
console.log(`most GPU buffers not destroyed when ${atMax}`);
console.log(`time ${((performance.now() - t0) / 1000).toFixed(1)} s, max rss sampled at allocations ${maxRss.toFixed(0)} MB, VmHWM ${hwmMB().toFixed(0)} MB`);
vg.emptyCache();
await vg.sync();
report('emptyCache');
// Dawn frees a destroyed buffer once a submission made after its destroy completes: one small op lets it go
await vg.tidy(() => vg.add(vg.zeros([1024]), 1)).data();
await vg.sync();
report('+ small op');
