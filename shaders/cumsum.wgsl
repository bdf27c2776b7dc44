// Inclusive prefix sum ({{T}}) along one dim of a contiguous tensor viewed as [outer, n, inner].
// Line l = (o, i) with o = l / inner, i = l % inner starts at o·n·inner + i; its element j sits at +j·inner.
// With p.reverse = 1 the line is read from its end (position j ↔ element n − 1 − j): the reverse cumsum that is
// cumsum's backward. Integer sums wrap around on overflow (two's complement, like i32 arithmetic everywhere).
// Mapping, TILED layout: workgroup w scans tile w % p.tiles of line w / p.tiles (TILE = ITEMS·{{WG}} positions):
// the tile is loaded into workgroup memory with consecutive invocations on consecutive positions, each invocation
// scans ITEMS neighbours, a Hillis–Steele scan over the {{WG}} invocation totals gives their offsets, and the tile's
// total goes to sums[line · p.tiles + tile] (the host scans those and adds them back with the ADD_CARRY layout:
// out[tile t > 0] += scanned[t − 1]).
// CHUNKED layout (CPU adapters): invocation i scans chunk c = i % p.tiles of line i / p.tiles, ITEMS consecutive
// positions, with no workgroup memory and no barrier (on llvmpipe a barrier switches every SIMD group of the
// workgroup, and each pass through workgroup memory is another load and store per element): the TOTALS entry
// writes each chunk's sum to sums[i], the host scans those, and the scan entry starts each chunk from the scanned
// sum of the chunks before it (scanned[i - 1]). Every element is loaded twice and stored once.
// THREAD layout: one invocation per line, a sequential loop (many short lines).
struct Params {
  lines: u32,
  n: u32,
  inner: u32,
  reverse: u32,
  tiles: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
#if ADD_CARRY
@group(0) @binding(1) var<storage, read_write> out: array<{{T}}>;
@group(0) @binding(2) var<storage, read> scanned: array<{{T}}>;
#else
#if TOTALS
@group(0) @binding(1) var<storage, read_write> sums: array<{{T}}>;
@group(0) @binding(2) var<storage, read> x: array<{{T}}>;
#else
#if CHUNKED
@group(0) @binding(1) var<storage, read_write> out: array<{{T}}>;
@group(0) @binding(2) var<storage, read> x: array<{{T}}>;
@group(0) @binding(3) var<storage, read> scanned: array<{{T}}>;
#else
@group(0) @binding(1) var<storage, read_write> out: array<{{T}}>;
@group(0) @binding(2) var<storage, read> x: array<{{T}}>;
#if TILED
@group(0) @binding(3) var<storage, read_write> sums: array<{{T}}>;
#endif
#endif
#endif
#endif

const ITEMS = {{ITEMS}}u;
const TILE = ITEMS * {{WG}}u;

fn address(line: u32, j: u32) -> u32 {
  let o = line / p.inner;
  let i = line - o * p.inner;
  let pos = select(j, p.n - 1u - j, p.reverse != 0u);
  return (o * p.n + pos) * p.inner + i;
}

#if TILED
var<workgroup> tile: array<{{T}}, TILE>;
var<workgroup> totals: array<{{T}}, {{WG}}>;
#endif

@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
#if TILED
  let w = flat_workgroup(wid, nwg);
  let line = w / p.tiles;
  if (line >= p.lines) {
    return; // the whole workgroup leaves together
  }
  let t = w - line * p.tiles;
  let start = t * TILE;
  let count = min(TILE, p.n - start);
#if ADD_CARRY
  if (t == 0u) {
    return;
  }
  let carry = scanned[line * p.tiles + t - 1u];
  for (var j = lid; j < count; j += {{WG}}u) {
    let a = address(line, start + j);
    out[a] = out[a] + carry;
  }
#else
  for (var j = lid; j < TILE; j += {{WG}}u) {
    tile[j] = select({{T}}(0), x[address(line, start + min(j, count - 1u))], j < count);
  }
  workgroupBarrier();
  // each invocation scans its ITEMS neighbours in place
  var run = {{T}}(0);
  for (var q = 0u; q < ITEMS; q++) {
    run += tile[lid * ITEMS + q];
    tile[lid * ITEMS + q] = run;
  }
  totals[lid] = run;
  workgroupBarrier();
  // inclusive Hillis–Steele scan of the invocation totals (read, barrier, write, barrier)
  for (var s = 1u; s < {{WG}}u; s = s * 2u) {
    var add = {{T}}(0);
    if (lid >= s) {
      add = totals[lid - s];
    }
    workgroupBarrier();
    totals[lid] += add;
    workgroupBarrier();
  }
  var offset = {{T}}(0);
  if (lid > 0u) {
    offset = totals[lid - 1u];
  }
  for (var q = 0u; q < ITEMS; q++) {
    tile[lid * ITEMS + q] += offset;
  }
  workgroupBarrier();
  for (var j = lid; j < count; j += {{WG}}u) {
    out[address(line, start + j)] = tile[j];
  }
  if (lid == 0u) {
    sums[w] = totals[{{WG}}u - 1u];
  }
#endif
#else
#if CHUNKED
  let i = flat_workgroup(wid, nwg) * {{WG}}u + lid;
  let line = i / p.tiles;
  if (line >= p.lines) {
    return;
  }
  let start = (i - line * p.tiles) * ITEMS;
  let count = min(ITEMS, p.n - start);
  var run = {{T}}(0);
#if TOTALS
  for (var j = 0u; j < count; j++) {
    run += x[address(line, start + j)];
  }
  sums[i] = run;
#else
  if (start > 0u) {
    run = scanned[i - 1u];
  }
  for (var j = 0u; j < count; j++) {
    let a = address(line, start + j);
    run += x[a];
    out[a] = run;
  }
#endif
#else
  let line = flat_workgroup(wid, nwg) * {{WG}}u + lid;
  if (line >= p.lines) {
    return;
  }
  var run = {{T}}(0);
  for (var j = 0u; j < p.n; j++) {
    let a = address(line, j);
    run += x[a];
    out[a] = run;
  }
#endif
#endif
}
