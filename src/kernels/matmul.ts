/** matmul with torch.matmul's rules (1-D promotion, batch broadcasting), bmm, linear. */
import matmulWgsl from '../../shaders/matmul.wgsl';
import { VoxgradError, fail, fmtShape } from '../engine/errors.js';
import { adapterKind, gpu } from '../engine/device.js';
import { FLOAT, defineOp } from '../engine/op.js';
import { dispatch, kernel } from '../engine/runtime.js';
import { broadcastShapes, sameShape } from '../engine/shape.js';
import { Tensor, shapeSize, tidy } from '../engine/tensor.js';
import { ceilDiv, emptyTensor, expectFloat, expectTensor } from './common.js';
import { elementwise } from './elementwise.js';
import { sumToShape } from './base.js';
import { expand, reshape, squeeze, unsqueeze } from './shape.js';

/** A [batch, rows, cols] view of a contiguous buffer through strides (batch stride 0 = broadcast). */
interface Operand3 {
  t: Tensor;
  batchStride: number;
  rowStride: number;
  colStride: number;
}

/** One kernel shape: WX x WY invocations, each owning TM x TN outputs (multiples of 4); K staged BK at a time. */
interface Tile {
  TM: number;
  TN: number;
  WX: number;
  WY: number;
  BK: number;
}

// CPU adapters want few loads per fma (extra accumulators only spill to L1), GPUs few registers per invocation (4x4
// outputs). 16x16 outputs per invocation: 8 vec4 loads per 256 fmas. Workgroup memory (BM + BN) * BK * 4 bytes =
// 16 KiB, the WebGPU minimum of maxComputeWorkgroupStorageSize.
const CPU_LARGE: Tile = { TM: 16, TN: 16, WX: 8, WY: 8, BK: 16 };
const CPU_SMALL: Tile = { TM: 4, TN: 4, WX: 8, WY: 8, BK: 16 };

function padded(t: Tile, M: number, N: number): number {
  return ceilDiv(M, t.WY * t.TM) * t.WY * t.TM * ceilDiv(N, t.WX * t.TN) * t.WX * t.TN;
}

