#!/usr/bin/python3
"""Copies the small excerpts of the evaluation sets that tests/eval/tasks_test.cc reads from the
project fixtures (shared/fixtures/eval) into tests/data/eval/, with their licence files. Run from
the repository root: /usr/bin/python3 tests/eval/make_task_data.py [FIXTURES_DIR]. The tests never
read the fixtures; the files written by hand (hellaswag_hf.jsonl, winogrande.jsonl) are not
touched. Then run tests/eval/task_goldens.py."""

import bz2
import csv
import gzip
import io
import json
import os
import shutil
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "data", "eval")
MMLU_SUBJECTS = ["abstract_algebra", "business_ethics", "formal_logic"]


def write(rel, data):
    path = os.path.join(OUT, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if rel.endswith(".gz"):
        buf = io.BytesIO()
        with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as g:  # byte-stable output
            g.write(data.encode())
        data = buf.getvalue()
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())
    print("wrote", path)


def jsonl(records):
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def read_jsonl(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def copy(src, rel):
    os.makedirs(os.path.dirname(os.path.join(OUT, rel)), exist_ok=True)
    shutil.copyfile(src, os.path.join(OUT, rel))


def main():
    fx = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "..", "shared", "fixtures", "eval")

    # HellaSwag (llama.cpp text format): the first 30 tasks, then the first 3 later tasks with a
    # "[" and the first with a double space, so the harness's preprocess has work to do.
    lines = bz2.open(os.path.join(fx, "hellaswag", "hellaswag_val_full.txt.bz2"), "rt",
                     encoding="utf-8").read().split("\n")
    tasks = [lines[i:i + 6] for i in range(0, len(lines) - 5, 6)]
    picked = list(range(30))
    brackets = [i for i, t in enumerate(tasks) if i >= 30 and any("[" in x for x in t)][:3]
    spaces = [i for i, t in enumerate(tasks) if i >= 30 and any("  " in x for x in t)][:1]
    picked += [i for i in brackets + spaces if i not in picked]
    write("hellaswag/hellaswag_val_excerpt.txt", "".join("\n".join(tasks[i]) + "\n" for i in picked))
    print("hellaswag tasks", picked)
    copy(os.path.join(fx, "hellaswag", "LICENSE.hellaswag"), "hellaswag/LICENSE.hellaswag")
    copy(os.path.join(fx, "hellaswag", "README.klosax.md"), "hellaswag/README.klosax.md")

    # ARC-Challenge test: the first 30 records, one with 3 choices and one with 5.
    arc = read_jsonl(os.path.join(fx, "arc", "arc_challenge_test.jsonl"))
    write("arc/arc_challenge_test_excerpt.jsonl", jsonl(arc[:30] + [arc[121], arc[836]]))

    # MMLU: three subjects (one with leading spaces in its questions, one with Unicode logic
    # symbols): all their dev records, the first 8 test records each; the same as original CSVs.
    dev = read_jsonl(os.path.join(fx, "mmlu", "mmlu_dev.jsonl"))
    test = read_jsonl(os.path.join(fx, "mmlu", "mmlu_test.jsonl.gz"))
    dev = [r for r in dev if r["subject"] in MMLU_SUBJECTS]
    test = [r for s in MMLU_SUBJECTS for r in [x for x in test if x["subject"] == s][:8]]
    write("mmlu/mmlu_dev_excerpt.jsonl", jsonl(dev))
    write("mmlu/mmlu_test_excerpt.jsonl.gz", jsonl(test))
    for split, records in (("dev", dev), ("test", test)):
        for s in MMLU_SUBJECTS:
            buf = io.StringIO()
            w = csv.writer(buf, lineterminator="\n")
            for r in records:
                if r["subject"] == s:
                    w.writerow([r["question"]] + r["choices"] + ["ABCD"[r["answer"]]])
            write(f"mmlu/{s}_{split}.csv", buf.getvalue())

    # GSM8K: the first 20 train and 10 test problems.
    write("gsm8k/train_excerpt.jsonl", jsonl(read_jsonl(os.path.join(fx, "gsm8k", "train.jsonl"))[:20]))
    write("gsm8k/test_excerpt.jsonl", jsonl(read_jsonl(os.path.join(fx, "gsm8k", "test.jsonl"))[:10]))
    copy(os.path.join(fx, "gsm8k", "LICENSE"), "gsm8k/LICENSE")

    # HumanEval: the first 4 problems, gzip as in the fixture.
    he = read_jsonl(os.path.join(fx, "humaneval", "HumanEval.jsonl.gz"))
    write("humaneval/HumanEval_excerpt.jsonl.gz", jsonl(he[:4]))
    copy(os.path.join(fx, "humaneval", "LICENSE"), "humaneval/LICENSE")

    # MATH-500: the first 20 problems; AMC 2023: the first 5 (no solution, numeric answers).
    write("math/math500_excerpt.jsonl", jsonl(read_jsonl(os.path.join(fx, "math", "math500_test.jsonl"))[:20]))
    write("math/amc23_excerpt.jsonl", jsonl(read_jsonl(os.path.join(fx, "math", "amc23_test.jsonl"))[:5]))
    copy(os.path.join(fx, "math", "LICENSE.qwen25math-evaluation"), "math/LICENSE.qwen25math-evaluation")


if __name__ == "__main__":
    main()
