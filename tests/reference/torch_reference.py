#!/usr/bin/python3
# PyTorch reference forward for Hugging Face Qwen3ForCausalLM / LlamaForCausalLM directories,
# written from scratch after transformers' modeling_qwen3.py / modeling_llama.py; writes goldens.
# Run with Debian's /usr/bin/python3 (python3-torch, python3-numpy); no transformers needed.
"""PyTorch reference for arle's model goldens.

Subcommands:
  golden  --model DIR --name NAME --out-dir D --prompt "1,2,3" [--prompt ...] [--greedy 32]
          Computes logits at every position of each prompt and greedy continuations, writes
          D/NAME.json (metadata) and D/NAME.logits.f32 (little-endian float32, the prompts'
          [n_tokens, n_vocab] blocks concatenated in order).
  init    --arch {qwen3,llama} --config JSON --dtype {f32,bf16,f16} --seed N --out DIR
          A fallback writer of random models in Hugging Face layout, used only when no
          `arle model init` is available.

Numerics: weights are read from the safetensors file exactly as stored and upcast exactly to
float64 (bf16/f16/f32 -> f64 is exact); the whole forward runs in float64. So the goldens are the
true values of the math transformers implements, and the C++ f32 forward is compared against them
with a tolerance derived from f32 accumulation error.
"""

import argparse
import json
import math
import os
import struct
import sys

import numpy as np
import torch

COMPUTE = torch.float64


# ----------------------------------------------------------------------------- safetensors I/O

_ST_DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16, "F64": np.float64}


