#!/usr/bin/python3
# Independent Python port of llama2.c's tokenizer `encode` (karpathy/llama2.c run.c): writes the
# expected ids of test strings for a tokenizer.bin (tests/data/io/tok512_cases.json).
"""Usage: llama2c_reference.py TOKENIZER.bin OUT.json

run.c's algorithm, byte for byte: a dummy-prefix " " token when the text is not empty; the text
split into UTF-8 codepoints (at most 4 bytes), each looked up as a vocabulary piece, else one
token per byte (id = byte + 3); then, repeatedly, the adjacent pair whose concatenation is the
vocabulary piece with the highest score (the leftmost on ties) is merged, until none is left.
Ids are recorded without BOS/EOS.
"""

import json
import struct
import sys

CASES = [
    "Once upon a time",
    "Once upon a time, there was a little girl named Lily.",
    "Lily's mom said, \"Lily, let's go to the park.\"",
    "Hello world",
    "a",
    " ",
    "  two leading spaces",
    "trailing space ",
    "multiple   spaces   inside",
    "tab\tand\nnewline",
    "UPPER lower MiXeD CaSe",
    "12345 + 678 = 9023",
    "caf\u00e9 na\u00efve r\u00e9sum\u00e9",
    "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8",
    "emoji \U0001F600 and \U0001F468\u200D\U0001F469\u200D\U0001F467 family",
    "The quick brown fox jumps over the lazy dog!",
    "It's a dog's life: (yes) [no] {maybe}",
]


def load_tokenizer(path):
    with open(path, "rb") as f:
        data = f.read()
    (max_len,) = struct.unpack_from("<i", data, 0)
    off, vocab, scores = 4, [], []
    while off < len(data):
        score, n = struct.unpack_from("<fi", data, off)
        off += 8
        vocab.append(data[off:off + n])
        scores.append(score)
        off += n
    return vocab, scores


def encode(text, vocab, scores):
    lookup = {}
    for i, piece in enumerate(vocab):
        lookup.setdefault(piece, i)  # run.c's bsearch over a sorted copy; pieces are unique
    tokens = []
    raw = text.encode("utf-8")
    if raw:
        tokens.append(lookup[b" "])
    buf = b""
    for i, byte in enumerate(raw):
        if byte & 0xC0 != 0x80:
            buf = b""
        buf += bytes([byte])
        nxt = raw[i + 1] if i + 1 < len(raw) else 0
        if nxt & 0xC0 == 0x80 and len(buf) < 4:
            continue
        if buf in lookup:
            tokens.append(lookup[buf])
        else:
            tokens.extend(b + 3 for b in buf)
        buf = b""
    while True:
        best_score, best_id, best_idx = -1e10, -1, -1
        for i in range(len(tokens) - 1):
            merged = vocab[tokens[i]] + vocab[tokens[i + 1]]
            tid = lookup.get(merged, -1)
            if tid != -1 and scores[tid] > best_score:
                best_score, best_id, best_idx = scores[tid], tid, i
        if best_idx == -1:
            break
        tokens[best_idx:best_idx + 2] = [best_id]
    return tokens


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    vocab, scores = load_tokenizer(sys.argv[1])
    cases = [{"text": t, "ids": encode(t, vocab, scores)} for t in CASES]
    doc = {
        "source": "tests/reference/llama2c_reference.py (port of llama2.c run.c encode)",
        "tokenizer": "assets/models/stories260K/tok512.bin",
        "bos": False,
        "cases": cases,
    }
    text = json.dumps({k: v for k, v in doc.items() if k != "cases"}, indent=1)[:-2]
    text += ',\n "cases": [\n' + ",\n".join(
        "  " + json.dumps(c, ensure_ascii=False) for c in cases) + "\n ]\n}\n"
    json.loads(text)
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        f.write(text)


if __name__ == "__main__":
    main()
