#!/usr/bin/env python3
"""The built-in model (stories260K compiled into arle) reproduces the documented greedy sample.

The golden is the sample printed in karpathy's stories260K doc (assets/models/stories260K/
stories260K.upstream-doc.md), produced by llama2.c's `run -t 0.0` (256 steps from BOS). It is
read from the doc at test time, never copied by hand.
"""
import argparse
import re
import subprocess
import sys


def documented_sample(doc_path):
    text = open(doc_path, encoding="utf-8").read()
    m = re.search(r"temperature 0\.0.*?```\n\$ \./run[^\n]*\n(.*?)```", text, re.S)
    if not m:
        sys.exit(f"could not find the greedy sample in {doc_path}")
    return m.group(1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arle", required=True)
    ap.add_argument("--source-dir", required=True)
    args = ap.parse_args()
    expected = documented_sample(f"{args.source_dir}/assets/models/stories260K/stories260K.upstream-doc.md")
    out = subprocess.run([args.arle, "run", "--temperature", "0", "--max-tokens", "256"],
                         capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        sys.exit(f"arle run failed ({out.returncode}): {out.stderr}")
    got_words, want_words = out.stdout.split(), expected.split()
    # llama2.c printed exactly 256 generated tokens; compare every documented word.
    if got_words[: len(want_words)] != want_words or len(got_words) != len(want_words):
        for i, (g, w) in enumerate(zip(got_words, want_words)):
            if g != w:
                sys.exit(f"word {i} differs: got {g!r}, documented {w!r}\n--- got:\n{out.stdout}")
        sys.exit(f"length differs: got {len(got_words)} words, documented {len(want_words)}\n"
                 f"--- got:\n{out.stdout}")
    print(f"stories260K greedy sample matches the documentation ({len(want_words)} words)")


if __name__ == "__main__":
    main()
