#!/usr/bin/python3
"""Independent reference tokenizers that generate arle's tokenizer goldens.

1. Byte-level BPE (GPT-2 style) written from scratch over the Qwen3 tokenizer.json: added tokens
   split first (longest match), NFC via unicodedata, the Split regex from the file through Debian's
   python3-regex, GPT-2's byte->unicode table, then the classic "merge the lowest-rank pair" loop.
   Writes tests/data/tokenizer/qwen3_cases.json.
2. llama2.c's `encode` (run.c) over tok512.bin: dummy-prefix " ", UTF-8 code points with byte
   fallback (+3), then repeatedly merge the adjacent pair whose merged piece has the best score.
   Writes tests/data/tokenizer/tok512_cases.json.

Run from the repo root: /usr/bin/python3 tests/reference/tokenizer_reference.py
"""
import gzip
import json
import os
import struct
import unicodedata

import regex

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT_DIR = os.path.join(ROOT, "tests", "data", "tokenizer")

QWEN3_CASES = [
    "Hello world",
    "Hello, world! How are you doing today?",
    "你好，世界！今天天气很好。",
    "東京は日本の首都です。",
    "한국어 텍스트도 테스트합니다.",
    "👨‍👩‍👧‍👦 family, 🏳️‍🌈 flag, 👍🏽 thumbs",
    "emoji 🤖🚀✨ mixed with text",
    "   leading spaces and    inner runs   ",
    "tabs\tand\t\ttabs\nnew\n\nlines\r\nwindows",
    "\n\n\n",
    "digits 1234567890 and 3.14159 and 1,000,000",
    "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
    "for (int i = 0; i < 10; ++i) { sum += a[i]; }  // C++",
    "<|im_start|>user\nhi<|im_end|>",
    "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nOK<|im_end|>",
    "text<|endoftext|>more text",
    "Cafe\u0301 de\u0301ja\u0300 vu",  # NFD accents that NFC composes
    "A\u030angstro\u0308m and n\u0303",
    "Ünïcödé ñ façade naïve",
    "\u1100\u1161\u11a8 jamo compose, \uf900 compatibility ideograph, \u0419 \u0418\u0306",
    "I'm sure they'll say it's fine, we've done what we'd do",
    "I'M SURE THEY'LL SAY IT'S FINE",
    "mixed中文and English混合text",
    "Привет, мир! Как дела?",
    "مرحبا بالعالم",
    "ʻŌlelo Hawaiʻi",
    "$$$ !!! ??? ... --- ***",
    "https://example.com/path?query=1&x=y#frag",
    "   ",
    "a",
    "",
]

TOK512_CASES = [
    "Once upon a time",
    "Once upon a time, there was a little girl named Lily.",
    "She loved to play outside in the park.",
    "Hello world",
    "  two leading spaces",
    "caf\u00e9 na\u00efve",
    "The cat sat.\nThe dog ran!",
    "1234 + 5678 = 6912",
    "x",
    "",
]


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0x100))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


class ByteLevelBpe:
    def __init__(self, tokenizer_json):
        model = tokenizer_json["model"]
        assert model["type"] == "BPE"
        self.vocab = model["vocab"]
        self.ranks = {}
        for i, m in enumerate(model["merges"]):
            a, b = m.split(" ", 1) if isinstance(m, str) else m
            self.ranks.setdefault((a, b), i)
        self.added = {t["content"]: t["id"] for t in tokenizer_json["added_tokens"]}
        for t in tokenizer_json["added_tokens"]:
            assert not t["lstrip"] and not t["rstrip"]
        pre = tokenizer_json["pre_tokenizer"]["pretokenizers"][0]
        assert pre["type"] == "Split" and pre["behavior"] == "Isolated"
        self.pattern = regex.compile(pre["pattern"]["Regex"])
        assert tokenizer_json["normalizer"]["type"] == "NFC"
        self.byte_map = bytes_to_unicode()

    def bpe(self, word):
        parts = list(word)
        while len(parts) > 1:
            best = None
            for i in range(len(parts) - 1):
                r = self.ranks.get((parts[i], parts[i + 1]))
                if r is not None and (best is None or r < best[0]):
                    best = (r, i)
            if best is None:
                break
            pair = (parts[best[1]], parts[best[1] + 1])
            merged, i = [], 0
            while i < len(parts):
                if i < len(parts) - 1 and (parts[i], parts[i + 1]) == pair:
                    merged.append(parts[i] + parts[i + 1])
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = merged
        return [self.vocab[p] for p in parts]

    def encode_text(self, text):
        ids = []
        text = unicodedata.normalize("NFC", text)
        for m in self.pattern.finditer(text):
            piece = m.group(0)
            mapped = "".join(self.byte_map[b] for b in piece.encode("utf-8"))
            ids.extend(self.bpe(mapped))
        return ids

    def encode(self, text):
        # Leftmost-longest match of added tokens, then BPE on the text in between.
        specials = sorted(self.added, key=len, reverse=True)
        ids, start, i = [], 0, 0
        while i < len(text):
            hit = next((s for s in specials if text.startswith(s, i)), None)
            if hit is None:
                i += 1
                continue
            ids.extend(self.encode_text(text[start:i]))
            ids.append(self.added[hit])
            i += len(hit)
            start = i
        ids.extend(self.encode_text(text[start:]))
        return ids


