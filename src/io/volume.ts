/**
 * Volumes that keep their geometry: a tensor plus the 4×4 voxel-to-world affine (NIfTI/nibabel convention: world =
 * affine · [i, j, k, 1] for voxel (i, j, k) of a tensor indexed like get_fdata(), centres at integer indices) and the
 * voxel spacing. The spatial dims are the last spacing.length (3, or 2 for 2-D) dims of the tensor; leading dims are
 * channels ([C, X, Y, Z]). Every op here updates the affine exactly, so results written with writeNifti land where
 * the input was in a viewer.
 */
import { fail, fmtShape } from '../engine/errors.js';
import { FLOAT, NOT_DIFFERENTIABLE, defineOp } from '../engine/op.js';
import { Tensor, tidy } from '../engine/tensor.js';
import { describe } from '../kernels/common.js';
import { roundHalfEven } from '../kernels/host-math.js';
import { cast } from '../kernels/elementwise.js';
import { sampleAlongAxes, type Axis } from '../kernels/interpolate.js';
import { pad } from '../kernels/pad.js';
import { narrow, reshape } from '../kernels/shape.js';

/** 4×4 voxel-to-world matrix as rows; the last row is [0, 0, 0, 1]. */
export type Affine = number[][];

export interface Volume {
  tensor: Tensor;
  affine: Affine;
  /** Voxel size along each spatial dim (the affine's column norms), 3 entries (2 for 2-D volumes). */
  spacing: number[];
  /**
   * Set by readNifti on files with more than 3 (2-D: 2) dims read in nibabel's layout [X, Y, Z, T]: the extra dims
   * trail. The volume ops need channels first; read with `{ channelsFirst: true }` instead.
   */
  channelsLast?: boolean;
}

export function isVolume(v: unknown): v is Volume {
  return typeof v === 'object' && v !== null && !(v instanceof Tensor) && (v as Volume).tensor instanceof Tensor && Array.isArray((v as Volume).affine);
}

/** Validates a 4×4 affine of finite numbers with last row [0, 0, 0, 1]; returns a copy. */
export function checkAffine(op: string, affine: unknown): Affine {
  const ok =
    Array.isArray(affine) &&
    affine.length === 4 &&
    affine.every((r) => Array.isArray(r) && r.length === 4 && r.every((v) => typeof v === 'number' && Number.isFinite(v)));
  if (!ok) fail(op, `affine must be a 4×4 list of rows of finite numbers, got ${describe(affine)}${Array.isArray(affine) ? ` (${JSON.stringify(affine).slice(0, 120)})` : ''}`);
  const A = (affine as number[][]).map((r) => [...r]);
  if (A[3][0] !== 0 || A[3][1] !== 0 || A[3][2] !== 0 || A[3][3] !== 1)
    fail(op, `affine's last row must be [0, 0, 0, 1], got [${A[3].join(', ')}]`);
  return A;
}

/** Voxel size: the norms of the affine's first n (default 3) columns. */
export function spacingFromAffine(affine: Affine, n = 3): number[] {
  const A = checkAffine('spacingFromAffine', affine);
  if (n !== 1 && n !== 2 && n !== 3) fail('spacingFromAffine', `n must be 1, 2 or 3, got ${describe(n)}`);
  const out = [];
  for (let c = 0; c < n; c++) {
    const s = Math.hypot(A[0][c], A[1][c], A[2][c]);
    if (!(s > 0)) fail('spacingFromAffine', `affine column ${c} is zero, so the voxel size along axis ${c} is 0`);
    out.push(s);
  }
  return out;
}

/** The orthonormal polar factor of a non-singular 3×3 matrix (what nibabel gets from an SVD as P·Qᵀ), by Newton's iteration. */
export function orthonormalize(M: number[][]): number[][] {
  let X = M.map((r) => [...r]);
  for (let it = 0; it < 100; it++) {
    const inv = inverse3(X);
    if (!inv) fail('orientation', `the affine's 3×3 part is singular: [${M.map((r) => `[${r.join(', ')}]`).join(', ')}]`);
    // X ← (X + X^-T) / 2 converges quadratically to the nearest orthonormal matrix.
    const next = X.map((r, i) => r.map((v, j) => (v + inv[j][i]) / 2));
    const delta = Math.max(...next.flatMap((r, i) => r.map((v, j) => Math.abs(v - X[i][j]))));
    X = next;
    if (delta < 1e-15) break;
  }
  return X;
}

