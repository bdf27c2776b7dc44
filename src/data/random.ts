/**
 * Host-side seeded random numbers for the data pipeline: shuffling orders, augmentation parameters and the phantom.
 * Small and exact (32-bit integer arithmetic only), so a seed gives the same numbers on every platform and run.
 */

/** splitmix32-style finaliser: mixes an integer into a well-spread 32-bit value. */
function mix32(x: number): number {
  x = (x + 0x9e3779b9) >>> 0;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b) >>> 0;
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35) >>> 0;
  return (x ^ (x >>> 16)) >>> 0;
}

/**
 * A seed derived from a base seed and a path of integers (epoch, sample index, ...): independent streams for each
 * (seed, path) without sharing state. Seeds up to 2^53 contribute both 32-bit halves.
 */
export function deriveSeed(seed: number, ...path: number[]): number {
  let h = mix32((seed >>> 0) ^ mix32(Math.floor(seed / 2 ** 32) >>> 0));
  for (const p of path) h = mix32(h ^ mix32(p >>> 0) ^ mix32(Math.floor(p / 2 ** 32) >>> 0));
  return h;
}

/** mulberry32: a 32-bit state generator, plenty for shuffles and augmentation draws. */
export class Rng {
  private s: number;

  constructor(seed: number) {
    this.s = deriveSeed(seed);
  }

  /** Uniform on [0, 1) with 32 random bits. */
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Uniform on [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Integer uniform on [lo, hi). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo));
  }

  /** Standard normal (Box-Muller; one draw per call keeps the stream position simple). */
  normal(): number {
    const u = 1 - this.next(); // (0, 1]: log stays finite
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }

  /** A random permutation of 0..n-1 (Fisher-Yates). */
  permutation(n: number): number[] {
    const p = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      [p[i], p[j]] = [p[j], p[i]];
    }
    return p;
  }
}

let autoSeedCounter = 0;

/**
 * The seed an augmentation uses when the caller gives none: a fixed sequence (0x5eed, call 0, 1, ...), so a
 * program re-run draws the same augmentations, as vg's global generator does for vg.rand.
 */
export function seedOrNext(seed: number | undefined): number {
  return seed ?? deriveSeed(0x5eed, autoSeedCounter++);
}
