#!/usr/bin/python3
"""Reference SFT loss masks for arle's train/sft_data.

Renders chat records with the Qwen3 template through Python jinja2 set up as transformers does
(render_templates.make_env), finds the assistant spans structurally from the ChatML markers (from
after each "<|im_start|>assistant\\n" through the next "<|im_end|>", an independent method from
arle's prefix rendering), tokenizes the whole text with the independent Python byte-level BPE of
tokenizer_reference.py and marks every token whose first byte lies in a span.
Writes tests/data/goldens/train/sft_masks.json and the same records as tests/data/train/sft_chat.jsonl.
Run: /usr/bin/python3 tests/reference/sft_masks.py
"""
import gzip
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from render_templates import (A1, A_THINK, A_THINK2, CALL_DICT, CALL_TWO, SYS, T1, T2, TOOLS, U1,  # noqa: E402
                              U2, make_env)
from tokenizer_reference import ByteLevelBpe, bytes_to_unicode  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
TEMPLATE = "tests/data/templates/Qwen-Qwen3-0.6B.jinja"
IGNORE = -100

RECORDS = [
    {"messages": [SYS, U1, A1]},
    {"messages": [U1, A1, U2, {"role": "assistant", "content": "4"}]},
    {"messages": [SYS, U1, A_THINK, U2, A_THINK2]},
    {"messages": [SYS, {"role": "user", "content": "Weather in Paris?"}, CALL_DICT, T1,
                  {"role": "assistant", "content": "It is 21 degrees and sunny."}], "tools": TOOLS},
    # The tool-call turn keeps its reasoning when rendered up to the tool results but loses it in
    # the whole conversation (a later user query): the rendering is not prefix-stable.
    {"messages": [{"role": "user", "content": "Tokyo?"}, CALL_TWO, T1, T2,
                  {"role": "assistant", "content": "<think>\nSummarize.\n</think>\n\nSunny, quiet."},
                  {"role": "user", "content": "Thanks"},
                  {"role": "assistant", "content": "You're welcome!"}], "tools": TOOLS},
    {"messages": [U1, {"role": "assistant", "content": "Hello.", "reasoning_content": "They said hello."}]},
    {"messages": [{"role": "system", "content": "Réponds en français. 日本語もOK 🙂"},
                  {"role": "user", "content": "Ça va ? 你好 👋🏽"},
                  {"role": "assistant", "content": "Très bien — merci ! ✨\n"}]},
]

HEADER = "<|im_start|>assistant\n"
END = "<|im_end|>"


def chatml_spans(text):
    """Byte spans [begin, end) of the assistant turns' bodies through their <|im_end|>."""
    spans, i = [], 0
    while True:
        h = text.find(HEADER, i)
        if h < 0:
            return spans
        begin = h + len(HEADER)
        end = text.index(END, begin) + len(END)
        spans.append((len(text[:begin].encode("utf-8")), len(text[:end].encode("utf-8"))))
        i = end


def token_bytes(qwen, ids):
    inverse_vocab = {v: k for k, v in qwen.vocab.items()}
    inverse_added = {v: k for k, v in qwen.added.items()}
    unmap = {c: b for b, c in bytes_to_unicode().items()}
    out = []
    for i in ids:
        if i in inverse_added:
            out.append(inverse_added[i].encode("utf-8"))
        else:
            out.append(bytes(unmap[c] for c in inverse_vocab[i]))
    return out


def main():
    with gzip.open(os.path.join(ROOT, "assets/tokenizers/qwen3/tokenizer.json.gz"), "rt", encoding="utf-8") as f:
        qwen = ByteLevelBpe(json.load(f))
    with open(os.path.join(ROOT, TEMPLATE), encoding="utf-8") as f:
        template = make_env().from_string(f.read())
    cases = []
    for record in RECORDS:
        text = template.render(messages=record["messages"], tools=record.get("tools"),
                               add_generation_prompt=False, bos_token=None, eos_token=END)
        spans = chatml_spans(text)
        assert len(spans) == sum(m["role"] == "assistant" for m in record["messages"])
        ids = qwen.encode(text)
        pieces = token_bytes(qwen, ids)
        assert b"".join(pieces) == text.encode("utf-8")
        mask, pos = [], 0
        for p in pieces:
            mask.append(int(any(b <= pos < e for b, e in spans)))
            pos += len(p)
        labels = [ids[t + 1] if mask[t + 1] else IGNORE for t in range(len(ids) - 1)] + [IGNORE]
        cases.append({"record": record, "text": text, "spans": spans, "ids": ids, "mask": mask,
                      "labels": labels})
    out = os.path.join(ROOT, "tests/data/goldens/train/sft_masks.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        json.dump({"generator": "tests/reference/sft_masks.py", "template": TEMPLATE, "cases": cases}, f,
                  ensure_ascii=False)
        f.write("\n")
    with open(os.path.join(ROOT, "tests/data/train/sft_chat.jsonl"), "w", encoding="utf-8") as f:
        for record in RECORDS:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    print("wrote", out, len(cases), "cases")


if __name__ == "__main__":
    main()
