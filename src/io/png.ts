/**
 * PNG write for slices, overlays and figures: the container (signature, IHDR, IDAT, IEND, CRC-32) is written here, the
 * pixel rows are zlib-compressed with the platform's CompressionStream. Row 0 of the tensor is the top row of the image.
 */
import { fail, fmtShape } from '../engine/errors.js';
import { Tensor } from '../engine/tensor.js';
import { describe } from '../kernels/common.js';
import { deflate, files } from './files.js';

export interface PngOptions {
  /** Label map [H, W] (i32 or f32 holding integers ≥ 0): label l > 0 is tinted with PNG_PALETTE[(l − 1) % 12], 0 is clear. */
  overlay?: Tensor;
  /** Intensity window: values ≤ min are black, ≥ max white. Default: the data's min and max. */
  min?: number;
  max?: number;
  /** Overlay opacity in [0, 1], default 0.5. */
  alpha?: number;
}

/** The overlay colours (RGB), one per label modulo 12: distinct hues that stay visible on grayscale. */
export const PNG_PALETTE: readonly (readonly [number, number, number])[] = [
  [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48], [145, 30, 180],
  [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212], [0, 128, 128], [170, 110, 40],
];

/**
 * PNG bytes of a [H, W] tensor (8-bit grayscale, windowed to min/max) or a [H, W, 3] tensor (8-bit RGB, same window over
 * all channels). With an overlay the result is RGB.
 */
export async function encodePng(image: Tensor, opts: PngOptions = {}): Promise<Uint8Array> {
  return encode('encodePng', image, opts);
}

/** Writes `encodePng`'s bytes to `path`, atomically. */
export async function writePng(path: string, image: Tensor, opts: PngOptions = {}): Promise<void> {
  if (typeof path !== 'string') fail('writePng', `path must be a string, got ${describe(path)}`);
  const bytes = await encode('writePng', image, opts);
  await files('writePng', 'vg.io.encodePng').writeFileAtomic(path, bytes);
}

async function encode(op: string, image: Tensor, opts: PngOptions): Promise<Uint8Array> {
  if (!(image instanceof Tensor)) fail(op, `image must be a Tensor [H, W] or [H, W, 3], got ${describe(image)}`);
  if (opts === null || typeof opts !== 'object') fail(op, `options must be an object like { overlay, min, max, alpha }, got ${describe(opts)}`);
  const rgbIn = image.ndim === 3 && image.shape[2] === 3;
  if (image.ndim !== 2 && !rgbIn) fail(op, `image must have shape [H, W] (grayscale) or [H, W, 3] (RGB), got ${fmtShape(image.shape)}`);
  const [H, W] = image.shape;
  if (H < 1 || W < 1) fail(op, `image must not be empty, got shape ${fmtShape(image.shape)}`);
  const alpha = opts.alpha ?? 0.5;
  if (typeof alpha !== 'number' || !(alpha >= 0 && alpha <= 1)) fail(op, `alpha must be a number in [0, 1], got ${describe(alpha)}`);
  for (const k of ['min', 'max'] as const)
    if (opts[k] !== undefined && !Number.isFinite(opts[k])) fail(op, `${k} must be a finite number, got ${describe(opts[k])}`);
  const overlay = opts.overlay;
  if (overlay !== undefined) {
    if (!(overlay instanceof Tensor)) fail(op, `overlay must be a Tensor [H, W], got ${describe(overlay)}`);
    if (overlay.shape.join() !== [H, W].join())
      fail(op, `overlay must have the image's shape [${H}, ${W}], got ${fmtShape(overlay.shape)}`);
  }

  const values = await image.data();
  let lo = opts.min ?? Infinity;
  let hi = opts.max ?? -Infinity;
  if (opts.min === undefined || opts.max === undefined) {
    let dmin = Infinity;
    let dmax = -Infinity;
    for (const v of values) {
      if (v < dmin) dmin = v;
      if (v > dmax) dmax = v;
    }
    if (opts.min === undefined) lo = dmin;
    if (opts.max === undefined) hi = dmax;
  }
  if (hi < lo) fail(op, `the window's min ${lo} is above its max ${hi}`);
  // A flat window (max = min, e.g. a constant image) thresholds: values above it are white, the rest black.
  const scale = hi > lo ? 255 / (hi - lo) : 0;
  const level = (v: number) => (scale === 0 ? (v > lo ? 255 : 0) : Math.round(Math.min(255, Math.max(0, (v - lo) * scale))));

  const labels = overlay ? await overlay.data() : null;
  const channels = rgbIn || labels ? 3 : 1;
  const stride = 1 + W * channels; // filter byte 0 (None) per row
  const raw = new Uint8Array(H * stride);
  for (let y = 0; y < H; y++) {
    let o = y * stride + 1;
    for (let x = 0; x < W; x++) {
      const p = y * W + x;
      let rgb: number[] = rgbIn ? [level(values[3 * p]), level(values[3 * p + 1]), level(values[3 * p + 2])] : [level(values[p])];
      if (labels) {
        if (!rgbIn) rgb = [rgb[0], rgb[0], rgb[0]];
        const l = labels[p];
        if (!(Number.isInteger(l) && l >= 0)) fail(op, `overlay labels must be integers ≥ 0, found ${l} at [${y}, ${x}]`);
        if (l > 0) {
          const c = PNG_PALETTE[(l - 1) % PNG_PALETTE.length];
          rgb = rgb.map((g, i) => Math.round((1 - alpha) * g + alpha * c[i]));
        }
      }
      for (const v of rgb) raw[o++] = v;
    }
  }

  const ihdr = new Uint8Array(13);
  const hv = new DataView(ihdr.buffer);
  hv.setUint32(0, W);
  hv.setUint32(4, H);
  ihdr[8] = 8; // bit depth
  ihdr[9] = channels === 3 ? 2 : 0; // colour type: RGB or grayscale
  // bytes 10-12: deflate compression, adaptive filtering, no interlace (all 0)
  const parts = [
    new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', await deflate(raw)),
    chunk('IEND', new Uint8Array(0)),
  ];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** length, type, data, CRC-32 over type + data. */
function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  v.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

let crcTable: Uint32Array | null = null;

function crc32(bytes: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (const b of bytes) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
