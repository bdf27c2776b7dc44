// PyTorch CPU as the labelled reference where no WebGPU peer has the op: bench/torch_ref.py in a child process
// (Debian's /usr/bin/python3 with torch, 2 threads), fed the very arrays voxgrad got through files in a temporary
// directory (/dev/shm when there is one). It runs while no GPU work is in flight, so it does not share the cores with
// the GPU engines' timed runs.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { median } from './stats.mjs';

const PYTHON = process.env.VOXGRAD_BENCH_PYTHON ?? '/usr/bin/python3';
const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'torch_ref.py');

/**
 * jobs: [{ name, op, inputs: { arg: { data: Float32Array, shape } }, repeats }] (the upstream gradient is input `gy`).
 * Returns { ok, version, results: { name: { fwdMs, bwdMs, fwdSamplesMs, bwdSamplesMs, outputs: Float32Array[] } } }
 * or { ok: false, error }.
 */
export function runTorch(jobs) {
  if (!existsSync(PYTHON)) return { ok: false, error: `${PYTHON} not found (PyTorch reference skipped)` };
  const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'voxgrad-bench-'));
  try {
    const spec = jobs.map((j) => {
      const inputs = {};
      for (const [k, { data, shape }] of Object.entries(j.inputs)) {
        const file = `${j.name}.in.${k}.f32`;
        writeFileSync(join(dir, file), new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
        inputs[k] = [file, shape];
      }
      return { name: j.name, op: j.op, inputs, repeats: j.repeats };
    });
    writeFileSync(join(dir, 'jobs.json'), JSON.stringify(spec));
    const r = spawnSync(PYTHON, [SCRIPT, dir], { encoding: 'utf8', timeout: 300_000, maxBuffer: 16 << 20 });
    const line = r.stdout?.trim().split('\n').at(-1);
    if (r.status !== 0 || !line?.startsWith('{'))
      return { ok: false, error: `torch reference failed (exit ${r.status}): ${(r.stderr || r.error?.message || '').trim().split('\n').at(-1)}` };
    const raw = JSON.parse(line);
    const results = {};
    let version = null;
    let blas = [];
    for (const [name, v] of Object.entries(raw)) {
      version = v.torch;
      blas = v.blas ?? [];
      results[name] = {
        fwdMs: median(v.fwdMs),
        bwdMs: median(v.bwdMs),
        fwdSamplesMs: v.fwdMs,
        bwdSamplesMs: v.bwdMs,
        threads: v.threads,
        outputs: v.outputs.map((f) => {
          const b = readFileSync(join(dir, f));
          return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4).slice();
        }),
      };
    }
    return { ok: true, version, blas: blasNote(blas), results };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The BLAS PyTorch runs on, for the bench's headers: Debian's torch takes whichever libblas.so.3 the alternatives
 * system points to, and its reference BLAS (.../blas/) made the VoxelMorph-3D step 3.5x slower than OpenBLAS.
 */
export function blasNote(paths) {
  const names = paths.map((p) => p.split('/').slice(-2).join('/'));
  const reference = paths.some((p) => /\/blas\/libblas/.test(p));
  return `BLAS ${names.join(', ') || 'none mapped'}${reference ? ' (the reference BLAS: install libopenblas0 for a fair PyTorch)' : ''}`;
}

/**
 * A persistent PyTorch child process serving one step per request, so that the engines can alternate step by step:
 * `script` reads one JSON command per line on stdin and answers each with one JSON line; request(cmd) sends one and
 * resolves with the reply. Returns { error } when there is no Python.
 */
export function torchServer(script) {
  if (!existsSync(PYTHON)) return { error: `${PYTHON} not found` };
  const child = spawn(PYTHON, [script], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr = (stderr + d).slice(-2000)));
  // a child that died at start (no torch for this Python) closes its stdin: the reply below then says why
  child.stdin.on('error', () => {});
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const request = async (cmd) => {
    child.stdin.write(JSON.stringify(cmd) + '\n');
    const { value, done } = await lines.next();
    if (done) return { ok: false, error: `torch server exited (${child.exitCode}): ${stderr.trim().split('\n').at(-1)}` };
    return JSON.parse(value);
  };
  const close = () => {
    child.stdin.end(JSON.stringify({ cmd: 'quit' }) + '\n');
  };
  return { request, close };
}
