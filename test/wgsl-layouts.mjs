// The kernels' binding and uniform layouts as wgsl_reflect (a full WGSL parser, a dev dependency) sees them, beside
// those the runtime reads from the declarations itself (src/engine/layouts.ts): test/helpers.mjs checks every kernel a
// test file compiled, at exit; test/layouts.test.mjs checks the comparison itself.
import { WgslReflect } from 'wgsl_reflect/wgsl_reflect.module.js';

/** Group-0 bindings and the uniform struct's size and members, in the runtime's terms, from wgsl_reflect. */
export function reflectedLayout(source) {
  const reflect = new WgslReflect(source);
  const bindings = [];
  let uniform = null;
  for (const u of reflect.uniforms) {
    bindings.push({ name: u.name, binding: u.binding, kind: 'uniform', group: u.group });
    uniform = { binding: u.binding, size: u.size, members: u.type.members.map((m) => ({ name: m.name, offset: m.offset, size: m.size })) };
  }
  for (const s of reflect.storage)
    bindings.push({ name: s.name, binding: s.binding, kind: s.access === 'read_write' ? 'storage' : 'read-only-storage', group: s.group });
  bindings.sort((a, b) => a.binding - b.binding);
  return { bindings, uniform };
}

/** The runtime's layout in the same form (member types dropped: wgsl_reflect names them differently). */
const comparable = (layout) => ({
  bindings: layout.bindings.map((b) => ({ ...b, group: 0 })),
  uniform: layout.uniform && { binding: layout.uniform.binding, size: layout.uniform.size, members: layout.uniform.members.map(({ name, offset, size }) => ({ name, offset, size })) },
});

/** Kernels (from vg.debug.kernelLayouts()) whose layout differs from wgsl_reflect's, each with both layouts. */
export function layoutMismatches(kernels) {
  const out = [];
  for (const k of kernels) {
    const expected = JSON.stringify(reflectedLayout(k.source));
    const got = JSON.stringify(comparable(k.layout));
    if (expected !== got) out.push({ name: k.name, expected, got });
  }
  return out;
}
