#!/usr/bin/env python3
"""The REPL in a real terminal: tmux runs `arle repl` (and `arle` alone) in a detached session,
send-keys types into it and capture-pane reads the screen.

Checks: the banner and prompt, slash commands (/help, /tools, /model, /stats, /save, /export,
/load, /reset, an unknown one), a message answered with the summary line, multi-line input, the
history file, Ctrl-C cancelling a long generation (the REPL survives), Ctrl-C twice at the prompt
exiting, Ctrl-D exiting, and `arle` with no arguments opening the REPL. Exit 77 (skipped) without
tmux.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

FAILURES = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        FAILURES.append(what)


class Pane:
    """One detached tmux session running a command; its pane stays after the command exits."""

    def __init__(self, name, command, env):
        self.name = name
        subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)
        env_args = []
        for k, v in env.items():
            env_args += ["-e", f"{k}={v}"]
        subprocess.run(["tmux", "new-session", "-d", "-s", name, "-x", "150", "-y", "50",
                        *env_args, command], check=True)
        subprocess.run(["tmux", "set-option", "-t", name, "remain-on-exit", "on"], check=True)

    def keys(self, *keys):
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True)

    def type_line(self, text):
        self.keys("-l", text)
        self.keys("Enter")

    def screen(self):
        out = subprocess.run(["tmux", "capture-pane", "-p", "-t", self.name, "-S", "-2000"],
                             capture_output=True, text=True)
        return out.stdout

    def dead(self):
        out = subprocess.run(["tmux", "display-message", "-p", "-t", self.name, "#{pane_dead}"],
                             capture_output=True, text=True)
        return out.stdout.strip() == "1"

    def wait_for(self, predicate, timeout=60):
        end = time.time() + timeout
        while time.time() < end:
            s = self.screen()
            if predicate(s):
                return True
            time.sleep(0.1)
        return False

    def wait_text(self, text, timeout=60, after=0):
        return self.wait_for(lambda s: s.count(text) > after, timeout)

    def wait_prompt(self, prompt=">", timeout=60):
        """capture-pane drops trailing spaces: the prompt "> " is a line that is just ">"."""
        return self.wait_for(lambda s: any(line == prompt for line in s.splitlines()), timeout)

    def close(self):
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--arle", required=True)
    p.add_argument("--source-dir", required=True)
    args = p.parse_args()
    if shutil.which("tmux") is None:
        print("skip: tmux is not installed (apt-get install tmux)")
        sys.exit(77)
    with tempfile.TemporaryDirectory() as tmp:
        model = os.path.join(tmp, "tiny-qwen3")
        subprocess.run([args.arle, "model", "init", "--arch", "qwen3", "--preset", "tiny",
                        "--out", model], check=True, capture_output=True)
        # A slower model with a long context, for a generation that Ctrl-C can interrupt.
        slow = os.path.join(tmp, "slow-qwen3")
        subprocess.run([args.arle, "model", "init", "--arch", "qwen3", "--preset", "tiny",
                        "--config", '{"hidden_size": 512, "intermediate_size": 1536, '
                        '"num_hidden_layers": 6, "max_position_embeddings": 32768}',
                        "--out", slow], check=True, capture_output=True)
        home = os.path.join(tmp, "home")
        os.mkdir(home)
        env = {"HOME": home, "LANG": "C.UTF-8", "TERM": "xterm-256color"}
        common = f"--max-tokens 6 --temperature 0 --unsafe-no-sandbox"
        name = f"arle-repl-{os.getpid()}"

        pane = Pane(name, f"{args.arle} repl --model {model} {common}", env)
        try:
            check(pane.wait_text("/help for commands"), "banner")
            check(pane.wait_prompt(), "prompt")
            pane.type_line("/help")
            check(pane.wait_text("/export FILE"), "/help lists the commands")
            pane.type_line("/tools")
            check(pane.wait_text("python   Run a Python 3 program"), "/tools lists the tools")
            check(pane.wait_text("sandbox: OFF"), "/tools shows the sandbox state")
            pane.type_line("/model")
            check(pane.wait_text("2 layers, hidden 64"), "/model describes the model")
            pane.type_line("hello there")
            check(pane.wait_text("model call(s)"), "a message gets an answer and its summary line")
            check(pane.wait_text("tok/s"), "the summary shows tokens/s")
            pane.keys("-l", "first line \\")
            pane.keys("Enter")
            check(pane.wait_prompt("..."), "a trailing backslash continues the message")
            pane.type_line("second line")
            check(pane.wait_text("model call(s)", after=1), "the two-line message is answered")
            pane.type_line("/stats")
            check(pane.wait_text("2 turn(s)"), "/stats counts the turns")
            check(pane.wait_for(lambda s: "from the prefix cache" in s and
                                " (0 from the prefix cache)" not in s),
                  "/stats: the second turn reused the first one's KV through the prefix cache")
            saved = os.path.join(tmp, "conv.json")
            pane.type_line(f"/save {saved}")
            check(pane.wait_text("4 messages written"), "/save")
            conv = json.load(open(saved))
            check(conv[0] == {"role": "user", "content": "hello there"} and
                  conv[2]["content"] == "first line \nsecond line", "/save writes the messages")
            md = os.path.join(tmp, "conv.md")
            pane.type_line(f"/export {md}")
            check(pane.wait_text("written to " + md), "/export")
            check("**User:** hello there" in open(md).read(), "/export writes Markdown")
            pane.type_line("/reset")
            check(pane.wait_text("(new conversation)"), "/reset")
            pane.type_line(f"/load {saved}")
            check(pane.wait_text("4 messages loaded"), "/load")
            pane.type_line("/nonsense")
            check(pane.wait_text("unknown command /nonsense"), "unknown commands are named")
            pane.keys("C-c")
            check(pane.wait_text("Ctrl-C again"), "Ctrl-C at the prompt asks for a second one")
            check(not pane.dead(), "one Ctrl-C at the prompt does not exit")
            pane.keys("C-c")
            check(pane.wait_for(lambda s: pane.dead(), 10), "a second Ctrl-C at the prompt exits")
            # libedit's format: a header line, then one entry per line with spaces as \040.
            history = open(os.path.join(home, ".arle-history")).read().replace("\\040", " ")
            check("hello there" in history and "/stats" in history, "history in ~/.arle-history")
        finally:
            pane.close()

        # Ctrl-C during a long generation cancels it; the REPL goes on; Ctrl-D exits.
        pane = Pane(name, f"{args.arle} repl --model {slow} --max-tokens 20000 --ignore-eos "
                    f"--temperature 0 --no-tools -t 1", env)
        try:
            check(pane.wait_prompt(), "slow model: prompt")
            pane.type_line("write forever")
            time.sleep(2)
            pane.keys("C-c")
            check(pane.wait_text("finish cancelled", timeout=30), "Ctrl-C cancels the generation")
            check(not pane.dead(), "the REPL survives a cancelled generation")
            pane.type_line("/stats")
            check(pane.wait_text("1 turn(s)"), "and takes commands afterwards")
            pane.keys("C-d")
            check(pane.wait_for(lambda s: pane.dead(), 10), "Ctrl-D exits")
        finally:
            pane.close()

        # `arle` with no arguments is the REPL on the built-in model.
        pane = Pane(name, f"{args.arle}", env)
        try:
            check(pane.wait_text("built-in stories260K"), "arle alone opens the REPL")
            pane.type_line("/quit")
            check(pane.wait_for(lambda s: pane.dead(), 10), "/quit exits")
        finally:
            pane.close()

    if FAILURES:
        sys.exit(f"{len(FAILURES)} check(s) failed")


if __name__ == "__main__":
    main()
