/** A one-line progress bar on stderr (steps, rate, ETA and the latest values); plain periodic lines when not a TTY. */
export interface Progress {
  update(step: number, total: number, values: Record<string, number>): void;
  done(): void;
}

const clock = (s: number) => {
  if (!Number.isFinite(s)) return '--:--';
  const m = Math.floor(s / 60);
  const h = Math.floor(m / 60);
  const mm = String(m % 60).padStart(2, '0');
  const ss = String(Math.floor(s % 60)).padStart(2, '0');
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
};

const fmt = (v: number) => (Math.abs(v) >= 1e-3 || v === 0 ? v.toFixed(4) : v.toExponential(2));

export function progressBar(label: string, stream: NodeJS.WriteStream = process.stderr): Progress {
  const t0 = performance.now();
  let firstStep = -1;
  let tFirst = t0;
  let lastPrinted = 0;
  const tty = stream.isTTY;
  const width = 24;
  return {
    update(step, total, values) {
      const now = performance.now();
      if (firstStep < 0) {
        // the rate excludes the first step, which pays for pipeline compilation
        firstStep = step;
        tFirst = now;
      }
      const rate = step > firstStep ? (step - firstStep) / ((now - tFirst) / 1000) : NaN;
      const eta = (total - step) / rate;
      const filled = Math.round((width * step) / total);
      const shown = Object.entries(values).map(([k, v]) => `${k} ${fmt(v)}`).join('  ');
      const line =
        `${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${step}/${total}  ${shown}  ` +
        `${Number.isFinite(rate) ? rate.toFixed(2) : '-'} it/s  elapsed ${clock((now - t0) / 1000)}  ETA ${clock(eta)}`;
      if (tty) stream.write(`\r${line}\x1b[K`);
      else if (step === total || now - lastPrinted > 5000 || step === 1) {
        stream.write(`${line}\n`);
        lastPrinted = now;
      }
    },
    done() {
      if (tty) stream.write('\n');
    },
  };
}
