#!/usr/bin/python3
"""PyTorch CPU side of bench/registration.mjs: VoxelMorph training steps (forward, MSE + Grad loss, backward, Adam) with
the reference architecture of test/fixtures/torch_registration.py, 2 threads, float32, served one step per request so
the bench can alternate the engines step by step (load then hits both alike).

Usage: /usr/bin/python3 bench/torch_registration_step.py, then one JSON command per line on stdin:
  {"cmd": "setup", "inshape": [128, 128], "batch": 8}  builds the network, optimiser and inputs (seed 0)
  {"cmd": "step"}                                       runs one step
  {"cmd": "quit"}
Each command is answered by one JSON line on stdout: {"ok": true, "torch": version, "threads": 2} for setup,
{"ok": true, "ms": wall ms of the step, "peakRssMb": ...} for a step, {"ok": false, "error": ...} on failure.
"""
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures'))
from torch_registration import VxmDense  # noqa: E402
from step_server import optimiser_step, serve  # noqa: E402


def grad_loss(flow, mult):
    nd = flow.dim() - 2
    terms = [torch.mean(torch.diff(flow, dim=d + 2) ** 2) for d in range(nd)]
    return sum(terms) / nd * mult


def build(inshape, batch):
    torch.manual_seed(0)
    net = VxmDense(inshape, [[16, 32, 32, 32], [32, 32, 32, 32, 32, 16, 16]], int_steps=7, int_downsize=2, bidir=False)
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    src = torch.rand([batch, 1, *inshape])
    tgt = torch.rand([batch, 1, *inshape])

    def loss():
        out = net(src, tgt)
        return torch.mean((out['ySource'] - tgt) ** 2) + 0.01 * grad_loss(out['preintFlow'], 2)

    return optimiser_step(loss, opt)


if __name__ == '__main__':
    serve(lambda cmd: build(cmd['inshape'], cmd['batch']))