function inverse3(m: number[][]): number[][] | null {
  const [a, b, c] = m[0];
  const [d, e, f] = m[1];
  const [g, h, i] = m[2];
  const A = e * i - f * h;
  const B = -(d * i - f * g);
  const C = d * h - e * g;
  const det = a * A + b * B + c * C;
  if (!(Math.abs(det) > 1e-300)) return null;
  return [
    [A / det, -(b * i - c * h) / det, (b * f - c * e) / det],
    [B / det, (a * i - c * g) / det, -(a * f - c * d) / det],
    [C / det, -(a * h - b * g) / det, (a * e - b * d) / det],
  ];
}

/**
 * Axis codes of the voxel axes, like nibabel.aff2axcodes: e.g. 'RAS' when i runs to the Right, j to Anterior, k to
 * Superior (world coordinates are RAS+, as in NIfTI). Each voxel axis takes the world axis its direction is closest
 * to, greedily in axis order, after removing shear and zoom.
 */
export function orientation(affine: Affine): string {
  const A = checkAffine('orientation', affine);
  const zooms = [0, 1, 2].map((c) => Math.hypot(A[0][c], A[1][c], A[2][c]) || 1);
  const R = orthonormalize([0, 1, 2].map((r) => [0, 1, 2].map((c) => A[r][c] / zooms[c])));
  const labels = [['L', 'R'], ['P', 'A'], ['I', 'S']];
  let codes = '';
  for (let c = 0; c < 3; c++) {
    let best = 0;
    for (let r = 1; r < 3; r++) if (Math.abs(R[r][c]) > Math.abs(R[best][c])) best = r;
    codes += labels[best][R[best][c] < 0 ? 0 : 1];
    R[best] = [0, 0, 0];
  }
  return codes;
}

/** Checks a volume and returns its spatial rank and the tensor's spatial shape. */
function spatialOf(op: string, vol: Volume): { nd: number; lead: number[]; spatial: number[] } {
  if (!isVolume(vol)) fail(op, `volume must be { tensor, affine, spacing } (e.g. from readNifti), got ${describe(vol)}`);
  checkAffine(op, vol.affine);
  if (vol.channelsLast)
    fail(op, `this volume has its non-spatial dims last (shape ${fmtShape(vol.tensor.shape)}, nibabel's layout of a ${vol.tensor.ndim}-D file); read it with readNifti(src, { channelsFirst: true })`);
  const nd = vol.spacing?.length;
  if ((nd !== 2 && nd !== 3) || vol.tensor.ndim < nd)
    fail(op, `volume.spacing must have 2 or 3 entries and the tensor at least that many dims, got spacing ${describe(vol.spacing)} and shape ${fmtShape(vol.tensor.shape)}`);
  return { nd, lead: vol.tensor.shape.slice(0, -nd), spatial: vol.tensor.shape.slice(-nd) };
}

function checkInts(op: string, arg: string, v: unknown, nd: number, min: number): number[] {
  if (!Array.isArray(v) || v.length !== nd || !v.every((x) => Number.isInteger(x) && x >= min))
    fail(op, `${arg} must list ${nd} integers ≥ ${min} (one per spatial dim), got ${describe(v)}${Array.isArray(v) ? ` [${v.join(', ')}]` : ''}`);
  return v;
}

/** affine · diag(scale, 1) with the origin moved to voxel position `offset`: the affine of a grid whose voxel i sits at old position offset + scale·i. */
export function subgridAffine(A: Affine, offset: readonly number[], scale: readonly number[]): Affine {
  const out = A.map((r) => [...r]);
  for (let r = 0; r < 3; r++) {
    for (let c = 0; c < offset.length; c++) {
      out[r][3] += A[r][c] * offset[c];
      out[r][c] = A[r][c] * scale[c];
    }
  }
  return out;
}

