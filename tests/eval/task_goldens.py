#!/usr/bin/python3
"""Writes tests/data/eval/goldens/tasks.json (and tests/data/eval/csv/cases.csv), the oracle of
tests/eval/tasks_test.cc: the requests and prompts lm-evaluation-harness builds for the test
excerpts under tests/data/eval/, few-shot examples included.

The harness is not imported (it needs `datasets` and the hub); its formats are restated here from
lm-evaluation-harness commit 4e7e0d47f33bc71070c1d38394bafbb52b117163:
  - the yaml templates (doc_to_text / doc_to_target / doc_to_choice) rendered with Jinja2 set up
    as lm_eval/utils.py does (BaseLoader, StrictUndefined, keep_trailing_newline=True), and the
    harness's target conversions (a rendered target of digits is an index when there are choices;
    ast.literal_eval of a rendered choice list);
  - hellaswag/utils.py (preprocess, process_docs), winogrande/preprocess_winogrande.py,
    hendrycks_math/utils.py (process_docs: remove_boxed(last_boxed_only_string(solution)));
  - api/task.py fewshot_context + build_qa_turn (description, then per example
    q + target_delimiter + answer + fewshot_delimiter, then the doc's q) and construct_requests
    ((context, " " + choice), or for winogrande (context + choice, " " + target));
  - api/samplers.py: ContextSampler (random.Random(seed).sample(docs, n), or sample(docs, n + 1)
    without the docs equal to the doc when the few-shot split is the test split) and FirstNSampler
    (mmlu's first_n).
Where arle reads a format the harness cannot (llama.cpp's HellaSwag text, MMLU's original CSV,
records without a MATH solution), the mapping arle documents is applied here too.

Run with the system Python (needs python3-jinja2) from anywhere; never edit the output by hand."""

import ast
import csv
import gzip
import io
import json
import os
import random
import re

import jinja2

HARNESS_COMMIT = "4e7e0d47f33bc71070c1d38394bafbb52b117163"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, "tests", "data", "eval")

ENV = jinja2.Environment(loader=jinja2.BaseLoader, undefined=jinja2.StrictUndefined,
                         keep_trailing_newline=True)


def render(template, doc):
    return ENV.from_string(template).render(**doc)


def resolve_target(template, doc, has_choices):
    """ConfigurableTask.doc_to_target for a template or a feature name."""
    if template in doc:
        return doc[template]
    s = render(template, doc)
    if s.isdigit() and has_choices:
        return ast.literal_eval(s)
    return s


# ---- readers (independent of arle's) ----

def read_jsonl(rel):
    path = os.path.join(DATA, rel)
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        lines = f.read().split("\n")
    return [(i + 1, json.loads(line)) for i, line in enumerate(lines) if line.strip(" \t\r")]


def read_hellaswag_text(rel):
    with open(os.path.join(DATA, rel), encoding="utf-8") as f:
        lines = f.read().split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    out = []
    for t in range(0, len(lines), 6):
        out.append((t + 1, {"context": lines[t], "label": int(lines[t + 1]),
                            "endings": lines[t + 2:t + 6]}))
    return out


def read_mmlu_csv(rel):
    """The original header-less layout; each row numbered by the line it starts on."""
    with open(os.path.join(DATA, rel), newline="", encoding="utf-8") as f:
        reader = csv.reader(io.StringIO(f.read()))
        out, start = [], 1
        for row in reader:
            out.append((start, dict(zip(["question", "A", "B", "C", "D", "answer"], row))))
            start = reader.line_num + 1
    return out


def read_records(rel):
    if rel.endswith(".txt"):
        return read_hellaswag_text(rel)
    if rel.endswith(".csv"):
        return read_mmlu_csv(rel)
    return read_jsonl(rel)


# ---- the harness's task code, restated ----

def hellaswag_preprocess(text):
    text = text.strip()
    text = text.replace(" [title]", ". ")
    text = re.sub("\\[.*?\\]", "", text)
    text = text.replace("  ", " ")
    return text


def last_boxed_only_string(string):
    idx = string.rfind("\\boxed")
    if "\\boxed " in string:
        return "\\boxed " + string.split("\\boxed ")[-1].split("$")[0]
    if idx < 0:
        idx = string.rfind("\\fbox")
        if idx < 0:
            return None
    i = idx
    right_brace_idx = None
    num_left_braces_open = 0
    while i < len(string):
        if string[i] == "{":
            num_left_braces_open += 1
        if string[i] == "}":
            num_left_braces_open -= 1
            if num_left_braces_open == 0:
                right_brace_idx = i
                break
        i += 1
    return None if right_brace_idx is None else string[idx:right_brace_idx + 1]


