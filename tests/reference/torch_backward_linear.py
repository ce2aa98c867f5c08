#!/usr/bin/python3
"""Goldens for the linear backward kernels (tests/kernels/backward_linear_test.cc): PyTorch float64
autograd of a linear layer with bias, an embedding lookup and cross-entropy with an ignored row,
on deterministic small inputs that are exact in float32 (so the f32 kernels see the same values).

Usage: /usr/bin/python3 tests/reference/torch_backward_linear.py  (Debian python3-torch)
Writes tests/data/goldens/backward_linear/{matmul,embedding,cross_entropy}.json.
"""
import json
import os

import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "goldens",
                   "backward_linear")


def f32_exact(*shape, gen, scale=1.0):
    # float32 draws held in float64: the kernels' f32 inputs are these values exactly.
    return (torch.randn(*shape, generator=gen, dtype=torch.float32) * scale).double()


def flat(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


def write(name, obj):
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, name), "w") as f:
        json.dump(obj, f)
        f.write("\n")


def main():
    gen = torch.Generator().manual_seed(20240614)

    # Linear layer y = x w^T + b, loss = sum(y * dy): the grads are MatMulBackward{Input,Weight}'s.
    n_tok, n_in, n_out = 7, 19, 13
    x = f32_exact(n_tok, n_in, gen=gen).requires_grad_()
    w = f32_exact(n_out, n_in, gen=gen, scale=0.5).requires_grad_()
    b = f32_exact(n_out, gen=gen).requires_grad_()
    dy = f32_exact(n_tok, n_out, gen=gen)
    (F.linear(x, w, b) * dy).sum().backward()
    write("matmul.json", {
        "n_tok": n_tok, "n_in": n_in, "n_out": n_out,
        "x": flat(x), "w": flat(w), "dy": flat(dy),
        "dx": flat(x.grad), "dw": flat(w.grad), "dbias": flat(b.grad),
    })

    # Embedding lookup with repeated ids (their gradients add), loss = sum(out * dout).
    n_vocab, n_embd = 11, 21
    ids = torch.tensor([3, 0, 7, 3, 10, 3, 5, 0, 9], dtype=torch.int64)
    table = f32_exact(n_vocab, n_embd, gen=gen).requires_grad_()
    dout = f32_exact(len(ids), n_embd, gen=gen)
    (F.embedding(ids, table) * dout).sum().backward()
    write("embedding.json", {
        "n_vocab": n_vocab, "n_embd": n_embd, "ids": ids.tolist(),
        "dout": flat(dout), "dtable": flat(table.grad),
    })

    # Cross-entropy over a vocabulary of 37; row 2 ignored, row 4 shifted by +60 (stability).
    n_rows, vocab = 6, 37
    logits = f32_exact(n_rows, vocab, gen=gen, scale=2.0)
    logits[4] += 60.0
    logits = logits.float().double().requires_grad_()  # the shifted row rounded to f32
    targets = torch.tensor([5, 0, -100, 36, 17, 17], dtype=torch.int64)
    grad_scale = 0.25
    losses = F.cross_entropy(logits, targets, reduction="none", ignore_index=-100)
    (losses.sum() * grad_scale).backward()
    write("cross_entropy.json", {
        "n_rows": n_rows, "n_vocab": vocab, "targets": targets.tolist(),
        "grad_scale": grad_scale, "logits": flat(logits), "losses": flat(losses),
        "dlogits": flat(logits.grad),
    })


if __name__ == "__main__":
    main()
