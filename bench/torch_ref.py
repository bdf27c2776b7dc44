#!/usr/bin/python3
"""PyTorch CPU reference for the benchmark rows no WebGPU peer has (bench/spatial.mjs, bench/poolnorm.mjs).

Usage: /usr/bin/python3 bench/torch_ref.py DIR     (Debian's python3-torch 1.13, which /usr/bin/python3 imports)

DIR/jobs.json lists jobs {name, op, inputs: {arg: [file, shape]}, repeats}; each input is raw little-endian float32
written by the benchmark (the same arrays voxgrad got). For each job this runs the op on the CPU with 2 threads, once
to warm up, then `repeats` timed forwards (under no_grad) and `repeats` timed backwards (torch.autograd.grad of the
output against the upstream gradient `gy`, after an untimed forward), and writes the output and the gradients to
DIR/<name>.<k>.f32 for the benchmark to compare. Prints one JSON line: {name: {fwdMs: [...], bwdMs: [...], outputs}}.
"""
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from step_server import blas_libraries  # noqa: E402


def grid_sample(a):
    return F.grid_sample(a['input'], a['grid'], mode='bilinear', padding_mode='zeros', align_corners=False), ['input', 'grid']


def upsample(a):
    return F.interpolate(a['x'], scale_factor=2, mode='trilinear', align_corners=False), ['x']


def group_norm(a):
    return F.group_norm(a['x'], 8, a['weight'], a['bias'], eps=1e-5), ['x', 'weight', 'bias']


OPS = {'grid_sample': grid_sample, 'upsample': upsample, 'group_norm': group_norm}


def main():
    torch.set_num_threads(2)
    d = sys.argv[1]
    with open(os.path.join(d, 'jobs.json')) as f:
        jobs = json.load(f)
    results = {}
    for job in jobs:
        a = {k: torch.from_numpy(np.fromfile(os.path.join(d, file), dtype='<f4').reshape(shape)) for k, (file, shape) in job['inputs'].items()}
        fn = OPS[job['op']]
        gy = a.pop('gy')
        _, leaves = fn(a)
        for k in leaves:
            a[k].requires_grad_(True)
        # warm-up, and the values the benchmark compares
        y, _ = fn(a)
        grads = torch.autograd.grad(y, [a[k] for k in leaves], gy)
        outs = [y.detach()] + list(grads)
        files = []
        for i, t in enumerate(outs):
            name = f"{job['name']}.{i}.f32"
            t.contiguous().numpy().astype('<f4').tofile(os.path.join(d, name))
            files.append(name)
        del y, grads, outs
        fwd, bwd = [], []
        for _ in range(job['repeats']):
            with torch.no_grad():
                t0 = time.perf_counter()
                y, _ = fn(a)
                fwd.append((time.perf_counter() - t0) * 1000)
            del y
            y, _ = fn(a)
            t0 = time.perf_counter()
            g = torch.autograd.grad(y, [a[k] for k in leaves], gy)
            bwd.append((time.perf_counter() - t0) * 1000)
            del y, g
        results[job['name']] = {'fwdMs': fwd, 'bwdMs': bwd, 'outputs': files, 'threads': torch.get_num_threads(), 'torch': torch.__version__,
                                'blas': blas_libraries()}
    print(json.dumps(results))


if __name__ == '__main__':
    main()
