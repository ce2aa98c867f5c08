#!/usr/bin/env python3
"""`arle quantize`: every file type on a tiny Llama GGUF, and q4_k_m from a Qwen3 HF directory.

Checks, per type, the tensor types in the output (parsed here with an independent reader of the
GGUF v3 layout) against llama.cpp's rules written out again below, that metadata and 1-D tensors
are kept, general.file_type, that the file is smaller, and that `arle run` generates from it.
GGUF files from `arle model init --dtype bf16/f16`, the HF export and `arle quantize` hold every
norm and bias in F32, as llama.cpp's converter writes them (llama.cpp's forward aborts on a BF16
norm). Bad input (unknown type, missing or non-GGUF input) exits 2 with a message.
"""
import argparse
import os
import struct
import subprocess
import sys
import tempfile

FAILURES = []

# ggml type ids
F32, F16, Q4_0, Q8_0, Q4_K, Q5_K, Q6_K, BF16 = 0, 1, 2, 8, 12, 13, 14, 30
BASE = {"q8_0": Q8_0, "q4_0": Q4_0, "q4_k_m": Q4_K, "q5_k_m": Q5_K, "q6_k": Q6_K}
FILE_TYPE = {"q8_0": 7, "q4_0": 2, "q4_k_m": 15, "q5_k_m": 17, "q6_k": 18}
BLOCK = {Q8_0: 32, Q4_0: 32, Q4_K: 256, Q5_K: 256, Q6_K: 256}


def check(cond, what, detail=None):
    """`detail` (e.g. a process's outcome) is printed with a failure only."""
    print(("ok   " if cond else "FAIL ") + what + (f" ({detail})" if detail and not cond else ""))
    if not cond:
        FAILURES.append(what)


def outcome(r):
    """A finished subprocess for a check's message: the return code (negative: killed by that
    signal, e.g. -11 for a crash), then the ends of stdout and stderr."""
    return (f"rc {r.returncode}, stdout {r.stdout.strip()[-300:]!r}, "
            f"stderr {r.stderr.strip()[-300:]!r}")


def read_gguf(path):
    """Returns (metadata dict, {tensor name: (ggml type, dims)}) of a GGUF v3 file."""
    with open(path, "rb") as f:
        data = f.read()
    at = 0

    def take(fmt):
        nonlocal at
        v = struct.unpack_from("<" + fmt, data, at)
        at += struct.calcsize("<" + fmt)
        return v[0]

    def string():
        nonlocal at
        n = take("Q")
        s = data[at:at + n].decode()
        at += n
        return s

    scalar = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q",
              12: "d"}

    def value(t):
        if t == 8:
            return string()
        if t == 9:
            et, n = take("I"), take("Q")
            return [value(et) for _ in range(n)]
        return take(scalar[t])

    assert data[:4] == b"GGUF", "not a GGUF file"
    at = 4
    version, n_tensors, n_kv = take("I"), take("Q"), take("Q")
    assert version == 3
    meta = {}
    for _ in range(n_kv):
        k = string()
        meta[k] = value(take("I"))
    tensors = {}
    for _ in range(n_tensors):
        name = string()
        dims = [take("Q") for _ in range(take("I"))]
        tensors[name] = (take("I"), dims)
        take("Q")  # offset
    return meta, tensors


def use_more_bits(i, n):
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def stored_as_f32(name, dims):
    """convert_hf_to_gguf.py's rule: these tensors are written in F32 whatever the model dtype."""
    return len(dims) <= 1 or name.endswith("_norm.weight") or not name.endswith(".weight")


def check_f32_small_tensors(tensors, what):
    wrong = [f"{name}: type {t}" for name, (t, dims) in tensors.items()
             if stored_as_f32(name, dims) and t != F32]
    n = sum(1 for name, (_, dims) in tensors.items() if stored_as_f32(name, dims))
    check(n > 0 and not wrong, f"{what}: all {n} norms/biases are F32 {wrong[:3]}")


