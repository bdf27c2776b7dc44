/**
 * Errors the GPU reports asynchronously, and device-side assertions in CUDA's model. Kernels that read indices check
 * them and, on a violation, record it in one small GPU buffer (an atomic count plus the first bad value and its
 * position, per op call site); checkNumerics
 * records the first op whose output holds NaN/Inf there too. Nothing waits for the GPU: the next read back
 * (data/item/array/sync) copies this buffer along with its result and throws a VoxgradError naming the op, the
 * argument, the valid range and a bad value. The errors are therefore asynchronous: they surface at the first read
 * after the faulty call. Tensors that live on the host are checked at once, before any dispatch. Out-of-memory
 * errors, which WebGPU reports through a promise, wait here for the same read back.
 */
import { gpu, onDeviceReset } from './device.js';
import { VoxgradError, fail } from './errors.js';

/** Index-check call sites (op, argument, range) with a slot each; the last slot is shared once the others are taken. */
const SLOTS = 256;
const WORDS_PER_SLOT = 4; // [violations, position of the first recorded one, its value (bits), unused]
const INDEX_WORDS = SLOTS * WORDS_PER_SLOT;
/** checkNumerics: the lowest call number whose output was non-finite, then one bit per call whose inputs were. */
export const NUMERICS_BASE = INDEX_WORDS;
export const NUMERICS_CALLS = 1 << 16;
const TOTAL_WORDS = NUMERICS_BASE + 1 + NUMERICS_CALLS / 32;
const NONE = 0xffffffff;

interface IndexSite {
  op: string;
  arg: string;
  lo: number;
  hi: number;
  ignore: number | null;
  signed: boolean;
}

interface NumericsCall {
  /** The op whose output is checked, with the op the user called when different ("div (inside log.backward)"). */
  op: string;
  inputs: string;
}

let buffer: GPUBuffer | null = null;
const siteSlots = new Map<string, number>();
const sites: IndexSite[] = [];

/** What was checked since the last read back; a read back takes it whole and starts a new one. */
interface Epoch {
  /** Index slots used, in first-use order (the earliest violation is the one reported). */
  slots: number[];
  slotSet: Set<number>;
  numericsCalls: NumericsCall[];
  numericsOnDevice: boolean;
  /** checkNumerics on host tensors: the earliest call with a non-finite output, and the calls with non-finite inputs. */
  hostFirstBad: number;
  hostBadInputs: Set<number>;
  /** The first error WebGPU reported asynchronously (out of memory). */
  asyncError: VoxgradError | null;
}

const newEpoch = (): Epoch => ({
  slots: [],
  slotSet: new Set(),
  numericsCalls: [],
  numericsOnDevice: false,
  hostFirstBad: NONE,
  hostBadInputs: new Set(),
  asyncError: null,
});
let epoch = newEpoch();

/** Keeps an asynchronously reported error (the first one) for the next read back to throw. */
export function recordAsyncError(e: VoxgradError): void {
  epoch.asyncError ??= e;
}

function resetPattern(words: number): Uint32Array {
  const init = new Uint32Array(words);
  if (words > NUMERICS_BASE) init[NUMERICS_BASE] = NONE;
  return init;
}

/** The assertion buffer of the current device, created on first use. */
export function assertBuffer(): GPUBuffer {
  if (!buffer) {
    const { device } = gpu();
    buffer = device.createBuffer({ size: TOTAL_WORDS * 4, usage: 0x80 | 0x04 | 0x08 /* STORAGE | COPY_SRC | COPY_DST */ });
    device.queue.writeBuffer(buffer, 0, resetPattern(TOTAL_WORDS));
  }
  return buffer;
}

/** The slot a kernel records violations of `op`'s `arg` outside [lo, hi) (except `ignore`) into. */
export function indexSlot(op: string, arg: string, lo: number, hi: number, signed: boolean, ignore: number | null = null): number {
  const key = `${op}|${arg}|${lo}|${hi}|${ignore}|${signed}`;
  let slot = siteSlots.get(key);
  if (slot === undefined) {
    slot = Math.min(sites.length, SLOTS - 1);
    if (sites.length < SLOTS) sites.push({ op, arg, lo, hi, ignore, signed });
    siteSlots.set(key, slot);
  }
  if (!epoch.slotSet.has(slot)) {
    epoch.slotSet.add(slot);
    epoch.slots.push(slot);
  }
  return slot;
}

function describeRange(s: IndexSite): string {
  return `[${s.lo}, ${s.hi})${s.ignore === null ? '' : ` (or the ignore index ${s.ignore})`}`;
}

