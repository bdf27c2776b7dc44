#!/usr/bin/python3
"""PyTorch CPU side of bench/clip.mjs's pretraining row: one contrastive step of the CLIP recipe's small CLIP (forward
of both towers, CLIP's symmetric cross-entropy over the batch's image-caption logits, backward, AdamW), with
test/fixtures/gen_clip.py's CLIP (the reference of the parity tests), float32, 2 threads, served one step per request
so that the bench can alternate the engines step by step.

Usage: /usr/bin/python3 bench/torch_clip_step.py, then one JSON command per line on stdin:
  {"cmd": "setup", "config": {gen_clip.py's CLIP keys}, "batch": 256, "lr": 0.001, "weightDecay": 0.1, "file": path}
      builds the model (gen_clip.py's randomise, generator seed 16), a batch of images in [-1, 1) and token rows
      (gen_clip.py's tokens: end-of-text = the largest id), the AdamW optimiser; writes the weights (OpenAI keys) and
      the batch (input.image, input.text) to `file` as safetensors, so that voxgrad starts from the same values
  {"cmd": "step"}   one step on that batch
  {"cmd": "quit"}
Each command is answered by one JSON line: {"ok": true, "torch": version, "threads": 2} for setup, {"ok": true,
"ms": wall ms of the step, "loss": the step's loss, "peakRssMb": ...} for a step, {"ok": false, "error": ...} on failure.
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures'))
from fixture_io import safetensors_bytes  # noqa: E402
from gen_clip import CLIP, g, randomise, tokens  # noqa: E402
from step_server import optimiser_step, serve  # noqa: E402


def build(cmd):
    c, B = cmd['config'], cmd['batch']
    model = CLIP(c)
    randomise(model)
    model.train()
    R, L = c['image_resolution'], c['context_length']
    image = torch.rand(B, 3, R, R, generator=g) * 2 - 1
    lengths = torch.randint(3, L + 1, (B,), generator=g).tolist()
    text = tokens(B, L, c['vocab_size'], lengths)
    entries = {k: ('F32', list(v.shape), v.detach().numpy().reshape(-1)) for k, v in model.state_dict().items()}
    entries['input.image'] = ('F32', list(image.shape), image.numpy().reshape(-1))
    entries['input.text'] = ('I32', list(text.shape), text.numpy().reshape(-1))
    with open(cmd['file'], 'wb') as f:
        f.write(safetensors_bytes(entries))
    opt = torch.optim.AdamW(model.parameters(), lr=cmd['lr'], weight_decay=cmd['weightDecay'])
    y = torch.arange(B)

    def loss():
        _, _, logits = model(image, text)
        return (F.cross_entropy(logits, y) + F.cross_entropy(logits.t(), y)) / 2

    return optimiser_step(loss, opt)


if __name__ == '__main__':
    serve(build)
