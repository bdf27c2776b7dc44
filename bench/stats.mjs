// Small statistics helpers shared by the benchmark sections.
export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** max |a - b| / max |a| over two equal-length arrays (max |a - b| when a is all zeros). */
export function maxRelDiff(a, b) {
  let d = 0;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(a[i]));
  }
  return m === 0 ? d : d / m;
}
