#!/usr/bin/env python3
"""`arle train --control-port` and `arle serve --train-control-url`: a running training's status,
events, save and stop over HTTP, directly and through the OpenAI server's proxy.

- A pretraining run (tiny Llama from `arle model init`) with --control-port 0 prints its port and
  serves GET /v1/train/status (state running, step/loss/lr/eta, out, pid) and
  GET /v1/train/events (seq strictly increasing and gap-free, paging with next_seq; a client
  whose after_seq left the 1024-event ring gets truncated: true); a bad after_seq is a 400
  naming it; unknown routes are 404 and a wrong method 405, in OpenAI's error envelope.
- `arle serve --train-control-url` proxies the same status (same pid), POST save (202; a new
  step directory appears, announced by a "save" event) and upstream errors (the 400 as is).
  Without the flag /v1/train/* is 404 with code train_control_unconfigured; an unreachable
  upstream gives 502, a silent one 504 within the proxy's timeout.
- POST /v1/train/stop answers 202 {"accepted": true}, the state becomes "stopping" at once and
  the process exits 0 after saving: `latest` is that complete step; the port is closed after.
- A port in use fails before anything is written (exit 2, the message names --control-port), for
  `pretrain` and `sft`.
"""
import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FAILURES = []


def check(cond, what, detail=None):
    print(("ok   " if cond else "FAIL ") + what + (f" ({detail})" if detail and not cond else ""))
    if not cond:
        FAILURES.append(what)
    return cond