def read_llama2c_tokenizer(path, vocab_size=512):
    with open(path, "rb") as f:
        data = f.read()
    (max_len,) = struct.unpack_from("<i", data, 0)
    off = 4
    pieces, scores = [], []
    for _ in range(vocab_size):
        score, n = struct.unpack_from("<fi", data, off)
        off += 8
        pieces.append(data[off : off + n])
        off += n
        scores.append(score)
    assert off == len(data)
    return pieces, scores


def llama2c_encode(pieces, scores, text, bos=True):
    """A transcription of llama2.c run.c `encode` (eos=0)."""
    lookup = {}
    for i, p in enumerate(pieces):
        lookup.setdefault(p, i)
    tokens = []
    if bos:
        tokens.append(1)
    raw = text.encode("utf-8")
    if raw:
        tokens.append(lookup[b" "])
    i = 0
    while i < len(raw):
        # one UTF-8 code point: a lead byte plus up to 3 continuation bytes
        j = i + 1
        while j < len(raw) and (raw[j] & 0xC0) == 0x80 and j - i < 4:
            j += 1
        cp = raw[i:j]
        if cp in lookup:
            tokens.append(lookup[cp])
        else:
            tokens.extend(b + 3 for b in cp)
        i = j
    while True:
        best_score, best_id, best_idx = -1e10, -1, -1
        for k in range(len(tokens) - 1):
            merged = pieces[tokens[k]] + pieces[tokens[k + 1]]
            idx = lookup.get(merged, -1)
            if idx != -1 and scores[idx] > best_score:
                best_score, best_id, best_idx = scores[idx], idx, k
        if best_idx == -1:
            break
        tokens[best_idx : best_idx + 2] = [best_id]
    return tokens


def write_cases(path, cases):
    with open(path, "w", encoding="utf-8") as f:
        f.write('{"generator": "tests/reference/tokenizer_reference.py", "cases": [\n')
        f.write(",\n".join(json.dumps(c, ensure_ascii=False) for c in cases))
        f.write("\n]}\n")


def main():
    with gzip.open(os.path.join(ROOT, "assets/tokenizers/qwen3/tokenizer.json.gz"), "rt", encoding="utf-8") as f:
        qwen = ByteLevelBpe(json.load(f))
    # "decoded": what decoding the ids gives back (the NFC form of the text).
    cases = [{"text": t, "decoded": unicodedata.normalize("NFC", t), "ids": qwen.encode(t)}
             for t in QWEN3_CASES]
    write_cases(os.path.join(OUT_DIR, "qwen3_cases.json"), cases)

    pieces, scores = read_llama2c_tokenizer(os.path.join(ROOT, "assets/models/stories260K/tok512.bin"))
    cases = [{"text": t, "ids": llama2c_encode(pieces, scores, t)} for t in TOK512_CASES]
    write_cases(os.path.join(OUT_DIR, "tok512_cases.json"), cases)
    print("wrote qwen3_cases.json and tok512_cases.json")


if __name__ == "__main__":
    main()
