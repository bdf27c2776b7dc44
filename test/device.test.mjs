// Device lifecycle: init is idempotent, a destroyed device gives clear errors, re-init works, and tensors of the
// old device refuse to be used instead of touching freed GPU memory.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { assertThrowsWith, setup, vg } from './helpers.mjs';

test.before(setup);

test('init twice returns the same adapter information', async () => {
  const a = await vg.init();
  const b = await vg.init();
  assert.is(a, b);
  assert.is(vg.backendInfo(), a);
});

/** The VoxgradError a promise rejects with, its message holding every fragment. */
async function rejectsWith(promise, fragments) {
  const err = await promise.then(() => null, (e) => e);
  assert.instance(err, vg.VoxgradError, `expected a VoxgradError, got ${err}`);
  for (const f of fragments) assert.ok(err.message.includes(f), `error message lacks "${f}": ${err.message}`);
}

test('init options: non-boolean switches fail; turning off a feature the existing device uses says to destroy it first', async () => {
  await vg.init();
  await rejectsWith(vg.init({ subgroups: 'no' }), ['vg.init', 'subgroups must be true or false', '"no"']);
  await rejectsWith(vg.init({ timestamps: 1 }), ['vg.init', 'timestamps must be true or false', 'got 1']);
  const info = vg.backendInfo();
  if (info.subgroupLanes > 0) await rejectsWith(vg.init({ subgroups: false }), ['vg.init', 'already exists', 'subgroups', 'vg.destroy()']);
  else assert.is(await vg.init({ subgroups: false }), info);
  // what the device already does is no conflict
  assert.is(await vg.init({ subgroups: true }), info);
});

test('after destroy: ops say to call vg.init; re-init gives a working device; stale tensors fail clearly', async () => {
  const old = vg.tensor([1, 2, 3]);
  vg.destroy();
  assertThrowsWith(() => vg.ones([2]), ['destroyed', 'vg.init()']);
  await vg.init();
  const fresh = vg.tensor([4, 5]).mul(2);
  assert.equal(Array.from(await fresh.data()), [8, 10]);
  assertThrowsWith(() => old.add(1), ['add', 'destroyed or lost', 'Recreate']);
  old.dispose(); // disposing a stale tensor is harmless
  fresh.dispose();
});

// issue 12: a loss whose reason is 'destroyed' (device.destroy() by someone else) was ignored, and later calls failed
// obscurely; vg.debug.loseDevice() destroys the GPUDevice without telling the library, as a driver reset would
test('a device lost behind the library\'s back: reads and calls say it was lost; re-init gives a working device', async () => {
  const t = vg.ones([300]);
  vg.debug.loseDevice();
  const err = await t.data().then(() => null, (e) => e);
  assert.ok(err instanceof vg.VoxgradError && err.message.includes('device was lost'), String(err));
  assertThrowsWith(() => vg.backendInfo(), ['device was lost', 'vg.init()']);
  assertThrowsWith(() => vg.zeros([2]), ['device was lost', 'must be recreated']);
  await vg.init();
  assertThrowsWith(() => t.add(1), ['add', 'destroyed or lost']);
  assert.is(await vg.sum(vg.ones([300])).item(), 300);
});

test('kernels respect the adapter limits they read', async () => {
  const lim = vg.backendInfo().limits;
  // a 1-D launch wider than maxComputeWorkgroupsPerDimension * workgroup size must still cover every element
  const n = Math.min(lim.maxComputeWorkgroupsPerDimension * 256 + 1000, 24_000_000);
  const x = vg.ones([n]);
  const s = await x.sum().item();
  assert.is(s, n);
  x.dispose();
});

test('a tensor larger than one storage binding: fills and random draws run in windows; an op that cannot split names the limit', async () => {
  const limit = vg.backendInfo().limits.maxStorageBufferBindingSize;
  if (limit >= vg.backendInfo().limits.maxBufferSize) return; // such adapters can bind any buffer they can allocate
  const elements = limit / 4 + 1;
  // zeros binds the buffer in windows that fit (the last element lies past the first binding)
  const z = vg.full([elements], 3);
  assert.is(await z.slice(0, elements - 1).item(), 3);
  // an op that cannot split names itself and the limit
  assertThrowsWith(() => vg.argmax(z), ['argmax: ', 'maxStorageBufferBindingSize', String(limit)]);
  z.dispose();
  // the random generator fills in windows too (test/bindlimit.test.mjs compares them with one launch)
  const r = vg.rand([elements], { seed: 5 });
  const tail = await r.slice(0, elements - 1).item();
  assert.ok(tail >= 0 && tail < 1, `last draw ${tail}`);
  r.dispose();
  // exactly at the limit still works (the size class must not round it past the limit); read its last element
  const ok = vg.full([limit / 4], 2);
  assert.is(await ok.slice(0, limit / 4 - 1).item(), 2);
  ok.dispose();
});

test('a 3-D volume larger than one binding uploads; elementwise ops and conv3d split it, a pool row that cannot fails early', async () => {
  const { maxStorageBufferBindingSize: limit, maxBufferSize } = vg.backendInfo().limits;
  if (limit >= maxBufferSize || limit > 1 << 30) return; // such adapters can bind any buffer this test could make
  // [1, 1, D, 256, 256] with D chosen so that the volume is just over the limit
  const d = Math.floor(limit / 4 / 65536) + 1;
  const data = new Float32Array(d * 65536);
  data[data.length - 1] = 1.5;
  const vol = vg.tensor(data, [1, 1, d, 256, 256]);
  assert.equal([...vol.shape], [1, 1, d, 256, 256]);
  // one (batch x channel) row is the whole volume: maxPool3d cannot split it and says so before any GPU work
  assertThrowsWith(() => vg.maxPool3d(vol, 2), ['maxPool3d: ', 'maxStorageBufferBindingSize', String(limit), 'crop or downsample']);
  const last = (t) => t.reshape([-1]).slice(0, t.size - 1).item();
  const doubled = vg.mul(vol, 2);
  assert.is(await last(doubled), 3);
  doubled.dispose();
  const w = vg.full([1, 1, 1, 1, 1], 4);
  const y = vg.conv3d(vol, w);
  assert.equal([...y.shape], [1, 1, d, 256, 256]);
  assert.is(await last(y), 6);
  y.dispose();
  w.dispose();
  vol.dispose();
});

test.run();