def request(base, path, method="GET", body=None, timeout=30):
    """Returns (status, parsed JSON or raw text); status 0 when nothing answered."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    except (urllib.error.URLError, ConnectionError) as e:  # refused: the process has gone
        return 0, str(e)
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def error_code(body):
    return body.get("error", {}).get("code") if isinstance(body, dict) else None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    """A child whose stderr is drained by a thread (a training prints a line per step), waiting
    for the first line that contains `marker`."""

    def __init__(self, cmd):
        self.p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines = []
        self.found = threading.Event()
        self.marker_line = None
        self.marker = None
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        for line in self.p.stderr:
            if len(self.lines) < 200:
                self.lines.append(line)
            if self.marker and self.marker_line is None and self.marker in line:
                self.marker_line = line
                self.found.set()
        self.found.set()

    def wait_for(self, marker, timeout=120):
        self.marker = marker
        for line in list(self.lines):
            if marker in line:
                self.marker_line = line
                self.found.set()
        self.found.wait(timeout)
        return self.marker_line

    def stderr_head(self):
        return "".join(self.lines)[-1500:]

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


def port_of(line):
    # "... http://127.0.0.1:PORT/..." or "... http://127.0.0.1:PORT (model ...)"
    rest = line.split("http://127.0.0.1:", 1)[1]
    digits = ""
    for c in rest:
        if not c.isdigit():
            break
        digits += c
    return int(digits)


def poll(fn, cond, timeout=120, every=0.05):
    deadline = time.time() + timeout
    value = fn()
    while not cond(value) and time.time() < deadline:
        time.sleep(every)
        value = fn()
    return value


def check_events(page, after, what):
    seqs = [e["seq"] for e in page["events"]]
    gap_free = all(b == a + 1 for a, b in zip(seqs, seqs[1:]))
    check(gap_free, f"{what}: seq strictly increasing without gaps", seqs[:20])
    if seqs:
        check(seqs[0] > after, f"{what}: every seq > after_seq", f"{seqs[0]} <= {after}")
        if not page["truncated"]:
            check(seqs[0] == after + 1, f"{what}: not truncated, so starts at after_seq + 1",
                  seqs[0])
        check(page["next_seq"] == seqs[-1], f"{what}: next_seq is the last seq", page["next_seq"])
    check(all(e["type"] in ("step", "eval", "save", "state") for e in page["events"]),
          f"{what}: known event types")


class Silent(BaseHTTPRequestHandler):
    """An upstream that accepts and never answers in time."""

    def do_GET(self):
        time.sleep(12)

    def log_message(self, *args):
        pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arle", required=True)
    ap.add_argument("--source-dir", required=True)
    args = ap.parse_args()
    arle = args.arle
    corpus = os.path.join(args.source_dir, "tests/data/train/tinyshakespeare_head.txt")
    chat = os.path.join(args.source_dir, "tests/data/train/sft_chat.jsonl")
    tmp = tempfile.mkdtemp(prefix="arle-train-control-e2e-")
    procs = []
    try:
        scenario(arle, corpus, chat, tmp, procs)
    finally:
        for p in procs:
            p.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    if FAILURES:
        print(f"{len(FAILURES)} failure(s)")
        sys.exit(1)
    print("all passed")


def scenario(arle, corpus, chat, tmp, procs):
    """Returns early (after a failed check) when what follows cannot run."""
    llama = os.path.join(tmp, "llama")
    r = subprocess.run([arle, "model", "init", "--preset", "tiny", "--arch", "llama",
                        "--seed", "7", "--out", llama], capture_output=True, text=True,
                       timeout=300)
    if not check(r.returncode == 0, "model init", r.stderr[-500:]):
        return

    # A port in use: a clear error before anything is written.
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        out = os.path.join(tmp, "busy")
        r = subprocess.run([arle, "train", "pretrain", "--arch", "llama", "--data", corpus,
                            "--out", out, "--steps", "2", "--control-port", str(port)],
                           capture_output=True, text=True, timeout=300)
        check(r.returncode == 2 and "--control-port" in r.stderr and str(port) in r.stderr,
              "pretrain: a port in use exits 2 naming --control-port and the port",
              f"rc {r.returncode}: {r.stderr[-400:]}")
        check(not os.path.exists(out), "pretrain: nothing written when the port is in use")
        r = subprocess.run([arle, "train", "sft", "--model", llama, "--data", chat, "--out",
                            os.path.join(tmp, "busy_sft"), "--steps", "2",
                            "--control-port", str(port)],
                           capture_output=True, text=True, timeout=300)
        check(r.returncode == 2 and "--control-port" in r.stderr,
              "sft: a port in use exits 2 naming --control-port",
              f"rc {r.returncode}: {r.stderr[-400:]}")

    # The run: long enough to stay alive until stopped.
    out = os.path.join(tmp, "run")
    steps = 1000000
    train = Proc([arle, "train", "pretrain", "--model", llama, "--data", corpus, "--out", out,
                  "--steps", str(steps), "--batch", "2", "--seq", "32", "--eval-frac", "0.1",
                  "--eval-every", "50", "-t", "1", "--control-port", "0"])
    procs.append(train)
    line = train.wait_for("control on http://127.0.0.1:")
    if not check(line is not None, "train prints its control URL", train.stderr_head()):
        return
    tport = port_of(line)
    base = f"http://127.0.0.1:{tport}"

    status = poll(lambda: request(base, "/v1/train/status")[1],
                  lambda s: isinstance(s, dict) and (s.get("step") or 0) >= 3)
    check(isinstance(status, dict) and status.get("state") == "running"
          and status.get("step", 0) >= 3, "status: running, steps advance", status)
    want = {"state", "step", "steps", "loss", "lr", "grad_norm", "tokens_per_s", "elapsed_s",
            "eta_s", "out", "latest_checkpoint", "last_eval", "pid"}
    check(want <= set(status), "status has every field", sorted(want - set(status)))
    check(status.get("steps") == steps and status.get("out") == out
          and status.get("pid") == train.p.pid, "status: steps, out and pid are the run's",
          status)
    check(all(isinstance(status.get(k), (int, float)) for k in
              ("loss", "lr", "grad_norm", "tokens_per_s", "elapsed_s", "eta_s")),
          "status: numbers after the first step", status)

    # Events: ordered, gap-free, paged by next_seq.
    code, page = request(base, "/v1/train/events?after_seq=0")
    check(code == 200 and isinstance(page, dict) and "events" in page, "events answers 200",
          page)
    check_events(page, 0, "events after 0")
    first = page["events"][0] if page["events"] else {}
    check(page["truncated"] or (first.get("type") == "state" and first.get("state") == "starting"),
          "the first event is the state starting", first)
    after = page["next_seq"]
    steps_seen = [e["step"] for e in page["events"] if e["type"] == "step"]
    check(steps_seen == sorted(steps_seen) and len(steps_seen) > 0, "step events in order",
          steps_seen[:10])
    time.sleep(0.3)
    code, page2 = request(base, f"/v1/train/events?after_seq={after}")
    check_events(page2, after, "events after next_seq")
    check(len(page2["events"]) > 0, "new events arrive", page2)
    # Past the ring (1024 events): an old after_seq is truncated.
    last = poll(lambda: request(base, "/v1/train/events?after_seq=999999999")[1]["next_seq"],
                lambda n: n > 1100, timeout=180, every=0.2)
    code, page3 = request(base, "/v1/train/events?after_seq=1")
    check(page3.get("truncated") is True and len(page3["events"]) == 1024
          and page3["events"][0]["seq"] > 2,
          "an after_seq older than the 1024 kept events gets truncated: true",
          f"last {last}, {page3.get('truncated')}, {len(page3.get('events', []))}")
    check_events(page3, 1, "truncated page")
    check(any(e["type"] == "eval" for e in page3["events"]) and
          request(base, "/v1/train/status")[1].get("last_eval") is not None,
          "evaluations are published (eval events and last_eval)")

    for bad in ("abc", "-1", "", "1.5", "99999999999999999999"):
        code, body = request(base, f"/v1/train/events?after_seq={bad}")
        check(code == 400 and isinstance(body, dict) and
              body.get("error", {}).get("param") == "after_seq",
              f"after_seq={bad!r} is a 400 naming after_seq", f"{code} {body}")
    code, body = request(base, "/v1/train/nope")
    check(code == 404 and isinstance(body, dict) and "error" in body,
          "unknown /v1/train/* is a 404 error envelope", f"{code} {body}")
    code, body = request(base, "/v1/train/stop")  # GET
    check(code == 405, "GET /v1/train/stop is 405", f"{code} {body}")

    # The OpenAI server's proxy.
    serve = Proc([arle, "serve", "--port", "0", "--train-control-url", base])
    procs.append(serve)
    line = serve.wait_for("listening on http://127.0.0.1:")
    if not check(line is not None, "serve with --train-control-url starts",
                 serve.stderr_head()):
        return
    sbase = f"http://127.0.0.1:{port_of(line)}"
    code, proxied = request(sbase, "/v1/train/status")
    check(code == 200 and isinstance(proxied, dict) and proxied.get("pid") == train.p.pid
          and proxied.get("out") == out and proxied.get("state") == "running",
          "serve proxies GET /v1/train/status", f"{code} {proxied}")
    code, body = request(sbase, "/v1/train/events?after_seq=x")
    check(code == 400 and body.get("error", {}).get("param") == "after_seq",
          "serve proxies the query and the upstream's 400", f"{code} {body}")
    code, body = request(sbase, "/v1/train/events?after_seq=5")
    check(code == 200 and isinstance(body, dict) and "next_seq" in body,
          "serve proxies GET /v1/train/events", f"{code}")

    # Save through the proxy: a new step directory, announced by a save event.
    _, before = request(base, "/v1/train/events?after_seq=999999999")
    mark = before["next_seq"]
    code, body = request(sbase, "/v1/train/save", method="POST", body={})
    check(code == 202 and body == {"accepted": True}, "POST save (proxied) is 202",
          f"{code} {body}")

    def saves():
        return [e for e in request(base, f"/v1/train/events?after_seq={mark}")[1]["events"]
                if e["type"] == "save"]
    found = poll(saves, lambda s: len(s) > 0, timeout=60)
    if check(len(found) > 0, "a save event follows POST save"):
        d = found[0]["dir"]
        check(os.path.isfile(os.path.join(d, "trainer_state.json")),
              "the saved step directory is complete", d)
        check(request(base, "/v1/train/status")[1].get("latest_checkpoint") is not None,
              "status names the latest checkpoint")

    # Stop: 202, stopping at once, exit 0 after saving.
    code, body = request(base, "/v1/train/stop", method="POST")
    check(code == 202 and body == {"accepted": True}, "POST stop is 202 accepted",
          f"{code} {body}")
    code, st = request(base, "/v1/train/status")
    # Nothing answering means the run has already saved and closed its port (its exit is checked
    # next); anything else must say stopping (or finished, during the last second).
    check((code == 200 and st.get("state") in ("stopping", "finished")) or code == 0,
          "state is stopping right after the stop", f"{code} {st}")
    try:
        rc = train.p.wait(timeout=120)
    except subprocess.TimeoutExpired:
        rc = None
    stdout = train.p.stdout.read() if rc is not None else ""
    check(rc == 0, "the run exits 0 after the stop", f"rc {rc}: {train.stderr_head()}")
    latest = os.path.join(out, "latest")
    state = os.path.join(latest, "trainer_state.json")
    if check(os.path.isfile(state), "latest is a complete checkpoint after the stop"):
        saved = json.load(open(state))["step"]
        check(0 < saved < steps, "the stop saved an early step", saved)
        check(os.path.realpath(latest) == os.path.realpath(stdout.strip().splitlines()[-1])
              if stdout.strip() else False, "the run prints the step it saved", stdout)
    try:
        socket.create_connection(("127.0.0.1", tport), timeout=2).close()
        closed = False
    except OSError:
        closed = True
    check(closed, "the control port is closed after the run")

    # The proxy with its upstream gone: 502.
    code, body = request(sbase, "/v1/train/status")
    check(code == 502 and error_code(body) == "train_control_unreachable",
          "an unreachable upstream is 502 train_control_unreachable", f"{code} {body}")
    serve.kill()

    # Without the flag: 404 train_control_unconfigured, GET and POST.
    plain = Proc([arle, "serve", "--port", "0"])
    procs.append(plain)
    line = plain.wait_for("listening on http://127.0.0.1:")
    if check(line is not None, "serve without the flag starts", plain.stderr_head()):
        pbase = f"http://127.0.0.1:{port_of(line)}"
        for method, path in (("GET", "/v1/train/status"), ("POST", "/v1/train/stop")):
            code, body = request(pbase, path, method=method,
                                 body={} if method == "POST" else None)
            check(code == 404 and error_code(body) == "train_control_unconfigured",
                  f"no --train-control-url: {method} {path} is 404 train_control_unconfigured",
                  f"{code} {body}")
    plain.kill()

    # A silent upstream: 504 within the proxy's 5 s timeout, not a hang.
    silent = ThreadingHTTPServer(("127.0.0.1", 0), Silent)
    silent.daemon_threads = True
    threading.Thread(target=silent.serve_forever, daemon=True).start()
    slow = Proc([arle, "serve", "--port", "0", "--train-control-url",
                 f"http://127.0.0.1:{silent.server_address[1]}"])
    procs.append(slow)
    line = slow.wait_for("listening on http://127.0.0.1:")
    if check(line is not None, "serve with a silent upstream starts", slow.stderr_head()):
        t0 = time.time()
        code, body = request(f"http://127.0.0.1:{port_of(line)}", "/v1/train/status")
        took = time.time() - t0
        check(code == 504 and error_code(body) == "train_control_timeout" and took < 9,
              "a silent upstream is 504 train_control_timeout within the timeout",
              f"{code} {body} after {took:.1f}s")
    slow.kill()
    silent.shutdown()


if __name__ == "__main__":
    main()
