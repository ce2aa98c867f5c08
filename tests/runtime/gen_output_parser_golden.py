#!/usr/bin/env python3
# Writes golden/output_parser_golden.json: Qwen3-style outputs parsed by an independent,
# non-streaming reference (regex + json, as vLLM's hermes tool parser) and stop-string cuts.
# Run: python3 tests/runtime/gen_output_parser_golden.py
import json
import os
import re

TAG_RE = re.compile(r"<think>|<tool_call>")


def parse(text, start_in_reasoning=False):
    """Reference: reasoning regions stripped of '\n' at both ends; in each content region (between
    think tags) good tool-call blocks are removed together with the newlines that follow them,
    malformed ones stay as text (newlines after them removed too), then the region is stripped."""
    content, reasoning, calls, malformed = [], [], [], False
    state = "r" if start_in_reasoning else "c"
    i = 0
    if start_in_reasoning and text.lstrip("\n").startswith("<think>"):
        i = text.index("<think>") + len("<think>")  # a redundant second opening tag
    region = ""
    while True:
        if state == "r":
            j = text.find("</think>", i)
            if j < 0:
                reasoning.append(text[i:].strip("\n"))
                malformed = True
                break
            reasoning.append(text[i:j].strip("\n"))
            i, state = j + len("</think>"), "c"
            continue
        m = TAG_RE.search(text, i)
        if not m:
            region += text[i:]
            break
        region += text[i:m.start()]
        if m.group() == "<think>":
            content.append(region.strip("\n"))
            region = ""
            i, state = m.end(), "r"
            continue
        j = text.find("</tool_call>", m.end())
        if j < 0:
            region += "<tool_call>" + text[m.end():]
            malformed = True
            break
        body = text[m.end():j]
        i = j + len("</tool_call>")
        while i < len(text) and text[i] == "\n":
            i += 1
        try:
            obj = json.loads(body)
            ok = isinstance(obj, dict) and isinstance(obj.get("name"), str) and obj["name"]
        except json.JSONDecodeError:
            ok = False
        if not ok:
            region += "<tool_call>" + body + "</tool_call>"
            malformed = True
            continue
        args = obj.get("arguments", obj.get("parameters"))
        if args is None:
            args = "{}"
        elif not isinstance(args, str):
            args = json.dumps(args, separators=(",", ":"), ensure_ascii=False)
        calls.append({"id": "call_%d" % len(calls), "type": "function", "name": obj["name"],
                      "arguments": args})
    content.append(region.strip("\n"))
    return {"content": "".join(content), "reasoning": "".join(reasoning), "tool_calls": calls,
            "malformed": malformed}


def tool(name, args, sep=", "):
    return "<tool_call>\n" + json.dumps({"name": name, "arguments": args}, ensure_ascii=False) + \
        "\n</tool_call>"


PARSER_CASES = [
    ("reasoning_then_content", False,
     "<think>\nThe user greets me. I should answer politely.\n</think>\n\nHello! How can I help "
     "you today?"),
    ("start_in_reasoning", True,
     "Okay, 2 + 2 = 4, and 4 < 5 holds.\n</think>\n\nThe answer is **4**."),
    ("start_in_reasoning_redundant_open", True,
     "\n<think>\nFirst, recall <think> is just text now.\n</think>\n\nDone <think>again</think>."),
    ("start_in_reasoning_late_open_is_text", True,
     "Hmm.<think>\n</think>\n\nOK"),
    ("no_thinking_empty_block", False,
     "<think>\n\n</think>\n\nSure: x < y and y <= z, so x < z. Use <b>bold</b>."),
    ("several_tool_calls_with_text", False,
     "<think>\nI need the weather in two cities; call the tool twice.\n</think>\n\n"
     "Let me check both cities.\n"
     + tool("get_current_weather", {"location": "San Francisco, CA", "unit": "celsius"}) + "\n"
     + tool("get_current_weather", {"location": "Zürich", "unit": "celsius", "days": [1, 2],
                                   "detail": {"hourly": True, "limit": 22.5, "q": None}})
     + "\nI will summarise once the results arrive."),
    ("text_between_tool_calls", False,
     "First.\n\n" + tool("a", {}) + "\n\n\n" + tool("b", {"k": "v"}) + "\nMiddle\n"
     + tool("c", [1]) + "Last.\n"),
    ("tool_call_string_arguments", False,
     tool("search", "{\"query\": \"arle\"}")),
    ("tool_call_no_arguments", False,
     "<tool_call>\n{\"name\": \"get_time\"}\n</tool_call>"),
    ("unicode", False,
     "<think>\n用户用中文提问，我用中文回答。😀 Ünïcödé ≤ ≥\n</think>\n\n你好！这是答案：π ≈ 3.14159 🚀\n"
     + tool("translate", {"text": "naïve café — 東京", "to": "日本語"})),
    ("tags_inside_reasoning_are_text", False,
     "<think>\nShould I emit <tool_call> here? No, first think.\n</think>\n\nDone."),
    ("malformed_invalid_json", False,
     "Calling now.\n<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": 1,}}\n</tool_call>\n"
     "After."),
    ("malformed_no_name", False,
     "<tool_call>\n{\"arguments\": {}}\n</tool_call>\n" + tool("ok", {"x": 1})),
    ("malformed_unclosed_tool_call", False,
     "Text before.\n<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": "),
    ("malformed_unclosed_think", False,
     "<think>\nI was cut off in the middle of thin"),
    ("partial_tag_at_end", False, "The tag starts with <thi"),
    ("lone_angle_brackets", False, "a <tool b </think> c <<think>d</think>e"),
]

STOP_CASES = [
    ("simple", ["Observation:"], "Thought: search\nAction: go\nObservation: result", False),
    ("no_match", ["###", "STOP"], "Nothing here ## but hashes and ST OP.", False),
    ("earliest_wins", ["world", "lo w"], "hello world", False),
    ("overlapping_prefixes", ["abcabd"], "xxabcabcabdyy", False),
    ("unicode", ["。\n", "🚀"], "第一句话。第二句🚀之后", False),
    ("same_start_longer", ["ab", "abc"], "zzabcd", False),
    ("inner_completes_first", ["abcd", "bc"], "xabcdy", False),
    ("stop_at_start", ["\n\n"], "\n\nrest", False),
    ("partial_at_end", ["</answer>"], "the answer is 42</ans", False),
]


def stop_cut(stops, text):
    """The stop string whose first occurrence ends first wins; on a tie, the one starting first."""
    best = None
    for s in stops:
        p = text.find(s)
        if p < 0:
            continue
        key = (p + len(s), p)
        if best is None or key < best[0]:
            best = (key, p, s)
    if best is not None:
        best = (best[1], best[2])
    if best is None:
        return {"output": text, "stopped": False, "matched": None}
    return {"output": text[:best[0]], "stopped": True, "matched": best[1]}


def main():
    out = {"parser": [], "stop": []}
    for name, sir, text in PARSER_CASES:
        out["parser"].append({"name": name, "start_in_reasoning": sir, "text": text,
                              "expected": parse(text, sir)})
    for name, stops, text, _ in STOP_CASES:
        out["stop"].append({"name": name, "stops": stops, "text": text,
                            "expected": stop_cut(stops, text)})
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden",
                        "output_parser_golden.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
