#!/usr/bin/python3
"""PyTorch reference for arle's train/ optimizers, schedules and clipping.

Runs torch.optim.AdamW and torch.optim.SGD (Debian python3-torch, f32, single-tensor path) over
small parameters (matrices that are weight-decayed and 1-D ones that are not: two param groups)
for several steps with seeded random gradients, torch.nn.utils.clip_grad_norm_ before each step
and a LambdaLR schedule using transformers' lambdas; also tabulates the three schedules.
Writes tests/data/goldens/train/optim.json. Run from anywhere: /usr/bin/python3 tests/reference/torch_optim.py
"""
import json
import math
import os

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "data", "goldens", "train", "optim.json")

SHAPES = [("w", [3, 4]), ("b", [5]), ("e", [2, 3, 2]), ("norm", [6])]


# transformers.optimization's lambdas (get_constant_schedule_with_warmup and
# get_cosine_with_min_lr_schedule_with_warmup with num_cycles 0.5), copied by formula.
def constant_lambda(step):
    return 1.0


def warmup_lambda(warmup):
    def f(step):
        if step < warmup:
            return float(step) / float(max(1.0, warmup))
        return 1.0
    return f


def cosine_lambda(warmup, total, min_lr_rate):
    def f(step):
        if step < warmup:
            return float(step) / float(max(1, warmup))
        progress = float(step - warmup) / float(max(1, total - warmup))
        factor = 0.5 * (1.0 + math.cos(math.pi * float(0.5) * 2.0 * progress))
        factor = factor * (1 - min_lr_rate) + min_lr_rate
        return max(0, factor)
    return f


def schedule_spec(kind, lr, warmup, total, min_lr):
    return {"kind": kind, "lr": lr, "warmup_steps": warmup, "total_steps": total, "min_lr": min_lr}


def make_lambda(spec):
    if spec["kind"] == "constant":
        return constant_lambda
    if spec["kind"] == "linear-warmup":
        return warmup_lambda(spec["warmup_steps"])
    return cosine_lambda(spec["warmup_steps"], spec["total_steps"], spec["min_lr"] / spec["lr"])


def lr_table(spec, n):
    """The lr LambdaLR hands optimizer update k (scheduler.step() after each optimizer.step())."""
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=spec["lr"])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, make_lambda(spec))
    out = []
    for _ in range(n):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def flat(t):
    return [float(x) for x in t.detach().reshape(-1).tolist()]


def run(name, make_opt, spec, max_norm, steps, seed, grad_scale):
    gen = torch.Generator().manual_seed(seed)
    params = [torch.nn.Parameter(torch.randn(s, generator=gen, dtype=torch.float32)) for _, s in SHAPES]
    initial = [flat(p) for p in params]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    opt = make_opt(decay, no_decay, spec["lr"])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, make_lambda(spec))
    records = []
    for _ in range(steps):
        grads = [torch.randn(p.shape, generator=gen, dtype=torch.float32) * grad_scale for p in params]
        for p, g in zip(params, grads):
            p.grad = g.clone()
        norm = torch.nn.utils.clip_grad_norm_(params, max_norm) if max_norm > 0 else None
        lr = opt.param_groups[0]["lr"]
        opt.step()
        sched.step()
        records.append({"lr": lr, "grads": [flat(g) for g in grads],
                        "norm": float(norm) if norm is not None else None,
                        "params": [flat(p) for p in params]})
    state = {}
    for pname, p in zip([n for n, _ in SHAPES], params):
        for key, value in opt.state[p].items():
            if key != "step" and value is not None:
                state[f"{pname}.{key}"] = flat(value)
    return {"name": name, "schedule": spec, "max_norm": max_norm,
            "params": [{"name": n, "shape": s, "values": v} for (n, s), v in zip(SHAPES, initial)],
            "steps": records, "state": state}


