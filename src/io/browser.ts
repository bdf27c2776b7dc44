/**
 * Page helpers: saving bytes as a download, and 2-D slices as pixels (ImageData, a canvas). They need no file system:
 * writers' bytes come from the encoders (encodeNifti, encodePng, encodeSafetensors, vg.train.encodeCheckpoint).
 */
import { fail, fmtShape } from '../engine/errors.js';
import { tidy, type Tensor } from '../engine/tensor.js';
import { cast } from '../kernels/elementwise.js';
import { reshape } from '../kernels/shape.js';
import { describe, expectTensor } from '../kernels/common.js';
import { overlay, windowed } from './figures.js';

/**
 * Saves `data` as a file named `name` through the page's download mechanism (an object URL on an <a download>). Needs
 * a page's `document`: in a Worker, post the bytes to the page (transfer the buffer) and call download() there; in Node
 * write files with writeFile/writeNifti/... instead.
 */
export function download(name: string, data: Uint8Array | ArrayBuffer | Blob | string, opts: { type?: string } = {}): void {
  const op = 'download';
  if (typeof name !== 'string' || !name) fail(op, `name must be a non-empty file name, got ${describe(name)}`);
  const ok = data instanceof Uint8Array || data instanceof ArrayBuffer || typeof data === 'string' || (typeof Blob !== 'undefined' && data instanceof Blob);
  if (!ok) fail(op, `data must be a Uint8Array, ArrayBuffer, Blob or string, got ${describe(data)}`);
  const doc = (globalThis as { document?: Document }).document;
  if (!doc)
    fail(op, 'needs a page (document): from a Worker, post the bytes to the page and call vg.io.download there; in Node, write the file with vg.io.writeNifti / writeSafetensors / writePng');
  const blob = data instanceof Blob ? data : new Blob([data as BlobPart], { type: opts.type ?? 'application/octet-stream' });
  const url = URL.createObjectURL(blob);
  const link = doc.createElement('a');
  link.href = url;
  link.download = name;
  link.style.display = 'none';
  doc.body.appendChild(link);
  link.click();
  link.remove();
  // the click starts the download asynchronously: revoke the URL once it had time to be read
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

export interface ImageDataOptions {
  /** A label map [H, W] drawn over the slice (label l > 0 in PNG_PALETTE's colours, as vg.io.overlay). */
  overlay?: Tensor;
  /** Label opacity in [0, 1] (default 0.5). */
  alpha?: number;
  /** Intensity window [min, max] mapped to black..white (default the slice's own min and max). */
  window?: readonly [number, number];
}

/** The pixels of a slice: ImageData where the platform has it (browsers, Workers), else an object of the same shape. */
export type SlicePixels = ImageData | { width: number; height: number; data: Uint8ClampedArray };

/**
 * A 2-D slice as RGBA pixels, row 0 at the top: a grayscale image [H, W] (leading size-1 dims allowed) windowed to
 * `window`, with `overlay` labels on top; or an RGB image [H, W, 3] in [0, 255] as the figure helpers make
 * (flowColor, jacobianMap, heatmap, ...), drawn as is.
 */
export async function toImageData(slice: Tensor, opts: ImageDataOptions = {}): Promise<SlicePixels> {
  const op = 'toImageData';
  const t = expectTensor(op, 'slice', slice);
  if (opts === null || typeof opts !== 'object') fail(op, `options must be an object like { overlay, window: [0, 1] }, got ${describe(opts)}`);
  const window = opts.window;
  if (window !== undefined && !(Array.isArray(window) && window.length === 2 && window.every(Number.isFinite) && window[0] < window[1]))
    fail(op, `window must be [min, max] with min < max, got ${describe(window)}`);
  const isRgb = t.ndim === 3 && t.shape[2] === 3;
  if (isRgb && opts.overlay) fail(op, 'overlay needs a grayscale slice [H, W]; this slice is already RGB [H, W, 3]');
  if (!isRgb && (t.ndim < 2 || t.shape.slice(0, -2).some((d) => d !== 1)))
    fail(op, `slice must be a 2-D image [H, W] (or [1, H, W], [1, 1, H, W]) or RGB [H, W, 3], got shape ${fmtShape(t.shape)}`);
  const [height, width] = isRgb ? t.shape : t.shape.slice(-2);
  const rgba = new Uint8ClampedArray(width * height * 4);
  if (isRgb || opts.overlay) {
    const rgbTensor = isRgb ? t : overlay(t, opts.overlay!, { alpha: opts.alpha, min: window?.[0], max: window?.[1] });
    const rgb = await rgbTensor.data();
    if (!isRgb) rgbTensor.dispose();
    for (let i = 0; i < width * height; i++) {
      rgba[4 * i] = rgb[3 * i];
      rgba[4 * i + 1] = rgb[3 * i + 1];
      rgba[4 * i + 2] = rgb[3 * i + 2];
      rgba[4 * i + 3] = 255;
    }
  } else {
    const grayTensor = tidy(() => windowed(cast(reshape(t, [height, width]), 'f32'), window?.[0], window?.[1]));
    const gray = await grayTensor.data();
    grayTensor.dispose();
    for (let i = 0; i < gray.length; i++) {
      rgba.fill(gray[i], 4 * i, 4 * i + 3);
      rgba[4 * i + 3] = 255;
    }
  }
  const Image = (globalThis as { ImageData?: typeof ImageData }).ImageData;
  return Image ? new Image(rgba, width, height) : { width, height, data: rgba };
}

/**
 * Draws a slice (as toImageData) onto a canvas or OffscreenCanvas at one canvas pixel per voxel, resizing the canvas
 * to the slice; CSS scales it for display (`image-rendering: pixelated` keeps voxels sharp).
 */
export async function drawToCanvas(canvas: HTMLCanvasElement | OffscreenCanvas, slice: Tensor, opts: ImageDataOptions = {}): Promise<void> {
  const op = 'drawToCanvas';
  const context = (canvas as { getContext?: (kind: '2d') => unknown } | null)?.getContext?.('2d') as CanvasRenderingContext2D | OffscreenCanvasRenderingContext2D | null | undefined;
  if (!context) fail(op, `canvas must be an HTMLCanvasElement or OffscreenCanvas with a 2-D context available, got ${describe(canvas)}`);
  const pixels = await toImageData(slice, opts);
  if (typeof ImageData === 'undefined' || !(pixels instanceof ImageData)) fail(op, 'needs ImageData (a browser or Worker)');
  canvas.width = pixels.width;
  canvas.height = pixels.height;
  context.putImageData(pixels, 0, 0);
}
