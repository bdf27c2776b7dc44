/**
 * Registration figures as RGB tensors [H, W, 3] (f32, values in [0, 255]) for `writePng(path, rgb, { min: 0, max: 255 })`:
 * flow colour maps, warped deformation grids, Jacobian maps, heat maps, label overlays, and a tiler with titles.
 * Everything per pixel runs on the GPU (fused elementwise kernels, gridSample for colour look-up tables,
 * spatialTransform for the grid); only titles are rasterised on the CPU.
 *
 * Image conventions: row 0 is the top row. 2-D flows are voxgrad's [2, H, W] (or [1, 2, H, W]) in pixels, channel 0
 * along H (down), channel 1 along W (right), the pull warp moved(x) = moving(x + u(x)) (docs/conventions.md).
 */
import { fail, fmtShape } from '../engine/errors.js';
import { Tensor, tidy } from '../engine/tensor.js';
import { describe, expectTensor } from '../kernels/common.js';
import { arange, full, tensor } from '../kernels/creation.js';
import { mapExpr } from '../kernels/elementwise.js';
import { indexSelect } from '../kernels/indexing.js';
import { max, min } from '../kernels/reduce.js';
import { pad } from '../kernels/pad.js';
import { cat, narrow, permute, reshape } from '../kernels/shape.js';
import { gridSample, jacobianDeterminant, spatialTransform } from '../kernels/spatial.js';
import { GLYPH_HEIGHT, textBitmap } from './font.js';
import { PNG_PALETTE } from './png.js';

type RGB = readonly [number, number, number];

/** An image [H, W] (leading size-1 dims allowed: [1, H, W], [1, 1, H, W]) as a [H, W] view. */
function image2d(op: string, arg: string, x: unknown): Tensor {
  const t = expectTensor(op, arg, x);
  if (t.ndim < 2 || t.shape.slice(0, -2).some((d) => d !== 1))
    fail(op, `${arg} must be a 2-D image [H, W] (or [1, H, W], [1, 1, H, W]), got shape ${fmtShape(t.shape)}`);
  return reshape(t, t.shape.slice(-2));
}

/** A 2-D flow [2, H, W] or [1, 2, H, W] as [1, 2, H, W]. */
function flow2d(op: string, x: unknown): Tensor {
  const t = expectTensor(op, 'flow', x);
  if (t.dtype !== 'f32') fail(op, `flow must be f32, got ${t.dtype}`);
  const ok = (t.ndim === 3 && t.shape[0] === 2) || (t.ndim === 4 && t.shape[0] === 1 && t.shape[1] === 2);
  if (!ok) fail(op, `flow must be a 2-D displacement field [2, H, W] or [1, 2, H, W] (channel 0 along H, 1 along W), got shape ${fmtShape(t.shape)}`);
  return reshape(t, [1, 2, ...t.shape.slice(-2)]);
}

function checkColor(op: string, arg: string, c: unknown): RGB {
  if (!Array.isArray(c) || c.length !== 3 || !c.every((v) => typeof v === 'number' && v >= 0 && v <= 255))
    fail(op, `${arg} must be an [r, g, b] list of numbers in [0, 255], got ${describe(c)}`);
  return c as unknown as RGB;
}

const colorTensor = (c: RGB) => tensor([...c], [1, 1, 3]);

/**
 * Piecewise-linear colour look-up: t [H, W] in [0, 1] (clamped) → [H, W, 3], entry k of `table` (RGB in [0, 255]) at
 * t = k / (n − 1). gridSample with alignCorners on a [1, 3, 1, n] image is exactly this interpolation.
 */
function lookup(t: Tensor, table: readonly RGB[]): Tensor {
  const [H, W] = t.shape;
  const n = table.length;
  const lut = tensor([0, 1, 2].flatMap((ch) => table.map((c) => c[ch])), [1, 3, 1, n]);
  const gx = mapExpr('lookup', '2.0 * a - 1.0', [{ name: 'a', value: reshape(t, [1, H, W, 1]) }], 'f32', 'f32');
  const grid = cat([gx, full([1, H, W, 1], 0)], 3);
  const rgb = gridSample(lut, grid, { mode: 'bilinear', paddingMode: 'border', alignCorners: true });
  return reshape(permute(rgb, [0, 2, 3, 1]), [H, W, 3]);
}