def remove_boxed(s):
    if "\\boxed " in s:
        left = "\\boxed "
        assert s[:len(left)] == left
        return s[len(left):]
    left = "\\boxed{"
    assert s[:len(left)] == left
    assert s[-1] == "}"
    return s[len(left):-1]


class Doc:
    """A processed doc: q (doc_to_text), c (doc_to_choice or None), a (doc_to_target)."""

    def __init__(self, raw, q, c, a, **extra):
        self.raw, self.q, self.c, self.a = raw, q, c, a
        self.description = extra.get("description", "")
        self.subject = extra.get("subject")
        self.multiple_input = extra.get("multiple_input", False)
        self.extra = extra


ARC_TEXT = "Question: {{question}}\nAnswer:"
ARC_TARGET = "{{choices.label.index(answerKey)}}"
ARC_CHOICE = "{{choices.text}}"
MMLU_TEXT = ("{{question.strip()}}\nA. {{choices[0]}}\nB. {{choices[1]}}\nC. {{choices[2]}}\n"
             "D. {{choices[3]}}\nAnswer:")
MMLU_CHOICES = ["A", "B", "C", "D"]
GSM8K_TEXT, GSM8K_TARGET = "Question: {{question}}\nAnswer:", "{{answer}}"
GSM8K_UNTIL = ["Question:", "</s>", "<|im_end|>"]
HUMANEVAL_TEXT, HUMANEVAL_TARGET = "{{prompt}}", "{{test}}\ncheck({{entry_point}})"
HUMANEVAL_UNTIL = ["\nclass", "\ndef", "\n#", "\nif", "\nprint"]
MATH_TEXT, MATH_TARGET, MATH_UNTIL = "Problem: {{problem}}\nAnswer:", "{{answer}}", ["Problem:"]


def process(task, raw, rel):
    if task == "hellaswag":
        if "context" in raw:  # llama.cpp's text: "activity_label: ctx" already joined
            doc = dict(raw, query=hellaswag_preprocess(raw["context"]),
                       choices=[hellaswag_preprocess(e) for e in raw["endings"]])
        else:
            ctx = raw["ctx_a"] + " " + raw["ctx_b"].capitalize()
            doc = dict(raw, query=hellaswag_preprocess(raw["activity_label"] + ": " + ctx),
                       choices=[hellaswag_preprocess(e) for e in raw["endings"]],
                       gold=int(raw["label"]))
        return Doc(doc, render("{{query}}", doc), doc["choices"],
                   resolve_target("{{label}}", doc, True))
    if task in ("arc_easy", "arc_challenge"):
        return Doc(raw, render(ARC_TEXT, raw), ast.literal_eval(render(ARC_CHOICE, raw)),
                   resolve_target(ARC_TARGET, raw, True))
    if task == "mmlu":
        if rel.endswith(".csv"):  # the original layout: subject from the file name
            subject = re.sub("_(test|dev|val)$", "", os.path.basename(rel)[:-4])
            raw = {"question": raw["question"], "subject": subject,
                   "choices": [raw[x] for x in "ABCD"], "answer": "ABCD".index(raw["answer"])}
        subject = raw["subject"]
        desc = ("The following are multiple choice questions (with answers) about "
                f"{' '.join(subject.split('_'))}.\n\n")
        return Doc(raw, render(MMLU_TEXT, raw), MMLU_CHOICES,
                   resolve_target("answer", raw, True), description=desc, subject=subject)
    if task == "winogrande":
        idx = raw["sentence"].index("_")
        choices = [raw["sentence"][:idx] + opt for opt in [raw["option1"], raw["option2"]]]
        target = raw["sentence"][idx + 1:].strip()
        return Doc(raw, {"1": 0, "2": 1}[raw["answer"]], choices, target, multiple_input=True)
    if task == "gsm8k":
        return Doc(raw, render(GSM8K_TEXT, raw), None, resolve_target(GSM8K_TARGET, raw, False),
                   reference=raw["answer"])
    if task == "humaneval":
        return Doc(raw, render(HUMANEVAL_TEXT, raw), None,
                   resolve_target(HUMANEVAL_TARGET, raw, False), reference="", test=raw["test"],
                   entry_point=raw["entry_point"], humaneval_prompt=raw["prompt"])
    if task == "math":
        doc = dict(raw)
        boxed = last_boxed_only_string(raw["solution"]) if "solution" in raw else None
        if boxed is not None:
            doc["answer"] = remove_boxed(boxed)
        elif not isinstance(raw["answer"], str):
            doc["answer"] = str(raw["answer"])  # AMC's 27.0
        return Doc(raw, render(MATH_TEXT, doc), None, resolve_target(MATH_TARGET, doc, False),
                   reference=doc["answer"])
    raise ValueError(task)


