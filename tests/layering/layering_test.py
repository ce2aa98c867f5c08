#!/usr/bin/env python3
"""The layering of DESIGN.md §1, enforced: every `#include` in src/ and apps/ against the edges
listed in docs/architecture.md's ```layering block.

The block holds three kinds of lines ('#' starts a comment):
  MODULE -> DEP, DEP, ...         the modules MODULE's files may include ("arle/DEP/..."); a
                                  module may always include itself. src/arle/MODULE's CMake DEPS
                                  (arle_app's links for `apps`) must list exactly these modules.
  private MODULE: PATH, ...       headers under arle/MODULE/ (a PATH ending in '/' is a folder)
                                  that only MODULE's own files may include.
  external PREFIX: MODULE, ...    third-party headers PREFIX/... that only these modules include.
src/ never includes apps/. Every violation is printed as FILE:LINE, and any makes the exit code 1.

--self-test runs the checker on small fake trees in a temporary directory and checks that each
kind of violation fails it and that a clean tree passes.
"""
import argparse
import os
import re
import sys
import tempfile

INCLUDE = re.compile(r'^\s*#\s*include\s*[<"]([^">]+)[">]')
SOURCE_EXT = (".h", ".hpp", ".cc", ".cpp", ".cu", ".cuh", ".inc")


class Rules:
    def __init__(self):
        self.allowed = {}   # module -> set of modules
        self.lines = {}     # module -> line number in the doc
        self.private = {}   # module -> [path prefix under arle/module/]
        self.external = {}  # include prefix -> set of modules


def parse_rules(doc_path):
    """Parses the ```layering block of `doc_path`; raises ValueError on a malformed one."""
    with open(doc_path, encoding="utf-8") as f:
        text = f.read().splitlines()
    try:
        start = next(i for i, l in enumerate(text) if l.strip() == "```layering")
    except StopIteration:
        raise ValueError(f"{doc_path}: no ```layering block")
    rules = Rules()
    for i in range(start + 1, len(text)):
        line = text[i].split("#", 1)[0].strip()
        if text[i].strip() == "```":
            return rules
        if not line:
            continue
        where = f"{doc_path}:{i + 1}"
        m = re.fullmatch(r"([a-z_]+)\s*->\s*(.*)", line)
        if m:
            deps = {d.strip() for d in m.group(2).split(",") if d.strip()}
            if m.group(1) in rules.allowed:
                raise ValueError(f"{where}: {m.group(1)} listed twice")
            rules.allowed[m.group(1)] = deps
            rules.lines[m.group(1)] = i + 1
            continue
        m = re.fullmatch(r"(private|external)\s+([A-Za-z0-9_.]+)\s*:\s*(.*)", line)
        if m:
            items = [x.strip() for x in m.group(3).split(",") if x.strip()]
            if m.group(1) == "private":
                rules.private.setdefault(m.group(2), []).extend(items)
            else:
                rules.external.setdefault(m.group(2), set()).update(items)
            continue
        raise ValueError(f"{where}: cannot read '{text[i]}'")
    raise ValueError(f"{doc_path}: the ```layering block is not closed")


def source_files(root):
    """Yields (relative path, module) for every source file under src/arle/ and apps/."""
    for top in ("src/arle", "apps"):
        base = os.path.join(root, top)
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames.sort()
            for name in sorted(filenames):
                if not name.endswith(SOURCE_EXT):
                    continue
                rel = os.path.relpath(os.path.join(dirpath, name), root)
                parts = rel.split(os.sep)
                module = "apps" if parts[0] == "apps" else (parts[2] if len(parts) > 3 else None)
                yield rel, module


