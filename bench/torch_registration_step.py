#!/usr/bin/python3
"""PyTorch CPU side of bench/registration.mjs: one VoxelMorph training step (forward, MSE + Grad loss, backward, Adam)
with the reference architecture of test/fixtures/torch_registration.py, 2 threads, float32.

Usage: /usr/bin/python3 bench/torch_registration_step.py '{"inshape": [128, 128], "batch": 8, "repeats": 3}'
Prints one JSON line: {"torch": version, "threads": 2, "stepMs": [...], "peakRssMb": ...}.
"""
import json
import os
import resource
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures'))
from torch_registration import VxmDense  # noqa: E402


def grad_loss(flow, mult):
    nd = flow.dim() - 2
    terms = [torch.mean(torch.diff(flow, dim=d + 2) ** 2) for d in range(nd)]
    return sum(terms) / nd * mult


def main():
    torch.set_num_threads(2)
    spec = json.loads(sys.argv[1])
    inshape, batch, repeats = spec['inshape'], spec['batch'], spec['repeats']
    torch.manual_seed(0)
    net = VxmDense(inshape, [[16, 32, 32, 32], [32, 32, 32, 32, 32, 16, 16]], int_steps=7, int_downsize=2, bidir=False)
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    src = torch.rand([batch, 1, *inshape])
    tgt = torch.rand([batch, 1, *inshape])

    def step():
        out = net(src, tgt)
        loss = torch.mean((out['ySource'] - tgt) ** 2) + 0.01 * grad_loss(out['preintFlow'], 2)
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        step()
        times.append((time.perf_counter() - t) * 1000)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({'torch': torch.__version__, 'threads': torch.get_num_threads(), 'stepMs': times, 'peakRssMb': rss}))


if __name__ == '__main__':
    main()
