// TokenSlotModel: the base of the BatchModel test doubles (the engine tests' FakeBatchModel, the
// OpenAI tests' ScriptedModel, the e2e scripted server's ScriptedBatchModel). Its "KV cache" stores
// the token id written at each row and reads every sequence's history back through its block
// table, so a wrong block table, a wrongly shared or evicted block or a stale row changes the
// history the subclass computes its next-token logits from. Reading a row never written is a bug
// of the engine and stops the test.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "arle/core/check.h"
#include "arle/kv/block_pool.h"
#include "arle/runtime/batch_model.h"

namespace arle::testing {

class TokenSlotModel : public runtime::BatchModel {
 public:
  core::Status AllocateKv(int32_t n_blocks, core::DType) override {
    slots_.assign(static_cast<size_t>(n_blocks) * kv::kBlockSize, -1);
    return core::OkStatus();
  }

  core::Status Forward(std::span<const int32_t> tokens,
                       std::span<const runtime::BatchSequence> seqs,
                       std::vector<float>* logits) final {
    BeforeStep(tokens, seqs);
    const size_t n_vocab = static_cast<size_t>(this->n_vocab());
    logits->clear();
    std::vector<int32_t> history;
    for (const runtime::BatchSequence& q : seqs) {
      for (int64_t i = 0; i < q.n_tokens; ++i) {
        slots_[Slot(q, q.n_past + i)] = tokens[q.token_begin + i];
      }
      if (!q.want_logits) continue;
      history.clear();
      for (int64_t p = 0; p < q.n_past + q.n_tokens; ++p) {
        const int32_t id = slots_[Slot(q, p)];
        ARLE_CHECK(id >= 0) << "read a KV row never written: position " << p;
        history.push_back(id);
      }
      logits->resize(logits->size() + n_vocab);
      NextLogits(history, std::span<float>(logits->data() + logits->size() - n_vocab, n_vocab));
    }
    return core::OkStatus();
  }

  void CopyBlockRows(int32_t src, int32_t dst, int64_t n_rows) override {
    for (int64_t r = 0; r < n_rows; ++r) {
      slots_[static_cast<size_t>(dst) * kv::kBlockSize + r] =
          slots_[static_cast<size_t>(src) * kv::kBlockSize + r];
    }
  }

 protected:
  // Called first in every Forward (step delays, per-step checks).
  virtual void BeforeStep(std::span<const int32_t> /*tokens*/,
                          std::span<const runtime::BatchSequence> /*seqs*/) {}
  // The logits (n_vocab() of them) of the token after `history` (prompt + generated tokens).
  virtual void NextLogits(std::span<const int32_t> history, std::span<float> out) = 0;

 private:
  static size_t Slot(const runtime::BatchSequence& q, int64_t p) {
    return static_cast<size_t>(q.block_table[p / kv::kBlockSize]) * kv::kBlockSize +
           p % kv::kBlockSize;
  }

  std::vector<int32_t> slots_;
};

}  // namespace arle::testing