def check_includes(root, rules):
    """Returns [(file, line, include, message)] for every include the rules do not allow."""
    out = []
    for rel, module in source_files(root):
        with open(os.path.join(root, rel), encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
        for n, text in enumerate(lines, 1):
            m = INCLUDE.match(text)
            if not m:
                continue
            inc = m.group(1)
            parts = inc.split("/")
            bad = None
            if module is None:
                bad = "a file directly in src/arle/ belongs to no module"
            elif module not in rules.allowed:
                bad = f"module '{module}' has no line in the layering block"
            elif parts[0] == "apps" and module != "apps":
                bad = "src/ never includes apps/"
            elif parts[0] == "arle" and len(parts) > 2:
                dep = parts[1]
                inner = "/".join(parts[2:])
                if dep not in rules.allowed:
                    bad = f"'{dep}' is not a module of the layering block"
                elif dep != module and any(
                        inner.startswith(p) if p.endswith("/") else inner == p
                        for p in rules.private.get(dep, [])):
                    bad = f"private to {dep}/"
                elif dep != module and dep not in rules.allowed[module]:
                    bad = f"{module} -> {dep} is not an allowed edge"
            elif parts[0] in rules.external and len(parts) > 1 and \
                    module not in rules.external[parts[0]]:
                bad = f"only {', '.join(sorted(rules.external[parts[0]]))} may include {parts[0]}/"
            if bad:
                out.append((rel, n, inc, bad))
    return out


def cmake_deps(root, module):
    """The arle_* modules a module's build target links (None when it has no build file)."""
    if module == "apps":
        path = os.path.join(root, "apps/arle/CMakeLists.txt")
        pattern = r"target_link_libraries\(\s*arle_app\b([^)]*)\)"
    else:
        path = os.path.join(root, "src/arle", module, "CMakeLists.txt")
        pattern = r"arle_library\(\s*arle_" + module + r"\b.*?\bDEPS\b(.*?)(?:\bPRIVATE_DEPS\b|\))"
    if not os.path.exists(path):
        return None, path
    with open(path, encoding="utf-8") as f:
        text = f.read()
    m = re.search(pattern, text, re.S)
    if not m:
        return set(), path
    return {t[len("arle_"):] for t in m.group(1).split() if re.fullmatch(r"arle_[a-z]+", t)}, path


def check_cmake(root, rules, doc):
    out = []
    # Other arle_* targets (arle_unistring, an interface to a system library) are not modules.
    src = os.path.join(root, "src/arle")
    folders = {d for d in os.listdir(src) if os.path.isdir(os.path.join(src, d))}
    modules = set(rules.allowed) | folders
    for module in sorted(rules.allowed):
        deps, path = cmake_deps(root, module)
        if deps is None:
            continue
        deps &= modules
        for d in sorted(deps - rules.allowed[module]):
            out.append((os.path.relpath(path, root), 0, f"arle_{d}",
                        f"links arle_{d}, which {doc}:{rules.lines[module]} does not allow"))
        for d in sorted(rules.allowed[module] - deps - {module}):
            out.append((os.path.relpath(path, root), 0, f"arle_{d}",
                        f"does not link arle_{d}, which {doc}:{rules.lines[module]} lists "
                        f"(the block and the build must agree)"))
    return out


def run(root, out=sys.stdout):
    """Checks the tree at `root`; prints the findings; returns the exit code."""
    doc = "docs/architecture.md"
    try:
        rules = parse_rules(os.path.join(root, doc))
    except ValueError as e:
        print(f"error: {e}", file=out)
        return 1
    findings = check_includes(root, rules) + check_cmake(root, rules, doc)
    for rel, line, inc, why in findings:
        where = f"{rel}:{line}" if line else rel
        what = f'#include "{inc}": {why}' if line else why
        print(f"{where}: error: {what}", file=out)
    n_files = sum(1 for _ in source_files(root))
    print(f"{n_files} files, {len(rules.allowed)} modules: {len(findings)} violations", file=out)
    return 1 if findings else 0


# --- self-test -------------------------------------------------------------------------------

FAKE_DOC = """# arch
```layering
core ->          # comment
io -> core
kernels -> core
models -> kernels, io, core
apps -> models, core
private kernels: ref/, kernel_args.h
external hwy: kernels
```
"""

FAKE_TREE = {
    "src/arle/core/CMakeLists.txt": "arle_library(arle_core SOURCES a.cc DEPS fmt::fmt)\n",
    "src/arle/core/a.h": "#pragma once\n#include <vector>\n",
    "src/arle/io/CMakeLists.txt": "arle_library(arle_io SOURCES g.cc DEPS arle_core\n"
                                  "  PRIVATE_DEPS ZLIB::ZLIB)\n",
    "src/arle/io/g.cc": '#include "arle/io/g.h"\n#include "arle/core/a.h"\n',
    "src/arle/kernels/CMakeLists.txt": "arle_library(arle_kernels SOURCES m.cc DEPS arle_core)\n",
    "src/arle/kernels/m.cc": '#include "arle/kernels/ref/r.h"\n#include "hwy/highway.h"\n'
                             '#include "arle/kernels/kernel_args.h"\n',
    "src/arle/models/CMakeLists.txt":
        "arle_library(arle_models SOURCES x.cc DEPS arle_core arle_io arle_kernels)\n",
    "src/arle/models/x.cc": '#include "arle/kernels/m.h"\n#include "arle/io/g.h"\n',
    "apps/arle/CMakeLists.txt": "target_link_libraries(arle_app PUBLIC arle_models arle_core\n"
                                "  CLI11::CLI11)\n",
    "apps/arle/main.cc": '#include "apps/arle/x.h"\n#include "arle/models/x.h"\n',
}


# (what, files added or replaced in FAKE_TREE, expected exit code, text the output must contain)
SELF_TEST_CASES = [
    ("clean tree passes", {}, 0, "0 violations"),
    ("forbidden edge core -> io fails with file:line",
     {"src/arle/core/b.cc": '// x\n#include "arle/io/g.h"\n'}, 1,
     'src/arle/core/b.cc:2: error: #include "arle/io/g.h": core -> io is not an allowed edge'),
    ("upward edge io -> models fails", {"src/arle/io/h.h": "#include <arle/models/x.h>\n"}, 1,
     'src/arle/io/h.h:1: error: #include "arle/models/x.h": io -> models'),
    ("private kernel folder outside kernels fails",
     {"src/arle/models/b.cc": '#include "arle/kernels/ref/r.h"\n'}, 1,
     'src/arle/models/b.cc:1: error: #include "arle/kernels/ref/r.h": private to kernels/'),
    ("private kernel header outside kernels fails",
     {"src/arle/models/y.cc": '  #  include "arle/kernels/kernel_args.h"\n'}, 1,
     'y.cc:1: error: #include "arle/kernels/kernel_args.h": private to kernels/'),
    ("hwy outside kernels fails", {"apps/arle/d.cc": '#include "hwy/targets.h"\n'}, 1,
     'apps/arle/d.cc:1: error: #include "hwy/targets.h": only kernels may include hwy/'),
    ("src including apps fails", {"src/arle/models/z.cc": '#include "apps/arle/x.h"\n'}, 1,
     'src/arle/models/z.cc:1: error: #include "apps/arle/x.h": src/ never includes apps/'),
    ("unknown module fails", {"src/arle/io/u.cc": '#include "arle/train/t.h"\n'}, 1,
     "'train' is not a module"),
    ("a module without a line fails", {"src/arle/kv/k.cc": '#include "arle/core/a.h"\n'}, 1,
     "module 'kv' has no line"),
    ("a link the block does not allow fails",
     {"src/arle/io/CMakeLists.txt": "arle_library(arle_io SOURCES g.cc DEPS arle_core "
                                    "arle_kernels)\n"}, 1,
     "src/arle/io/CMakeLists.txt: error: links arle_kernels"),
    ("an arle_ target that is no module is not an edge",
     {"src/arle/io/CMakeLists.txt": "arle_library(arle_io SOURCES g.cc DEPS arle_core "
                                    "arle_unistring)\n"}, 0, "0 violations"),
    ("a link to a module folder the block lacks fails",
     {"src/arle/io/CMakeLists.txt": "arle_library(arle_io SOURCES g.cc DEPS arle_core arle_kv)\n",
      "src/arle/kv/README.md": "x\n"}, 1, "links arle_kv"),
    ("an allowed edge the build does not link fails",
     {"apps/arle/CMakeLists.txt": "target_link_libraries(arle_app PUBLIC arle_core)\n"}, 1,
     "does not link arle_models"),
    ("every violation is listed",
     {"apps/arle/b.cc": '#include "hwy/a.h"\n#include "arle/io/g.h"\n'}, 1, "2 violations"),
    ("a malformed block fails", {"docs/architecture.md": "```layering\ncore => io\n```\n"}, 1,
     "cannot read"),
]


def self_test():
    failures = []

    def expect(name, edits, code, needle):
        with tempfile.TemporaryDirectory() as root:
            files = dict(FAKE_TREE, **{"docs/architecture.md": FAKE_DOC})
            files.update(edits)
            for rel, text in files.items():
                os.makedirs(os.path.dirname(os.path.join(root, rel)), exist_ok=True)
                with open(os.path.join(root, rel), "w") as f:
                    f.write(text)

            class Sink:
                text = ""

                def write(self, s):
                    Sink.text += s

            got = run(root, out=Sink())
            ok = got == code and needle in Sink.text
            print(("ok   " if ok else "FAIL ") + name)
            if not ok:
                failures.append(name)
                print(f"  exit {got}, expected {code}; output:\n{Sink.text}")

    for case in SELF_TEST_CASES:
        expect(*case)
    print(f"{len(failures)} failed")
    return 1 if failures else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--source-dir", required=True)
    ap.add_argument("--self-test", action="store_true")
    args = ap.parse_args()
    if args.self_test:
        sys.exit(self_test())
    sys.exit(run(args.source_dir))


if __name__ == "__main__":
    main()