def load_safetensors(path):
    """Returns {name: float64 tensor} from one .safetensors file (parsed with json + numpy)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        dtype = info["dtype"]
        if dtype not in _ST_DTYPES:
            raise ValueError(f"{path}: unsupported dtype {dtype} for {name}")
        arr = np.frombuffer(data, dtype=_ST_DTYPES[dtype], count=(end - begin) //
                            np.dtype(_ST_DTYPES[dtype]).itemsize, offset=base + begin)
        if dtype == "BF16":
            # bf16 is the top half of an f32: widen bit-exactly.
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        t = torch.from_numpy(arr.astype(np.float64).reshape(info["shape"]))
        out[name] = t
    return out


def load_model_tensors(model_dir):
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            weight_map = json.load(f)["weight_map"]
        tensors = {}
        for shard in sorted(set(weight_map.values())):
            tensors.update(load_safetensors(os.path.join(model_dir, shard)))
        return tensors
    return load_safetensors(os.path.join(model_dir, "model.safetensors"))


def write_safetensors(path, tensors, dtype):
    """tensors: list of (name, float32 numpy array); dtype: 'f32' | 'bf16' | 'f16'."""
    header = {"__metadata__": {"format": "pt"}}
    blobs = []
    offset = 0
    for name, arr in tensors:
        if dtype == "f32":
            raw, st = arr.astype("<f4").tobytes(), "F32"
        elif dtype == "f16":
            raw, st = arr.astype("<f2").tobytes(), "F16"
        else:
            bits = torch.from_numpy(arr.astype(np.float32)).to(torch.bfloat16).view(torch.int16)
            raw, st = bits.numpy().astype("<i2").tobytes(), "BF16"
        header[name] = {"dtype": st, "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(path + ".tmp", path)


# ----------------------------------------------------------------------------- config / RoPE

class Config:
    def __init__(self, d):
        self.raw = d
        arch = (d.get("architectures") or [""])[0]
        if arch not in ("Qwen3ForCausalLM", "LlamaForCausalLM"):
            raise ValueError(f"unsupported architecture {arch!r}")
        self.arch = arch
        self.vocab_size = d["vocab_size"]
        self.hidden_size = d["hidden_size"]
        self.n_layers = d["num_hidden_layers"]
        self.n_heads = d["num_attention_heads"]
        self.n_kv_heads = d.get("num_key_value_heads") or self.n_heads
        self.head_dim = d.get("head_dim") or self.hidden_size // self.n_heads
        self.eps = d["rms_norm_eps"]
        self.rope_theta = d.get("rope_theta", 10000.0)
        self.rope_scaling = d.get("rope_scaling")
        self.max_pos = d.get("max_position_embeddings", 2048)
        self.tie = d.get("tie_word_embeddings", False)
        self.qk_norm = arch == "Qwen3ForCausalLM"
        if d.get("hidden_act", "silu") != "silu":
            raise ValueError("only hidden_act silu is implemented")


def rope_inv_freq(cfg):
    """(inv_freq [head_dim/2], attention_scaling) as transformers' ROPE_INIT_FUNCTIONS compute
    them (there in float32; here in float64)."""
    dim = cfg.head_dim
    base = cfg.rope_theta
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).to(COMPUTE) / dim))
    rs = cfg.rope_scaling
    if not rs:
        return inv_freq, 1.0
    kind = rs.get("rope_type", rs.get("type"))
    if kind == "default":
        return inv_freq, 1.0
    if kind == "linear":
        return inv_freq / rs["factor"], 1.0
    if kind == "llama3":
        factor = rs["factor"]
        low_freq_factor = rs["low_freq_factor"]
        high_freq_factor = rs["high_freq_factor"]
        old_context_len = rs["original_max_position_embeddings"]
        low_freq_wavelen = old_context_len / low_freq_factor
        high_freq_wavelen = old_context_len / high_freq_factor
        wavelen = 2 * math.pi / inv_freq
        inv_freq_llama = torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
        smooth_factor = (old_context_len / wavelen - low_freq_factor) / (
            high_freq_factor - low_freq_factor)
        smoothed = (1 - smooth_factor) * inv_freq_llama / factor + smooth_factor * inv_freq_llama
        is_medium = ~(wavelen < high_freq_wavelen) * ~(wavelen > low_freq_wavelen)
        return torch.where(is_medium, smoothed, inv_freq_llama), 1.0
    if kind == "yarn":
        # As transformers' _compute_yarn_parameters (current main): `factor` from the config,
        # original_max_position_embeddings from rope_scaling (else max_position_embeddings), and
        # cos/sin scaled by attention_factor (default 0.1 * ln(factor) + 1). Older transformers
        # (~4.45-4.5x) replaced factor by max_position_embeddings / original when the latter was
        # given; configs where the two agree avoid that difference.
        factor = rs["factor"]
        orig = rs.get("original_max_position_embeddings") or cfg.max_pos

        def get_mscale(scale, mscale=1.0):
            return 1.0 if scale <= 1 else 0.1 * mscale * math.log(scale) + 1.0

        attention_factor = rs.get("attention_factor")
        if attention_factor is None:
            if rs.get("mscale") and rs.get("mscale_all_dim"):
                attention_factor = get_mscale(factor, rs["mscale"]) / get_mscale(
                    factor, rs["mscale_all_dim"])
            else:
                attention_factor = get_mscale(factor)
        beta_fast = rs.get("beta_fast") or 32
        beta_slow = rs.get("beta_slow") or 1

        def correction_dim(rot):
            return (dim * math.log(orig / (rot * 2 * math.pi))) / (2 * math.log(base))

        low, high = correction_dim(beta_fast), correction_dim(beta_slow)
        if rs.get("truncate", True):
            low, high = math.floor(low), math.ceil(high)
        low, high = max(low, 0), min(high, dim - 1)
        if low == high:
            high += 0.001
        ramp = torch.clamp((torch.arange(dim // 2, dtype=COMPUTE) - low) / (high - low), 0, 1)
        extrapolation_factor = 1 - ramp
        pos_freqs = base ** (torch.arange(0, dim, 2, dtype=torch.int64).to(COMPUTE) / dim)
        inv_extra, inv_inter = 1.0 / pos_freqs, 1.0 / (factor * pos_freqs)
        inv = inv_inter * (1 - extrapolation_factor) + inv_extra * extrapolation_factor
        return inv, attention_factor
    raise ValueError(f"rope_scaling type {kind!r} is not implemented in the reference")


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


# ----------------------------------------------------------------------------- forward

class Model:
    def __init__(self, model_dir):
        with open(os.path.join(model_dir, "config.json")) as f:
            self.cfg = Config(json.load(f))
        self.w = load_model_tensors(model_dir)
        self.weight_dtypes = self._weight_dtypes(model_dir)
        self.inv_freq, self.attn_scaling = rope_inv_freq(self.cfg)

    @staticmethod
    def _weight_dtypes(model_dir):
        path = os.path.join(model_dir, "model.safetensors")
        if not os.path.exists(path):
            return []
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(n))
        return sorted({v["dtype"] for k, v in header.items() if k != "__metadata__"})

    def linear(self, x, name):
        y = x @ self.w[name + ".weight"].T
        b = self.w.get(name + ".bias")
        return y if b is None else y + b

    def rms_norm(self, x, name):
        # transformers: variance in f32 of the input, x * rsqrt(var + eps), then weight * x.
        var = x.pow(2).mean(-1, keepdim=True)
        return self.w[name + ".weight"] * (x * torch.rsqrt(var + self.cfg.eps))

    def forward(self, ids):
        """ids: list of ints. Returns logits [len(ids), vocab] (float64)."""
        c = self.cfg
        t = len(ids)
        x = self.w["model.embed_tokens.weight"][torch.tensor(ids)]
        pos = torch.arange(t, dtype=COMPUTE)
        freqs = pos[:, None] * self.inv_freq[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        cos = emb.cos() * self.attn_scaling  # [t, head_dim]
        sin = emb.sin() * self.attn_scaling
        mask = torch.full((t, t), float("-inf"), dtype=COMPUTE).triu(1)
        n_rep = c.n_heads // c.n_kv_heads
        for i in range(c.n_layers):
            p = f"model.layers.{i}."
            h = self.rms_norm(x, p + "input_layernorm")
            q = self.linear(h, p + "self_attn.q_proj").view(t, c.n_heads, c.head_dim)
            k = self.linear(h, p + "self_attn.k_proj").view(t, c.n_kv_heads, c.head_dim)
            v = self.linear(h, p + "self_attn.v_proj").view(t, c.n_kv_heads, c.head_dim)
            if c.qk_norm:
                q = self.rms_norm(q, p + "self_attn.q_norm")
                k = self.rms_norm(k, p + "self_attn.k_norm")
            q, k, v = q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1)  # [heads, t, hd]
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            k = k.repeat_interleave(n_rep, dim=0)  # repeat_kv: kv head j serves q heads j*n_rep..
            v = v.repeat_interleave(n_rep, dim=0)
            scores = (q @ k.transpose(1, 2)) * (c.head_dim ** -0.5) + mask
            probs = torch.softmax(scores, dim=-1)
            attn = (probs @ v).transpose(0, 1).reshape(t, c.n_heads * c.head_dim)
            x = x + self.linear(attn, p + "self_attn.o_proj")
            h = self.rms_norm(x, p + "post_attention_layernorm")
            gate = self.linear(h, p + "mlp.gate_proj")
            up = self.linear(h, p + "mlp.up_proj")
            x = x + self.linear(torch.nn.functional.silu(gate) * up, p + "mlp.down_proj")
        x = self.rms_norm(x, "model.norm")
        head = self.w.get("lm_head.weight")
        if head is None or c.tie:
            head = self.w["model.embed_tokens.weight"]
        return x @ head.T


def greedy(model, prompt, n):
    """n greedy tokens after `prompt` (argmax, lowest id on ties), by full recompute. Also returns
    the smallest gap between the best and second-best logit seen, relative to the logit scale."""
    ids = list(prompt)
    out, min_margin = [], float("inf")
    for _ in range(n):
        logits = model.forward(ids)[-1]
        best = int(torch.argmax(logits))  # torch.argmax returns the first maximal index
        top2 = torch.topk(logits, 2).values
        scale = float(logits.abs().max())
        min_margin = min(min_margin, float(top2[0] - top2[1]) / scale)
        out.append(best)
        ids.append(best)
    return out, min_margin


def cmd_golden(args):
    model = Model(args.model)
    prompts = [[int(t) for t in p.split(",")] for p in args.prompt]
    os.makedirs(args.out_dir, exist_ok=True)
    meta_prompts, blobs, offset = [], [], 0
    for p in prompts:
        if any(t < 0 or t >= model.cfg.vocab_size for t in p):
            raise ValueError(f"prompt {p} has ids outside the vocabulary")
        logits = model.forward(p)
        gen, margin = greedy(model, p, args.greedy)
        blob = logits.to(torch.float32).numpy().astype("<f4").tobytes()
        meta_prompts.append({
            "tokens": p,
            "logits_offset": offset,  # in float32 values
            "n_positions": len(p),
            "max_abs_logit": float(logits.abs().max()),
            "greedy": gen,
            "greedy_min_relative_margin": margin,
        })
        blobs.append(blob)
        offset += logits.numel()
        if margin < 1e-4:  # f32 vs float64 logit error is ~1e-6 of the scale
            print(f"warning: {args.name}: greedy top-2 margin {margin:.2e} is close to a tie",
                  file=sys.stderr)
    logits_file = args.name + ".logits.f32"
    with open(os.path.join(args.out_dir, logits_file), "wb") as f:
        for b in blobs:
            f.write(b)
    meta = {
        "name": args.name,
        "model_dir": os.path.relpath(os.path.abspath(args.model), os.path.abspath(args.out_dir)),
        "architecture": model.cfg.arch,
        "weights_dtypes": model.weight_dtypes,
        "compute_dtype": "float64 (weights upcast exactly from the stored dtype)",
        "logits_dtype": "float32 little-endian, [n_positions, n_vocab] per prompt, concatenated",
        "n_vocab": model.cfg.vocab_size,
        "logits_file": logits_file,
        "greedy_tokens": args.greedy,
        "greedy_rule": "argmax of the last position's logits, lowest id on ties, appended and "
                       "recomputed from scratch",
        "reference": "tests/reference/torch_reference.py (torch " + torch.__version__ + ")",
        "prompts": meta_prompts,
    }
    # One line per prompt keeps the file short and diffable.
    prompts_text = ",\n".join("  " + json.dumps(p) for p in meta.pop("prompts"))
    text = json.dumps(meta, indent=1)
    text = text[:-2] + ',\n "prompts": [\n' + prompts_text + "\n ]\n}\n"
    json.loads(text)
    with open(os.path.join(args.out_dir, args.name + ".json"), "w") as f:
        f.write(text)


def cmd_init(args):
    """Random model in HF layout (fallback when `arle model init` is not available)."""
    cfg_dict = json.loads(args.config)
    cfg_dict.setdefault("architectures", ["Qwen3ForCausalLM" if args.arch == "qwen3"
                                          else "LlamaForCausalLM"])
    cfg_dict.setdefault("model_type", args.arch)
    cfg_dict["torch_dtype"] = {"f32": "float32", "bf16": "bfloat16", "f16": "float16"}[args.dtype]
    c = Config(cfg_dict)
    g = torch.Generator().manual_seed(args.seed)
    std = cfg_dict.get("initializer_range", 0.02)

    def mat(*shape):
        return (torch.randn(*shape, generator=g, dtype=torch.float64) * std).numpy()

    def norm(n):
        return (1.0 + 0.1 * torch.randn(n, generator=g, dtype=torch.float64)).numpy()

    qd, kvd = c.n_heads * c.head_dim, c.n_kv_heads * c.head_dim
    ff = cfg_dict["intermediate_size"]
    attn_bias = cfg_dict.get("attention_bias", False)
    mlp_bias = cfg_dict.get("mlp_bias", False) and args.arch == "llama"

    def linear(name, n_out, n_in, bias):
        out = [(name + ".weight", mat(n_out, n_in))]
        return out + [(name + ".bias", mat(n_out))] if bias else out

    t = [("model.embed_tokens.weight", mat(c.vocab_size, c.hidden_size))]
    for i in range(c.n_layers):
        p = f"model.layers.{i}."
        t += [(p + "input_layernorm.weight", norm(c.hidden_size))]
        t += linear(p + "self_attn.q_proj", qd, c.hidden_size, attn_bias)
        t += linear(p + "self_attn.k_proj", kvd, c.hidden_size, attn_bias)
        t += linear(p + "self_attn.v_proj", kvd, c.hidden_size, attn_bias)
        t += linear(p + "self_attn.o_proj", c.hidden_size, qd, attn_bias)
        if c.qk_norm:
            t += [(p + "self_attn.q_norm.weight", norm(c.head_dim)),
                  (p + "self_attn.k_norm.weight", norm(c.head_dim))]
        t += [(p + "post_attention_layernorm.weight", norm(c.hidden_size))]
        t += linear(p + "mlp.gate_proj", ff, c.hidden_size, mlp_bias)
        t += linear(p + "mlp.up_proj", ff, c.hidden_size, mlp_bias)
        t += linear(p + "mlp.down_proj", c.hidden_size, ff, mlp_bias)
    t.append(("model.norm.weight", norm(c.hidden_size)))
    if not c.tie:
        t.append(("lm_head.weight", mat(c.vocab_size, c.hidden_size)))
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(cfg_dict, f, indent=2)
        f.write("\n")
    gen = {"bos_token_id": cfg_dict.get("bos_token_id"), "eos_token_id":
           cfg_dict.get("eos_token_id")}
    with open(os.path.join(args.out, "generation_config.json"), "w") as f:
        json.dump(gen, f, indent=2)
        f.write("\n")
    write_safetensors(os.path.join(args.out, "model.safetensors"),
                      [(n, a.astype(np.float32)) for n, a in t], args.dtype)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("golden")
    g.add_argument("--model", required=True)
    g.add_argument("--name", required=True)
    g.add_argument("--out-dir", required=True)
    g.add_argument("--prompt", action="append", required=True, help="comma-separated token ids")
    g.add_argument("--greedy", type=int, default=32)
    i = sub.add_parser("init")
    i.add_argument("--arch", choices=["qwen3", "llama"], required=True)
    i.add_argument("--config", required=True, help="full config.json content (JSON)")
    i.add_argument("--dtype", choices=["f32", "bf16", "f16"], default="f32")
    i.add_argument("--seed", type=int, default=0)
    i.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.set_num_threads(1)
    {"golden": cmd_golden, "init": cmd_init}[args.cmd](args)


if __name__ == "__main__":
    main()
