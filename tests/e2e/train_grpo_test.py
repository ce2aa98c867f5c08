#!/usr/bin/env python3
"""`arle data gen-tasks` and `arle train grpo` from the command line, on a tiny Llama from
`arle model init` (stories260K's tokenizer).

- gen-tasks: the same seed gives the same file; train and heldout share no problem; --sft writes
  chats ending with the answer; a bad kind exits 2 naming it.
- grpo with --control-port 0: GET /v1/train/status shows the run and its GRPO metrics
  (reward_mean, logprob_max_diff); POST /v1/train/stop makes it save and exit 0. Then --resume
  continues to --steps. Every step line of --metrics-jsonl has logprob_max_diff 0 (the engine's
  log-probs are the trainer's), the held-out evaluation is logged before and after, and
  OUT/latest is a model `arle run` loads.
- Bad input exits 2 with a clear message: an unknown verifier, a task file with a bad line
  (named FILE:LINE), --group 1.
- `arle train multi-turn`: agent episodes (the random model answers without tools) log
  calls_mean, python_share and logprob_max_diff 0 per step and eval_python_share per
  evaluation; --max-turns 0 exits 2 naming it.
- Rollout servers: two `arle serve --accept-weights --api-key` processes; grpo with
  --rollout-url for both gives exactly the metrics (losses, rewards, KL, gradient norms) of the
  same run in process, with logprob_max_diff 0. A server without --accept-weights, a wrong key,
  and --accept-weights without --api-key are refused with their reason.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

FAILURES = []


def check(cond, what, detail=None):
    print(("ok   " if cond else "FAIL ") + what + (f" ({detail})" if detail and not cond else ""))
    if not cond:
        FAILURES.append(what)
    return cond


def run(cmd, timeout=300):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def get(base, path, method="GET"):
    req = urllib.request.Request(base + path, data=b"" if method == "POST" else None,
                                 method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")
    except (urllib.error.URLError, ConnectionError) as e:
        return 0, str(e)


def with_flags(cmd, values):
    """`cmd` with the value after each flag in `values` replaced."""
    out = list(cmd)
    for flag, value in values.items():
        out[out.index(flag) + 1] = value
    return out


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def scenario(arle, tmp):
    model = os.path.join(tmp, "model")
    r = run([arle, "model", "init", "--arch", "llama", "--dtype", "f32", "--seed", "5",
             "--out", model])
    check(r.returncode == 0, "model init", r.stderr[-500:])

    tasks, tasks2 = os.path.join(tmp, "tasks.jsonl"), os.path.join(tmp, "tasks2.jsonl")
    held, sft = os.path.join(tmp, "heldout.jsonl"), os.path.join(tmp, "sft.jsonl")
    for out, extra in ((tasks, []), (tasks2, []), (held, ["--split", "heldout"]),
                       (sft, ["--sft"])):
        seed = "2" if out == held else "1"
        r = run([arle, "data", "gen-tasks", "--kind", "arithmetic", "--n", "300", "--seed", seed,
                 "--out", out] + extra)
        check(r.returncode == 0, f"gen-tasks {os.path.basename(out)}", r.stderr[-500:])
    with open(tasks) as a, open(tasks2) as b:
        check(a.read() == b.read(), "gen-tasks: the same seed gives the same file")
    train_ids = {t["id"] for t in read_jsonl(tasks)}
    held_ids = {t["id"] for t in read_jsonl(held)}
    check(len(train_ids) == 300 and len(held_ids) == 300, "gen-tasks: 300 distinct tasks each")
    check(not train_ids & held_ids, "gen-tasks: train and heldout share no problem",
          sorted(train_ids & held_ids)[:5])
    first_task, first_chat = read_jsonl(tasks)[0], read_jsonl(sft)[0]
    check(first_chat["messages"] == [{"role": "user", "content": first_task["prompt"]},
                                     {"role": "assistant", "content": first_task["answer"]}],
          "gen-tasks --sft: a user prompt and the answer", first_chat)
    r = run([arle, "data", "gen-tasks", "--kind", "calculus", "--n", "3", "--out",
             os.path.join(tmp, "x.jsonl")])
    check(r.returncode == 2 and "calculus" in r.stderr, "gen-tasks: a bad kind exits 2 naming it",
          r.stderr[-300:])

    out, metrics = os.path.join(tmp, "run"), os.path.join(tmp, "metrics.jsonl")
    base_cmd = [arle, "train", "grpo", "--model", model, "--tasks", tasks, "--eval-tasks", held,
                "--eval-limit", "16", "--no-chat", "--verifier", "match:s", "--steps", "400",
                "--batch", "2", "--group", "4", "--max-tokens", "4", "--lr", "1e-3",
                "--out", out, "--metrics-jsonl", metrics, "-t", "2"]
    p = subprocess.Popen(base_cmd + ["--control-port", "0"], stderr=subprocess.PIPE, text=True)
    port = None
    for line in p.stderr:
        if "control on http://127.0.0.1:" in line:
            port = int(line.split("http://127.0.0.1:", 1)[1].split("/", 1)[0])
            break
    check(port is not None, "grpo --control-port prints its port")
    if port is None:
        p.kill()
        return
    base = f"http://127.0.0.1:{port}"
    deadline, status = time.time() + 120, None
    while time.time() < deadline:
        code, status = get(base, "/v1/train/status")
        if code == 200 and status.get("step") and status["step"] >= 2:
            break
        time.sleep(0.05)
    check(code == 200 and status.get("state") == "running", "status: running", status)
    m = status.get("metrics") or {}
    check("reward_mean" in m and m.get("logprob_max_diff") == 0,
          "status: GRPO metrics with logprob_max_diff 0", m)
    code, body = get(base, "/v1/train/stop", "POST")
    check(code == 202, "stop: 202", body)
    rest = p.stderr.read()
    p.wait(timeout=120)
    check(p.returncode == 0, "stop: exits 0 after saving", rest[-500:])
    stopped_at = len([x for x in read_jsonl(metrics) if "reward_mean" in x])
    check(0 < stopped_at < 400, "stop: the run ended early", stopped_at)
    check(os.path.isdir(os.path.join(out, "latest")), "stop: OUT/latest exists")

    steps = stopped_at + 2
    r = run(with_flags(base_cmd, {"--steps": str(steps)}) + ["--resume"])
    check(r.returncode == 0, "--resume runs to --steps", r.stderr[-800:])
    lines = read_jsonl(metrics)
    step_lines = [x for x in lines if "reward_mean" in x]
    check([x["step"] for x in step_lines] == list(range(1, steps + 1)),
          "metrics: one line per step, resumed ones after", [x["step"] for x in step_lines])
    check(all(x["logprob_max_diff"] == 0 for x in step_lines),
          "metrics: logprob_max_diff 0 at every step",
          [x["logprob_max_diff"] for x in step_lines])
    evals = [x for x in lines if "eval_accuracy" in x]
    check(len(evals) >= 2 and evals[0]["step"] == 0 and evals[-1]["step"] == steps,
          "metrics: held-out evaluation before and at the end", evals)
    r = run([arle, "run", "--model", os.path.join(out, "latest"), "--prompt", "Once", "-n", "4",
             "--temperature", "0"])
    check(r.returncode == 0, "arle run loads OUT/latest", r.stderr[-500:])

    bad = os.path.join(tmp, "bad.jsonl")
    with open(bad, "w") as f:
        f.write('{"prompt": "a", "answer": "1"}\n{"prompt": 3}\n')
    for what, flags, needle in (
            ("an unknown verifier", {"--verifier": "nonsense"}, "verifier"),
            ("a bad task line", {"--tasks": bad}, "bad.jsonl:2"),
            ("--group 1", {"--group": "1"}, "--group")):
        flags["--out"] = os.path.join(tmp, "bad_run")
        r = run(with_flags(base_cmd, flags))
        check(r.returncode == 2 and needle in r.stderr, f"bad input: {what} exits 2 naming it",
              r.stderr[-300:])


def multi_turn(arle, tmp):
    model, tasks, held = (os.path.join(tmp, n) for n in ("model", "tasks.jsonl", "heldout.jsonl"))
    metrics = os.path.join(tmp, "mt.jsonl")
    cmd = [arle, "train", "multi-turn", "--model", model, "--tasks", tasks, "--eval-tasks", held,
           "--eval-limit", "4", "--verifier", "number", "--steps", "2", "--batch", "2",
           "--group", "3", "--max-tokens", "8", "--max-turns", "3", "--out",
           os.path.join(tmp, "mt"), "--metrics-jsonl", metrics, "-t", "2",
           # The random model answers without tool calls, so nothing runs unsandboxed.
           "--unsafe-no-sandbox"]
    r = run(cmd)
    if not check(r.returncode == 0, "multi-turn runs", r.stderr[-800:]):
        return
    lines = read_jsonl(metrics)
    steps = [x for x in lines if "reward_mean" in x]
    evals = [x for x in lines if "eval_accuracy" in x]
    check(len(steps) == 2 and all(x["logprob_max_diff"] == 0 and x["calls_mean"] >= 1 and
                                  "python_share" in x for x in steps),
          "multi-turn: episode metrics and logprob_max_diff 0 every step", steps)
    check(len(evals) == 2 and all("eval_python_share" in x for x in evals),
          "multi-turn: held-out episodes log eval_python_share", evals)
    r = run(with_flags(cmd, {"--max-turns": "0"}))
    check(r.returncode == 2 and "--max-turns" in r.stderr,
          "multi-turn: --max-turns 0 exits 2 naming it", r.stderr[-300:])


def start_server(arle, model, extra):
    """`arle serve` on a free port; returns (process, base URL or None)."""
    p = subprocess.Popen([arle, "serve", "--model", model, "--port", "0", "-t", "1"] + extra,
                         stderr=subprocess.PIPE, text=True)
    for line in p.stderr:
        if "listening on http://" in line:
            return p, "http://" + line.split("http://", 1)[1].split(" ", 1)[0]
    return p, None


def rollout_servers(arle, tmp):
    model, tasks = os.path.join(tmp, "model"), os.path.join(tmp, "tasks.jsonl")
    r = run([arle, "serve", "--model", model, "--accept-weights"])
    check(r.returncode == 2 and "--api-key" in r.stderr,
          "serve --accept-weights without --api-key exits 2 naming it", r.stderr[-300:])
    servers = [start_server(arle, model, ["--accept-weights", "--api-key", "k"]) for _ in range(2)]
    plain = start_server(arle, model, ["--api-key", "k"])
    try:
        if not check(all(url for _, url in servers + [plain]), "rollout servers start"):
            return
        code, body = get(servers[0][1], "/v1/admin/weights", "POST")
        check(code == 401, "POST /v1/admin/weights without the key: 401", body)

        def grpo(name, extra):
            metrics = os.path.join(tmp, name + ".jsonl")
            r = run([arle, "train", "grpo", "--model", model, "--tasks", tasks, "--no-chat",
                     "--verifier", "match:s", "--steps", "3", "--batch", "3", "--group", "4",
                     "--max-tokens", "5", "--lr", "1e-3", "--out", os.path.join(tmp, name),
                     "--metrics-jsonl", metrics, "-t", "1"] + extra)
            lines = read_jsonl(metrics) if os.path.exists(metrics) else []
            return r, [x for x in lines if "reward_mean" in x]

        r, local = grpo("local", [])
        check(r.returncode == 0 and len(local) == 3, "grpo in process", r.stderr[-500:])
        urls = [a for _, url in servers for a in ("--rollout-url", url)]
        r, remote = grpo("remote", urls + ["--api-key", "k"])
        check(r.returncode == 0 and len(remote) == 3, "grpo --rollout-url x2", r.stderr[-800:])
        keys = ("reward_mean", "reward_std", "accuracy", "loss", "kl", "clip_fraction", "entropy",
                "grad_norm", "tokens_generated")
        check([{k: x[k] for k in keys} for x in remote] == [{k: x[k] for k in keys} for x in local],
              "rollout servers: the same metrics as in process, step by step",
              (local, remote))
        check(all(x["logprob_max_diff"] == 0 and x.get("weights_push_s", 0) > 0 for x in remote),
              "rollout servers: logprob_max_diff 0 and weights pushed every step", remote)
        for what, extra, needle in (
                ("a server without --accept-weights", ["--rollout-url", plain[1], "--api-key", "k"],
                 "--accept-weights"),
                ("a wrong key", urls + ["--api-key", "wrong"], "401")):
            r, _ = grpo("bad_remote", extra)
            check(r.returncode != 0 and needle in r.stderr, f"grpo --rollout-url: {what} is refused",
                  r.stderr[-400:])
    finally:
        for p, _ in servers + [plain]:
            p.terminate()
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arle", required=True)
    ap.add_argument("--source-dir", required=True)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="arle-grpo-e2e-")
    try:
        scenario(args.arle, tmp)
        multi_turn(args.arle, tmp)
        rollout_servers(args.arle, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if FAILURES:
        print(f"{len(FAILURES)} failure(s)")
        sys.exit(1)
    print("all passed")


if __name__ == "__main__":
    main()
