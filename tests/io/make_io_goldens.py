#!/usr/bin/env python3
# Generates the io test goldens in tests/data/io/: safetensors files written independently of arle
# (json + struct, in the layout of huggingface/safetensors' serializer) from seeded PyTorch tensors,
# their expected values, and the expected fields of the copied Hugging Face config.json files.
# Usage: python3 tests/io/make_io_goldens.py   (Debian python3-torch/numpy)
import json
import os
import struct

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "data", "io")

# safetensors dtype -> (torch dtype, little-endian numpy view of the raw bytes)
DTYPES = {
    "F64": (torch.float64, "<f8"), "F32": (torch.float32, "<f4"), "F16": (torch.float16, "<f2"),
    "BF16": (torch.bfloat16, None), "I64": (torch.int64, "<i8"), "I32": (torch.int32, "<i4"),
    "I16": (torch.int16, "<i2"), "I8": (torch.int8, "<i1"), "U8": (torch.uint8, "<u1"),
    "BOOL": (torch.bool, "<u1"),
}
SIZES = {"F64": 8, "I64": 8, "F32": 4, "I32": 4, "F16": 2, "BF16": 2, "I16": 2, "I8": 1, "U8": 1,
         "BOOL": 1}


def raw_bytes(t, st):
    if st == "BF16":
        return t.view(torch.int16).numpy().astype("<i2").tobytes()
    if st == "BOOL":
        return t.numpy().astype("<u1").tobytes()
    return t.numpy().astype(DTYPES[st][1]).tobytes()


def write(path, tensors, metadata):
    """tensors: list of (name, st dtype, torch tensor), written in this order, back to back."""
    header = {}
    if metadata:
        header["__metadata__"] = metadata
    blobs, offset = [], 0
    for name, st, t in tensors:
        raw = raw_bytes(t, st)
        header[name] = {"dtype": st, "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)  # the reference pads the header with spaces to 8 bytes
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def values(t):
    if t.dtype == torch.bool:
        return [int(v) for v in t.flatten().tolist()]
    if t.dtype.is_floating_point:
        return [float(v) for v in t.double().flatten().tolist()]  # exact: every value widens exactly
    return [int(v) for v in t.flatten().tolist()]


def make_tensor(st, shape, g):
    dt = DTYPES[st][0]
    if dt == torch.bool:
        return torch.randint(0, 2, shape, generator=g).bool()
    if dt.is_floating_point:
        return (torch.randn(shape, generator=g, dtype=torch.float64) * 3).to(dt)
    info = torch.iinfo(dt)
    lo, hi = max(info.min, -(2 ** 40)), min(info.max, 2 ** 40)
    return torch.randint(lo, hi, shape, generator=g, dtype=torch.int64).to(dt)


def main():
    os.makedirs(OUT, exist_ok=True)
    g = torch.Generator().manual_seed(1234)
    # all dtypes, ordered like the reference serializer (element size descending, then name), so a
    # writer following that layout reproduces the file byte for byte.
    specs = [("bool_t", "BOOL", [3, 5]), ("bf16_t", "BF16", [2, 3, 4]), ("f16_t", "F16", [7]),
             ("f32_t", "F32", [4, 3]), ("f64_t", "F64", [2, 2]), ("i16_t", "I16", [5]),
             ("i32_t", "I32", [2, 3]), ("i64_t", "I64", [3]), ("i8_t", "I8", [9]),
             ("u8_t", "U8", [2, 2, 2, 2]), ("scalar_f32", "F32", []), ("empty_f32", "F32", [0, 4])]
    tensors = [(n, st, make_tensor(st, s, g)) for n, st, s in specs]
    tensors.sort(key=lambda x: (-SIZES[x[1]], x[0]))
    metadata = {"format": "pt", "note": "arle io golden"}
    write(os.path.join(OUT, "all_dtypes.safetensors"), tensors, metadata)
    expected = {"metadata": metadata, "order": [n for n, _, _ in tensors], "tensors": {
        n: {"dtype": st, "shape": list(t.shape), "values": values(t)} for n, st, t in tensors}}
    with open(os.path.join(OUT, "all_dtypes.expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")

    # Expected ModelConfig fields of the copied config.json files, read from the files themselves
    # (defaults of transformers' LlamaConfig/Qwen3Config where a field is absent).
    exp = {}
    for name in ["Qwen3-0.6B.config.json", "Qwen3-4B.config.json", "stories260K.config.json"]:
        with open(os.path.join(OUT, name)) as f:
            c = json.load(f)
        arch = c["architectures"][0]
        eos = c.get("eos_token_id")
        exp[name] = {
            "hf_architecture": arch,
            "n_vocab": c["vocab_size"], "n_embd": c["hidden_size"],
            "n_layer": c["num_hidden_layers"], "n_head": c["num_attention_heads"],
            "n_head_kv": c.get("num_key_value_heads", c["num_attention_heads"]),
            "head_dim": c.get("head_dim", c["hidden_size"] // c["num_attention_heads"]),
            "n_ff": c["intermediate_size"], "n_ctx_train": c["max_position_embeddings"],
            "norm_eps": c["rms_norm_eps"], "rope_theta": float(c["rope_theta"]),
            "tie_word_embeddings": c.get("tie_word_embeddings", False),
            "attention_bias": c.get("attention_bias", False),
            "qk_norm": arch == "Qwen3ForCausalLM",
            "bos_token_id": c.get("bos_token_id", -1),
            "eos_token_ids": [] if eos is None else (eos if isinstance(eos, list) else [eos]),
            "torch_dtype": c.get("torch_dtype", c.get("dtype", "float32")),
        }
    with open(os.path.join(OUT, "configs.expected.json"), "w") as f:
        json.dump(exp, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
