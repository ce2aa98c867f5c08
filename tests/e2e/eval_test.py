#!/usr/bin/env python3
"""`arle eval` end to end on a tiny random Llama from `arle model init` (stories260K's 512-token
SentencePiece vocabulary, so the sanitizer build runs it in minutes):

- `eval mc --url` against `arle serve` gives the same log-likelihoods (bit for bit) and scores as
  the in-process run (hellaswag, arc_challenge, mmlu with few-shot examples, winogrande), and
  `eval gen --url` the same greedy completions and scores (gsm8k);
- `eval ppl --json` prints ppl, ppl_stderr, nll, tokens and chunks, the chunk count and scored
  tokens follow llama-perplexity's rule, and --stride gives the sliding-window variant;
- `eval kld` of a model against itself is 0 with full top-1 agreement;
- reports (--out) hold summary.json, summary.md and one samples.jsonl line per document;
- bad data and files exit 2 with the file, the line and the field named.
"""
import argparse
import atexit
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

FAILURES = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        FAILURES.append(what)


def arle(args, *cmd, expect=0):
    out = subprocess.run([args.arle, *cmd], capture_output=True, text=True, timeout=600)
    if out.returncode != expect:
        sys.exit(f"arle {' '.join(cmd)} exited {out.returncode} (expected {expect}):\n"
                 f"{out.stderr[-2000:]}")
    return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arle", required=True)
    ap.add_argument("--source-dir", required=True)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="arle-eval-")
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    data = os.path.join(args.source_dir, "tests", "data", "eval")
    model = os.path.join(tmp, "llama")
    arle(args, "model", "init", "--arch", "llama", "--preset", "tiny", "--seed", "3", "--out", model)

    # --- perplexity
    # Short texts and task lists keep the test fast under the sanitizers.
    text = os.path.join(tmp, "text.txt")
    with open(os.path.join(args.source_dir, "tests", "data", "train", "tinyshakespeare_head.txt"),
              encoding="utf-8") as f:
        head = f.read()[:6000]
    with open(text, "w", encoding="utf-8") as f:
        f.write(head)
    out = json.loads(arle(args, "eval", "ppl", "--model", model, "--file", text, "--ctx", "64",
                          "--json").stdout)
    check(all(k in out for k in ("ppl", "ppl_stderr", "nll", "tokens", "chunks")),
          "ppl --json has ppl, ppl_stderr, nll, tokens, chunks")
    n_file = out["file_tokens"]
    check(out["chunks"] == n_file // 64, f"ppl: {out['chunks']} chunks = {n_file} tokens // 64")
    check(out["tokens"] == out["chunks"] * (64 - 1 - 32),
          "ppl: each chunk scores its second half (ctx - 1 - ctx/2 tokens)")
    check(abs(out["ppl"] - 2.718281828 ** out["nll"]) < 1e-6 * out["ppl"], "ppl = exp(nll)")
    two = json.loads(arle(args, "eval", "ppl", "--model", model, "--file", text, "--ctx", "64",
                          "--chunks", "2", "--json").stdout)
    check(two["chunks"] == 2 and two["tokens"] == 2 * 31, "ppl --chunks 2 scores two chunks")
    slide = json.loads(arle(args, "eval", "ppl", "--model", model, "--file", text, "--ctx", "64",
                            "--stride", "32", "--json").stdout)
    check(slide["tokens"] == n_file - 1, "ppl --stride scores every token after the first once")
    short = os.path.join(tmp, "short.txt")
    with open(short, "w") as f:
        f.write("too short")
    r = arle(args, "eval", "ppl", "--model", model, "--file", short, "--ctx", "64", expect=2)
    check("needs at least 128" in r.stderr, "ppl: a short text names the tokens needed")
    r = arle(args, "eval", "ppl", "--model", model, "--file", os.path.join(tmp, "none.txt"),
             expect=2)
    check("none.txt" in r.stderr, "ppl: a missing file is named")

    # --- KL divergence of a model against itself
    kld = json.loads(arle(args, "eval", "kld", "--base", model, "--model", model, "--file", text,
                          "--ctx", "64", "--chunks", "2", "--json").stdout)
    check(kld["metrics"]["kld_mean"] == 0 and kld["metrics"]["same_top"] == 1,
          "kld of a model against itself: 0 and 100 % top-1 agreement")

    # --- the same evaluations in process and through `arle serve`
    port = free_port()
    serve = subprocess.Popen([args.arle, "serve", "--model", model, "--port", str(port)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    atexit.register(lambda: serve.poll() is None and serve.kill())
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while True:
        try:
            urllib.request.urlopen(url + "/health", timeout=2).read()
            break
        except Exception:
            if time.time() > deadline or serve.poll() is not None:
                sys.exit("arle serve did not start: " + serve.stderr.read()[-1500:])
            time.sleep(0.1)

    tasks = [
        ("hellaswag", ["--data", os.path.join(data, "hellaswag", "hellaswag_val_excerpt.txt")]),
        ("arc_challenge", ["--data", os.path.join(data, "arc", "arc_challenge_test_excerpt.jsonl"),
                           "--shots", "2"]),
        ("mmlu", ["--data", os.path.join(data, "mmlu", "mmlu_test_excerpt.jsonl.gz"),
                  "--fewshot-data", os.path.join(data, "mmlu", "mmlu_dev_excerpt.jsonl"),
                  "--shots", "2", "--limit", "12"]),
        ("winogrande", ["--data", os.path.join(data, "winogrande", "winogrande.jsonl")]),
    ]
    for task, flags in tasks:
        local = os.path.join(tmp, task + "-local")
        remote = os.path.join(tmp, task + "-url")
        arle(args, "eval", "mc", "--task", task, *flags, "--model", model, "--out", local)
        arle(args, "eval", "mc", "--task", task, *flags, "--url", url, "--out", remote)
        a = json.load(open(os.path.join(local, "summary.json")))
        b = json.load(open(os.path.join(remote, "summary.json")))
        check(a["metrics"] == b["metrics"], f"{task}: --url scores = in-process scores "
              f"({a['metrics']} / {b['metrics']})")
        sa = read_jsonl(os.path.join(local, "samples.jsonl"))
        sb = read_jsonl(os.path.join(remote, "samples.jsonl"))
        check(len(sa) == a["samples"] and len(sa) > 0, f"{task}: one samples.jsonl line per doc")
        check([s["loglikelihoods"] for s in sa] == [s["loglikelihoods"] for s in sb],
              f"{task}: --url log-likelihoods are bit-identical to the in-process ones")
        check([s["is_greedy"] for s in sa] == [s["is_greedy"] for s in sb],
              f"{task}: --url is_greedy = in-process")
        check(os.path.getsize(os.path.join(local, "summary.md")) > 0, f"{task}: summary.md written")

    gsm = ["--task", "gsm8k", "--data", os.path.join(data, "gsm8k", "test_excerpt.jsonl"),
           "--fewshot-data", os.path.join(data, "gsm8k", "train_excerpt.jsonl"), "--shots", "1",
           "--limit", "4", "--max-tokens", "12"]
    local = os.path.join(tmp, "gsm-local")
    remote = os.path.join(tmp, "gsm-url")
    arle(args, "eval", "gen", *gsm, "--model", model, "--out", local)
    arle(args, "eval", "gen", *gsm, "--url", url, "--out", remote)
    ga = read_jsonl(os.path.join(local, "samples.jsonl"))
    gb = read_jsonl(os.path.join(remote, "samples.jsonl"))
    check([s["samples"] for s in ga] == [s["samples"] for s in gb],
          "gsm8k: --url greedy completions and extractions = in-process")
    check(all("extracted_flexible" in s["samples"][0] for s in ga),
          "gsm8k: both strict and flexible extractions recorded")
    serve.kill()

    # --- bad data: clear errors naming the file, line and field
    bad = os.path.join(tmp, "bad_arc.jsonl")
    with open(bad, "w") as f:
        f.write('{"id": "a", "question": "q", "choices": {"text": ["x", "y"], "label": ["A", "B"]},'
                ' "answerKey": "A"}\n')
        f.write('{"id": "b", "choices": {"text": ["x"], "label": ["A"]}, "answerKey": "A"}\n')
    r = arle(args, "eval", "mc", "--task", "arc_easy", "--data", bad, "--model", model, expect=2)
    check("bad_arc.jsonl:2" in r.stderr and "question" in r.stderr,
          "mc: a record without `question` names file:line and the field: " + r.stderr.strip())
    r = arle(args, "eval", "mc", "--task", "nope", "--data", bad, "--model", model, expect=2)
    check("hellaswag" in r.stderr, "mc: an unknown task lists the known ones")
    r = arle(args, "eval", "mc", "--task", "arc_easy", "--data", os.path.join(tmp, "missing.jsonl"),
             "--model", model, expect=2)
    check("missing.jsonl" in r.stderr, "mc: an unreadable file is named")

    if FAILURES:
        sys.exit(f"{len(FAILURES)} check(s) failed")


if __name__ == "__main__":
    main()