/** The Middlebury colour wheel (Baker et al., 2011; the flow_vis/RAFT table): 55 hues, red → yellow → green → cyan → blue → magenta. */
export const MIDDLEBURY_WHEEL: readonly RGB[] = (() => {
  const ramp = (i: number, n: number) => Math.floor((255 * i) / n);
  const segments: [number, (i: number, n: number) => RGB][] = [
    [15, (i, n) => [255, ramp(i, n), 0]], // red → yellow
    [6, (i, n) => [255 - ramp(i, n), 255, 0]], // yellow → green
    [4, (i, n) => [0, 255, ramp(i, n)]], // green → cyan
    [11, (i, n) => [0, 255 - ramp(i, n), 255]], // cyan → blue
    [13, (i, n) => [ramp(i, n), 0, 255]], // blue → magenta
    [6, (i, n) => [255, 0, 255 - ramp(i, n)]], // magenta → red
  ];
  return segments.flatMap(([n, f]) => Array.from({ length: n }, (_, i) => f(i, n)));
})();

export interface FlowColorOptions {
  /** The displacement magnitude (pixels) shown fully saturated. Default: the field's largest magnitude. Fix it to compare figures. */
  maxNorm?: number;
}

/**
 * The Middlebury flow colour map of a 2-D displacement: hue = direction, saturation = magnitude / maxNorm (white at
 * zero). As flow_vis/RAFT's flow_to_color with u = channel 1 (→ right), v = channel 0 (↓ down): pure +x (right) is red,
 * +y (down) orange-yellow, −x cyan-blue, −y violet. Magnitudes above maxNorm are darkened to 75 %. Differences from
 * flow_vis: no 1e-5 added to the maximum, and values are not floored (writePng rounds).
 */
export function flowColor(flow: Tensor, opts: FlowColorOptions = {}): Tensor {
  const op = 'flowColor';
  const maxNorm = opts.maxNorm;
  if (maxNorm !== undefined && !(typeof maxNorm === 'number' && maxNorm > 0 && Number.isFinite(maxNorm)))
    fail(op, `maxNorm must be a positive number, got ${describe(maxNorm)}`);
  // the 2-D views of the inputs are made inside the scope, so they are freed with the other intermediates
  return tidy(() => {
    const f = flow2d(op, flow);
    const [H, W] = f.shape.slice(2);
    const v = reshape(narrow(f, 1, 0, 1), [H, W, 1]);
    const u = reshape(narrow(f, 1, 1, 1), [H, W, 1]);
    const uv = [{ name: 'u', value: u }, { name: 'v', value: v }];
    const mag = mapExpr(op, 'sqrt(u * u + v * v)', uv, 'f32', 'f32');
    const m = maxNorm ?? max(mag);
    const r = mapExpr(op, 'select(a / m, 0.0, m <= 0.0)', [{ name: 'a', value: mag }, { name: 'm', value: m }], 'f32', 'f32');
    // a = atan2(-v, -u) / π in [-1, 1]; a = 1 (pure +x reached through atan2(+0, ·)) is the same hue as a = -1 (red),
    // the value numpy gives for v = +0. Zero flow has no direction: it takes hue 0 and is white anyway (r = 0).
    const hue = mapExpr(
      op,
      'select((select(atan2(-v, -u) / 3.141592653589793, -1.0, atan2(-v, -u) >= 3.141592653589793) + 1.0) * 0.5, 0.0, u == 0.0 && v == 0.0)',
      uv,
      'f32',
      'f32',
    );
    const wheel = lookup(reshape(hue, [H, W]), MIDDLEBURY_WHEEL);
    return mapExpr(op, 'select(c * 0.75, 255.0 - r * (255.0 - c), r <= 1.0)', [{ name: 'c', value: wheel }, { name: 'r', value: r }], 'f32', 'f32');
  });
}

export interface DeformationGridOptions {
  /** Grid pitch in pixels (default 8): lines on rows and columns that are multiples of it. */
  spacing?: number;
  /** Line width in pixels (default 1). */
  lineWidth?: number;
  /** Background image [H, W], windowed to its min/max; default a white background. */
  image?: Tensor;
  /** Line colour, default black on white and [255, 200, 0] over an image. */
  color?: readonly number[];
}

