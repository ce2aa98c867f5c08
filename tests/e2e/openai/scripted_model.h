// ScriptedBatchModel: a test-only models::Model over the Qwen3 vocabulary whose output is chosen by
// the prompt, so end-to-end tests can make a "model" emit exact text (a tool call, a <think>
// block, a stop string split over tokens) through the real engine, server and output parsers.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "arle/core/check.h"
#include "arle/kv/block_pool.h"
#include "arle/models/model.h"
#include "arle/tokenizer/tokenizer.h"
#include "tests/common/token_slot_model.h"

namespace arle::e2e {

// How the next token is chosen from the history (prompt + generated tokens) that Forward() reads
// back through the block table — never from state kept per request, so prefix caching, batching,
// chunked prefill and preemption by recompute are exercised exactly as with a real model:
//
// 1. The history is detokenized (special tokens kept). The script is the text between the LAST
//    "SCRIPT<<" and the first ">>SCRIPT" after it (so a script may end with ">", as
//    "</tool_call>" does, but cannot contain ">>SCRIPT"). No such marker: go to 5.
// 2. The generation region starts right after the marker (a completions prompt ends there), or,
//    when the chat template wrote "<|im_start|>assistant\n" after the marker, right after the last
//    such header (the assistant turn being generated; a later tool message may carry a new marker).
// 3. The region holds whatever the prompt added after the header (Qwen3's "<think>\n\n</think>\n\n"
//    when thinking is off, a tool_choice prefix such as "<tool_call>\n") followed by the tokens
//    generated so far. The script continues from the longest token-aligned suffix of the region
//    that is a prefix of the script: so a forced prefix is continued, not repeated. (Limitation:
//    a script must not begin with text that the template's scaffolding ends with.)
// 4. If the script is complete, the next token is <|im_end|> (the EOS); otherwise it is the first
//    token of the encoded rest of the script. That token gets logit +40 over a flat 0 elsewhere,
//    so even temperature-1 sampling picks it (every other token has p < 1e-12).
// 5. Without a marker, logits are a fixed hash of every token and position of the history, over
//    the 52 single-letter ASCII tokens only (others at -30): deterministic pseudo-random letters,
//    different for different histories and seeds, never an EOS.
//
// Thread safety: Forward() runs on the engine thread only (as the engine guarantees).
class ScriptedBatchModel final : public testing::TokenSlotModel {
 public:
  static constexpr std::string_view kMarkerOpen = "SCRIPT<<";
  static constexpr std::string_view kMarkerClose = ">>SCRIPT";
  static constexpr std::string_view kAssistantHeader = "<|im_start|>assistant\n";
  static constexpr float kScriptLogit = 40.0f;
  static constexpr float kOtherLetterFloor = -30.0f;

  // REQUIRES: the tokenizer outlives the model and has an "<|im_end|>" token.
  ScriptedBatchModel(const tokenizer::Tokenizer& tokenizer, int64_t n_ctx, int step_delay_ms)
      : tokenizer_(tokenizer), n_ctx_(n_ctx), step_delay_ms_(step_delay_ms) {
    const std::optional<int32_t> eos = tokenizer.TokenToId("<|im_end|>");
    ARLE_CHECK(eos.has_value()) << "the scripted model needs the Qwen3 vocabulary";
    eos_id_ = *eos;
    tokenizer::EncodeOptions plain;
    plain.add_special_tokens = false;
    for (char c : std::string_view("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")) {
      const std::vector<int32_t> ids = tokenizer.Encode(std::string_view(&c, 1), plain);
      ARLE_CHECK(ids.size() == 1) << "letter " << c << " is not one token";
      letter_ids_.push_back(ids[0]);
    }
  }

  int32_t eos_id() const { return eos_id_; }

  int32_t n_vocab() const override { return tokenizer_.vocab_size(); }
  int64_t n_ctx_train() const override { return n_ctx_; }
  // The KV "storage" is one token id per row; report a realistic-looking size so the engine's
  // sizing arithmetic is exercised.
  int64_t kv_bytes_per_block(core::DType) const override {
    return static_cast<int64_t>(kv::kBlockSize) * 2 * sizeof(float);
  }
  // The token the script dictates after `history`, or nullopt without a marker (steps 1-4).
  std::optional<int32_t> ScriptedNext(std::span<const int32_t> history) const {
    // Byte offset at which each token's text begins (byte-level BPE: the concatenation of the
    // per-token bytes is the decoded text).
    std::string text;
    std::vector<size_t> begin(history.size() + 1);
    tokenizer::Tokenizer::DecodeState state;
    for (size_t i = 0; i < history.size(); ++i) {
      begin[i] = text.size();
      tokenizer_.DecodeAppend(history[i], /*skip_special=*/false, &state, &text);
    }
    begin[history.size()] = text.size();

    const size_t open = text.rfind(kMarkerOpen);
    if (open == std::string::npos) return std::nullopt;
    const size_t script_begin = open + kMarkerOpen.size();
    const size_t close = text.find(kMarkerClose, script_begin);
    if (close == std::string::npos) return std::nullopt;
    const std::string_view script =
        std::string_view(text).substr(script_begin, close - script_begin);

    size_t region = close + kMarkerClose.size();
    if (const size_t header = text.rfind(kAssistantHeader);
        header != std::string::npos && header >= region) {
      region = header + kAssistantHeader.size();
    }
    // First token starting at or after the region (the region start is a token boundary for the
    // prompts the tests send; if not, the straddling token is treated as part of the prompt).
    size_t first =
        static_cast<size_t>(std::lower_bound(begin.begin(), begin.end(), region) - begin.begin());

    size_t done = 0;  // script bytes already present
    for (size_t j = first; j <= history.size(); ++j) {
      const std::string_view tail = std::string_view(text).substr(begin[j]);
      if (script.substr(0, tail.size()) == tail) {
        done = tail.size();
        break;
      }
    }
    if (done >= script.size()) return eos_id_;
    tokenizer::EncodeOptions options;
    options.add_special_tokens = false;
    const std::vector<int32_t> rest = tokenizer_.Encode(script.substr(done), options);
    ARLE_CHECK(!rest.empty());
    return rest[0];
  }

 protected:
  void BeforeStep(std::span<const int32_t>, std::span<const models::StepSequence>) override {
    if (step_delay_ms_ > 0) std::this_thread::sleep_for(std::chrono::milliseconds(step_delay_ms_));
  }

  void NextLogits(std::span<const int32_t> history, std::span<float> out) override {
    if (std::optional<int32_t> next = ScriptedNext(history)) {
      std::fill(out.begin(), out.end(), 0.0f);
      out[*next] = kScriptLogit;
      return;
    }
    std::fill(out.begin(), out.end(), kOtherLetterFloor);
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < history.size(); ++i) {
      h ^= static_cast<uint64_t>(history[i]) + 0x9e3779b97f4a7c15ull * (i + 1);
      h *= 1099511628211ull;
      h ^= h >> 29;
    }
    for (size_t v = 0; v < letter_ids_.size(); ++v) {
      uint64_t x = h + 0xbf58476d1ce4e5b9ull * (v + 1);
      x ^= x >> 31;
      x *= 0x94d049bb133111ebull;
      x ^= x >> 29;
      out[letter_ids_[v]] = static_cast<float>(x >> 40) / static_cast<float>(1 << 24) * 8.0f;
    }
  }

 private:
  const tokenizer::Tokenizer& tokenizer_;
  int64_t n_ctx_;
  int step_delay_ms_;
  int32_t eos_id_ = -1;
  std::vector<int32_t> letter_ids_;
};

}  // namespace arle::e2e
