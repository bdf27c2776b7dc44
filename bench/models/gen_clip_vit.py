#!/usr/bin/python3
"""Writes CLIP ViT-B/32's image tower for bench/clip.mjs: an ONNX model for onnxruntime-node and the same weights as
safetensors with OpenAI's key names (visual.*) for voxgrad. About 350 MB each, so they are not committed: bench/clip.mjs
runs this on demand into bench/models/cache/ (gitignored) and reuses the files while clip_vit_b32_n<batch>.json
describes them. The ONNX graph has a fixed batch (clip_vit_b32_n<batch>.onnx); the weights do not depend on it.

Run from the repository root with Debian's torch (python3-torch 1.13, which /usr/bin/python3 imports; the `onnx` module
is not needed by the exporter):
    /usr/bin/python3 bench/models/gen_clip_vit.py [out_dir] [batch]

The architecture is test/fixtures/gen_clip.py's ViT (the PyTorch reference the CLIP parity tests use), at ViT-B/32's
sizes: 224², patch 32, width 768, 12 layers, 12 heads, output 512. Weights: that file's randomise() (every matrix
N(0, 1/fan_in), norm gains 1 + N(0, 0.1²), biases and embeddings N(0, 0.1²)), float32, generator seed 16.
"""
import json
import os
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', '..', 'test', 'fixtures'))
from fixture_io import safetensors_bytes  # noqa: E402
from gen_clip import ViT, randomise  # noqa: E402

CONFIG = dict(resolution=224, patch=32, width=768, layers=12, heads=12, out=512)


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, 'cache')
    batch = int(sys.argv[2]) if len(sys.argv) > 2 else 32
    os.makedirs(out_dir, exist_ok=True)
    torch.set_num_threads(2)
    t0 = time.time()
    c = CONFIG
    vit = ViT(c['resolution'], c['patch'], c['width'], c['layers'], c['heads'], c['out'])
    randomise(vit)
    vit.eval()
    onnx_path = os.path.join(out_dir, f'clip_vit_b32_n{batch}.onnx')
    x = torch.zeros(batch, 3, c['resolution'], c['resolution'])
    with torch.no_grad():
        torch.onnx.export(vit, x, onnx_path, input_names=['x'], output_names=['y'], opset_version=17, do_constant_folding=True)
    st_path = os.path.join(out_dir, 'clip_vit_b32.safetensors')
    tensors = {'visual.' + k: ('F32', list(v.shape), v.detach().numpy().reshape(-1)) for k, v in vit.state_dict().items()}
    with open(st_path, 'wb') as f:
        f.write(safetensors_bytes(tensors))
    params = sum(v.numel() for v in vit.state_dict().values())
    manifest = dict(config=c, batch=batch, params=params, onnx=os.path.basename(onnx_path), onnxBytes=os.path.getsize(onnx_path),
                    safetensors=os.path.basename(st_path), safetensorsBytes=os.path.getsize(st_path), torch=torch.__version__,
                    seconds=round(time.time() - t0, 1))
    with open(os.path.join(out_dir, f'clip_vit_b32_n{batch}.json'), 'w') as f:
        json.dump(manifest, f, indent=2)
        f.write('\n')
    print(json.dumps(manifest))


if __name__ == '__main__':
    main()
