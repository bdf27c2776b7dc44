// Device-side index assertion (engine/device-asserts.ts), appended to kernels that read indices at the binding after
// the kernel's own. Each op call site owns 4 words (p.assertSlot * 4): a violation count, and
// the position and value (bits) of the violation that arrived first; later invocations only count.
@group(0) @binding({{ASSERT_BINDING}}) var<storage, read_write> asserts: array<atomic<u32>>;

fn report_bad_index(slot: u32, position: u32, value: u32) {
  let base = slot * 4u;
  if (atomicAdd(&asserts[base], 1u) == 0u) {
    atomicStore(&asserts[base + 1u], position);
    atomicStore(&asserts[base + 2u], value);
  }
}
