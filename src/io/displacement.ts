/**
 * Displacement fields as vector NIfTI, in the encodings ITK/ANTs, NIfTI-aware tools and voxgrad read
 * (docs/registration-outputs.md has the sources). voxgrad's flow is [ndim, *spatial] (or [1, ndim, *spatial]) in voxels,
 * channel i along spatial axis i of a volume indexed like nibabel's get_fdata() (docs/conventions.md §2, §9), and it
 * is a pull warp: moved(x) = moving(x + u(x)). ITK's DisplacementFieldTransform is the same pull map in world space,
 * p ↦ p + u(p), so the conversion is linear per voxel: world = A[:3, :3] · u_voxel (RAS mm), LPS = diag(-1, -1, 1) · RAS.
 *
 * File layout (all conventions): dims [X, Y, Z, 1, ndim] (dim[0] = 5; 2-D fields [X, Y, 1, 1, 2]), float32, the
 * affine in the sform (code 2, qform code 0, as nibabel writes it), pixdim = the affine's column norms.
 * - 'itk': intent 1007 (NIFTI_INTENT_VECTOR), vectors in LPS mm: what ITK and ANTs write and read unconverted.
 * - 'ras': intent 1006 (NIFTI_INTENT_DISPVECT), vectors in RAS mm: the NIfTI standard's meaning; ITK ≥ 5.4 converts
 *   3-component DISPVECT files to LPS when it reads them.
 * - 'voxel': intent 0 with intent_name 'voxel', vectors in voxels along (i, j, k): voxgrad/VoxelMorph's own units.
 *   Intent 0 keeps ITK from reading it as a displacement field in mm.
 */
import { fail, fmtShape } from '../engine/errors.js';
import { Tensor, tidy } from '../engine/tensor.js';
import { describe, expectFloat, expectTensor } from '../kernels/common.js';
import { tensor } from '../kernels/creation.js';
import { matmul } from '../kernels/matmul.js';
import { permute, reshape } from '../kernels/shape.js';
import { files, gzip, sourceName, type ByteSource } from './files.js';
import { encodeNifti, readNifti, type NiftiHeader } from './nifti.js';
import { checkAffine, spacingFromAffine, type Affine } from './volume.js';

export type DisplacementConvention = 'itk' | 'ras' | 'voxel';

const INTENT: Record<DisplacementConvention, number> = { itk: 1007, ras: 1006, voxel: 0 };
const INTENT_NAME: Record<DisplacementConvention, string> = { itk: 'LPS mm', ras: 'RAS mm', voxel: 'voxel' };
const DESCRIP: Record<DisplacementConvention, string> = {
  itk: 'voxgrad displacement: LPS mm (ITK/ANTs), pull p -> p + u(p)',
  ras: 'voxgrad displacement: RAS mm (NIfTI DISPVECT), pull p -> p + u(p)',
  voxel: 'voxgrad displacement: voxels along i,j,k, pull x -> x + u(x)',
};

export interface WriteDisplacementOptions {
  /** The 4×4 voxel-to-world matrix (RAS mm) of the grid the flow lives on (the fixed image's). */
  affine?: Affine;
  /** Voxel size, for a diagonal affine when no affine is given. */
  spacing?: readonly number[];
  /** How the vectors are stored: 'itk' (LPS mm, intent VECTOR), 'ras' (RAS mm, intent DISPVECT) or 'voxel'. */
  convention: DisplacementConvention;
}

export interface ReadDisplacementOptions {
  /**
   * How to interpret the stored vectors. Default: from the header (intent 1007 → 'itk', 1006 → 'ras', intent 0 with
   * intent_name 'voxel' → 'voxel'); give it for files without an intent (e.g. Learn2Reg [X, Y, Z, 3] voxel fields).
   */
  convention?: DisplacementConvention;
}

export interface DisplacementField {
  /** [ndim, *spatial] in voxels, voxgrad's convention. */
  flow: Tensor;
  affine: Affine;
  spacing: number[];
  /** The convention the file's vectors were read in. */
  convention: DisplacementConvention;
  header: NiftiHeader;
}

