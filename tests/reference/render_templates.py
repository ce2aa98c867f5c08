#!/usr/bin/python3
# Renders every tests/data/templates/*.jinja with Python jinja2 set up as transformers does
# (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols, tojson, raise_exception)
# over a suite of conversations; writes tests/data/templates/goldens.json (the C++ Jinja test's goldens).
import json
import os
import sys

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))
TEMPLATES = os.path.join(HERE, "..", "data", "templates")


class TemplateError(Exception):
    pass


def raise_exception(message):
    raise TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                      sort_keys=sort_keys)


def make_env():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                       extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    return env


WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "  Get the current weather in a city.  ",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "description": "City name, e.g. Zürich"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
        "required": ["city"]}}}
SEARCH = {"type": "function", "function": {
    "name": "search", "description": "Search the web.",
    "parameters": {"type": "object", "properties": {
        "query": {"type": "string"}, "max_results": {"type": "integer", "default": 5}}}}}
TOOLS = [WEATHER, SEARCH]

SYS = {"role": "system", "content": "You are a helpful assistant."}
U1 = {"role": "user", "content": "Hello!"}
A1 = {"role": "assistant", "content": "Hi! How can I help you today?"}
U2 = {"role": "user", "content": "What is 2+2?"}
A_THINK = {"role": "assistant", "content": "<think>\nThe user greets me.\n</think>\n\nHello there."}
A_THINK2 = {"role": "assistant", "content": "<think>\nSimple arithmetic.\n</think>\n\n2+2 = 4."}
CALL_DICT = {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {
    "name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}}]}
CALL_STR = {"role": "assistant", "content": "Let me check.", "tool_calls": [{"type": "function", "function": {
    "name": "search", "arguments": "{\"query\": \"weather Paris\", \"max_results\": 3}"}}]}
CALL_TWO = {"role": "assistant", "content": "<think>\nNeed both.\n</think>\n\nChecking two things.",
            "tool_calls": [
                {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Tokyo"}}},
                {"type": "function", "function": {"name": "search",
                                                  "arguments": {"query": "news", "max_results": 2}}}]}
T1 = {"role": "tool", "content": "{\"temperature\": 21, \"condition\": \"sunny\"}"}
T2 = {"role": "tool", "content": "Top news: nothing happened."}

CASES = [
    ("system_user", [SYS, U1], None, {}),
    ("system_user_gen", [SYS, U1], None, {"add_generation_prompt": True}),
    ("user_only_gen", [U1], None, {"add_generation_prompt": True}),
    ("multi_turn", [SYS, U1, A1, U2], None, {"add_generation_prompt": True}),
    ("no_thinking", [U1, A1, U2], None, {"add_generation_prompt": True, "enable_thinking": False}),
    ("thinking_true", [U1], None, {"add_generation_prompt": True, "enable_thinking": True}),
    ("think_before_last_query", [SYS, U1, A_THINK, U2], None, {"add_generation_prompt": True}),
    ("think_after_last_query", [SYS, U1, A_THINK, U2, A_THINK2], None, {"add_generation_prompt": False}),
    ("reasoning_content", [U1, {"role": "assistant", "content": "Hello.", "reasoning_content":
                                "They said hello."}, U2,
                           {"role": "assistant", "content": "4", "reasoning_content": "\n2+2=4\n"}],
     None, {}),
    ("tools_system", [SYS, {"role": "user", "content": "Weather in Paris?"}], TOOLS,
     {"add_generation_prompt": True}),
    ("tools_no_system", [{"role": "user", "content": "Weather in Paris?"}], TOOLS,
     {"add_generation_prompt": True}),
    ("tool_call_dict", [SYS, {"role": "user", "content": "Weather in Paris?"}, CALL_DICT, T1], TOOLS,
     {"add_generation_prompt": True}),
    ("tool_call_string", [{"role": "user", "content": "Search weather"}, CALL_STR, T1,
                          {"role": "assistant", "content": "It is sunny."}], TOOLS, {}),
    ("tool_responses_in_row", [SYS, {"role": "user", "content": "Tokyo weather and news"}, CALL_TWO,
                               T1, T2], TOOLS, {"add_generation_prompt": True}),
    ("tool_then_user", [{"role": "user", "content": "Tokyo?"}, CALL_TWO, T1, T2,
                        {"role": "assistant", "content": "<think>\nSummarize.\n</think>\n\nSunny, quiet."},
                        {"role": "user", "content": "Thanks"}], TOOLS,
     {"add_generation_prompt": True, "enable_thinking": False}),
    ("unicode", [{"role": "system", "content": "Réponds en français. 日本語もOK 🙂"},
                 {"role": "user", "content": "Ça va ? 你好 👋🏽 \"quoted\" \\ back"},
                 {"role": "assistant", "content": "Très bien — merci ! ✨"}], None,
     {"add_generation_prompt": True}),
    ("unicode_tool_args", [{"role": "user", "content": "Météo à Zürich ?"},
                           {"role": "assistant", "content": "", "tool_calls": [{"type": "function",
                            "function": {"name": "get_weather",
                                         "arguments": {"city": "Zürich", "note": "°C ☀", "n": [1, 2.5, None, True]}}}]}],
     TOOLS, {}),
    ("empty_messages_gen", [SYS], None, {"add_generation_prompt": True}),
    ("system_content_list", [{"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
                             {"role": "user", "content": [{"type": "text", "text": "Hi"}]}], None,
     {"add_generation_prompt": True}),
]


def main():
    env = make_env()
    names = sorted(f for f in os.listdir(TEMPLATES) if f.endswith(".jinja"))
    cases = []
    for name, messages, tools, extra in CASES:
        context = {"messages": messages, "tools": tools, "bos_token": None, "eos_token": "<|im_end|>"}
        context.update(extra)
        cases.append({"name": name, "context": context})
    results = []
    for tname in names:
        with open(os.path.join(TEMPLATES, tname), encoding="utf-8") as f:
            template = env.from_string(f.read())
        for case in cases:
            entry = {"template": tname, "case": case["name"]}
            try:
                entry["output"] = template.render(**case["context"])
            except TemplateError as e:
                entry["error"] = str(e)
            except Exception as e:  # other jinja errors: record the type
                entry["error"] = type(e).__name__ + ": " + str(e)
            results.append(entry)
    out = {"generator": "tests/reference/render_templates.py (jinja2 %s)" % jinja2.__version__,
           "cases": cases, "results": results}
    with open(os.path.join(TEMPLATES, "goldens.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print("wrote %d results" % len(results))


if __name__ == "__main__":
    sys.exit(main())
