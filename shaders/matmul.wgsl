// Batched matmul C[b] = A[b] (M x K) * B[b] (K x N), f32, tiled through workgroup memory.
// A(m, k) is read at b*aBatch + m*sam + k*sak, B(k, n) at b*bBatch + k*sbk + n*sbn: transposed operands are just
// other strides, so backward passes need no transposed copies. C is contiguous [batch, M, N].
// Mapping: workgroup (x, y, z) computes the {{BM}}x{{BN}} tile of C at column block x, row block y, batch z.
// Its {{WX}}x{{WY}} invocations each own a {{TM}}x{{TN}} block: invocation (tx, ty) holds rows ty*{{TM}} .. +{{TM}}
// and columns tx*{{TN}} .. +{{TN}} of the tile in named scalar accumulators s<row>_<col> (matmul.ts writes the
// {{...}} blocks). K advances in steps of {{BK}}; per step the A and B tiles are staged in workgroup memory:
// As[k*{{WY}} + ty][q] holds rows ty*{{TM}} + 4q .. +3 at k, Bs[k*{{WX}} + tx][q] columns tx*{{TN}} + 4q .. +3, so each
// invocation fetches its whole slice of a k-row with one load per operand. Reads are clamped into range, so the
// loops have no branches: clamped rows and columns only reach outputs that are never stored, and k past K is staged
// as zeros in both tiles (zeroing one would not do: 0 * inf from the other is NaN).
// Why scalar accumulators and few memory-access sites: on CPU adapters (llvmpipe) every load or store site
// becomes a per-lane loop, costing far more than an fma and compiling to a lot of code; see docs/benchmarks.md.
struct Params {
  M: u32,
  N: u32,
  K: u32,
  sam: u32,
  sak: u32,
  sbk: u32,
  sbn: u32,
  aBatch: u32,
  bBatch: u32,
  // first row/column block of this launch: grids larger than maxComputeWorkgroupsPerDimension are split
  rowBlock0: u32,
  colBlock0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> c: array<f32>;
@group(0) @binding(2) var<storage, read> a: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;

const BK = {{BK}}u;
const THREADS = {{WX}}u * {{WY}}u;

var<workgroup> As: array<array<vec4<f32>, {{QM}}>, {{BK}} * {{WY}}>;
var<workgroup> Bs: array<array<vec4<f32>, {{QN}}>, {{BK}} * {{WX}}>;

@compute @workgroup_size({{WX}}, {{WY}}, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let tid = lid.y * {{WX}}u + lid.x;
  let row0 = (wid.y + p.rowBlock0) * {{BM}}u;
  let col0 = (wid.x + p.colBlock0) * {{BN}}u;
  let aBase = wid.z * p.aBatch;
  let bBase = wid.z * p.bBatch;
  let quad = vec4<u32>(0u, 1u, 2u, 3u);
{{ACC_DECL}}
  for (var k0 = 0u; k0 < p.K; k0 += BK) {
    // stage A: slot l = 4 consecutive rows (m4*4 .. +3) at one k
    for (var l = tid; l < {{BM}}u / 4u * BK; l += THREADS) {
      let m4 = l % ({{BM}}u / 4u);
      let k = l / ({{BM}}u / 4u);
      let gk = k0 + k;
      let o = aBase + min(gk, p.K - 1u) * p.sak;
      let m = min(vec4<u32>(row0 + m4 * 4u) + quad, vec4<u32>(p.M - 1u)) * p.sam;
      let v = vec4<f32>(a[o + m.x], a[o + m.y], a[o + m.z], a[o + m.w]);
      As[k * {{WY}}u + m4 / {{QM}}u][m4 % {{QM}}u] = select(vec4<f32>(0.0), v, gk < p.K);
    }
    // stage B: slot l = 4 consecutive columns at one k
    for (var l = tid; l < {{BN}}u / 4u * BK; l += THREADS) {
      let n4 = l % ({{BN}}u / 4u);
      let k = l / ({{BN}}u / 4u);
      let gk = k0 + k;
      let o = bBase + min(gk, p.K - 1u) * p.sbk;
      let n = min(vec4<u32>(col0 + n4 * 4u) + quad, vec4<u32>(p.N - 1u)) * p.sbn;
      let v = vec4<f32>(b[o + n.x], b[o + n.y], b[o + n.z], b[o + n.w]);
      Bs[k * {{WX}}u + n4 / {{QN}}u][n4 % {{QN}}u] = select(vec4<f32>(0.0), v, gk < p.K);
    }
    workgroupBarrier();
    for (var k = 0u; k < BK; k++) {
      let av = As[k * {{WY}}u + lid.y];
      let bv = Bs[k * {{WX}}u + lid.x];
{{QUADS}}
{{FMA}}
    }
    workgroupBarrier();
  }
  // One row per iteration, then the rows shift up: a handful of store sites instead of {{TM}}x{{TN}}.
  let cBase = wid.z * p.M * p.N;
  let col = col0 + lid.x * {{TN}}u;
  for (var i = 0u; i < {{TM}}u; i++) {
    let r = row0 + lid.y * {{TM}}u + i;
    if (r < p.M) {
      let o = cBase + r * p.N + col;
{{STORE_ROW}}
    }
{{SHIFT_ROWS}}
  }
}