/** The same geometry with another tensor on the same grid (a model output, a label map); spatial shapes must match. */
export function withTensor(vol: Volume, t: Tensor): Volume {
  const op = 'withTensor';
  const { nd, spatial } = spatialOf(op, vol);
  if (!(t instanceof Tensor)) fail(op, `tensor must be a Tensor, got ${describe(t)}`);
  const ts = t.shape.slice(-nd);
  if (t.ndim < nd || ts.join() !== spatial.join())
    fail(op, `tensor's last ${nd} dims must equal the volume's spatial shape ${fmtShape(spatial)}, got shape ${fmtShape(t.shape)}`);
  return { tensor: t, affine: vol.affine.map((r) => [...r]), spacing: [...vol.spacing] };
}

/** Crops `size` voxels from `start` along each spatial dim (inside the volume); the affine's origin moves to `start`. */
export function cropVolume(vol: Volume, start: readonly number[], size: readonly number[]): Volume {
  const op = 'cropVolume';
  const { nd, lead, spatial } = spatialOf(op, vol);
  const s = checkInts(op, 'start', start, nd, 0);
  const n = checkInts(op, 'size', size, nd, 1);
  for (let a = 0; a < nd; a++)
    if (s[a] + n[a] > spatial[a])
      fail(op, `start [${s.join(', ')}] + size [${n.join(', ')}] runs past the spatial shape ${fmtShape(spatial)} on axis ${a}; use padVolume to grow a volume`);
  const t = tidy(() => {
    let x = vol.tensor;
    for (let a = 0; a < nd; a++) if (n[a] !== spatial[a]) x = narrow(x, lead.length + a, s[a], n[a]);
    return x === vol.tensor ? x.shareStorage() : x;
  });
  return { tensor: t, affine: subgridAffine(vol.affine, s, [1, 1, 1]), spacing: [...vol.spacing] };
}

/** Pads `before`/`after` voxels on each spatial dim with `value` (default 0); the affine's origin moves to −before. */
export function padVolume(vol: Volume, before: readonly number[], after: readonly number[], opts: { value?: number } = {}): Volume {
  const op = 'padVolume';
  const { nd } = spatialOf(op, vol);
  const b = checkInts(op, 'before', before, nd, 0);
  const e = checkInts(op, 'after', after, nd, 0);
  const value = opts.value ?? 0;
  if (typeof value !== 'number') fail(op, `value must be a number, got ${describe(value)}`);
  // vg.pad lists (before, after) pairs from the last dim.
  const widths: number[] = [];
  for (let a = nd - 1; a >= 0; a--) widths.push(b[a], e[a]);
  return { tensor: pad(vol.tensor, widths, { value }), affine: subgridAffine(vol.affine, b.map((v) => -v), [1, 1, 1]), spacing: [...vol.spacing] };
}

export type ResampleTarget = { spacing: readonly number[]; size?: undefined } | { size: readonly number[]; spacing?: undefined };

export interface ResampleOptions {
  /** 'trilinear' (default; bilinear in 2-D) or 'nearest' (label maps; i32 tensors must use it). */
  mode?: 'trilinear' | 'bilinear' | 'nearest';
}

/**
 * Resamples to a new voxel spacing or size. Conventions (voxel centres at integer indices):
 * - `{ spacing }`: MONAI's Spacing (default options): voxel 0's centre stays put, new size =
 *   round((n − 1)·s / s′) + 1, new voxel i samples old position i·s′/s; positions past the last centre clamp (border).
 * - `{ size }`: MONAI's Resize / interpolate(alignCorners false): the field of view (outer voxel edges) is kept,
 *   s′ = s·n / n′, new voxel i samples old position (i + ½)·n/n′ − ½.
 * The affine's columns scale by s′/s and its origin moves to the first new voxel's centre, exactly. Nearest rounds
 * half to even. A preprocessing op: no gradient flows through it (use interpolate or gridSample inside a model).
 */