def main():
    torch.use_deterministic_algorithms(True)
    # eps large enough that its place (outside the sqrt, after bias correction) shows in f32.
    adamw_cfg = {"beta1": 0.9, "beta2": 0.95, "eps": 1e-3, "weight_decay": 0.1}
    sgd_cfg = {"momentum": 0.9, "weight_decay": 0.05}

    def adamw(decay, no_decay, lr):
        return torch.optim.AdamW(
            [{"params": decay, "weight_decay": adamw_cfg["weight_decay"]},
             {"params": no_decay, "weight_decay": 0.0}],
            lr=lr, betas=(adamw_cfg["beta1"], adamw_cfg["beta2"]), eps=adamw_cfg["eps"], foreach=False)

    def adamw_defaults(decay, no_decay, lr):
        return torch.optim.AdamW([{"params": decay}, {"params": no_decay, "weight_decay": 0.0}],
                                 lr=lr, foreach=False)

    def sgd(decay, no_decay, lr):
        return torch.optim.SGD(
            [{"params": decay, "weight_decay": sgd_cfg["weight_decay"]},
             {"params": no_decay, "weight_decay": 0.0}],
            lr=lr, momentum=sgd_cfg["momentum"], foreach=False)

    def sgd_plain(decay, no_decay, lr):
        return torch.optim.SGD(decay + no_decay, lr=lr, foreach=False)

    runs = [
        dict(run("adamw_cosine_clip", adamw, schedule_spec("cosine", 1e-2, 2, 8, 1e-3), 1.0, 8, 1, 0.5),
             optimizer="adamw", options=adamw_cfg),
        dict(run("adamw_defaults_constant", adamw_defaults, schedule_spec("constant", 3e-3, 0, 0, 0.0),
                 0.0, 5, 2, 1.0),
             optimizer="adamw", options={"beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.01}),
        dict(run("sgd_momentum_warmup_clip", sgd, schedule_spec("linear-warmup", 5e-2, 3, 0, 0.0), 2.0, 6, 3,
                 1.0),
             optimizer="sgd", options=sgd_cfg),
        dict(run("sgd_plain", sgd_plain, schedule_spec("constant", 1e-1, 0, 0, 0.0), 0.0, 3, 4, 1.0),
             optimizer="sgd", options={"momentum": 0.0, "weight_decay": 0.0}),
    ]

    schedules = [schedule_spec("constant", 1e-3, 0, 0, 0.0),
                 schedule_spec("linear-warmup", 1e-3, 4, 0, 0.0),
                 schedule_spec("linear-warmup", 2e-4, 1, 0, 0.0),
                 schedule_spec("cosine", 1e-3, 3, 12, 1e-4),
                 schedule_spec("cosine", 6e-4, 0, 10, 0.0),
                 schedule_spec("cosine", 1e-2, 5, 6, 1e-3)]
    tables = [{"schedule": s, "lrs": lr_table(s, 16 if s["kind"] != "cosine" else s["total_steps"] + 1)}
              for s in schedules]

    # clip_grad_norm_ alone: one case that clips, one that does not, one with a zero gradient.
    gen = torch.Generator().manual_seed(5)
    clips = []
    for max_norm, scale in [(1.0, 1.0), (100.0, 1.0), (0.5, 0.0)]:
        grads = [torch.randn(s, generator=gen, dtype=torch.float32) * scale for _, s in SHAPES]
        params = [torch.nn.Parameter(torch.zeros(s)) for _, s in SHAPES]
        for p, g in zip(params, grads):
            p.grad = g.clone()
        norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
        clips.append({"max_norm": max_norm, "grads": [flat(g) for g in grads], "norm": float(norm),
                      "clipped": [flat(p.grad) for p in params]})

    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump({"generator": "tests/reference/torch_optim.py", "torch": torch.__version__,
                   "shapes": [{"name": n, "shape": s} for n, s in SHAPES],
                   "runs": runs, "schedules": tables, "clip": clips}, f, indent=1)
        f.write("\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
