#!/usr/bin/python3
"""Writes tests/data/models/rope_freqs.json: RoPE inverse frequencies and attention scaling for
default, linear, llama3 and yarn configs, computed with torch (Debian python3-torch) following
transformers' modeling_rope_utils (_compute_default/linear/llama3/yarn_parameters) line by line.
Run: /usr/bin/python3 tests/models/gen_rope_freqs.py  (from the repository root)."""
import json
import math
import os

import torch


def default_inv_freq(base, dim):
    return 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).to(dtype=torch.float) / dim))


def llama3(base, dim, factor, low_freq_factor, high_freq_factor, old_context_len):
    inv_freq = default_inv_freq(base, dim)
    low_freq_wavelen = old_context_len / low_freq_factor
    high_freq_wavelen = old_context_len / high_freq_factor
    wavelen = 2 * math.pi / inv_freq
    inv_freq_llama = torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
    smooth_factor = (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
    smoothed_inv_freq = (1 - smooth_factor) * inv_freq_llama / factor + smooth_factor * inv_freq_llama
    is_medium_freq = ~(wavelen < high_freq_wavelen) * ~(wavelen > low_freq_wavelen)
    return torch.where(is_medium_freq, smoothed_inv_freq, inv_freq_llama), 1.0


def yarn(base, dim, factor, original_max, beta_fast=32, beta_slow=1):
    def get_mscale(scale, mscale=1):
        return 1.0 if scale <= 1 else 0.1 * mscale * math.log(scale) + 1.0

    attention_factor = get_mscale(factor)

    def find_correction_dim(num_rotations, dim, base, max_position_embeddings):
        return (dim * math.log(max_position_embeddings / (num_rotations * 2 * math.pi))) / (2 * math.log(base))

    def find_correction_range(low_rot, high_rot, dim, base, max_position_embeddings):
        low = math.floor(find_correction_dim(low_rot, dim, base, max_position_embeddings))
        high = math.ceil(find_correction_dim(high_rot, dim, base, max_position_embeddings))
        return max(low, 0), min(high, dim - 1)

    def linear_ramp_factor(min, max, dim):
        if min == max:
            max += 0.001
        linear_func = (torch.arange(dim, dtype=torch.float32) - min) / (max - min)
        return torch.clamp(linear_func, 0, 1)

    pos_freqs = base ** (torch.arange(0, dim, 2).to(dtype=torch.float) / dim)
    inv_freq_extrapolation = 1.0 / pos_freqs
    inv_freq_interpolation = 1.0 / (factor * pos_freqs)
    low, high = find_correction_range(beta_fast, beta_slow, dim, base, original_max)
    inv_freq_extrapolation_factor = 1 - linear_ramp_factor(low, high, dim // 2).to(dtype=torch.float)
    inv_freq = (inv_freq_interpolation * (1 - inv_freq_extrapolation_factor)
                + inv_freq_extrapolation * inv_freq_extrapolation_factor)
    return inv_freq, attention_factor


def main():
    cases = []

    def add(name, cfg, inv_freq, scaling):
        cases.append({"name": name, "config": cfg, "inv_freq": [float(x) for x in inv_freq.tolist()],
                      "attention_scaling": scaling})

    for base, dim in [(10000.0, 16), (1000000.0, 128), (500000.0, 64)]:
        add(f"default_{int(base)}_{dim}", {"type": "none", "theta": base, "head_dim": dim},
            default_inv_freq(base, dim), 1.0)
    add("linear_4", {"type": "linear", "theta": 10000.0, "head_dim": 64, "factor": 4.0},
        default_inv_freq(10000.0, 64) / 4.0, 1.0)
    f, s = llama3(500000.0, 128, 8.0, 1.0, 4.0, 8192)
    add("llama3_8", {"type": "llama3", "theta": 500000.0, "head_dim": 128, "factor": 8.0,
                     "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max": 8192}, f, s)
    f, s = llama3(10000.0, 16, 8.0, 1.0, 4.0, 32)
    add("llama3_tiny", {"type": "llama3", "theta": 10000.0, "head_dim": 16, "factor": 8.0,
                        "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max": 32}, f, s)
    f, s = yarn(1000000.0, 128, 4.0, 32768)
    add("yarn_4", {"type": "yarn", "theta": 1000000.0, "head_dim": 128, "factor": 4.0,
                   "original_max": 32768}, f, s)
    out = os.path.join(os.path.dirname(__file__), "..", "data", "models", "rope_freqs.json")
    with open(out, "w") as fh:
        json.dump({"generator": "tests/models/gen_rope_freqs.py", "torch": torch.__version__,
                   "cases": cases}, fh, indent=1)
        fh.write("\n")


if __name__ == "__main__":
    main()
