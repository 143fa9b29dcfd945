#!/usr/bin/env python3
"""PyTorch peer for jreft's benchmarks (not a test; the project never needs Python).

Rebuilds all-MiniLM-L6-v2 in plain PyTorch from the weights `PeerExport` wrote, checks that it computes the same
loss as jreft on the exported batch and parameters, then times on batch 16 x seq 32:
  1. the main job's LoReFT training step (3 layers x first/last, rank 4, head, AdamW, retraction), and
  2. forward vs forward+backward of a rank-4 LoReFT at blocks.2.block_output with a probe loss (issue 3's ratio).
Usage: python3 bench/peer/minilm_loreft_step.py runs/peer JREFT_LOSS
Needs Debian's python3-torch with libopenblas0-pthread (else PyTorch runs on reference BLAS).
"""
import json
import math
import os
import statistics
import struct
import sys
import time

# as in the LoRA peer (and jreft): OpenMP threads sleep when idle instead of spinning against OpenBLAS's threads
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # read when libgomp loads, with torch below

import numpy as np
import torch

DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32}


def load(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        arr = np.frombuffer(raw[8 + n + a:8 + n + b], dtype=DTYPES[info["dtype"]]).reshape(info["shape"])
        out[name] = torch.from_numpy(arr.copy())
    return out


W = None


def ln(x, prefix, eps=1e-12):
    return torch.nn.functional.layer_norm(x, x.shape[-1:], W[prefix + ".weight"], W[prefix + ".bias"], eps)


def linear(x, prefix):
    return x @ W[prefix + ".weight_t"] + W[prefix + ".bias"]


def loreft(h, p, prefix):
    """h + (h W^T + b - h R^T) R"""
    R, Wt, b = p[prefix + ".R"], p[prefix + ".W"], p[prefix + ".b"]
    return h + (h @ Wt.T + b - h @ R.T) @ R


def encoder(ids, mask, sites, params):
    """sites: {layer: [(param prefix, positions [b] index tensor)]} applied to that layer's block output."""
    b, s = ids.shape
    x = W["embeddings.word_embeddings.weight"][ids] + W["embeddings.token_type_embeddings.weight"][0] \
        + W["embeddings.position_embeddings.weight"][:s]
    x = ln(x, "embeddings.LayerNorm")
    ext = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
    heads, dh = 12, 32
    rows = torch.arange(b)
    for L in range(6):
        p = "encoder.layer.%d." % L
        q = linear(x, p + "attention.self.query").view(b, s, heads, dh).transpose(1, 2)
        k = linear(x, p + "attention.self.key").view(b, s, heads, dh).transpose(1, 2)
        v = linear(x, p + "attention.self.value").view(b, s, heads, dh).transpose(1, 2)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(dh) + ext, dim=-1)
        ctx = (att @ v).transpose(1, 2).reshape(b, s, heads * dh)
        x1 = ln(linear(ctx, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
        h = linear(x1, p + "intermediate.dense")
        h = 0.5 * h * (1.0 + torch.erf(h / math.sqrt(2.0)))
        x = ln(linear(h, p + "output.dense") + x1, p + "output.LayerNorm")
        for prefix, pos in sites.get(L, []):
            x = x.clone()
            x[rows, pos] = loreft(x[rows, pos], params, prefix)
    return x


def classify_loss(ids, mask, labels, params, sites):
    hidden = encoder(ids, mask, sites, params)
    m = mask.float()[..., None]
    pooled = (hidden * m).sum(1) / m.sum(1)
    logits = pooled @ params["head.W"] + params["head.b"]
    return torch.nn.functional.cross_entropy(logits, labels)


def main_job_sites(mask):
    last = mask.sum(1) - 1
    first = torch.zeros_like(last)
    return {1: [("site0", first), ("site1", last)], 3: [("site2", first), ("site3", last)],
            5: [("site4", first), ("site5", last)]}


def retract(R):
    with torch.no_grad():
        q, _ = torch.linalg.qr(R.T)
        R.copy_((q * torch.sign(torch.diagonal(_))).T)


def median_ms(fn, n):
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1000)
    return statistics.median(ts)


def main():
    global W
    torch.set_num_threads(2)
    folder, jreft_loss = sys.argv[1], float(sys.argv[2])
    W = load(folder + "/minilm.safetensors")
    setup = load(folder + "/setup.safetensors")
    ids, mask, labels = setup["input_ids"], setup["attention_mask"], setup["labels"]
    params = {k: v.clone().requires_grad_(True) for k, v in setup.items() if k.startswith(("site", "head"))}
    loss = classify_loss(ids, mask, labels, params, main_job_sites(mask))
    print("parity: torch loss %.6f, jreft loss %.6f, |diff| %.2e" % (loss.item(), jreft_loss,
                                                                       abs(loss.item() - jreft_loss)))

    opt = torch.optim.AdamW(params.values(), lr=1e-3, weight_decay=0.0)
    gen = torch.Generator().manual_seed(3)

    def batch():
        x = torch.randint(1000, 29000, (16, 32), generator=gen)
        x[:, 0], x[:, -1] = 101, 102
        return x, torch.ones(16, 32, dtype=torch.int64), torch.randint(0, 2, (16,), generator=gen)

    def step():
        x, m, y = batch()
        opt.zero_grad()
        classify_loss(x, m, y, params, main_job_sites(m)).backward()
        torch.nn.utils.clip_grad_norm_(params.values(), 1.0)
        opt.step()
        for k in params:
            if k.endswith(".R"):
                retract(params[k])

    for _ in range(3):
        step()
    ms = median_ms(step, 30)
    print("torch LoReFT training step (main job setup), batch 16 x seq 32: median %.1f ms/step = %.1f examples/s"
          % (ms, 16000 / ms))

    # issue 3: one rank-4 LoReFT at blocks.2.block_output, probe loss; forward vs forward+backward
    g = torch.Generator().manual_seed(5)
    R = torch.linalg.qr(torch.randn(384, 4, generator=g))[0].T.contiguous().requires_grad_(True)
    p2 = {"s.R": R, "s.W": (torch.randn(4, 384, generator=g) / 20).requires_grad_(True),
          "s.b": torch.zeros(4, requires_grad=True)}
    probe = torch.randn(384, generator=g)
    x, m, _ = batch()
    sites2 = {2: [("s", torch.zeros(16, dtype=torch.int64)), ("s", m.sum(1) - 1)]}

    def fwd():
        with torch.no_grad():
            (encoder(x, m, sites2, p2) @ probe * m).sum()

    def fwd_bwd():
        for t in p2.values():
            t.grad = None
        ((encoder(x, m, sites2, p2) @ probe) * m).sum().backward()

    for _ in range(3):
        fwd()
        fwd_bwd()
    f, fb = median_ms(fwd, 20), median_ms(fwd_bwd, 20)
    print("torch forward %.1f ms, forward+backward %.1f ms, ratio %.2f" % (f, fb, fb / f))


if __name__ == "__main__":
    main()
