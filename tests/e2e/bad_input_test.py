#!/usr/bin/env python3
"""Bad input to the arle binary: each case must exit with code 2 and a message naming the file and
the problem, never crash (a signal or ASan report) and never hang."""
import argparse
import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile

FAILURES = []


def expect_error(args, what, cmd, must_mention, env=None):
    try:
        out = subprocess.run([args.arle, *cmd], capture_output=True, text=True, timeout=120,
                             env=None if env is None else {**os.environ, **env})
    except subprocess.TimeoutExpired:
        FAILURES.append(what)
        print(f"FAIL {what}: hung")
        return
    ok = out.returncode == 2 and all(m in out.stderr for m in must_mention)
    print(("ok   " if ok else "FAIL ") + f"{what}: exit {out.returncode}: {out.stderr.strip()[:200]}")
    if not ok:
        FAILURES.append(what)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arle", required=True)
    ap.add_argument("--source-dir", required=True)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="arle-bad-")
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    good = os.path.join(tmp, "good")
    subprocess.run([args.arle, "model", "init", "--arch", "llama", "--out", good], check=True,
                   capture_output=True)
    gguf = os.path.join(tmp, "good.gguf")
    subprocess.run([args.arle, "model", "init", "--arch", "llama", "--out", gguf, "--format", "gguf"],
                   check=True, capture_output=True)

    def variant(name, edit):
        d = os.path.join(tmp, name)
        shutil.copytree(good, d)
        edit(d)
        return d

    def run(model):
        return ["run", "--model", model, "--prompt", "hi", "--max-tokens", "2"]

    expect_error(args, "missing model", run(os.path.join(tmp, "nope")), ["nope"])
    expect_error(args, "unknown ARLE_KERNELS", run(good), ["ARLE_KERNELS", "'gpu'", "ref, cpu, cuda"],
                 env={"ARLE_KERNELS": "gpu"})
    # This build has no CUDA backend (the release preset), or no device: refused, not ignored.
    expect_error(args, "ARLE_KERNELS=cuda without CUDA", run(good), ["ARLE_KERNELS", "CUDA"],
                 env={"ARLE_KERNELS": "cuda"})

    def set_config(d, **changes):
        p = os.path.join(d, "config.json")
        c = json.load(open(p))
        for k, v in changes.items():
            if v is None:
                c.pop(k, None)
            else:
                c[k] = v
        json.dump(c, open(p, "w"))

    d = variant("arch", lambda d: set_config(d, architectures=["GPTNeoXForCausalLM"]))
    expect_error(args, "unknown architecture", run(d), ["GPTNeoXForCausalLM"])
    d = variant("nohidden", lambda d: set_config(d, hidden_size=None))
    expect_error(args, "config without hidden_size", run(d), ["hidden_size", "config.json"])
    d = variant("badjson", lambda d: open(os.path.join(d, "config.json"), "w").write("{not json"))
    expect_error(args, "config.json not JSON", run(d), ["config.json"])

    def truncate(path, size):
        with open(path, "r+b") as f:
            f.truncate(size)

    st_size = os.path.getsize(os.path.join(good, "model.safetensors"))
    for cut in (0, 7, 100, st_size // 2, st_size - 1):
        d = variant(f"trunc{cut}", lambda d: truncate(os.path.join(d, "model.safetensors"), cut))
        expect_error(args, f"safetensors truncated to {cut} bytes", run(d), ["model.safetensors"])

    d = variant("wordpiece", lambda d: json.dump(
        {"version": "1.0", "model": {"type": "WordPiece", "vocab": {"a": 0}, "unk_token": "a"}},
        open(os.path.join(d, "tokenizer.json"), "w")))
    expect_error(args, "tokenizer.json of another kind", run(d), ["tokenizer.json", "WordPiece"])

    bad_magic = os.path.join(tmp, "magic.gguf")
    data = bytearray(open(gguf, "rb").read())
    data[0:4] = b"GGUX"
    open(bad_magic, "wb").write(data)
    expect_error(args, "GGUF wrong magic", run(bad_magic), ["magic.gguf"])
    g_size = os.path.getsize(gguf)
    for cut in (3, 20, 200, g_size // 2, g_size - 1):
        p = os.path.join(tmp, f"t{cut}.gguf")
        open(p, "wb").write(open(gguf, "rb").read()[:cut])
        expect_error(args, f"GGUF truncated to {cut} bytes", run(p), [f"t{cut}.gguf"])

    s = os.path.join(args.source_dir, "assets", "models", "stories260K")
    tbin = os.path.join(tmp, "trunc.bin")
    open(tbin, "wb").write(open(os.path.join(s, "stories260K.bin"), "rb").read()[:5000])
    expect_error(args, "llama2c checkpoint truncated",
                 ["convert", "llama2c", tbin, os.path.join(s, "tok512.bin"), os.path.join(tmp, "o")],
                 ["trunc.bin"])
    expect_error(args, "bad --dtype", ["model", "init", "--out", os.path.join(tmp, "x"), "--dtype", "q3"],
                 ["q3"])
    expect_error(args, "bad sampling parameter", ["run", "--top-p", "1.5", "--prompt", "x"], ["top_p"])

    print(f"{len(FAILURES)} failed")
    sys.exit(1 if FAILURES else 0)


if __name__ == "__main__":
    main()
