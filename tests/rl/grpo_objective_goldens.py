#!/usr/bin/python3
"""Writes tests/data/rl/grpo_objective_goldens.json, the goldens of tests/rl/grpo_objective_test.cc:
group-normalised advantages and the GRPO / GSPO objective (loss, dL/dlogp by torch autograd, and
the clip / KL / ratio metrics) on seeded random batches. Run with the system Python (Debian
python3-torch) from the repository root:

    /usr/bin/python3 tests/rl/grpo_objective_goldens.py

The output depends only on the seed below and the torch version (recorded in the file); never edit
it by hand. The computation transcribes TRL's GRPOTrainer (trl/trainer/grpo_trainer.py:
_compute_loss on right-padded [N, T] tensors with a completion mask, and the advantage
normalisation) in float64, with two choices of arle's issue that differ from TRL: the advantage
epsilon is 1e-6 (TRL: 1e-4), and GSPO's sequence surrogate is always averaged over sequences (TRL
with loss_type "bnpo" would weight it by length); its KL term follows the aggregation.
Log-probabilities are rounded to float32 first, because arle takes them as float.
"""

import json
import os

import torch

OUT = os.path.join("tests", "data", "rl", "grpo_objective_goldens.json")
SEED = 20250923
ADV_EPS = 1e-6


def group_advantages(rewards, group, std_norm):
    """TRL's normalisation: unbiased std (torch.std's default)."""
    r = torch.tensor(rewards, dtype=torch.float64).view(-1, group)
    adv = r - r.mean(dim=1, keepdim=True)
    if std_norm:
        adv = adv / (r.std(dim=1, keepdim=True) + ADV_EPS)
    return adv.reshape(-1).tolist()


def f32(t):
    return t.to(torch.float32).to(torch.float64)


def pad(rows):
    """Right-pads a list of 1-D tensors with zeros into [N, T] plus the completion mask."""
    n, t = len(rows), max(len(r) for r in rows)
    out = torch.zeros(n, t, dtype=torch.float64)
    mask = torch.zeros(n, t, dtype=torch.float64)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
        mask[i, : len(r)] = 1.0
    return out, mask


def objective(seqs, kind, loss_agg, eps_low, eps_high, beta):
    """Loss, dL/dlogp per sequence and the metrics, as TRL's _compute_loss computes them."""
    logp, mask = pad([s["logp"] for s in seqs])
    old, _ = pad([s["old_logp"] for s in seqs])
    has_ref = seqs[0]["ref_logp"] is not None
    ref = pad([s["ref_logp"] for s in seqs])[0] if has_ref else None
    adv = torch.tensor([s["advantage"] for s in seqs], dtype=torch.float64).unsqueeze(1)
    logp.requires_grad_(True)
    lengths = mask.sum(-1).clamp(min=1.0)

    def aggregate(per_token):
        if loss_agg == "seq-mean-token-mean":  # TRL loss_type "grpo"
            return ((per_token * mask).sum(-1) / lengths).mean()
        return (per_token * mask).sum() / mask.sum().clamp(min=1.0)  # "bnpo" / DAPO

    per_token_kl = None
    if has_ref:
        per_token_kl = torch.exp(ref - logp) - (ref - logp) - 1

    log_ratio = logp - old
    if kind == "grpo":
        log_weights = log_ratio
    else:
        log_weights = ((log_ratio * mask).sum(-1) / lengths).unsqueeze(-1)
    coef_1 = torch.exp(log_weights)
    coef_2 = torch.clamp(coef_1, 1 - eps_low, 1 + eps_high)
    surrogate = -torch.min(coef_1 * adv, coef_2 * adv)
    if kind == "grpo":
        per_token = surrogate + beta * per_token_kl if beta != 0 else surrogate
        loss = aggregate(per_token)
    else:
        loss = surrogate.squeeze(-1).mean()
        if beta != 0:
            loss = loss + beta * aggregate(per_token_kl)
    loss.backward()

    with torch.no_grad():
        ratio = coef_1.expand_as(mask)
        region = ((ratio < 1 - eps_low) & (adv < 0)) | ((ratio > 1 + eps_high) & (adv > 0))
        n_tok = mask.sum()
        metrics = {
            "clip_fraction": ((region.to(torch.float64) * mask).sum() / n_tok).item(),
            "kl_mean": ((per_token_kl * mask).sum() / n_tok).item() if has_ref else 0.0,
            "ratio_mean": ((ratio * mask).sum() / n_tok).item(),
            "n_tokens": int(n_tok.item()),
        }
    grad = [logp.grad[i, : len(s["logp"])].tolist() for i, s in enumerate(seqs)]
    return loss.item(), grad, metrics