def expected_type(ftype, name, ggml_type, dims, n_layer, has_output):
    """llama.cpp's llama_tensor_get_type for these file types (arle: Q8_0 fallback); tensors that
    stay unquantized follow the converter's F32 rule."""
    if ggml_type in (F16, BF16) and stored_as_f32(name, dims):
        return F32
    if len(dims) != 2 or not name.endswith(".weight") or name.endswith("_norm.weight") or \
            ggml_type not in (F32, F16, BF16):
        return ggml_type
    want = BASE[ftype]
    if name == "output.weight" or (not has_output and name == "token_embd.weight"):
        if ftype != "q8_0":
            want = Q6_K
    elif ftype in ("q4_k_m", "q5_k_m") and name.startswith("blk.") and \
            name.split(".")[2] in ("attn_v", "ffn_down"):
        if use_more_bits(int(name.split(".")[1]), n_layer):
            want = Q6_K
    cols = dims[0]  # GGUF ne[0]: the row length
    if cols % BLOCK[want] == 0:
        return want
    return Q8_0 if cols % 32 == 0 else ggml_type


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arle", required=True)
    ap.add_argument("--source-dir", required=True)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "m.gguf")
        # 16 layers, so use_more_bits picks some layers and not others; 256-wide rows for the
        # K-quants; ffn_down's rows are 352 wide, a multiple of 32 but not of 256, so they take the
        # Q8_0 fallback.
        cfg = '{"hidden_size":256,"intermediate_size":352,"num_hidden_layers":16,' \
              '"num_attention_heads":4,"num_key_value_heads":2,"tie_word_embeddings":false}'
        init = subprocess.run([args.arle, "model", "init", "--arch", "llama", "--preset", "tiny",
                               "--config", cfg, "--dtype", "f32", "--format", "gguf", "--out", src],
                              capture_output=True, text=True, timeout=120)
        check(init.returncode == 0, f"model init ({init.stderr.strip()[:200]})")
        if init.returncode != 0:
            sys.exit(1)
        meta0, tensors0 = read_gguf(src)
        n_layer = meta0["llama.block_count"]
        has_output = "output.weight" in tensors0
        check(has_output and n_layer == 16, "source model: untied output, 16 layers")
        size0 = os.path.getsize(src)
        for ftype in ("q8_0", "q4_0", "q4_k_m", "q5_k_m", "q6_k"):
            out = os.path.join(tmp, f"m-{ftype}.gguf")
            r = subprocess.run([args.arle, "quantize", src, out, "--type", ftype, "-t", "2"],
                               capture_output=True, text=True, timeout=300)
            check(r.returncode == 0 and "quantized" in r.stdout,
                  f"{ftype}: quantize exits 0 ({r.stderr.strip()[:200]})")
            if r.returncode != 0:
                continue
            meta, tensors = read_gguf(out)
            check(set(tensors) == set(tensors0), f"{ftype}: same tensors")
            wrong = []
            for name, (t0, dims) in tensors0.items():
                want = expected_type(ftype, name, t0, dims, n_layer, has_output)
                got, got_dims = tensors[name]
                if got != want or got_dims != dims:
                    wrong.append(f"{name}: {got} {got_dims}, expected {want} {dims}")
            check(not wrong, f"{ftype}: tensor types follow llama.cpp's rules {wrong[:3]}")
            kinds = {tensors[n][0] for n in tensors}
            check(Q6_K in kinds or ftype == "q8_0", f"{ftype}: output matrix takes Q6_K")
            check(meta["general.file_type"] == FILE_TYPE[ftype], f"{ftype}: general.file_type")
            same_meta = all(meta[k] == v for k, v in meta0.items() if k != "general.file_type")
            check(same_meta, f"{ftype}: metadata (tokenizer included) copied")
            check(os.path.getsize(out) < size0 / 2.5, f"{ftype}: file is smaller than f32 / 2.5")
            # --ignore-eos and a seed: sampling may pick EOS early (1 seed in 400 did for q4_0
            # with the default random seed, which made this check fail once).
            run = subprocess.run([args.arle, "run", "--model", out, "--prompt", "Once upon a time",
                                  "--max-tokens", "8", "--no-chat", "--json", "--seed", "1",
                                  "--ignore-eos"], capture_output=True, text=True, timeout=120)
            check(run.returncode == 0 and '"completion_tokens": 8' in run.stdout.replace(
                '"completion_tokens":8', '"completion_tokens": 8'),
                  f"{ftype}: arle run generates 8 tokens", outcome(run))
        # From a Hugging Face directory (qwen3, byte-level BPE tokenizer): exported to GGUF, then
        # quantized with the same rules; the output runs.
        hf = os.path.join(tmp, "hf-qwen3")
        qcfg = '{"hidden_size":256,"intermediate_size":512,"num_hidden_layers":2,' \
               '"num_attention_heads":4,"num_key_value_heads":2,"head_dim":64}'
        init = subprocess.run([args.arle, "model", "init", "--arch", "qwen3", "--preset", "tiny",
                               "--config", qcfg, "--dtype", "f32", "--out", hf],
                              capture_output=True, text=True, timeout=120)
        check(init.returncode == 0, f"qwen3 HF model init ({init.stderr.strip()[:200]})")
        out = os.path.join(tmp, "hf-q4_k_m.gguf")
        r = subprocess.run([args.arle, "quantize", hf, out, "--type", "q4_k_m", "-t", "2"],
                           capture_output=True, text=True, timeout=300)
        check(r.returncode == 0 and "quantized" in r.stdout,
              f"HF directory: quantize exits 0 ({r.stderr.strip()[:200]})")
        if r.returncode == 0:
            meta, tensors = read_gguf(out)
            check(meta.get("general.architecture") == "qwen3", "HF directory: qwen3 GGUF")
            check(meta.get("tokenizer.ggml.model") == "gpt2", "HF directory: tokenizer exported")
            n = meta["qwen3.block_count"]
            has_out = "output.weight" in tensors
            wrong = [f"{name}: {t}" for name, (t, dims) in tensors.items()
                     if t != expected_type("q4_k_m", name, F32, dims, n, has_out)]
            check(not wrong, f"HF directory: tensor types follow llama.cpp's rules {wrong[:3]}")
            check(not [f for f in os.listdir(tmp) if f.endswith(".tmp")],
                  "HF directory: the temporary GGUF is removed")
            run = subprocess.run([args.arle, "run", "--model", out, "--prompt", "Hello",
                                  "--max-tokens", "4", "--no-chat", "--json"],
                                 capture_output=True, text=True, timeout=120)
            check(run.returncode == 0, "HF directory: arle run", outcome(run))
        # 16-bit models (llama with attention and MLP biases, so the permuted q/k biases are
        # covered): `model init --format gguf` and the HF export write norms and biases in F32,
        # matrices in the model's dtype; `quantize` keeps them F32; arle runs both.
        bcfg = '{"hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,' \
               '"num_attention_heads":4,"num_key_value_heads":2,"attention_bias":true,' \
               '"mlp_bias":true}'
        for dtype, want in (("bf16", BF16), ("f16", F16)):
            path = os.path.join(tmp, f"m-{dtype}.gguf")
            init = subprocess.run([args.arle, "model", "init", "--arch", "llama", "--preset",
                                   "tiny", "--config", bcfg, "--dtype", dtype, "--format", "gguf",
                                   "--out", path], capture_output=True, text=True, timeout=120)
            check(init.returncode == 0, f"model init --dtype {dtype}", outcome(init))
            if init.returncode != 0:
                continue
            _, t16 = read_gguf(path)
            check(any(n.endswith(".bias") for n in t16), f"{dtype} GGUF: biases present")
            check_f32_small_tensors(t16, f"model init --dtype {dtype} --format gguf")
            mats = {t for name, (t, dims) in t16.items() if not stored_as_f32(name, dims)}
            check(mats == {want}, f"model init --dtype {dtype}: matrices stay {dtype} ({mats})")
            run = subprocess.run([args.arle, "run", "--model", path, "--prompt", "Once upon",
                                  "--max-tokens", "4", "--no-chat", "--json"],
                                 capture_output=True, text=True, timeout=120)
            check(run.returncode == 0, f"{dtype} GGUF: arle run", outcome(run))
        q = os.path.join(tmp, "m-bf16-q8_0.gguf")
        r = subprocess.run([args.arle, "quantize", os.path.join(tmp, "m-bf16.gguf"), q,
                            "--type", "q8_0", "-t", "2"], capture_output=True, text=True,
                           timeout=300)
        check(r.returncode == 0, "quantize a bf16 GGUF", outcome(r))
        if r.returncode == 0:
            check_f32_small_tensors(read_gguf(q)[1], "quantize of a bf16 GGUF")
        hf16 = os.path.join(tmp, "hf-qwen3-bf16")
        init = subprocess.run([args.arle, "model", "init", "--arch", "qwen3", "--preset", "tiny",
                               "--dtype", "bf16", "--out", hf16],
                              capture_output=True, text=True, timeout=120)
        check(init.returncode == 0, "qwen3 bf16 HF model init", outcome(init))
        q = os.path.join(tmp, "hf-bf16-q8_0.gguf")
        r = subprocess.run([args.arle, "quantize", hf16, q, "--type", "q8_0", "-t", "2"],
                           capture_output=True, text=True, timeout=300)
        check(r.returncode == 0, "quantize a bf16 HF directory", outcome(r))
        if r.returncode == 0:
            check_f32_small_tensors(read_gguf(q)[1], "quantize of a bf16 HF directory")

        llama_hf = os.path.join(tmp, "hf-llama")
        init = subprocess.run([args.arle, "model", "init", "--arch", "llama", "--preset", "tiny",
                               "--out", llama_hf], capture_output=True, text=True, timeout=120)
        check(init.returncode == 0, f"llama HF model init ({init.stderr.strip()[:200]})")
        for what, cmd, must in [
            ("llama HF directory", [llama_hf, os.path.join(tmp, "x.gguf")], "convert_hf_to_gguf"),
            ("unknown type", [src, os.path.join(tmp, "x.gguf"), "--type", "q3_k"], "unknown --type"),
            ("missing input", [os.path.join(tmp, "nope.gguf"), os.path.join(tmp, "x.gguf")],
             "nope.gguf"),
            ("not a GGUF file", [os.path.join(args.source_dir, "README.md"),
                                 os.path.join(tmp, "x.gguf")], "README.md"),
        ]:
            r = subprocess.run([args.arle, "quantize", *cmd], capture_output=True, text=True,
                               timeout=60)
            check(r.returncode == 2 and must in r.stderr,
                  f"{what}: exit {r.returncode}: {r.stderr.strip()[:200]}")
    print(f"{len(FAILURES)} failed")
    sys.exit(1 if FAILURES else 0)


if __name__ == "__main__":
    main()