/**
 * The deformation as a warped grid (TransMorph's figure): a grid image with lines at multiples of `spacing` warped by
 * the flow exactly like the moving image (spatialTransform, bilinear, so lines are anti-aliased), drawn on white or
 * over `image`. With zero flow the lines are straight.
 */
export function deformationGrid(flow: Tensor, opts: DeformationGridOptions = {}): Tensor {
  const op = 'deformationGrid';
  const spacing = opts.spacing ?? 8;
  const lineWidth = opts.lineWidth ?? 1;
  if (!(Number.isInteger(spacing) && spacing >= 2)) fail(op, `spacing must be an integer ≥ 2, got ${describe(spacing)}`);
  if (!(Number.isInteger(lineWidth) && lineWidth >= 1 && lineWidth < spacing))
    fail(op, `lineWidth must be an integer in [1, spacing), got ${describe(lineWidth)}`);
  const color = checkColor(op, 'color', opts.color ?? (opts.image === undefined ? [0, 0, 0] : [255, 200, 0]));
  return tidy(() => {
    const f = flow2d(op, flow);
    const [H, W] = f.shape.slice(2);
    const img = opts.image === undefined ? null : image2d(op, 'image', opts.image);
    if (img && (img.shape[0] !== H || img.shape[1] !== W)) fail(op, `image must have the flow's spatial shape [${H}, ${W}], got ${fmtShape(img.shape)}`);
    const rows = reshape(arange(0, H, 1, { dtype: 'f32' }), [H, 1]);
    const cols = reshape(arange(0, W, 1, { dtype: 'f32' }), [1, W]);
    const grid = mapExpr(
      op,
      'select(0.0, 1.0, (y % s) < w || (x % s) < w)',
      [{ name: 'y', value: rows }, { name: 'x', value: cols }, { name: 's', value: spacing }, { name: 'w', value: lineWidth }],
      'f32',
      'f32',
    );
    const warped = reshape(spatialTransform(reshape(grid, [1, 1, H, W]), f), [H, W, 1]);
    const bg = img ? windowed(reshape(img, [H, W, 1])) : 255;
    return mapExpr(op, 'mix(b, c, g)', [{ name: 'b', value: bg }, { name: 'c', value: colorTensor(color) }, { name: 'g', value: warped }], 'f32', 'f32');
  });
}

/** x linearly to [0, 255] between its min and max (or the given window); a flat image is black. */
export function windowed(x: Tensor, lo?: number, hi?: number): Tensor {
  const a = lo ?? min(x);
  const b = hi ?? max(x);
  return mapExpr(
    'window',
    'select(clamp((x - lo) / (hi - lo), 0.0, 1.0) * 255.0, 0.0, hi <= lo)',
    [{ name: 'x', value: x }, { name: 'lo', value: a }, { name: 'hi', value: b }],
    'f32',
    'f32',
  );
}

export interface JacobianMapOptions {
  /** |J| − 1 at which the colours saturate (default 1: |J| = 0 is full blue, |J| = 2 full red). */
  range?: number;
  /** Colour of folded pixels, |J| ≤ 0 (default yellow [255, 255, 0]). */
  foldColor?: readonly number[];
}

/** The diverging colours of jacobianMap: compression (|J| < 1) blue, expansion red (ColorBrewer RdBu ends), |J| = 1 white. */
export const JACOBIAN_COLORS = { shrink: [33, 102, 172] as RGB, grow: [178, 24, 43] as RGB, neutral: [255, 255, 255] as RGB };

/**
 * The Jacobian determinant |J| of x ↦ x + u(x) (vg.jacobianDeterminant, np.gradient's differences) as a diverging map:
 * white at |J| = 1 (volume kept), towards blue for compression and red for expansion, linear in |J| − 1 up to
 * `range`; folded pixels (|J| ≤ 0) in `foldColor`.
 */
export function jacobianMap(flow: Tensor, opts: JacobianMapOptions = {}): Tensor {
  const op = 'jacobianMap';
  const range = opts.range ?? 1;
  if (!(typeof range === 'number' && range > 0 && Number.isFinite(range))) fail(op, `range must be a positive number, got ${describe(range)}`);
  const fold = checkColor(op, 'foldColor', opts.foldColor ?? [255, 255, 0]);
  return tidy(() => {
    const f = flow2d(op, flow);
    const [H, W] = f.shape.slice(2);
    const det = reshape(jacobianDeterminant(f), [H, W, 1]);
    return mapExpr(
      op,
      'select(mix(255.0, select(hi, lo, d < 1.0), min(abs(d - 1.0) / r, 1.0)), fc, d <= 0.0)',
      [
        { name: 'd', value: det },
        { name: 'lo', value: colorTensor(JACOBIAN_COLORS.shrink) },
        { name: 'hi', value: colorTensor(JACOBIAN_COLORS.grow) },
        { name: 'fc', value: colorTensor(fold) },
        { name: 'r', value: range },
      ],
      'f32',
      'f32',
    );
  });
}

