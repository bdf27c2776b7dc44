/**
 * Loaders for the public cardiac datasets the semi-supervised segmentation papers use, read from their published
 * layouts (no conversion step): ACDC (MICCAI 2017), CAMUS (NIfTI release) and the 2018 Left Atrium challenge.
 *
 * - Open with `await ACDCDataset.open(root, opts)` (etc.): opening lists the patients, parses every Info.cfg and checks
 *   that every file an item needs exists, so a wrong path fails at once with the path and the expected layout.
 * - Items hold f32 images and i32 label maps indexed like nibabel's get_fdata() ([X, Y, Z], or [X, Y] for 2-D files
 *   and slices), with the voxel-to-world `affine` (RAS, NIfTI convention) and `spacing` of exactly what they hold: a
 *   slice's affine maps its (i, j) to where voxel (i, j, k) of the volume lies. The caller owns the item's tensors.
 * - Decoded volumes are kept on the host in a small LRU cache (`cacheSize` volumes, default 8), so consecutive slices
 *   of one volume, or frames of one 4-D file, decode it once. For shuffled slice training set it to the number of
 *   volumes (ACDC training ED+ES: 200 volumes, about 100 MB).
 * - Label ratios are counted in patients, not slices (user need #12): `labeledPatients(n, { seed })` splits the
 *   dataset by patient.
 */
import { fail } from '../engine/errors.js';
import { Tensor } from '../engine/tensor.js';
import { describe } from '../kernels/common.js';
import { tensor } from '../kernels/creation.js';
import { files, readBytes } from '../io/files.js';
import { readNifti } from '../io/nifti.js';
import { readNrrd } from '../io/nrrd.js';
import type { Affine } from '../io/volume.js';
import type { Dataset } from './dataset.js';
import { Subset } from './loader.js';
import { Rng } from './random.js';

/** ACDC label values: 0 background, 1 right ventricle cavity, 2 left-ventricle myocardium, 3 left ventricle cavity. */
export const ACDC_LABELS = ['background', 'right ventricle', 'myocardium', 'left ventricle'] as const;
/** CAMUS label values: 0 background, 1 LV endocardium (cavity), 2 LV myocardium (epicardium), 3 left atrium. */
export const CAMUS_LABELS = ['background', 'left ventricle', 'myocardium', 'left atrium'] as const;

const join = (...parts: string[]) => parts.map((p, i) => (i === 0 ? p.replace(/\/+$/, '') : p.replace(/^\/+|\/+$/g, ''))).join('/');

// ---- shared machinery ---------------------------------------------------------------------------------------------

interface HostVolume {
  data: Float32Array | Int32Array;
  shape: number[];
  affine: Affine;
  spacing: number[];
}

/** Decoded volumes by path and dtype, least recently used evicted first; concurrent requests share one read. */
class VolumeCache {
  private readonly entries = new Map<string, Promise<HostVolume>>();

  constructor(
    private readonly capacity: number,
    private readonly read: (path: string, dtype: 'f32' | 'i32') => Promise<{ tensor: Tensor; affine: Affine; spacing: number[] }>,
  ) {}

  get(path: string, dtype: 'f32' | 'i32'): Promise<HostVolume> {
    const key = `${dtype}:${path}`;
    let p = this.entries.get(key);
    if (p) this.entries.delete(key); // re-inserted below as the most recent
    else
      p = this.read(path, dtype).then(async (v) => {
        try {
          return { data: (await v.tensor.data()) as Float32Array | Int32Array, shape: [...v.tensor.shape], affine: v.affine, spacing: v.spacing };
        } finally {
          v.tensor.dispose();
        }
      });
    p.catch(() => this.entries.delete(key));
    this.entries.set(key, p);
    while (this.entries.size > Math.max(this.capacity, 1)) this.entries.delete(this.entries.keys().next().value!);
    if (this.capacity === 0) this.entries.delete(key);
    return p;
  }
}

function volumeCache(cacheSize: number, reader: 'nifti' | 'nrrd'): VolumeCache {
  return new VolumeCache(cacheSize, (path, dtype) => (reader === 'nifti' ? readNifti(path, { dtype, channelsFirst: true }) : readNrrd(path, { dtype })));
}

