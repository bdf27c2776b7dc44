// The GPU buffer pool's memory policy (src/engine/pool.ts): a request reuses an idle buffer of up to twice its size,
// a buffer released inside the open batch is reused (the batch is submitted) before a new one is created, and idle
// buffers are handed out oldest first, so a repeated computation binds the same buffers. Buffers
// created are counted by wrapping GPUDevice.createBuffer; results must not change.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { setup, vg } from './helpers.mjs';

test.before(setup);

const MiB = 2 ** 20;
let created = 0;
test.before(async () => {
  await setup();
  const proto = globalThis.GPUDevice.prototype;
  const createBuffer = proto.createBuffer;
  // storage buffers of 32 KiB and more (the read backs' staging buffers and one-element results are not counted)
  proto.createBuffer = function (desc) {
    if (desc.usage & 0x80 && desc.size >= 32768) created++;
    return createBuffer.call(this, desc);
  };
});
test.before.each(async () => {
  await vg.sync();
  vg.emptyCache();
});

/** Buffers the pool created while fn ran (awaited). */
async function creations(fn) {
  const before = created;
  await fn();
  await vg.sync();
  return created - before;
}

test('an idle buffer up to twice the size serves a smaller request; a larger one is not used', async () => {
  vg.zeros([40000]).dispose(); // 160,000 bytes: one idle buffer
  await vg.sync();
  const pooled = vg.memory().bytesPooled;
  assert.ok(pooled >= 160000, `the buffer is pooled (${pooled})`);
  let t;
  assert.is(await creations(() => (t = vg.zeros([25000]))), 0, 'a 100,000-byte request reuses the 160,000-byte buffer');
  assert.is(vg.memory().bytesPooled, pooled - t.buffer('test').size, 'taken from the pool');
  assert.equal(Array.from(await t.data()).every((v) => v === 0), true);
  t.dispose();
  await vg.sync();
  assert.is(await creations(() => vg.zeros([15000]).dispose()), 1, 'a 60,000-byte request does not take a buffer over twice its size');
});

test('a buffer released in the open batch is reused at once instead of creating another', async () => {
  vg.setBatchSize(64);
  const x = vg.rand([30000], { seed: 3 });
  await vg.sync();
  // 20 results of the same size, each released before the next is made, all within one 64-dispatch batch
  const sums = [];
  const n = await creations(async () => {
    for (let i = 0; i < 20; i++) {
      const y = vg.mul(x, i);
      sums.push(vg.sum(y));
      y.dispose();
    }
  });
  assert.ok(n <= 2, `${n} buffers created for 20 same-size results released one by one`);
  // each reuse holds its own step's result: sum(x * i) = i * sum(x)
  const total = await vg.sum(x).item();
  const values = await Promise.all(sums.map((s) => s.item()));
  values.forEach((v, i) => assert.ok(Math.abs(v - i * total) <= 1e-5 * i * total, `step ${i}: ${v} vs ${i * total}`));
  for (const s of [x, ...sums]) s.dispose();
});

test('vg.debug.cacheStats counts pipelines and bind groups; a repeated dispatch hits the cache', async () => {
  const x = vg.rand([5000], { seed: 1 });
  const y = vg.exp(x);
  await vg.sync();
  const before = vg.debug.cacheStats();
  assert.ok(before.pipelines > 0 && before.bindGroups > 0 && before.bindGroups <= before.bindGroupCap, JSON.stringify(before));
  y.dispose();
  await vg.sync();
  const z = vg.exp(x); // same kernel, same buffers from the pool: the cached bind group
  await vg.sync();
  const after = vg.debug.cacheStats();
  assert.is(after.bindGroupMisses, before.bindGroupMisses, 'no bind group created');
  assert.is(after.bindGroupHits, before.bindGroupHits + 1);
  for (const t of [x, z]) t.dispose();
});

test('idle buffers of a size class are handed out oldest first, whatever order they were released in', async () => {
  const made = [0, 1, 2].map((i) => vg.full([30000], i)); // three buffers of one class, created in this order
  await vg.sync();
  const buffers = made.map((t) => t.buffer('test'));
  for (const i of [2, 0, 1]) made[i].dispose(); // last-in-first-out would hand out buffers[1] next
  await vg.sync();
  const again = [vg.full([30000], 7), vg.full([30000], 8), vg.full([30000], 9)];
  await vg.sync();
  assert.equal(again.map((t) => buffers.indexOf(t.buffer('test'))), [0, 1, 2]);
  assert.equal(await Promise.all(again.map(async (t) => (await t.data())[29999])), [7, 8, 9]);
  for (const t of again) t.dispose();
});

test('a computation repeated after different allocations before it finds every bind group cached', async () => {
  const x = vg.rand([20000], { seed: 5 });
  const step = () => vg.tidy(() => vg.sum(vg.tanh(vg.mul(vg.exp(x), 0.5))));
  step().dispose();
  await vg.sync();
  for (const extra of [3, 1, 5, 2]) {
    // tensors of the step's size class made, then released in a scrambled order (a last-in-first-out pool would hand
    // the step whichever was released last)
    const noise = Array.from({ length: extra }, (_, i) => vg.full([20000], i));
    await vg.sync();
    for (const i of noise.keys()) if (i % 2 === 1) noise[i].dispose();
    for (const i of noise.keys()) if (i % 2 === 0) noise[i].dispose();
    await vg.sync();
    const before = vg.debug.cacheStats().bindGroupMisses;
    const out = step();
    await vg.sync();
    assert.is(vg.debug.cacheStats().bindGroupMisses - before, 0, `bind groups created by the step after ${extra} extra allocations`);
    out.dispose();
  }
  x.dispose();
});

test.run();