def qa_turn(q, c, a, tgt_delim=" ", few_delim="\n\n"):
    """build_qa_turn rendered as text (no gen_prefix, no chat template)."""
    has_answer = a is not None and a != ""
    text = q + (tgt_delim if has_answer else "")
    if has_answer:
        answer = c[a] if (c and isinstance(a, int)) else a
        text += answer + few_delim
    return text


class ContextSampler:
    def __init__(self, docs, seed):
        self.rnd = random.Random(seed)
        self.df = docs

    def sample(self, n, eval_doc=None):
        if n == 0:
            return []
        if not eval_doc:
            return self.rnd.sample(list(self.df), n)
        res = [x for x in self.rnd.sample(list(self.df), n + 1) if x.raw != eval_doc.raw][:n]
        assert len(res) == n
        return res


class FirstNSampler(ContextSampler):
    def sample(self, n, eval_doc=None):
        pool = [x for x in self.df if x.raw != eval_doc.raw] if eval_doc is not None else self.df
        assert n <= len(pool)
        return pool[:n]


ID_FIELDS = {"hellaswag": ["ind", "id"], "arc_easy": ["id"], "arc_challenge": ["id"],
             "mmlu": ["id"], "winogrande": ["qID", "id"], "gsm8k": ["id"],
             "humaneval": ["task_id", "id"], "math": ["unique_id", "id"]}
# Neither a few-shot nor a test split in the harness's yaml: None == None, so the doc is dropped
# from a sample of n + 1 whatever the pool.
NO_SPLITS = {"hellaswag", "winogrande"}


def build(task, data, shots, seed=1234, fewshot=None, limit=None):
    records = read_records(data)
    docs = []
    for line, raw in records:
        d = process(task, raw, data)
        d.id = next((str(raw[k]) for k in ID_FIELDS[task] if k in raw),
                    f"{os.path.basename(data)}:{line}")
        docs.append(d)
    same_split = fewshot is None or fewshot == data
    pool = docs if same_split else [process(task, raw, fewshot) for _, raw in read_records(fewshot)]
    pass_doc = same_split or task in NO_SPLITS
    if task == "mmlu":
        samplers = {}
        for p in pool:
            samplers.setdefault(p.subject, []).append(p)
        samplers = {k: FirstNSampler(v, seed) for k, v in samplers.items()}
    else:
        sampler = ContextSampler(pool, seed)  # one random.Random per task
    out = []
    for d in docs[:limit]:
        s = samplers[d.subject] if task == "mmlu" else sampler
        examples = s.sample(shots, eval_doc=d if pass_doc else None) if shots > 0 else []
        prefix = d.description
        for e in examples:
            q = e.c[e.q] if e.multiple_input else e.q
            prefix += qa_turn(q, None if e.multiple_input else e.c, e.a)
        if d.c is not None:  # multiple choice
            if d.multiple_input:
                requests = [(prefix + ctx, " " + d.a) for ctx in d.c]
            else:
                requests = [(prefix + d.q, " " + choice) for choice in d.c]
            contexts = list(dict.fromkeys(r[0] for r in requests))
            out.append({"id": d.id, "choices": d.c, "gold": d.q if d.multiple_input else d.a,
                        "contexts": contexts,
                        "requests": [[contexts.index(r[0]), r[1]] for r in requests]})
        else:
            until = {"gsm8k": GSM8K_UNTIL, "humaneval": HUMANEVAL_UNTIL, "math": MATH_UNTIL}[task]
            out.append({"id": d.id, "prompt": prefix + d.q, "until": until,
                        "reference": d.extra["reference"], "test": d.extra.get("test", ""),
                        "entry_point": d.extra.get("entry_point", ""),
                        "humaneval_prompt": d.extra.get("humaneval_prompt", "")})
    return {"task": task, "data": data, "fewshot_data": fewshot or "", "shots": shots,
            "seed": seed, "limit": -1 if limit is None else limit, "docs": out}


