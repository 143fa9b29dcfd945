#!/usr/bin/env python3
"""PyTorch peer for jreft's benchmarks (not a test; the project never needs Python).

Rebuilds all-MiniLM-L6-v2 in plain PyTorch from the weights `PeerExport` wrote, checks that it computes the same
loss as jreft on the exported batch and parameters, then times on batch 16 x seq 32:
  1. the main job's LoReFT training step (3 layers x first/last, rank 4, head, AdamW, retraction), and
  2. forward vs forward+backward of a rank-4 LoReFT at blocks.2.block_output with a probe loss (issue 3's ratio).
Usage: python3 bench/peer/minilm_loreft_step.py runs/peer JREFT_LOSS
Needs Debian's python3-torch with libopenblas0-pthread (else PyTorch runs on reference BLAS).
"""
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import minilm  # noqa: E402 (sets OMP_WAIT_POLICY before torch loads)
import torch  # noqa: E402


def loreft(h, p, prefix):
    """h + (h W^T + b - h R^T) R"""
    R, Wt, b = p[prefix + ".R"], p[prefix + ".W"], p[prefix + ".b"]
    return h + (h @ Wt.T + b - h @ R.T) @ R


def encoder(ids, mask, sites, params):
    """sites: {layer: [(param prefix, positions [b] index tensor)]} applied to that layer's block output."""
    rows = torch.arange(ids.shape[0])

    def block_output(layer, x):
        for prefix, pos in sites.get(layer, []):
            x = x.clone()
            x[rows, pos] = loreft(x[rows, pos], params, prefix)
        return x

    return minilm.encoder(ids, mask, block_output=block_output)


def classify_loss(ids, mask, labels, params, sites):
    logits = minilm.mean_pool_logits(encoder(ids, mask, sites, params), mask, params)
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
    torch.set_num_threads(2)
    folder, jreft_loss = sys.argv[1], float(sys.argv[2])
    minilm.W = minilm.load(folder + "/minilm.safetensors")[0]
    setup = minilm.load(folder + "/setup.safetensors")[0]
    ids, mask, labels = setup["input_ids"], setup["attention_mask"], setup["labels"]
    params = {k: v.clone().requires_grad_(True) for k, v in setup.items() if k.startswith(("site", "head"))}
    loss = classify_loss(ids, mask, labels, params, main_job_sites(mask))
    print("parity: torch loss %.6f, jreft loss %.6f, |diff| %.2e" % (loss.item(), jreft_loss,
                                                                       abs(loss.item() - jreft_loss)))

    opt = torch.optim.AdamW(params.values(), lr=1e-3, weight_decay=0.0)
    batch = minilm.random_batches(3)

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
