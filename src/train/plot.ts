/**
 * Renders a loss curve as an RGB image (the run folder's loss.png): white background, axes, a log-scaled y with a
 * grid line and label at each power of ten, the y range and the step count written with the figures' 5×7 font.
 */
import { GLYPH_HEIGHT, textBitmap } from '../io/font.js';

type RGB = readonly [number, number, number];

const label = (v: number) => (v >= 0.01 && v < 1000 ? String(Number(v.toPrecision(3))) : v.toExponential(1));

export function plotCurve(values: number[], width = 640, height = 360): { rgb: Uint8Array; width: number; height: number } {
  const rgb = new Uint8Array(width * height * 3).fill(255);
  const set = (x: number, y: number, c: RGB) => {
    if (x < 0 || y < 0 || x >= width || y >= height) return;
    rgb.set(c, (y * width + x) * 3);
  };
  const text = (s: string, x: number, y: number, c: RGB = [60, 60, 60]) => {
    const t = textBitmap(s);
    for (let r = 0; r < t.height; r++) for (let q = 0; q < t.width; q++) if (t.ink[r * t.width + q]) set(x + q, y + r, c);
    return t.width;
  };
  const left = 64;
  const bottom = height - 24;
  const top = 12;
  const right = width - 12;
  const axis: RGB = [90, 90, 90];
  for (let x = left; x <= right; x++) set(x, bottom, axis);
  for (let y = top; y <= bottom; y++) set(left, y, axis);
  const points = values.map((v, i) => [i, v] as const).filter(([, v]) => Number.isFinite(v) && v > 0);
  if (points.length < 2) return { rgb, width, height };
  const logs = points.map(([, v]) => Math.log10(v));
  const lo = Math.min(...logs);
  const hi = Math.max(...logs);
  const span = hi - lo || 1;
  const px = (i: number) => left + Math.round(((right - left) * i) / Math.max(1, values.length - 1));
  const py = (v: number) => top + Math.round(((bottom - top) * (hi - Math.log10(v))) / span);
  const yLabel = (v: number) => {
    const s = label(v);
    text(s, left - 6 - textBitmap(s).width, py(v) - (GLYPH_HEIGHT >> 1));
  };
  for (let p = Math.ceil(lo); p <= Math.floor(hi); p++) {
    for (let x = left + 1; x < right; x += 3) set(x, py(10 ** p), [200, 200, 200]);
    yLabel(10 ** p);
  }
  yLabel(10 ** hi);
  yLabel(10 ** lo);
  text('0', left, bottom + 6);
  const steps = `${values.length} steps`;
  text(steps, right - textBitmap(steps).width, bottom + 6);
  const title = 'loss (log scale)';
  text(title, right - textBitmap(title).width, top);
  const curve: RGB = [31, 119, 180];
  for (let k = 1; k < points.length; k++) {
    const [x0, y0, x1, y1] = [px(points[k - 1][0]), py(points[k - 1][1]), px(points[k][0]), py(points[k][1])];
    const n = Math.max(Math.abs(x1 - x0), Math.abs(y1 - y0), 1);
    for (let s = 0; s <= n; s++) {
      const x = Math.round(x0 + ((x1 - x0) * s) / n);
      const y = Math.round(y0 + ((y1 - y0) * s) / n);
      set(x, y, curve);
      set(x, y + 1, curve);
    }
  }
  return { rgb, width, height };
}