CASES = [
    ("hellaswag", "hellaswag/hellaswag_val_excerpt.txt", 0, 1234, None, None),
    ("hellaswag", "hellaswag/hellaswag_val_excerpt.txt", 3, 1234, None, 12),
    ("hellaswag", "hellaswag/hellaswag_hf.jsonl", 0, 1234, None, None),
    ("hellaswag", "hellaswag/hellaswag_hf.jsonl", 2, 1234, None, None),
    ("hellaswag", "hellaswag/hellaswag_val_excerpt.txt", 2, 5, "hellaswag/hellaswag_hf.jsonl", 6),
    ("arc_challenge", "arc/arc_challenge_test_excerpt.jsonl", 0, 1234, None, None),
    ("arc_challenge", "arc/arc_challenge_test_excerpt.jsonl", 5, 1234, None, 10),
    ("arc_easy", "arc/arc_challenge_test_excerpt.jsonl", 3, 0, None, 5),
    ("mmlu", "mmlu/mmlu_test_excerpt.jsonl.gz", 0, 1234, None, None),
    ("mmlu", "mmlu/mmlu_test_excerpt.jsonl.gz", 5, 1234, "mmlu/mmlu_dev_excerpt.jsonl", None),
    ("mmlu", "mmlu/abstract_algebra_test.csv", 2, 1234, "mmlu/abstract_algebra_dev.csv", None),
    ("mmlu", "mmlu/formal_logic_test.csv", 0, 1234, None, None),
    ("mmlu", "mmlu/business_ethics_test.csv", 1, 1234, "mmlu/mmlu_dev_excerpt.jsonl", 3),
    ("winogrande", "winogrande/winogrande.jsonl", 0, 1234, None, None),
    ("winogrande", "winogrande/winogrande.jsonl", 2, 1234, None, None),
    ("winogrande", "winogrande/winogrande.jsonl", 3, 42, None, 6),
    ("gsm8k", "gsm8k/test_excerpt.jsonl", 5, 1234, "gsm8k/train_excerpt.jsonl", None),
    ("gsm8k", "gsm8k/test_excerpt.jsonl", 0, 1234, None, 3),
    ("gsm8k", "gsm8k/test_excerpt.jsonl", 3, 7, "gsm8k/train_excerpt.jsonl", 4),
    ("humaneval", "humaneval/HumanEval_excerpt.jsonl.gz", 0, 1234, None, None),
    ("math", "math/math500_excerpt.jsonl", 0, 1234, None, None),
    ("math", "math/math500_excerpt.jsonl", 2, 1234, None, 6),
    ("math", "math/amc23_excerpt.jsonl", 0, 1234, None, None),
]

# Rows with every CSV corner: quotes, doubled quotes, commas, CR/LF inside values, empty values,
# Unicode; written by Python's csv module (RFC 4180 quoting) with CRLF line ends.
CSV_ROWS = [
    ["question", "A", "B", "C", "D", "answer"],
    ["plain", "1", "2", "3", "4", "A"],
    ["with, comma", "\"quoted\"", "line\nbreak", "crlf\r\nbreak", "", "B"],
    ["", "", "", "", "", "C"],
    ["  spaces  ", "tab\there", "ünï€ødé ✓", "a\"b", "'single'", "D"],
]


def main():
    out = {"harness_commit": HARNESS_COMMIT, "cases": []}
    for task, data, shots, seed, fewshot, limit in CASES:
        out["cases"].append(build(task, data, shots, seed, fewshot, limit))

    # Python's str helpers the formats use.
    out["whitespace"] = [c for c in range(0x110000) if chr(c).isspace()]
    titled = [c for c in range(0x80, 0x110000) if chr(c).capitalize() != chr(c)]
    lowered = [c for c in range(0x80, 0x110000) if ("a" + chr(c)).capitalize() != "A" + chr(c)]
    samples = ["", "a", "the man talks to SARAH", "'the boy", "οδυσσεΣ", "ΣΑΣ a", "ßtraße",
               "ǆungla", "ﬁsh", "İstanbul", "ÉLAN vital", "123 ABC", " leading space"]
    samples += [chr(c) for c in titled]
    samples += ["x" + "".join(chr(c) for c in lowered[i:i + 48]) for i in range(0, len(lowered), 48)]
    out["capitalize"] = [[s, s.capitalize()] for s in samples]
    strip = ["", "  a  ", "\u00a0\u3000x y\u2029\u0085", "\u200bzero width\u200b", "\x1c\x1fz\t\n",
             " é ", "\ufeffbom\ufeff"]
    out["strip"] = [[s, s.strip()] for s in strip]
    pre = ["A man [title] walks.", "x [step] y  z", "[a][b]c", "unclosed [bracket", "two\n[lines]",
           "[multi\nline] ok", "  three   spaces  ", " [title][title] t", "[]", "]["]
    out["hellaswag_preprocess"] = [[s, hellaswag_preprocess(s)] for s in pre]

    os.makedirs(os.path.join(DATA, "csv"), exist_ok=True)
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows(CSV_ROWS)
    with open(os.path.join(DATA, "csv", "cases.csv"), "w", newline="", encoding="utf-8") as f:
        f.write(buf.getvalue())
    out["csv"] = {"file": "csv/cases.csv", "rows": CSV_ROWS}

    path = os.path.join(DATA, "goldens", "tasks.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=None, separators=(",", ":"))
        f.write("\n")
    print("wrote", path, os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main()
