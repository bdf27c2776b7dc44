#!/usr/bin/python3
"""Writes the ONNX models `npm run bench` gives onnxruntime-node (bench/ort.mjs), and manifest.json describing them.

Run from the repository root with Debian's torch (python3-torch 1.13, which /usr/bin/python3 imports):
    /usr/bin/python3 bench/models/gen_models.py

Each model is one Conv (no bias) whose weight is an initializer filled by mulberry32, the generator bench/data.mjs uses,
with the seed recorded in manifest.json: the benchmark rebuilds the same weight in JS for voxgrad and tfjs, so every
engine sees identical inputs (and the benchmark compares their outputs).
"""
import json
import os

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
M32 = 0xFFFFFFFF

# name -> input shape [N, C, ...spatial], output channels, kernel size, padding, weight seed
MODELS = {
    'conv2d_1x64x128x128_k3_64': dict(x=[1, 64, 128, 128], cout=64, k=3, pad=1, seed=2001),
    'conv3d_1x16x32_k3_16': dict(x=[1, 16, 32, 32, 32], cout=16, k=3, pad=1, seed=3001),
    'conv3d_1x16x64_k3_16': dict(x=[1, 16, 64, 64, 64], cout=16, k=3, pad=1, seed=3002),
    'conv3d_2x32x32_k3_32': dict(x=[2, 32, 32, 32, 32], cout=32, k=3, pad=1, seed=3003),
}


def imul(a, b):
    return (a * b) & M32


def mulberry32(n, seed):
    """Same stream as randomData(n, seed) in bench/data.mjs: values in [-1, 1), float32."""
    s = seed & M32
    out = np.empty(n, dtype=np.float64)
    for i in range(n):
        s = (s + 0x6D2B79F5) & M32
        t = imul(s ^ (s >> 15), s | 1)
        t ^= (t + imul(t ^ (t >> 7), t | 61)) & M32
        out[i] = ((t ^ (t >> 14)) / 4294967296) * 2 - 1
    return out.astype(np.float32)


def main():
    torch.set_num_threads(2)
    manifest = {}
    for name, m in MODELS.items():
        nd = len(m['x']) - 2
        cin = m['x'][1]
        w_shape = [m['cout'], cin] + [m['k']] * nd
        conv = (torch.nn.Conv2d if nd == 2 else torch.nn.Conv3d)(cin, m['cout'], m['k'], padding=m['pad'], bias=False)
        w = mulberry32(int(np.prod(w_shape)), m['seed']).reshape(w_shape)
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(w))
        conv.eval()
        path = os.path.join(HERE, name + '.onnx')
        torch.onnx.export(conv, torch.zeros(m['x']), path, input_names=['x'], output_names=['y'], opset_version=17,
                          do_constant_folding=True)
        manifest[name] = dict(file=name + '.onnx', xShape=m['x'], wShape=w_shape, wSeed=m['seed'], padding=m['pad'],
                              bytes=os.path.getsize(path))
        print(f'{name}.onnx  {os.path.getsize(path)} bytes')
    with open(os.path.join(HERE, 'manifest.json'), 'w') as f:
        json.dump(manifest, f, indent=2)
        f.write('\n')


if __name__ == '__main__':
    main()