interface Entry {
  patient: string;
  image: string;
  label: string | null;
  /** Index along the leading (time) dim of a 4-D file, or null. */
  frameIndex: number | null;
  /** Slice along the last spatial dim, or null for whole volumes. */
  slice: number | null;
}

interface Picked {
  image: Tensor;
  label: Tensor | null;
  spacing: number[];
  affine: Affine;
}

function checkOptions(op: string, opts: unknown): void {
  if (opts === null || typeof opts !== 'object') fail(op, `options must be an object, got ${describe(opts)}`);
}

function checkCacheSize(op: string, v: unknown): number {
  if (!Number.isInteger(v) || (v as number) < 0) fail(op, `cacheSize must be a non-negative integer, got ${describe(v)}`);
  return v as number;
}

async function mustExist(op: string, path: string, layout: string): Promise<void> {
  if (!(await files(op).exists(path))) fail(op, `${path} does not exist; expected the layout ${layout}`);
}

/** Base of the loaders: entries → items, host cache, patient-level splits. */
abstract class MedicalDataset<Item extends { patient: string }> implements Dataset<Item> {
  protected constructor(
    protected readonly op: string,
    protected readonly entries: Entry[],
    protected readonly cache: VolumeCache,
  ) {}

  get length(): number {
    return this.entries.length;
  }

  /** Patient identifiers in dataset order, each once. */
  get patients(): string[] {
    return [...new Set(this.entries.map((e) => e.patient))];
  }

  /** The patient item `index` belongs to (for DataLoader sampling or randomSplit's groupBy). */
  patientOf(index: number): string {
    this.checkIndex(index);
    return this.entries[index].patient;
  }

  /**
   * A labeled / unlabeled split by patient: `n` labeled patients (every item of a patient goes to one side). Without a
   * seed the first n patients in dataset order (sorted IDs) are labeled — SSL4MIS's convention (its 3 or 7 labeled
   * ACDC patients are the first of its training list); with a seed, a seeded random choice.
   */
  labeledPatients(n: number, opts: { seed?: number } = {}): { labeled: Subset<Item>; unlabeled: Subset<Item>; patients: string[] } {
    const op = `${this.op}.labeledPatients`;
    const all = this.patients;
    if (!Number.isInteger(n) || n < 0 || n > all.length) fail(op, `n must be an integer in [0, ${all.length}] (patients), got ${describe(n)}`);
    checkOptions(op, opts);
    if (opts.seed !== undefined && !Number.isSafeInteger(opts.seed)) fail(op, `seed must be an integer, got ${describe(opts.seed)}`);
    const order = opts.seed === undefined ? all.map((_, i) => i) : new Rng(opts.seed).permutation(all.length);
    const chosen = new Set(order.slice(0, n).map((i) => all[i]));
    const labeled: number[] = [];
    const unlabeled: number[] = [];
    this.entries.forEach((e, i) => (chosen.has(e.patient) ? labeled : unlabeled).push(i));
    return { labeled: new Subset(this, labeled), unlabeled: new Subset(this, unlabeled), patients: all.filter((p) => chosen.has(p)) };
  }

  abstract get(index: number): Promise<Item>;

  protected checkIndex(index: number): void {
    if (!Number.isInteger(index) || index < 0 || index >= this.entries.length)
      fail(`${this.op}.get`, `index must be an integer in [0, ${this.entries.length}), got ${describe(index)}`);
  }