/** Matplotlib's viridis and magma at t = k/16 (table entries 16k, and 255 at t = 1); heatmap interpolates linearly between them. */
const COLORMAPS: Record<'viridis' | 'magma', readonly RGB[]> = {
  viridis: [
    [0.267004, 0.004874, 0.329415], [0.282327, 0.094955, 0.417331], [0.278826, 0.17549, 0.483397], [0.258965, 0.251537, 0.524736],
    [0.229739, 0.322361, 0.545706], [0.19943, 0.387607, 0.554642], [0.172719, 0.448791, 0.557885], [0.149039, 0.508051, 0.55725],
    [0.127568, 0.566949, 0.550556], [0.120638, 0.625828, 0.533488], [0.157851, 0.683765, 0.501686], [0.24607, 0.73891, 0.452024],
    [0.369214, 0.788888, 0.382914], [0.515992, 0.831158, 0.294279], [0.678489, 0.863742, 0.189503], [0.845561, 0.887322, 0.099702],
    [0.993248, 0.906157, 0.143936],
  ].map((c) => c.map((v) => v * 255) as unknown as RGB),
  magma: [
    [0.001462, 0.000466, 0.013866], [0.039608, 0.03109, 0.133515], [0.113094, 0.065492, 0.276784], [0.211718, 0.061992, 0.418647],
    [0.316654, 0.07169, 0.48538], [0.414709, 0.110431, 0.504662], [0.512831, 0.148179, 0.507648], [0.613617, 0.181811, 0.498536],
    [0.716387, 0.214982, 0.47529], [0.816914, 0.255895, 0.436461], [0.904281, 0.31961, 0.388137], [0.960949, 0.418323, 0.35963],
    [0.9867, 0.535582, 0.38221], [0.996096, 0.653659, 0.446213], [0.996898, 0.769591, 0.534892], [0.99244, 0.88433, 0.640099],
    [0.987053, 0.991438, 0.749504],
  ].map((c) => c.map((v) => v * 255) as unknown as RGB),
};

export interface HeatmapOptions {
  /** Value mapped to the colormap's start / end (clamped beyond). Default: the data's min / max. */
  min?: number;
  max?: number;
  colormap?: 'viridis' | 'magma';
}

/** A scalar map (variance, correspondence score, error) [H, W] in a perceptually uniform colormap (default viridis). */
export function heatmap(x: Tensor, opts: HeatmapOptions = {}): Tensor {
  const op = 'heatmap';
  const colormap = opts.colormap ?? 'viridis';
  if (!Object.hasOwn(COLORMAPS, colormap)) fail(op, `colormap must be 'viridis' or 'magma', got ${describe(colormap)}`);
  for (const k of ['min', 'max'] as const)
    if (opts[k] !== undefined && !Number.isFinite(opts[k])) fail(op, `${k} must be a finite number, got ${describe(opts[k])}`);
  if (opts.min !== undefined && opts.max !== undefined && opts.max < opts.min) fail(op, `min ${opts.min} is above max ${opts.max}`);
  return tidy(() => lookup(mapExpr(op, 'a / 255.0', [{ name: 'a', value: windowed(image2d(op, 'x', x), opts.min, opts.max) }], 'f32', 'f32'), COLORMAPS[colormap]));
}

export interface OverlayOptions {
  /** Label opacity in [0, 1] (default 0.5). */
  alpha?: number;
  /** Intensity window of the image (default its min/max). */
  min?: number;
  max?: number;
}

/**
 * A grayscale image [H, W] with a label map [H, W] on top: label l > 0 tinted with PNG_PALETTE[(l − 1) % 12] at
 * opacity `alpha`, as writePng's overlay; label 0 (and negative values) stay clear.
 */
