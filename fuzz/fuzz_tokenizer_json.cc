// libFuzzer target: Tokenizer::FromJson on arbitrary bytes; on success, Encode/Decode a few strings
// and stream-decode every id, checking the streaming and one-shot decodes agree. Inputs starting
// with byte 0x01 are instead text for two fixed tokenizers (byte-level with NFC + regex split, and
// SentencePiece-style with byte fallback), to fuzz Encode on arbitrary bytes.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "arle/tokenizer/incremental_decoder.h"
#include "arle/tokenizer/tokenizer.h"

namespace {

constexpr const char* kByteLevel = R"({"added_tokens": [{"id": 260, "content": "<|im_start|>", "special": true},
  {"id": 261, "content": "<x>", "special": false, "lstrip": true, "rstrip": true}],
  "normalizer": {"type": "NFC"},
  "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex":
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
    "behavior": "Isolated"}, {"type": "ByteLevel", "add_prefix_space": false, "use_regex": false}]},
  "decoder": {"type": "ByteLevel"},
  "model": {"type": "BPE", "vocab": {VOCAB}, "merges": ["\u0120 t", "h e", "\u0120t he", "\u00e4 \u00bd"]}})";

constexpr const char* kSentencePiece = R"({"added_tokens": [{"id": 1, "content": "<s>", "special": true}],
  "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "\u2581"},
    {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
  "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>"}}, {"Sequence": {"id": "A"}}]},
  "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
    {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
  "model": {"type": "BPE", "unk_token": "<unk>", "fuse_unk": true, "byte_fallback": true,
    "vocab": {"<unk>": 0, "<s>": 1, "<0xC3>": 2, "<0xA9>": 3, "\u2581": 4, "a": 5, "b": 6, "\u2581a": 7, "\u2581ab": 8},
    "merges": ["\u2581 a", "\u2581a b"]}})";

std::string ByteLevelJson() {
  // The 256 GPT-2 alphabet characters as ids 0..255, then the merged pieces.
  std::string vocab;
  auto append_cp = [](uint32_t cp, std::string* out) {
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else {
      out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  };
  uint32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    bool direct = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
    uint32_t cp = direct ? b : next++;
    std::string ch;
    if (cp == '"' || cp == '\\') ch = "\\";
    append_cp(cp, &ch);
    vocab += "\"" + ch + "\": " + std::to_string(b) + ", ";
  }
  vocab += "\"\u0120t\": 256, \"he\": 257, \"\u0120the\": 258, \"\u00e4\u00bd\": 259";
  std::string json = kByteLevel;
  json.replace(json.find("VOCAB"), 5, vocab);
  return json;
}

void CheckText(const arle::tokenizer::Tokenizer& t, std::string_view text) {
  for (bool parse_special : {true, false}) {
    auto ids = t.Encode(text, {.add_special_tokens = true, .parse_special = parse_special});
    for (int32_t id : ids) {
      if (id < 0 || id >= t.vocab_size()) std::abort();
    }
    std::string decoded = t.Decode(ids);
    arle::tokenizer::IncrementalDecoder dec(t);
    std::string streamed;
    for (int32_t id : ids) streamed += dec.Push(id);
    streamed += dec.Flush();
    if (streamed != decoded) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 0 && data[0] == 0x01) {
    static const auto byte_level = arle::tokenizer::Tokenizer::FromJson(ByteLevelJson(), "byte-level");
    static const auto spm = arle::tokenizer::Tokenizer::FromJson(kSentencePiece, "spm");
    if (!byte_level.ok() || !spm.ok()) std::abort();
    std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
    CheckText(**byte_level, text);
    CheckText(**spm, text);
    // Byte-level BPE is lossless on ASCII (NFC leaves it unchanged).
    bool ascii = true;
    for (char c : text) ascii = ascii && static_cast<unsigned char>(c) < 0x80;
    if (ascii && text.find("<|im_start|>") == std::string_view::npos && text.find("<x>") == std::string_view::npos &&
        (*byte_level)->Decode((*byte_level)->Encode(text)) != text) {
      std::abort();
    }
    return 0;
  }
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