  /** The entry's image (and label) as tensors, cut to its frame and slice, with matching geometry. */
  protected async pick(e: Entry, mapLabel?: (v: Int32Array, path: string) => void): Promise<Picked> {
    const [img, lab] = await Promise.all([this.cache.get(e.image, 'f32'), e.label ? this.cache.get(e.label, 'i32') : null]);
    const cut = (v: HostVolume, frameIndex: number | null) => {
      let data = v.data;
      let shape = v.shape;
      if (frameIndex !== null) {
        const vol = shape.slice(1).reduce((a, b) => a * b, 1);
        data = data.subarray(frameIndex * vol, (frameIndex + 1) * vol);
        shape = shape.slice(1);
      }
      let affine = v.affine;
      let spacing = v.spacing;
      if (e.slice !== null) {
        // [X, Y, Z] row-major: slice k holds elements (i * Y + j) * Z + k
        const [X, Y, Z] = shape;
        const out = new (data.constructor as Float32ArrayConstructor | Int32ArrayConstructor)(X * Y);
        for (let i = 0; i < X * Y; i++) out[i] = data[i * Z + e.slice];
        data = out;
        shape = [X, Y];
        affine = v.affine.map((r) => [r[0], r[1], r[2], r[3] + r[2] * e.slice!]);
        spacing = v.spacing.slice(0, 2);
      }
      return { data, shape, affine, spacing };
    };
    const im = cut(img, e.frameIndex);
    let label: Tensor | null = null;
    if (lab) {
      // labels are per-phase 3-D files even when the image comes from the 4-D sequence
      const lb = cut(lab, null);
      if (lb.shape.join() !== im.shape.join())
        fail(this.op, `${e.label} has shape [${lb.shape.join(', ')}] but its image ${e.image} gives [${im.shape.join(', ')}]`);
      let data = lb.data as Int32Array;
      if (mapLabel) {
        data = Int32Array.from(data);
        mapLabel(data, e.label!);
      }
      label = tensor(data, lb.shape, { dtype: 'i32' });
    }
    return { image: tensor(im.data, im.shape), label, spacing: im.spacing, affine: im.affine };
  }
}

/** Key-value lines 'Key: value' of an Info.cfg, with their line numbers for error messages. */
async function readCfg(op: string, path: string, required: readonly string[]): Promise<Map<string, { value: string; line: number }>> {
  const text = new TextDecoder().decode(await readBytes(op, path));
  const out = new Map<string, { value: string; line: number }>();
  text.split(/\r?\n/).forEach((raw, i) => {
    if (raw.trim() === '') return;
    const m = /^\s*([^:]+?)\s*:\s*(.*?)\s*$/.exec(raw);
    if (!m) fail(op, `${path} line ${i + 1} is ${JSON.stringify(raw)}, not 'Key: value' (e.g. 'ED: 1')`);
    out.set(m[1], { value: m[2], line: i + 1 });
  });
  for (const k of required) if (!out.has(k)) fail(op, `${path} has no '${k}:' line (expected lines like 'ED: 1', 'ES: 12', 'NbFrame: 30')`);
  return out;
}

function cfgNumber(op: string, path: string, cfg: Map<string, { value: string; line: number }>, key: string, integer: boolean): number | null {
  const f = cfg.get(key);
  if (!f) return null;
  const v = Number(f.value);
  if (f.value === '' || !Number.isFinite(v) || (integer && !(Number.isInteger(v) && v >= 1)))
    fail(op, `${path} line ${f.line} is '${key}: ${f.value}', expected ${integer ? 'a positive integer' : 'a number'}`);
  return v;
}

/** 'patientNNN' names from numbers or names, checked against the dataset's pattern. */
function patientNames(op: string, patients: readonly (number | string)[], digits: number): string[] {
  if (!Array.isArray(patients)) fail(op, `patients must be a list of numbers or 'patient${'0'.repeat(digits - 1)}1' names, got ${describe(patients)}`);
  const re = new RegExp(`^patient\\d{${digits}}$`);
  return patients.map((p) => {
    if (typeof p === 'number' && Number.isInteger(p) && p >= 0) return `patient${String(p).padStart(digits, '0')}`;
    if (typeof p === 'string' && re.test(p)) return p;
    return fail(op, `patients entries must be integers or names like 'patient${'0'.repeat(digits - 1)}1', got ${describe(p)}`);
  });
}

/** The patient folders present among the numbered candidates (the releases number patients contiguously). */
async function probePatients(op: string, dir: string, first: number, last: number, digits: number, layout: string): Promise<string[]> {
  const names = Array.from({ length: last - first + 1 }, (_, i) => `patient${String(first + i).padStart(digits, '0')}`);
  const present = await Promise.all(names.map((n) => files(op).exists(join(dir, n))));
  const found = names.filter((_, i) => present[i]);
  if (found.length === 0) fail(op, `${dir} holds none of ${names[0]} ... ${names[names.length - 1]}; expected the layout ${layout}`);
  return found;
}

// ---- ACDC ---------------------------------------------------------------------------------------------------------

const ACDC_LAYOUT =
  'root/<training|testing>/patientNNN/{Info.cfg, patientNNN_frameFF.nii.gz, patientNNN_frameFF_gt.nii.gz, patientNNN_4d.nii.gz} (the ACDC challenge release)';