def random_batch(gen, n_groups, group, max_len, old_scale, ref_scale, std_norm=True,
                 on_policy=False):
    """Groups of completions of lengths 1..max_len; one group with equal rewards (A = 0), binary
    and continuous rewards, old log-probs off by N(0, old_scale) so ratios fall on both sides of
    the clip range, reference log-probs off by N(0, ref_scale)."""
    rewards = []
    for g in range(n_groups):
        if g == 0:
            rewards += [0.5] * group
        elif g % 2:
            rewards += torch.randint(0, 2, (group,), generator=gen).to(torch.float64).tolist()
        else:
            rewards += (torch.rand(group, generator=gen, dtype=torch.float64) * 2 - 0.5).tolist()
    advantages = group_advantages(rewards, group, std_norm)
    seqs = []
    for a in advantages:
        n = int(torch.randint(1, max_len + 1, (1,), generator=gen).item())
        logp = f32(-torch.rand(n, generator=gen, dtype=torch.float64) * 4)
        noise = torch.randn(n, generator=gen, dtype=torch.float64)
        old = logp.clone() if on_policy else f32(logp + old_scale * noise)
        ref = f32(logp + ref_scale * torch.randn(n, generator=gen, dtype=torch.float64))
        seqs.append({"logp": logp, "old_logp": old, "ref_logp": ref, "advantage": a})
    return rewards, seqs


CASES = [
    # name, kind, loss_agg, clip_eps, clip_eps_high, kl_coef, keep_ref, batch kwargs
    ("grpo_seqmean_nokl", "grpo", "seq-mean-token-mean", 0.2, 0.0, 0.0, False, {}),
    ("grpo_tokenmean_kl_dapo_clip", "grpo", "token-mean", 0.2, 0.28, 0.04, True, {}),
    ("grpo_seqmean_kl", "grpo", "seq-mean-token-mean", 0.1, 0.0, 0.1, True, {}),
    ("grpo_on_policy_kl", "grpo", "seq-mean-token-mean", 0.2, 0.0, 0.02, True, {"on_policy": True}),
    ("grpo_kl_metric_only", "grpo", "token-mean", 0.2, 0.0, 0.0, True, {}),
    ("grpo_dr_grpo_tokenmean", "grpo", "token-mean", 0.2, 0.0, 0.0, False, {"std_norm": False}),
    ("gspo_seqmean_nokl", "gspo", "seq-mean-token-mean", 0.05, 0.0, 0.0, False, {}),
    ("gspo_tokenmean_kl", "gspo", "token-mean", 0.05, 0.08, 0.1, True, {}),
    ("gspo_paper_eps_kl", "gspo", "seq-mean-token-mean", 3e-4, 4e-4, 0.04, True,
     {"old_scale": 0.002}),
    ("gspo_on_policy", "gspo", "token-mean", 3e-4, 4e-4, 0.0, False, {"on_policy": True}),
]

ADVANTAGE_CASES = [
    ([1.0, 0.0, 0.0, 1.0], 2, True),
    ([1.0, 0.0, 0.0, 1.0], 2, False),
    ([0.0, 1.0, 1.0, 1.0, 0.3, 0.3, 0.3, 0.3], 4, True),
    ([2.5, -1.0, 0.25, 7.0, 3.0, 3.0], 3, True),
    ([2.5, -1.0, 0.25, 7.0, 3.0, 3.0], 3, False),
]


def main():
    gen = torch.Generator().manual_seed(SEED)
    out = {"torch": torch.__version__, "seed": SEED, "advantage_epsilon": ADV_EPS}

    advantages = []
    for rewards, group, std_norm in ADVANTAGE_CASES:
        advantages.append({"rewards": rewards, "group": group, "std_norm": std_norm,
                           "advantages": group_advantages(rewards, group, std_norm)})
    rand_rewards = (torch.rand(24, generator=gen, dtype=torch.float64) * 3 - 1).tolist()
    for group, std_norm in ((8, True), (6, False), (4, True)):
        advantages.append({"rewards": rand_rewards, "group": group, "std_norm": std_norm,
                           "advantages": group_advantages(rand_rewards, group, std_norm)})
    out["advantages"] = advantages

    objectives = []
    for name, kind, agg, eps, eps_high, beta, keep_ref, kw in CASES:
        batch = {"n_groups": 4, "group": 4, "max_len": 9, "old_scale": 0.25, "ref_scale": 0.3}
        batch.update(kw)
        rewards, seqs = random_batch(gen, **batch)
        if not keep_ref:
            for s in seqs:
                s["ref_logp"] = None
        eps_high_eff = eps_high if eps_high > 0 else eps
        loss, grad, metrics = objective(seqs, kind, agg, eps, eps_high_eff, beta)
        objectives.append({
            "name": name, "objective": kind, "loss_agg": agg, "clip_eps": eps,
            "clip_eps_high": eps_high, "kl_coef": beta, "group": batch["group"],
            "std_norm": batch.get("std_norm", True), "rewards": rewards,
            "seqs": [{"logp": s["logp"].tolist(), "old_logp": s["old_logp"].tolist(),
                      "ref_logp": s["ref_logp"].tolist() if s["ref_logp"] is not None else [],
                      "advantage": s["advantage"]} for s in seqs],
            "loss": loss, "grad": grad, **metrics,
        })
    out["objectives"] = objectives

    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(f"wrote {OUT}: {len(advantages)} advantage cases, {len(objectives)} objective cases")


if __name__ == "__main__":
    main()
