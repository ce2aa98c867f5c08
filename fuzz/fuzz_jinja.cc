// libFuzzer target: ChatTemplate::Parse on arbitrary template text, then Render with a small fixed
// chat context (system/user/assistant with tool calls, tools, flags). Errors must be Statuses.
#include <cstdint>
#include <string_view>

#include "arle/tokenizer/chat_template.h"

namespace {
constexpr const char* kContext = R"({"messages": [
  {"role": "system", "content": "sys"},
  {"role": "user", "content": "hi <tool_response>x</tool_response>"},
  {"role": "assistant", "content": "<think>\nr\n</think>\n\nok", "reasoning_content": "r",
   "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": {"a": 1, "b": [1.5, null, true]}}}]},
  {"role": "tool", "content": "res"},
  {"role": "user", "content": [{"type": "text", "text": "t"}, {"type": "image"}]}],
 "tools": [{"type": "function", "function": {"name": "f", "description": " d ",
   "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}}}}],
 "add_generation_prompt": true, "enable_thinking": false, "bos_token": "<s>", "eos_token": "</s>"})";
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view src(reinterpret_cast<const char*>(data), size);
  auto tpl = arle::tokenizer::ChatTemplate::Parse(src, "fuzz.jinja");
  if (!tpl.ok()) return 0;
  auto out = tpl.value().Render(kContext);
  (void)out;
  return 0;
}