export interface ACDCInfo {
  /** 1-based frame numbers of end-diastole and end-systole. */
  ed: number;
  es: number;
  nbFrame: number;
  /** Diagnosis group (NOR, MINF, DCM, HCM, RV), or null when Info.cfg has none. */
  group: string | null;
  height: number | null;
  weight: number | null;
  /** Every Info.cfg line as written. */
  fields: Record<string, string>;
}

export interface ACDCItem {
  /** f32 [X, Y, Z] volume, or [X, Y] slice with `slices: true`. */
  image: Tensor;
  /** i32 label map (ACDC_LABELS), or null for frames without annotation (frames: 'all'). */
  label: Tensor | null;
  patient: string;
  /** 1-based frame number. */
  frame: number;
  phase: 'ED' | 'ES' | null;
  /** Slice index along Z, or null for volumes. */
  slice: number | null;
  group: string | null;
  info: ACDCInfo;
  spacing: number[];
  affine: Affine;
}

export interface ACDCOptions {
  split?: 'training' | 'testing';
  /** Patients to load (numbers or 'patientNNN'); default every patient folder of the split. */
  patients?: readonly (number | string)[];
  /** 'ed-es' (default): the two annotated frames from patientNNN_frameFF.nii.gz; 'all': every frame of the 4-D file. */
  frames?: 'ed-es' | 'all';
  /** 2-D items: one per short-axis slice (along Z), for the 2-D semi-supervised methods. Default false. */
  slices?: boolean;
  /** Fail when an ED/ES ground-truth file is missing (default true); false gives label null instead. */
  requireLabels?: boolean;
  cacheSize?: number;
}

interface ACDCEntry extends Entry {
  frame: number;
  phase: 'ED' | 'ES' | null;
}

/** The ACDC cine-MRI dataset in its release layout (see ACDC_LAYOUT); items in patient, frame, slice order. */
export class ACDCDataset extends MedicalDataset<ACDCItem> {
  private constructor(
    entries: ACDCEntry[],
    private readonly infos: Map<string, ACDCInfo>,
    cache: VolumeCache,
  ) {
    super('ACDCDataset', entries, cache);
  }

