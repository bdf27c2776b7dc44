#!/usr/bin/python3
"""PyTorch CPU side of bench/semiseg.mjs: one ACTION fine-tuning step at the `seg` recipe's defaults, float32, 2 threads.

The step: teacher forward on the unlabelled images (pseudo-labels, confidences), CutMix with the next image, student
forward on labelled + mixed images returning the decoder maps (SSL4MIS's UNet, transposed-conv up, as
test/fixtures/gen_models.py), the representation head over the concatenated upsampled maps, L_sup = 0.5 (CE + Dice),
the confidence-weighted CE, the anatomical contrast (per class Q hard queries, the prototype as positive, J negatives
gathered from the feature rows: the official code's materialised [Q, 1 + J, D] logits), backward, SGD-Nesterov, EMA.
The negatives are drawn uniformly from other-class pixels (the class-graph draw changes no shapes).

Usage: /usr/bin/python3 bench/torch_action_step.py '{"size": 32, "batch": 2, "features": [4, 8, 16, 32, 64], "rep": 16,
"queries": 64, "negatives": 128, "repeats": 10}'; prints one JSON line {"torch", "threads", "stepMs": [...]}.
"""
import copy
import json
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures'))
from gen_models import UNet  # noqa: E402

torch.set_default_dtype(torch.float32)


def features(net, x):
    f = net.encoder(x)
    maps = [f[4]]
    h = f[4]
    for i in range(1, 5):
        h = getattr(net.decoder, f'up{i}')(h, f[4 - i])
        maps.append(h)
    return net.decoder.out_conv(h), maps


def dice_loss(logits, y, c):
    p = F.softmax(logits, 1)
    t = F.one_hot(y, c).permute(0, 3, 1, 2).float()
    inter = (p * t).sum((0, 2, 3))
    return 1 - ((2 * inter + 1e-5) / (p.sum((0, 2, 3)) + t.sum((0, 2, 3)) + 1e-5)).mean()


def main():
    spec = json.loads(sys.argv[1])
    torch.set_num_threads(spec.get('threads', 2))
    s, b, ft, rep_dim, nq, nk = spec['size'], spec['batch'], spec['features'], spec['rep'], spec['queries'], spec['negatives']
    c = 4
    torch.manual_seed(0)
    student = UNet(1, c, ft, False).float()
    rep_head = nn.Sequential(nn.Conv2d(sum(ft), rep_dim, 3, padding=1, bias=False), nn.ReLU(), nn.Conv2d(rep_dim, rep_dim, 1))
    teacher = copy.deepcopy(student)
    params = list(student.parameters()) + list(rep_head.parameters())
    opt = torch.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=1e-4, nesterov=True)
    xl = torch.rand(b, 1, s, s)
    yl = torch.randint(0, c, (b, s, s))
    xu = torch.rand(b, 1, s, s)

    def step():
        with torch.no_grad():
            pu = F.softmax(teacher(xu), 1)
            conf, lab = pu.max(1)
            # CutMix with the next image: a half-area box
            nxt = torch.roll(torch.arange(b), -1)
            m = torch.zeros(b, 1, s, s)
            m[:, :, s // 4: s // 4 + s // 2 + s // 8, s // 4: s // 4 + s // 2 + s // 8] = 1
            xs = m * xu[nxt] + (1 - m) * xu
            lab = torch.where(m[:, 0] > 0, lab[nxt], lab)
            conf = torch.where(m[:, 0] > 0, conf[nxt], conf)
        logits, maps = features(student, torch.cat([xl, xs]))
        dense = torch.cat([F.interpolate(f, size=(s, s), mode='bilinear', align_corners=True) if f.shape[-1] != s else f for f in maps], 1)
        rep = rep_head(dense)
        sup = 0.5 * (F.cross_entropy(logits[:b], yl) + dice_loss(logits[:b], yl, c))
        ce = F.cross_entropy(logits[b:], lab, reduction='none')
        w = (conf >= 0.97).float().mean((1, 2), keepdim=True)
        unsup = torch.mean(torch.masked_select(w * ce, ce > 0)) if (ce > 0).any() else ce.sum() * 0
        feats = F.normalize(rep.permute(0, 2, 3, 1).reshape(-1, rep_dim), dim=1)
        labels = torch.cat([yl, torch.where(conf >= 0.7, lab, torch.full_like(lab, -1))]).reshape(-1)
        prob = F.softmax(logits, 1).detach().permute(0, 2, 3, 1).reshape(-1, c)
        terms = []
        for k in range(c):
            members = (labels == k).nonzero().squeeze(1)
            others = ((labels >= 0) & (labels != k)).nonzero().squeeze(1)
            if members.numel() == 0 or others.numel() == 0:
                continue
            hard = members[prob[members, k] <= 0.97]
            if hard.numel() == 0:
                continue
            proto = F.normalize(feats[members].detach().mean(0), dim=0)
            q = feats[hard[torch.randint(0, hard.numel(), (nq,))]]
            neg = feats.detach()[others[torch.randint(0, others.numel(), (nq, nk))]]
            keys = torch.cat([proto.expand(nq, 1, -1), neg], 1)
            logits_q = torch.bmm(keys, q.unsqueeze(2)).squeeze(2) / 0.5
            terms.append(F.cross_entropy(logits_q, torch.zeros(nq, dtype=torch.long)))
        anco = torch.stack(terms).mean() if len(terms) > 1 else logits.sum() * 0
        loss = sup + unsup + 0.01 * anco
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            for pt, ps in zip(teacher.parameters(), student.parameters()):
                pt.mul_(0.99).add_(ps, alpha=0.01)
        return loss.item()

    step()
    times = []
    for _ in range(spec['repeats']):
        t = time.perf_counter()
        step()
        times.append((time.perf_counter() - t) * 1000)
    print(json.dumps({'torch': torch.__version__, 'threads': torch.get_num_threads(), 'stepMs': times}))


if __name__ == '__main__':
    main()