/** flow [ndim, *spatial] or [1, ndim, *spatial] → [ndim, *spatial] (a view), its ndim, and whether a batch dim was there. */
function checkFlow(op: string, flow: unknown): { f: Tensor; nd: 2 | 3; batched: boolean } {
  const t = expectTensor(op, 'flow', flow);
  expectFloat(op, 'flow', t);
  const batched = t.ndim === t.shape[1] + 2 && t.shape[0] === 1;
  const nd = batched ? t.shape[1] : t.shape[0];
  if (!((nd === 2 || nd === 3) && t.ndim === nd + (batched ? 2 : 1)))
    fail(op, `flow must be [ndim, *spatial] or [1, ndim, *spatial] with ndim = 2 or 3 (channel i along spatial axis i), got shape ${fmtShape(t.shape)}`);
  return { f: batched ? reshape(t, t.shape.slice(1)) : t, nd: nd as 2 | 3, batched };
}

/**
 * The ndim × ndim matrix taking voxel displacements to world displacements in `space` (RAS or LPS mm). 2-D fields
 * need in-plane axes without a superior-inferior component: a 2-component vector cannot hold one.
 */
function worldMatrix(op: string, A: Affine, nd: 2 | 3, space: 'RAS' | 'LPS'): number[][] {
  if (nd === 2 && (A[2][0] !== 0 || A[2][1] !== 0))
    fail(op, `a 2-D field's affine must keep the two in-plane axes in the world x-y plane (affine[2][0] = affine[2][1] = 0), got [${A[2].join(', ')}] as its third row; write a 3-D field [3, X, Y, 1] instead`);
  const M = A.slice(0, nd).map((row) => row.slice(0, nd));
  if (space === 'LPS') for (let r = 0; r < Math.min(2, nd); r++) M[r] = M[r].map((v) => -v);
  return M;
}

function invert(op: string, M: number[][]): number[][] {
  if (M.length === 2) {
    const det = M[0][0] * M[1][1] - M[0][1] * M[1][0];
    if (det === 0) fail(op, 'the affine\'s in-plane 2×2 block is singular');
    return [[M[1][1] / det, -M[0][1] / det], [-M[1][0] / det, M[0][0] / det]];
  }
  const [[a, b, c], [d, e, f], [g, h, i]] = M;
  const det = a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g);
  if (det === 0) fail(op, 'the affine\'s 3×3 block is singular');
  return [
    [(e * i - f * h) / det, (c * h - b * i) / det, (b * f - c * e) / det],
    [(f * g - d * i) / det, (a * i - c * g) / det, (c * d - a * f) / det],
    [(d * h - e * g) / det, (b * g - a * h) / det, (a * e - b * d) / det],
  ];
}

/** M · f for f [nd, *spatial]: one matmul over all voxels, [nd, nd] @ [nd, N]. */
function applyMatrix(f: Tensor, M: number[][]): Tensor {
  const nd = M.length;
  return tidy(() => reshape(matmul(tensor(M.flat(), [nd, nd]), reshape(f, [nd, f.size / nd])), f.shape));
}

/**
 * World-space displacement (mm) of a voxel-unit flow on the grid with voxel-to-world `affine`: A[:3, :3] · u, in RAS
 * (default, NIfTI/nibabel) or LPS (ITK). Same shape as `flow`; 2-D flows give the two in-plane components.
 */
export function displacementToWorld(flow: Tensor, affine: Affine, opts: { space?: 'RAS' | 'LPS' } = {}): Tensor {
  const op = 'displacementToWorld';
  const { f, nd, batched } = checkFlow(op, flow);
  const space = opts.space ?? 'RAS';
  if (space !== 'RAS' && space !== 'LPS') fail(op, `space must be 'RAS' or 'LPS', got ${describe(space)}`);
  const w = applyMatrix(f, worldMatrix(op, checkAffine(op, affine), nd, space));
  return batched ? reshape(w, flow.shape) : w;
}

