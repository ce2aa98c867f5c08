#!/usr/bin/env python3
"""arle's commands end to end: model init (safetensors and GGUF), run, tokenize, convert, doctor,
bench.

References: GGUF and safetensors copies of the same random weights must give identical tokens and
logprobs (the GGUF path goes through llama.cpp's names and, for llama, its Q/K permutation); the
llama2.c import must reproduce the built-in model; token ids come from llama.cpp's qwen2 vectors.
"""
import argparse
import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile

FAILURES = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        FAILURES.append(what)


def arle(args, *cmd, expect=0):
    out = subprocess.run([args.arle, *cmd], capture_output=True, text=True, timeout=300)
    if out.returncode != expect:
        sys.exit(f"arle {' '.join(cmd)} exited {out.returncode} (expected {expect}):\n{out.stderr}")
    return out


def run_json(args, model, prompt, n=12, extra=()):
    out = arle(args, "run", "--model", model, "--prompt", prompt, "--max-tokens", str(n),
               "--temperature", "0", "--ignore-eos", "--json", "--no-tools", *extra)
    return json.loads(out.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arle", required=True)
    ap.add_argument("--source-dir", required=True)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="arle-e2e-")
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)

    doctor = json.loads(arle(args, "--doctor", "--json").stdout)
    check("version" in doctor and "cpu" in doctor, "--doctor --json reports version and cpu")

    for arch in ("qwen3", "llama"):
        st = os.path.join(tmp, f"{arch}-st")
        gg = os.path.join(tmp, f"{arch}.gguf")
        arle(args, "model", "init", "--arch", arch, "--preset", "tiny", "--seed", "7", "--out", st)
        arle(args, "model", "init", "--arch", arch, "--preset", "tiny", "--seed", "7", "--out", gg,
             "--format", "gguf")
        for f in ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
                  "tokenizer_config.json"):
            check(os.path.exists(os.path.join(st, f)), f"{arch}: model init wrote {f}")
        a = run_json(args, st, "Once upon a time")
        b = run_json(args, gg, "Once upon a time")
        check(len(a["tokens"]) == 12 and a["finish_reason"] == "length", f"{arch}: 12 tokens, length")
        check(a["prompt_tokens"] == b["prompt_tokens"], f"{arch}: GGUF tokenizer = tokenizer.json")
        check(a["tokens"] == b["tokens"], f"{arch}: GGUF and safetensors give the same greedy tokens")
        check(a["logprobs"] == b["logprobs"], f"{arch}: GGUF and safetensors give identical logprobs")

    # Token ids: llama.cpp's qwen2 vectors (tests/data/tokenizer/ggml-vocab-qwen2.gguf.*).
    data = os.path.join(args.source_dir, "tests", "data", "tokenizer")
    inputs = open(os.path.join(data, "ggml-vocab-qwen2.gguf.inp"), encoding="utf-8").read()
    inputs = inputs.split("\n__ggml_vocab_test__\n")
    outputs = open(os.path.join(data, "ggml-vocab-qwen2.gguf.out"), encoding="utf-8").read().split("\n")
    qwen = os.path.join(tmp, "qwen3-st")
    for text, ids in list(zip(inputs, outputs))[:46:5]:
        if not text:
            continue
        got = arle(args, "tokenize", "--model", qwen, "--text", text).stdout.strip()
        check(got == ids.strip(), f"tokenize {text[:20]!r} = llama.cpp's ids")
    tj = json.loads(arle(args, "tokenize", "--model", qwen, "--text", "Hello world", "--json").stdout)
    check(tj["tokens"] == ["Hello", "Ġworld"], "tokenize --json gives token strings")

    # llama2.c import reproduces the built-in model.
    s = os.path.join(args.source_dir, "assets", "models", "stories260K")
    conv = os.path.join(tmp, "stories260K")
    arle(args, "convert", "llama2c", os.path.join(s, "stories260K.bin"), os.path.join(s, "tok512.bin"),
         conv)
    builtin = json.loads(arle(args, "run", "--temperature", "0", "--max-tokens", "20", "--json").stdout)
    converted = run_json(args, conv, "", n=20)
    check(builtin["tokens"] == converted["tokens"], "convert llama2c output = built-in model")

    # ORG/NAME resolves through the Hugging Face cache layout.
    hub = os.path.join(tmp, "hf", "hub", "models--acme--tiny-llama")
    os.makedirs(os.path.join(hub, "refs"))
    shutil.copytree(os.path.join(tmp, "llama-st"), os.path.join(hub, "snapshots", "abc123"))
    open(os.path.join(hub, "refs", "main"), "w").write("abc123")
    env = dict(os.environ, HF_HOME=os.path.join(tmp, "hf"))
    cached = subprocess.run([args.arle, "run", "--model", "acme/tiny-llama", "--prompt",
                             "Once upon a time", "--max-tokens", "12", "--temperature", "0",
                             "--ignore-eos", "--json"], capture_output=True, text=True, env=env,
                            timeout=300)
    check(cached.returncode == 0 and json.loads(cached.stdout)["tokens"] ==
          run_json(args, os.path.join(tmp, "llama-st"), "Once upon a time")["tokens"],
          "ORG/NAME from the Hugging Face cache loads the snapshot")

    # Chat templates: arle template render and arle run --chat/--json (parsed output fields).
    msgs = os.path.join(tmp, "messages.json")
    json.dump([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi ü"}],
              open(msgs, "w"), ensure_ascii=False)
    rendered = arle(args, "template", "render", "--model", qwen, "--messages", msgs).stdout
    check(rendered == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi ü<|im_end|>\n"
          "<|im_start|>assistant\n", "template render: Qwen3 prompt, byte for byte")
    no_gen = arle(args, "template", "render", "--model", qwen, "--messages", msgs,
                  "--no-generation-prompt").stdout
    check(no_gen == rendered[: -len("<|im_start|>assistant\n")], "--no-generation-prompt")
    from_gguf = arle(args, "template", "render", "--model", os.path.join(tmp, "qwen3.gguf"),
                     "--messages", msgs).stdout
    check(from_gguf == rendered, "template from GGUF tokenizer.chat_template = tokenizer_config.json's")
    listed = os.path.join(tmp, "qwen3-listed")
    shutil.copytree(qwen, listed)
    tc_path = os.path.join(listed, "tokenizer_config.json")
    tc = json.load(open(tc_path))
    tc["chat_template"] = [{"name": "tool_use", "template": "T"},
                           {"name": "default", "template": "D{{ messages[1]['content'] }}"}]
    json.dump(tc, open(tc_path, "w"))
    check(arle(args, "template", "render", "--model", listed, "--messages", msgs).stdout == "DHi ü",
          "named chat_template list: the 'default' entry is used")
    off = arle(args, "template", "render", "--model", qwen, "--messages", msgs,
               "--enable-thinking=false").stdout
    check(off.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n"), "--enable-thinking=false")
    chat = json.loads(arle(args, "run", "--model", qwen, "--prompt", "Hi ü", "--system", "Be brief.",
                           "--max-tokens", "4", "--temperature", "0", "--json",
                           "--no-tools").stdout)
    ids = json.loads(arle(args, "tokenize", "--model", qwen, "--text", rendered, "--json",
                          "--no-add-special").stdout)["ids"]
    check(chat["chat"] and chat["prompt_tokens"] == ids, "run --system renders the chat template")
    check(all(k in chat for k in ("content", "reasoning_content", "tool_calls")),
          "run --json reports content, reasoning_content and tool_calls")
    bad = subprocess.run([args.arle, "template", "render", "--model", qwen, "--messages", msgs,
                          "--chat-template", os.path.join(tmp, "bad.jinja")], capture_output=True)
    check(bad.returncode == 2, "missing --chat-template file is exit 2")
    open(os.path.join(tmp, "bad.jinja"), "w").write("{% for x in %}")
    bad = subprocess.run([args.arle, "template", "render", "--model", qwen, "--messages", msgs,
                          "--chat-template", os.path.join(tmp, "bad.jinja")], capture_output=True,
                         text=True)
    check(bad.returncode == 2 and "bad.jinja" in bad.stderr, "template syntax error names the file")

    # Stop strings: cut before the first match, never printed, finish_reason "stop".
    full = json.loads(arle(args, "run", "--temperature", "0", "--max-tokens", "60", "--json").stdout)
    cut = json.loads(arle(args, "run", "--temperature", "0", "--max-tokens", "60", "--json",
                          "--stop", "girl", "--stop", "park").stdout)
    check(cut["finish_reason"] == "stop" and cut["stop_string"] == "girl" and
          cut["text"] == full["text"][: full["text"].index("girl")], "--stop cuts before the match")
    streamed = arle(args, "run", "--temperature", "0", "--max-tokens", "60", "--stop", "girl").stdout
    check(streamed.rstrip("\n") == cut["text"], "streamed text stops before the stop string")

    # --dump-dir writes named activations.
    dump = os.path.join(tmp, "dump")
    arle(args, "run", "--prompt", "Once", "--max-tokens", "1", "--dump-dir", dump)
    manifest = json.load(open(os.path.join(dump, "manifest.json")))
    names = json.dumps(manifest)
    check("blk.3.attn_norm" in names and os.path.exists(os.path.join(dump, "result_output.f32")),
          "--dump-dir writes blk.N.* activations and a manifest")

    # bench: llama-bench rows as JSON, decode rows with their roofline, batched decode with -b.
    rows = json.loads(arle(args, "bench", "--model", qwen, "-p", "8", "-n", "4", "-b", "1,3",
                           "-t", "1", "-r", "1", "-o", "json").stdout)
    by_test = {r["test"]: r for r in rows}
    check(set(by_test) == {"pp8", "tg4", "tg4 b1", "tg4 b3"} and
          all(r["avg_ts"] > 0 for r in rows), f"bench -b 1,3 rows: {sorted(by_test)}")
    check("roofline_pct" in by_test.get("tg4", {}), "bench: the tg row carries its roofline")
    bad = arle(args, "bench", "--model", qwen, "-b", "0", expect=2)
    check("bad -b" in bad.stderr, "bench -b 0 exits 2 naming -b")

    # Same seed, same tokens; sampling actually samples.
    s1 = arle(args, "run", "--prompt", "Once", "--seed", "3", "--temperature", "1", "--json").stdout
    s2 = arle(args, "run", "--prompt", "Once", "--seed", "3", "--temperature", "1", "--json").stdout
    s3 = arle(args, "run", "--prompt", "Once", "--seed", "4", "--temperature", "1", "--json").stdout
    check(json.loads(s1)["tokens"] == json.loads(s2)["tokens"], "same seed gives the same tokens")
    check(json.loads(s1)["tokens"] != json.loads(s3)["tokens"], "another seed gives other tokens")

    print(f"{len(FAILURES)} failed")
    sys.exit(1 if FAILURES else 0)


if __name__ == "__main__":
    main()
