// Helpers for engine tests: a shared tokenizer, a thread-safe collector of engine events, and a
// reference generation that replays the same Sampler over a plain token list.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "arle/runtime/engine.h"
#include "arle/tokenizer/tokenizer.h"

namespace arle::runtime::testing {

// The Qwen3 tokenizer from the repo's assets (ids below 128 are single ASCII characters).
inline const tokenizer::Tokenizer& TestTokenizer() {
  static const std::unique_ptr<tokenizer::Tokenizer> tok = [] {
    auto t = tokenizer::Tokenizer::FromFile(std::string(ARLE_SOURCE_DIR) +
                                            "/assets/tokenizers/qwen3/tokenizer.json.gz");
    EXPECT_TRUE(t.ok()) << t.status().ToString();
    return std::move(*t);
  }();
  return *tok;
}

// Everything one request produced, per sample.
struct Collected {
  struct Sample {
    std::vector<SampledToken> tokens;
    std::string text;
    FinishReason finish = FinishReason::kNone;
    int64_t n_cached_prompt = -1;
    int n_events = 0;
    int n_final_events = 0;
  };
  std::vector<Sample> samples;
  std::vector<PromptTokenLogprob> prompt_logprobs;  // from whichever event carried them
  int n_events_with_prompt_logprobs = 0;
};

class Collector {
 public:
  explicit Collector(int n = 1) { result_.samples.resize(n); }
  EngineCallback Callback() {
    return [this](const EngineOutput& out) {
      std::lock_guard<std::mutex> lock(mu_);
      Collected::Sample& s = result_.samples.at(out.index);
      for (const SampledToken& t : out.tokens) s.tokens.push_back(t);
      s.text += out.text;
      ++s.n_events;
      if (!out.prompt_logprobs.empty()) {
        result_.prompt_logprobs = out.prompt_logprobs;
        ++result_.n_events_with_prompt_logprobs;
      }
      if (out.finish_reason != FinishReason::kNone) {
        s.finish = out.finish_reason;
        s.n_cached_prompt = out.n_cached_prompt_tokens;
        ++s.n_final_events;
        ++n_done_;
      }
      if (on_event_) on_event_(out);
      cv_.notify_all();
    };
  }
  // Waits until every sample finished; false on timeout.
  bool Wait(std::chrono::seconds timeout = std::chrono::seconds(60)) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout,
                        [&] { return n_done_ == static_cast<int>(result_.samples.size()); });
  }
  // Waits until sample 0 has at least n tokens.
  bool WaitTokens(size_t n, std::chrono::seconds timeout = std::chrono::seconds(60)) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] {
      return result_.samples[0].tokens.size() >= n || n_done_ > 0;
    });
  }
  Collected result() {
    std::lock_guard<std::mutex> lock(mu_);
    return result_;
  }
  void OnEvent(std::function<void(const EngineOutput&)> f) { on_event_ = std::move(f); }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  Collected result_;
  int n_done_ = 0;
  std::function<void(const EngineOutput&)> on_event_;
};

inline std::vector<int32_t> Ids(const std::vector<SampledToken>& tokens) {
  std::vector<int32_t> ids;
  for (const SampledToken& t : tokens) ids.push_back(t.id);
  return ids;
}

}  // namespace arle::runtime::testing