export function overlay(image: Tensor, label: Tensor, opts: OverlayOptions = {}): Tensor {
  const op = 'overlay';
  const alpha = opts.alpha ?? 0.5;
  if (!(typeof alpha === 'number' && alpha >= 0 && alpha <= 1)) fail(op, `alpha must be a number in [0, 1], got ${describe(alpha)}`);
  return tidy(() => {
    const img = image2d(op, 'image', image);
    const lab = image2d(op, 'label', label);
    const [H, W] = img.shape;
    if (lab.shape[0] !== H || lab.shape[1] !== W) fail(op, `label must have the image's shape [${H}, ${W}], got ${fmtShape(lab.shape)}`);
    const gray = windowed(reshape(img, [H, W, 1]), opts.min, opts.max);
    // Palette row 0 is a placeholder for unlabelled pixels.
    const palette = tensor([[0, 0, 0], ...PNG_PALETTE].flat(), [PNG_PALETTE.length + 1, 3]);
    const k = mapExpr(op, `select(0, (l - 1) % ${PNG_PALETTE.length} + 1, l > 0)`, [{ name: 'l', value: reshape(lab, [H, W, 1]) }], 'i32', 'i32');
    const tint = reshape(indexSelect(palette, 0, reshape(k, [H * W])), [H, W, 3]);
    return mapExpr(op, 'select(g, mix(g, c, al), k > 0.0)', [{ name: 'g', value: gray }, { name: 'c', value: tint }, { name: 'k', value: k }, { name: 'al', value: alpha }], 'f32', 'f32');
  });
}

export interface Panel {
  /** Drawn above the panel in the 5×7 font (src/io/font.ts); characters without a glyph show as '?'. */
  title?: string;
  /** [H, W, 3] in [0, 255]. */
  rgb: Tensor;
}

export interface FigureGridOptions {
  /** Gap between panels and around the figure, in pixels (default 4). */
  pad?: number;
  /** Background level 0..255 (default 255, white). */
  background?: number;
  /** Title glyph scale (default 1: 7-pixel-high letters). */
  titleScale?: number;
}

/**
 * Tiles panels (rows of columns; null for an empty cell) into one RGB image. Column c is as wide as its widest panel,
 * row r as tall as its tallest; each panel sits at the top-left of its cell. Cell (r, c) starts at
 * x = pad + Σ_{c' < c} (width_c' + pad) and y = pad + Σ_{r' < r} (band + height_r' + pad) + band, where band is the
 * title strip, (GLYPH_HEIGHT + 3) · titleScale pixels when any panel has a title (else 0), text in black.
 */
export function figureGrid(panels: (Panel | null)[][], opts: FigureGridOptions = {}): Tensor {
  const op = 'figureGrid';
  if (!Array.isArray(panels) || panels.length === 0 || !panels.every((r) => Array.isArray(r)))
    fail(op, `panels must be a non-empty list of rows (lists of { title, rgb } or null), got ${describe(panels)}`);
  const padding = opts.pad ?? 4;
  const bgLevel = opts.background ?? 255;
  const scale = opts.titleScale ?? 1;
  if (!(Number.isInteger(padding) && padding >= 0)) fail(op, `pad must be an integer ≥ 0, got ${describe(padding)}`);
  if (!(typeof bgLevel === 'number' && bgLevel >= 0 && bgLevel <= 255)) fail(op, `background must be a number in [0, 255], got ${describe(bgLevel)}`);
  if (!(Number.isInteger(scale) && scale >= 1)) fail(op, `titleScale must be an integer ≥ 1, got ${describe(scale)}`);
  panels.forEach((row, r) =>
    row.forEach((p, c) => {
      if (p === null) return;
      if (typeof p !== 'object' || !(p.rgb instanceof Tensor) || p.rgb.ndim !== 3 || p.rgb.shape[2] !== 3 || p.rgb.dtype !== 'f32')
        fail(op, `panels[${r}][${c}].rgb must be an f32 Tensor [H, W, 3], got ${p && typeof p === 'object' && p.rgb instanceof Tensor ? fmtShape(p.rgb.shape) : describe(p)}`);
      if (p.title !== undefined && typeof p.title !== 'string') fail(op, `panels[${r}][${c}].title must be a string, got ${describe(p.title)}`);
    }),
  );
  const nCols = Math.max(...panels.map((r) => r.length));
  const colW = Array.from({ length: nCols }, (_, c) => Math.max(0, ...panels.map((r) => r[c]?.rgb.shape[1] ?? 0)));
  const rowH = panels.map((r) => Math.max(0, ...r.map((p) => p?.rgb.shape[0] ?? 0)));
  if (colW.some((w) => w === 0) || rowH.some((h) => h === 0)) fail(op, 'every row and every column needs at least one non-empty panel');
  const band = panels.some((r) => r.some((p) => p?.title)) ? (GLYPH_HEIGHT + 3) * scale : 0;
  const totalW = colW.reduce((s, w) => s + w + padding, padding);

  return tidy(() => {
    const strips: Tensor[] = [];
    const hGap = padding > 0 ? full([padding, totalW, 3], bgLevel) : null;
    if (hGap) strips.push(hGap);
    panels.forEach((row, r) => {
      const cells: Tensor[] = [];
      const vGap = padding > 0 ? full([band + rowH[r], padding, 3], bgLevel) : null;
      if (vGap) cells.push(vGap);
      for (let c = 0; c < nCols; c++) {
        const p = row[c] ?? null;
        let cell = p
          ? pad(p.rgb, [0, 0, 0, colW[c] - p.rgb.shape[1], 0, rowH[r] - p.rgb.shape[0]], { value: bgLevel })
          : full([rowH[r], colW[c], 3], bgLevel);
        if (band) cell = cat([titleStrip(p?.title ?? '', colW[c], band, scale, bgLevel), cell], 0);
        cells.push(cell);
        if (vGap) cells.push(vGap);
      }
      strips.push(cat(cells, 1));
      if (hGap) strips.push(hGap);
    });
    return cat(strips, 0);
  });
}

