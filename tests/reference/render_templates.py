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


# Small templates exercising one engine feature each (rendered with FEATURE_CONTEXT); written to
# tests/data/templates/features.json with their output or jinja2's error.
FEATURE_CONTEXT = {"s": "  Hello, World  ", "n": 7, "f": 2.5, "tiny": 1e-05, "big": 1e16, "neg": -3,
                   "l": [3, 1, 2], "d": {"b": 1, "a": [1, 2], "c": {"x": None}}, "t": True, "z": None,
                   "u": "日本語🙂", "msgs": [{"role": "user", "content": "a"}, {"role": "tool", "content": "b"},
                                          {"role": "assistant", "content": "c"}]}
FEATURES = [
    ("print_types", "{{ n }}|{{ f }}|{{ tiny }}|{{ big }}|{{ t }}|{{ z }}|{{ l }}|{{ d }}|{{ missing }}"),
    ("float_repr", "{{ 1.0 }} {{ 0.1 + 0.2 }} {{ 1/3 }} {{ 10/2 }} {{ 1e100 }} {{ 0.0001 }} {{ 123456789012345678.0 }}"),
    ("arith", "{{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ n * 2 - 1 }} {{ 'ab' * 3 }} {{ f * 2 }}"),
    ("concat", "{{ 'a' ~ n ~ z ~ t ~ missing }}|{{ 'x' + 'y' }}|{{ l + [4] }}"),
    ("compare", "{{ 1 < 2 }} {{ 'a' < 'b' }} {{ 1 == 1.0 }} {{ t == 1 }} {{ l == [3, 1, 2] }} {{ d != {} }}"),
    ("logic", "{{ z or 'def' }}|{{ n and 'yes' }}|{{ not z }}|{{ 'x' if t else 'y' }}|{{ 'x' if z }}|"),
    ("in_ops", "{{ 'ell' in s }} {{ 2 in l }} {{ 'a' in d }} {{ 'q' not in d }} {{ 'x' in missing }}"),
    ("slicing", "{{ l[::-1] }} {{ l[1:] }} {{ l[-1] }} {{ l[:-1] }} {{ u[::-1] }} {{ u[1] }} {{ s[2:7] }} {{ l[::2] }} {{ l[5] }}"),
    ("str_methods", "{{ s.strip() }}|{{ s.lstrip() }}|{{ s.rstrip() }}|{{ s.split(',') }}|{{ s.split() }}|"
                    "{{ s.upper() }}|{{ s.lower() }}|{{ s.replace('l', 'L') }}|{{ s.strip().startswith('Hell') }}|"
                    "{{ s.strip().endswith(('x', 'd')) }}|{{ 'a-b-c'.split('-', 1) }}|{{ 'xxhixx'.strip('x') }}|{{ 'hello world'.title() }}"),
    ("dict_methods", "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}|{{ d.get('b') }}|{{ d.get('q', 5) }}|{{ d.keys() | list }}|{{ d.values() | list }}"),
    ("filters_basic", "{{ s | trim }}|{{ l | length }}|{{ u | length }}|{{ missing | default('D') }}|{{ z | default('D') }}|"
                      "{{ '' | default('E', true) }}|{{ l | join(', ') }}|{{ s | upper }}|{{ s | lower }}|{{ s | replace('o', '0') }}"),
    ("filters_more", "{{ l | first }}|{{ l | last }}|{{ 'abc' | list }}|{{ d | items | list }}|{{ n | string }}|"
                     "{{ '42' | int + 1 }}|{{ 'x' | int }}|{{ 3.9 | int }}|{{ l | reverse | list }}|{{ d | dictsort }}|{{ s | safe }}"),
    ("filters_select", "{{ msgs | selectattr('role', 'equalto', 'user') | map(attribute='content') | join(',') }}|"
                       "{{ msgs | rejectattr('role', 'eq', 'user') | list | length }}|{{ msgs | map(attribute='role') | list }}|"
                       "{{ [1, 0, 2] | select | list }}|{{ ['a', 'B'] | map('upper') | list }}"),
    ("tojson", "{{ d | tojson }}|{{ u | tojson }}|{{ [1.5, none, true, 'q\"\n'] | tojson }}|{{ d | tojson(indent=2) }}|{{ 'ü\u0001' | tojson }}"),
    ("tests", "{{ n is number }} {{ s is string }} {{ d is mapping }} {{ l is sequence }} {{ s is sequence }} {{ d is iterable }}"
              " {{ z is none }} {{ missing is defined }} {{ missing is undefined }} {{ t is true }} {{ 1 is true }} {{ n is odd }}"
              " {{ n is divisibleby 7 }} {{ l is not string }} {{ n is integer }} {{ f is float }} {{ t is boolean }}"),
    ("for_loop", "{% for x in l %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.first }}{{ loop.last }}{{ loop.length }}"
                 "{{ loop.previtem }}{{ loop.nextitem }};{% endfor %}"),
    ("for_filter_else", "{% for x in l if x > 1 %}{{ x }}{{ loop.length }}{% else %}none{% endfor %}|{% for x in [] %}x{% else %}empty{% endfor %}"),
    ("break_continue", "{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}{% if x > 5 %}{% break %}{% endif %}{{ x }}{% endfor %}"),
    ("scoping", "{% set x = 1 %}{% for i in l %}{% set x = i %}{% endfor %}{{ x }}|{% set ns = namespace(v=0, w='a') %}"
                "{% for i in l %}{% set ns.v = ns.v + i %}{% endfor %}{{ ns.v }}{{ ns.w }}"),
    ("macro", "{% macro m(a, b='B', c=none) %}[{{ a }}{{ b }}{{ c }}]{% endmacro %}{{ m(1) }}{{ m(1, 2) }}{{ m('x', c=3) }}{{ m() }}"),
    ("set_block", "{% set x %}inner {{ n }}{% endset %}[{{ x }}]"),
    ("whitespace", "a  \n  {%- if t -%}  \n  b  \n  {%- endif -%}  \n c {{- ' d ' -}} e\n  {# c #}\n  {% if t %}\n    x\n  {% endif %}\ny"),
    ("lstrip_trim", "line1\n    {% if t %}\n    in\n    {% endif %}\n    {{ n }}\n{% for i in l %}\n  {{ i }}\n{% endfor %}\nend"),
    ("comments", "a{# comment {{ x }} #}b\n{#- stripped -#}\n  c"),
    ("tuple_unpack", "{% for a, b in [[1, 2], [3, 4]] %}{{ a + b }}{% endfor %}|{% set p, q = 1, 2 %}{{ p }}{{ q }}"),
    ("raise", "{{ raise_exception('custom failure') }}"),
    ("undefined_attr", "{{ missing.attr }}"),
    ("str_plus_int", "{{ 'a' + 1 }}"),
    ("items_non_mapping", "{% for k in l | items %}{{ k }}{% endfor %}"),
    ("string_escapes", "{{ 'tab\\tq\\'d' }}|{{ \"dq\\\"x\" }}|{{ '\\u00e9' }}"),
    ("unicode_methods", "{{ u | upper }}|{{ u[0] }}|{{ u[-1] }}|{{ u | length }}|{{ 'Ça' | lower }}"),
    ("repr_quotes", "{{ [\"it's\", 'a\"b', 'plain', 1.0, none, true] }}"),
    ("nested_access", "{{ d['c']['x'] }}|{{ d.c.x is none }}|{{ d['a'][1] }}|{{ msgs[0].role }}|{{ msgs[-1]['content'] }}|{{ d.a.0 }}"),
]


def render_features(env):
    out = []
    for name, src in FEATURES:
        entry = {"name": name, "template": src}
        try:
            entry["output"] = env.from_string(src).render(**FEATURE_CONTEXT)
        except TemplateError as e:
            entry["error"] = str(e)
        except Exception as e:
            entry["error"] = type(e).__name__ + ": " + str(e)
        out.append(entry)
    with open(os.path.join(TEMPLATES, "features.json"), "w", encoding="utf-8") as f:
        json.dump({"generator": "tests/reference/render_templates.py", "context": FEATURE_CONTEXT,
                   "features": out}, f, ensure_ascii=False, indent=1)
        f.write("\n")


def main():
    env = make_env()
    render_features(env)
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
