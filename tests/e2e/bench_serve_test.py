#!/usr/bin/env python3
"""`arle bench serve` against a fake OpenAI-compatible SSE server with known delays and usage.

The fake server streams a role-only chunk at once (no content: must not count as the first token),
then one content chunk per max_tokens after FIRST_DELAY and GAP seconds, a usage chunk and
[DONE]; so TTFT >= FIRST_DELAY, ITL ~ GAP, and the token counts are exact. Error cases must exit 2
with the server's message, and the sessions mode must grow each conversation turn by turn.
"""
import argparse
import http.server
import json
import socket
import subprocess
import sys
import threading
import time

FAILURES = []
FIRST_DELAY = 0.15  # seconds from request to the first content chunk
GAP = 0.02          # seconds between content chunks
MODEL = "fake-model"
GEN_ID_BASE = 5000  # with return_token_ids, generated token i has id GEN_ID_BASE + i


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        FAILURES.append(what)


class FakeState:
    def __init__(self):
        self.lock = threading.Lock()
        self.reset("ok")

    def reset(self, mode, metrics=None):
        with self.lock:
            self.mode = mode          # ok | error500 | malformed | nostream | midstream_error |
                                      # stall | sneaky_close | no_done | no_token_ids
            self.metrics = metrics    # None (404) | "arle" | "vllm"
            self.requests = []        # (path, headers dict, body json)
            self.client_ports = set()
            self.queries = 1000.0     # counters start non-zero: only the delta may count
            self.hits = 10.0


STATE = FakeState()


def prompt_words(body):
    if "messages" in body:
        return sum(len(m["content"].split()) for m in body["messages"])
    p = body["prompt"]
    return len(p) if isinstance(p, list) else len(p.split())


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, chunked streams

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *a):
        pass

    def send_json(self, code, obj, content_type="application/json"):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/v1/models":
            self.send_json(200, {"object": "list", "data": [{"id": MODEL, "object": "model"}]})
        elif self.path == "/metrics" and STATE.metrics:
            with STATE.lock:
                q, h = STATE.queries, STATE.hits
            if STATE.metrics == "arle":
                text = ("# HELP arle_prefix_cache_queries_total Prompt tokens looked up.\n"
                        "# TYPE arle_prefix_cache_queries_total counter\n"
                        f"arle_prefix_cache_queries_total {q}\n"
                        f"arle_prefix_cache_hits_total {h}\n")
            else:  # vLLM's names, with labels and a second, constant label set
                text = (f'vllm:prefix_cache_queries_total{{model_name="{MODEL}",engine="0"}} {q}\n'
                        f'vllm:prefix_cache_hits_total{{model_name="{MODEL}",engine="0"}} {h}\n'
                        'vllm:prefix_cache_queries_total{model_name="x",engine="1"} 5.0\n'
                        'vllm:prefix_cache_hits_total{model_name="x",engine="1"} 2.0\n')
            data = text.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        else:
            self.send_json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

    def chunk(self, text):
        data = text.encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def event(self, obj):
        self.chunk("data: " + (obj if isinstance(obj, str) else json.dumps(obj)) + "\n\n")

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with STATE.lock:
            STATE.requests.append((self.path, dict(self.headers), body))
            STATE.client_ports.add(self.client_address[1])
            mode = STATE.mode
        chat = self.path == "/v1/chat/completions"
        if mode == "error500":
            self.send_json(500, {"error": {"message": "model exploded (fake)", "type": "server_error",
                                           "code": 500}})
            return
        if mode == "nostream":
            self.send_json(200, {"choices": [{"text": "hi"}]})
            return
        if mode == "stall":
            time.sleep(3)
            self.close_connection = True
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if mode == "malformed":
            self.chunk("data: this is not json\n\n")
            self.chunk("")
            return
        n = body["max_tokens"]
        pieces = [f"w{i} " for i in range(n)]
        first = {"delta": {"role": "assistant", "content": ""}} if chat else {"text": ""}
        self.event({"id": "x", "choices": [dict(first, index=0, finish_reason=None)]})
        time.sleep(FIRST_DELAY)
        for i, p in enumerate(pieces):
            if i:
                time.sleep(GAP)
            if mode == "midstream_error" and i == 1:
                self.event({"error": {"message": "KV cache gone (fake)", "type": "server_error"}})
                self.chunk("")
                return
            c = {"delta": {"content": p}} if chat else {"text": p}
            if body.get("return_token_ids") and mode != "no_token_ids":
                c["token_ids"] = [GEN_ID_BASE + i]  # vLLM: the ids of this chunk
            self.event({"id": "x", "choices": [dict(c, index=0, finish_reason=None)]})
        if mode == "no_done":
            self.chunk("")  # ends the body without finish_reason or [DONE]
            return
        words = prompt_words(body)
        with STATE.lock:  # counted before the answer ends, so the client's next /metrics sees it
            STATE.queries += words
            # What a prefix cache could reuse: everything but the newest user message.
            if chat:
                STATE.hits += words - len(body["messages"][-1]["content"].split())
        last = {"delta": {}} if chat else {"text": ""}
        self.event({"id": "x", "choices": [dict(last, index=0, finish_reason="length")]})
        self.event({"id": "x", "choices": [],
                    "usage": {"prompt_tokens": words, "completion_tokens": n,
                              "total_tokens": words + n}})
        self.event("[DONE]")
        self.chunk("")
        if mode == "sneaky_close":
            self.close_connection = True  # closes without "Connection: close": a stale keep-alive


class FakeServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A client that stops reading (the bench cancelling its other workers after an error)
        # is expected here; anything else is a bug in the fake server.
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


def run_bench(args, *cmd, timeout=120):
    return subprocess.run([args.arle, "bench", "serve", *cmd], capture_output=True, text=True,
                          timeout=timeout)


def expect_error(args, what, cmd, must_mention):
    try:
        out = run_bench(args, *cmd, timeout=60)
    except subprocess.TimeoutExpired:
        check(False, f"{what}: hung")
        return
    ok = out.returncode == 2 and all(m in out.stderr for m in must_mention)
    check(ok, f"{what}: exit {out.returncode}: {out.stderr.strip()[:300]}")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arle", required=True)
    ap.add_argument("--source-dir", required=True)
    args = ap.parse_args()

    server = FakeServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"

    # ---- completions mode: counts, timings, request bodies, keep-alive ----
    R, C, P, G = 6, 3, 16, 5
    STATE.reset("ok", metrics="vllm")
    out = run_bench(args, "--url", url + "/v1/", "--concurrency", str(C), "--prompt-len", str(P),
                    "--gen-len", str(G), "--requests", str(R), "--json", "--seed", "1")
    check(out.returncode == 0, f"completions run exits 0 ({out.stderr.strip()[:300]})")
    if out.returncode != 0:
        sys.exit(1)
    rep = json.loads(out.stdout)
    reqs = [r for r in STATE.requests if r[0] == "/v1/completions"]
    check(len(reqs) == R and rep["completed"] == R, f"{R} requests sent and completed")
    check(rep["model"] == MODEL and all(b["model"] == MODEL for _, _, b in reqs),
          "model defaults to the first id of GET /v1/models")
    check(all(b["max_tokens"] == G and b["stream"] is True and b["ignore_eos"] is True and
              b["temperature"] == 0 and b["stream_options"] == {"include_usage": True}
              for _, _, b in reqs), "bodies: max_tokens, stream, include_usage, ignore_eos, temp 0")
    check(all(isinstance(b["prompt"], str) and len(b["prompt"].split()) == P for _, _, b in reqs),
          f"text prompts of {P} words")
    check(len({b["prompt"] for _, _, b in reqs}) == R, "every request has its own prompt")
    check(rep["completion_tokens"] == R * G and rep["prompt_tokens"] == R * P and
          rep["usage_reported"], "token totals come from usage")
    check(rep["ttft_ms"]["n"] == R and rep["ttft_ms"]["p50"] >= FIRST_DELAY * 1e3 and
          rep["ttft_ms"]["mean"] >= FIRST_DELAY * 1e3,
          f"TTFT >= {FIRST_DELAY * 1e3:.0f} ms: the content-less first chunk is not a token")
    check(rep["ttft_ms"]["p99"] < FIRST_DELAY * 1e3 + 500, "TTFT is not inflated")
    check(rep["itl_ms"]["n"] == R * (G - 1), f"ITL has {R * (G - 1)} gaps (content chunks only)")
    check(GAP * 1e3 * 0.5 <= rep["itl_ms"]["p50"] < FIRST_DELAY * 1e3,
          f"ITL p50 {rep['itl_ms']['p50']:.1f} ms ~ {GAP * 1e3:.0f} ms")
    check(rep["tpot_ms"]["n"] == R and GAP * 1e3 * 0.5 <= rep["tpot_ms"]["mean"] < FIRST_DELAY * 1e3,
          f"TPOT mean {rep['tpot_ms']['mean']:.1f} ms ~ {GAP * 1e3:.0f} ms")
    check(rep["e2el_ms"]["p50"] >= (FIRST_DELAY + (G - 1) * GAP) * 1e3, "E2E >= first + gaps")
    wall = rep["duration_s"]
    check(abs(rep["request_throughput"] - R / wall) < 1e-6 * R / wall and
          abs(rep["output_throughput"] - R * G / wall) < 1e-6 * R * G / wall and
          abs(rep["total_token_throughput"] - R * (P + G) / wall) < 1e-6 * R * (P + G) / wall,
          "throughputs = counts / wall time")
    check(wall >= (R // C) * FIRST_DELAY, f"concurrency {C}: wall {wall:.2f}s covers {R // C} rounds")
    check(len(STATE.client_ports) <= C, f"keep-alive: {len(STATE.client_ports)} connections for "
          f"{R} requests over {C} workers")
    pc = rep["prefix_cache"]
    check(pc is not None and pc["source"] == "vllm" and pc["queries"] == R * P and pc["hits"] == 0
          and pc["hit_ratio"] == 0, "prefix cache delta from vllm: counters (labels summed)")

    # Seeds, token prompts, --no-ignore-eos, --model, --api-key, human output.
    def prompts_for(*extra):
        STATE.reset("ok")
        o = run_bench(args, "--url", url, "--requests", "2", "--gen-len", "2", "--prompt-len", "8",
                      "--json", *extra)
        check(o.returncode == 0, f"run {' '.join(extra)} exits 0 ({o.stderr.strip()[:200]})")
        return [r[2] for r in STATE.requests], (json.loads(o.stdout) if o.returncode == 0 else {})
    a, _ = prompts_for("--seed", "5")
    b, _ = prompts_for("--seed", "5")
    c, _ = prompts_for("--seed", "6")
    check([x["prompt"] for x in a] == [x["prompt"] for x in b], "same --seed, same prompts")
    check([x["prompt"] for x in a] != [x["prompt"] for x in c], "other --seed, other prompts")
    t, trep = prompts_for("--token-prompts", "--token-vocab", "100")
    check(all(isinstance(x["prompt"], list) and len(x["prompt"]) == 8 and
              all(isinstance(i, int) and 1 <= i < 100 for i in x["prompt"]) for x in t),
          "--token-prompts sends 8 ids in [1, 100)")
    check(trep.get("prompt_tokens") == 16 and trep.get("token_prompts") is True,
          "token prompts counted from usage")
    n, _ = prompts_for("--no-ignore-eos", "--model", "other", "--api-key", "sekret",
                       "--temperature", "0.5")
    hdrs = STATE.requests[0][1]
    check(all("ignore_eos" not in x and x["model"] == "other" and x["temperature"] == 0.5
              for x in n), "--no-ignore-eos, --model and --temperature reach the body")
    check(hdrs.get("Authorization") == "Bearer sekret", "--api-key is sent as a Bearer token")
    STATE.reset("ok")
    human = run_bench(args, "--url", url, "--requests", "2", "--gen-len", "3", "--prompt-len", "4")
    check(human.returncode == 0 and "TTFT" in human.stdout and "ITL" in human.stdout and
          "n/a" in human.stdout and "req/s" in human.stdout,
          "human table: TTFT/ITL rows, prefix hits n/a without /metrics")
    STATE.reset("sneaky_close")
    sneaky = run_bench(args, "--url", url, "--requests", "4", "--gen-len", "2", "--json")
    check(sneaky.returncode == 0 and json.loads(sneaky.stdout)["completed"] == 4,
          "a keep-alive connection closed by the server is reopened")

    # ---- sessions mode: context grows each turn; TTFT per turn; prefix-hit ratio ----
    S, T, P, G = 3, 3, 8, 4
    STATE.reset("ok", metrics="arle")
    out = run_bench(args, "--url", url, "--sessions", str(S), "--turns", str(T), "--prompt-len",
                    str(P), "--gen-len", str(G), "--json")
    check(out.returncode == 0, f"sessions run exits 0 ({out.stderr.strip()[:300]})")
    if out.returncode == 0:
        rep = json.loads(out.stdout)
        chats = [r[2] for r in STATE.requests if r[0] == "/v1/chat/completions"]
        check(len(chats) == S * T and rep["completed"] == S * T, f"{S}x{T} chat requests")
        by_session = {}
        for bdy in chats:
            by_session.setdefault(bdy["messages"][0]["content"], []).append(bdy["messages"])
        check(len(by_session) == S, f"{S} distinct sessions")
        answer = "".join(f"w{i} " for i in range(G))
        grows = True
        for convs in by_session.values():
            convs.sort(key=len)
            grows &= [len(m) for m in convs] == [1 + 2 * t for t in range(T)]
            for t in range(1, len(convs)):
                prev, cur = convs[t - 1], convs[t]
                grows &= cur[: len(prev)] == prev
                grows &= cur[len(prev)] == {"role": "assistant", "content": answer}
                grows &= cur[-1]["role"] == "user" and len(cur[-1]["content"].split()) == P
        check(grows, "each turn = previous messages + the streamed answer + a new user message")
        check(all(b["stream"] and b["max_tokens"] == G and b["ignore_eos"] for b in chats),
              "chat bodies stream with max_tokens and ignore_eos")
        turns = rep.get("per_turn", [])
        check([x["turn"] for x in turns] == list(range(1, T + 1)) and
              all(x["requests"] == S for x in turns), "per-turn rows, one per turn")
        check(all(x["ttft_ms_p50"] >= FIRST_DELAY * 1e3 for x in turns),
              "per-turn TTFT p50 >= the first delay (role-only chunk ignored)")
        means = [x["prompt_tokens_mean"] for x in turns]
        check(means == [P + t * (P + G) for t in range(T)], f"prompt tokens grow per turn: {means}")
        q = sum(prompt_words(b) for b in chats)
        h = sum(prompt_words(b) - P for b in chats)
        pc = rep["prefix_cache"]
        check(pc is not None and pc["source"] == "arle" and pc["queries"] == q and
              pc["hits"] == h and abs(pc["hit_ratio"] - h / q) < 1e-9,
              f"prefix-hit ratio = hits/queries delta from arle_ counters ({h}/{q})")
        STATE.reset("ok")
        human = run_bench(args, "--url", url, "--sessions", "2", "--turns", "2", "--gen-len", "2")
        check(human.returncode == 0 and "TTFT p50" in human.stdout and "n/a" in human.stdout,
              "sessions human table has per-turn TTFT and n/a prefix ratio")

    # ---- token sessions: completions on exact ids, each turn = history + returned ids + P new ----
    S, T, P, G = 2, 3, 8, 4
    STATE.reset("ok")
    out = run_bench(args, "--url", url, "--sessions", str(S), "--turns", str(T), "--prompt-len",
                    str(P), "--gen-len", str(G), "--token-prompts", "--token-vocab", "100", "--json")
    check(out.returncode == 0, f"token sessions run exits 0 ({out.stderr.strip()[:300]})")
    if out.returncode == 0:
        rep = json.loads(out.stdout)
        comps = [r[2] for r in STATE.requests if r[0] == "/v1/completions"]
        check(len(comps) == S * T and rep["completed"] == S * T, f"{S}x{T} completion requests")
        check(all(b["return_token_ids"] is True and isinstance(b["prompt"], list) for b in comps),
              "token sessions send token-id prompts with return_token_ids")
        gen = [GEN_ID_BASE + i for i in range(G)]
        by_first = {}
        for b in comps:
            by_first.setdefault(tuple(b["prompt"][:P]), []).append(b["prompt"])
        grows = len(by_first) == S
        for prompts in by_first.values():
            prompts.sort(key=len)
            grows &= [len(x) for x in prompts] == [P + t * (G + P) for t in range(T)]
            for t in range(1, len(prompts)):
                prev, cur = prompts[t - 1], prompts[t]
                grows &= cur[: len(prev)] == prev and cur[len(prev): len(prev) + G] == gen
                grows &= all(1 <= i < 100 for i in cur[len(prev) + G:])
        check(grows, "each turn's prompt = the previous prompt + the returned ids + P new ids")
        turns = rep.get("per_turn", [])
        check([x["prompt_tokens_mean"] for x in turns] == [P + t * (P + G) for t in range(T)],
              "per-turn prompt tokens grow by the answer and the new ids")
        human = run_bench(args, "--url", url, "--sessions", "1", "--turns", "2", "--gen-len", "2",
                          "--token-prompts")
        check(human.returncode == 0 and "completions, token ids" in human.stdout,
              "token sessions human table names the mode")
    STATE.reset("no_token_ids")
    expect_error(args, "token sessions against a server without token_ids",
                 ["--url", url, "--sessions", "1", "--turns", "2", "--token-prompts"],
                 ["no token_ids", "without --token-prompts"])

    # ---- errors: exit 2 with a clear message, never a hang ----
    STATE.reset("error500")
    expect_error(args, "500 answer", ["--url", url, "--requests", "3", "-c", "2"],
                 ["500", "model exploded (fake)"])
    STATE.reset("error500")
    expect_error(args, "500 answer in sessions mode", ["--url", url, "--sessions", "2"],
                 ["500", "model exploded (fake)"])
    STATE.reset("malformed")
    expect_error(args, "malformed SSE", ["--url", url, "--requests", "1"],
                 ["malformed SSE", "this is not json"])
    STATE.reset("nostream")
    expect_error(args, "non-streamed answer", ["--url", url, "--requests", "1"],
                 ["text/event-stream"])
    STATE.reset("midstream_error")
    expect_error(args, "error event mid-stream", ["--url", url, "--requests", "1"],
                 ["KV cache gone (fake)"])
    STATE.reset("no_done")
    expect_error(args, "stream cut before [DONE]", ["--url", url, "--requests", "1"], ["[DONE]"])
    STATE.reset("stall")
    t0 = time.time()
    expect_error(args, "stalled server times out", ["--url", url, "--requests", "1", "--timeout",
                                                     "0.5"], ["no answer within"])
    check(time.time() - t0 < 2.5, "--timeout bounds the wait")
    dead = f"http://127.0.0.1:{free_port()}"
    expect_error(args, "connection refused", ["--url", dead], ["cannot connect", "refused"])
    expect_error(args, "connection refused with --model",
                 ["--url", dead, "--model", "m", "--requests", "1"], ["cannot connect", "refused"])
    expect_error(args, "URL without scheme", ["--url", "127.0.0.1:8000"], ["bad --url"])
    expect_error(args, "https URL", ["--url", "https://127.0.0.1:8000"], ["https is not supported"])
    expect_error(args, "bad port", ["--url", "http://127.0.0.1:99999"], ["bad --url", "port"])
    expect_error(args, "unresolvable host", ["--url", "http://no-such-host.invalid:80"],
                 ["cannot resolve"])
    expect_error(args, "--sessions with --requests", ["--url", url, "--sessions", "2",
                                                      "--requests", "3"], ["excludes"])
    expect_error(args, "zero concurrency", ["--url", url, "--concurrency", "0"], ["concurrency"])

    # The local `arle bench` is unchanged next to its new subcommand.
    local = subprocess.run([args.arle, "bench", "-p", "8", "-n", "4", "-r", "1", "-o", "json"],
                           capture_output=True, text=True, timeout=120)
    rows = json.loads(local.stdout) if local.returncode == 0 else []
    check([r["test"] for r in rows] == ["pp8", "tg4"], "arle bench (local pp/tg) still works")
    tg = rows[1] if len(rows) == 2 else {}
    check(tg.get("read_gbps", 0) > 0 and tg.get("roofline_ts", 0) > 0 and
          abs(tg.get("roofline_pct", 0) - 100 * tg.get("avg_ts", 0) / max(tg.get("roofline_ts", 1), 1e-9))
          < 1e-6, "tg rows carry the read bandwidth, the roofline and the share reached")
    membw = subprocess.run([args.arle, "bench", "membw", "-t", "1,2", "--size-mb", "64", "-r", "1",
                            "-o", "json"], capture_output=True, text=True, timeout=120)
    mrows = json.loads(membw.stdout) if membw.returncode == 0 else []
    check([r["threads"] for r in mrows] == [1, 2] and all(r["read_gbps"] > 0.1 for r in mrows),
          f"arle bench membw reports GB/s per thread count ({membw.stderr.strip()[:200]})")
    bad = subprocess.run([args.arle, "bench", "membw", "-t", "x"], capture_output=True, text=True,
                         timeout=60)
    check(bad.returncode == 2 and "bad -t value" in bad.stderr, "membw: a bad -t is exit 2")

    server.shutdown()
    print(f"{len(FAILURES)} failed")
    sys.exit(1 if FAILURES else 0)


if __name__ == "__main__":
    main()