/** A [band, width, 3] strip with the title in black, `scale` pixels from the top, clipped to the width. */
function titleStrip(title: string, width: number, band: number, scale: number, bgLevel: number): Tensor {
  const { width: tw, height: th, ink } = textBitmap(title, scale);
  const px = new Float32Array(band * width * 3).fill(bgLevel);
  for (let y = 0; y < th; y++)
    for (let x = 0; x < Math.min(tw, width); x++) if (ink[y * tw + x]) px.fill(0, ((y + scale) * width + x) * 3, ((y + scale) * width + x) * 3 + 3);
  return tensor(px, [band, width, 3]);
}

export interface ScatterPlotOptions {
  /** Width and height in pixels (default 256). */
  size?: number;
  /** Colour of class c: colors[c % colors.length], RGB in [0, 255] (default PNG_PALETTE). */
  colors?: readonly RGB[];
  /** Dot radius in pixels: (2r + 1)² squares (default 1). */
  radius?: number;
  /** Empty border inside the frame, in pixels (default 6). */
  margin?: number;
}

/**
 * A scatter plot [size, size, 3] of points [N, 2] (x to the right, y up), point i coloured by classes[i] (integers ≥ 0),
 * on white inside a grey frame. Both axes share one scale (the larger of the two ranges fills the plot, centred), so
 * distances are not distorted. Classes are drawn from the most to the least frequent, so small groups stay visible.
 * Rasterised on the host (points are few); no axes or ticks: the coordinates of a projection carry no units.
 */
