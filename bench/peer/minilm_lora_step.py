#!/usr/bin/env python3
"""PyTorch peer for jreft's LoRA benchmark (not a test; the project never needs Python).

Rebuilds all-MiniLM-L6-v2 in plain PyTorch from the weights `PeerExport` wrote, with PeftBenchmark's LoRA (r=8,
lora_alpha=16, no dropout, on query and value of all 6 layers: y' = y + (alpha/r) x A^T B^T) and its MEAN-pooled
2-class head; checks that it computes the same loss as jreft on the exported batch and parameters (A and B both
random, so the LoRA path counts), then times on batch 16 x seq 32:
  1. the plain forward (no LoRA, no head, no_grad), as PeftBenchmark's denominator, and
  2. the LoRA training step: forward + cross-entropy, backward into A, B and the head only (the base weights do not
     require grad), clipping to norm 1 and an AdamW step; and prints step / forward.
Usage: python3 bench/peer/minilm_lora_step.py runs/peer JREFT_LORA_LOSS
Needs Debian's python3-torch with libopenblas0-pthread (else PyTorch runs on reference BLAS). OMP_WAIT_POLICY is
PASSIVE unless set: on two shared cores GOMP's spinning workers fight OpenBLAS's threads, and the default (spinning)
made the forward 2-5x slower and its spread far wider in our runs (set in minilm.py, shared with the LoReFT peer).
"""
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import minilm  # noqa: E402 (sets OMP_WAIT_POLICY before torch loads)
import torch  # noqa: E402

TOLERANCE = 1e-4  # relative, on the loss


def lora_linear(x, prefix, lora, scaling):
    """The module's output, plus scaling * (x A^T) B^T where LoRA targets it."""
    y = minilm.linear(x, prefix)
    if lora is not None and prefix + ".A" in lora:
        y = y + scaling * ((x @ lora[prefix + ".A"].T) @ lora[prefix + ".B"].T)
    return y


def encoder(ids, mask, lora=None, scaling=0.0):
    return minilm.encoder(ids, mask, linear_fn=lambda x, prefix: lora_linear(x, prefix, lora, scaling))


def classify_loss(ids, mask, labels, params, scaling):
    logits = minilm.mean_pool_logits(encoder(ids, mask, params, scaling), mask, params)
    return torch.nn.functional.cross_entropy(logits, labels)


def times_ms(fn, n, warmup=3):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1000)
    return ts


def blas():
    """The BLAS library this process has loaded (read off its memory map)."""
    libs = {line.split()[-1] for line in open("/proc/self/maps") if "blas" in line.split()[-1]}
    return ", ".join(sorted(libs)) or "none found"


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    threads = len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)
    folder, jreft_loss = sys.argv[1], float(sys.argv[2])
    minilm.W = minilm.load(folder + "/minilm.safetensors")[0]
    setup, meta = minilm.load(folder + "/lora.safetensors")
    r, alpha = int(meta["r"]), float(meta["lora_alpha"])
    scaling = alpha / r
    ids, mask, labels = setup["input_ids"], setup["attention_mask"], setup["labels"]
    params = {k: v.clone().requires_grad_(True) for k, v in setup.items() if k.endswith((".A", ".B"))
              or k.startswith("head.")}
    targets = sorted({k[:-2] for k in params if k.endswith(".A")})
    print("torch %s, %d threads, OMP_WAIT_POLICY %s, BLAS: %s" % (torch.__version__, torch.get_num_threads(),
                                                                  os.environ["OMP_WAIT_POLICY"], blas()))
    print("LoRA r=%d alpha=%g (scaling %g) on %d modules, %d trained parameters with the head"
          % (r, alpha, scaling, len(targets), sum(p.numel() for p in params.values())))

    with torch.no_grad():
        loss = classify_loss(ids, mask, labels, params, scaling).item()
        off = classify_loss(ids, mask, labels, {k: v for k, v in params.items() if k.startswith("head.")},
                            scaling).item()
    diff = abs(loss - jreft_loss)
    rel = diff / abs(jreft_loss)
    print("parity: torch loss %.8f, jreft loss %.8f, |diff| %.2e, relative %.2e (without the LoRA update: %.8f)"
          % (loss, jreft_loss, diff, rel, off))
    if not rel <= TOLERANCE:
        sys.exit("PARITY FAILED: relative error %.2e > %.0e; the peer does not compute jreft's function, timings "
                 "would compare different work" % (rel, TOLERANCE))
    if abs(off - jreft_loss) <= 10 * diff:
        sys.exit("PARITY CHECK VACUOUS: the loss without LoRA (%.8f) is as close to jreft's as with it" % off)

    batch = minilm.random_batches(3)

    def forward():
        x, m, _ = batch()
        with torch.no_grad():
            encoder(x, m)

    opt = torch.optim.AdamW(params.values(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)

    def step():
        x, m, y = batch()
        opt.zero_grad(set_to_none=True)
        classify_loss(x, m, y, params, scaling).backward()
        torch.nn.utils.clip_grad_norm_(params.values(), 1.0)
        opt.step()

    n = 20
    f = times_ms(forward, n)
    s = times_ms(step, n)
    f2 = times_ms(forward, n)  # the forward again after the steps: drift shows here
    fm, sm, f2m = statistics.median(f), statistics.median(s), statistics.median(f2)
    print("torch MiniLM, batch 16 x seq 32, medians over %d after 3 warm-up [min-max]:" % n)
    print("  plain forward      %7.1f ms [%.1f-%.1f]  (again after the steps: %.1f ms [%.1f-%.1f])"
          % (fm, min(f), max(f), f2m, min(f2), max(f2)))
    print("  LoRA training step %7.1f ms [%.1f-%.1f] = %.2f x plain forward (%.2f x the later forward)"
          % (sm, min(s), max(s), sm / fm, sm / f2m))


if __name__ == "__main__":
    main()
