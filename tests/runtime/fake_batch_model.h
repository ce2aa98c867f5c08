// FakeBatchModel: a models::Model test double for the engine and scheduler. Its "KV cache" stores the
// token id written at each slot (TokenSlotModel), and its logits are a hash of the whole history it
// reads back through the block table. So a wrong block table, a wrongly shared or evicted prefix
// block or a stale row changes the tokens, and ReferenceNext() (the same function over the true token list)
// tells what the engine must produce. It also checks, every step, that no block written by one
// sequence is read by another in the same step (a block being filled must never be shared).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <span>
#include <vector>

#include <gtest/gtest.h>

#include "arle/kv/block_pool.h"
#include "arle/models/model.h"
#include "tests/common/token_slot_model.h"

namespace arle::runtime::testing {

inline constexpr int32_t kFakeVocab = 90;

// Logits of the next token after `history`: a pseudo-random but fixed function of every token and
// its position, so two different histories almost surely differ.
inline void FakeLogits(std::span<const int32_t> history, float* logits) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < history.size(); ++i) {
    h ^= static_cast<uint64_t>(history[i]) + 0x9e3779b97f4a7c15ull * (i + 1);
    h *= 1099511628211ull;
    h ^= h >> 29;
  }
  for (int32_t v = 0; v < kFakeVocab; ++v) {
    uint64_t x = h + 0xbf58476d1ce4e5b9ull * static_cast<uint64_t>(v + 1);
    x ^= x >> 31;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 29;
    logits[v] = static_cast<float>(x >> 40) / static_cast<float>(1 << 24) * 8.0f;
  }
}

class FakeBatchModel final : public arle::testing::TokenSlotModel {
 public:
  // Shared with the test (the engine owns the model).
  struct Probe {
    std::atomic<int64_t> n_forward{0};
    std::atomic<int64_t> n_tokens{0};
    std::atomic<int64_t> max_step_tokens{0};
    std::atomic<int64_t> n_violations{0};
    std::atomic<int> step_delay_us{0};
  };

  FakeBatchModel(std::shared_ptr<Probe> probe, int64_t n_ctx = 512) : probe_(probe), n_ctx_(n_ctx) {}

  int32_t n_vocab() const override { return kFakeVocab; }
  int64_t n_ctx_train() const override { return n_ctx_; }
  int64_t kv_bytes_per_block(core::DType) const override { return 1024; }

 protected:
  void BeforeStep(std::span<const int32_t> tokens, std::span<const models::StepSequence> seqs) override {
    if (probe_->step_delay_us > 0) {
      std::this_thread::sleep_for(std::chrono::microseconds(probe_->step_delay_us.load()));
    }
    ++probe_->n_forward;
    probe_->n_tokens += static_cast<int64_t>(tokens.size());
    if (static_cast<int64_t>(tokens.size()) > probe_->max_step_tokens) {
      probe_->max_step_tokens = static_cast<int64_t>(tokens.size());
    }
    // Blocks written this step, by sequence; a block read by another sequence is a violation.
    std::map<int32_t, size_t> written_by;
    for (size_t s = 0; s < seqs.size(); ++s) {
      const models::StepSequence& q = seqs[s];
      for (int64_t p = q.n_past; p < q.n_past + q.n_tokens; ++p) {
        written_by[q.block_table[p / kv::kBlockSize]] = s;
      }
    }
    for (size_t s = 0; s < seqs.size(); ++s) {
      const models::StepSequence& q = seqs[s];
      for (int64_t b = 0; b * kv::kBlockSize < q.n_past + q.n_tokens; ++b) {
        auto it = written_by.find(q.block_table[b]);
        if (it != written_by.end() && it->second != s) ++probe_->n_violations;
      }
    }
  }
  void NextLogits(std::span<const int32_t> history, std::span<float> out) override {
    FakeLogits(history, out.data());
  }

 private:
  std::shared_ptr<Probe> probe_;
  int64_t n_ctx_;
};

}  // namespace arle::runtime::testing
