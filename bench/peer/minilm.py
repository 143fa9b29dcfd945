"""all-MiniLM-L6-v2 rebuilt in plain PyTorch from the weights jreft's PeerExport wrote (shared by the peers).

Only the peers import this; the project itself never needs Python. Set W (the model's tensors, from load) first.
"""
import json
import math
import os
import struct

# OpenMP threads sleep when idle instead of spinning against OpenBLAS's threads on the same cores (jreft does the
# same for its own threads); read when libgomp loads, with torch below. A caller's own value wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch

DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32}

W = None


def load(path):
    """(tensors by name, metadata) from a safetensors file."""
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
    return out, header.get("__metadata__", {})


def ln(x, prefix, eps=1e-12):
    return torch.nn.functional.layer_norm(x, x.shape[-1:], W[prefix + ".weight"], W[prefix + ".bias"], eps)


def linear(x, prefix):
    return x @ W[prefix + ".weight_t"] + W[prefix + ".bias"]


def encoder(ids, mask, linear_fn=linear, block_output=None):
    """The last hidden state [b, s, 384]. linear_fn(x, module prefix) computes every attention projection (a LoRA
    there); block_output(layer, x) may rewrite each layer's output (a ReFT site there)."""
    b, s = ids.shape
    x = W["embeddings.word_embeddings.weight"][ids] + W["embeddings.token_type_embeddings.weight"][0] \
        + W["embeddings.position_embeddings.weight"][:s]
    x = ln(x, "embeddings.LayerNorm")
    ext = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
    heads, dh = 12, 32
    for L in range(6):
        p = "encoder.layer.%d." % L
        q = linear_fn(x, p + "attention.self.query").view(b, s, heads, dh).transpose(1, 2)
        k = linear_fn(x, p + "attention.self.key").view(b, s, heads, dh).transpose(1, 2)
        v = linear_fn(x, p + "attention.self.value").view(b, s, heads, dh).transpose(1, 2)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(dh) + ext, dim=-1)
        ctx = (att @ v).transpose(1, 2).reshape(b, s, heads * dh)
        x1 = ln(linear(ctx, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
        h = linear(x1, p + "intermediate.dense")
        h = 0.5 * h * (1.0 + torch.erf(h / math.sqrt(2.0)))
        x = ln(linear(h, p + "output.dense") + x1, p + "output.LayerNorm")
        if block_output is not None:
            x = block_output(L, x)
    return x


def mean_pool_logits(hidden, mask, params):
    m = mask.float()[..., None]
    return ((hidden * m).sum(1) / m.sum(1)) @ params["head.W"] + params["head.b"]


def random_batches(seed=3):
    """Batches like jreft's benchmarks: 16 x 32 random word ids between [CLS] and [SEP], no padding, random labels."""
    gen = torch.Generator().manual_seed(seed)

    def batch():
        x = torch.randint(1000, 29000, (16, 32), generator=gen)
        x[:, 0], x[:, -1] = 101, 102
        return x, torch.ones(16, 32, dtype=torch.int64), torch.randint(0, 2, (16,), generator=gen)
    return batch
