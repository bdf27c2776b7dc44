// Batched matmul C[b] = A[b] (M x K) * B[b] (K x N), f32, tiled through workgroup memory.
// A(m, k) is read at aOff + b*aBatch + m*sam + k*sak, B(k, n) at b*bBatch + k*sbk + n*sbn: transposed operands
// are just other strides, so backward passes need no transposed copies. C is contiguous [batch, M, N].
// Mapping: workgroup (x, y, z) computes the {{BM}}x{{BN}} tile of C at column block x, row block y, batch z;
// its {{TX}}x{{TY}} invocations each own a 4x4 block (4 vec4 accumulators). K advances in steps of {{BK}}, with
// the A and B tiles staged in workgroup memory ([k][m] and [k][n], read as vec4).
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
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> c: array<f32>;
@group(0) @binding(2) var<storage, read> a: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;

const BM = {{BM}}u;
const BN = {{BN}}u;
const BK = {{BK}}u;
const THREADS = {{TX}}u * {{TY}}u;

var<workgroup> As: array<vec4<f32>, {{BK}} * {{BM}} / 4>;
var<workgroup> Bs: array<vec4<f32>, {{BK}} * {{BN}} / 4>;

@compute @workgroup_size({{TX}}, {{TY}}, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let tid = lid.y * {{TX}}u + lid.x;
  let row0 = wid.y * BM;
  let col0 = wid.x * BN;
  let aBase = wid.z * p.aBatch;
  let bBase = wid.z * p.bBatch;
  var acc0 = vec4<f32>(0.0);
  var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0);
  var acc3 = vec4<f32>(0.0);
  for (var k0 = 0u; k0 < p.K; k0 += BK) {
    for (var l = tid; l < BM * BK; l += THREADS) {
      let m = l / BK;
      let k = l % BK;
      let gm = row0 + m;
      let gk = k0 + k;
      var v = 0.0;
      if (gm < p.M && gk < p.K) {
        v = a[aBase + gm * p.sam + gk * p.sak];
      }
      As[(k * BM + m) / 4u][m % 4u] = v;
    }
    for (var l = tid; l < BN * BK; l += THREADS) {
      let n = l % BN;
      let k = l / BN;
      let gn = col0 + n;
      let gk = k0 + k;
      var v = 0.0;
      if (gn < p.N && gk < p.K) {
        v = b[bBase + gk * p.sbk + gn * p.sbn];
      }
      Bs[(k * BN + n) / 4u][n % 4u] = v;
    }
    workgroupBarrier();
    for (var k = 0u; k < BK; k++) {
      let av = As[(k * BM) / 4u + lid.y];
      let bv = Bs[(k * BN) / 4u + lid.x];
      acc0 = fma(vec4<f32>(av.x), bv, acc0);
      acc1 = fma(vec4<f32>(av.y), bv, acc1);
      acc2 = fma(vec4<f32>(av.z), bv, acc2);
      acc3 = fma(vec4<f32>(av.w), bv, acc3);
    }
    workgroupBarrier();
  }
  let cBase = wid.z * p.M * p.N;
  let r = row0 + lid.y * 4u;
  let col = col0 + lid.x * 4u;
  store_row(cBase, r, col, acc0);
  store_row(cBase, r + 1u, col, acc1);
  store_row(cBase, r + 2u, col, acc2);
  store_row(cBase, r + 3u, col, acc3);
}

fn store_row(base: u32, r: u32, col: u32, v: vec4<f32>) {
  if (r >= p.M) {
    return;
  }
  let o = base + r * p.N + col;
  if (col < p.N) { c[o] = v.x; }
  if (col + 1u < p.N) { c[o + 1u] = v.y; }
  if (col + 2u < p.N) { c[o + 2u] = v.z; }
  if (col + 3u < p.N) { c[o + 3u] = v.w; }
}