  static async open(root: string, opts: ACDCOptions = {}): Promise<ACDCDataset> {
    const op = 'ACDCDataset';
    if (typeof root !== 'string') fail(op, `root must be the path of the folder holding training/ and testing/, got ${describe(root)}`);
    checkOptions(op, opts);
    const split = opts.split ?? 'training';
    if (split !== 'training' && split !== 'testing') fail(op, `split must be 'training' or 'testing', got ${describe(split)}`);
    const frames = opts.frames ?? 'ed-es';
    if (frames !== 'ed-es' && frames !== 'all') fail(op, `frames must be 'ed-es' or 'all', got ${describe(frames)}`);
    const requireLabels = opts.requireLabels ?? true;
    const cache = volumeCache(checkCacheSize(op, opts.cacheSize ?? 8), 'nifti');
    const dir = join(root, split);
    await mustExist(op, dir, ACDC_LAYOUT);
    const patients = opts.patients
      ? patientNames(op, opts.patients, 3)
      : await probePatients(op, dir, split === 'training' ? 1 : 101, split === 'training' ? 100 : 150, 3, ACDC_LAYOUT);
    patients.sort();

    const infos = new Map<string, ACDCInfo>();
    const entries: ACDCEntry[] = [];
    for (const patient of patients) {
      const pdir = join(dir, patient);
      await mustExist(op, pdir, ACDC_LAYOUT);
      const cfgPath = join(pdir, 'Info.cfg');
      await mustExist(op, cfgPath, ACDC_LAYOUT);
      const cfg = await readCfg(op, cfgPath, ['ED', 'ES', 'NbFrame']);
      const info: ACDCInfo = {
        ed: cfgNumber(op, cfgPath, cfg, 'ED', true)!,
        es: cfgNumber(op, cfgPath, cfg, 'ES', true)!,
        nbFrame: cfgNumber(op, cfgPath, cfg, 'NbFrame', true)!,
        group: cfg.get('Group')?.value ?? null,
        height: cfgNumber(op, cfgPath, cfg, 'Height', false),
        weight: cfgNumber(op, cfgPath, cfg, 'Weight', false),
        fields: Object.fromEntries([...cfg].map(([k, v]) => [k, v.value])),
      };
      for (const k of ['ed', 'es'] as const)
        if (info[k] > info.nbFrame)
          fail(op, `${cfgPath} line ${cfg.get(k.toUpperCase())!.line}: ${k.toUpperCase()} frame ${info[k]} exceeds NbFrame ${info.nbFrame}`);
      infos.set(patient, info);

      const frameFile = (f: number, gt: boolean) => join(pdir, `${patient}_frame${String(f).padStart(2, '0')}${gt ? '_gt' : ''}.nii.gz`);
      const labelFor = async (f: number) => {
        const p = frameFile(f, true);
        if (await files(op).exists(p)) return p;
        if (requireLabels) fail(op, `${p} does not exist (ground truth of frame ${f}); expected the layout ${ACDC_LAYOUT}, or pass { requireLabels: false }`);
        return null;
      };
      const phaseOf = (f: number) => (f === info.ed ? 'ED' : f === info.es ? 'ES' : null);
      const volumes: Omit<ACDCEntry, 'slice'>[] = [];
      if (frames === 'ed-es') {
        for (const f of [info.ed, info.es]) {
          await mustExist(op, frameFile(f, false), ACDC_LAYOUT);
          volumes.push({ patient, image: frameFile(f, false), label: await labelFor(f), frameIndex: null, frame: f, phase: phaseOf(f) });
        }
      } else {
        const seq = join(pdir, `${patient}_4d.nii.gz`);
        await mustExist(op, seq, ACDC_LAYOUT);
        for (let f = 1; f <= info.nbFrame; f++)
          volumes.push({ patient, image: seq, label: phaseOf(f) ? await labelFor(f) : null, frameIndex: f - 1, frame: f, phase: phaseOf(f) });
      }
      if (!opts.slices) for (const v of volumes) entries.push({ ...v, slice: null });
      else {
        // the slice count needs the volume's size: decode it once (through the cache, for the first gets)
        const { shape } = await cache.get(volumes[0].image, 'f32');
        const expectRank = frames === 'all' ? 4 : 3;
        if (shape.length !== expectRank)
          fail(op, `${volumes[0].image} has shape [${shape.join(', ')}]; slices need ${expectRank === 3 ? 'a 3-D [X, Y, Z]' : 'a 4-D [X, Y, Z, T]'} volume`);
        if (frames === 'all' && shape[0] < info.nbFrame)
          fail(op, `${volumes[0].image} holds ${shape[0]} frames but ${cfgPath} says NbFrame: ${info.nbFrame}`);
        for (const v of volumes) for (let k = 0; k < shape[shape.length - 1]; k++) entries.push({ ...v, slice: k });
      }
    }
    return new ACDCDataset(entries, infos, cache);
  }

  async get(index: number): Promise<ACDCItem> {
    this.checkIndex(index);
    const e = this.entries[index] as ACDCEntry;
    const info = this.infos.get(e.patient)!;
    const p = await this.pick(e);
    return { ...p, patient: e.patient, frame: e.frame, phase: e.phase, slice: e.slice, group: info.group, info };
  }
}

// ---- CAMUS --------------------------------------------------------------------------------------------------------

const CAMUS_LAYOUT =
  'root/patientNNNN/{Info_2CH.cfg, Info_4CH.cfg, patientNNNN_{2CH,4CH}_{ED,ES}.nii.gz, patientNNNN_{2CH,4CH}_{ED,ES}_gt.nii.gz} (the CAMUS NIfTI release)';

export interface CAMUSInfo {
  ed: number;
  es: number;
  nbFrame: number;
  sex: string | null;
  age: number | null;
  imageQuality: string | null;
  /** Ejection fraction (%). */
  ef: number | null;
  frameRate: number | null;
  fields: Record<string, string>;
}

export interface CAMUSItem {
  /** f32 image as stored ([X, Y] for the ED/ES frames of the release). */
  image: Tensor;
  /** i32 label map (CAMUS_LABELS), or null with requireLabels: false and no _gt file. */
  label: Tensor | null;
  patient: string;
  view: '2CH' | '4CH';
  phase: 'ED' | 'ES';
  info: CAMUSInfo;
  spacing: number[];
  affine: Affine;
}