export async function scatterPlot(points: Tensor, classes: ArrayLike<number>, opts: ScatterPlotOptions = {}): Promise<Tensor> {
  const op = 'scatterPlot';
  const p = expectTensor(op, 'points', points);
  if (p.ndim !== 2 || p.shape[1] !== 2 || p.dtype !== 'f32') fail(op, `points must be an f32 [N, 2] tensor, got ${p.dtype} ${fmtShape(p.shape)}`);
  const N = p.shape[0];
  if (classes?.length !== N) fail(op, `classes must have one entry per point (${N}), got ${describe(classes)}`);
  for (let i = 0; i < N; i++) if (!Number.isInteger(classes[i]) || classes[i] < 0) fail(op, `classes[${i}] must be an integer ≥ 0, got ${describe(classes[i])}`);
  const size = opts.size ?? 256;
  const radius = opts.radius ?? 1;
  const margin = opts.margin ?? 6;
  const colors = opts.colors ?? PNG_PALETTE;
  if (!Number.isInteger(size) || size < 16) fail(op, `size must be an integer ≥ 16, got ${describe(size)}`);
  if (!Number.isInteger(radius) || radius < 0) fail(op, `radius must be an integer ≥ 0, got ${describe(radius)}`);
  if (!Number.isInteger(margin) || margin < 0 || 2 * (margin + radius + 1) >= size) fail(op, `margin must be an integer ≥ 0 leaving room inside ${size} pixels, got ${describe(margin)}`);
  if (!Array.isArray(colors) || colors.length === 0) fail(op, `colors must be a non-empty list of [r, g, b], got ${describe(colors)}`);
  colors.forEach((c, i) => checkColor(op, `colors[${i}]`, c));
  const xy = await p.data();
  for (let i = 0; i < 2 * N; i++) if (!Number.isFinite(xy[i])) fail(op, `points must be finite, got ${xy[i]} at row ${i >> 1}`);
  const px = new Float32Array(size * size * 3).fill(255);
  const set = (x: number, y: number, c: RGB) => px.set(c, (y * size + x) * 3);
  const frame: RGB = [160, 160, 160];
  for (let i = 0; i < size; i++) {
    set(i, 0, frame);
    set(i, size - 1, frame);
    set(0, i, frame);
    set(size - 1, i, frame);
  }
  const lo = [Infinity, Infinity];
  const hi = [-Infinity, -Infinity];
  for (let i = 0; i < N; i++)
    for (let a = 0; a < 2; a++) {
      lo[a] = Math.min(lo[a], xy[2 * i + a]);
      hi[a] = Math.max(hi[a], xy[2 * i + a]);
    }
  const inner = size - 2 * (margin + radius + 1);
  const span = Math.max(hi[0] - lo[0], hi[1] - lo[1]) || 1;
  const centre = [(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2];
  const counts = new Map<number, number>();
  for (let i = 0; i < N; i++) counts.set(classes[i], (counts.get(classes[i]) ?? 0) + 1);
  const order = Array.from({ length: N }, (_, i) => i).sort((i, j) => counts.get(classes[j])! - counts.get(classes[i])! || classes[i] - classes[j] || i - j);
  for (const i of order) {
    const cx = Math.round(size / 2 + ((xy[2 * i] - centre[0]) / span) * inner);
    const cy = Math.round(size / 2 - ((xy[2 * i + 1] - centre[1]) / span) * inner);
    const c = colors[classes[i] % colors.length];
    for (let dy = -radius; dy <= radius; dy++) for (let dx = -radius; dx <= radius; dx++) set(cx + dx, cy + dy, c);
  }
  return tensor(px, [size, size, 3]);
}

/**
 * A legend [H, W, 3]: one row per entry, a filled square in the entry's colour then its label in black, on white
 * (`scale` as figureGrid's titleScale).
 */
export function legend(entries: readonly { label: string; color: RGB }[], opts: { scale?: number } = {}): Tensor {
  const op = 'legend';
  if (!Array.isArray(entries) || entries.length === 0) fail(op, `entries must be a non-empty list of { label, color }, got ${describe(entries)}`);
  const scale = opts.scale ?? 1;
  if (!(Number.isInteger(scale) && scale >= 1)) fail(op, `scale must be an integer ≥ 1, got ${describe(scale)}`);
  entries.forEach((e, i) => {
    if (typeof e?.label !== 'string') fail(op, `entries[${i}].label must be a string, got ${describe(e?.label)}`);
    checkColor(op, `entries[${i}].color`, e.color);
  });
  const line = (GLYPH_HEIGHT + 3) * scale;
  const box = GLYPH_HEIGHT * scale;
  const texts = entries.map((e) => textBitmap(e.label, scale));
  const W = box + 2 * scale + Math.max(...texts.map((t) => t.width));
  const H = line * entries.length;
  const px = new Float32Array(H * W * 3).fill(255);
  entries.forEach((e, r) => {
    const y0 = r * line + scale;
    for (let y = 0; y < box; y++) for (let x = 0; x < box; x++) px.set(e.color, ((y0 + y) * W + x) * 3);
    const t = texts[r];
    for (let y = 0; y < t.height; y++)
      for (let x = 0; x < t.width; x++) if (t.ink[y * t.width + x]) px.fill(0, ((y0 + y) * W + box + 2 * scale + x) * 3, ((y0 + y) * W + box + 2 * scale + x) * 3 + 3);
  });
  return tensor(px, [H, W, 3]);
}