/** The inverse of displacementToWorld: world displacements (mm, RAS or LPS) → voxel units on the grid of `affine`. */
export function displacementFromWorld(world: Tensor, affine: Affine, opts: { space?: 'RAS' | 'LPS' } = {}): Tensor {
  const op = 'displacementFromWorld';
  const { f, nd, batched } = checkFlow(op, world);
  const space = opts.space ?? 'RAS';
  if (space !== 'RAS' && space !== 'LPS') fail(op, `space must be 'RAS' or 'LPS', got ${describe(space)}`);
  const u = applyMatrix(f, invert(op, worldMatrix(op, checkAffine(op, affine), nd, space)));
  return batched ? reshape(u, world.shape) : u;
}

/** The bytes of a displacement NIfTI (uncompressed; `{ gzip: true }` for .nii.gz bytes). */
export async function encodeDisplacementNifti(flow: Tensor, opts: WriteDisplacementOptions & { gzip?: boolean }): Promise<Uint8Array> {
  return encodeField('encodeDisplacementNifti', flow, opts);
}

/** Writes a displacement field as vector NIfTI (.nii or .nii.gz by extension), atomically. */
export async function writeDisplacementNifti(path: string, flow: Tensor, opts: WriteDisplacementOptions): Promise<void> {
  const op = 'writeDisplacementNifti';
  if (typeof path !== 'string' || !/\.nii(\.gz)?$/i.test(path))
    fail(op, `path must be a string ending in .nii or .nii.gz, got ${describe(path)}`);
  const bytes = await encodeField(op, flow, { ...opts, gzip: /\.gz$/i.test(path) });
  await files(op, 'vg.io.encodeDisplacementNifti').writeFileAtomic(path, bytes);
}