/** Checks host-resident indices at once (no GPU work yet, so the error can be synchronous). */
export function checkHostIndices(op: string, arg: string, values: ArrayLike<number>, lo: number, hi: number, ignore: number | null = null): void {
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if ((v < lo || v >= hi) && v !== ignore)
      fail(op, `${arg} value ${v} at flat position ${i} is out of range: valid values are ${describeRange({ op, arg, lo, hi, ignore, signed: true })}`);
  }
}

/** checkNumerics: numbers an op call whose output (and inputs) the numerics kernels then check. */
export function numericsCall(op: string, inputs: string): number {
  epoch.numericsOnDevice = true;
  epoch.numericsCalls.push({ op, inputs });
  return epoch.numericsCalls.length - 1;
}

/** checkNumerics on host tensors: the same record, kept on the host. */
export function recordHostNonFinite(seq: number, isInput: boolean): void {
  if (isInput) epoch.hostBadInputs.add(seq);
  else epoch.hostFirstBad = Math.min(epoch.hostFirstBad, seq);
}

/** Whether a read back must fetch the assertion buffer (something was checked since the last one). */
export function assertsPending(): boolean {
  return epoch.slots.length > 0 || epoch.numericsCalls.length > 0 || epoch.asyncError !== null;
}

/**
 * Called by a read back that copies the assertion buffer: how many bytes to copy, and a function that, given the
 * copied words, throws the first violation. The host records are reset here, and the device buffer right after
 * the copy is submitted (`resetDevice`), so that the next epoch starts clean.
 */
export function takeAsserts(): { bytes: number; resetDevice: () => void; check: (words: Uint32Array) => void } {
  const { slots, numericsCalls: calls, numericsOnDevice, hostFirstBad, hostBadInputs: hostInputs, asyncError: reported } = epoch;
  epoch = newEpoch();
  const words = numericsOnDevice ? TOTAL_WORDS : INDEX_WORDS;
  return {
    bytes: words * 4,
    resetDevice: () => gpu().device.queue.writeBuffer(assertBuffer(), 0, resetPattern(words)),
    check: (w) => {
      if (reported) throw reported;
      for (const slot of slots) {
        const count = w[slot * WORDS_PER_SLOT];
        if (count) throw indexError(slot, count, w[slot * WORDS_PER_SLOT + 1], w[slot * WORDS_PER_SLOT + 2]);
      }
      const deviceBad = w.length > NUMERICS_BASE ? w[NUMERICS_BASE] : NONE;
      const seq = Math.min(deviceBad, hostFirstBad);
      if (seq !== NONE && seq < calls.length) {
        const inputsBad = hostInputs.has(seq) || (w.length > NUMERICS_BASE && seq < NUMERICS_CALLS && (w[NUMERICS_BASE + 1 + (seq >>> 5)] >>> (seq & 31)) & 1) === 1;
        const known = seq < NUMERICS_CALLS || hostInputs.has(seq);
        const { op, inputs } = calls[seq];
        const origin = inputs === 'none' ? 'it has no tensor inputs: the values were given to it'
          : !known ? `inputs ${inputs}, not tracked past ${NUMERICS_CALLS} calls between read backs`
          : `inputs ${inputs}; ${inputsBad ? 'its inputs already held NaN/Infinity' : 'its inputs were all finite'}`;
        throw new VoxgradError(
          `checkNumerics: ${op} is the first op whose output holds NaN or Infinity (${origin}). ` +
            'Checks are recorded with each op and reported at the first read back (data/item/array/sync) after it.',
        );
      }
    },
  };
}

function indexError(slot: number, count: number, position: number, bits: number): VoxgradError {
  if (slot === SLOTS - 1 && siteSlots.size > SLOTS - 1)
    return new VoxgradError(
      `an index was out of range (${count} values) in one of the ops checked since the last read back; ` +
        `more than ${SLOTS - 1} distinct call sites were checked, so this one is not named. Read back more often to narrow it down.`,
    );
  const s = sites[slot];
  const value = s.signed ? bits | 0 : bits >>> 0;
  return new VoxgradError(
    `${s.op}: ${s.arg} value ${value} at flat position ${position} is out of range: valid values are ${describeRange(s)} ` +
      `(${count} out-of-range value${count === 1 ? '' : 's'} in all). The check runs on the GPU, so it is reported at the ` +
      'first read back (data/item/array/sync) after the call, as CUDA reports device-side asserts.',
  );
}

onDeviceReset(() => {
  buffer = null;
  epoch = newEpoch();
});
