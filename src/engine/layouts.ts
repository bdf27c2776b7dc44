/**
 * Binding and uniform layouts of a kernel's WGSL, read from its declarations. Kernels are assembled at run time
 * (templates, `#if` blocks, generated bindings), so the layout is read from the final source; only the few forms the
 * shaders use are understood (module-scope `@group(0) @binding(N) var<...> name: T;` and the uniform's struct of
 * scalars, vectors and fixed arrays), and anything else is an internal error rather than a guess. This replaces a full
 * WGSL reflection library at run time (about 220 KB minified); the test suite checks every kernel it compiles against
 * that library (test/helpers.mjs).
 */
import { VoxgradError } from './errors.js';

export interface BindingDeclaration {
  name: string;
  binding: number;
  kind: 'uniform' | 'read-only-storage' | 'storage';
}

export interface UniformMemberDeclaration {
  name: string;
  /** Byte offset and size under WGSL's uniform layout rules. */
  offset: number;
  size: number;
  /** The member's type as written, without spaces: `u32`, `vec4<f32>`, `array<vec4<u32>,2>`. */
  type: string;
}

export interface KernelLayout {
  /** Every binding of group 0, by binding number. */
  bindings: BindingDeclaration[];
  /** The uniform block (at most one per kernel): its struct's size (not rounded up to 16) and members. */
  uniform: { binding: number; size: number; members: UniformMemberDeclaration[] } | null;
}

const fault = (key: string, what: string) => new VoxgradError(`voxgrad internal: kernel ${key}: ${what}`);

/** Source without comments (line comments and nestable block comments), so declarations read cleanly. */
function stripComments(src: string): string {
  let out = '';
  let depth = 0;
  for (let i = 0; i < src.length; i++) {
    if (depth === 0 && src[i] === '/' && src[i + 1] === '/') {
      while (i < src.length && src[i] !== '\n') i++;
      out += '\n';
    } else if (src[i] === '/' && src[i + 1] === '*') {
      depth++;
      i++;
    } else if (depth > 0 && src[i] === '*' && src[i + 1] === '/') {
      depth--;
      i++;
    } else if (depth === 0) out += src[i];
  }
  return out;
}

const SCALARS: Record<string, number> = { u32: 4, i32: 4, f32: 4 };

/** Alignment and size of a uniform-space type written without spaces. */
function typeLayout(key: string, type: string): { align: number; size: number } {
  if (type in SCALARS) return { align: 4, size: 4 };
  const vec = /^vec([234])<(u32|i32|f32)>$/.exec(type);
  if (vec) {
    const n = Number(vec[1]);
    return { align: n === 2 ? 8 : 16, size: 4 * n };
  }
  const arr = /^array<(.+),([0-9]+)u?>$/.exec(type);
  if (arr) {
    const element = typeLayout(key, arr[1]);
    // uniform arrays have a stride that is a multiple of 16
    const stride = Math.ceil(element.size / 16) * 16;
    return { align: Math.max(16, element.align), size: stride * Number(arr[2]) };
  }
  throw fault(key, `uniform member type ${type} is not one the layout reader understands (scalars, vec2-4, array<T, N>)`);
}

/** A struct body split at its commas outside `<...>` (array<vec4<u32>, 2> is one member). */
function topLevelFields(body: string): string[] {
  const fields = [''];
  let depth = 0;
  for (const c of body) {
    if (c === '<') depth++;
    else if (c === '>') depth--;
    if (c === ',' && depth === 0) fields.push('');
    else fields[fields.length - 1] += c;
  }
  return fields;
}

/** Reads the group-0 bindings and the uniform struct's layout from `source` (the kernel's final WGSL). */
export function readLayout(key: string, source: string): KernelLayout {
  const src = stripComments(source);
  const bindings: BindingDeclaration[] = [];
  let uniform: KernelLayout['uniform'] = null;
  const declaration = /@group\(\s*(\d+)\s*\)\s*@binding\(\s*(\d+)\s*\)\s*var\s*<\s*(uniform|storage)\s*(?:,\s*(read|read_write)\s*)?>\s*([A-Za-z_][A-Za-z0-9_]*)\s*:\s*([^;]+);/g;
  for (const m of src.matchAll(declaration)) {
    const [, group, binding, space, access, name, type] = m;
    if (group !== '0') throw fault(key, `binding ${name} is in group ${group}; kernels use group 0 only`);
    if (space === 'uniform') {
      if (uniform) throw fault(key, 'more than one uniform block');
      const structName = type.trim();
      const body = new RegExp(`struct\\s+${structName}\\s*\\{([^}]*)\\}`).exec(src);
      if (!body) throw fault(key, `uniform ${name} has type ${structName}, which is not a struct declared in the kernel`);
      const members: UniformMemberDeclaration[] = [];
      let end = 0;
      let align = 4;
      for (const field of topLevelFields(body[1])) {
        const text = field.replace(/\s+/g, '');
        if (!text) continue;
        const f = /^([A-Za-z_][A-Za-z0-9_]*):(.+)$/.exec(text);
        if (!f) throw fault(key, `cannot read member "${field.trim()}" of struct ${structName}`);
        const layout = typeLayout(key, f[2]);
        const offset = Math.ceil(end / layout.align) * layout.align;
        members.push({ name: f[1], offset, size: layout.size, type: f[2] });
        end = offset + layout.size;
        align = Math.max(align, layout.align);
      }
      uniform = { binding: Number(binding), size: Math.ceil(end / align) * align, members };
      bindings.push({ name, binding: Number(binding), kind: 'uniform' });
    } else bindings.push({ name, binding: Number(binding), kind: access === 'read_write' ? 'storage' : 'read-only-storage' });
  }
  const unread = src.match(/@binding/g)?.length ?? 0;
  if (unread !== bindings.length) throw fault(key, `${unread} @binding attributes but ${bindings.length} declarations the layout reader understands`);
  bindings.sort((a, b) => a.binding - b.binding);
  return { bindings, uniform };
}
