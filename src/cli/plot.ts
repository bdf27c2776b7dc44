/** Renders a loss curve as an RGB image (for the run folder's loss.png): white background, axes, a log-scaled y. */
export function plotCurve(values: number[], width = 640, height = 360): { rgb: Uint8Array; width: number; height: number } {
  const rgb = new Uint8Array(width * height * 3).fill(255);
  const set = (x: number, y: number, c: readonly number[]) => {
    if (x < 0 || y < 0 || x >= width || y >= height) return;
    rgb.set(c, (y * width + x) * 3);
  };
  const margin = 30;
  const axis = [90, 90, 90];
  for (let x = margin; x < width - 10; x++) set(x, height - margin, axis);
  for (let y = 10; y <= height - margin; y++) set(margin, y, axis);
  const finite = values.filter((v) => Number.isFinite(v) && v > 0);
  if (finite.length < 2) return { rgb, width, height };
  const logs = finite.map(Math.log10);
  const lo = Math.min(...logs);
  const hi = Math.max(...logs);
  const span = hi - lo || 1;
  const px = (i: number) => margin + Math.round(((width - 10 - margin) * i) / (finite.length - 1));
  const py = (v: number) => 10 + Math.round(((height - margin - 10) * (hi - Math.log10(v))) / span);
  // gridlines at each power of ten inside the range
  for (let p = Math.ceil(lo); p <= Math.floor(hi); p++)
    for (let x = margin + 1; x < width - 10; x += 3) set(x, py(10 ** p), [200, 200, 200]);
  const curve = [31, 119, 180];
  for (let i = 1; i < finite.length; i++) {
    const [x0, y0, x1, y1] = [px(i - 1), py(finite[i - 1]), px(i), py(finite[i])];
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