function tileFor(M: number, N: number): Tile {
  const kind = adapterKind();
  if (kind === 'gpu') {
    // 16x16 invocations of 4x4 outputs; smaller devices get 8x8 (the WGSL minimum limit is 256 invocations)
    const wg = gpu().maxWorkgroupSize >= 256 ? 16 : 8;
    return { TM: 4, TN: 4, WX: wg, WY: wg, BK: 16 };
  }
  // On llvmpipe the large tile computes ~3x more flops per second (docs/benchmarks.md): it wins unless padding M and
  // N up to its 128x128 tiles costs more than that. On SwiftShader it gains 1.2-1.5x for 5x the compile time (4 s).
  if (kind === 'llvmpipe' && padded(CPU_LARGE, M, N) < 3 * padded(CPU_SMALL, M, N)) return CPU_LARGE;
  return CPU_SMALL;
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** The WGSL for one tile shape: shaders/matmul.wgsl with its named-accumulator blocks written out. */
function matmulSource(t: Tile): string {
  const s = (i: number, j: number) => `s${i}_${j}`;
  const comp = (i: number) => 'xyzw'[i & 3];
  const values: Record<string, string | number> = {
    ...t,
    BM: t.WY * t.TM,
    BN: t.WX * t.TN,
    QM: t.TM / 4,
    QN: t.TN / 4,
    ACC_DECL: range(t.TM).map((i) => '  ' + range(t.TN).map((j) => `var ${s(i, j)} = 0.0;`).join(' ')).join('\n'),
    QUADS: [...range(t.TM / 4).map((q) => `let a${q} = av[${q}];`), ...range(t.TN / 4).map((q) => `let b${q} = bv[${q}];`)]
      .map((l) => '      ' + l)
      .join('\n'),
    FMA: range(t.TM)
      .map((i) => '      ' + range(t.TN).map((j) => `${s(i, j)} = fma(a${i >> 2}.${comp(i)}, b${j >> 2}.${comp(j)}, ${s(i, j)});`).join(' '))
      .join('\n'),
    STORE_ROW: range(t.TN).map((j) => `      if (col + ${j}u < p.N) { c[o + ${j}u] = ${s(0, j)}; }`).join('\n'),
    SHIFT_ROWS: range(t.TM - 1).map((i) => '    ' + range(t.TN).map((j) => `${s(i, j)} = ${s(i + 1, j)};`).join(' ')).join('\n'),
  };
  return matmulWgsl.replace(/\{\{(\w+)\}\}/g, (_, name: string) => {
    if (!(name in values)) throw new VoxgradError(`voxgrad internal: matmul.wgsl has no value for {{${name}}}`);
    return String(values[name]);
  });
}

/** C[batch, M, N] = A @ B on the GPU. */
function mm(op: string, A: Operand3, B: Operand3, batch: number, M: number, K: number, N: number): Tensor {
  const out = emptyTensor(op, [batch, M, N], 'f32');
  if (batch * M * N === 0) return out;
  const t = tileFor(M, N);
  const k = kernel(`matmul.${t.TM}x${t.TN}.${t.WX}x${t.WY}.${t.BK}`, () => matmulSource(t));
  const maxZ = gpu().limits.maxComputeWorkgroupsPerDimension;
  if (batch > maxZ) fail(op, `batch of ${batch} matrices exceeds this adapter's ${maxZ} workgroups per dimension; split the batch`);
  const uniforms = {
    M,
    N,
    K,
    sam: A.rowStride,
    sak: A.colStride,
    sbk: B.rowStride,
    sbn: B.colStride,
    aBatch: A.batchStride,
    bBatch: B.batchStride,
  };
  const rowBlocks = ceilDiv(M, t.WY * t.TM);
  const colBlocks = ceilDiv(N, t.WX * t.TN);
  const buffers = [out.buffer(op), A.t.buffer(op), B.t.buffer(op)];
  // one launch per maxZ x maxZ block of tiles (a single one unless M or N is in the millions)
  for (let r0 = 0; r0 < rowBlocks; r0 += maxZ)
    for (let c0 = 0; c0 < colBlocks; c0 += maxZ)
      dispatch(k, buffers, { ...uniforms, rowBlock0: r0, colBlock0: c0 }, [
        Math.min(maxZ, colBlocks - c0),
        Math.min(maxZ, rowBlocks - r0),
        batch,
      ]);
  return out;
}

interface MatmulAttrs {
  batch: number;
  M: number;
  K: number;
  N: number;
  /** batch counts of the stored operands (1 = broadcast) */
  aBatches: number;
  bBatches: number;
  /** operands stored transposed: A as [K, M], B as [N, K] */
  transA: boolean;
  transB: boolean;
}

/** The logical (rows x cols) matrix of a stored operand. */
function view(t: Tensor, batches: number, rows: number, cols: number, transposed: boolean): Operand3 {
  return {
    t,
    batchStride: batches === 1 ? 0 : rows * cols,
    rowStride: transposed ? 1 : cols,
    colStride: transposed ? rows : 1,
  };
}

const T = (o: Operand3): Operand3 => ({ ...o, rowStride: o.colStride, colStride: o.rowStride });

/**
 * The one matmul primitive: stored [aB, M, K] (or [aB, K, M]) @ [bB, K, N] (or [bB, N, K]); each batch count is 1 or
 * the common batch. matmul, bmm and linear reach it after their own checks and reshapes.
 */
const batchedMatmul = defineOp({
  name: 'batchedMatmul',
  dtypes: FLOAT,
  via: 'matmul',
  inputs: ([a, b]) => [a, b],
  forward: (a: Tensor, b: Tensor, transA: boolean, transB: boolean) => {
    const aB = a.shape[0];
    const bB = b.shape[0];
    const [M, K] = transA ? [a.shape[2], a.shape[1]] : [a.shape[1], a.shape[2]];
    const [K2, N] = transB ? [b.shape[2], b.shape[1]] : [b.shape[1], b.shape[2]];
    if (K !== K2) fail('matmul', `inner dimensions differ: ${K} vs ${K2}`);
    const batch = Math.max(aB, bB);
    const out = mm('matmul', view(a, aB, M, K, transA), view(b, bB, K, N, transB), batch, M, K, N);
    const attrs: MatmulAttrs = { batch, M, K, N, aBatches: aB, bBatches: bB, transA, transB };
    return { out, attrs, save: () => [a, b] };
  },
  backward: (g, ctx) => {
    const [a, b] = ctx.saved;
    const { batch, M, K, N, aBatches, bBatches, transA, transB } = ctx.attrs;
    const G: Operand3 = { t: g, batchStride: M * N, rowStride: N, colStride: 1 };
    const A = view(a, aBatches, M, K, transA);
    const B = view(b, bBatches, K, N, transB);
    const op = 'matmul.backward';
    // dA = G B^T (stored transposed: B G^T); dB = A^T G (stored transposed: G^T A)
    const ga = ctx.needsGrad[0] ? (transA ? mm(op, B, T(G), batch, K, N, M) : mm(op, G, T(B), batch, M, N, K)) : null;
    const gb = ctx.needsGrad[1] ? (transB ? mm(op, T(G), A, batch, N, M, K) : mm(op, T(A), G, batch, K, M, N)) : null;
    const fit = (full: Tensor | null, batches: number, shape: readonly number[]) => {
      if (!full) return null;
      const r = sumToShape(full, [batches, full.shape[1], full.shape[2]]);
      return sameShape(r.shape, shape) ? r : r.shareStorage(shape);
    };
    return [fit(ga, aBatches, ctx.inputShapes[0]), fit(gb, bBatches, ctx.inputShapes[1])];
  },
});

/** torch.matmul: 1-D operands are promoted (and the added dim removed), batch dims broadcast. */
export const matmul = defineOp({ name: 'matmul', composite: true, dtypes: FLOAT, forward: matmulForward });

function matmulForward(a: Tensor, b: Tensor): Tensor {
  expectTensor('matmul', 'input', a);
  expectTensor('matmul', 'other', b);
  expectFloat('matmul', 'input', a);
  expectFloat('matmul', 'other', b);
  if (a.ndim === 0 || b.ndim === 0) fail('matmul', `both arguments need at least 1 dimension, got ${fmtShape(a.shape)} and ${fmtShape(b.shape)}`);
  const K = a.shape[a.ndim - 1];
  const Kb = b.shape[b.ndim === 1 ? 0 : b.ndim - 2];
  if (K !== Kb)
    fail('matmul', `shapes ${fmtShape(a.shape)} and ${fmtShape(b.shape)} cannot be multiplied (${K} vs ${Kb} in the contracted dimension)`);
  return tidy(() => {
    const a2 = a.ndim === 1 ? unsqueeze(a, 0) : a;
    const b2 = b.ndim === 1 ? unsqueeze(b, 1) : b;
    const batchA = a2.shape.slice(0, -2);
    const batchB = b2.shape.slice(0, -2);
    // the prefix names the full shapes: the broadcast error itself only sees the batch dims
    const batchShape = broadcastShapes(`matmul: batch dimensions of ${fmtShape(a.shape)} and ${fmtShape(b.shape)}`, [batchA, batchB]);
    const M = a2.shape[a2.ndim - 2];
    const N = b2.shape[b2.ndim - 1];
    const prep = (t: Tensor, own: readonly number[], rows: number, cols: number) => {
      const n = shapeSize(own);
      // a batch that is neither complete nor a single matrix (e.g. [2,1] against [1,3]) is expanded first
      const src = n === 1 || sameShape(own, batchShape) ? t : expand(t, [...batchShape, rows, cols]);
      return reshape(src, [src === t ? n : shapeSize(batchShape), rows, cols]);
    };
    const out3 = batchedMatmul(prep(a2, batchA, M, K), prep(b2, batchB, K, N), false, false);
    let out = reshape(out3, [...batchShape, M, N]);
    if (a.ndim === 1) out = squeeze(out, -2);
    if (b.ndim === 1) out = squeeze(out, -1);
    return out;
  });
}

/** bmm: [B, M, K] @ [B, K, N], no broadcasting (as torch.bmm). */
export const bmm = defineOp({ name: 'bmm', composite: true, dtypes: FLOAT, forward: bmmForward });

function bmmForward(a: Tensor, b: Tensor): Tensor {
  expectTensor('bmm', 'input', a);
  expectTensor('bmm', 'mat2', b);
  expectFloat('bmm', 'input', a);
  expectFloat('bmm', 'mat2', b);
  if (a.ndim !== 3 || b.ndim !== 3 || a.shape[0] !== b.shape[0] || a.shape[2] !== b.shape[1])
    fail('bmm', `expects [B, M, K] and [B, K, N] with the same B and K, got ${fmtShape(a.shape)} and ${fmtShape(b.shape)}`);
  return matmul(a, b);
}

/** linear(x, weight [out, in], bias?) = x @ weight^T + bias, as torch.nn.functional.linear. */
export const linear = defineOp({ name: 'linear', composite: true, dtypes: FLOAT, forward: linearForward });

function linearForward(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  expectTensor('linear', 'input', x);
  expectTensor('linear', 'weight', weight);
  expectFloat('linear', 'input', x);
  expectFloat('linear', 'weight', weight);
  if (bias) {
    expectTensor('linear', 'bias', bias);
    expectFloat('linear', 'bias', bias);
  }
  if (x.ndim === 0) fail('linear', `input needs at least 1 dimension (..., inFeatures), got ${fmtShape(x.shape)}`);
  if (weight.ndim !== 2) fail('linear', `weight must be 2-D [outFeatures, inFeatures], got ${fmtShape(weight.shape)}`);
  if (x.shape[x.ndim - 1] !== weight.shape[1])
    fail('linear', `input's last dim (${x.shape[x.ndim - 1]}) must equal weight's inFeatures (${weight.shape[1]}); input ${fmtShape(x.shape)}, weight ${fmtShape(weight.shape)}`);
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== weight.shape[0]))
    fail('linear', `bias must have shape [${weight.shape[0]}], got ${fmtShape(bias.shape)}`);
  return tidy(() => {
    // weight [out, in] is read transposed in place: no copy
    const lead = x.shape.slice(0, -1);
    const x3 = reshape(x, [1, shapeSize(lead), weight.shape[1]]);
    const w3 = reshape(weight, [1, weight.shape[0], weight.shape[1]]);
    const y = reshape(batchedMatmul(x3, w3, false, true), [...lead, weight.shape[0]]);
    return bias ? elementwise('add', [y, bias]) : y;
  });
}
