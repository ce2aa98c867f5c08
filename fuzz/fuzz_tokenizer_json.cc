// libFuzzer target: Tokenizer::FromJson on arbitrary bytes; on success, Encode/Decode a few strings
// and stream-decode every id, checking the streaming and one-shot decodes agree.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "arle/tokenizer/incremental_decoder.h"
#include "arle/tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view json(reinterpret_cast<const char*>(data), size);
  auto tok = arle::tokenizer::Tokenizer::FromJson(json, "fuzz/tokenizer.json");
  if (!tok.ok()) return 0;
  const auto& t = **tok;
  for (std::string_view text : {std::string_view("Hello world, it's 2024!"), std::string_view("  tabs\t\n\n x"),
                                std::string_view("你好 😀 café"), std::string_view("\xff\xfe\xe4\xbd"),
                                std::string_view("<|im_start|>user\nhi<|im_end|><s></s>"), std::string_view("")}) {
    for (bool parse_special : {true, false}) {
      auto ids = t.Encode(text, {.add_special_tokens = true, .parse_special = parse_special});
      for (int32_t id : ids) {
        if (id < 0 || id >= t.vocab_size()) std::abort();  // Encode must only produce valid ids
      }
      std::string decoded = t.Decode(ids);
      arle::tokenizer::IncrementalDecoder dec(t);
      std::string streamed;
      for (int32_t id : ids) streamed += dec.Push(id);
      streamed += dec.Flush();
      if (streamed != decoded) std::abort();
    }
  }
  std::vector<int32_t> all;
  for (int32_t id = -2; id < t.vocab_size() + 2 && id < 4096; ++id) all.push_back(id);
  (void)t.Decode(all, /*skip_special=*/true);
  return 0;
}