export interface CAMUSOptions {
  views?: readonly ('2CH' | '4CH')[];
  phases?: readonly ('ED' | 'ES')[];
  /** Patients to load (numbers or 'patientNNNN'); default every patient0001 ... patient0500 folder present. */
  patients?: readonly (number | string)[];
  requireLabels?: boolean;
  cacheSize?: number;
}

interface CAMUSEntry extends Entry {
  view: '2CH' | '4CH';
  phase: 'ED' | 'ES';
}

/** The CAMUS echocardiography dataset (NIfTI release); items in patient, view, phase order. */
export class CAMUSDataset extends MedicalDataset<CAMUSItem> {
  private constructor(
    entries: CAMUSEntry[],
    private readonly infos: Map<string, CAMUSInfo>,
    cache: VolumeCache,
  ) {
    super('CAMUSDataset', entries, cache);
  }

  static async open(root: string, opts: CAMUSOptions = {}): Promise<CAMUSDataset> {
    const op = 'CAMUSDataset';
    if (typeof root !== 'string') fail(op, `root must be the path of the folder holding the patientNNNN folders, got ${describe(root)}`);
    checkOptions(op, opts);
    const views = opts.views ?? ['2CH', '4CH'];
    const phases = opts.phases ?? ['ED', 'ES'];
    if (!Array.isArray(views) || views.length === 0 || !views.every((v) => v === '2CH' || v === '4CH'))
      fail(op, `views must be a non-empty list of '2CH' and/or '4CH', got ${describe(views)}`);
    if (!Array.isArray(phases) || phases.length === 0 || !phases.every((v) => v === 'ED' || v === 'ES'))
      fail(op, `phases must be a non-empty list of 'ED' and/or 'ES', got ${describe(phases)}`);
    const requireLabels = opts.requireLabels ?? true;
    const cacheSize = checkCacheSize(op, opts.cacheSize ?? 8);
    await mustExist(op, root, CAMUS_LAYOUT);
    const patients = opts.patients ? patientNames(op, opts.patients, 4) : await probePatients(op, root, 1, 500, 4, CAMUS_LAYOUT);
    patients.sort();

    const infos = new Map<string, CAMUSInfo>();
    const entries: CAMUSEntry[] = [];
    for (const patient of patients) {
      const pdir = join(root, patient);
      await mustExist(op, pdir, CAMUS_LAYOUT);
      for (const view of views) {
        const cfgPath = join(pdir, `Info_${view}.cfg`);
        await mustExist(op, cfgPath, CAMUS_LAYOUT);
        const cfg = await readCfg(op, cfgPath, ['ED', 'ES', 'NbFrame']);
        const info: CAMUSInfo = {
          ed: cfgNumber(op, cfgPath, cfg, 'ED', true)!,
          es: cfgNumber(op, cfgPath, cfg, 'ES', true)!,
          nbFrame: cfgNumber(op, cfgPath, cfg, 'NbFrame', true)!,
          sex: cfg.get('Sex')?.value ?? null,
          age: cfgNumber(op, cfgPath, cfg, 'Age', false),
          imageQuality: cfg.get('ImageQuality')?.value ?? null,
          ef: cfgNumber(op, cfgPath, cfg, 'EF', false),
          frameRate: cfgNumber(op, cfgPath, cfg, 'FrameRate', false),
          fields: Object.fromEntries([...cfg].map(([k, v]) => [k, v.value])),
        };
        infos.set(`${patient}/${view}`, info);
        for (const phase of phases) {
          const image = join(pdir, `${patient}_${view}_${phase}.nii.gz`);
          await mustExist(op, image, CAMUS_LAYOUT);
          let label: string | null = join(pdir, `${patient}_${view}_${phase}_gt.nii.gz`);
          if (!(await files(op).exists(label))) {
            if (requireLabels) fail(op, `${label} does not exist; expected the layout ${CAMUS_LAYOUT}, or pass { requireLabels: false }`);
            label = null;
          }
          entries.push({ patient, image, label, frameIndex: null, slice: null, view, phase });
        }
      }
    }
    return new CAMUSDataset(entries, infos, volumeCache(cacheSize, 'nifti'));
  }

