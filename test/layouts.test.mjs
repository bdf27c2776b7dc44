// Kernel layouts: the runtime reads binding and uniform layouts from each kernel's WGSL (src/engine/layouts.ts) instead
// of carrying a WGSL reflection library; here they are compared with wgsl_reflect's for kernels of every family (the
// same comparison runs at exit in every test file through helpers.mjs), and the comparison is shown to catch a change.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Ref, assertClose, rng, setup, vg } from './helpers.mjs';
import { layoutMismatches, reflectedLayout } from './wgsl-layouts.mjs';

test.before(setup);

test('layouts read from WGSL equal wgsl_reflect for kernels of every family, uniform arrays included', async () => {
  vg.setCpuForwardThreshold(0);
  const r = rng(7);
  const x = Ref.random([1, 2, 6, 6], r).f32().toTensor();
  const w = Ref.random([3, 2, 3, 3], r).f32().toTensor();
  const outs = [
    vg.conv2d(x, w, { padding: 1 }),
    vg.maxPool2d(x, 2),
    vg.softmax(x, { dim: -1 }),
    vg.sum(x, { dim: [2, 3] }),
    vg.matmul(x.reshape([2, 36]).transpose(0, 1), x.reshape([2, 36])),
    vg.gridSample(x, vg.zeros([1, 3, 3, 2])),
    vg.permute(x, [0, 2, 3, 1]).add(1),
    vg.sort(x.reshape([72])).values,
    vg.cumsum(x, 3),
    vg.interpolate(x, { scaleFactor: 2, mode: 'bilinear' }),
    vg.groupNorm(x, 2),
    vg.randn([4, 4]),
  ];
  for (const t of outs) await t.data();
  await assertClose(outs[3], new Ref(Array.from(await x.data()).reduce((acc, v, i) => ((acc[Math.floor(i / 36)] += v), acc), [0, 0]), [1, 2]), { rtol: 1e-5, atol: 1e-5 });
  const kernels = vg.debug.kernelLayouts();
  assert.ok(kernels.length >= 12, `${kernels.length} kernels built`);
  const withUniformArray = kernels.filter((k) => k.layout.uniform?.members.some((m) => m.type.startsWith('array<')));
  assert.ok(withUniformArray.length > 0, 'some kernel has an array member in its uniform block');
  assert.equal(layoutMismatches(kernels), []);
});

test('the comparison catches a layout that differs in a binding kind, a member offset or the struct size', () => {
  const kernel = vg.debug.kernelLayouts().find((k) => k.layout.uniform && k.layout.bindings.length >= 2);
  assert.ok(kernel);
  const clone = () => JSON.parse(JSON.stringify(kernel.layout));
  const kinds = clone();
  const storage = kinds.bindings.find((b) => b.kind !== 'uniform');
  storage.kind = storage.kind === 'storage' ? 'read-only-storage' : 'storage';
  const offsets = clone();
  offsets.uniform.members[offsets.uniform.members.length - 1].offset += 4;
  const sizes = clone();
  sizes.uniform.size += 16;
  for (const layout of [kinds, offsets, sizes]) assert.is(layoutMismatches([{ ...kernel, layout }]).length, 1);
  assert.equal(layoutMismatches([kernel]), []);
  assert.is(reflectedLayout(kernel.source).bindings.length, kernel.layout.bindings.length);
});

test.run();
