#!/usr/bin/env python3
"""`arle train`: equal to PyTorch step by step, resumable bit for bit, servable at once.

- 20 AdamW steps of `arle train pretrain --no-shuffle` on a tiny Llama and a tiny Qwen3 (HF
  directories from `arle model init`) and 20 steps of LoRA SFT on a tiny Qwen3 with its chat
  template give the per-step losses that tests/reference/torch_train.py computed with PyTorch
  (goldens in tests/data/goldens/train/, made by make_train_goldens.sh), within 1e-5 relative.
- The gradient of every parameter of both models for one micro-batch equals PyTorch's in float64
  (tests/reference/torch_grads.py) within a tolerance derived from the sizes.
- The same run at 1 and 2 threads gives bit-identical losses.
- `--resume` after stopping (kill -9 during a step, and during a save) continues with exactly the
  losses of the uninterrupted run; `latest` is never a partial checkpoint.
- `arle run --model OUT/latest` generates from the checkpoint; `arle train eval` reads it.
- Bad flags and unreadable data exit 2 with a message.
"""
import argparse
import array
import json
import math
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

FAILURES = []


def check(cond, what, detail=None):
    print(("ok   " if cond else "FAIL ") + what + (f" ({detail})" if detail and not cond else ""))
    if not cond:
        FAILURES.append(what)
    return cond


def outcome(r):
    return (f"rc {r.returncode}, stdout {r.stdout.strip()[-400:]!r}, "
            f"stderr {r.stderr.strip()[-400:]!r}")


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kw)


def losses(path):
    out = {}
    with open(path) as f:
        for line in f:
            d = json.loads(line)
            if "loss" in d:
                out[d["step"]] = d["loss"]
    return out


PRETRAIN = ["--steps", "20", "--batch", "2", "--seq", "32", "--accum", "2", "--lr", "3e-3",
            "--schedule", "cosine", "--warmup", "3", "--min-lr", "3e-4", "--weight-decay", "0.01",
            "--clip", "1.0", "--no-shuffle"]
SFT = ["--steps", "20", "--seq", "128", "--lr", "1e-2", "--schedule", "constant",
       "--weight-decay", "0.01", "--clip", "1.0", "--lora-rank", "4", "--lora-alpha", "8",
       "--lora-targets", "q_proj,v_proj,down_proj", "--seed", "3", "--no-shuffle"]


def compare(name, got, golden_path):
    want = losses(golden_path)
    check(sorted(got) == sorted(want), f"{name}: {len(want)} steps reported", f"got {sorted(got)}")
    worst = max((abs(got[s] - want[s]) / abs(want[s]) for s in want if s in got), default=1.0)
    check(worst <= 1e-5, f"{name}: every step's loss within 1e-5 of PyTorch's",
          f"worst relative difference {worst:.2e}")


def piece_bytes(piece):
    """UTF-8 bytes a tok512 (SentencePiece-style) piece decodes to; special tokens decode to none."""
    if re.fullmatch(r"<0x[0-9A-Fa-f]{2}>", piece):
        return 1
    if piece in ("<s>", "</s>", "<unk>"):
        return 0
    return len(piece.replace("\u2581", " ").encode())


def check_eval_bytes(arle, model, corpus, seq, e):
    """`arle train eval`'s byte count against the file: the windows' targets cover the token
    stream (BOS, the text, EOS) from its second token through token n_windows * seq, so their
    bytes are the file's minus those of the uncovered tail, counted from the pieces."""
    r = run([arle, "tokenize", "-m", model, "--file", corpus, "--json"])
    pieces = json.loads(r.stdout)["tokens"] + ["</s>"]
    text_bytes = len(open(corpus, "rb").read())
    # The pieces decode to the file (the prefix space the tokenizer adds is not the file's).
    decoded = sum(piece_bytes(p) for p in pieces) - pieces[1].startswith("\u2581")
    check(decoded == text_bytes, "the tokenizer's pieces decode to the corpus' bytes",
          f"{decoded} vs {text_bytes}")
    n_windows = (len(pieces) - 1) // seq
    expected = text_bytes - sum(piece_bytes(p) for p in pieces[n_windows * seq + 1:])
    check(e["bytes"] == expected, "eval's bytes are the text its targets cover",
          f"{e['bytes']} vs {expected}")
    bpb = e["loss"] * e["tokens"] / (math.log(2) * e["bytes"])
    check(abs(e["bits_per_byte"] - bpb) <= 1e-5 * bpb, "bits per byte = summed nats / (ln 2 bytes)",
          f"{e['bits_per_byte']} vs {bpb}")


