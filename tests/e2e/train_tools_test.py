#!/usr/bin/env python3
"""`arle train plot | estimate-memory | test`.

- plot: a resumed run's metrics (steps logged twice, an evaluation, a NaN loss) become an SVG
  whose train polyline has one point per step in step order, eval markers, and a warning for the
  NaN; malformed and empty files exit 2 naming the line.
- estimate-memory: the peak RSS of a real `arle train pretrain` run lies between 0.9x the
  estimate and the estimate plus a stated overhead: one more copy of the weights (the model
  file, mapped while it is copied into f32 master weights) and a fixed 96 MiB (the process, its
  libraries, thread stacks, tokenizer and data). The run is sized so the estimate (~250 MiB)
  dominates. Bad flags exit 2.
- test: the self-check passes (exit 0, every stage ok) and prints its JSON report.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

FAILURES = []
MIB = 1 << 20
FIXED_OVERHEAD = 96 * MIB


def check(cond, what, detail=None):
    print(("ok   " if cond else "FAIL ") + what + (f" ({detail})" if detail and not cond else ""))
    if not cond:
        FAILURES.append(what)


def outcome(r):
    return (f"rc {r.returncode}, stdout {r.stdout.strip()[-600:]!r}, "
            f"stderr {r.stderr.strip()[-600:]!r}")


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kw)


def peak_rss(cmd):
    """Runs cmd in a fresh Python child and returns (returncode, its child's peak RSS bytes)."""
    probe = ("import resource, subprocess, sys\n"
             "r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)\n"
             "sys.stderr.buffer.write(r.stderr[-2000:])\n"
             "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n")
    r = run([sys.executable, "-c", probe] + cmd)
    rc, kib = r.stdout.split()
    return int(rc), int(kib) * 1024, r.stderr


def check_plot(arle, tmp):
    metrics = os.path.join(tmp, "metrics.jsonl")
    # Steps 5-7 diverged (9.0) and the run resumed from step 4 with lower losses.
    lines = [{"step": s, "loss": 5.0 - 0.1 * s if s < 5 else 9.0, "lr": 1e-3} for s in range(1, 8)]
    lines.append({"step": 5, "eval_loss": 4.8, "eval_ppl": 121.5, "eval_tokens": 64})
    lines += [{"step": s, "loss": 4.9 - 0.1 * s, "lr": 1e-3} for s in range(5, 13)]  # resumed
    with open(metrics, "w") as f:
        for d in lines:
            f.write(json.dumps(d) + "\n")
        f.write('{"step": 13, "loss": NaN}\n')
        f.write(json.dumps({"step": 12, "eval_loss": 3.9}) + "\n")
    svg = os.path.join(tmp, "loss.svg")
    r = run([arle, "train", "plot", metrics, "-o", svg, "--title", "e2e run"])
    check(r.returncode == 0 and os.path.exists(svg), "plot writes the SVG", outcome(r))
    check(":17: loss is not finite" in r.stderr, "plot warns about the NaN loss naming its line",
          outcome(r))
    if r.returncode != 0:
        return
    root = ET.parse(svg).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    lines_ = {p.get("class"): p.get("points") for p in root.iter(ns + "polyline")}
    train = [tuple(map(float, p.split(","))) for p in lines_.get("train", "").split()]
    check(len(train) == 12, "one train point per step (the resumed steps' last lines)",
          f"{len(train)} points")
    xs = [x for x, _ in train]
    ys = [y for _, y in train]
    check(xs == sorted(xs) and len(set(xs)) == len(xs), "train points in step order")
    # Only the resumed values of steps 5-7 (not 9.0) keep the curve falling.
    check(ys == sorted(ys) and len(set(ys)) == len(ys),
          "falling loss is drawn falling (SVG y grows down), resumed values win")
    markers = [c for c in root.iter(ns + "circle") if c.get("class") == "eval-marker"]
    check(len(markers) == 2, "an eval marker per evaluation", f"{len(markers)}")
    texts = [t.text for t in root.iter(ns + "text")]
    check("e2e run" in texts and "step" in texts and "loss (nats)" in texts,
          "title and axis labels", f"{texts[:6]}")
    if shutil.which("rsvg-convert"):
        png = os.path.join(tmp, "loss.png")
        r = run(["rsvg-convert", svg, "-o", png])
        check(r.returncode == 0 and os.path.getsize(png) > 1000, "rsvg-convert renders the SVG",
              outcome(r))
    for what, text, needle in (("malformed line", '{"step": 1, "loss": 2}\n{"step": 2,\n',
                                ":2: not a JSON object"),
                               ("empty file", "", "no finite loss")):
        bad = os.path.join(tmp, "bad.jsonl")
        with open(bad, "w") as f:
            f.write(text)
        r = run([arle, "train", "plot", bad, "-o", os.path.join(tmp, "bad.svg")])
        check(r.returncode == 2 and needle in r.stderr, f"plot: {what} exits 2 ({needle})",
              outcome(r))
    r = run([arle, "train", "plot", os.path.join(tmp, "missing.jsonl"), "-o", svg])
    check(r.returncode == 2, "plot: a missing file exits 2", outcome(r))


def check_memory(arle, src, tmp):
    # 4 layers of hidden 256 (3.2M values): the weights, gradients and AdamW are ~50 MiB, the kept
    # activations of 8 x 256 tokens ~170 MiB.
    config = json.dumps({"hidden_size": 256, "intermediate_size": 688, "num_hidden_layers": 4,
                         "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 32})
    model = os.path.join(tmp, "mem_model")
    r = run([arle, "model", "init", "--arch", "llama", "--preset", "tiny", "--config", config,
             "--out", model])
    check(r.returncode == 0, "model init for the memory check", outcome(r))
    r = run([arle, "train", "estimate-memory", "--model", model, "--batch", "8", "--seq", "256",
             "--json"])
    check(r.returncode == 0, "estimate-memory --json", outcome(r))
    if r.returncode != 0:
        return
    est = json.loads(r.stdout)
    parts = ("weights", "gradients", "optimizer", "activations", "attention_lse",
             "grad_workspace", "loss_head", "lora_merge")
    check(est["total"] == sum(est[k] for k in parts), "total is the sum of the parts")
    check(est["gradients"] == est["weights"] and est["optimizer"] == 2 * est["weights"],
          "full training: gradients = weights, AdamW = 2x weights")
    r = run([arle, "train", "estimate-memory", "--model", model, "--batch", "8", "--seq", "256"])
    check(r.returncode == 0 and "total" in r.stdout and "MiB" in r.stdout,
          "estimate-memory prints a table", outcome(r))
    corpus = os.path.join(src, "tests/data/train/tinyshakespeare_head.txt")
    out = os.path.join(tmp, "mem_run")
    rc, peak, err = peak_rss([arle, "train", "pretrain", "--model", model, "--data", corpus,
                              "--out", out, "--steps", "2", "--batch", "8", "--seq", "256",
                              "-t", "2"])
    check(rc == 0, "the measured pretraining run succeeds", err[-600:])
    low, high = 0.9 * est["total"], est["total"] + est["weights"] + FIXED_OVERHEAD
    print(f"     estimate {est['total'] / MIB:.1f} MiB, peak RSS {peak / MIB:.1f} MiB, "
          f"allowed [{low / MIB:.1f}, {high / MIB:.1f}]")
    r = run([arle, "--doctor", "--json"])
    sanitizers = json.loads(r.stdout).get("build", {}).get("sanitizers", "none")
    if sanitizers != "none":
        # ASan's shadow memory and redzones multiply the heap's footprint: only the lower bound
        # means anything in such a build.
        print(f"     built with {sanitizers}: the upper RSS bound is not checked")
        check(low <= peak, "peak RSS at least 0.9 x estimate",
              f"peak {peak / MIB:.1f} MiB, estimate {est['total'] / MIB:.1f} MiB")
    else:
        check(low <= peak <= high,
              "peak RSS within [0.9 x estimate, estimate + weights + 96 MiB]",
              f"peak {peak / MIB:.1f} MiB, estimate {est['total'] / MIB:.1f} MiB")
    # LoRA trains far less: the optimizer holds the adapters' moments only.
    r = run([arle, "train", "estimate-memory", "--model", model, "--batch", "1", "--seq", "64",
             "--lora-rank", "8", "--lora-targets", "all-linear", "--json"])
    lora = json.loads(r.stdout) if r.returncode == 0 else {}
    check(r.returncode == 0 and 0 < lora["optimizer"] < est["optimizer"] / 10,
          "LoRA: the optimizer state is the adapters'", outcome(r))
    for what, extra in (("no model", ["--batch", "1"]),
                        ("zero batch", ["--model", model, "--batch", "0"]),
                        ("unknown target", ["--model", model, "--lora-rank", "4",
                                            "--lora-targets", "qkv"]),
                        ("rank above the dimensions", ["--model", model, "--lora-rank", "4000"]),
                        ("missing model", ["--model", os.path.join(tmp, "nope")]),
                        ("unknown preset", ["--arch", "llama", "--preset", "huge"])):
        r = run([arle, "train", "estimate-memory"] + extra)
        check(r.returncode == 2 and "arle" in r.stderr, f"estimate-memory: {what} exits 2",
              outcome(r))


def check_selftest(arle, tmp):
    r = run([arle, "train", "test", "-t", "2"])
    report = None
    try:
        report = json.loads(r.stdout)
    except ValueError:
        pass
    check(r.returncode == 0 and report is not None and report["ok"], "arle train test passes",
          outcome(r))
    if report:
        names = [s["name"] for s in report["stages"]]
        check(names == ["data", "init", "pretrain", "sft_lora", "eval", "generate"]
              and all(s["ok"] and s["seconds"] >= 0 for s in report["stages"]),
              "every stage reported ok", json.dumps(report)[:800])
        print("     " + ", ".join(f"{s['name']} {s['seconds']:.2f}s" for s in report["stages"]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arle", required=True)
    ap.add_argument("--source-dir", required=True)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="arle-train-tools-e2e-")
    try:
        check_plot(args.arle, tmp)
        check_memory(args.arle, args.source_dir, tmp)
        check_selftest(args.arle, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if FAILURES:
        print(f"{len(FAILURES)} failure(s)")
        sys.exit(1)
    print("all passed")


if __name__ == "__main__":
    main()
