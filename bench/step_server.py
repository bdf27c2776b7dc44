"""The request loop the PyTorch step servers share (bench/torch_*_step.py, driven by bench/torchref.mjs): one JSON
command per stdin line, one JSON reply per stdout line, 2 threads. `build(cmd)` answers a setup command with the step
function; a step's reply carries its wall ms, its loss when the step returns one, and the process's peak RSS."""
import json
import os
import resource
import sys
import time
import traceback

import torch


def optimiser_step(compute_loss, opt):
    """The step function of a server: compute_loss() on the fixed batch, backward, one optimiser step; returns the loss."""
    def step():
        loss = compute_loss()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    return step


def blas_libraries():
    """The BLAS shared libraries this process has mapped (Linux): Debian's torch runs on whichever libblas.so.3 the
    alternatives system points to, and the reference BLAS made the VoxelMorph-3D step 3.5x slower than OpenBLAS."""
    try:
        with open('/proc/self/maps') as f:
            paths = {line.split()[-1] for line in f if 'blas' in line.rsplit('/', 1)[-1]}
        return sorted(os.path.realpath(p) for p in paths)
    except OSError:
        return []


def serve(build):
    torch.set_num_threads(2)
    step = None
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            cmd = json.loads(line)
            if cmd['cmd'] == 'quit':
                break
            if cmd['cmd'] == 'setup':
                step = build(cmd)
                reply = {'ok': True, 'torch': torch.__version__, 'threads': torch.get_num_threads(), 'blas': blas_libraries()}
            elif cmd['cmd'] == 'step':
                t = time.perf_counter()
                loss = step()
                ms = (time.perf_counter() - t) * 1000
                reply = {'ok': True, 'ms': ms, 'peakRssMb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
                if loss is not None:
                    reply['loss'] = loss
            else:
                reply = {'ok': False, 'error': f"unknown command {cmd['cmd']!r}"}
        except Exception as e:  # the bench reports it and goes on without torch
            reply = {'ok': False, 'error': f'{type(e).__name__}: {e}', 'trace': traceback.format_exc()}
        print(json.dumps(reply), flush=True)
