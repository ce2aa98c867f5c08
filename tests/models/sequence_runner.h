// SequenceRunner: one sequence through a model's forward step (the engine runs many at once): a
// state with room for max_tokens, the identity block table, and the logits of the step's last
// token or of every token. The model tests' way to run prompts token by token, in chunks or whole.
#pragma once

#include <cstdint>
#include <memory>
#include <numeric>
#include <span>
#include <vector>

#include "arle/core/check.h"
#include "arle/models/model.h"

namespace arle::models::testing {

class SequenceRunner {
 public:
  SequenceRunner(Model& model, int64_t max_tokens, core::DType kv_dtype = core::DType::kF32,
                 int64_t block_size = 16)
      : model_(model), max_tokens_(max_tokens) {
    StateSizes sizes;
    sizes.n_blocks = (max_tokens + block_size - 1) / block_size;
    sizes.block_size = block_size;
    sizes.kv_dtype = kv_dtype;
    sizes.n_slots = model.state_spec().has_recurrent() ? 1 : 0;
    auto state = model.NewState(sizes);
    ARLE_CHECK(state.ok()) << state.status().ToString();
    state_ = std::move(state).value();
    table_.resize(static_cast<size_t>(sizes.n_blocks));
    std::iota(table_.begin(), table_.end(), 0);
  }

  // Runs `tokens` at positions n_past() .. and writes the logits of the last token, or of every
  // token when all_logits ([n, n_vocab]). OutOfRange past max_tokens (the runner's own limit).
  core::Status Forward(std::span<const int32_t> tokens, std::vector<float>* logits,
                       bool all_logits = false) {
    if (n_past_ + static_cast<int64_t>(tokens.size()) > max_tokens_) {
      return core::OutOfRangeError("SequenceRunner: past its " + std::to_string(max_tokens_) +
                                   " tokens");
    }
    StepSequence seq;
    seq.n_tokens = static_cast<int64_t>(tokens.size());
    seq.n_past = n_past_;
    seq.block_table = table_;
    seq.state_slot = model_.state_spec().has_recurrent() ? 0 : -1;
    seq.n_logits = all_logits ? seq.n_tokens : 1;
    ARLE_RETURN_IF_ERROR(model_.Forward(tokens, std::span(&seq, 1), *state_, logits));
    n_past_ += seq.n_tokens;
    return core::OkStatus();
  }
  int64_t n_past() const { return n_past_; }

 private:
  Model& model_;
  int64_t max_tokens_;
  std::unique_ptr<ModelState> state_;
  std::vector<int32_t> table_;
  int64_t n_past_ = 0;
};

}  // namespace arle::models::testing
