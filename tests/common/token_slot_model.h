// TokenSlotModel: the base of the models::Model test doubles (the engine tests' FakeBatchModel,
// the OpenAI tests' ScriptedModel, the e2e scripted server's ScriptedBatchModel). Its state is one
// attention layer whose "K/V" row is the token id written at each position; it reads every
// sequence's history back through its block table, so a wrong block table, a wrongly shared or
// evicted block or a stale row changes the history the subclass computes its next-token logits
// from. Reading a row never written is a bug of the engine and stops the test.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "arle/core/check.h"
#include "arle/kv/block_pool.h"
#include "arle/models/model.h"

namespace arle::testing {

class TokenSlotModel : public models::Model {
 public:
  virtual int32_t n_vocab() const = 0;
  virtual int64_t n_ctx_train() const = 0;
  // What a block of f32 K/V would take (the engine's sizing arithmetic divides budgets by it).
  // REQUIRES: a multiple of 2 * kBlockSize * 4.
  virtual int64_t kv_bytes_per_block(core::DType dtype) const = 0;

  const models::ModelInfo& info() const final {
    if (info_.n_vocab == 0) {
      info_.family = "test";
      info_.architecture = "TokenSlotForTesting";
      info_.n_vocab = n_vocab();
      info_.n_ctx_train = n_ctx_train();
      info_.n_layer = 1;
    }
    return info_;
  }
  const models::StateSpec& state_spec() const final {
    if (spec_.layers.empty()) {
      const int64_t per_row = kv_bytes_per_block(core::DType::kF32) / (2 * kv::kBlockSize * 4);
      ARLE_CHECK(per_row >= 1) << "kv_bytes_per_block too small";
      spec_.layers.push_back({models::LayerStateKind::kAttention, 1, per_row, 0});
    }
    return spec_;
  }

  core::StatusOr<std::unique_ptr<models::ModelState>> NewState(
      const models::StateSizes& sizes) const final {
    auto state = std::make_unique<Rows>();
    state->rows.assign(static_cast<size_t>(sizes.n_blocks) * kv::kBlockSize, -1);
    return std::unique_ptr<models::ModelState>(std::move(state));
  }

  core::Status Forward(std::span<const int32_t> tokens, std::span<const models::StepSequence> seqs,
                       models::ModelState& state, std::vector<float>* logits) final {
    std::vector<int32_t>& rows = static_cast<Rows&>(state).rows;
    BeforeStep(tokens, seqs);
    const size_t vocab = static_cast<size_t>(n_vocab());
    logits->clear();
    std::vector<int32_t> history;
    for (const models::StepSequence& q : seqs) {
      for (int64_t i = 0; i < q.n_tokens; ++i) rows[Slot(q, q.n_past + i)] = tokens[q.token_begin + i];
      // Logits of the last n_logits tokens: each row from the history up to its token.
      for (int64_t end = q.n_past + q.n_tokens - q.n_logits + 1; end <= q.n_past + q.n_tokens;
           ++end) {
        history.clear();
        for (int64_t p = 0; p < end; ++p) {
          const int32_t id = rows[Slot(q, p)];
          ARLE_CHECK(id >= 0) << "read a KV row never written: position " << p;
          history.push_back(id);
        }
        logits->resize(logits->size() + vocab);
        NextLogits(history, std::span<float>(logits->data() + logits->size() - vocab, vocab));
      }
    }
    return core::OkStatus();
  }

 protected:
  // Called first in every Forward (step delays, per-step checks).
  virtual void BeforeStep(std::span<const int32_t> /*tokens*/,
                          std::span<const models::StepSequence> /*seqs*/) {}
  // The logits (n_vocab() of them) of the token after `history` (prompt + generated tokens).
  virtual void NextLogits(std::span<const int32_t> history, std::span<float> out) = 0;

 private:
  struct Rows final : models::ModelState {
    std::vector<int32_t> rows;  // the token id at each block row
    void CopyBlockRows(int32_t src, int32_t dst, int64_t n_rows) override {
      for (int64_t r = 0; r < n_rows; ++r) {
        rows[static_cast<size_t>(dst) * kv::kBlockSize + r] =
            rows[static_cast<size_t>(src) * kv::kBlockSize + r];
      }
    }
    void CopySlot(int32_t, int32_t) override { ARLE_CHECK(false) << "no recurrent layers"; }
  };
  static size_t Slot(const models::StepSequence& q, int64_t p) {
    return static_cast<size_t>(q.block_table[p / kv::kBlockSize]) * kv::kBlockSize +
           p % kv::kBlockSize;
  }
  mutable models::ModelInfo info_;
  mutable models::StateSpec spec_;
};

}  // namespace arle::testing
