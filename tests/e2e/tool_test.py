#!/usr/bin/env python3
"""`arle tool run` and the sandbox line of `arle --doctor`, end to end.

The tool call must behave exactly as the agent's: sandboxed when bubblewrap works here, refused
with a hint pointing at --unsafe-no-sandbox when it does not, and loud when that flag is given.
"""
import argparse
import json
import os
import subprocess
import sys

FAILURES = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        FAILURES.append(what)


def arle(args, *cmd):
    return subprocess.run([args.arle, *cmd], capture_output=True, text=True, timeout=120)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--arle", required=True)
    p.add_argument("--source-dir", required=True)
    args = p.parse_args()

    doctor = arle(args, "--doctor", "--json")
    check(doctor.returncode == 0, "--doctor --json exits 0")
    sandbox = json.loads(doctor.stdout)["sandbox"]
    check(isinstance(sandbox["available"], bool) and sandbox["detail"] != "",
          "--doctor reports the sandbox state: " + sandbox["detail"])
    text = arle(args, "--doctor")
    check("sandbox: " in text.stdout, "--doctor prints a sandbox line")

    if sandbox["available"]:
        out = arle(args, "tool", "run", "shell", "--code", "echo hi; echo oops >&2; exit 3",
                   "--json")
        check(out.returncode == 0, "a tool call that exits 3 is still a result (arle exits 0)")
        r = json.loads(out.stdout)
        check(r["exit_code"] == 3 and r["stdout"] == "hi\n" and r["stderr"] == "oops\n"
              and r["sandboxed"] and r["limit"] == "none", "shell result fields: " + out.stdout)
        out = arle(args, "tool", "run", "python", "--code", "print(6 * 7)")
        check(out.stdout.startswith("exit_code: 0\n<stdout>\n42\n</stdout>\n"),
              "python result text for the model: " + repr(out.stdout))
        out = arle(args, "tool", "run", "shell", "--code", "sleep 30", "--timeout", "1", "--json")
        r = json.loads(out.stdout)
        check(r["limit"] == "wall_time" and r["wall_seconds"] < 5, "--timeout 1 kills sleep 30")
        out = arle(args, "tool", "run", "shell", "--code", "cat /etc/shadow; ls /root /home", "--json")
        r = json.loads(out.stdout)
        check(r["exit_code"] != 0 and r["stdout"] == "", "no /etc/shadow, no home: " + r["stderr"])
    else:
        print("note: the sandbox is unavailable here (" + sandbox["detail"] + "); checking refusal")
        out = arle(args, "tool", "run", "shell", "--code", "echo hi")
        check(out.returncode == 2 and "--unsafe-no-sandbox" in out.stderr,
              "refused with a hint: " + out.stderr)

    out = arle(args, "tool", "run", "shell", "--code", "pwd", "--unsafe-no-sandbox", "--json")
    check(out.returncode == 0 and "WARNING" in out.stderr and "WITHOUT isolation" in out.stderr,
          "--unsafe-no-sandbox warns loudly")
    check(json.loads(out.stdout)["sandboxed"] is False, "--unsafe-no-sandbox result says so")

    # Without bwrap on PATH (as on a machine without the package): refused with the way out,
    # and --doctor says why.
    no_bwrap = dict(os.environ, PATH="/nonexistent")
    out = subprocess.run([args.arle, "tool", "run", "shell", "--code", "echo hi"],
                         capture_output=True, text=True, timeout=120, env=no_bwrap)
    check(out.returncode == 2 and "bubblewrap" in out.stderr and "--unsafe-no-sandbox" in out.stderr
          and out.stdout == "", "no bwrap: the tool call is refused with a hint: " + out.stderr)
    out = subprocess.run([args.arle, "--doctor"], capture_output=True, text=True, timeout=120,
                         env=no_bwrap)
    check("sandbox: UNAVAILABLE: bwrap (Debian package bubblewrap) is not installed" in out.stdout,
          "no bwrap: --doctor says the sandbox is unavailable and why")

    out = arle(args, "tool", "run", "ruby", "--code", "puts 1")
    check(out.returncode == 2, "an unknown tool exits 2")
    out = arle(args, "tool", "run", "shell")
    check(out.returncode == 2, "a missing --code exits 2")
    out = arle(args, "tool", "run", "shell", "--code", "true", "--workdir", "/nonexistent/dir")
    check(out.returncode == 2 and "does not exist" in out.stderr, "a missing --workdir exits 2")

    if FAILURES:
        sys.exit(f"{len(FAILURES)} check(s) failed")


if __name__ == "__main__":
    main()