export function resampleVolume(vol: Volume, target: ResampleTarget, opts: ResampleOptions = {}): Volume {
  const op = 'resampleVolume';
  const { nd, lead, spatial } = spatialOf(op, vol);
  if (target === null || typeof target !== 'object' || (target.spacing === undefined) === (target.size === undefined))
    fail(op, `target must be { spacing: [...] } or { size: [...] } (exactly one), got ${describe(target)}`);
  const mode = opts.mode ?? 'trilinear';
  if (mode !== 'trilinear' && mode !== 'bilinear' && mode !== 'nearest')
    fail(op, `mode must be 'trilinear', 'bilinear' or 'nearest', got ${describe(mode)}`);
  if (vol.tensor.dtype !== 'f32' && mode !== 'nearest')
    fail(op, `a ${vol.tensor.dtype} tensor (a label map) needs mode 'nearest', got '${mode}'`);
  const spacing = vol.spacing;
  let size: number[];
  let scale: number[];
  let offset: number[];
  if (target.spacing !== undefined) {
    const sp = target.spacing;
    if (!Array.isArray(sp) || sp.length !== nd || !sp.every((v) => Number.isFinite(v) && v > 0))
      fail(op, `spacing must list ${nd} positive numbers, got ${describe(sp)}${Array.isArray(sp) ? ` [${sp.join(', ')}]` : ''}`);
    scale = sp.map((v, a) => v / spacing[a]);
    size = spatial.map((n, a) => roundHalfEven((n - 1) / scale[a]) + 1);
    offset = spatial.map(() => 0);
  } else {
    size = checkInts(op, 'size', target.size, nd, 1);
    scale = spatial.map((n, a) => n / size[a]);
    offset = scale.map((r) => (r - 1) / 2);
  }
  const channels = lead.reduce((p, d) => p * d, 1);
  const out = tidy(() => {
    const x = vol.tensor.dtype === 'f32' ? vol.tensor : cast(vol.tensor, 'f32');
    const y = resampleAxes(x, channels, spatial, size, offset, scale, mode === 'nearest');
    const shaped = reshape(y, [...lead, ...size]);
    return vol.tensor.dtype === 'f32' ? shaped : cast(shaped, vol.tensor.dtype);
  });
  return { tensor: out, affine: subgridAffine(vol.affine, offset, scale), spacing: spacing.map((s, a) => s * scale[a]) };
}

/**
 * Samples x [B, ...spatial] at old positions offset + scale·i per axis, clamped to the volume (border padding), with
 * separable linear (or nearest, half to even) weights computed in float64 on the host. Axis-aligned resampling is
 * separable, so interpolate's tap-table kernel does it without a [..., 3] sampling grid (building one costs several
 * times the sampling itself). A preprocessing op: not differentiable.
 */
const resampleAxes = defineOp({
  name: 'resampleVolume',
  dtypes: FLOAT,
  via: 'io.resampleVolume',
  inputs: ([x]) => [x],
  forward: (x: Tensor, B: number, spatial: number[], size: number[], offset: number[], scale: number[], nearest: boolean) => {
    // The kernel's three axes are (D, H, W); a 2-D volume gets a unit D axis.
    const pad3 = 3 - spatial.length;
    const nIn = [...Array(pad3).fill(1), ...spatial];
    const nOut = [...Array(pad3).fill(1), ...size];
    const off = [...Array(pad3).fill(0), ...offset];
    const sc = [...Array(pad3).fill(1), ...scale];
    const axes = nIn.map((n, a): Axis => {
      const ax: Axis = { nIn: n, nOut: nOut[a], i0: [], i1: [], w0: [], w1: [] };
      for (let o = 0; o < nOut[a]; o++) {
        const p = Math.min(n - 1, Math.max(0, off[a] + sc[a] * o));
        const i0 = nearest ? roundHalfEven(p) : Math.floor(p);
        const w1 = nearest ? 0 : p - i0;
        ax.i0.push(i0);
        ax.i1.push(Math.min(i0 + 1, n - 1));
        ax.w0.push(1 - w1);
        ax.w1.push(w1);
      }
      return ax;
    });
    return { out: sampleAlongAxes('resampleVolume', x, axes, nearest, [B, ...nOut]), attrs: undefined };
  },
  backward: NOT_DIFFERENTIABLE,
});