async function encodeField(op: string, flow: Tensor, opts: WriteDisplacementOptions & { gzip?: boolean }): Promise<Uint8Array> {
  if (opts === null || typeof opts !== 'object') fail(op, `options must be an object like { affine, convention: 'itk' }, got ${describe(opts)}`);
  const convention = opts.convention;
  if (!Object.hasOwn(INTENT, convention as string))
    fail(op, `convention must be 'itk' (LPS mm, ITK/ANTs), 'ras' (RAS mm, NIfTI DISPVECT) or 'voxel', got ${describe(convention)}`);
  const { f, nd } = checkFlow(op, flow);
  if (opts.affine !== undefined && opts.spacing !== undefined)
    fail(op, 'give either affine or spacing, not both: the voxel size is the affine column norms');
  let A: Affine;
  if (opts.affine !== undefined) A = checkAffine(op, opts.affine);
  else if (opts.spacing !== undefined) {
    const sp = opts.spacing;
    if (!Array.isArray(sp) || sp.length !== nd || !sp.every((v) => Number.isFinite(v) && v > 0))
      fail(op, `spacing must list ${nd} positive numbers (one per spatial axis of the flow), got ${describe(sp)}`);
    A = [[sp[0], 0, 0, 0], [0, sp[1], 0, 0], [0, 0, sp[2] ?? 1, 0], [0, 0, 0, 1]];
  } else fail(op, 'give the grid\'s affine (or spacing): the file needs the fixed image\'s geometry, and world units depend on it');
  // The file stores the affine as float32: convert with exactly what readers will see, so round trips are exact to f32.
  A = A.map((row) => row.map(Math.fround));
  const spatial = f.shape.slice(1);
  if (convention !== 'voxel' && nd === 3 && spatial[2] === 1)
    fail(op, `a 3-D flow with one voxel along its third axis (shape ${fmtShape(f.shape)}) is read by ITK as a 2-D image; pass it as a 2-D flow [2, X, Y]`);
  // ITK takes directions from the sform only when its columns are orthogonal (no shear).
  const sp = spacingFromAffine(A, 3);
  for (let a = 0; a < 3; a++)
    for (let b = a + 1; b < 3; b++) {
      const dot = A[0][a] * A[0][b] + A[1][a] * A[1][b] + A[2][a] * A[2][b];
      if (convention !== 'voxel' && Math.abs(dot) > 1e-4 * sp[a] * sp[b])
        fail(op, `the affine has sheared axes (columns ${a} and ${b} are not orthogonal): ITK cannot represent that grid; resample to an unsheared grid first`);
    }

  const stored = tidy(() => {
    const v = convention === 'voxel' ? f : applyMatrix(f, worldMatrix(op, A, nd, convention === 'itk' ? 'LPS' : 'RAS'));
    const last = permute(v, [...spatial.keys()].map((d) => d + 1).concat(0)); // [*spatial, nd]
    return reshape(last, nd === 3 ? [...spatial, 1, 3] : [...spatial, 1, 1, 2]);
  });
  let bytes: Uint8Array;
  try {
    bytes = await encodeNifti(stored, { affine: A, description: DESCRIP[convention] });
  } finally {
    stored.dispose();
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  view.setInt16(68, INTENT[convention], true); // intent_code
  const name = INTENT_NAME[convention];
  for (let i = 0; i < 16; i++) bytes[328 + i] = i < name.length ? name.charCodeAt(i) : 0; // intent_name
  return opts.gzip ? gzip(bytes) : bytes;
}

/**
 * Reads a displacement field written by writeDisplacementNifti, ITK/ANTs (intent VECTOR, LPS mm), a DISPVECT file
 * (RAS mm) or a voxel-unit field, and returns it in voxgrad's convention ([ndim, *spatial], voxels) with its grid.
 */
export async function readDisplacementNifti(source: ByteSource, opts: ReadDisplacementOptions = {}): Promise<DisplacementField> {
  const op = 'readDisplacementNifti';
  if (opts === null || typeof opts !== 'object') fail(op, `options must be an object like { convention: 'itk' }, got ${describe(opts)}`);
  if (opts.convention !== undefined && !Object.hasOwn(INTENT, opts.convention))
    fail(op, `convention must be 'itk', 'ras' or 'voxel', got ${describe(opts.convention)}`);
  const img = await readNifti(source);
  const { header } = img;
  const name = sourceName(source);
  let convention = opts.convention;
  if (convention === undefined) {
    const intentName = header.intentName;
    if (header.intentCode === 1007) convention = 'itk';
    else if (header.intentCode === 1006) convention = 'ras';
    else if (header.intentCode === 0 && intentName === 'voxel') convention = 'voxel';
    else
      fail(op, `${name} has intent code ${header.intentCode} (intent_name '${intentName}'), which does not say how its vectors are stored; pass { convention: 'itk' | 'ras' | 'voxel' }`);
  }
  // [X, Y, Z, 1, 3], [X, Y, 1, 1, 2], or (no time axis) [X, Y, Z, 3].
  const s = img.tensor.shape;
  let spatial: number[];
  if (s.length === 5 && s[3] === 1 && s[4] === 3) spatial = s.slice(0, 3);
  else if (s.length === 5 && s[2] === 1 && s[3] === 1 && s[4] === 2) spatial = s.slice(0, 2);
  else if (s.length === 4 && s[3] === 3) spatial = s.slice(0, 3);
  else fail(op, `${name} has dims ${fmtShape(s)}; a displacement field is [X, Y, Z, 1, 3], [X, Y, 1, 1, 2] or [X, Y, Z, 3]`);
  const nd = spatial.length as 2 | 3;
  const flow = tidy(() => {
    const comps = permute(reshape(img.tensor, [...spatial, nd]), [nd, ...spatial.keys()]); // [nd, *spatial]
    if (convention === 'voxel') return comps;
    return applyMatrix(comps, invert(op, worldMatrix(op, img.affine, nd, convention === 'itk' ? 'LPS' : 'RAS')));
  });
  img.tensor.dispose();
  return { flow, affine: img.affine, spacing: img.spacing.slice(0, nd), convention, header };
}
