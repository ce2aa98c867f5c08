// CrossEntropy over the vocabulary: per-row losses of f32 logits against target ids, with the
// logits' gradient written over them in place (the LM head's loss and its backward in one pass).
#pragma once

#include <cstdint>
#include <span>

#include "arle/core/tensor.h"
#include "arle/kernels/context.h"

namespace arle::kernels {

inline constexpr int32_t kIgnoreIndex = -100;  // PyTorch's ignore_index

struct CrossEntropyArgs {
  core::Tensor* logits = nullptr;    // f32 [n_rows, n_vocab] contiguous; replaced by dlogits
  std::span<const int32_t> targets;  // [n_rows]; kIgnoreIndex rows: loss 0, gradient 0
  float grad_scale = 1;              // dlogits = (softmax - onehot(target)) * grad_scale
  std::span<float> losses;           // [n_rows] out: logsumexp(row) - row[target] (0 if ignored)
};

// For each row r with target c: m = max_j row[j], s = sum_j exp(row[j] - m) (stable in f32),
// losses[r] = m + log(s) - row[c], and row[j] becomes exp(row[j] - m) / s * grad_scale, minus
// grad_scale at j = c. The training loop calls it on row chunks of the LM head's output, so
// [tokens x vocab] logits are never all held. Rows are independent and each is computed by one
// worker in a fixed order: bit-identical for every pool size and whatever the other rows.
// REQUIRES (checked): targets.size() == losses.size() == n_rows; each target is kIgnoreIndex or
// in [0, n_vocab) (callers validate user data first). CPU backends only.
void CrossEntropy(const Context& ctx, const CrossEntropyArgs& args);

}  // namespace arle::kernels
