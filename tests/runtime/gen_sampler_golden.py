#!/usr/bin/python3
# Writes tests/runtime/golden/sampler_golden.json: reference sampling distributions computed with
# PyTorch (Debian python3-torch) following Hugging Face's logits processors/warpers and vLLM's
# apply_penalties. Run: /usr/bin/python3 tests/runtime/gen_sampler_golden.py
import json
import os

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "golden", "sampler_golden.json")
LARGE_VOCAB = 151936  # Qwen3's vocabulary size


def large_logits():
    """Hash-spread logits in [-8, 8), rebuilt bit-identically by the C++ test (LargeLogits)."""
    i = torch.arange(LARGE_VOCAB, dtype=torch.int64)
    h = (i * 2654435761) % (1 << 32)
    return (h.to(torch.float64) / float(1 << 28) - 8.0).to(torch.float32)


def bias_and_penalties(logits, p, context, n_prompt):
    """vLLM order: logit bias, then apply_penalties (repetition, frequency, presence), float32."""
    x = logits.clone()
    for tok, b in p.get("logit_bias", []):
        x[tok] += b
    v = x.numel()
    ctx = torch.tensor(context, dtype=torch.int64)
    gen = torch.tensor(context[n_prompt:], dtype=torch.int64)
    seen = torch.zeros(v, dtype=torch.bool)
    if ctx.numel():
        seen[ctx] = True
    counts = torch.bincount(gen, minlength=v) if gen.numel() else torch.zeros(v, dtype=torch.int64)
    rep = p.get("repetition_penalty", 1.0)
    if rep != 1.0:
        pen = torch.where(seen, torch.tensor(rep, dtype=torch.float32), torch.tensor(1.0))
        x = torch.where(x > 0, x / pen, x * pen)
    freq = p.get("frequency_penalty", 0.0)
    pres = p.get("presence_penalty", 0.0)
    if freq != 0.0 or pres != 0.0:
        x = x - torch.tensor(freq, dtype=torch.float32) * counts.to(torch.float32)
        x = x - torch.tensor(pres, dtype=torch.float32) * (counts > 0).to(torch.float32)
    return x


def warp(processed, p):
    """HF warper order: temperature, top-k, top-p, min-p; float64; returns final probabilities."""
    s = processed.to(torch.float64) / p.get("temperature", 1.0)
    neg_inf = float("-inf")
    k = p.get("top_k", 0)
    if 0 < k < s.numel():
        kth = torch.topk(s, k).values[-1]
        assert (s == kth).sum() == 1, "tie at the top-k boundary"
        s = s.masked_fill(s < kth, neg_inf)
    top_p = p.get("top_p", 1.0)
    if top_p < 1.0:
        # TopPLogitsWarper: sort ascending, remove tokens whose cumulative mass <= 1 - top_p.
        sorted_s, idx = torch.sort(s, descending=False)
        cum = sorted_s.softmax(-1).cumsum(-1)
        margin = (cum - (1 - top_p)).abs().min().item()
        assert margin > 1e-5, f"a token sits on the top-p boundary (margin {margin})"
        remove_sorted = cum <= (1 - top_p)
        remove_sorted[-1] = False  # min_tokens_to_keep = 1
        remove = remove_sorted.scatter(0, idx, remove_sorted)
        s = s.masked_fill(remove, neg_inf)
    min_p = p.get("min_p", 0.0)
    if min_p > 0.0:
        probs = s.softmax(-1)
        cut = min_p * probs.max()
        margin = ((probs - cut).abs() / cut).min().item()
        assert margin > 1e-5, f"a token sits on the min-p boundary (margin {margin})"
        s = s.masked_fill(probs < cut, neg_inf)
    return s.softmax(-1)


def f32_list(t):
    return [float(v) for v in t.to(torch.float32).tolist()]


def make_case(name, logits, params, context=(), n_prompt=0, small=True):
    context = list(context)
    processed = bias_and_penalties(logits, params, context, n_prompt)
    probs = warp(processed, params)
    case = {
        "name": name,
        "params": params,
        "context": context,
        "n_prompt": n_prompt,
    }
    if small:
        case["logits"] = f32_list(logits)
        case["processed"] = f32_list(processed)
        case["probs"] = [float(v) for v in probs.tolist()]
        case["raw_logprobs"] = [float(v) for v in torch.log_softmax(logits.double(), -1).tolist()]
        case["processed_logprobs"] = [
            float(v) for v in torch.log_softmax(processed.double(), -1).tolist()]
    else:
        kept = torch.nonzero(probs > 0).flatten()
        case["large_vocab"] = LARGE_VOCAB
        case["kept_ids"] = [int(v) for v in kept.tolist()]
        case["kept_probs"] = [float(v) for v in probs[kept].tolist()]
    return case


def main():
    g = torch.Generator().manual_seed(1234)
    small = (torch.randn(64, generator=g, dtype=torch.float64) * 2.0).to(torch.float32)
    top = int(torch.argmax(small))
    prompt = [3, 7, 7, 12, 40]
    generated = [7, 12, 12, 12, 55, 3, 60, 60]
    cases = [
        make_case("temperature_1", small, {"temperature": 1.0}),
        make_case("temperature_0.7", small, {"temperature": 0.7}),
        make_case("temperature_1.5", small, {"temperature": 1.5}),
        make_case("top_k_8", small, {"temperature": 1.0, "top_k": 8}),
        make_case("top_p_0.6", small, {"temperature": 1.0, "top_p": 0.6}),
        make_case("min_p_0.05", small, {"temperature": 1.0, "min_p": 0.05}),
        make_case("combined", small,
                  {"temperature": 1.2, "top_k": 20, "top_p": 0.95, "min_p": 0.03}),
        make_case("penalties", small,
                  {"temperature": 1.0, "repetition_penalty": 1.3, "presence_penalty": 0.5,
                   "frequency_penalty": 0.3, "logit_bias": [[3, 2.5], [10, -1.0]]},
                  prompt + generated, len(prompt)),
        make_case("negative_penalties", small,
                  {"temperature": 0.9, "repetition_penalty": 0.8, "presence_penalty": -0.5,
                   "frequency_penalty": -0.2},
                  prompt + generated, len(prompt)),
        make_case("bias_minus_100", small, {"temperature": 1.0, "logit_bias": [[top, -100.0]]}),
        make_case("bias_plus_100", small, {"temperature": 1.0, "logit_bias": [[5, 100.0]]}),
    ]
    large = large_logits()
    cases += [
        make_case("large_top_p", large, {"temperature": 0.1, "top_p": 0.9}, small=False),
        make_case("large_combined", large,
                  {"temperature": 0.7, "top_k": 100, "top_p": 0.95, "min_p": 0.02},
                  small=False),
    ]
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump({"generator": "tests/runtime/gen_sampler_golden.py", "torch": torch.__version__,
                   "cases": cases}, f, separators=(",", ":"))
        f.write("\n")
    for c in cases:
        n = len(c.get("kept_ids", [])) or sum(1 for v in c["probs"] if v > 0)
        print(f"{c['name']}: {n} tokens kept")


if __name__ == "__main__":
    main()