def read_safetensors(path):
    """{name: (shape, [float, ...])} of an F32 safetensors file (standard library only)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] != "F32":
            raise ValueError(f"{path}: {name} is {info['dtype']}, not F32")
        begin, end = info["data_offsets"]
        values = array.array("f")
        values.frombytes(data[8 + n + begin:8 + n + end])
        if sys.byteorder != "little":
            values.byteswap()
        out[name] = (info["shape"], values)
    return out


def check_gradients(arle, name, model, corpus, golden, out_dir):
    """Every parameter's gradient for one micro-batch (2 windows of 32 tokens) against PyTorch's
    in float64 (tests/reference/torch_grads.py). arle's gradient is recovered from one SGD step
    of lr L (no momentum, decay or clipping): g = (w0 - w1) / L in float64, whose error is
    u (|g| + |w1| / L); L = 1e4 makes that u |g| at the scale of the weights.

    The tolerance comes from the sizes: each gradient element is reached through D rounded f32
    operations in sequence (about 12 per layer and 6 in the head), each a sum of at most K terms
    (K the longest reduction: tokens, vocabulary, FFN or hidden width), so it is within
    D * gamma_K of the tensor's largest gradient (Higham's bound for each sum, added along the
    path). A wrong gradient is off by its own size, thousands of times more."""
    lr = 1e4
    r = run([arle, "train", "pretrain", "--model", model, "--data", corpus, "--out", out_dir,
             "--steps", "1", "--batch", "2", "--seq", "32", "--no-shuffle", "--optimizer", "sgd",
             "--lr", str(lr), "--momentum", "0", "--weight-decay", "0", "--clip", "0",
             "-t", "2"])
    if not check(r.returncode == 0, f"{name}: one SGD step runs", outcome(r)):
        return
    w0 = read_safetensors(os.path.join(model, "model.safetensors"))
    w1 = read_safetensors(os.path.join(out_dir, "latest", "model.safetensors"))
    ref = read_safetensors(golden)
    cfg = json.load(open(os.path.join(model, "config.json")))
    u = 2.0 ** -24
    k = max(64, cfg["vocab_size"], cfg["intermediate_size"], cfg["hidden_size"])
    depth = 12 * cfg["num_hidden_layers"] + 6
    tol = depth * k * u / (1 - k * u)
    check(set(ref) == set(w0) == set(w1), f"{name}: the same tensors trained as PyTorch's",
          sorted(set(ref) ^ set(w1)))
    worst = (0.0, "")
    for t, (shape, g_ref) in ref.items():
        if t not in w0 or t not in w1:
            continue
        a, b = w0[t][1], w1[t][1]
        scale = max(abs(x) for x in g_ref)
        err = max(abs((x - y) / lr - g) - u * (abs(g) + abs(y) / lr)
                  for x, y, g in zip(a, b, g_ref))
        rel = err / scale if scale > 0 else err
        worst = max(worst, (rel, t))
        if not check(scale > 0 and rel <= tol, f"{name}: gradient of {t} {shape} = PyTorch's",
                     f"max error {err:.3g}, largest gradient {scale:.3g}, tolerance {tol:.3g}"):
            return
    print(f"   {name}: largest gradient error {worst[0]:.2e} of the tensor's scale ({worst[1]}), "
          f"tolerance {tol:.2e}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arle", required=True)
    ap.add_argument("--source-dir", required=True)
    args = ap.parse_args()
    arle = args.arle
    src = args.source_dir
    goldens = os.path.join(src, "tests/data/goldens/train")
    corpus = os.path.join(src, "tests/data/train/tinyshakespeare_head.txt")
    chat = os.path.join(src, "tests/data/train/sft_chat.jsonl")
    tmp = tempfile.mkdtemp(prefix="arle-train-e2e-")
    try:
        # The models of make_train_goldens.sh, made with the same commands.
        llama, qwen3, qwen3_chat = (os.path.join(tmp, n) for n in ("llama", "qwen3", "qwen3_chat"))
        for cmd in (["--arch", "llama", "--seed", "7", "--out", llama],
                    ["--arch", "qwen3", "--seed", "7", "--config", '{"vocab_size": 512}',
                     "--out", qwen3],
                    ["--arch", "qwen3", "--seed", "7", "--out", qwen3_chat]):
            r = run([arle, "model", "init", "--preset", "tiny"] + cmd)
            check(r.returncode == 0, "model init " + " ".join(cmd[:2]), outcome(r))
        for f in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copy(os.path.join(llama, f), qwen3)

        def train(kind, model, data, out, extra, threads="2"):
            metrics = out + ".jsonl"
            if os.path.exists(metrics):
                os.remove(metrics)
            cmd = [arle, "train", kind, "--model", model, "--data", data, "--out", out,
                   "--metrics-jsonl", metrics, "-t", threads] + extra
            return run(cmd), metrics

        # Equal to PyTorch.
        for name, model in (("pretrain_llama", llama), ("pretrain_qwen3", qwen3)):
            r, m = train("pretrain", model, corpus, os.path.join(tmp, name), PRETRAIN)
            check(r.returncode == 0, f"{name} runs", outcome(r))
            if r.returncode == 0:
                compare(name, losses(m), os.path.join(goldens, name + ".jsonl"))
        for name, model in (("llama", llama), ("qwen3", qwen3)):
            check_gradients(arle, name, model, corpus,
                            os.path.join(goldens, f"grads_{name}.safetensors"),
                            os.path.join(tmp, "grads_" + name))
        r, m = train("sft", qwen3_chat, chat, os.path.join(tmp, "sft"), SFT)
        check(r.returncode == 0, "LoRA SFT runs", outcome(r))
        if r.returncode == 0:
            compare("sft_lora_qwen3", losses(m), os.path.join(goldens, "sft_lora_qwen3.jsonl"))
            latest = os.path.join(tmp, "sft", "latest")
            check(os.path.exists(os.path.join(latest, "adapter", "adapter_model.safetensors")),
                  "LoRA checkpoint holds the PEFT adapter")

        # Bit-identical at 1 and 2 threads.
        r1, m1 = train("pretrain", llama, corpus, os.path.join(tmp, "t1"), PRETRAIN, threads="1")
        reference = losses(os.path.join(tmp, "pretrain_llama.jsonl"))
        check(r1.returncode == 0 and losses(m1) == reference,
              "1 thread gives the 2-thread losses bit for bit", outcome(r1))

        # Resume after kill -9, during a step and during a save: the losses continue exactly.
        for when in ("step", "save"):
            out = os.path.join(tmp, "resume_" + when)
            metrics = out + ".jsonl"
            extra = PRETRAIN + ["--save-every", "1" if when == "save" else "5"]
            cmd = [arle, "train", "pretrain", "--model", llama, "--data", corpus, "--out", out,
                   "--metrics-jsonl", metrics, "-t", "2"] + extra
            p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            # Kill once a few steps are logged (mid-step or mid-save, whichever is running).
            deadline = time.time() + 120
            while time.time() < deadline:
                if os.path.exists(metrics) and len(losses(metrics)) >= 7:
                    break
                time.sleep(0.005)
            p.send_signal(signal.SIGKILL)
            p.wait()
            latest = os.path.join(out, "latest")
            state = os.path.join(latest, "trainer_state.json")
            check(os.path.exists(state), f"kill -9 during a {when}: latest is a complete step")
            saved = json.load(open(state))["step"] if os.path.exists(state) else -1
            check(0 < saved < 20, f"kill -9 during a {when}: the run was stopped early",
                  f"latest is step {saved}")
            # Later lines of the metrics file belong to steps the resume redoes.
            r = run(cmd + ["--resume"])
            check(r.returncode == 0, f"resume after kill -9 during a {when}", outcome(r))
            if r.returncode == 0:
                got = {}
                with open(metrics) as f:
                    for line in f:
                        d = json.loads(line)
                        if "loss" in d:
                            got[d["step"]] = d["loss"]  # the resumed run's value wins
                check(got == reference,
                      f"kill -9 during a {when}: resumed losses equal the uninterrupted run's",
                      f"{[(s, got.get(s), reference[s]) for s in reference if got.get(s) != reference[s]][:3]}")

        # Servable at once.
        latest = os.path.join(tmp, "pretrain_llama", "latest")
        r = run([arle, "run", "--model", latest, "--prompt", "ROMEO:", "-n", "8", "--seed", "1"])
        check(r.returncode == 0 and r.stdout.strip(), "arle run --model OUT/latest generates",
              outcome(r))
        r = run([arle, "train", "eval", "--model", latest, "--data", corpus, "--seq", "32"])
        ok = r.returncode == 0
        check(ok, "arle train eval reads the checkpoint", outcome(r))
        if ok:
            e = json.loads(r.stdout)
            check(set(e) == {"loss", "ppl", "tokens", "bytes", "bits_per_byte"} and
                  e["tokens"] > 0 and 0 < e["loss"] < 7,
                  "eval prints {loss, ppl, tokens, bytes, bits_per_byte}", r.stdout)
            check_eval_bytes(arle, latest, corpus, 32, e)

        # Bad input: exit 2 and a message, never a crash.
        for what, extra in (("missing data file", ["--data", os.path.join(tmp, "nope.txt")]),
                            ("zero steps", ["--data", corpus, "--steps", "0"]),
                            ("bad schedule", ["--data", corpus, "--schedule", "wavy"]),
                            ("corpus shorter than a window", ["--data", os.path.join(
                                src, "tests/data/train/corpus.txt"), "--seq", "4096"])):
            r = run([arle, "train", "pretrain", "--model", llama, "--out",
                     os.path.join(tmp, "bad")] + extra)
            check(r.returncode == 2 and "arle" in r.stderr, f"bad input: {what} exits 2",
                  outcome(r))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if FAILURES:
        print(f"{len(FAILURES)} failure(s)")
        sys.exit(1)
    print("all passed")


if __name__ == "__main__":
    main()
