#!/usr/bin/env python3
"""`arle run` as the one-shot agent, end to end on a tiny random Qwen3 (plumbing only: random
weights produce no meaningful tool calls; the loop itself is tested on a scripted model in
tests/agent/agent_test.cc).

Checks: chat models run the agent (tools described in the prompt, which --no-tools leaves out),
the JSON result's fields, the trace line (token ids with a mask that marks exactly the generated
tokens), --stdin, the REPL reading piped lines, and bad agent flags.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

FAILURES = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        FAILURES.append(what)


def arle(args, *cmd, stdin=None):
    return subprocess.run([args.arle, *cmd], capture_output=True, text=True, timeout=300,
                          input=stdin)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--arle", required=True)
    p.add_argument("--source-dir", required=True)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model = os.path.join(tmp, "tiny-qwen3")
        out = arle(args, "model", "init", "--arch", "qwen3", "--preset", "tiny", "--out", model)
        check(out.returncode == 0, "model init: " + out.stderr)
        trace = os.path.join(tmp, "trace.jsonl")
        common = ["--model", model, "--max-tokens", "12", "--temperature", "0", "--ignore-eos"]

        out = arle(args, "run", *common, "--prompt", "List the files.", "--json", "--trace", trace,
                   "--max-turns", "2", "--unsafe-no-sandbox")
        check(out.returncode == 0, "agent run exits 0: " + out.stderr[-400:])
        r = json.loads(out.stdout)
        check(r["agent"] and r["chat"], "a chat model runs the agent")
        check(r["model_calls"] >= 1 and r["finish"] in ("stop", "length", "max_turns"),
              f"model_calls {r['model_calls']}, finish {r['finish']}")
        check(r["messages"][0] == {"role": "user", "content": "List the files."}
              and r["messages"][1]["role"] == "assistant", "messages start user, assistant")
        check(r["usage"]["completion_tokens"] >= 12 and r["usage"]["prompt_tokens"] > 0,
              "usage counts tokens")
        check(all(k in r for k in ("content", "reasoning_content", "tool_calls", "timings")),
              "JSON result fields")

        lines = open(trace).read().splitlines()
        check(len(lines) == 1, "one trace line per run")
        t = json.loads(lines[0])
        first = t["calls"][0]
        check(len(t["tokens"]) == len(t["mask"]), "trace tokens and mask align")
        check(sum(t["mask"]) == sum(len(c["completion_tokens"]) for c in t["calls"])
              or not t["mask_consistent"], "the mask marks exactly the generated tokens")
        check(t["tokens"][:len(first["prompt_tokens"])] == first["prompt_tokens"]
              and t["mask"][:len(first["prompt_tokens"])] == [0] * len(first["prompt_tokens"]),
              "the trace starts with the first prompt, unmasked")
        check(t["messages"] == r["messages"], "the trace carries the messages")

        # The prompt describes the tools; --no-tools leaves them out (and is the plain chat path).
        prompt_text = arle(args, "tokenize", "--model", model, "--json", "--no-add-special",
                           "--text", "x")  # tokenizer loads
        check(prompt_text.returncode == 0, "tokenize works on the model")
        plain = json.loads(arle(args, "run", *common, "--prompt", "List the files.", "--json",
                                "--no-tools").stdout)
        check("agent" not in plain and len(plain["prompt_tokens"]) < len(first["prompt_tokens"]),
              f"--no-tools: no tools in the prompt ({len(plain['prompt_tokens'])} < "
              f"{len(first['prompt_tokens'])} tokens)")

        out = arle(args, "run", *common, "--stdin", "--json", "--unsafe-no-sandbox",
                   stdin="From stdin.")
        check(out.returncode == 0 and
              json.loads(out.stdout)["messages"][0]["content"] == "From stdin.",
              "--stdin gives the user message")
        out = arle(args, "run", *common, "--prompt", "hi", "--unsafe-no-sandbox")
        check(out.returncode == 0 and "model call(s)" in out.stderr and "WARNING" in out.stderr,
              "text mode: summary line and the unsafe warning on stderr")

        # The REPL with stdin not a terminal: one message per line (a trailing backslash joins
        # lines), slash commands work, summaries go to stderr, end of input exits 0.
        saved = os.path.join(tmp, "piped.json")
        bad = os.path.join(tmp, "bad.json")
        open(bad, "w").write("{not json")
        out = arle(args, "repl", *common, "--unsafe-no-sandbox",
                   stdin=f"first\n/help\nsecond \\\nthird\n/load {bad}\n/load\n/save {saved}\n")
        check(out.returncode == 0, "piped REPL exits 0 at end of input: " + out.stderr[-300:])
        check(out.stderr.count("model call(s)") == 2, "piped REPL: two answers, summaries on stderr")
        check("/export FILE" in out.stdout and "written to" in out.stdout,
              "piped REPL: slash commands answer on stdout")
        check("error: invalid_argument: messages: not a JSON array" in out.stdout
              and "usage: /load FILE" in out.stdout,
              "piped REPL: /load of a bad file or of no file is a clear error; the REPL goes on")
        msgs = json.load(open(saved))
        check([m["content"] for m in msgs if m["role"] == "user"] == ["first", "second \nthird"],
              "piped REPL: one message per line, backslash continues")

        out = arle(args, "run", *common, "--prompt", "hi", "--max-turns", "0")
        check(out.returncode == 2, "--max-turns 0 exits 2")
        out = arle(args, "run", *common, "--prompt", "hi", "--trace", "/nonexistent/dir/t.jsonl",
                   "--unsafe-no-sandbox")
        check(out.returncode == 2 and "trace" in out.stderr, "an unwritable trace exits 2")

    if FAILURES:
        sys.exit(f"{len(FAILURES)} check(s) failed")


if __name__ == "__main__":
    main()
