#!/usr/bin/python3
# PyTorch float64 autograd goldens for arle's layer backward kernels (RMSNorm, RoPE, SwiGLU,
# causal GQA attention); tests/kernels/backward_layer_test.cc compares both f32 backends with them.
"""Writes tests/data/goldens/backward_layer/{rmsnorm,rope,swiglu,attention}.json.

Usage: /usr/bin/python3 tests/reference/torch_backward_layer.py   (Debian python3-torch)

Inputs are drawn from a seeded torch generator and rounded to float32 (so the C++ f32 kernels read
exactly the same values); the forward and its autograd backward run in float64, so the goldens are
the true gradients of the math transformers implements (Qwen3RMSNorm / LlamaRMSNorm,
apply_rotary_pos_emb with rotate_half, silu(gate) * up, eager causal attention with
repeat_kv), contracted with a random upstream gradient. Each file: {"cases": [{...}]} with flat
row-major lists and their shapes.
"""

import json
import math
import os

import torch

F64 = torch.float64
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "goldens",
                   "backward_layer")


def rand(gen, *shape, scale=1.0):
    """N(0, scale^2) values rounded to float32, returned as float64."""
    return (torch.randn(*shape, generator=gen, dtype=torch.float32) * scale).to(F64)


def flat(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


def rmsnorm_case(gen, rows, n, eps):
    x = rand(gen, rows, n, scale=2.0).requires_grad_()
    w = rand(gen, n).requires_grad_()
    dy = rand(gen, rows, n)
    variance = x.pow(2).mean(-1, keepdim=True)
    y = w * (x * torch.rsqrt(variance + eps))
    y.backward(dy)
    return {"rows": rows, "n": n, "eps": eps, "x": flat(x), "w": flat(w), "dy": flat(dy),
            "dx": flat(x.grad), "dw": flat(w.grad)}


def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def rope_case(gen, n_tok, n_head, head_dim, theta):
    half = head_dim // 2
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    pos = torch.arange(3, 3 + n_tok, dtype=torch.float32)
    angle = pos[:, None] * inv_freq[None, :]               # f32, as transformers
    cos = torch.cos(angle).to(torch.float32).to(F64)        # the f32 table the kernel reads
    sin = torch.sin(angle).to(torch.float32).to(F64)
    x = rand(gen, n_tok, n_head, head_dim).requires_grad_()
    dy = rand(gen, n_tok, n_head, head_dim)
    c = torch.cat((cos, cos), dim=-1)[:, None, :]
    s = torch.cat((sin, sin), dim=-1)[:, None, :]
    y = x * c + rotate_half(x) * s
    y.backward(dy)
    assert cos.shape == (n_tok, half)
    return {"n_tok": n_tok, "n_head": n_head, "head_dim": head_dim, "cos": flat(cos),
            "sin": flat(sin), "dy": flat(dy), "dx": flat(x.grad)}


def swiglu_case(gen, rows, n):
    gate = rand(gen, rows, n, scale=3.0)
    gate[0, :4] = torch.tensor([-120.0, -30.0, 30.0, 120.0], dtype=F64)  # saturated sigmoid
    gate.requires_grad_()
    up = rand(gen, rows, n).requires_grad_()
    dswiglu = rand(gen, rows, n)
    out = torch.nn.functional.silu(gate) * up
    out.backward(dswiglu)
    return {"n": rows * n, "gate": flat(gate), "up": flat(up), "dswiglu": flat(dswiglu),
            "dgate": flat(gate.grad), "dup": flat(up.grad)}


def attention_case(gen, n_seq, seq_len, n_head, n_head_kv, head_dim):
    n = n_seq * seq_len
    scale = 1.0 / math.sqrt(head_dim)
    q = rand(gen, n, n_head, head_dim).requires_grad_()
    k = rand(gen, n, n_head_kv, head_dim).requires_grad_()
    v = rand(gen, n, n_head_kv, head_dim).requires_grad_()
    dout = rand(gen, n, n_head, head_dim)
    group = n_head // n_head_kv
    # [n_seq, heads, seq_len, head_dim], kv heads repeated as transformers' repeat_kv.
    qs = q.reshape(n_seq, seq_len, n_head, head_dim).transpose(1, 2)
    ks = k.reshape(n_seq, seq_len, n_head_kv, head_dim).transpose(1, 2)
    vs = v.reshape(n_seq, seq_len, n_head_kv, head_dim).transpose(1, 2)
    ks = ks.repeat_interleave(group, dim=1)
    vs = vs.repeat_interleave(group, dim=1)
    scores = torch.matmul(qs, ks.transpose(-1, -2)) * scale
    mask = torch.ones(seq_len, seq_len, dtype=torch.bool).triu(1)
    scores = scores.masked_fill(mask, float("-inf"))
    lse = torch.logsumexp(scores, dim=-1)                   # [n_seq, n_head, seq_len]
    out = torch.matmul(torch.softmax(scores, dim=-1), vs)   # [n_seq, n_head, seq_len, head_dim]
    out = out.transpose(1, 2).reshape(n, n_head, head_dim)
    out.backward(dout)
    return {"n_seq": n_seq, "seq_len": seq_len, "n_head": n_head, "n_head_kv": n_head_kv,
            "head_dim": head_dim, "scale": scale, "q": flat(q), "k": flat(k), "v": flat(v),
            "dout": flat(dout), "out": flat(out), "lse": flat(lse.transpose(1, 2)),
            "dq": flat(q.grad), "dk": flat(k.grad), "dv": flat(v.grad)}


def write(name, cases):
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, name + ".json"), "w") as f:
        json.dump({"generator": "tests/reference/torch_backward_layer.py", "cases": cases}, f)
        f.write("\n")


def main():
    gen = torch.Generator().manual_seed(20240614)
    write("rmsnorm", [rmsnorm_case(gen, 6, 10, 1e-6), rmsnorm_case(gen, 3, 67, 1e-5)])
    write("rope", [rope_case(gen, 5, 3, 8, 10000.0), rope_case(gen, 4, 2, 40, 1e6)])
    write("swiglu", [swiglu_case(gen, 3, 13)])
    write("attention", [attention_case(gen, 2, 5, 4, 2, 8), attention_case(gen, 1, 37, 2, 1, 12),
                        attention_case(gen, 2, 18, 2, 2, 8)])


if __name__ == "__main__":
    main()
