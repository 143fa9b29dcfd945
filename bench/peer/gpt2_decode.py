"""The PyTorch peer of jreft's GenerationBenchmark: greedy decoding with a KV cache on a GPT-2 written in plain
PyTorch as Hugging Face's GPT2LMHeadModel computes it, on the weights GenerationPeerExport wrote. Checks it computes
jreft's function (step logits and tokens), then times decoding as the benchmark does (median of rounds).

Needs Debian's python3-torch with libopenblas0-pthread. Only the benchmarks use Python; the project never needs it.
Run: python3 bench/peer/gpt2_decode.py runs/peer [rounds]
"""
import math
import os
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from minilm import load  # noqa: E402  (the safetensors reader the peers share)

torch.set_grad_enabled(False)
torch.set_num_threads(len(os.sched_getaffinity(0)))  # every core, as jreft's ORT session uses
folder = sys.argv[1] if len(sys.argv) > 1 else "runs/peer"
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
W, meta = load(os.path.join(folder, "gpt2_small.safetensors"))
case, _ = load(os.path.join(folder, "gpt2_decode.safetensors"))
heads = int(meta.get("heads", "12"))
layers = len({k.split(".")[2] for k in W if k.startswith("transformer.h.")})
d = W["transformer.wte.weight"].shape[1]
dh = d // heads


def ln(x, p):
    return torch.nn.functional.layer_norm(x, (d,), W[p + ".weight"], W[p + ".bias"], 1e-5)


def conv1d(x, p):
    return torch.addmm(W[p + ".bias"], x.reshape(-1, x.shape[-1]), W[p + ".weight"]).view(*x.shape[:-1], -1)


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def forward(ids, past):
    """Logits [b, s, vocab] and the new past (per layer (k, v) [b, heads, total, dh])."""
    b, s = ids.shape
    start = 0 if past is None else past[0][0].shape[2]
    x = W["transformer.wte.weight"][ids] + W["transformer.wpe.weight"][start:start + s]
    total = start + s
    causal = torch.ones(s, total, dtype=torch.bool).tril(start)
    bias = torch.zeros(s, total).masked_fill(~causal, torch.finfo(torch.float32).min)
    present = []
    for i in range(layers):
        p = "transformer.h.%d." % i
        q, k, v = conv1d(ln(x, p + "ln_1"), p + "attn.c_attn").split(d, dim=2)
        q, k, v = (t.view(b, s, heads, dh).transpose(1, 2) for t in (q, k, v))
        if past is not None:
            k = torch.cat([past[i][0], k], dim=2)
            v = torch.cat([past[i][1], v], dim=2)
        present.append((k, v))
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(dh) + bias, dim=-1)
        x = x + conv1d((att @ v).transpose(1, 2).reshape(b, s, d), p + "attn.c_proj")
        x = x + conv1d(gelu_new(conv1d(ln(x, p + "ln_2"), p + "mlp.c_fc")), p + "mlp.c_proj")
    return ln(x, "transformer.ln_f") @ W["transformer.wte.weight"].T, present


def generate(prompt, n):
    tokens, steps = [], []
    logits, past = forward(prompt, None)
    for k in range(n):
        last = logits[:, -1]
        steps.append(last)
        nxt = last.argmax(-1, keepdim=True)
        tokens.append(nxt)
        if k + 1 < n:
            logits, past = forward(nxt, past)
    return torch.cat(tokens, 1), torch.stack(steps, 1)


prompt = case["prompt"]
n = case["tokens"].shape[1]
tokens, steps = generate(prompt, n)
err = (steps - case["step_logits"]).abs().max().item()
same = torch.equal(tokens, case["tokens"])
print("parity with jreft: step logits max |diff| %.2e, tokens %s" % (err, "equal" if same else "DIFFER"))
if err > 1e-3 or not same:
    sys.exit("the peer does not compute jreft's function")
times = []
for _ in range(rounds):
    t0 = time.perf_counter()
    generate(prompt, n)
    times.append(time.perf_counter() - t0)
times.sort()
med = times[len(times) // 2]
print("PyTorch %s, %d threads: batch %d, prompt %d, %d new tokens: %.1f ms, %.0f tokens/s"
      % (torch.__version__, torch.get_num_threads(), prompt.shape[0], prompt.shape[1], n, med * 1e3,
         prompt.shape[0] * n / med))