  async get(index: number): Promise<CAMUSItem> {
    this.checkIndex(index);
    const e = this.entries[index] as CAMUSEntry;
    const p = await this.pick(e);
    return { ...p, patient: e.patient, view: e.view, phase: e.phase, info: this.infos.get(`${e.patient}/${e.view}`)! };
  }
}

// ---- Left Atrium (2018 challenge) ---------------------------------------------------------------------------------

const LA_LAYOUT = 'root/<caseId>/{lgemri.nrrd, laendo.nrrd} (the 2018 Atrial Segmentation Challenge release; laendo: 0 and 255)';

export interface LAItem {
  /** f32 LGE-MRI volume [X, Y, Z]. */
  image: Tensor;
  /** i32 left-atrium mask [X, Y, Z]: the file's 255 becomes 1. */
  label: Tensor;
  /** The case folder name (also in `patient`, the field the patient-level splits use). */
  case: string;
  patient: string;
  spacing: number[];
  affine: Affine;
}

export interface LAOptions {
  /** Case folder names to load. */
  cases?: readonly string[];
  /** Or a text file with one case folder name per line (SSL4MIS's train.list / test.list). */
  listFile?: string;
  cacheSize?: number;
}

/**
 * The 2018 Left Atrium segmentation challenge data. Case folders have free-form names, so they come from `cases`,
 * from `listFile`, or otherwise from the folders in root.
 */
export class LADataset extends MedicalDataset<LAItem> {
  private constructor(entries: Entry[], cache: VolumeCache) {
    super('LADataset', entries, cache);
  }

  static async open(root: string, opts: LAOptions = {}): Promise<LADataset> {
    const op = 'LADataset';
    if (typeof root !== 'string') fail(op, `root must be the path of the folder holding the case folders, got ${describe(root)}`);
    checkOptions(op, opts);
    if (opts.cases !== undefined && opts.listFile !== undefined) fail(op, 'give cases or listFile, not both');
    const cacheSize = checkCacheSize(op, opts.cacheSize ?? 8);
    await mustExist(op, root, LA_LAYOUT);
    let cases: string[];
    if (opts.cases !== undefined) {
      if (!Array.isArray(opts.cases) || !opts.cases.every((c) => typeof c === 'string' && c !== ''))
        fail(op, `cases must be a list of case folder names, got ${describe(opts.cases)}`);
      cases = [...opts.cases];
    } else if (opts.listFile !== undefined) {
      await mustExist(op, opts.listFile, 'a text file with one case folder name per line');
      cases = new TextDecoder()
        .decode(await readBytes(op, opts.listFile))
        .split(/\r?\n/)
        .map((l) => l.trim())
        .filter((l) => l !== '');
      if (cases.length === 0) fail(op, `${opts.listFile} lists no cases (expected one case folder name per line)`);
    } else {
      const names = (await files(op).readdir(root)).filter((n) => !n.startsWith('.')).sort();
      const isCase = await Promise.all(names.map((n) => files(op).exists(join(root, n, 'lgemri.nrrd'))));
      cases = names.filter((_, i) => isCase[i]);
      if (cases.length === 0) fail(op, `${root} holds no case folder with an lgemri.nrrd; expected the layout ${LA_LAYOUT}`);
    }
    const entries: Entry[] = [];
    for (const c of cases) {
      const image = join(root, c, 'lgemri.nrrd');
      const label = join(root, c, 'laendo.nrrd');
      await mustExist(op, image, LA_LAYOUT);
      await mustExist(op, label, LA_LAYOUT);
      entries.push({ patient: c, image, label, frameIndex: null, slice: null });
    }
    return new LADataset(entries, volumeCache(cacheSize, 'nrrd'));
  }

  async get(index: number): Promise<LAItem> {
    this.checkIndex(index);
    const e = this.entries[index];
    const p = await this.pick(e, (v, path) => {
      for (let i = 0; i < v.length; i++) {
        if (v[i] === 255) v[i] = 1;
        else if (v[i] !== 0 && v[i] !== 1)
          fail('LADataset', `${path} holds the value ${v[i]}; a left-atrium mask holds 0 and 255 (or 0 and 1)`);
      }
    });
    return { image: p.image, label: p.label!, case: e.patient, patient: e.patient, spacing: p.spacing, affine: p.affine };
  }
}
