/**
 * FIFO memory banks on the GPU: K rows of D values (and optionally an i32 label per row), overwritten oldest first.
 * ISD / ACTION keep K = 36 teacher embeddings, ACTION++'s TSC keeps 12,288 labelled teacher pixel features, MONA keeps
 * per-class banks of teacher pixel features. Writes are plain copies into the bank's storage (no autodiff: banks
 * hold detached teacher values).
 */
import { noGrad } from '../../engine/autograd.js';
import { fail, fmtShape } from '../../engine/errors.js';
import { Tensor, keep } from '../../engine/tensor.js';
import { writeAxis, sliceAxis } from '../../kernels/base.js';
import { full, tensor, zeros } from '../../kernels/creation.js';
import { Rng } from '../../data/random.js';

export interface MemoryBankOptions {
  /** Keep an i32 label per row (initialised to -1: never a positive until written). */
  labels?: boolean;
  /**
   * 'zeros', or 'random-unit' (rows drawn from a normal distribution and scaled to unit length, as ISD initialises
   * its queue). Default 'zeros'.
   */
  init?: 'zeros' | 'random-unit';
  seed?: number;
}

export class MemoryBank {
  readonly keys: Tensor;
  readonly labels: Tensor | null;
  /** Next row to overwrite. */
  pointer = 0;
  /** Rows written so far, capped at size (rows beyond it hold the initial values). */
  filled = 0;

  constructor(readonly size: number, readonly dim: number, opts: MemoryBankOptions = {}) {
    if (!Number.isInteger(size) || size < 1 || !Number.isInteger(dim) || dim < 1)
      fail('MemoryBank', `size and dim must be positive integers, got size ${String(size)}, dim ${String(dim)}`);
    if (opts.init === 'random-unit') {
      const rng = new Rng(opts.seed ?? 0);
      const v = new Float32Array(size * dim);
      for (let r = 0; r < size; r++) {
        let n2 = 0;
        for (let d = 0; d < dim; d++) n2 += (v[r * dim + d] = rng.normal()) ** 2;
        const inv = 1 / Math.sqrt(n2);
        for (let d = 0; d < dim; d++) v[r * dim + d] *= inv;
      }
      this.keys = keep(tensor(v, [size, dim]));
    } else this.keys = keep(zeros([size, dim]));
    this.labels = opts.labels ? keep(full([size], -1, { dtype: 'i32' })) : null;
  }

  /** Writes rows [n, D] (and their labels [n]) at the pointer, wrapping around; with n > size only the last size rows stay. */
  enqueue(rows: Tensor, labels?: Tensor): void {
    const op = 'MemoryBank.enqueue';
    if (!(rows instanceof Tensor) || rows.ndim !== 2 || rows.shape[1] !== this.dim)
      fail(op, `rows must be [n, ${this.dim}], got ${rows instanceof Tensor ? fmtShape(rows.shape) : typeof rows}`);
    if (this.labels && (!(labels instanceof Tensor) || labels.ndim !== 1 || labels.shape[0] !== rows.shape[0] || labels.dtype !== 'i32'))
      fail(op, `this bank keeps labels: labels must be an i32 [${rows.shape[0]}] tensor, got ${labels instanceof Tensor ? `${labels.dtype} ${fmtShape(labels.shape)}` : typeof labels}`);
    if (!this.labels && labels !== undefined) fail(op, 'this bank keeps no labels (construct it with { labels: true }), but labels were given');
    noGrad(() => {
      let n = rows.shape[0];
      let start = 0;
      if (n > this.size) {
        // only the newest `size` rows survive a wrap-around, and they land where a sequence of smaller writes would put them
        start = n - this.size;
        this.pointer = (this.pointer + start) % this.size;
        n = this.size;
      }
      let done = 0;
      while (done < n) {
        const chunk = Math.min(n - done, this.size - this.pointer);
        const write = (dst: Tensor, src: Tensor) => {
          const part = sliceAxis(op, src, 0, start + done, start + done + chunk);
          writeAxis(op, dst, 0, this.pointer, part);
          part.dispose();
        };
        write(this.keys, rows);
        if (this.labels && labels) write(this.labels, labels);
        done += chunk;
        this.pointer = (this.pointer + chunk) % this.size;
      }
      this.filled = Math.min(this.size, this.filled + rows.shape[0]);
    });
  }

  dispose(): void {
    this.keys.dispose();
    this.labels?.dispose();
  }
}
