/** Signed-depth shapes for the procedural phantoms (millimetres; positive inside) and their blending helpers. */

export const clamp01 = (v: number) => (v < 0 ? 0 : v > 1 ? 1 : v);
export const lerp = (a: number, b: number, t: number) => a + (b - a) * t;

/**
 * An ellipse with semi-axes a (along angle th) and b: depth(x, y) is its boundary's distance from the centre along
 * the ray through (x, y) minus the point's (positive inside, mm; exact for circles).
 */
export function ellipse(cx: number, cy: number, a: number, b: number, th: number): (x: number, y: number) => number {
  const ct = Math.cos(th);
  const st = Math.sin(th);
  const ia2 = 1 / (a * a);
  const ib2 = 1 / (b * b);
  return (x, y) => {
    const dx = x - cx;
    const dy = y - cy;
    const u = dx * ct + dy * st;
    const v = dy * ct - dx * st;
    const r2 = u * u + v * v;
    if (r2 === 0) return Math.min(a, b);
    const rho = Math.sqrt(r2);
    return rho / Math.sqrt(u * u * ia2 + v * v * ib2) - rho;
  };
}

/** Depth inside a disc (positive inside, mm). */
export function disc(cx: number, cy: number, r: number): (x: number, y: number) => number {
  return (x, y) => r - Math.sqrt((x - cx) ** 2 + (y - cy) ** 2);
}
